import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinylm
from tinylm.gradcheck import check_module, check_op
from tinylm.ops import linear_backward, linear_forward


def test_linear_gradcheck(rng):
    x, w, b = rng.standard_normal((2, 3, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    check_op(linear_forward, linear_backward, {"x": x, "weight": w, "bias": b}, tol=1e-7)


def test_linear_gradcheck_no_bias(rng):
    x, w = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    fwd = lambda x, weight: linear_forward(x, weight, None)
    bwd = lambda dy, cache: linear_backward(dy, cache)[:2]
    check_op(fwd, bwd, {"x": x, "weight": w}, tol=1e-7)


def test_linear_module_gradcheck(rng):
    m = tinylm.nn.Linear(5, 3).double()
    check_module(m, rng.standard_normal((2, 4, 5)), tol=1e-7)


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
    (lambda x, w, b: linear_forward(x.astype(np.float32), w, b), r"matmul: a is float32 but b is float64"),
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
