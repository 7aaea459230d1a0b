"""WNUT-17 "Emerging and Rare Entities": a named-entity data set of social-media text, in CoNLL form.

The three files (Derczynski et al. 2017, CC BY 4.0; the same ones Hugging Face's ``wnut_17`` uses)::

    wnut17train.conll          train        3,394 sentences  62,730 tokens  1,975 entities
    emerging.dev.conll         validation   1,009 sentences  15,733 tokens    836 entities
    emerging.test.annotated    test         1,287 sentences  23,394 tokens  1,079 entities

Each line is ``token<TAB>tag``; sentences are separated by an empty line (in the train file most
separators are a line holding only a tab, so any line that is blank once stripped separates).
Tags are BIO over six entity types: ``O``, and ``B-``/``I-`` + ``person``, ``location``, ``group``,
``corporation``, ``product``, ``creative-work``. Tokens are kept exactly as written (case,
``@user`` names, emoji, HTML entities split into ``&``, ``gt``, ``;``).

tinylm never downloads anything: get the files from ``WNUT17_URL`` (or the copy in
``shared/data/ner/wnut17/``) and pass their folder.

``toy_ner()`` builds a small, deterministic stand-in of the same form and labels from templates,
so that the example and its tests run without the real files.

Used by examples/bert_ner.py. Tests: tests/test_bert_examples.py, tests/test_examples.py.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np

__all__ = ["WNUT17_URL", "WNUT17_FILES", "LABELS", "LABEL_TO_ID", "read_conll", "load_wnut17", "toy_ner"]

WNUT17_URL = "https://github.com/leondz/emerging_entities_17"
WNUT17_FILES = {"train": "wnut17train.conll", "dev": "emerging.dev.conll", "test": "emerging.test.annotated"}
# The label ids of Hugging Face's wnut_17 data set, so that ids and checkpoints are interchangeable.
LABELS = ("O", "B-corporation", "I-corporation", "B-creative-work", "I-creative-work", "B-group", "I-group",
          "B-location", "I-location", "B-person", "I-person", "B-product", "I-product")
LABEL_TO_ID = {tag: i for i, tag in enumerate(LABELS)}


def read_conll(path) -> tuple[list[list[str]], list[list[str]]]:
    """``(sentences, tags)`` of a two-column CoNLL file: lists of sentences, each a list of tokens
    and the matching list of tags. A line blank after stripping ends a sentence."""
    path = pathlib.Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (expected a CoNLL file of 'token<TAB>tag' lines)")
    sentences, tags, words, labels = [], [], [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                if words:
                    sentences.append(words)
                    tags.append(labels)
                    words, labels = [], []
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise ValueError(f"{path.name}, line {number}: expected 'token<TAB>tag', got {line[:60]!r}")
            words.append(parts[0])
            labels.append(parts[1])
    if words:                                   # the last sentence, when the file ends without a blank line
        sentences.append(words)
        tags.append(labels)
    return sentences, tags


def load_wnut17(data_dir) -> dict[str, tuple[list[list[str]], list[list[str]]]]:
    """``{"train", "dev", "test"}`` -> ``(sentences, tags)`` from the folder holding the three files.

    Raises ``FileNotFoundError`` saying where to get them, and ``ValueError`` for a tag outside
    ``LABELS``.
    """
    data_dir = pathlib.Path(os.fspath(data_dir))
    missing = [name for name in WNUT17_FILES.values() if not (data_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"WNUT-17: {data_dir} lacks {missing}. tinylm does not download data: get "
                                f"{', '.join(WNUT17_FILES.values())} from {WNUT17_URL} and pass their folder")
    out = {}
    for split, name in WNUT17_FILES.items():
        sentences, tags = read_conll(data_dir / name)
        for i, row in enumerate(tags):
            for tag in row:
                if tag not in LABEL_TO_ID:
                    raise ValueError(f"{name}, sentence {i}: tag {tag!r} is not a WNUT-17 label; expected one of "
                                     f"{LABELS}")
        out[split] = (sentences, tags)
    return out


_TOY_ENTITIES = {
    "person": ["john", "maria lopez", "@paulwalk", "taylor swift", "obama", "sam", "lisa ray", "kevin hart"],
    "location": ["paris", "new york", "london", "texas", "tokyo", "the beach", "los angeles", "berlin"],
    "group": ["the beatles", "nasa", "the lakers", "un", "coldplay", "the senate"],
    "corporation": ["apple", "google", "starbucks", "amazon", "nike", "netflix"],
    "product": ["iphone", "xbox one", "galaxy s7", "windows 10", "kindle", "playstation"],
    "creative-work": ["star wars", "game of thrones", "thriller", "the hobbit", "frozen", "hamlet"],
}
_TOY_TEMPLATES = [
    "{person} is flying to {location} tomorrow",
    "just saw {person} at {location} lol",
    "my new {product} from {corporation} broke again",
    "watching {creative-work} with {person} tonight",
    "{group} played in {location} last night",
    "does anyone at {corporation} read these tweets ?",
    "i can not stop listening to {creative-work} by {group}",
    "@{person} thanks for the {product} !",
    "so tired today , going home",
    "rain again in {location} , no {product} signal",
]


def toy_ner(n_train: int = 600, n_dev: int = 150, n_test: int = 150, seed: int = 0):
    """A small WNUT-17 look-alike: templated social-media sentences ("just saw taylor swift at
    new york lol") with BIO tags over the six WNUT-17 types. Same return value as
    :func:`load_wnut17`; the same ``seed`` gives the same data."""
    rng = np.random.default_rng(seed)

    def sentence():
        words, tags = [], []
        for part in _TOY_TEMPLATES[rng.integers(len(_TOY_TEMPLATES))].split():
            kind = part.lstrip("@")
            if kind.startswith("{") and kind.endswith("}"):
                kind = kind[1:-1]
                names = _TOY_ENTITIES[kind]
                entity = names[rng.integers(len(names))].split()
                if part.startswith("@"):
                    entity = ["@" + "".join(entity).lstrip("@")]
                words += entity
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1)
            else:
                words.append(part)
                tags.append("O")
        return words, tags

    def split(n):
        rows = [sentence() for _ in range(n)]
        return [w for w, _ in rows], [t for _, t in rows]

    return {"train": split(n_train), "dev": split(n_dev), "test": split(n_test)}
