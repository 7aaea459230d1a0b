"""tinylm.ops.conv and tinylm.nn.conv: gradient checks (conv1d with stride / padding / dilation,
max pooling, masked global pooling), a direct-loop reference, the unfold/fold adjoint identity,
padding properties, bad input."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from tinylm.gradcheck import check_module, check_op
from tinylm.nn.conv import Conv1d, GlobalAvgPool1d, GlobalMaxPool1d, MaxPool1d
from tinylm.ops.conv import (conv1d_backward, conv1d_forward, conv_output_length, fold1d, global_avg_pool1d_backward,
                             global_avg_pool1d_forward, global_max_pool1d_backward, global_max_pool1d_forward,
                             max_pool1d_backward, max_pool1d_forward, unfold1d)


def conv_reference(x, w, b, stride, padding, dilation):
    """The definition, one output element at a time."""
    B, C_in, L = x.shape
    C_out, _, K = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    L_out = (L + 2 * padding - dilation * (K - 1) - 1) // stride + 1
    y = np.zeros((B, C_out, L_out))
    for bb in range(B):
        for o in range(C_out):
            for l in range(L_out):
                y[bb, o, l] = b[o] + sum(w[o, c, k] * xp[bb, c, l * stride + k * dilation]
                                         for c in range(C_in) for k in range(K))
    return y


# --- gradient checks -----------------------------------------------------------------------------

@pytest.mark.parametrize("stride, padding, dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 1, 2), (2, 0, 3)])
def test_conv1d_gradcheck(rng, stride, padding, dilation):
    x, w, b = rng.standard_normal((2, 3, 8)), rng.standard_normal((4, 3, 3)), rng.standard_normal(4)
    check_op(conv1d_forward, conv1d_backward, {"x": x, "weight": w, "bias": b},
             kwargs=dict(stride=stride, padding=padding, dilation=dilation), tol=1e-7)


def test_conv1d_gradcheck_no_bias_kernel_1(rng):
    x, w = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 1))
    fwd = lambda x, weight: conv1d_forward(x, weight, None, stride=2)
    bwd = lambda dy, cache: conv1d_backward(dy, cache)[:2]
    check_op(fwd, bwd, {"x": x, "weight": w}, tol=1e-7)


@pytest.mark.parametrize("kernel_size, stride", [(2, None), (3, 1), (3, 2), (4, 3)])
def test_max_pool1d_gradcheck(rng, kernel_size, stride):
    x = rng.permutation(2 * 3 * 9).reshape(2, 3, 9) / 10.0   # distinct values: no ties within eps
    check_op(max_pool1d_forward, max_pool1d_backward, {"x": x},
             kwargs=dict(kernel_size=kernel_size, stride=stride), tol=1e-7)


@pytest.mark.parametrize("pool", [(global_max_pool1d_forward, global_max_pool1d_backward),
                                  (global_avg_pool1d_forward, global_avg_pool1d_backward)], ids=["max", "avg"])
@pytest.mark.parametrize("masking", ["none", "lengths", "mask"])
def test_global_pool_gradcheck(rng, pool, masking):
    x = rng.permutation(3 * 4 * 6).reshape(3, 4, 6) / 10.0
    kw = {"none": {}, "lengths": {"lengths": np.array([6, 2, 1])},
          "mask": {"mask": np.array([[1, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1], [1] * 6], bool)}}[masking]
    check_op(*pool, {"x": x}, kwargs=kw, tol=1e-7)


@pytest.mark.parametrize("config", [dict(), dict(stride=2, padding=1, dilation=2, bias=False)])
def test_conv1d_module_gradcheck(rng, config):
    m = Conv1d(3, 2, 3, **config).double()
    check_module(m, rng.standard_normal((2, 3, 7)), tol=1e-7)


def test_pool_modules_gradcheck(rng):
    x = rng.permutation(2 * 3 * 8).reshape(2, 3, 8) / 10.0
    check_module(MaxPool1d(3, 2), x, tol=1e-7)
    check_module(GlobalMaxPool1d(), x, forward_kwargs={"lengths": np.array([3, 8])}, tol=1e-7)
    check_module(GlobalAvgPool1d(), x, forward_kwargs={"mask": np.arange(8)[None, :] % 2 == np.arange(2)[:, None]},
                 tol=1e-7)


# --- against the definition and other invariants ---------------------------------------------------

@given(B=st.integers(1, 2), C_in=st.integers(1, 3), C_out=st.integers(1, 3), K=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 3), L=st.integers(1, 9),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_conv1d_matches_definition(B, C_in, C_out, K, stride, padding, dilation, L, dtype):
    assume(conv_output_length(L, K, stride, padding, dilation) >= 1)
    rng = np.random.default_rng(L * 7 + K)
    x, w, b = rng.standard_normal((B, C_in, L)), rng.standard_normal((C_out, C_in, K)), rng.standard_normal(C_out)
    y, _ = conv1d_forward(x.astype(dtype), w.astype(dtype), b.astype(dtype), stride, padding, dilation)
    assert y.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, conv_reference(x, w, b, stride, padding, dilation), rtol=tol, atol=tol)


@given(L=st.integers(1, 10), K=st.integers(1, 4), stride=st.integers(1, 3), dilation=st.integers(1, 3))
def test_fold_is_the_adjoint_of_unfold(L, K, stride, dilation):
    """<unfold(x), c> == <x, fold(c)> for all x, c: fold is unfold's transpose, hence its backward."""
    assume(conv_output_length(L, K, 1, 0, dilation) >= 1)
    rng = np.random.default_rng(L + 10 * K)
    x = rng.standard_normal((2, 3, L))
    cols = unfold1d(x, K, stride, dilation)
    c = rng.standard_normal(cols.shape)
    assert np.isclose(np.sum(cols * c), np.sum(x * fold1d(c, L, stride, dilation)), rtol=1e-12)


