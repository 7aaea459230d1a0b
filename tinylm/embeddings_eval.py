"""Intrinsic evaluation of word vectors: word similarity and word analogies.

* Similarity: for each pair of a human-rated set (WordSim-353, its similarity and relatedness
  splits, SimLex-999, MEN), the cosine of the two vectors; the score is the Spearman rank
  correlation between cosines and human ratings (``scipy.stats.spearmanr``).
* Analogies (Mikolov et al.'s Google set, ``a b c d`` meaning a : b :: c : d): predict ``d`` as the
  word, other than ``a``, ``b``, ``c``, with the best 3CosAdd (or 3CosMul) score; the score is the
  accuracy, overall, per section, and split into semantic and syntactic (``gram*``) sections.

As is standard (word2vec.c's ``compute-accuracy``, gensim): words are compared case-insensitively
(a lower-cased query word finds the most frequent vocabulary word with that lower-case form), and a
pair or question with a word outside the vocabulary is skipped and counted in ``n_oov``. Analogy
answers are searched among the ``restrict_vocab`` most frequent words (gensim: 300,000), and
questions with a word outside them are skipped too.

The functions take any object with ``index_to_key`` (words, most frequent first) and ``vectors``
(V, C): tinylm's :class:`tinylm.models.keyed_vectors.KeyedVectors`, or gensim's.

Data: ``../shared/data/embeddings`` next to the repository (see its README), or the folder named
by the environment variable ``TINYLM_EMBEDDINGS_DATA``, or any folder with the same layout.
Tests: tests/test_embeddings_eval.py.
"""
from __future__ import annotations

import math
import os
import pathlib
from typing import NamedTuple

import numpy as np
from scipy.stats import spearmanr

__all__ = ["WordPair", "AnalogyQuestion", "SimilarityResult", "AnalogyResult", "SIMILARITY_SETS", "ANALOGY_SET",
           "default_data_dir", "read_wordsim353", "read_simlex999", "read_men", "read_analogies", "read_similarity_set",
           "unit_rows", "cosmul_scores", "evaluate_similarity", "evaluate_analogies", "evaluate_all", "format_results",
           "COSMUL_EPSILON"]

COSMUL_EPSILON = 1e-6            # keeps 3CosMul finite when cos'(d, a) = 0 (Levy & Goldberg's, gensim's value)

# name -> (path under the data folder, reader name)
SIMILARITY_SETS = {
    "wordsim353": ("wordsim353/combined.csv", "wordsim353"),
    "wordsim353_sim": ("wordsim353/wordsim_similarity_goldstandard.txt", "wordsim353"),
    "wordsim353_rel": ("wordsim353/wordsim_relatedness_goldstandard.txt", "wordsim353"),
    "simlex999": ("simlex999/SimLex-999.txt", "simlex999"),
    "men": ("men/MEN_dataset_natural_form_full", "men"),
}
ANALOGY_SET = "analogy/questions-words.txt"


class WordPair(NamedTuple):
    word1: str
    word2: str
    score: float     # the human rating (its scale differs between sets; Spearman does not care)


class AnalogyQuestion(NamedTuple):
    section: str     # e.g. "capital-common-countries", "gram1-adjective-to-adverb"
    a: str
    b: str
    c: str
    d: str           # the answer: a is to b as c is to d


class SimilarityResult(NamedTuple):
    spearman: float      # rank correlation of cosines and human scores (nan with fewer than 2 pairs)
    n_pairs: int         # pairs evaluated
    n_oov: int           # pairs skipped: a word is not in the vocabulary
    oov: list            # the skipped pairs, (word1, word2)


class AnalogyResult(NamedTuple):
    accuracy: float      # correct / n_questions (nan if none was evaluated)
    correct: int
    n_questions: int     # questions evaluated
    n_oov: int           # questions skipped: a word is not in the (restricted) vocabulary
    sections: dict       # section -> (correct, evaluated)
    semantic: float      # accuracy over the non-"gram" sections
    syntactic: float     # accuracy over the "gram*" sections


# ----------------------------------------------------------------------------------------------
# Reading the data sets
# ----------------------------------------------------------------------------------------------

def default_data_dir() -> pathlib.Path:
    """``$TINYLM_EMBEDDINGS_DATA``, else ``../shared/data/embeddings`` beside the repository."""
    env = os.environ.get("TINYLM_EMBEDDINGS_DATA")
    if env:
        return pathlib.Path(env)
    return pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "embeddings"


def _lines(path) -> list[str]:
    # Text mode: universal newlines, so the CRLF files need no special care.
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def read_wordsim353(path) -> list[WordPair]:
    """WordSim-353: ``combined.csv`` (header ``Word 1,Word 2,Human (mean)``) or the tab-separated
    similarity / relatedness split files (no header). All rows are kept, duplicates included."""
    pairs = []
    for n, line in enumerate(_lines(path), 1):
        fields = line.split("," if "," in line else "\t")
        if n == 1 and fields[0].lower().startswith("word"):
            continue                                     # the CSV header
        pairs.append(_pair(path, n, fields[0], fields[1], fields[2]))
    return pairs


