"""tinylm.seqeval: entity extraction by conlleval's rules, entity-level P/R/F1, errors.

Expected values are worked out by hand in the comments; the cross-check against the seqeval
package itself is tests/test_seqeval_package.py.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm import seqeval
from tinylm.seqeval import (accuracy_score, classification_report, f1_score, get_entities,
                            precision_recall_fscore_support, precision_score, recall_score)

TYPES = ("per", "loc", "creative-work")


# ---------------------------------------------------------------- entities

@pytest.mark.parametrize("tags, expected", [
    (["B-per", "I-per", "O", "B-loc"], [("per", 0, 1), ("loc", 3, 3)]),
    (["O", "I-per", "I-per"], [("per", 1, 2)]),                     # I- after O starts an entity
    (["B-per", "I-loc"], [("per", 0, 0), ("loc", 1, 1)]),           # a type change splits
    (["B-per", "B-per"], [("per", 0, 0), ("per", 1, 1)]),           # B- always starts a new one
    (["I-per", "B-per", "I-per", "I-per"], [("per", 0, 0), ("per", 1, 3)]),
    (["B-creative-work", "I-creative-work"], [("creative-work", 0, 1)]),   # a dash inside the type
    (["S-x", "B-x", "E-x", "I-x", "E-x"], [("x", 0, 0), ("x", 1, 2), ("x", 3, 4)]),   # IOBES
    (["B", "I", "O"], [("_", 0, 1)]),                               # bare prefixes: type "_"
    (["O", "O"], []),
    ([], []),
])
def test_get_entities(tags, expected):
    assert get_entities(tags) == expected


def test_entities_do_not_cross_sentences():
    # Joined as B I O | I O: the O between the sentences ends the first entity.
    assert get_entities([["B-x", "I-x"], ["I-x"]]) == [("x", 0, 1), ("x", 3, 3)]


spans = st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4), st.sampled_from(TYPES)), max_size=6)


@given(spans, st.integers(0, 3))
def test_bio_encoding_round_trips(gaps_lengths_types, lead):
    """Random non-overlapping spans, written as strict BIO, are read back exactly."""
    tags, expected, pos = ["O"] * lead, [], lead
    for gap, length, kind in gaps_lengths_types:
        tags += ["O"] * gap
        pos += gap
        tags += [f"B-{kind}"] + [f"I-{kind}"] * (length - 1)
        expected.append((kind, pos, pos + length - 1))
        pos += length
    assert get_entities(tags) == expected


# ---------------------------------------------------------------- scores

def test_scores_by_hand():
    y_true = [["O", "O", "B-misc", "I-misc", "B-misc", "O", "O"], ["B-per", "I-per", "O"]]
    y_pred = [["O", "O", "B-misc", "I-misc", "B-misc", "I-misc", "O"], ["B-per", "I-per", "O"]]
    # true: misc(2,3) misc(4,4) per(8,9); predicted: misc(2,3) misc(4,5) per(8,9): 2 of 3 right.
    assert precision_score(y_true, y_pred) == pytest.approx(2 / 3)
    assert recall_score(y_true, y_pred) == pytest.approx(2 / 3)
    assert f1_score(y_true, y_pred) == pytest.approx(2 / 3)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred)        # types sorted: misc, per
    np.testing.assert_allclose(p, [0.5, 1.0])
    np.testing.assert_allclose(r, [0.5, 1.0])
    np.testing.assert_allclose(f, [0.5, 1.0])
    np.testing.assert_array_equal(s, [2, 1])
    assert f1_score(y_true, y_pred, average="macro") == pytest.approx(0.75)
    assert f1_score(y_true, y_pred, average="weighted") == pytest.approx((0.5 * 2 + 1.0 * 1) / 3)


def test_precision_and_recall_differ():
    y_true = [["B-per", "I-per", "O", "B-loc", "O", "B-per"]]     # 3 entities
    y_pred = [["B-per", "I-per", "O", "B-per", "O", "O"]]         # 2 predicted, 1 right (loc mistyped)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average="micro")
    assert (p, r, s) == (pytest.approx(1 / 2), pytest.approx(1 / 3), 3)
    assert f == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))


def test_partial_span_is_wrong():
    assert f1_score([["B-per", "I-per", "I-per"]], [["B-per", "I-per", "O"]]) == 0.0


@pytest.mark.parametrize("zero_division", [0, 1])
def test_zero_division(zero_division):
    z = float(zero_division)
    # Nothing predicted: precision is undefined, recall 0, F1 0.
    assert precision_recall_fscore_support([["B-x"]], [["O"]], "micro", zero_division) == (z, 0.0, 0.0, 1)
    # Nothing true, something predicted: recall undefined, precision 0.
    assert precision_recall_fscore_support([["O"]], [["B-x"]], "micro", zero_division) == (0.0, z, 0.0, 0)
    assert precision_recall_fscore_support([["O"]], [["B-x"]], "weighted", zero_division) == (0.0, z, 0.0, 0)
    # No entity at all.
    for average in ("micro", "macro", "weighted"):
        assert precision_recall_fscore_support([["O"]], [["O"]], average, zero_division) == (z, z, z, 0)


def test_accuracy_is_token_level():
    assert accuracy_score([["B-x", "O"], ["O"]], [["B-x", "I-x"], ["O"]]) == pytest.approx(2 / 3)


tag = st.sampled_from(["O", "O", "O", "B-per", "I-per", "B-loc", "I-loc", "E-per", "S-loc"])
paired = st.lists(st.lists(st.tuples(tag, tag), max_size=8), max_size=5)


def _split(pairs):
    return [[t for t, _ in s] for s in pairs], [[p for _, p in s] for s in pairs]


@given(paired)
def test_score_invariants(pairs):
    y_true, y_pred = _split(pairs)
    p, r, f, n_true = precision_recall_fscore_support(y_true, y_pred, average="micro")
    n_pred = len(get_entities(y_pred))
    assert 0.0 <= min(p, r, f) and max(p, r, f) <= 1.0
    if n_true and n_pred:
        assert p * n_pred == pytest.approx(r * n_true)               # both are the correct count
        assert min(p, r) - 1e-12 <= f <= max(p, r) + 1e-12           # a harmonic mean lies between
    # Swapping truth and prediction swaps precision and recall.
    p2, r2, f2, _ = precision_recall_fscore_support(y_pred, y_true, average="micro")
    assert (p2, r2) == (pytest.approx(r), pytest.approx(p)) and f2 == pytest.approx(f)
    # Per type: the supports add up to the micro support.
    assert int(np.sum(precision_recall_fscore_support(y_true, y_pred)[3])) == n_true


@given(st.lists(st.lists(tag, max_size=8), max_size=5))
def test_perfect_prediction(y):
    p, r, f, n = precision_recall_fscore_support(y, y, average="micro")
    if n:
        assert p == r == f == 1.0
    assert n == len(get_entities(y)) if y else n == 0


# ---------------------------------------------------------------- report

def test_classification_report():
    y_true = [["B-per", "I-per", "O", "B-loc"]]
    y_pred = [["B-per", "I-per", "O", "O"]]
    d = classification_report(y_true, y_pred, output_dict=True)
    assert d["per"] == {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1}
    assert d["loc"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1}
    assert d["micro avg"]["recall"] == 0.5 and d["micro avg"]["precision"] == 1.0
    text = classification_report(y_true, y_pred, digits=3)
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["loc", "0.000", "0.000", "0.000", "1"]
    assert lines[5].split() == ["micro", "avg", "1.000", "0.500", "0.667", "2"]


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("bad", ["PER", "B-", "X-per", "b-per", "BI-per", ""])
def test_bad_tag(bad):
    with pytest.raises(ValueError, match=r"y_true\[0\]\[1\]: expected a tag 'O' or B-/I-/E-/S-"):
        f1_score([["O", bad]], [["O", "O"]])


def test_bad_inputs():
    with pytest.raises(TypeError, match=r"y_true\[0\]: expected a sentence \(a list of tags\), got str"):
        f1_score(["B-x", "O"], ["B-x", "O"])
    with pytest.raises(TypeError, match="y_pred: expected a list of sentences"):
        f1_score([["O"]], "O")
    with pytest.raises(TypeError, match=r"tags\[1\]: expected a tag str, got int"):
        get_entities(["O", 3])
    with pytest.raises(ValueError, match=r"y_pred\[1\]: expected 2 tags to match y_true\[1\], got 1"):
        f1_score([["O"], ["O", "B-x"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="y_pred: expected 2 sentences to match y_true, got 1"):
        f1_score([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="average: expected one of"):
        f1_score([["O"]], [["O"]], average="binary")
    with pytest.raises(ValueError, match="zero_division: expected 0 or 1, got 0.5"):
        f1_score([["O"]], [["O"]], zero_division=0.5)
    with pytest.raises(ValueError, match="y_true: expected at least one tag"):
        accuracy_score([[]], [[]])
    assert seqeval.AVERAGES == ("micro", "macro", "weighted", None)