def test_max_pool1d_matches_windows(rng):
    x = rng.standard_normal((2, 3, 10))
    y, _ = max_pool1d_forward(x, 3, 2)
    expected = np.stack([x[:, :, s:s + 3].max(axis=2) for s in range(0, 8, 2)], axis=2)
    np.testing.assert_array_equal(y, expected)
    y_default, _ = max_pool1d_forward(x, 3)                  # stride defaults to kernel_size
    np.testing.assert_array_equal(y_default, np.stack([x[:, :, s:s + 3].max(axis=2) for s in (0, 3, 6)], axis=2))


def test_max_pool_overlapping_windows_add_gradients():
    x = np.array([[[0.0, 5.0, 1.0, 2.0]]])                   # windows [0 5] [5 1] [1 2]: 5.0 wins two
    y, cache = max_pool1d_forward(x, 2, 1)
    np.testing.assert_array_equal(y, [[[5.0, 5.0, 2.0]]])
    np.testing.assert_array_equal(max_pool1d_backward(np.array([[[1.0, 10.0, 100.0]]]), cache), [[[0, 11, 0, 100]]])


@given(lengths=st.lists(st.integers(1, 7), min_size=1, max_size=4), dtype=st.sampled_from([np.float32, np.float64]))
def test_global_pools_ignore_padding(lengths, dtype):
    rng = np.random.default_rng(sum(lengths))
    B, L = len(lengths), 7
    x = rng.standard_normal((B, 3, L)).astype(dtype)
    real = np.arange(L)[None, :] < np.array(lengths)[:, None]
    x[np.broadcast_to(~real[:, None, :], x.shape)] = 1e6     # padding would win every max, dominate every mean
    ymax, cmax = global_max_pool1d_forward(x, lengths=np.array(lengths))
    yavg, cavg = global_avg_pool1d_forward(x, mask=real)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(ymax[b], x[b, :, :n].max(axis=1))
        np.testing.assert_allclose(yavg[b], x[b, :, :n].mean(axis=1), rtol=1e-6)
    assert ymax.dtype == yavg.dtype == dtype
    dy = np.ones((B, 3), dtype)
    for dx in (global_max_pool1d_backward(dy, cmax), global_avg_pool1d_backward(dy, cavg)):
        assert dx.dtype == dtype
        assert np.all(dx[np.broadcast_to(~real[:, None, :], dx.shape)] == 0)   # padding gets no gradient
    np.testing.assert_allclose(global_avg_pool1d_backward(dy, cavg).sum(axis=2), 1.0, rtol=1e-6)


