"""``KeyedVectors``: a word list with one vector per word, and the queries people run on them.

Shared by :class:`tinylm.models.word2vec.Word2Vec` and :class:`tinylm.models.glove.GloVe` (their
``.wv``). Names and return values follow gensim's ``KeyedVectors``, so code can switch:

* ``wv["king"]`` the vector, ``"king" in wv``, ``len(wv)``, ``wv.index_to_key``, ``wv.key_to_index``;
* ``wv.similarity(a, b)``: the cosine of the angle between the two vectors;
* ``wv.most_similar("king", topn=10)``: the nearest words by cosine, the word itself excluded;
* ``wv.most_similar(positive=["king", "woman"], negative=["man"])``: analogies ("man is to king as
  woman is to ?"), with ``method="3cosadd"`` (default) or ``"3cosmul"`` (Levy & Goldberg 2014);
* ``wv.save_word2vec_format(path)`` / ``KeyedVectors.load_word2vec_format(path)``: the text format of
  word2vec.c (a header line ``V C``, then one line ``word x_1 ... x_C`` per word), which gensim reads.

The analogy scores. With unit vectors ``a``, ``b``, ``c`` (positive ``b``, ``c``; negative ``a``)
and every candidate unit vector ``d``:

    3CosAdd:  cos(d, b) - cos(d, a) + cos(d, c) = d . (b - a + c)
    3CosMul:  cos'(d, b) cos'(d, c) / (cos'(d, a) + 1e-6),   cos' = (1 + cos) / 2 in [0, 1]

3CosAdd ranks by ``d . (b - a + c)``; like gensim, the score returned is the cosine between ``d``
and ``b - a + c`` (the same ranking, and for a single positive word it is the plain cosine
similarity). The query words themselves are never returned. (The scoring functions live in
:mod:`tinylm.embeddings_eval`, which evaluates analogies in batches with the same formulas.) Unknown words raise
:class:`UnknownWordError`, a ``KeyError`` (as in gensim) that is also a ``ValueError``.

Vectors live on the host (NumPy): these are lookups, not a training path.
Tests: tests/test_keyed_vectors.py, tests/test_gensim_interop.py.
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

from tinylm._checks import check_choice, check_positive_int, check_shape
from tinylm.embeddings_eval import cosmul_scores, unit_rows

__all__ = ["KeyedVectors", "UnknownWordError", "ANALOGY_METHODS"]

ANALOGY_METHODS = ("3cosadd", "3cosmul")


class UnknownWordError(KeyError, ValueError):
    """A query named a word that is not in the vocabulary."""

    def __str__(self) -> str:    # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class KeyedVectors:
    """Words ``index_to_key`` (V,) and their vectors ``vectors`` (V, C), row i for word i.

    ``vectors`` is kept as given (not copied): a model's ``.wv`` sees its training updates.
    """

    def __init__(self, index_to_key: Sequence[str], vectors: np.ndarray):
        if not isinstance(vectors, np.ndarray) or vectors.dtype.kind != "f":
            raise TypeError(f"vectors: expected a floating-point NumPy array (V, C), got "
                            f"{getattr(vectors, 'dtype', type(vectors).__name__)}")
        keys = list(index_to_key)
        check_shape("vectors", vectors, (len(keys), "C"))
        bad = next((k for k in keys if not isinstance(k, str)), None)
        if bad is not None:
            raise TypeError(f"index_to_key: every word must be a str, got {type(bad).__name__} {bad!r}")
        self.index_to_key = keys
        self.key_to_index = {k: i for i, k in enumerate(keys)}
        if len(self.key_to_index) != len(keys):
            dup = next(k for i, k in enumerate(keys) if self.key_to_index[k] != i)
            raise ValueError(f"index_to_key: words must be unique, {dup!r} appears more than once")
        self.vectors = vectors

    # --- lookups ---
    @property
    def vector_size(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, word) -> bool:
        return word in self.key_to_index

    def get_index(self, word: str) -> int:
        """The row of ``word``; :class:`UnknownWordError` if it is not in the vocabulary."""
        try:
            return self.key_to_index[word]
        except (KeyError, TypeError):
            raise UnknownWordError(f"word {word!r} is not in the vocabulary ({len(self)} words)") from None

    def __getitem__(self, words):
        """``wv["king"]`` -> (C,); ``wv[["king", "queen"]]`` -> (2, C)."""
        if isinstance(words, str):
            return self.vectors[self.get_index(words)]
        return self.vectors[[self.get_index(w) for w in words]]

    def get_normed_vectors(self) -> np.ndarray:
        """Every vector scaled to unit length (V, C) (computed fresh: the vectors may be training)."""
        return unit_rows(self.vectors)

    def __repr__(self) -> str:
        return f"KeyedVectors({len(self)} words, vector_size={self.vector_size}, dtype={self.vectors.dtype})"

    # --- similarity queries ---
    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of the vectors of ``w1`` and ``w2``, in [-1, 1]."""
        u = unit_rows(self.vectors[[self.get_index(w1), self.get_index(w2)]].astype(np.float64))
        return float(u[0] @ u[1])

    def most_similar(self, positive=None, negative=None, topn: int = 10, *, method: str = "3cosadd",
                     restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """The ``topn`` words closest to ``positive`` and away from ``negative``: ``[(word, score)]``.

        ``positive`` / ``negative``: a word or a list of words (``most_similar("king")`` is the plain
        nearest-neighbour query). ``method``: "3cosadd" or "3cosmul" (see the module docstring).
        ``restrict_vocab``: search only the first ``restrict_vocab`` words (the most frequent, for
        a model's vocabulary). The query words are never returned.
        """
        pos, neg = _as_word_list("positive", positive), _as_word_list("negative", negative)
        check_choice("method", method, ANALOGY_METHODS)
        check_positive_int("topn", topn)
        if not pos and not neg:
            raise ValueError("most_similar: give at least one word in positive or negative")
        limit = len(self) if restrict_vocab is None else check_positive_int("restrict_vocab", restrict_vocab)
        query = [self.get_index(w) for w in pos + neg]
        unit = self.get_normed_vectors()[:limit]                          # (V', C)
        qpos = unit_rows(self.vectors[query[:len(pos)]])                   # (P, C)
        qneg = unit_rows(self.vectors[query[len(pos):]])                   # (M, C)
        if method == "3cosadd":
            target = unit_rows(qpos.sum(0) - qneg.sum(0))                  # (C,)   b - a + c, unit length
            scores = unit @ target                                         # (V',)  cos(d, b - a + c)
        else:
            scores = cosmul_scores(unit, qpos, qneg)                       # (V',)
        scores = scores.astype(np.float64)
        scores[[q for q in query if q < limit]] = -np.inf                  # never return a query word
        k = min(topn, limit)
        best = np.argpartition(-scores, k - 1)[:k] if k < limit else np.arange(limit)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.index_to_key[i], float(scores[i])) for i in best if np.isfinite(scores[i])]

    def most_similar_cosmul(self, positive=None, negative=None, topn: int = 10,
                            restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """gensim's name for ``most_similar(..., method="3cosmul")``."""
        return self.most_similar(positive, negative, topn, method="3cosmul", restrict_vocab=restrict_vocab)

    # --- word2vec text format ---
    def save_word2vec_format(self, path: str | os.PathLike) -> None:
        """Write the word2vec.c text format: ``V C``, then ``word x_1 ... x_C`` per line (UTF-8).

        Floats are written with 9 significant digits, which restores a float32 exactly.
        """
        bad = next((w for w in self.index_to_key if not w or any(ch.isspace() for ch in w)), None)
        if bad is not None:
            raise ValueError(f"save_word2vec_format: word {bad!r} is empty or contains whitespace, "
                             "which the text format cannot represent")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(f"{len(self)} {self.vector_size}\n")
            for word, row in zip(self.index_to_key, self.vectors):
                f.write(word + " " + " ".join(f"{v:.9g}" for v in row.tolist()) + "\n")

    @classmethod
    def load_word2vec_format(cls, path: str | os.PathLike, dtype=np.float32) -> KeyedVectors:
        """Read the word2vec.c text format (as written by :meth:`save_word2vec_format`, word2vec.c
        ``-binary 0`` or gensim); a malformed line raises a ``ValueError`` naming its number."""
        with open(path, encoding="utf-8") as f:
            header = f.readline().split()
            if len(header) != 2 or not all(h.isdigit() for h in header):
                raise ValueError(f"{path}: line 1 must be the header 'V C' (two integers), got {' '.join(header)!r}")
            V, C = int(header[0]), int(header[1])
            words, vectors = [], np.empty((V, C), dtype=dtype)
            for i, line in enumerate(f):
                parts = line.rstrip("\n").rstrip(" ").split(" ")
                if i >= V:
                    if line.strip():
                        raise ValueError(f"{path}: more than the {V} words the header announces (line {i + 2})")
                    continue
                if len(parts) != C + 1:
                    raise ValueError(f"{path}: line {i + 2} has {len(parts) - 1} numbers after the word, "
                                     f"the header says C={C}")
                words.append(parts[0])
                vectors[i] = [float(x) for x in parts[1:]]
        if len(words) != V:
            raise ValueError(f"{path}: the header announces {V} words, the file has {len(words)}")
        return cls(words, vectors)


def _as_word_list(name: str, words) -> list[str]:
    if words is None:
        return []
    if isinstance(words, str):
        return [words]
    if not isinstance(words, Iterable):
        raise TypeError(f"{name}: expected a word or a list of words, got {type(words).__name__}")
    words = list(words)
    bad = next((w for w in words if not isinstance(w, str)), None)
    if bad is not None:
        raise TypeError(f"{name}: expected words (str), got {type(bad).__name__} {bad!r}")
    return words
