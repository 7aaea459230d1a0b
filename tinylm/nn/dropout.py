"""``Dropout``: PyTorch's ``nn.Dropout`` (inverted dropout, active in training mode only)."""
from __future__ import annotations

from tinylm._checks import check_probability
from tinylm.nn.module import Module
from tinylm.ops.dropout import dropout_backward, dropout_forward
from tinylm.random import module_rng

__all__ = ["Dropout"]


class Dropout(Module):
    """Zero each entry with probability ``p`` and scale the rest by ``1 / (1 - p)`` while
    ``.training``; the identity after ``.eval()``.

    Shapes: x (...) -> y (...). No parameters.
    ``rng``: None draws masks from tinylm's global generator (``tinylm.manual_seed``); an int seed
    or a ``numpy.random.Generator`` gives this layer its own stream (``.rng``), so each call still
    draws a new mask.
    Derivation: derivations/dropout.md.
    """

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        self.p = check_probability("p", p)
        # Turn a seed into a generator once: passing the int on every call would repeat one mask.
        self.rng = module_rng(rng)
        self._cache = None

    def forward(self, x):
        y, self._cache = dropout_forward(x, self.p, self.training, self.rng)
        return y

    def backward(self, dy):
        return dropout_backward(dy, self._need_cache(self._cache))     # y = dropout(x)   (...)

    def extra_repr(self) -> str:
        return f"p={self.p}"