def read_simlex999(path) -> list[WordPair]:
    """SimLex-999: tab-separated with a header; the score is column 4, ``SimLex999`` (0 to 10)."""
    rows = [line.split("\t") for line in _lines(path)]
    if not rows or rows[0][:2] != ["word1", "word2"] or len(rows[0]) < 4 or rows[0][3] != "SimLex999":
        raise ValueError(f"{path}: expected SimLex-999's header 'word1 word2 POS SimLex999 ...'")
    return [_pair(path, n, r[0], r[1], r[3]) for n, r in enumerate(rows[1:], 2)]


def read_men(path) -> list[WordPair]:
    """MEN, natural form: ``word1 word2 score`` separated by spaces, no header (scores 0 to 50)."""
    return [_pair(path, n, *line.split()[:3]) for n, line in enumerate(_lines(path), 1)]


def _pair(path, n, w1, w2, score) -> WordPair:
    try:
        return WordPair(w1, w2, float(score))
    except ValueError:
        raise ValueError(f"{path}: line {n}: the score {score!r} is not a number") from None


def read_similarity_set(name: str, data_dir=None) -> list[WordPair]:
    """One of :data:`SIMILARITY_SETS` by name, from ``data_dir`` (default: :func:`default_data_dir`)."""
    if name not in SIMILARITY_SETS:
        raise ValueError(f"name: expected one of {tuple(SIMILARITY_SETS)}, got {name!r}")
    rel, reader = SIMILARITY_SETS[name]
    path = pathlib.Path(data_dir or default_data_dir()) / rel
    return {"wordsim353": read_wordsim353, "simlex999": read_simlex999, "men": read_men}[reader](path)


def read_analogies(path) -> list[AnalogyQuestion]:
    """The Google analogy set: ``: section`` lines, then questions ``a b c d`` (mixed case, kept)."""
    questions, section = [], None
    for n, line in enumerate(_lines(path), 1):
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        words = line.split()
        if len(words) != 4 or section is None:
            raise ValueError(f"{path}: line {n}: expected 'a b c d' after a ': section' line, got {line!r}")
        questions.append(AnalogyQuestion(section, *words))
    return questions


# ----------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------

def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row divided by its Euclidean norm (an all-zero row stays zero). Shapes: (..., C) -> (..., C)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(vectors.dtype).tiny)


def cosmul_scores(unit: np.ndarray, qpos: np.ndarray, qneg: np.ndarray) -> np.ndarray:
    """3CosMul of every candidate ``d``: ``prod_p cos'(d, p) / (prod_n cos'(d, n) + 1e-6)``, with
    ``cos' = (1 + cos) / 2`` in [0, 1] (Levy & Goldberg 2014).

    Shapes: unit (V, C), qpos (..., P, C), qneg (..., M, C), all unit rows -> (..., V).
    """
    cpos = (1 + qpos @ unit.T) / 2                                         # (..., P, V)
    cneg = (1 + qneg @ unit.T) / 2                                         # (..., M, V)
    return cpos.prod(axis=-2) / (cneg.prod(axis=-2) + COSMUL_EPSILON)


def _folded_index(kv, lowercase: bool, limit: int | None = None) -> dict:
    """word -> row, over the first ``limit`` words; lower-cased keys map to the most frequent variant."""
    words = kv.index_to_key[:limit]
    if not lowercase:
        return {w: i for i, w in enumerate(words)}
    index: dict = {}
    for i, w in enumerate(words):
        index.setdefault(w.lower(), i)                   # words come most frequent first
    return index


def evaluate_similarity(kv, pairs, *, lowercase: bool = True) -> SimilarityResult:
    """Spearman correlation between the cosine similarities of ``pairs`` and their human scores."""
    index = _folded_index(kv, lowercase)
    fold = str.lower if lowercase else (lambda w: w)
    found, oov = [], []
    for p in pairs:
        i, j = index.get(fold(p.word1)), index.get(fold(p.word2))
        if i is None or j is None:
            oov.append((p.word1, p.word2))
        else:
            found.append((i, j, p.score))
    if len(found) < 2:
        return SimilarityResult(math.nan, len(found), len(oov), oov)
    rows_i, rows_j, human = (np.array(c) for c in zip(*found))
    vectors = np.asarray(kv.vectors, np.float64)
    cosine = (unit_rows(vectors[rows_i]) * unit_rows(vectors[rows_j])).sum(axis=1)     # (P,)
    if np.ptp(cosine) == 0 or np.ptp(human) == 0:
        return SimilarityResult(math.nan, len(found), len(oov), oov)    # a rank correlation needs variation
    return SimilarityResult(float(spearmanr(cosine, human).statistic), len(found), len(oov), oov)


