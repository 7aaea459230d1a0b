import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.metrics import (accuracy_score, confusion_matrix, f1_score, precision_recall_fscore, precision_score,
                            recall_score)

# Counted by hand: TP = 2 (positions 0, 4), FP = 1 (3), FN = 1 (1), TN = 1 (2).
Y_TRUE, Y_PRED = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]


def test_binary_by_hand():
    assert accuracy_score(Y_TRUE, Y_PRED) == pytest.approx(3 / 5)
    assert accuracy_score(Y_TRUE, Y_PRED, normalize=False) == 3
    assert precision_score(Y_TRUE, Y_PRED) == pytest.approx(2 / 3)
    assert recall_score(Y_TRUE, Y_PRED) == pytest.approx(2 / 3)
    assert f1_score(Y_TRUE, Y_PRED) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED), [[1, 1], [1, 2]])   # [[TN, FP], [FN, TP]]
    # the negative class as the positive label: TP = 1, FP = 1, FN = 1
    assert precision_score(Y_TRUE, Y_PRED, pos_label=0) == pytest.approx(1 / 2)


def test_multiclass_by_hand():
    t, p = [0, 1, 2, 2, 1], [0, 2, 2, 1, 1]
    # class 0: P = R = 1; class 1: TP 1, FP 1, FN 1; class 2: TP 1, FP 1, FN 1
    prec, rec, f1 = precision_recall_fscore(t, p, average=None)
    np.testing.assert_allclose(prec, [1, 0.5, 0.5])
    np.testing.assert_allclose(rec, [1, 0.5, 0.5])
    np.testing.assert_allclose(f1, [1, 0.5, 0.5])
    assert f1_score(t, p, average="macro") == pytest.approx(2 / 3)
    assert precision_score(t, p, average="micro") == pytest.approx(3 / 5)
    np.testing.assert_array_equal(confusion_matrix(t, p), [[1, 0, 0], [0, 1, 1], [0, 1, 1]])
    np.testing.assert_array_equal(confusion_matrix(t, p, labels=[2, 0]), [[1, 0], [0, 1]])


def test_strings_bools_and_arrays():
    assert precision_score(["a", "b", "b"], ["b", "b", "a"], pos_label="b") == pytest.approx(1 / 2)
    assert recall_score(np.array([True, False]), np.array([True, True]), pos_label=True) == 1.0
    assert accuracy_score(np.array([1.0, 0.0]), np.array([1, 1])) == 0.5


def test_zero_division():
    assert precision_score([1, 0], [0, 0]) == 0.0            # nothing predicted positive: 0 / 0
    assert precision_score([1, 0], [0, 0], zero_division=1.0) == 1.0
    assert recall_score([0, 0], [1, 0]) == 0.0               # no true positives exist
    assert f1_score([0, 0], [0, 0], zero_division=1.0) == 1.0


label_pairs = st.integers(1, 40).flatmap(lambda n: st.tuples(st.lists(st.integers(0, 3), min_size=n, max_size=n),
                                                            st.lists(st.integers(0, 3), min_size=n, max_size=n)))


@given(pair=label_pairs)
def test_invariants(pair):
    t, p = pair
    acc = accuracy_score(t, p)
    C = confusion_matrix(t, p)
    assert C.sum() == len(t) and np.trace(C) == round(acc * len(t))
    for score in precision_recall_fscore(t, p, average="micro"):
        assert score == pytest.approx(acc)                    # single-label: micro P = R = F1 = accuracy
    per_class = precision_recall_fscore(t, p, average=None)
    macro = precision_recall_fscore(t, p, average="macro")
    for per, mac in zip(per_class, macro):
        assert mac == pytest.approx(per.mean())
    prec, rec, f1 = per_class
    both = (prec > 0) & (rec > 0)
    np.testing.assert_allclose(f1[both], 2 * prec[both] * rec[both] / (prec[both] + rec[both]))


@given(pair=st.integers(1, 30).flatmap(lambda n: st.tuples(st.lists(st.integers(0, 1), min_size=n, max_size=n),
                                                          st.lists(st.integers(0, 1), min_size=n, max_size=n))))
def test_binary_is_the_positive_class_entry(pair):
    t, p = pair
    per_class = precision_recall_fscore(t, p, average=None, labels=[0, 1])
    binary = precision_recall_fscore(t, p, average="binary")
    for per, b in zip(per_class, binary):
        assert b == pytest.approx(per[1])


@pytest.mark.parametrize("bad, match", [
    (lambda: accuracy_score([1, 0, 1], [1, 0]), r"y_pred: expected 3 labels to match y_true, got 2"),
    (lambda: precision_score([0, 1, 2], [0, 1, 2]), r"average='binary' needs at most two classes, got 3"),
    (lambda: f1_score([0, 1], [0, 1], average="weighted"), r"average: expected one of"),
    (lambda: recall_score([[0, 1]], [[0, 1]]), r"y_true: expected a 1-D array of class labels, got shape \(1, 2\)"),
    (lambda: accuracy_score([1, 0], [0.7, 0.2]), r"y_pred: expected class labels, got non-integer floats"),
    (lambda: precision_score([0, 2], [2, 0]), r"pos_label: 1 is not one of the labels \[0, 2\]"),
    (lambda: accuracy_score([], []), r"y_true: expected at least one sample"),
    (lambda: confusion_matrix([0], [0], labels=[0, 0]), r"labels: expected distinct labels"),
    (lambda: f1_score([0], [0], zero_division=2), r"zero_division: expected a number in \[0, 1\]"),
])
def test_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()
