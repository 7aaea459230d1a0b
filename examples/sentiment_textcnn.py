"""TextCNN (Kim, 2014) on SST-2 sentiment classification, with the training loop written out.

    python examples/sentiment_textcnn.py                                 # built-in toy set, seconds
    python examples/sentiment_textcnn.py --data ../shared/data/sst2      # GLUE's folder with train.tsv and dev.tsv

Kim's CNN-rand configuration: embeddings learned from scratch (initialised U(-0.25, 0.25)), kernel
widths 3, 4, 5 with 100 filters each, wide windows, ReLU, max-over-time pooling, dropout 0.5,
batches of 50 (here: Adam instead of Adadelta, and no max-norm constraint). Each batch is padded
(behind the words) only to its own longest sentence, and the true lengths go to the model, so the
padding never takes part (tinylm/models/textcnn.py). After each epoch the dev set's accuracy,
precision, recall and F1; at the end the wall time. One run measured dev accuracy 0.821, 0.811,
0.827, 0.819 after epochs 1 to 4 (Kim reports 0.837 for CNN-rand with Adadelta and max-norm).

Every step of training is spelled out: zero_grad, forward, loss, the NaN guard, backward, step.
Results measured on 2 CPU cores are in the README.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import time

# One BLAS thread: the matmuls here are small, and with other jobs sharing the 2 cores OpenBLAS's
# default (a thread per core) made one LSTM batch 20x slower (measured: 394 ms against 19 ms).
# Set OPENBLAS_NUM_THREADS yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import tinylm  # noqa: E402
from tinylm.data.files import check_dir, reading  # noqa: E402
from tinylm.data.sst2 import load_sst2, toy_sentiment  # noqa: E402
from tinylm.metrics import accuracy_score, f1_score, precision_score, recall_score  # noqa: E402
from tinylm.models.textcnn import TextCNN  # noqa: E402
from tinylm.nn.loss import CrossEntropyLoss  # noqa: E402
from tinylm.optim import Adam, check_finite  # noqa: E402
from tinylm.scripting import (nonnegative_float, nonnegative_int, positive_float, positive_int,  # noqa: E402
                              script_main)
from tinylm.text import Tokenizer, pad_sequences  # noqa: E402

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=pathlib.Path, default=None,
                   help="folder with GLUE SST-2 train.tsv and dev.tsv, e.g. ../shared/data/sst2 "
                        "(default: the small built-in toy set)")
    p.add_argument("--toy", action="store_true", help="use the built-in toy set even when --data is given")
    p.add_argument("--vocab", type=positive_int, default=20000, help="most frequent words kept (others map to <unk>)")
    p.add_argument("--maxlen", type=positive_int, default=64, help="words per sentence at most (longer ones are cut)")
    p.add_argument("--embed-dim", type=positive_int, default=128)
    p.add_argument("--num-filters", type=positive_int, default=100)
    p.add_argument("--kernel-sizes", type=positive_int, nargs="+", default=[3, 4, 5])
    p.add_argument("--dropout", type=nonnegative_float, default=0.5)
    p.add_argument("--epochs", type=positive_int, default=3)
    p.add_argument("--batch-size", type=positive_int, default=50)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    return p.parse_args(argv)


def load_data(args):
    """``(splits, description)``: SST-2 from --data, else the built-in toy set."""
    if args.toy or args.data is None:
        print("built-in toy set (templated sentences; pass --data DIR for SST-2): its numbers say nothing about SST-2.")
        return toy_sentiment(seed=args.seed), "toy set"
    expected = "GLUE's SST-2 folder with train.tsv and dev.tsv"
    with reading("--data", args.data, expected):
        return load_sst2(check_dir(args.data, "--data", expected)), f"SST-2 ({args.data})"


def make_batch(sequences):
    """Pad behind the words to the batch's longest sentence: ids (B, T) and lengths (B,).
    An empty sentence keeps one <pad> id, so its length is 1."""
    lengths = np.array([max(len(s), 1) for s in sequences])
    ids = pad_sequences(sequences, maxlen=int(lengths.max()), padding="post")
    return tinylm.get_backend().asarray(ids), lengths


def predict(model, sequences, batch_size: int = 500) -> np.ndarray:
    model.eval()
    out = [tinylm.to_numpy(model(*make_batch(sequences[i:i + batch_size]))).argmax(axis=1)
           for i in range(0, len(sequences), batch_size)]
    return np.concatenate(out)


def report(y_true, y_pred, what: str) -> str:
    return (f"{what}: accuracy {accuracy_score(y_true, y_pred):.4f}  precision {precision_score(y_true, y_pred):.4f}  "
            f"recall {recall_score(y_true, y_pred):.4f}  F1 {f1_score(y_true, y_pred):.4f}")


@script_main
def main(argv=None):
    args = parse_args(argv)
    tinylm.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    splits, name = load_data(args)
    (train_texts, y_train), (dev_texts, y_dev) = splits["train"], splits["dev"]
    tokenizer = Tokenizer(num_words=args.vocab, oov_token="<unk>")
    tokenizer.fit_on_texts(train_texts)
    cut = lambda seqs: [s[:args.maxlen] for s in seqs]                          # noqa: E731
    train_seqs, dev_seqs = cut(tokenizer.texts_to_sequences(train_texts)), cut(tokenizer.texts_to_sequences(dev_texts))
    print(f"{name}: {len(train_seqs)} train / {len(dev_seqs)} dev examples, vocabulary {tokenizer.vocab_size} ids")

    model = TextCNN(tokenizer.vocab_size, num_classes=2, embed_dim=args.embed_dim, num_filters=args.num_filters,
                    kernel_sizes=args.kernel_sizes, dropout=args.dropout, padding_idx=0)
    criterion = CrossEntropyLoss()
    optimizer = Adam(model.parameters(), lr=args.lr)
    print(f"TextCNN: {model.num_parameters():,} parameters")

    step = 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = rng.permutation(len(train_seqs))
        total, seen, epoch_start = 0.0, 0, time.perf_counter()
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            ids, lengths = make_batch([train_seqs[j] for j in idx])
            targets = tinylm.get_backend().asarray(y_train[idx])
            step += 1
            model.zero_grad()
            logits = model(ids, lengths)                                         # (B,T) -> (B,2)
            loss = check_finite(criterion(logits, targets), step)                # stop on nan/inf, naming the step
            model.backward(criterion.backward())                                 # fills every p.grad
            optimizer.step()
            total, seen = total + loss * len(idx), seen + len(idx)
        dev_pred = predict(model, dev_seqs)
        seconds = time.perf_counter() - epoch_start
        print(f"epoch {epoch}/{args.epochs}  train loss {total / seen:.4f}  ({seconds:.0f} s)  "
              + report(y_dev, dev_pred, "dev"))
    print(report(y_dev, predict(model, dev_seqs), f"{name} dev")
          + f"  ({len(y_dev)} examples; wall time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
