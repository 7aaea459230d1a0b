"""1-D convolution and pooling over time, in PyTorch's (B, C, L) layout: ``conv1d`` as an unfold
(im2col) followed by one matmul, ``max_pool1d``, and global max / mean pooling over time that
ignores padded positions.

Derivation: derivations/conv.md.  Modules: tinylm.nn.conv (``Conv1d``, ``MaxPool1d``,
``GlobalMaxPool1d``, ``GlobalAvgPool1d``).  Tests: tests/test_ops_conv.py, tests/test_torch_conv.py.

Shapes: B batch, C_in and C_out channels (C for pooling), L input length, K kernel size,
L_out output length. Output position ``l`` reads input positions ``l*stride + k*dilation``,
k = 0..K-1 (after zero-padding both ends by ``padding``).

Why unfold + matmul: ``unfold1d`` copies each receptive field into a column, giving
cols (B, C_in*K, L_out); the convolution is then ONE matmul with the weight viewed as
(C_out, C_in*K), the op BLAS (and the backends' matmul kernels) run fastest. Its cost is memory:
every input value is copied K/stride times. The alternative, the direct form
``y = sum_k W[:, :, k] @ x_pad[:, :, tap k]``, needs no copy but K smaller matmuls (and for very
long kernels an FFT convolution wins). The backward of unfold is ``fold1d``: it adds every column
entry back to the position it was copied from (a scatter-add, since windows overlap).
"""
from __future__ import annotations

from typing import NamedTuple

from tinylm._checks import check_float, check_grad, check_lengths, check_positive_int, check_shape
from tinylm.backend import array_module
from tinylm.ops.matmul import matmul

__all__ = [
    "conv_output_length", "unfold1d", "fold1d",
    "Conv1dCache", "conv1d_forward", "conv1d_backward",
    "MaxPool1dCache", "max_pool1d_forward", "max_pool1d_backward",
    "GlobalMaxPool1dCache", "global_max_pool1d_forward", "global_max_pool1d_backward",
    "GlobalAvgPool1dCache", "global_avg_pool1d_forward", "global_avg_pool1d_backward",
]


