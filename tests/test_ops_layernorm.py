"""LayerNorm: op and module gradient checks, invariants, bad input (derivations/layernorm.md)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinylm

from tinylm.gradcheck import check_module, check_op
from tinylm.nn.normalization import LayerNorm
from tinylm.ops.layernorm import layernorm_backward, layernorm_forward


@pytest.mark.parametrize("shape", [(6,), (3, 5), (2, 3, 4)])
def test_layernorm_gradcheck_affine(rng, shape):
    C = shape[-1]
    x, w, b = rng.standard_normal(shape), rng.standard_normal(C), rng.standard_normal(C)
    check_op(layernorm_forward, layernorm_backward, {"x": x, "weight": w, "bias": b}, tol=1e-7)


def test_layernorm_gradcheck_no_affine(rng):
    fwd = lambda x: layernorm_forward(x)
    bwd = lambda dy, cache: layernorm_backward(dy, cache)[0]
    check_op(fwd, bwd, {"x": rng.standard_normal((2, 3, 5))}, tol=1e-7)


def test_layernorm_gradcheck_weight_only_and_large_eps(rng):
    # A large eps makes the variance term matter in dx; a wrong treatment of eps would show here.
    fwd = lambda x, weight: layernorm_forward(x, weight, None, eps=0.5)
    bwd = lambda dy, cache: layernorm_backward(dy, cache)[:2]
    check_op(fwd, bwd, {"x": 0.3 * rng.standard_normal((4, 5)), "weight": rng.standard_normal(5)}, tol=1e-7)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("affine", ["weight_and_bias", "weight_only", "none"])
def test_layernorm_gradcheck_each_backend(rng, backend, affine):
    """The backend's own layernorm kernel (numba: one compiled pass per row, a has_bias branch)
    against finite differences, for each combination of the affine parameters."""
    C = 5
    inputs = {"x": rng.standard_normal((2, 3, C)), "weight": rng.standard_normal(C), "bias": rng.standard_normal(C)}
    n = {"weight_and_bias": 3, "weight_only": 2, "none": 1}[affine]
    inputs = dict(list(inputs.items())[:n])

    def bwd(dy, cache):
        grads = layernorm_backward(dy, cache)
        assert all(g is None for g in grads[n:])
        return grads[:n]

    with tinylm.use_backend(backend):
        check_op(lambda x, weight=None, bias=None: layernorm_forward(x, weight, bias), bwd, inputs, tol=1e-7)


def test_backward_returns_none_for_absent_params(rng):
    x = rng.standard_normal((3, 4))
    y, cache = layernorm_forward(x)
    dx, dw, db = layernorm_backward(np.ones_like(y), cache)
    assert dx.shape == x.shape and dw is None and db is None
    y, cache = layernorm_forward(x, np.ones(4))
    assert layernorm_backward(np.ones_like(y), cache)[2] is None


@pytest.mark.parametrize("kwargs", [{}, {"bias": False}, {"elementwise_affine": False}])
def test_layernorm_module_gradcheck(rng, kwargs):
    m = LayerNorm(5, **kwargs).double()
    for p in m.parameters():                                  # move away from ones/zeros
        p.data = p.data + rng.standard_normal(p.shape)
    check_module(m, rng.standard_normal((2, 3, 5)), tol=1e-7)


def test_module_parameters_as_pytorch():
    m = LayerNorm((6,))
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.normalized_shape == (6,) and m.weight.dtype == np.float32
    np.testing.assert_array_equal(m.weight.data, np.ones(6))
    np.testing.assert_array_equal(m.bias.data, np.zeros(6))
    assert [n for n, _ in LayerNorm(6, bias=False).named_parameters()] == ["weight"]
    assert list(LayerNorm(6, elementwise_affine=False).named_parameters()) == []
    assert repr(m) == "LayerNorm((6,), eps=1e-05, elementwise_affine=True)"


def test_affine_is_scale_then_shift(rng):
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(3)
    y0, _ = layernorm_forward(x)
    y, _ = layernorm_forward(x, w, b)
    np.testing.assert_allclose(y, y0 * w + b, rtol=1e-12, atol=1e-12)


def test_constant_rows_give_zero_without_warnings():
    # var = 0: rstd = 1/sqrt(eps) stays finite; RuntimeWarnings are errors in this suite.
    x = np.full((2, 4), 3.0)
    y, cache = layernorm_forward(x)
    np.testing.assert_array_equal(y, 0.0)
    dx = layernorm_backward(np.ones_like(y), cache)[0]
    assert np.all(np.isfinite(dx))


def test_matches_textbook_formula(rng):
    # Independent form: divide by the standard deviation computed with np.var.
    x = rng.standard_normal((3, 7)) * 4 + 2
    y, _ = layernorm_forward(x, eps=1e-5)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(np.var(x, axis=-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_numpy_eps_is_accepted():
    m = LayerNorm(3, eps=np.float32(1e-5))
    assert type(m.eps) is float
    m(np.ones((2, 3), np.float32))


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before forward"):
        LayerNorm(3).backward(np.zeros((1, 3), np.float32))


@given(rows=st.integers(1, 4), C=st.integers(2, 9), lead=st.integers(0, 2),
       scale=st.floats(0.1, 100.0), shift=st.floats(-50.0, 50.0), seed=st.integers(0, 2**16))
def test_rows_have_mean_zero_variance_one(rows, C, lead, scale, shift, seed):
    r = np.random.default_rng(seed)
    x = r.standard_normal((2,) * lead + (rows, C)) * scale + shift
    y, _ = layernorm_forward(x, eps=1e-5)
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-9)
    var = x.var(-1)                                           # eps pulls the variance of y just below 1:
    np.testing.assert_allclose(y.var(-1), var / (var + 1e-5), rtol=1e-9)   # var(y) = var / (var + eps)
    assert np.all(y.var(-1) <= 1.0)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), dtype=st.sampled_from([np.float32, np.float64]),
       affine=st.booleans())
def test_shapes_and_dtypes_preserved(shape, dtype, affine):
    C = shape[-1]
    m = LayerNorm(C, elementwise_affine=affine).to(dtype)
    x = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    y = m(x)
    assert y.shape == x.shape and y.dtype == dtype
    dx = m.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == dtype
    if affine:
        assert m.weight.grad.dtype == dtype and m.bias.grad.shape == (C,)


@pytest.mark.parametrize("bad, err, match", [
    (lambda x, w, b: layernorm_forward(x, w[:3], b), ValueError,
     r"weight: expected shape \(C,\) with C=4, got shape \(3,\)"),
    (lambda x, w, b: layernorm_forward(x, w, b[:2]), ValueError,
     r"bias: expected shape \(C,\) with C=4, got shape \(2,\)"),
    (lambda x, w, b: layernorm_forward(x, w[None], b), ValueError, r"weight: expected shape \(C,\)"),
    (lambda x, w, b: layernorm_forward(x.astype(np.int64), w, b), TypeError, r"x: expected a floating-point array"),
    (lambda x, w, b: layernorm_forward(x, w.astype(np.float32), b), TypeError,
     r"weight: expected dtype float64 \(the dtype of x\), got float32"),
    (lambda x, w, b: layernorm_forward(x[:, :0]), ValueError, r"x: cannot normalise over an empty last dimension"),
    (lambda x, w, b: layernorm_forward(x, w, b, eps=0.0), ValueError, r"eps: expected a positive float, got 0.0"),
    (lambda x, w, b: layernorm_backward(np.ones((2, 3)), layernorm_forward(x)[1]), ValueError,
     r"dy: expected shape \(2, 4\), got shape \(2, 3\)"),
    (lambda x, w, b: LayerNorm(5)(x.astype(np.float32)), ValueError,
     r"x: expected shape \(\.\.\., 5\), got shape \(2, 4\)"),
    (lambda x, w, b: LayerNorm(5, elementwise_affine=False)(x), ValueError, r"x: expected shape \(\.\.\., 5\)"),
    (lambda x, w, b: LayerNorm((4, 5)), ValueError, r"normalized_shape: expected an int C or a 1-tuple"),
    (lambda x, w, b: LayerNorm(0), ValueError, r"normalized_shape: expected a positive int, got 0"),
    # constructor arguments are checked at construction, not at the first forward
    (lambda x, w, b: LayerNorm(4, eps=-1.0), ValueError, r"eps: expected a positive float, got -1.0"),
    (lambda x, w, b: LayerNorm(4, eps=0), ValueError, r"eps: expected a positive float, got 0"),
    (lambda x, w, b: LayerNorm(4, eps=float("nan")), ValueError, r"eps: expected a positive float, got nan"),
    (lambda x, w, b: LayerNorm(4, dtype=np.int64), TypeError, r"dtype: expected a floating dtype .*got int64"),
    (lambda x, w, b: LayerNorm(4, elementwise_affine="yes"), TypeError, r"elementwise_affine: expected a bool"),
    (lambda x, w, b: layernorm_forward(x, eps=np.inf), ValueError, r"eps: expected a positive float, got inf"),
    (lambda x, w, b: layernorm_backward(np.ones((2, 4), int), layernorm_forward(x)[1]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
    (lambda x, w, b: layernorm_backward(x.astype(np.float32), layernorm_forward(x, w, b)[1]), TypeError,
     r"dy: expected dtype float64 \(the forward's output\), got float32"),
])
def test_layernorm_bad_input(rng, bad, err, match):
    x, w, b = rng.standard_normal((2, 4)), rng.standard_normal(4), rng.standard_normal(4)
    with pytest.raises(err, match=match):
        bad(x, w, b)
