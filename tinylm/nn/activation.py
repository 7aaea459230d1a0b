"""Activation modules, PyTorch's ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``, ``nn.GELU``, ``nn.Softmax``
and ``nn.LogSoftmax``, over tinylm.ops.activations and tinylm.ops.softmax. None has parameters.

Shapes: x (...) -> y (...), same dtype; ``backward(dy)`` returns dx of that shape.
Derivations: derivations/activations.md, derivations/softmax.md.
"""
from __future__ import annotations

import numpy as np

from tinylm._checks import check_choice
from tinylm.nn.module import Module
from tinylm.ops.activations import (GELU_APPROXIMATIONS, gelu_backward, gelu_forward, relu_backward, relu_forward,
                                    sigmoid_backward, sigmoid_forward, tanh_backward, tanh_forward)
from tinylm.ops.softmax import log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward

__all__ = ["ReLU", "Tanh", "Sigmoid", "GELU", "Softmax", "LogSoftmax"]


class ReLU(Module):
    """``y = max(x, 0)``. Shapes: x (...) -> y (...); ``backward``: dy (...) -> dx (...)."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        y, self._cache = relu_forward(x)
        return y

    def backward(self, dy):
        return relu_backward(dy, self._need_cache(self._cache))        # y = relu(x)           (...)


class Tanh(Module):
    """``y = tanh(x)``. Shapes: x (...) -> y (...); ``backward``: dy (...) -> dx (...)."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        y, self._cache = tanh_forward(x)
        return y

    def backward(self, dy):
        return tanh_backward(dy, self._need_cache(self._cache))        # y = tanh(x)           (...)


class Sigmoid(Module):
    """``y = 1 / (1 + exp(-x))``, computed without overflow.

    Shapes: x (...) -> y (...); ``backward``: dy (...) -> dx (...).
    """

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        y, self._cache = sigmoid_forward(x)
        return y

    def backward(self, dy):
        return sigmoid_backward(dy, self._need_cache(self._cache))     # y = sigmoid(x)        (...)


class GELU(Module):
    """``y = x Phi(x)`` (``approximate="none"``) or GPT-2's tanh approximation (``approximate="tanh"``).

    Shapes: x (...) -> y (...); ``backward``: dy (...) -> dx (...).
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = check_choice("approximate", approximate, GELU_APPROXIMATIONS)
        self._cache = None

    def forward(self, x):
        y, self._cache = gelu_forward(x, self.approximate)
        return y

    def backward(self, dy):
        return gelu_backward(dy, self._need_cache(self._cache))        # y = gelu(x)           (...)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


def _check_dim(dim) -> int:
    """The axis of Softmax/LogSoftmax: an int (checked against x's dims at forward)."""
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim: expected an int (an axis of x), got {dim!r}")
    return int(dim)


class Softmax(Module):
    """``y = exp(x) / sum(exp(x))`` along ``dim``. Shapes: x (...) -> y (...); ``backward``: dy (...) -> dx (...)."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = _check_dim(dim)
        self._cache = None

    def forward(self, x):
        y, self._cache = softmax_forward(x, self.dim)
        return y

    def backward(self, dy):
        return softmax_backward(dy, self._need_cache(self._cache))     # y = softmax(x, dim)   (...)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``y = x - log(sum(exp(x)))`` along ``dim``. Shapes: x (...) -> y (...); ``backward``: dy (...) -> dx (...)."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = _check_dim(dim)
        self._cache = None

    def forward(self, x):
        y, self._cache = log_softmax_forward(x, self.dim)
        return y

    def backward(self, dy):
        return log_softmax_backward(dy, self._need_cache(self._cache))  # y = log_softmax(x, dim)  (...)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