def evaluate_analogies(kv, questions, *, method: str = "3cosadd", restrict_vocab: int = 300_000,
                       lowercase: bool = True) -> AnalogyResult:
    """Accuracy on analogy ``questions``: the answer is the best-scoring word other than a, b, c
    among the first ``restrict_vocab`` words. ``method``: "3cosadd" or "3cosmul"."""
    if method not in ("3cosadd", "3cosmul"):
        raise ValueError(f"method: expected '3cosadd' or '3cosmul', got {method!r}")
    if isinstance(restrict_vocab, bool) or not isinstance(restrict_vocab, int) or restrict_vocab < 1:
        raise ValueError(f"restrict_vocab: expected a positive int, got {restrict_vocab!r}")
    index = _folded_index(kv, lowercase, restrict_vocab)
    fold = str.lower if lowercase else (lambda w: w)
    ids, sections, n_oov = [], [], 0
    for q in questions:
        row = [index.get(fold(w)) for w in (q.a, q.b, q.c, q.d)]
        if None in row:
            n_oov += 1
        else:
            ids.append(row)
            sections.append(q.section)
    unit = unit_rows(np.asarray(kv.vectors[:restrict_vocab], np.float32))          # (V', C)
    ids = np.array(ids, np.int64).reshape(-1, 4)                                   # (Q, 4) a b c d
    hits = np.zeros(len(ids), bool)
    batch = max(1, 2**22 // max(len(unit), 1))           # keeps the (batch, V') score matrix small
    for s in range(0, len(ids), batch):
        a, b, c, d = ids[s:s + batch].T
        if method == "3cosadd":
            scores = (unit[b] - unit[a] + unit[c]) @ unit.T                        # (Q, V') d . (b - a + c)
        else:
            scores = cosmul_scores(unit, np.stack([unit[b], unit[c]], 1), unit[a][:, None])   # (Q, V')
        rows = np.arange(len(a))
        for w in (a, b, c):
            scores[rows, w] = -np.inf                    # the question words are not answers
        hits[s:s + batch] = scores.argmax(axis=1) == d
    per_section: dict = {}
    for sec, hit in zip(sections, hits):
        good, total = per_section.get(sec, (0, 0))
        per_section[sec] = (good + int(hit), total + 1)
    syntactic = np.array([sec.startswith("gram") for sec in sections], bool)
    return AnalogyResult(_mean(hits), int(hits.sum()), len(hits), n_oov, per_section,
                         _mean(hits[~syntactic]), _mean(hits[syntactic]))


def _mean(hits: np.ndarray) -> float:
    return float(hits.mean()) if hits.size else math.nan


def evaluate_all(kv, data_dir=None, *, analogy_method: str = "3cosadd", restrict_vocab: int = 300_000,
                 similarity_sets=("wordsim353", "wordsim353_sim", "wordsim353_rel", "simlex999", "men"),
                 analogies: bool = True) -> dict:
    """Every similarity set named and (if ``analogies``) the analogy set: ``{name: result}``."""
    data_dir = pathlib.Path(data_dir or default_data_dir())
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data_dir: {data_dir} is not a folder; point TINYLM_EMBEDDINGS_DATA or "
                                "data_dir at shared/data/embeddings")
    results = {name: evaluate_similarity(kv, read_similarity_set(name, data_dir)) for name in similarity_sets}
    if analogies:
        results["analogy"] = evaluate_analogies(kv, read_analogies(data_dir / ANALOGY_SET),
                                                method=analogy_method, restrict_vocab=restrict_vocab)
    return results


def format_results(columns: dict) -> str:
    """A text table: one row per data set, one column per model; ``columns`` is
    ``{model name: evaluate_all(...) result}``. Similarity rows show Spearman and (pairs used/total),
    analogy rows accuracy and (questions used/total)."""
    names = list(columns)
    sets = list(dict.fromkeys(s for res in columns.values() for s in res))
    rows = []
    for s in sets:
        cells = []
        for m in names:
            r = columns[m].get(s)
            if r is None:
                cells.append("")
            elif isinstance(r, SimilarityResult):
                cells.append(f"{r.spearman:.3f} ({r.n_pairs}/{r.n_pairs + r.n_oov})")
            else:
                cells.append(f"{r.accuracy:.3f} ({r.n_questions}/{r.n_questions + r.n_oov})")
        label = s + (" (acc.)" if any(isinstance(columns[m].get(s), AnalogyResult) for m in names)
                     else " (Spearman)")
        rows.append([label] + cells)
        if any(isinstance(columns[m].get(s), AnalogyResult) for m in names):
            for part in ("semantic", "syntactic"):
                rows.append([f"  {part}"] + [f"{getattr(columns[m][s], part):.3f}" if s in columns[m] else ""
                                             for m in names])
    header = ["data set"] + names
    widths = [max(len(str(r[k])) for r in rows + [header]) for k in range(len(header))]
    fmt = lambda r: "  ".join(str(c).ljust(w) if k == 0 else str(c).rjust(w) for k, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])
