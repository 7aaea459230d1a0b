"""Classification metrics with scikit-learn's names, arguments and results.

``accuracy_score``, ``precision_score``, ``recall_score``, ``f1_score``, ``confusion_matrix``,
for single-label classification: ``y_true`` and ``y_pred`` are 1-D arrays (or lists) of class
labels of the same length (ints, bools or strings; NumPy or CuPy arrays). For class ``c``,
counting samples:

    TP_c = #{true = c and pred = c}     FP_c = #{true != c and pred = c}     FN_c = #{true = c and pred != c}
    precision_c = TP_c / (TP_c + FP_c)      recall_c = TP_c / (TP_c + FN_c)
    F1_c = 2 precision_c recall_c / (precision_c + recall_c) = 2 TP_c / (2 TP_c + FP_c + FN_c)

``average`` chooses how the classes combine:

* ``"binary"`` (default): the scores of class ``pos_label`` alone; the labels present must be
  at most two.
* ``"micro"``: pool TP, FP, FN over all classes first. For single-label data every error is one
  FP and one FN, so micro precision = micro recall = micro F1 = accuracy.
* ``"macro"``: the unweighted mean of the per-class scores (every class counts the same,
  however rare).
* ``None``: the per-class scores, as an array in the order of ``labels`` (default: the sorted
  labels present in ``y_true`` or ``y_pred``).

A score whose denominator is 0 (precision of a class never predicted, recall of a class absent
from ``y_true``) is ``zero_division`` (default 0.0). scikit-learn also gives 0.0 there, but warns
first; this module does not warn.

Tests: tests/test_metrics.py (and tests/test_sklearn_metrics.py against scikit-learn when it is installed).
"""
from __future__ import annotations

import numpy as np

from tinylm._checks import is_real
from tinylm.backend import to_numpy

__all__ = ["AVERAGES", "accuracy_score", "confusion_matrix", "precision_recall_fscore", "precision_score",
           "recall_score", "f1_score"]

AVERAGES = ("binary", "micro", "macro", None)


def _labels_1d(name: str, y) -> np.ndarray:
    a = np.asarray(to_numpy(y) if hasattr(y, "shape") else y)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of class labels, got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{name}: expected class labels, got non-integer floats (threshold probabilities "
                             f"first, e.g. (p > 0.5).astype(int))")
        a = a.astype(np.int64)
    return a


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels_1d("y_true", y_true), _labels_1d("y_pred", y_pred)
    if len(t) != len(p):
        raise ValueError(f"y_pred: expected {len(t)} labels to match y_true, got {len(p)}")
    if len(t) == 0:
        raise ValueError("y_true: expected at least one sample, got none")
    return t, p


def accuracy_score(y_true, y_pred, normalize: bool = True):
    """The fraction of samples with ``y_pred == y_true`` (their count with ``normalize=False``)."""
    t, p = _pair(y_true, y_pred)
    correct = int(np.sum(t == p))
    return correct / len(t) if normalize else correct


def confusion_matrix(y_true, y_pred, labels=None) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``labels[i]`` predicted as ``labels[j]``.

    Rows are true classes, columns predictions (scikit-learn's orientation); for binary labels
    [0, 1] that is ``[[TN, FP], [FN, TP]]``. ``labels`` defaults to the sorted labels present;
    samples whose labels are not in ``labels`` are left out. Returns an int64 (K, K) array.
    """
    t, p = _pair(y_true, y_pred)
    labels = np.unique(np.concatenate([t, p])) if labels is None else _labels_1d("labels", labels)
    if len(labels) == 0:
        raise ValueError("labels: expected at least one label, got none")
    if len(np.unique(labels)) != len(labels):
        raise ValueError(f"labels: expected distinct labels, got {labels.tolist()}")
    index = {lab: i for i, lab in enumerate(labels.tolist())}
    K = len(labels)
    ti = np.array([index.get(v, -1) for v in t.tolist()], dtype=np.int64)
    pi = np.array([index.get(v, -1) for v in p.tolist()], dtype=np.int64)
    keep = (ti >= 0) & (pi >= 0)
    return np.bincount(ti[keep] * K + pi[keep], minlength=K * K).reshape(K, K).astype(np.int64)


def _divide(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    """num / den elementwise, ``zero_division`` where den == 0 (without a 0/0 warning)."""
    out = np.full(num.shape, float(zero_division))
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_fscore(y_true, y_pred, average: str | None = "binary", pos_label=1, labels=None,
                            zero_division: float = 0.0):
    """``(precision, recall, f1)`` under one ``average`` (see the module docstring); floats, or
    arrays of one score per label for ``average=None``. The three functions below call this."""
    if average not in AVERAGES:
        raise ValueError(f"average: expected one of {AVERAGES}, got {average!r}")
    if not (is_real(zero_division) and 0 <= zero_division <= 1):
        raise ValueError(f"zero_division: expected a number in [0, 1], got {zero_division!r}")
    t, p = _pair(y_true, y_pred)
    present = np.unique(np.concatenate([t, p]))
    if average == "binary":
        if len(present) > 2:
            raise ValueError(f"average='binary' needs at most two classes, got {len(present)} "
                             f"({present.tolist()[:10]}); use average='micro', 'macro' or None")
        if len(present) == 2 and pos_label not in present.tolist():
            raise ValueError(f"pos_label: {pos_label!r} is not one of the labels {present.tolist()}")
        labels = np.asarray([pos_label])
    elif labels is None:
        labels = present
    else:
        labels = _labels_1d("labels", labels)
    every = np.unique(np.concatenate([present, labels]))         # sorted: rows found by searchsorted
    C = confusion_matrix(t, p, labels=every)
    rows = np.searchsorted(every, labels)
    tp = np.diag(C)[rows].astype(np.float64)                      # (K,) per requested label
    predicted = C.sum(axis=0)[rows].astype(np.float64)            # TP + FP: column sums
    actual = C.sum(axis=1)[rows].astype(np.float64)               # TP + FN: row sums
    if average == "micro":
        tp, predicted, actual = tp.sum(keepdims=True), predicted.sum(keepdims=True), actual.sum(keepdims=True)
    precision = _divide(tp, predicted, zero_division)
    recall = _divide(tp, actual, zero_division)
    f1 = _divide(2 * tp, predicted + actual, zero_division)        # 2TP / (2TP + FP + FN)
    if average is None:
        return precision, recall, f1
    if average == "macro":
        return float(precision.mean()), float(recall.mean()), float(f1.mean())
    return float(precision[0]), float(recall[0]), float(f1[0])


def precision_score(y_true, y_pred, average: str | None = "binary", pos_label=1, labels=None,
                    zero_division: float = 0.0):
    """Of the samples predicted ``c``, the fraction truly ``c``: TP / (TP + FP), averaged per ``average``."""
    return precision_recall_fscore(y_true, y_pred, average, pos_label, labels, zero_division)[0]


def recall_score(y_true, y_pred, average: str | None = "binary", pos_label=1, labels=None,
                 zero_division: float = 0.0):
    """Of the samples truly ``c``, the fraction predicted ``c``: TP / (TP + FN), averaged per ``average``."""
    return precision_recall_fscore(y_true, y_pred, average, pos_label, labels, zero_division)[1]


def f1_score(y_true, y_pred, average: str | None = "binary", pos_label=1, labels=None,
             zero_division: float = 0.0):
    """The harmonic mean of precision and recall, 2 TP / (2 TP + FP + FN), averaged per ``average``."""
    return precision_recall_fscore(y_true, y_pred, average, pos_label, labels, zero_division)[2]
