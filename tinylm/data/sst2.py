"""SST-2, the binary Stanford Sentiment Treebank as GLUE distributes it, and a tiny stand-in.

GLUE's ``SST-2/`` folder holds ``train.tsv`` (67,349 rows: whole sentences and the phrases of their
parse trees) and ``dev.tsv`` (872 whole sentences), each a header ``sentence<TAB>label`` and one
row per example: the lower-cased, tokenised text (words separated by spaces), a tab, and the label,
1 positive or 0 negative. (``test.tsv`` has no labels and is not read here.)
tinylm never downloads anything: get the folder from ``SST2_URL`` (or the Hugging Face dataset
``glue``/``sst2``, saved as TSV) and pass its path.

``toy_sentiment()`` builds a small, deterministic data set of the same form from templates, so
that the examples and tests run without the real one.

Used by examples/sentiment_lstm.py and examples/sentiment_textcnn.py. Tests: tests/test_textcnn.py.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np

__all__ = ["SST2_URL", "SPLITS", "read_sst2_tsv", "load_sst2", "toy_sentiment"]

SST2_URL = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
SPLITS = ("train", "dev")


def read_sst2_tsv(path) -> tuple[list[str], np.ndarray]:
    """``(sentences, labels)`` of one GLUE SST-2 file: a list of str and an int64 array of 0/1."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SST-2: {path} not found. tinylm does not download data: get GLUE's SST-2 from "
                                f"{SST2_URL}, unzip it, and pass the folder that holds train.tsv and dev.tsv")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != ["sentence", "label"]:
        head = lines[0][:60] if lines else ""
        raise ValueError(f"{path}: expected the GLUE SST-2 header 'sentence<TAB>label', got {head!r}")
    sentences, labels = [], []
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != 2 or parts[1] not in ("0", "1"):
            raise ValueError(f"{path}, line {number}: expected 'sentence<TAB>0 or 1', got {line[:60]!r}")
        sentences.append(parts[0].strip())
        labels.append(int(parts[1]))
    return sentences, np.asarray(labels, dtype=np.int64)


def load_sst2(data_dir) -> dict[str, tuple[list[str], np.ndarray]]:
    """``{"train": (sentences, labels), "dev": (sentences, labels)}`` from a GLUE ``SST-2`` folder."""
    data_dir = pathlib.Path(os.fspath(data_dir))
    if not data_dir.is_dir():
        raise FileNotFoundError(f"SST-2: folder {data_dir} not found. tinylm does not download data: get GLUE's "
                                f"SST-2 from {SST2_URL}, unzip it, and pass the folder that holds train.tsv and "
                                f"dev.tsv")
    return {split: read_sst2_tsv(data_dir / f"{split}.tsv") for split in SPLITS}


_POSITIVE = ("good", "great", "wonderful", "charming", "moving", "brilliant", "delightful", "funny", "beautiful",
             "smart", "touching", "gripping")
_NEGATIVE = ("bad", "dull", "boring", "awful", "tedious", "clumsy", "lifeless", "stupid", "ugly", "mediocre",
             "predictable", "tiresome")
_SUBJECTS = ("the film", "this movie", "the story", "the acting", "the script", "the ending", "the director 's work")
_FILLER = ("", "really", "quite", "truly", "often", "simply")


def toy_sentiment(n_train: int = 2000, n_dev: int = 400, seed: int = 0) -> dict[str, tuple[list[str], np.ndarray]]:
    """A small SST-2 look-alike: templated sentences such as "the script is really tedious" (0) or
    "the film is not dull" (1), a third of them negated, labelled by their sentiment word and
    the negation. Same return value as :func:`load_sst2`; the same ``seed`` gives the same data."""
    rng = np.random.default_rng(seed)

    def sentence() -> tuple[str, int]:
        label = int(rng.integers(2))
        negated = rng.random() < 1 / 3
        words = _POSITIVE if label != negated else _NEGATIVE            # "not <negative>" is positive
        adjective = words[rng.integers(len(words))]
        filler = _FILLER[rng.integers(len(_FILLER))]
        text = f"{_SUBJECTS[rng.integers(len(_SUBJECTS))]} is {'not ' if negated else ''}{filler} {adjective} ."
        return " ".join(text.split()), label

    def split(n):
        rows = [sentence() for _ in range(n)]
        return [s for s, _ in rows], np.asarray([y for _, y in rows], dtype=np.int64)

    return {"train": split(n_train), "dev": split(n_dev)}
