"""Dropout: seeded gradient checks, statistics of the mask, train/eval, bad p (derivations/dropout.md)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinylm
from tinylm.gradcheck import check_module, check_op
from tinylm.nn.dropout import Dropout
from tinylm.ops.dropout import dropout_backward, dropout_forward


def test_dropout_gradcheck_fixed_seed(rng):
    # An int seed gives a fresh generator per call: the same mask in every finite-difference probe.
    check_op(dropout_forward, dropout_backward, {"x": rng.standard_normal((3, 4, 5))},
             kwargs={"p": 0.3, "rng": 7}, tol=1e-7)


class _FixedMaskDropout(Dropout):
    """Redraws the same mask on every call, as finite differences need (a real layer must not)."""

    def forward(self, x):
        self.rng = np.random.default_rng(11)
        return super().forward(x)


def test_dropout_module_gradcheck(rng):
    m = _FixedMaskDropout(0.4)
    report = check_module(m, rng.standard_normal((4, 6)), tol=1e-7)
    assert "input0" in report.errors
    y = m(np.ones((4, 6)))
    assert 0 < np.count_nonzero(y) < y.size                   # some entries were really dropped


def test_backward_uses_the_forward_mask(rng):
    x, dy = rng.standard_normal((50, 20)), rng.standard_normal((50, 20))
    y, cache = dropout_forward(x, 0.5, rng=3)
    dx = dropout_backward(dy, cache)
    kept = y != 0
    np.testing.assert_array_equal(dx[~kept], 0.0)
    np.testing.assert_allclose(dx[kept], 2.0 * dy[kept], rtol=1e-15)
    np.testing.assert_allclose(y[kept], 2.0 * x[kept], rtol=1e-15)


def test_same_seed_same_mask_different_seed_different_mask():
    x = np.ones((64, 64))
    a, _ = dropout_forward(x, 0.5, rng=1)
    b, _ = dropout_forward(x, 0.5, rng=1)
    c, _ = dropout_forward(x, 0.5, rng=2)
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)
    m1, m2 = Dropout(0.5, rng=5), Dropout(0.5, rng=5)
    first = m1(x)
    np.testing.assert_array_equal(first, m2(x))
    assert np.any(m1(x) != first)                             # a layer's own stream moves on each call


def test_global_seed_drives_the_default_generator():
    x = np.ones((32, 32))
    tinylm.manual_seed(9)
    a = Dropout(0.5)(x)
    tinylm.manual_seed(9)
    np.testing.assert_array_equal(a, Dropout(0.5)(x))


def test_identity_in_eval_mode_and_for_p_zero(rng):
    x = rng.standard_normal((5, 3))
    m = Dropout(0.9).eval()
    assert m(x) is x and m.backward(x) is x
    y, cache = dropout_forward(x, 0.0)
    assert y is x and dropout_backward(x, cache) is x
    assert dropout_forward(x, 0.5, training=False)[0] is x
    assert Dropout(0.9).train().training and repr(m) == "Dropout(p=0.9)"


@given(p=st.floats(0.0, 0.8), seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]))
def test_keeps_expectation_and_drops_about_p(p, seed, dtype):
    n = 20000
    y, _ = dropout_forward(np.ones(n, dtype), p, rng=seed)
    assert y.dtype == dtype and y.shape == (n,)
    # Counts are binomial: allow 6 standard deviations (a false alarm about once in 10^9 runs).
    frac_zero = np.mean(y == 0)
    assert abs(frac_zero - p) <= 6 * np.sqrt(p * (1 - p) / n) + 1e-12
    # y = keep / (1 - p) with keep ~ Bernoulli(1 - p): mean 1, variance p / (1 - p).
    assert abs(y.mean(dtype=np.float64) - 1.0) <= 6 * np.sqrt(p / (1 - p) / n) + 1e-6
    assert np.all((y == 0) | np.isclose(y, 1 / (1 - p), rtol=1e-6))


@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=3), dtype=st.sampled_from([np.float32, np.float64]))
def test_shapes_and_dtypes_preserved(shape, dtype):
    x = np.ones(shape, dtype)
    m = Dropout(0.5)
    y = m(x)
    dx = m.backward(np.ones_like(y))
    assert y.shape == dx.shape == x.shape and y.dtype == dx.dtype == dtype


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, "0.5", None])
def test_p_out_of_range(p):
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\), got"):
        dropout_forward(np.ones(3), p)
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\)"):
        Dropout(p)


@pytest.mark.parametrize("bad, err, match", [
    (lambda: dropout_forward(np.ones(3, np.int64), 0.5), TypeError, r"x: expected a floating-point array"),
    (lambda: dropout_forward(np.ones(3), 0.5, rng="seed"), TypeError, r"rng: expected None, a non-negative int"),
    (lambda: dropout_forward(np.ones(3), 0.5, rng=1.5), TypeError, r"rng: expected None, .* got 1.5"),
    (lambda: Dropout(0.1, rng="x"), TypeError, r"rng: expected None, a non-negative int .* got 'x'"),
    (lambda: dropout_forward(np.ones(3), 0.5, training="no"), TypeError, r"training: expected a bool, got 'no'"),
    (lambda: dropout_backward(np.ones(4), dropout_forward(np.ones(3), 0.5)[1]), ValueError,
     r"dy: expected shape \(3,\), got shape \(4,\)"),
    (lambda: dropout_backward(np.ones(3, int), dropout_forward(np.ones(3), 0.5, training=False)[1]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
    (lambda: dropout_backward(np.ones(3), dropout_forward(np.ones(3, np.float32), 0.5, rng=0)[1]), TypeError,
     r"dy: expected dtype float32 \(the forward's output\), got float64"),
    (lambda: Dropout(0.5).backward(np.ones(3)), RuntimeError, r"Dropout.backward called before forward"),
])
def test_dropout_bad_input(bad, err, match):
    with pytest.raises(err, match=match):
        bad()
