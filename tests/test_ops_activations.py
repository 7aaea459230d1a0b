import math
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.gradcheck import check_module, check_op
from tinylm.nn.activation import GELU, ReLU, Sigmoid, Tanh
from tinylm.ops.activations import (gelu, gelu_backward, gelu_forward, relu_backward, relu_forward, sigmoid,
                                    sigmoid_backward, sigmoid_forward, tanh_backward, tanh_forward)

OPS = {
    "relu": (relu_forward, relu_backward, {}),
    "tanh": (tanh_forward, tanh_backward, {}),
    "sigmoid": (sigmoid_forward, sigmoid_backward, {}),
    "gelu_none": (gelu_forward, gelu_backward, {"approximate": "none"}),
    "gelu_tanh": (gelu_forward, gelu_backward, {"approximate": "tanh"}),
}


def _away_from_zero(rng, shape):
    """Normal samples with |x| >= 0.1, so ReLU's kink at 0 stays out of the finite differences."""
    x = rng.standard_normal(shape) * 2
    return np.where(np.abs(x) < 0.1, 0.1 + np.abs(x), x)


@pytest.mark.parametrize("name", OPS)
def test_gradcheck(rng, name):
    fwd, bwd, kwargs = OPS[name]
    check_op(fwd, bwd, {"x": _away_from_zero(rng, (3, 4, 5))}, kwargs=kwargs, tol=1e-7)


@pytest.mark.parametrize("module", [ReLU(), Tanh(), Sigmoid(), GELU(), GELU("tanh")], ids=repr)
def test_module_gradcheck(rng, module):
    check_module(module, _away_from_zero(rng, (2, 3, 4)), tol=1e-7)


def test_values_against_scalar_formulas(rng):
    x = rng.standard_normal(50) * 3
    phi = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(relu_forward(x)[0], [max(v, 0.0) for v in x], rtol=0, atol=0)
    np.testing.assert_allclose(tanh_forward(x)[0], [math.tanh(v) for v in x], rtol=1e-14)
    np.testing.assert_allclose(sigmoid(x), [1 / (1 + math.exp(-v)) for v in x], rtol=1e-14)
    np.testing.assert_allclose(gelu(x), x * phi, rtol=1e-13, atol=1e-300)
    u = [math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3) for v in x]
    np.testing.assert_allclose(gelu(x, "tanh"), [0.5 * v * (1 + math.tanh(w)) for v, w in zip(x, u)],
                               rtol=1e-13, atol=1e-15)                    # 1 + tanh(u) cancels for u << 0


def test_gelu_tanh_form_approximates_exact_form():
    x = np.linspace(-6, 6, 1001)
    assert np.abs(gelu(x, "tanh") - gelu(x)).max() < 1e-3


def test_relu_gradient_at_zero_is_zero():
    _, cache = relu_forward(np.array([-1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(relu_backward(np.ones(3), cache), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_finite_without_warnings(dtype):
    x = np.array([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fwd, bwd, kwargs in OPS.values():
            y, cache = fwd(x, **kwargs)
            dx = bwd(np.ones_like(x), cache)
            assert np.isfinite(y).all() and np.isfinite(dx).all()
    np.testing.assert_array_equal(sigmoid(x)[[0, -1]], [0.0, 1.0])
    np.testing.assert_array_equal(gelu(x)[[0, -1]], [0.0, 1e4])
    np.testing.assert_array_equal(gelu(x, "tanh")[[0, -1]], [0.0, 1e4])


@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3), dtype=st.sampled_from([np.float32, np.float64]),
       name=st.sampled_from(sorted(OPS)))
def test_shapes_and_dtypes_preserved(shape, dtype, name):
    fwd, bwd, kwargs = OPS[name]
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y, cache = fwd(x, **kwargs)
    dx = bwd(np.ones_like(y), cache)
    assert y.shape == dx.shape == x.shape and y.dtype == dx.dtype == dtype


@given(x=st.floats(-1e4, 1e4, allow_nan=False))
def test_sigmoid_properties(x):
    y = sigmoid(np.array([x, -x]))
    assert 0.0 <= y[0] <= 1.0
    assert abs(y[0] + y[1] - 1.0) < 1e-15                      # sigmoid(-x) = 1 - sigmoid(x)


@pytest.mark.parametrize("bad, err, match", [
    (lambda: relu_forward(np.arange(3)), TypeError, r"x: expected a floating-point array .*got int64"),
    (lambda: sigmoid([0.0, 1.0]), TypeError, r"x: expected a numpy array, got list"),
    (lambda: gelu(np.zeros(3), approximate="erf"), ValueError,
     r"approximate: expected one of \('none', 'tanh'\), got 'erf'"),
    (lambda: tanh_backward(np.zeros((3, 2)), tanh_forward(np.zeros((2, 3)))[1]), ValueError,
     r"dy: expected shape \(2, 3\), got shape \(3, 2\)"),
    (lambda: gelu_backward(np.zeros(4), gelu_forward(np.zeros((4, 1)))[1]), ValueError,
     r"dy: expected shape \(4, 1\), got shape \(4,\)"),
    (lambda: GELU("fast"), ValueError, r"approximate: expected one of"),
    (lambda: ReLU().backward(np.zeros(2)), RuntimeError, r"ReLU.backward called before forward"),
    # the upstream gradient's dtype: float and the forward's, never silently promoted or kept int
    (lambda: relu_backward(np.ones((2, 3), int), relu_forward(np.zeros((2, 3)))[1]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
    (lambda: relu_backward(np.ones((2, 3)), relu_forward(np.zeros((2, 3), np.float32))[1]), TypeError,
     r"dy: expected dtype float32 \(the forward's output\), got float64"),
    (lambda: tanh_backward(np.ones((2, 3), int), tanh_forward(np.zeros((2, 3)))[1]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
    (lambda: sigmoid_backward(np.ones(3, np.float32), sigmoid_forward(np.zeros(3))[1]), TypeError,
     r"dy: expected dtype float64 \(the forward's output\), got float32"),
    (lambda: gelu_backward(np.ones(3, int), gelu_forward(np.zeros(3))[1]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
    (lambda: gelu_backward(np.ones(3), gelu_forward(np.zeros(3, np.float32), "tanh")[1]), TypeError,
     r"dy: expected dtype float32 \(the forward's output\), got float64"),
    (lambda: relu_backward(None, relu_forward(np.zeros(3))[1]), TypeError,
     r"dy: expected a floating-point array .*got NoneType"),
])
def test_bad_input(bad, err, match):
    with pytest.raises(err, match=match):
        bad()
