import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinylm
from tinylm.gradcheck import check_module, check_op
from tinylm.ops import gelu_forward, linear_backward, linear_forward, linear_gelu_backward, linear_gelu_forward
from tinylm.ops.matmul import matmul


def test_linear_gradcheck(rng):
    x, w, b = rng.standard_normal((2, 3, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    check_op(linear_forward, linear_backward, {"x": x, "weight": w, "bias": b}, tol=1e-7)


def test_linear_gradcheck_no_bias(rng):
    x, w = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    fwd = lambda x, weight: linear_forward(x, weight, None)
    bwd = lambda dy, cache: linear_backward(dy, cache)[:2]
    check_op(fwd, bwd, {"x": x, "weight": w}, tol=1e-7)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_module_gradcheck(rng, bias):
    m = tinylm.nn.Linear(5, 3, bias=bias).double()
    report = check_module(m, rng.standard_normal((2, 4, 5)), tol=1e-7)
    assert set(report.errors) == {"input0", "weight"} | ({"bias"} if bias else set())


def test_linear_module_matches_formula(rng):
    m = tinylm.nn.Linear(5, 3)
    x = rng.standard_normal((7, 5)).astype(np.float32)
    np.testing.assert_allclose(m(x), x @ m.weight.data.T + m.bias.data, rtol=1e-6)
    assert m(x).dtype == np.float32


def test_backward_accumulates_and_frozen_params_pass_gradient(rng):
    m = tinylm.nn.Linear(3, 2).double()
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    m(x); m.backward(dy)
    g1 = m.weight.grad.copy()
    m(x); m.backward(dy)
    np.testing.assert_allclose(m.weight.grad, 2 * g1)
    m.zero_grad(); m.weight.requires_grad = False
    m(x); dx = m.backward(dy)
    assert m.weight.grad is None and m.bias.grad is not None
    np.testing.assert_allclose(dx, dy @ m.weight.data)


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before forward"):
        tinylm.nn.Linear(2, 2).backward(np.zeros((1, 2), np.float32))


@pytest.mark.parametrize("bad, match", [
    (lambda x, w, b: linear_forward(x[:, :3], w, b), r"x: expected shape \(\.\.\., in\) with in=4"),
    (lambda x, w, b: linear_forward(x, w, b[:2]), r"bias: expected shape \(out,\) with out=5"),
    (lambda x, w, b: linear_forward(x.astype(np.int64), w, b), r"x: expected a floating-point array"),
    (lambda x, w, b: linear_forward(x.astype(np.float32), w, b), r"share one dtype, got x float32, weight float64"),
    (lambda x, w, b: linear_forward(x, w, b.astype(np.float32)), r"weight float64, bias float32"),
    (lambda x, w, b: linear_gelu_forward(x, w[:, :3], b), r"x: expected shape \(\.\.\., in\) with in=3"),
    (lambda x, w, b: linear_gelu_forward(x, w, b, approximate="erf"), r"approximate: expected one of"),
    # the upstream gradient: float, the forward output's exact shape and dtype (named dy, not matmul's a)
    (lambda x, w, b: linear_backward(np.ones((2, 5), int), linear_forward(x, w, b)[1]),
     r"dy: expected a floating-point array .*got int64"),
    (lambda x, w, b: linear_backward(np.ones((2, 5), np.float32), linear_forward(x, w, b)[1]),
     r"dy: expected dtype float64 \(the forward's output\), got float32"),
    (lambda x, w, b: linear_backward(None, linear_forward(x, w, b)[1]),
     r"dy: expected a floating-point array .*got NoneType"),
    (lambda x, w, b: linear_backward(np.ones((1, 5)), linear_forward(x, w, b)[1]),
     r"dy: expected shape \(2, 5\), got shape \(1, 5\)"),
    (lambda x, w, b: linear_gelu_backward(np.ones((2, 5), int), linear_gelu_forward(x, w, b)[1]),
     r"dy: expected a floating-point array .*got int64"),
    (lambda x, w, b: linear_gelu_backward(np.ones((2, 5), np.float32), linear_gelu_forward(x, w, b, "none")[1]),
     r"dy: expected dtype float64 \(the forward's output\), got float32"),
    # matmul: batch dims that do not broadcast are named, not left to NumPy
    (lambda x, w, b: matmul(np.ones((2, 2, 3)), np.ones((3, 3, 2))),
     r"matmul: batch dims of a\(2, 2, 3\) and b\(3, 3, 2\) do not broadcast: \(2,\) vs \(3,\)"),
    (lambda x, w, b: matmul(np.ones((4, 2, 2, 3)), np.ones((3, 1, 3, 2))),
     r"matmul: batch dims .*\(4, 2\) vs \(3, 1\)"),
])
def test_linear_bad_input(rng, bad, match):
    x, w, b = rng.standard_normal((2, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    with pytest.raises((ValueError, TypeError), match=match):
        bad(x, w, b)


@given(n=st.integers(1, 5), i=st.integers(1, 6), o=st.integers(1, 6), lead=st.integers(0, 2),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_linear_shapes_and_dtypes(n, i, o, lead, dtype):
    shape = (2,) * lead + (n, i)
    x = np.ones(shape, dtype)
    m = tinylm.nn.Linear(i, o).to(dtype)
    y = m(x)
    assert y.shape == (2,) * lead + (n, o) and y.dtype == dtype
    dx = m.backward(np.ones_like(y))
    assert dx.shape == x.shape and m.weight.grad.shape == (o, i) and m.weight.grad.dtype == dtype


# --- linear_gelu: y = gelu(x W^T + b) as one op ---

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_linear_gelu_gradcheck(rng, backend, approximate, bias):
    """With bias=None the backward's third gradient is None and x, weight are checked alone (as
    test_linear_gradcheck_no_bias), so the no-bias branch of each backend's kernel is covered."""
    x, w, b = rng.standard_normal((2, 3, 5)), rng.standard_normal((7, 5)), rng.standard_normal(7)
    inputs = {"x": x, "weight": w, "bias": b} if bias else {"x": x, "weight": w}

    def fwd(x, weight, bias=None):
        return linear_gelu_forward(x, weight, bias, approximate)

    def bwd(dy, cache):
        grads = linear_gelu_backward(dy, cache)
        if bias:
            return grads
        assert grads[2] is None
        return grads[:2]

    with tinylm.use_backend(backend):
        check_op(fwd, bwd, inputs, tol=1e-7)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_linear_gelu_equals_linear_then_gelu(rng, backend):
    x, w, b = rng.standard_normal((4, 6, 8)), rng.standard_normal((40, 8)), rng.standard_normal(40)
    dy = rng.standard_normal((4, 6, 40))
    h, lin_cache = linear_forward(x, w, b)
    y, gelu_cache = gelu_forward(h, "tanh")
    with tinylm.use_backend(backend):
        y_fused, cache = linear_gelu_forward(x, w, b)
        grads_fused = linear_gelu_backward(dy, cache)
    np.testing.assert_allclose(y_fused, y, rtol=1e-12, atol=1e-12)
    from tinylm.ops import gelu_backward
    for g_fused, g in zip(grads_fused, linear_backward(gelu_backward(dy, gelu_cache), lin_cache)):
        np.testing.assert_allclose(g_fused, g, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("bias, approximate", [(True, "tanh"), (False, "tanh"), (True, "none"), (False, "none")])
def test_linear_gelu_module_gradcheck_and_state_dict(rng, bias, approximate):
    m = tinylm.nn.LinearGELU(5, 3, bias=bias, approximate=approximate).double()
    report = check_module(m, rng.standard_normal((2, 4, 5)), tol=1e-7)
    assert set(report.errors) == {"input0", "weight"} | ({"bias"} if bias else set())
    assert sorted(m.state_dict()) == (["bias", "weight"] if bias else ["weight"])
    assert f"approximate={approximate!r}" in repr(m)


def test_linear_gelu_module_is_linear_then_gelu(rng):
    lin = tinylm.nn.Linear(6, 10)
    fused = tinylm.nn.LinearGELU(6, 10, bias=False, approximate="none")
    fused.weight.data[...] = lin.weight.data
    x = rng.standard_normal((3, 6)).astype(np.float32)
    want = tinylm.nn.GELU("none")(x @ lin.weight.data.T)
    np.testing.assert_allclose(fused(x), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="approximate: expected one of"):
        tinylm.nn.LinearGELU(2, 2, approximate="fast")


@given(n=st.integers(1, 40), i=st.integers(1, 40), o=st.integers(1, 70), bias=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_linear_gelu_numba_matches_numpy(n, i, o, bias, dtype):
    r = np.random.default_rng(n * 10000 + i * 100 + o)
    x, w = r.standard_normal((n, i)).astype(dtype), r.standard_normal((o, i)).astype(dtype)
    b = r.standard_normal(o).astype(dtype) if bias else None
    y, cache = linear_gelu_forward(x, w, b)
    with tinylm.use_backend("numba"):
        y_nb, cache_nb = linear_gelu_forward(x, w, b)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert y_nb.dtype == dtype and y_nb.shape == (n, o)
    np.testing.assert_allclose(y_nb, y, rtol=tol, atol=tol * max(1, np.abs(y).max()))
    np.testing.assert_allclose(cache_nb.gelu.s, cache.gelu.s, rtol=0, atol=10 * tol)


def test_matmul_broadcasts_compatible_batch_dims():
    a, b = np.ones((4, 1, 2, 3)), np.ones((5, 3, 2))
    assert matmul(a, b).shape == (4, 5, 2, 2)
    assert matmul(np.ones((2, 3)), np.ones((6, 3, 1))).shape == (6, 2, 1)


@pytest.mark.parametrize("make, err, match", [
    (lambda: tinylm.nn.Linear(2, 3, dtype=np.int32), TypeError,
     r"dtype: expected a floating dtype \(float32 or float64\), got int32"),
    (lambda: tinylm.nn.Linear(2, 3, dtype="float33"), TypeError, r"dtype: expected a floating dtype .*got 'float33'"),
    (lambda: tinylm.nn.LinearGELU(2, 3, dtype=np.int64), TypeError, r"dtype: expected a floating dtype .*got int64"),
    (lambda: tinylm.nn.Linear(2, 3, rng="abc"), TypeError, r"rng: expected None, a non-negative int .*got 'abc'"),
    (lambda: tinylm.nn.Linear(2, 3, bias="no"), TypeError, r"bias: expected a bool, got 'no'"),
])
def test_linear_bad_construction(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_linear_accepts_numpy_int_sizes_and_checks_module_backward_dtype():
    ids = np.array([0, 3, 1])
    m = tinylm.nn.Linear(np.int64(2), ids.max() + 1)         # sizes computed with NumPy
    assert (m.in_features, m.out_features) == (2, 4) and type(m.in_features) is int
    y = m(np.ones((5, 2), np.float32))
    with pytest.raises(TypeError, match=r"dy: expected dtype float32 \(the forward's output\), got float64"):
        m.backward(y.astype(np.float64))
    with pytest.raises(TypeError, match=r"dy: expected a floating-point array .*got int64"):
        m.backward(np.ones((5, 4), int))
