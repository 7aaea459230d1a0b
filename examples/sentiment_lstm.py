"""The source article's Keras program (Section 5), run by tinylm on SST-2 sentiment classification.

    python examples/sentiment_lstm.py                                 # built-in toy set, seconds
    python examples/sentiment_lstm.py --data ../shared/data/sst2      # GLUE's folder with train.tsv and dev.tsv

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
import sys
import time

# One BLAS thread: the matmuls here are small, and with other jobs sharing the 2 cores OpenBLAS's
# default (a thread per core) made one LSTM batch 20x slower (measured: 394 ms against 19 ms).
# Set OPENBLAS_NUM_THREADS yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import tinylm  # noqa: E402
from tinylm.data.files import check_dir, reading  # noqa: E402
from tinylm.data.sst2 import load_sst2, toy_sentiment  # noqa: E402
from tinylm.keras.layers import Dense, Embedding, LSTM  # noqa: E402
from tinylm.keras.models import Sequential  # noqa: E402
from tinylm.metrics import accuracy_score, f1_score, precision_score, recall_score  # noqa: E402
from tinylm.scripting import nonnegative_int, positive_int, script_main  # noqa: E402
from tinylm.text import Tokenizer, pad_sequences  # noqa: E402

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=pathlib.Path, default=None,
                   help="folder with GLUE SST-2 train.tsv and dev.tsv, e.g. ../shared/data/sst2 "
                        "(default: the small built-in toy set)")
    p.add_argument("--toy", action="store_true", help="use the built-in toy set even when --data is given")
    p.add_argument("--vocab", type=positive_int, default=10000,
                   help="ids kept by the tokenizer (the Embedding's input_dim)")
    p.add_argument("--maxlen", type=positive_int, default=48, help="ids per sequence (longer ones keep their end)")
    p.add_argument("--epochs", type=positive_int, default=3)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2),
                   help="0 silent, 1 a progress bar per epoch, 2 a line per epoch (default: 1 on a terminal, else 2)")
    return p.parse_args(argv)


def load_data(args):
    """``(splits, description)``: SST-2 from --data, else the built-in toy set."""
    if args.toy or args.data is None:
        print("built-in toy set (templated sentences; pass --data DIR for SST-2): its numbers say nothing about SST-2.")
        return toy_sentiment(seed=args.seed), "toy set"
    expected = "GLUE's SST-2 folder with train.tsv and dev.tsv"
    with reading("--data", args.data, expected):
        return load_sst2(check_dir(args.data, "--data", expected)), f"SST-2 ({args.data})"


def report(y_true, y_pred, seconds: float, what: str) -> None:
    print(f"{what}: accuracy {accuracy_score(y_true, y_pred):.4f}  precision {precision_score(y_true, y_pred):.4f}  "
          f"recall {recall_score(y_true, y_pred):.4f}  F1 {f1_score(y_true, y_pred):.4f}  "
          f"({len(y_true)} examples; wall time {seconds:.0f} s)")


@script_main
def main(argv=None):
    args = parse_args(argv)
    if args.verbose is None:                # a bar in a log file is one line per update
        args.verbose = 1 if sys.stdout.isatty() else 2
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
