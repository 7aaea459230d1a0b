"""Linear (fully connected) layer: ``y = x W^T + b``, PyTorch's layout (weight is (out, in)).

Derivation: derivations/linear.md.  Module: tinylm.nn.Linear.  Test: tests/test_ops_linear.py.
"""
from __future__ import annotations

from typing import NamedTuple

from tinylm._checks import check_float, check_shape
from tinylm.backend import array_module
from tinylm.ops.matmul import matmul

__all__ = ["LinearCache", "linear_forward", "linear_backward"]


class LinearCache(NamedTuple):
    x: object        # (..., in)   the input, needed for dW = dy^T x
    weight: object   # (out, in)   needed for dx = dy W
    has_bias: bool   # whether a db is returned


def linear_forward(x, weight, bias=None):
    """``y = x @ weight.T + bias``.

    Shapes: x (..., in), weight (out, in), bias (out,) or None -> y (..., out).
    Returns ``(y, cache)``.
    """
    array_module(("x", x), ("weight", weight), ("bias", bias))
    check_float("x", x)
    check_float("weight", weight)
    dims = check_shape("weight", weight, ("out", "in"))
    check_shape("x", x, ("...", "in"), dims)
    if bias is not None:
        check_float("bias", bias)
        check_shape("bias", bias, ("out",), dims)
    y = matmul(x, weight.T)                                  # (..., in) @ (in, out) -> (..., out)
    if bias is not None:
        y = y + bias                                         # (..., out) + (out,)
    return y, LinearCache(x, weight, bias is not None)


def linear_backward(dy, cache: LinearCache):
    """Gradients of ``y = x W^T + b``.

    Shapes: dy (..., out) -> dx (..., in), dweight (out, in), dbias (out,) or None.
    """
    x, weight, has_bias = cache
    check_shape("dy", dy, tuple(x.shape[:-1]) + (weight.shape[0],))
    dx = matmul(dy, weight)                                  # y = x W^T  =>  dx = dy W        (..., in)
    x2 = x.reshape(-1, x.shape[-1])                          # (N, in), N = prod(...)
    dy2 = dy.reshape(-1, dy.shape[-1])                       # (N, out)
    dweight = matmul(dy2.T, x2)                              # y = x W^T  =>  dW = dy^T x      (out, in)
    dbias = dy2.sum(axis=0) if has_bias else None            # y = ... + b  =>  db = sum_N dy  (out,)
    return dx, dweight, dbias
