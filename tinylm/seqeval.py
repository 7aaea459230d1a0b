"""Entity-level precision, recall and F1 for sequence labelling (NER, chunking), computed as the
``seqeval`` package does in its default mode, which follows the CoNLL shared tasks' ``conlleval``.

Tags and entities
-----------------
Every token carries a tag: ``O`` (outside any entity) or ``<prefix>-<type>``, e.g. ``B-person``
(a bare prefix, ``B``, has the type ``_``). With BIO tags, ``B-`` begins an entity and ``I-``
continues it; ``E-`` (end) and ``S-`` (single) of the IOBES scheme are read too. An *entity* is
a maximal run of tokens ``(type, start, end)``, ``end`` inclusive, found left to right by
conlleval's rules. A chunk ENDS before the current token when the previous tag was ``E``/``S``,
or was ``B``/``I`` and the current one is ``B``/``S``/``O``, or the type changes; a chunk STARTS
at the current token when its tag is ``B``/``S``, or is ``I``/``E`` after ``O``/``E``/``S``, or
the type changes. So, unlike the strict IOB2 reading::

    O I-per I-per      one entity  (per, 1, 2): an I- after O starts an entity
    B-per I-loc        two entities (per, 0, 0) and (loc, 1, 1): a type change splits
    B-per B-per        two entities (per, 0, 0) and (per, 1, 1)

The sentences are joined into one stream with an ``O`` between them (entities never cross a
sentence boundary), so an entity is identified by its type and its position in the stream.

Scores
------
A predicted entity is correct only if an entity of the same type has exactly the same span in
``y_true``. Per type ``c``: ``TP_c`` correct predictions, ``pred_c`` predicted entities,
``true_c`` true entities (the support)::

    precision_c = TP_c / pred_c    recall_c = TP_c / true_c    F1_c = 2 P_c R_c / (P_c + R_c)

``average`` combines the types: ``"micro"`` (the default of the ``*_score`` functions) pools the
counts over all types first, ``"macro"`` is the unweighted mean of the per-type scores,
``"weighted"`` the mean weighted by support, and ``None`` returns one score per type, types in
sorted order. A ratio whose denominator is 0 is ``zero_division`` (0 or 1; seqeval's default
"warn" gives 0 after a warning, this module gives 0 silently); F1 is 0 when P + R = 0.
``accuracy_score`` is token-level: the fraction of tags predicted exactly.

Differences from seqeval, all on inputs where seqeval's answer is not meaningful: a tag that is
not ``O`` / ``B I E S`` + ``-type`` is an error here (seqeval warns and reads its first letter as
the prefix); the macro average with no entity at all is ``zero_division`` here (seqeval: nan);
an empty list of sentences is allowed (seqeval raises). seqeval's ``mode="strict"``
(scheme-checked entities) and ``suffix=True`` tags (``PER-B``) are not implemented.

Used by examples/bert_ner.py. Tests: tests/test_seqeval.py and, against the ``seqeval`` package
when it is installed, tests/test_seqeval_package.py.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["AVERAGES", "get_entities", "precision_recall_fscore_support", "precision_score", "recall_score",
           "f1_score", "accuracy_score", "classification_report"]

AVERAGES = ("micro", "macro", "weighted", None)
_PREFIXES = ("B", "I", "E", "S")


def _split_tag(name: str, tag) -> tuple[str, str]:
    """``"B-person"`` -> ``("B", "person")``; ``"O"`` and a bare prefix such as ``"B"`` get the
    placeholder type ``"_"`` (seqeval's)."""
    if not isinstance(tag, str):
        raise TypeError(f"{name}: expected a tag str, got {type(tag).__name__} {tag!r}")
    if tag == "O" or tag in _PREFIXES:
        return tag, "_"
    prefix, dash, kind = tag.partition("-")
    if prefix not in _PREFIXES or not dash or not kind:
        raise ValueError(f"{name}: expected a tag 'O' or B-/I-/E-/S- followed by a type (e.g. 'B-person'), "
                         f"got {tag!r}")
    return prefix, kind


def _sentences(name: str, y) -> list[Sequence[str]]:
    if isinstance(y, str) or not isinstance(y, Sequence):
        raise TypeError(f"{name}: expected a list of sentences, each a list of tags, got {type(y).__name__}")
    for i, s in enumerate(y):
        if isinstance(s, str) or not isinstance(s, Sequence):
            raise TypeError(f"{name}[{i}]: expected a sentence (a list of tags), got {type(s).__name__} {s!r}; "
                            f"wrap a single sentence in a list: [tags]")
    return list(y)


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    """Does an entity end just before the current token? (conlleval's endOfChunk)"""
    return (prev_tag in ("E", "S")
            or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
            or (prev_tag != "O" and prev_type != kind))


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    """Does an entity start at the current token? (conlleval's startOfChunk)"""
    return (tag in ("B", "S")
            or (tag in ("I", "E") and prev_tag in ("O", "E", "S"))
            or (tag != "O" and prev_type != kind))


def _entities_of_stream(tags: list[tuple[str, str]]) -> list[tuple[str, int, int]]:
    entities = []
    prev_tag, prev_type, begin = "O", "_", 0
    for i, (tag, kind) in enumerate(tags + [("O", "_")]):           # a final O closes the last entity
        if _chunk_ends(prev_tag, tag, prev_type, kind):
            entities.append((prev_type, begin, i - 1))
        if _chunk_starts(prev_tag, tag, prev_type, kind):
            begin = i
        prev_tag, prev_type = tag, kind
    return entities


def _stream(name: str, sentences: list[Sequence[str]]) -> list[tuple[str, str]]:
    """All sentences' (prefix, type) pairs in one list, an O after each sentence."""
    out = []
    for i, s in enumerate(sentences):
        out += [_split_tag(f"{name}[{i}][{j}]", t) for j, t in enumerate(s)]
        out.append(("O", "_"))
    return out


def get_entities(tags) -> list[tuple[str, int, int]]:
    """The entities ``(type, start, end)`` (``end`` inclusive) of one sentence's tags, or of a list of
    sentences (then positions count through the sentences joined with one ``O`` between them).

    ``get_entities(["B-per", "I-per", "O", "B-loc"])`` -> ``[("per", 0, 1), ("loc", 3, 3)]``.
    """
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise TypeError(f"tags: expected a list of tags or of sentences, got {type(tags).__name__}")
    if any(isinstance(t, Sequence) and not isinstance(t, str) for t in tags):     # a list of sentences
        return _entities_of_stream(_stream("tags", _sentences("tags", tags)))
    return _entities_of_stream([_split_tag(f"tags[{j}]", t) for j, t in enumerate(tags)])


def _counts(y_true, y_pred) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Entity types (sorted) and, per type, the correct, predicted and true entity counts."""
    true_s, pred_s = _sentences("y_true", y_true), _sentences("y_pred", y_pred)
    if len(true_s) != len(pred_s):
        raise ValueError(f"y_pred: expected {len(true_s)} sentences to match y_true, got {len(pred_s)}")
    for i, (t, p) in enumerate(zip(true_s, pred_s)):
        if len(t) != len(p):
            raise ValueError(f"y_pred[{i}]: expected {len(t)} tags to match y_true[{i}], got {len(p)}")
    true_ents = set(_entities_of_stream(_stream("y_true", true_s)))
    pred_ents = set(_entities_of_stream(_stream("y_pred", pred_s)))
    types = sorted({e[0] for e in true_ents | pred_ents})
    correct = true_ents & pred_ents                                 # same type, same span
    count = lambda ents: np.array([sum(e[0] == c for e in ents) for c in types], dtype=np.int64)  # noqa: E731
    return types, count(correct), count(pred_ents), count(true_ents)


def _divide(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    out = np.full(num.shape, float(zero_division))
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_fscore_support(y_true, y_pred, average: str | None = None, zero_division: float = 0):
    """``(precision, recall, f1, support)`` of the entities, ``support`` = number of true entities.

    ``y_true``, ``y_pred``: lists of sentences, each a list of tags, the same lengths.
    ``average=None`` gives arrays with one entry per entity type (sorted by name); otherwise floats
    and the total support (see the module docstring).
    """
    if average not in AVERAGES:
        raise ValueError(f"average: expected one of {AVERAGES}, got {average!r}")
    if isinstance(zero_division, bool) or zero_division not in (0, 1):
        raise ValueError(f"zero_division: expected 0 or 1, got {zero_division!r}")
    _, tp, predicted, actual = _counts(y_true, y_pred)
    support = actual
    if average == "micro":
        tp, predicted, actual = tp.sum(keepdims=True), predicted.sum(keepdims=True), actual.sum(keepdims=True)
    precision = _divide(tp, predicted, zero_division)
    recall = _divide(tp, actual, zero_division)
    denom = precision + recall
    f1 = _divide(2 * precision * recall, denom, 0.0)                 # 0 when P = R = 0
    if average is None:
        return precision, recall, f1, support
    total = int(support.sum())
    if average == "micro":
        return float(precision[0]), float(recall[0]), float(f1[0]), total
    if len(support) == 0:                                           # no entity anywhere
        z = float(zero_division)
        return z, z, z, 0
    if average == "weighted":
        if total == 0:                                              # entities predicted, none true
            return 0.0, float(zero_division), 0.0, 0
        return (float(np.average(precision, weights=support)), float(np.average(recall, weights=support)),
                float(np.average(f1, weights=support)), total)
    return float(np.mean(precision)), float(np.mean(recall)), float(np.mean(f1)), total


def precision_score(y_true, y_pred, average: str | None = "micro", zero_division: float = 0):
    """Of the predicted entities, the fraction exactly right (type and span)."""
    return precision_recall_fscore_support(y_true, y_pred, average, zero_division)[0]


def recall_score(y_true, y_pred, average: str | None = "micro", zero_division: float = 0):
    """Of the true entities, the fraction predicted exactly (type and span)."""
    return precision_recall_fscore_support(y_true, y_pred, average, zero_division)[1]


def f1_score(y_true, y_pred, average: str | None = "micro", zero_division: float = 0):
    """The harmonic mean of entity precision and recall (per type, or averaged per ``average``)."""
    return precision_recall_fscore_support(y_true, y_pred, average, zero_division)[2]


def accuracy_score(y_true, y_pred) -> float:
    """Token-level accuracy: the fraction of tags (over all sentences) predicted exactly."""
    true_s, pred_s = _sentences("y_true", y_true), _sentences("y_pred", y_pred)
    if [len(s) for s in true_s] != [len(s) for s in pred_s]:
        raise ValueError(f"y_pred: expected sentences of the lengths of y_true's, got "
                         f"{[len(s) for s in pred_s][:10]} for {[len(s) for s in true_s][:10]}")
    n = sum(len(s) for s in true_s)
    if n == 0:
        raise ValueError("y_true: expected at least one tag, got none")
    return sum(t == p for ts, ps in zip(true_s, pred_s) for t, p in zip(ts, ps)) / n


def classification_report(y_true, y_pred, digits: int = 2, output_dict: bool = False, zero_division: float = 0):
    """Per-type precision, recall, F1 and support, then the micro, macro and weighted averages.

    A text table laid out as seqeval's (``output_dict=True``: ``{name: {"precision", "recall",
    "f1-score", "support"}}`` with names the types and "micro avg", "macro avg", "weighted avg").
    """
    types = _counts(y_true, y_pred)[0]
    rows = list(zip(types, *precision_recall_fscore_support(y_true, y_pred, None, zero_division)))
    averages = [(f"{a} avg", *precision_recall_fscore_support(y_true, y_pred, a, zero_division))
                for a in ("micro", "macro", "weighted")]
    if output_dict:
        return {name: {"precision": float(p), "recall": float(r), "f1-score": float(f), "support": int(s)}
                for name, p, r, f, s in rows + averages}
    width = max([len(t) for t in types] + [len("weighted avg"), digits])
    def line(name, p, r, f, s):
        return f"{name:>{width}s}  {p:>9.{digits}f} {r:>9.{digits}f} {f:>9.{digits}f} {s:>9}"
    head = f"{'':>{width}s}  {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}\n\n"
    # seqeval's layout: a blank line after the header, after the types and at the end.
    return head + "\n".join([line(*row) for row in rows] + [""] + [line(*row) for row in averages] + [""])
