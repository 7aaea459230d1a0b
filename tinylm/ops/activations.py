"""Elementwise activations: ReLU, tanh, sigmoid and GELU (exact erf form and GPT-2's tanh form).

Every op maps x (any shape) to y of the same shape and dtype, and its backward maps dy (that
shape) to dx. ``sigmoid`` and ``gelu`` also come cache-free, for inference code.

Derivation: derivations/activations.md.  Modules: tinylm.nn.activation.
Test: tests/test_ops_activations.py (PyTorch cross-check: tests/test_torch_losses.py).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import scipy.special

from tinylm._checks import check_choice, check_float, check_grad
from tinylm.backend import array_module

__all__ = ["ReLUCache", "TanhCache", "SigmoidCache", "GELUCache", "GELU_APPROXIMATIONS",
           "relu_forward", "relu_backward", "tanh_forward", "tanh_backward",
           "sigmoid", "sigmoid_forward", "sigmoid_backward", "gelu", "gelu_parts", "gelu_forward", "gelu_backward"]

GELU_APPROXIMATIONS = ("none", "tanh")     # PyTorch's names: exact erf form, GPT-2's tanh approximation

_SQRT_1_2 = math.sqrt(0.5)                 # 1/sqrt(2), turns erf into the standard normal CDF
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)   # the standard normal density at 0
_SQRT_2_PI = math.sqrt(2.0 / math.pi)      # tanh form: u = sqrt(2/pi) (x + 0.044715 x^3)
_KAPPA = 0.044715


def _erf(x, xp):
    """The error function under ``xp``: NumPy has none, so SciPy's on the host, CuPy's on the GPU."""
    if xp.__name__ == "cupy":
        from cupyx.scipy.special import erf   # imported here: CuPy is an optional extra
        return erf(x)
    return scipy.special.erf(x)


def _check_dy(dy, like, dtype=None) -> None:
    """The upstream gradient: the forward output's shape (that of ``like``) and dtype (``like``'s,
    or ``dtype`` where ``like`` is a mask), float, no broadcast and no silent promotion."""
    array_module(("dy", dy))
    check_grad("dy", dy, tuple(like.shape), like.dtype if dtype is None else dtype)


# --- ReLU: y = max(x, 0) ---------------------------------------------------------------------

class ReLUCache(NamedTuple):
    mask: object   # (...) bool, x > 0: the whole derivative (1 where x > 0, else 0; 0 at x = 0 as PyTorch)
    dtype: object  # x's dtype, that of y and so of dy


def relu_forward(x):
    """``y = max(x, 0)``.  Shapes: x (...) -> y (...), same dtype.  Returns ``(y, cache)``."""
    xp = array_module(("x", x))
    check_float("x", x)
    mask = x > 0
    return xp.maximum(x, 0), ReLUCache(mask, x.dtype)


def relu_backward(dy, cache: ReLUCache):
    """Shapes: dy (...) -> dx (...)."""
    _check_dy(dy, cache.mask, cache.dtype)
    return dy * cache.mask                             # y = max(x, 0)  =>  dx = dy * [x > 0]


# --- tanh ------------------------------------------------------------------------------------

class TanhCache(NamedTuple):
    y: object      # (...) tanh(x): the derivative is 1 - y^2, so x itself is not needed


def tanh_forward(x):
    """``y = tanh(x)``.  Shapes: x (...) -> y (...), same dtype.  Returns ``(y, cache)``."""
    xp = array_module(("x", x))
    check_float("x", x)
    y = xp.tanh(x)
    return y, TanhCache(y)


def tanh_backward(dy, cache: TanhCache):
    """Shapes: dy (...) -> dx (...)."""
    _check_dy(dy, cache.y)
    y = cache.y
    return dy * (1 - y * y)                            # y = tanh(x)  =>  dx = dy (1 - y^2)


# --- sigmoid: y = 1 / (1 + e^{-x}) -------------------------------------------------------------

def sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow for any x (cache-free, for inference code).

    Only ``exp(-|x|)``, which lies in (0, 1], is ever computed: for x >= 0 the usual form
    ``1 / (1 + e)``, for x < 0 the equal ``e / (1 + e)`` with ``e = exp(x)``. Shapes: x (...) -> (...).
    """
    xp = array_module(("x", x))
    check_float("x", x)
    e = xp.exp(-xp.abs(x))                             # in (0, 1]: cannot overflow
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class SigmoidCache(NamedTuple):
    y: object      # (...) sigmoid(x): the derivative is y (1 - y)


def sigmoid_forward(x):
    """``y = sigmoid(x)`` (stable, see :func:`sigmoid`).  Shapes: x (...) -> y (...).  Returns ``(y, cache)``."""
    y = sigmoid(x)
    return y, SigmoidCache(y)


def sigmoid_backward(dy, cache: SigmoidCache):
    """Shapes: dy (...) -> dx (...)."""
    _check_dy(dy, cache.y)
    y = cache.y
    return dy * y * (1 - y)                            # y = 1/(1 + e^{-x})  =>  dx = dy y (1 - y)


# --- GELU: y = x Phi(x) ------------------------------------------------------------------------

def gelu_parts(x, approximate: str):
    """``(y, s)``: the GELU of x and the squashed value its derivative reuses,
    ``s = Phi(x)`` (approximate="none") or ``s = tanh(u)`` (approximate="tanh")."""
    xp = array_module(("x", x))
    check_float("x", x)
    check_choice("approximate", approximate, GELU_APPROXIMATIONS)
    if approximate == "none":
        s = 0.5 * (1 + _erf(x * _SQRT_1_2, xp))           # Phi(x), the standard normal CDF
        return x * s, s
    s = xp.tanh(_SQRT_2_PI * (x + _KAPPA * x * x * x))     # tanh(u)
    return 0.5 * x * (1 + s), s


def gelu(x, approximate: str = "none"):
    """GELU (cache-free, for inference code): ``x Phi(x)`` exactly, or with ``approximate="tanh"``
    GPT-2's ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.  Shapes: x (...) -> (...)."""
    return gelu_parts(x, approximate)[0]


class GELUCache(NamedTuple):
    x: object            # (...) the input: both derivatives have an x * (...) term
    s: object            # (...) Phi(x) ("none") or tanh(u) ("tanh"), so erf/tanh is not recomputed
    approximate: str     # which of the two forms the forward used


def gelu_forward(x, approximate: str = "none"):
    """GELU, exact (``approximate="none"``) or GPT-2's tanh approximation (``"tanh"``).

    Shapes: x (...) -> y (...), same dtype.  Returns ``(y, cache)``.
    """
    y, s = gelu_parts(x, approximate)
    return y, GELUCache(x, s, approximate)


def gelu_backward(dy, cache: GELUCache):
    """Shapes: dy (...) -> dx (...)."""
    x, s, approximate = cache
    xp = array_module(("dy", dy))
    _check_dy(dy, x)
    if approximate == "none":
        pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)        # phi(x) = Phi'(x)
        return dy * (s + x * pdf)                          # y = x Phi(x)  =>  dx = dy (Phi + x phi)
    du = _SQRT_2_PI * (1 + 3 * _KAPPA * x * x)             # u'(x)
    return dy * (0.5 * (1 + s) + 0.5 * x * (1 - s * s) * du)   # y = x (1 + tanh u)/2  =>  product + chain rule