def conv_output_length(length: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """``floor((L + 2*padding - dilation*(K-1) - 1) / stride) + 1``, PyTorch's L_out (may be < 1)."""
    return (length + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def _tap(k: int, length_out: int, stride: int, dilation: int) -> slice:
    """The input positions that kernel tap ``k`` reads, one per output position: k*dilation + l*stride."""
    start = k * dilation
    return slice(start, start + (length_out - 1) * stride + 1, stride)


def unfold1d(x, kernel_size: int, stride: int = 1, dilation: int = 1):
    """Every receptive field as a column: ``cols[b, c, k, l] = x[b, c, l*stride + k*dilation]``.

    Shapes: x (B, C, L) -> cols (B, C, K, L_out) (no padding here: pad x first).
    """
    xp = array_module(("x", x))
    length_out = conv_output_length(x.shape[-1], kernel_size, stride, 0, dilation)
    return xp.stack([x[:, :, _tap(k, length_out, stride, dilation)]           # (B,C,L_out) per tap
                     for k in range(kernel_size)], axis=2)                     # -> (B,C,K,L_out)


def fold1d(cols, length: int, stride: int = 1, dilation: int = 1):
    """The adjoint of ``unfold1d``: add each ``cols[b, c, k, l]`` back into position l*stride + k*dilation.

    Shapes: cols (B, C, K, L_out) -> x (B, C, length). Where windows overlap, the contributions sum.
    """
    xp = array_module(("cols", cols))
    B, C, K, length_out = cols.shape
    x = xp.zeros((B, C, length), dtype=cols.dtype)
    for k in range(K):              # one tap at a time: its positions are distinct, so += is a true scatter-add
        x[:, :, _tap(k, length_out, stride, dilation)] += cols[:, :, k]
    return x


def _check_length_out(name: str, length: int, kernel_size: int, stride: int, padding: int, dilation: int) -> int:
    length_out = conv_output_length(length, kernel_size, stride, padding, dilation)
    if length_out < 1:
        raise ValueError(f"{name}: length L={length} is too short for kernel_size={kernel_size}, "
                         f"dilation={dilation}, padding={padding} (the output would have length {length_out}); "
                         f"need L + 2*padding >= dilation*(kernel_size-1) + 1 = {dilation * (kernel_size - 1) + 1}")
    return length_out


# --------------------------------------------------------------------------------------------
# conv1d
# --------------------------------------------------------------------------------------------

class Conv1dCache(NamedTuple):
    cols: object       # (B, C_in*K, L_out) the unfolded (padded) input: dW = sum_b dy_b cols_b^T
    weight: object     # (C_out, C_in, K) for dcols = W^T dy
    length: int        # L, the unpadded input length, to cut the padding off dx
    stride: int
    padding: int
    dilation: int
    has_bias: bool     # whether a dbias is returned


def conv1d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Cross-correlation as in PyTorch's ``conv1d``:
    ``y[b, o, l] = bias[o] + sum_{c,k} weight[o, c, k] * x_pad[b, c, l*stride + k*dilation]``.

    Shapes: x (B, C_in, L), weight (C_out, C_in, K), bias (C_out,) or None -> y (B, C_out, L_out),
    L_out = floor((L + 2*padding - dilation*(K-1) - 1) / stride) + 1. ``padding`` zeros on each end.
    Returns ``(y, cache)``.
    """
    xp = array_module(("x", x), ("weight", weight), ("bias", bias))
    check_float("x", x)
    check_float("weight", weight)
    dims = check_shape("weight", weight, ("C_out", "C_in", "K"))
    check_shape("x", x, ("B", "C_in", "L"), dims)
    if bias is not None:
        check_float("bias", bias)
        check_shape("bias", bias, ("C_out",), dims)
    if weight.dtype != x.dtype or (bias is not None and bias.dtype != x.dtype):
        got = f"x {x.dtype}, weight {weight.dtype}" + ("" if bias is None else f", bias {bias.dtype}")
        raise TypeError(f"conv1d: x, weight and bias must share one dtype, got {got}")
    stride, dilation = check_positive_int("stride", stride), check_positive_int("dilation", dilation)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding: expected a non-negative int, got {padding!r}")
    B, C_in, L = x.shape
    C_out, _, K = weight.shape
    length_out = _check_length_out("x", L, K, stride, padding, dilation)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (padding, padding))) if padding else x       # (B,C_in,L+2P)
    cols = unfold1d(x_pad, K, stride, dilation).reshape(B, C_in * K, length_out)    # (B,C_in*K,L_out)
    w2 = weight.reshape(C_out, C_in * K)                     # (C_out,C_in*K): the same (c, k) order as cols
    y = matmul(w2, cols)                                     # (C_out,C_in*K) @ (B,C_in*K,L_out) -> (B,C_out,L_out)
    if bias is not None:
        y = y + bias[:, None]                                # (B,C_out,L_out) + (C_out,1)
    return y, Conv1dCache(cols, weight, L, stride, padding, dilation, bias is not None)


def conv1d_backward(dy, cache: Conv1dCache):
    """Gradients of ``conv1d_forward``.

    Shapes: dy (B, C_out, L_out) -> dx (B, C_in, L), dweight (C_out, C_in, K), dbias (C_out,) or None.
    """
    cols, weight, L, stride, padding, dilation, has_bias = cache
    array_module(("dy", dy), ("weight", weight))
    C_out, C_in, K = weight.shape
    B, _, length_out = cols.shape
    check_grad("dy", dy, (B, C_out, length_out), weight.dtype)
    w2 = weight.reshape(C_out, C_in * K)
    dw2 = matmul(dy, cols.swapaxes(1, 2)).sum(axis=0)        # y_b = W2 cols_b => dW2 = sum_b dy_b cols_b^T
                                                             #   (B,C_out,L_out) @ (B,L_out,C_in*K), summed over b
    dcols = matmul(w2.T, dy)                                 # y_b = W2 cols_b => dcols_b = W2^T dy_b (B,C_in*K,L_out)
    dx_pad = fold1d(dcols.reshape(B, C_in, K, length_out),   # cols = unfold(x_pad)  =>  dx_pad = fold(dcols)
                    L + 2 * padding, stride, dilation)
    dx = dx_pad[:, :, padding:padding + L]                   # x_pad = pad(x): the padding is not an input
    dbias = dy.sum(axis=(0, 2)) if has_bias else None        # y = ... + bias[o] at every (b, l)
    return dx, dw2.reshape(C_out, C_in, K), dbias


# --------------------------------------------------------------------------------------------
# max_pool1d
# --------------------------------------------------------------------------------------------

class MaxPool1dCache(NamedTuple):
    argmax: object     # (B, C, L_out) int: the tap k that won each window; its input gets all the gradient
    length: int        # L, for the shape of dx
    kernel_size: int
    stride: int
    dtype: object      # x's dtype, that of y and so of dy


def max_pool1d_forward(x, kernel_size, stride=None):
    """``y[b, c, l] = max_k x[b, c, l*stride + k]``, PyTorch's ``max_pool1d`` without padding/dilation.

    Shapes: x (B, C, L) -> y (B, C, L_out), L_out = floor((L - K) / stride) + 1; ``stride``
    defaults to ``kernel_size``. On ties the first position wins (as PyTorch). Returns ``(y, cache)``.
    """
    xp = array_module(("x", x))
    check_float("x", x)
    check_shape("x", x, ("B", "C", "L"))
    K = check_positive_int("kernel_size", kernel_size)
    stride = K if stride is None else check_positive_int("stride", stride)
    _check_length_out("x", x.shape[-1], K, stride, 0, 1)
    windows = unfold1d(x, K, stride)                         # (B,C,K,L_out)
    argmax = windows.argmax(axis=2)                          # (B,C,L_out) the first maximum of each window
    y = xp.take_along_axis(windows, argmax[:, :, None], axis=2)[:, :, 0]            # (B,C,L_out)
    return y, MaxPool1dCache(argmax, x.shape[-1], K, stride, x.dtype)


def max_pool1d_backward(dy, cache: MaxPool1dCache):
    """Gradient of max pooling: each window's dy goes to its winning input, the others get 0.

    Shapes: dy (B, C, L_out) -> dx (B, C, L).
    """
    argmax, L, K, stride, dtype = cache
    xp = array_module(("dy", dy))
    check_grad("dy", dy, tuple(argmax.shape), dtype)
    winner = xp.arange(K)[:, None] == argmax[:, :, None, :]  # (B,C,K,L_out) one-hot over the taps
    dwindows = xp.where(winner, dy[:, :, None, :], 0)        # y = windows[argmax]  =>  route dy to the winner
    return fold1d(dwindows, L, stride)                       # windows = unfold(x)  =>  dx = fold (overlaps add up)


# --------------------------------------------------------------------------------------------
# Global pooling over time, ignoring padded positions
# --------------------------------------------------------------------------------------------

def _time_mask(x, mask, lengths):
    """(B, L) bool, True at real positions, from ``mask`` or ``lengths``; None when neither is given."""
    xp = array_module(("x", x), ("mask", mask))
    B, _, L = x.shape
    if mask is not None and lengths is not None:
        raise ValueError("mask and lengths: pass one of them, not both")
    if lengths is not None:
        lengths = check_lengths("lengths", lengths, L, B)                       # host int64 (B,)
        return xp.arange(L)[None, :] < xp.asarray(lengths)[:, None]             # (B,L)
    if mask is not None:
        if getattr(mask, "dtype", None) != bool:
            raise TypeError(f"mask: expected a bool array (True at real positions), got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        check_shape("mask", mask, (B, L))
        empty = ~mask.any(axis=1)
        if bool(empty.any()):
            raise ValueError(f"mask: every sequence needs at least one True (real) position; "
                             f"row {int(empty.argmax())} has none")
    return mask


class GlobalMaxPool1dCache(NamedTuple):
    argmax: object     # (B, C) int: the winning position l; x[b, c, l] gets all the gradient
    length: int        # L, for the shape of dx
    dtype: object      # x's dtype, that of y and so of dy


def global_max_pool1d_forward(x, mask=None, lengths=None):
    """``y[b, c] = max over real positions l of x[b, c, l]``: padded positions never win.

    Shapes: x (B, C, L), mask (B, L) bool (True at real positions) or lengths (B,) ints in [1, L]
    (position l is real when l < lengths[b]), or neither -> y (B, C). Returns ``(y, cache)``.
    """
    xp = array_module(("x", x))
    check_float("x", x)
    check_shape("x", x, ("B", "C", "L"))
    real = _time_mask(x, mask, lengths)
    scores = x if real is None else xp.where(real[:, None, :], x, -xp.inf)       # (B,C,L): padding cannot win
    argmax = scores.argmax(axis=2)                           # (B,C) the first maximum, as PyTorch's max
    y = xp.take_along_axis(x, argmax[:, :, None], axis=2)[:, :, 0]              # (B,C)
    return y, GlobalMaxPool1dCache(argmax, x.shape[-1], x.dtype)


def global_max_pool1d_backward(dy, cache: GlobalMaxPool1dCache):
    """Shapes: dy (B, C) -> dx (B, C, L): dy goes to the winning position of each (b, c), 0 elsewhere."""
    argmax, L, dtype = cache
    xp = array_module(("dy", dy))
    check_grad("dy", dy, tuple(argmax.shape), dtype)
    winner = xp.arange(L) == argmax[:, :, None]              # (B,C,L) one-hot over time
    return xp.where(winner, dy[:, :, None], 0)               # y = x[argmax]  =>  route dy to the winner


class GlobalAvgPool1dCache(NamedTuple):
    real: object       # (B, L) bool, True at real positions; None: all positions are real
    count: object      # (B, 1) the number of real positions (x's dtype), or the int L without a mask
    shape: tuple       # x.shape (B, C, L), for the shape of dx
    dtype: object      # x's dtype, that of y and so of dy


def global_avg_pool1d_forward(x, mask=None, lengths=None):
    """``y[b, c] = mean over real positions l of x[b, c, l]``: padded positions are left out.

    Shapes: x (B, C, L), mask (B, L) bool (True at real positions) or lengths (B,) ints in [1, L],
    or neither -> y (B, C). Returns ``(y, cache)``.
    """
    xp = array_module(("x", x))
    check_float("x", x)
    check_shape("x", x, ("B", "C", "L"))
    real = _time_mask(x, mask, lengths)
    if real is None:
        count = x.shape[-1]
        y = x.sum(axis=2) / count                                               # (B,C)
    else:
        count = real.sum(axis=1, keepdims=True).astype(x.dtype)                 # (B,1) real positions per row
        y = xp.where(real[:, None, :], x, 0).sum(axis=2) / count                # (B,C): padding adds nothing
    return y, GlobalAvgPool1dCache(real, count, tuple(x.shape), x.dtype)


def global_avg_pool1d_backward(dy, cache: GlobalAvgPool1dCache):
    """Shapes: dy (B, C) -> dx (B, C, L): each real position gets dy / count, padding gets 0."""
    real, count, shape, dtype = cache
    xp = array_module(("dy", dy))
    check_grad("dy", dy, shape[:2], dtype)
    share = (dy / count)[:, :, None]                         # y = sum_l x_l / count  =>  dx_l = dy / count
    if real is None:
        return xp.broadcast_to(share, shape).copy()
    return xp.where(real[:, None, :], share, 0)              # padded positions do not enter y
