"""The source article's Keras program (Section 5), run by tinylm on SST-2 sentiment classification.

    python examples/sentiment_lstm.py                        # ../shared/data/sst2 if present, else a toy set
    python examples/sentiment_lstm.py --data path/to/SST-2   # GLUE's folder with train.tsv and dev.tsv

The model, compile and fit lines are the article's, word for word; only the imports differ and
the data loading (which the article leaves as ``...``) is filled in: a word-level tokenizer
keeping the 10,000 ids the Embedding has (``--vocab``), sequences padded in front to ``--maxlen``
ids (Keras' default, so the LSTM's final state has just read the last word), and the GLUE dev
set as ``test_data``. Then the dev set's accuracy, precision, recall and F1 and the wall time.

SST-2's training set is phrases as well as sentences (half the rows have at most 7 words), so a
model this small learns it in a few epochs and then overfits: one run measured dev accuracy
0.810, 0.831, 0.834, 0.818 after epochs 1 to 4, hence the default of 3 (the article trains 10).
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
from tinylm.data.sst2 import load_sst2, toy_sentiment  # noqa: E402
from tinylm.keras.layers import Dense, Embedding, LSTM  # noqa: E402
from tinylm.keras.models import Sequential  # noqa: E402
from tinylm.metrics import accuracy_score, f1_score, precision_score, recall_score  # noqa: E402
from tinylm.text import Tokenizer, pad_sequences  # noqa: E402

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=pathlib.Path, default=None,
                   help=f"folder with GLUE SST-2 train.tsv and dev.tsv (default: {DEFAULT_DATA} if present)")
    p.add_argument("--toy", action="store_true", help="use the small built-in toy set even if SST-2 is present")
    p.add_argument("--vocab", type=int, default=10000, help="ids kept by the tokenizer (the Embedding's input_dim)")
    p.add_argument("--maxlen", type=int, default=48, help="ids per sequence (longer ones keep their end)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    return p.parse_args(argv)


def load_data(args):
    """``(splits, description)``: SST-2 from --data (or the default folder), else the toy set."""
    folder = args.data or (DEFAULT_DATA if DEFAULT_DATA.is_dir() else None)
    if args.toy or folder is None:
        why = "--toy" if args.toy else "SST-2 not found (pass --data DIR, a folder with GLUE's train.tsv and dev.tsv)"
        print(f"{why}: running on the small built-in toy set; its numbers say nothing about SST-2.")
        return toy_sentiment(seed=args.seed), "toy set"
    return load_sst2(folder), f"SST-2 ({folder})"


def report(y_true, y_pred, seconds: float, what: str) -> None:
    print(f"{what}: accuracy {accuracy_score(y_true, y_pred):.4f}  precision {precision_score(y_true, y_pred):.4f}  "
          f"recall {recall_score(y_true, y_pred):.4f}  F1 {f1_score(y_true, y_pred):.4f}  "
          f"({len(y_true)} examples; wall time {seconds:.0f} s)")


def main(argv=None):
    args = parse_args(argv)
    tinylm.manual_seed(args.seed)
    start = time.perf_counter()
    splits, name = load_data(args)
    (train_texts, train_labels), (dev_texts, dev_labels) = splits["train"], splits["dev"]
    tokenizer = Tokenizer(num_words=args.vocab, oov_token="<unk>")
    tokenizer.fit_on_texts(train_texts)

    def encode(texts):
        return pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=args.maxlen)

    print(f"{name}: {len(train_texts)} train / {len(dev_texts)} dev examples, vocabulary {tokenizer.vocab_size} ids")
    train_data = (encode(train_texts), train_labels)
    test_data = (encode(dev_texts), dev_labels)

    # The article's program (Section 5.2), unchanged but for input_dim=args.vocab and epochs=args.epochs:
    model = Sequential([
        Embedding(input_dim=args.vocab, output_dim=32),
        LSTM(128),
        Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(train_data, epochs=args.epochs, batch_size=args.batch_size, validation_data=test_data,
              verbose=args.verbose)

    model.summary()
    probabilities = model.predict(test_data[0], batch_size=256)[:, 0]
    report(dev_labels, (probabilities > 0.5).astype(np.int64), time.perf_counter() - start, f"{name} dev")


if __name__ == "__main__":
    main()
