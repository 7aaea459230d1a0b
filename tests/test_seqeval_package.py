"""tinylm.seqeval against the seqeval package (default, conlleval-compatible mode); skipped without it.

pip install seqeval
"""
import pathlib
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm import seqeval as ours

sm = pytest.importorskip("seqeval.metrics")
labeling = pytest.importorskip("seqeval.metrics.sequence_labeling")

WNUT = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "ner" / "wnut17"
TAGS = ["O", "O", "O", "B-per", "I-per", "B-loc", "I-loc", "E-per", "S-loc", "B-creative-work",
        "I-creative-work", "B", "I"]
sentences = st.lists(st.lists(st.tuples(st.sampled_from(TAGS), st.sampled_from(TAGS)), min_size=1, max_size=8),
                     min_size=1, max_size=5)


def theirs(fn, *args, **kwargs):
    with warnings.catch_warnings():          # seqeval warns on undefined ratios; we compare the values
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def assert_same(y_true, y_pred):
    assert ours.get_entities(y_true) == labeling.get_entities(y_true)
    has_entities = bool(ours.get_entities(y_true) or ours.get_entities(y_pred))
    for average in ("micro", "macro", "weighted", None):
        if average == "macro" and not has_entities:
            continue                         # seqeval: nan (mean of nothing); tinylm: zero_division
        for zero_division in (0, 1):
            a = ours.precision_recall_fscore_support(y_true, y_pred, average, zero_division)
            b = theirs(labeling.precision_recall_fscore_support, y_true, y_pred, average=average,
                       zero_division=zero_division)
            for x, y in zip(a, b):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f"{average} {zero_division}")
    for name in ("precision_score", "recall_score", "f1_score", "accuracy_score"):
        assert getattr(ours, name)(y_true, y_pred) == theirs(getattr(sm, name), y_true, y_pred), name
    if has_entities:
        assert ours.classification_report(y_true, y_pred, digits=4) == \
            theirs(sm.classification_report, y_true, y_pred, digits=4)
        assert ours.classification_report(y_true, y_pred, output_dict=True) == \
            theirs(sm.classification_report, y_true, y_pred, output_dict=True)


@given(sentences)
def test_matches_seqeval_on_random_tags(pairs):
    assert_same([[t for t, _ in s] for s in pairs], [[p for _, p in s] for s in pairs])


@pytest.mark.skipif(not WNUT.is_dir(), reason=f"WNUT-17 not found at {WNUT}")
def test_matches_seqeval_on_wnut17_dev():
    from tinylm.data.wnut17 import LABELS, load_wnut17
    _, gold = load_wnut17(WNUT)["dev"]
    rng = np.random.default_rng(0)
    # A noisy tagger: each tag replaced by a random WNUT label with probability 0.1.
    pred = [[LABELS[rng.integers(len(LABELS))] if rng.random() < 0.1 else t for t in s] for s in gold]
    assert_same(gold, pred)
    assert ours.f1_score(gold, gold) == 1.0