def test_conv1d_module_layout_and_init():
    m = Conv1d(4, 6, 3)
    assert m.weight.shape == (6, 4, 3) and m.bias.shape == (6,) and m.weight.dtype == np.float32
    bound = 1 / np.sqrt(4 * 3)
    assert np.abs(m.weight.data).max() <= bound and np.abs(m.bias.data).max() <= bound
    assert list(m.state_dict()) == ["weight", "bias"]
    assert repr(m) == "Conv1d(4, 6, kernel_size=(3,), stride=(1,))"
    y = m(np.zeros((2, 4, 10), np.float32))
    assert y.shape == (2, 6, 8) and y.dtype == np.float32


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call, err, match", [
    (lambda x, w: conv1d_forward(x[0], w), ValueError, r"x: expected shape \(B, C_in, L\).*2 dims, expected 3"),
    (lambda x, w: conv1d_forward(x[:, :2], w), ValueError, r"x: expected shape \(B, C_in, L\) with C_in=3.*C_in=2"),
    (lambda x, w: conv1d_forward(x[:, :, :2], w), ValueError, r"x: length L=2 is too short for kernel_size=3"),
    (lambda x, w: conv1d_forward(x, w, padding=-1), ValueError, r"padding: expected a non-negative int, got -1"),
    (lambda x, w: conv1d_forward(x, w, stride=0), ValueError, r"stride: expected a positive int, got 0"),
    (lambda x, w: conv1d_forward(x, w, np.zeros(3)), ValueError, r"bias: expected shape \(C_out,\) with C_out=4"),
    (lambda x, w: max_pool1d_forward(x, 6), ValueError, r"x: length L=5 is too short for kernel_size=6"),
    (lambda x, w: global_max_pool1d_forward(x, lengths=np.array([5, 6])), ValueError,
     r"lengths: every length must lie in \[1, 5\].*got 6"),
    (lambda x, w: global_avg_pool1d_forward(x, mask=np.ones((2, 5))), TypeError, r"mask: expected a bool array"),
    (lambda x, w: global_avg_pool1d_forward(x, mask=np.ones((2, 4), bool)), ValueError,
     r"mask: expected shape \(2, 5\)"),
    (lambda x, w: global_max_pool1d_forward(x, mask=np.arange(5)[None, :] < np.array([[2], [0]])), ValueError,
     r"mask: every sequence needs at least one True.*row 1"),
    (lambda x, w: global_max_pool1d_forward(x, mask=np.ones((2, 5), bool), lengths=np.array([1, 1])), ValueError,
     r"pass one of them, not both"),
    (lambda x, w: conv1d_forward(x, w.astype(np.float32)), TypeError,
     r"conv1d: x, weight and bias must share one dtype, got x float64, weight float32"),
    (lambda x, w: conv1d_backward(np.ones((2, 4, 3), int), conv1d_forward(x, w)[1]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
    (lambda x, w: conv1d_backward(np.ones((2, 4, 3), np.float32), conv1d_forward(x, w)[1]), TypeError,
     r"dy: expected dtype float64 \(the forward's output\), got float32"),
    (lambda x, w: max_pool1d_backward(np.ones((2, 3, 2), int), max_pool1d_forward(x, 2)[1]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
    (lambda x, w: global_max_pool1d_backward(np.ones((2, 3), np.float32), global_max_pool1d_forward(x)[1]),
     TypeError, r"dy: expected dtype float64 \(the forward's output\), got float32"),
    (lambda x, w: global_avg_pool1d_backward(np.ones((2, 3), int), global_avg_pool1d_forward(x)[1]), TypeError,
     r"dy: expected a floating-point array .*got int64"),
])
def test_bad_input(rng, call, err, match):
    x, w = rng.standard_normal((2, 3, 5)), rng.standard_normal((4, 3, 3))
    with pytest.raises(err, match=match):
        call(x, w)


def test_module_bad_config():
    with pytest.raises(ValueError, match=r"kernel_size: expected a positive int, got 0"):
        Conv1d(3, 4, 0)
    with pytest.raises(ValueError, match=r"padding: expected a non-negative int, got 'same'"):
        Conv1d(3, 4, 3, padding="same")
    with pytest.raises(RuntimeError, match=r"MaxPool1d.backward called before forward"):
        MaxPool1d(2).backward(np.zeros((1, 1, 1)))
