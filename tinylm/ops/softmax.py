"""Softmax and log-softmax along one axis, max-subtracted so that logits of any size stay finite.

A slice (row) along ``axis`` whose entries are all ``-inf`` has no allowed entry (e.g. a fully
masked attention row). Rather than 0/0 = NaN, tinylm defines its softmax as all zeros and its
log-softmax as all ``-inf`` (= log 0), with no warning; the backward gives 0 (softmax) and dy
(log-softmax, the formula with p = 0) there. Both are conventions, not derivatives (the output does
not vary with x there), and harmless: callers mask such rows, so their dy is 0 anyway. Entries of ``+inf`` or NaN give NaN, as in PyTorch.

Derivation: derivations/softmax.md.  Modules: tinylm.nn.Softmax, tinylm.nn.LogSoftmax.
Test: tests/test_ops_softmax.py (PyTorch cross-check: tests/test_torch_losses.py).
"""
from __future__ import annotations

from typing import NamedTuple

from tinylm._checks import check_float, check_grad
from tinylm.backend import array_module

__all__ = ["SoftmaxCache", "LogSoftmaxCache", "softmax", "log_softmax", "softmax_forward", "softmax_backward",
           "log_softmax_forward", "log_softmax_backward"]


def _check_axis(x, axis) -> None:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"axis: expected an int, got {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis: expected an axis of x, whose shape is {tuple(x.shape)}, got {axis}")
    if x.shape[axis] == 0:
        raise ValueError(f"x: softmax needs at least one entry along axis {axis}, got shape {tuple(x.shape)}")


def _shifted_exp(x, axis: int):
    """``(z, e, s)``: ``z = x - max``, ``e = exp(z)`` and ``s = sum(e)`` along ``axis``.

    After the shift the largest entry is 0, so ``e`` <= 1 never overflows and ``s`` >= 1. An
    all ``-inf`` row is shifted by 0 instead (``-inf - (-inf)`` is NaN); its ``e`` is all 0 and
    its ``s`` is set to 1, so that ``e / s = 0`` and ``z - log s = -inf`` need no 0/0 or log 0.
    """
    xp = array_module(("x", x))
    check_float("x", x)
    _check_axis(x, axis)
    m = x.max(axis=axis, keepdims=True)                # (..., 1, ...)
    m[xp.isneginf(m)] = 0                              # all -inf row: shift by 0, not by -inf
    z = x - m                                          # (...) <= 0
    e = xp.exp(z)                                      # (...) in [0, 1]
    s = e.sum(axis=axis, keepdims=True)                # (..., 1, ...) >= 1, or 0 for an all -inf row
    s[s == 0] = 1
    return z, e, s


def softmax(x, axis: int = -1):
    """``exp(x) / sum(exp(x))`` along ``axis`` (cache-free).  Shapes: x (...) -> (...), same dtype."""
    _, e, s = _shifted_exp(x, axis)
    return e / s


def log_softmax(x, axis: int = -1):
    """``x - log(sum(exp(x)))`` along ``axis`` (cache-free).  Shapes: x (...) -> (...), same dtype."""
    xp = array_module(("x", x))
    z, _, s = _shifted_exp(x, axis)
    return z - xp.log(s)


class SoftmaxCache(NamedTuple):
    y: object      # (...) the output: the Jacobian-vector product needs only y
    axis: int      # the axis the softmax normalised over


def softmax_forward(x, axis: int = -1):
    """``y = softmax(x)`` along ``axis``.  Shapes: x (...) -> y (...).  Returns ``(y, cache)``."""
    y = softmax(x, axis)
    return y, SoftmaxCache(y, axis)


def softmax_backward(dy, cache: SoftmaxCache):
    """Shapes: dy (...) -> dx (...)."""
    y, axis = cache
    array_module(("dy", dy))
    check_grad("dy", dy, tuple(y.shape), y.dtype)
    dot = (dy * y).sum(axis=axis, keepdims=True)       # sum_j dy_j y_j          (..., 1, ...)
    return y * (dy - dot)                              # dx_i = y_i (dy_i - sum_j dy_j y_j)


class LogSoftmaxCache(NamedTuple):
    y: object      # (...) the output log-probabilities; the backward recomputes p = exp(y)
    axis: int      # the axis the log-softmax normalised over


def log_softmax_forward(x, axis: int = -1):
    """``y = log_softmax(x)`` along ``axis``.  Shapes: x (...) -> y (...).  Returns ``(y, cache)``."""
    y = log_softmax(x, axis)
    return y, LogSoftmaxCache(y, axis)


def log_softmax_backward(dy, cache: LogSoftmaxCache):
    """Shapes: dy (...) -> dx (...)."""
    y, axis = cache
    xp = array_module(("dy", dy))
    check_grad("dy", dy, tuple(y.shape), y.dtype)
    p = xp.exp(y)                                      # softmax(x), recomputed from the log-probs
    return dy - p * dy.sum(axis=axis, keepdims=True)   # y_i = x_i - log s  =>  dx_i = dy_i - p_i sum_j dy_j
