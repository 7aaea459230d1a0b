import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from tinylm.gradcheck import check_module, check_op
from tinylm.nn.activation import LogSoftmax, Softmax
from tinylm.ops.softmax import (log_softmax, log_softmax_backward, log_softmax_forward, softmax, softmax_backward,
                                softmax_forward)

PAIRS = {"softmax": (softmax_forward, softmax_backward), "log_softmax": (log_softmax_forward, log_softmax_backward)}


def _naive_softmax(x, axis):
    """Textbook softmax with no max subtraction (fine for the small logits it is used on)."""
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gradcheck(rng, name, axis):
    fwd, bwd = PAIRS[name]
    check_op(fwd, bwd, {"x": rng.standard_normal((3, 4, 5))}, kwargs={"axis": axis}, tol=1e-7)


@pytest.mark.parametrize("module", [Softmax(), Softmax(dim=0), LogSoftmax(), LogSoftmax(dim=1)], ids=repr)
def test_module_gradcheck(rng, module):
    check_module(module, rng.standard_normal((2, 3, 4)), tol=1e-7)


@pytest.mark.parametrize("axis", [0, 1, 2, -2])
def test_matches_naive_formula(rng, axis):
    x = rng.standard_normal((3, 4, 5))
    np.testing.assert_allclose(softmax(x, axis), _naive_softmax(x, axis), rtol=1e-14)
    np.testing.assert_allclose(log_softmax(x, axis), np.log(_naive_softmax(x, axis)), rtol=1e-13)


def test_backward_matches_explicit_jacobian(rng):
    x, dy = rng.standard_normal(6), rng.standard_normal(6)
    y, cache = softmax_forward(x)
    jacobian = np.diag(y) - np.outer(y, y)                     # dy_i/dx_j = y_i (delta_ij - y_j)
    np.testing.assert_allclose(softmax_backward(dy, cache), jacobian.T @ dy, rtol=1e-13)
    logp, cache = log_softmax_forward(x)
    jacobian = np.eye(6) - y[None, :]                          # dlogp_i/dx_j = delta_ij - y_j
    np.testing.assert_allclose(log_softmax_backward(dy, cache), jacobian.T @ dy, rtol=1e-13)


finite_logits = arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)),
                       elements=st.floats(-1e4, 1e4, allow_nan=False))


@given(x=finite_logits, axis=st.sampled_from([0, 1, -1]))
def test_softmax_is_a_distribution(x, axis):
    y = softmax(x, axis)
    assert ((0 <= y) & (y <= 1)).all()
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-12)


@given(x=finite_logits, shift=st.floats(-1e3, 1e3))
def test_log_softmax_is_log_of_softmax_and_shift_invariant(x, shift):
    logp, y = log_softmax(x), softmax(x)
    normal = y >= np.finfo(y.dtype).tiny                        # not underflowed to 0 or to a subnormal
    np.testing.assert_allclose(logp[normal], np.log(y[normal]), rtol=1e-12, atol=1e-12)
    assert np.isfinite(logp).all()                             # where softmax underflows to 0, log_softmax is exact
    np.testing.assert_allclose(log_softmax(x + shift), logp, rtol=1e-9, atol=1e-9 * (1 + abs(shift)))


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), dtype=st.sampled_from([np.float32, np.float64]),
       name=st.sampled_from(sorted(PAIRS)))
def test_shapes_and_dtypes_preserved(shape, dtype, name):
    fwd, bwd = PAIRS[name]
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y, cache = fwd(x, axis=0)
    dx = bwd(np.ones_like(y), cache)
    assert y.shape == dx.shape == x.shape and y.dtype == dx.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_finite_without_warnings(dtype):
    x = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]], dtype)
    dy = np.ones_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fwd, bwd in PAIRS.values():
            y, cache = fwd(x)
            assert np.isfinite(y).all() and np.isfinite(bwd(dy, cache)).all()
    np.testing.assert_allclose(softmax(x), [[1, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    np.testing.assert_allclose(log_softmax(x)[0], [0, -2e4, -1e4], rtol=1e-6)


def test_masked_entries_get_zero_probability(rng):
    x = rng.standard_normal((2, 5))
    x[:, 1:3] = -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, logp = softmax(x), log_softmax(x)
    np.testing.assert_array_equal(y[:, 1:3], 0.0)
    assert np.isneginf(logp[:, 1:3]).all()
    keep = [0, 3, 4]
    np.testing.assert_allclose(y[:, keep], softmax(x[:, keep]), rtol=1e-14)


def test_all_masked_row_is_zero_probability_not_nan(rng):
    x = rng.standard_normal((3, 4))
    x[1] = -np.inf
    dy = rng.standard_normal((3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, cache = softmax_forward(x)
        dx = softmax_backward(dy, cache)
        logp, lcache = log_softmax_forward(x)
        dlx = log_softmax_backward(dy, lcache)
    np.testing.assert_array_equal(y[1], 0.0)                   # no allowed entry: zero probability everywhere
    np.testing.assert_array_equal(dx[1], 0.0)
    assert np.isneginf(logp[1]).all()                          # = log 0
    np.testing.assert_array_equal(dlx[1], dy[1])               # dy - p * sum(dy) with p = 0
    np.testing.assert_allclose(y[[0, 2]], softmax(x[[0, 2]]), rtol=1e-14)   # other rows untouched


@pytest.mark.parametrize("bad, err, match", [
    (lambda x: softmax(x, axis=2), ValueError, r"axis: expected an axis of x, whose shape is \(2, 3\), got 2"),
    (lambda x: log_softmax(x, axis=-3), ValueError, r"axis: .* got -3"),
    (lambda x: softmax(x, axis=1.0), TypeError, r"axis: expected an int, got 1.0"),
    (lambda x: softmax(x[:, :0]), ValueError, r"x: softmax needs at least one entry along axis -1"),
    (lambda x: softmax(np.float64(1.0)), ValueError, r"axis: expected an axis of x, whose shape is \(\)"),
    (lambda x: log_softmax(x.astype(np.int32)), TypeError, r"x: expected a floating-point array .*got int32"),
    (lambda x: softmax_backward(x.T, softmax_forward(x)[1]), ValueError, r"dy: expected shape \(2, 3\)"),
    (lambda x: log_softmax_backward(x[0], log_softmax_forward(x)[1]), ValueError, r"dy: expected shape \(2, 3\)"),
    (lambda x: Softmax().backward(x), RuntimeError, r"Softmax.backward called before forward"),
    (lambda x: Softmax(dim=1.5), TypeError, r"dim: expected an int \(an axis of x\), got 1.5"),
    (lambda x: LogSoftmax(dim="x"), TypeError, r"dim: expected an int \(an axis of x\), got 'x'"),
    (lambda x: Softmax(dim=True), TypeError, r"dim: expected an int .*got True"),
    (lambda x: softmax_backward(np.ones((2, 3), int), softmax_forward(x)[1]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
    (lambda x: log_softmax_backward(np.ones((2, 3), int), log_softmax_forward(x)[1]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
    (lambda x: log_softmax_backward(x, log_softmax_forward(x.astype(np.float32))[1]), TypeError,
     r"dy: expected dtype float32 \(the forward's output\), got float64"),
])
def test_bad_input(rng, bad, err, match):
    with pytest.raises(err, match=match):
        bad(rng.standard_normal((2, 3)))
