"""tinylm.metrics against scikit-learn on random labels (skipped when scikit-learn is not installed)."""
import numpy as np
import pytest

from tinylm import metrics

sk = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("classes", [2, 4])
def test_matches_sklearn(seed, classes):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    t, p = rng.integers(0, classes, n), rng.integers(0, classes, n)
    assert metrics.accuracy_score(t, p) == pytest.approx(sk.accuracy_score(t, p))
    np.testing.assert_array_equal(metrics.confusion_matrix(t, p), sk.confusion_matrix(t, p))
    averages = ["micro", "macro", None] + (["binary"] if classes == 2 else [])
    for average in averages:
        for ours, theirs in [(metrics.precision_score, sk.precision_score), (metrics.recall_score, sk.recall_score),
                             (metrics.f1_score, sk.f1_score)]:
            np.testing.assert_allclose(ours(t, p, average=average, zero_division=0.0),
                                       theirs(t, p, average=average, zero_division=0.0), err_msg=str(average))


def test_matches_sklearn_when_a_class_is_never_predicted():
    t, p = np.array([0, 1, 2, 2, 1]), np.array([0, 0, 0, 1, 1])
    for average in ["micro", "macro", None]:
        np.testing.assert_allclose(metrics.f1_score(t, p, average=average),
                                   sk.f1_score(t, p, average=average, zero_division=0.0))
    np.testing.assert_allclose(metrics.precision_score(t, p, average="macro", labels=[1, 2]),
                               sk.precision_score(t, p, average="macro", labels=[1, 2], zero_division=0.0))
