"""Linear (fully connected) layer: ``y = x W^T + b``, PyTorch's layout (weight is (out, in)).

Also ``linear_gelu``: ``y = gelu(x W^T + b)`` (GPT-2's tanh form), the first half of a Transformer
MLP, as one op so that a backend can compute it in one pass: the "linear" and "linear_gelu"
kernels of the registry. The reference kernels below are a matmul, an add and the GELU op; the
Numba kernels (tinylm/backend/numba_matmul.py, v4) add the bias and apply GELU to each output
block while it is still in cache ("fused epilogue").

Derivation: derivations/linear.md.  Modules: tinylm.nn.Linear, tinylm.nn.LinearGELU.
Tests: tests/test_ops_linear.py, tests/test_kernels.py.
"""
from __future__ import annotations

from typing import NamedTuple

from tinylm._checks import check_choice, check_float, check_grad, check_shape
from tinylm.backend import array_module
from tinylm.backend.registry import get_kernel, register_kernel
from tinylm.ops.activations import GELU_APPROXIMATIONS, GELUCache, gelu_backward, gelu_forward, gelu_parts
from tinylm.ops.matmul import matmul

__all__ = ["LinearCache", "linear_forward", "linear_backward",
           "LinearGELUCache", "linear_gelu_forward", "linear_gelu_backward"]


# ----------------------------------------------------------------------------------------------
# Reference kernels (every backend; the Numba backend registers fused ones).
# ----------------------------------------------------------------------------------------------

def linear_reference(x2, weight, bias):
    """Reference "linear" kernel: x2 (N, in) @ weight.T (in, out) + bias (out,) -> h (N, out)."""
    h = matmul(x2, weight.T)                                 # (N, in) @ (in, out) -> (N, out)
    return h if bias is None else h + bias                   # (N, out) + (out,)


def linear_gelu_reference(x2, weight, bias):
    """Reference "linear_gelu" kernel -> (y, h, s), each (N, out): h = x2 W^T + b, s = tanh(u), y = gelu(h)."""
    h = linear_reference(x2, weight, bias)
    y, s = gelu_parts(h, "tanh")                             # s: tanh(sqrt(2/pi) (h + 0.044715 h^3))
    return y, h, s


def linear_gelu_reference_backward(dy, h, s):
    """Reference "linear_gelu" backward: dy (N, out), h and s from the forward -> dh (N, out)."""
    return gelu_backward(dy, GELUCache(h, s, "tanh"))


register_kernel("linear", "numpy", "v0_reference", linear_reference)
register_kernel("linear_gelu", "numpy", "v0_reference", linear_gelu_reference, linear_gelu_reference_backward)


def _check_linear_args(x, weight, bias):
    array_module(("x", x), ("weight", weight), ("bias", bias))
    check_float("x", x)
    check_float("weight", weight)
    dims = check_shape("weight", weight, ("out", "in"))
    check_shape("x", x, ("...", "in"), dims)
    if bias is not None:
        check_float("bias", bias)
        check_shape("bias", bias, ("out",), dims)
    if weight.dtype != x.dtype or (bias is not None and bias.dtype != x.dtype):
        got = f"x {x.dtype}, weight {weight.dtype}" + ("" if bias is None else f", bias {bias.dtype}")
        raise TypeError(f"linear: x, weight and bias must share one dtype, got {got}")


class LinearCache(NamedTuple):
    x: object        # (..., in)   the input, needed for dW = dy^T x
    weight: object   # (out, in)   needed for dx = dy W
    has_bias: bool   # whether a db is returned


def linear_forward(x, weight, bias=None):
    """``y = x @ weight.T + bias``.

    Shapes: x (..., in), weight (out, in), bias (out,) or None -> y (..., out).
    Returns ``(y, cache)``.
    """
    _check_linear_args(x, weight, bias)
    x2 = x.reshape(-1, x.shape[-1])                          # (N, in), N = prod(...)
    y = get_kernel("linear").forward(x2, weight, bias)       # (N, in) @ (in, out) + (out,) -> (N, out)
    return y.reshape(*x.shape[:-1], weight.shape[0]), LinearCache(x, weight, bias is not None)


def linear_backward(dy, cache: LinearCache):
    """Gradients of ``y = x W^T + b``.

    Shapes: dy (..., out) -> dx (..., in), dweight (out, in), dbias (out,) or None.
    """
    x, weight, has_bias = cache
    array_module(("dy", dy))
    check_grad("dy", dy, tuple(x.shape[:-1]) + (weight.shape[0],), x.dtype)
    dx = matmul(dy, weight)                                  # y = x W^T  =>  dx = dy W        (..., in)
    x2 = x.reshape(-1, x.shape[-1])                          # (N, in), N = prod(...)
    dy2 = dy.reshape(-1, dy.shape[-1])                       # (N, out)
    dweight = matmul(dy2.T, x2)                              # y = x W^T  =>  dW = dy^T x      (out, in)
    dbias = dy2.sum(axis=0) if has_bias else None            # y = ... + b  =>  db = sum_N dy  (out,)
    return dx, dweight, dbias


# ----------------------------------------------------------------------------------------------
# Linear + GELU as one op.
# ----------------------------------------------------------------------------------------------

class LinearGELUCache(NamedTuple):
    linear: LinearCache  # x and W, for the linear backward
    gelu: GELUCache      # h = x W^T + b and s = tanh(u) (or Phi(h)), for the GELU backward


def linear_gelu_forward(x, weight, bias=None, approximate: str = "tanh"):
    """``y = gelu(x @ weight.T + bias)``: GPT-2's MLP input projection and activation as one op.

    Shapes: x (..., in), weight (out, in), bias (out,) or None -> y (..., out).
    ``approximate="tanh"`` (GPT-2's form) runs the backend's fused "linear_gelu" kernel;
    ``"none"`` (the exact erf form) is a linear op followed by the GELU op.
    Returns ``(y, cache)``.
    """
    check_choice("approximate", approximate, GELU_APPROXIMATIONS)
    if approximate == "none":
        h, linear_cache = linear_forward(x, weight, bias)
        y, gelu_cache = gelu_forward(h, "none")
        return y, LinearGELUCache(linear_cache, gelu_cache)
    _check_linear_args(x, weight, bias)
    x2 = x.reshape(-1, x.shape[-1])                          # (N, in)
    y, h, s = get_kernel("linear_gelu").forward(x2, weight, bias)   # each (N, out)
    shape = (*x.shape[:-1], weight.shape[0])
    return y.reshape(shape), LinearGELUCache(LinearCache(x, weight, bias is not None),
                                             GELUCache(h.reshape(shape), s.reshape(shape), "tanh"))


def linear_gelu_backward(dy, cache: LinearGELUCache):
    """Gradients of ``y = gelu(x W^T + b)``: the GELU backward, then the linear backward.

    Shapes: dy (..., out) -> dx (..., in), dweight (out, in), dbias (out,) or None.
    """
    h, s, approximate = cache.gelu
    if approximate == "none":
        dh = gelu_backward(dy, cache.gelu)                   # y = gelu(h)  =>  dh = dy gelu'(h)   (..., out)
    else:
        array_module(("dy", dy))
        check_grad("dy", dy, tuple(h.shape), h.dtype)
        dh = get_kernel("linear_gelu").backward(dy, h, s)    # the same, in one pass where the backend can
    return linear_backward(dh, cache.linear)                 # h = x W^T + b
