"""Inverted dropout: ``y = x * mask / (1 - p)`` with ``mask ~ Bernoulli(1 - p)``, identity at eval.

Scaling the kept entries by ``1 / (1 - p)`` during training keeps ``E[y] = x``, so evaluation
needs no rescaling. The mask is drawn on the host from tinylm's generator
(``tinylm.random.make_rng``) and then moved to the backend, so a seed drops the same entries
on every backend.

Derivation: derivations/dropout.md.  Module: tinylm.nn.dropout.Dropout.  Test: tests/test_ops_dropout.py.
"""
from __future__ import annotations

from typing import NamedTuple

from tinylm._checks import check_float, check_probability, check_shape
from tinylm.backend import array_module
from tinylm.random import make_rng

__all__ = ["DropoutCache", "dropout_forward", "dropout_backward"]


class DropoutCache(NamedTuple):
    mask: object   # (...) the scaled mask, 0 or 1/(1-p), so that dx = dy * mask; None when the forward was identity
    shape: tuple   # x.shape, to check dy against


def dropout_forward(x, p, training=True, rng=None):
    """Zero each entry of ``x`` with probability ``p`` and scale the survivors by ``1 / (1 - p)``.

    Shapes: x (...) -> y (...), same dtype. ``p`` in [0, 1). When ``training`` is False or
    ``p == 0`` this is the identity (``y`` is ``x``). ``rng``: None (tinylm's global generator),
    an int seed (a fresh generator: the same mask on every call) or a ``numpy.random.Generator``.
    Returns ``(y, cache)``.
    """
    xp = array_module(("x", x))
    check_float("x", x)
    p = check_probability("p", p)
    if not training or p == 0.0:
        return x, DropoutCache(None, tuple(x.shape))
    keep = make_rng(rng).random(x.shape) >= p                # host draw: P(keep) = 1 - p
    mask = xp.asarray(keep.astype(x.dtype) / (1.0 - p))      # (...) 0 or 1/(1-p), on the backend, x's dtype
    y = x * mask                                             # (...)
    return y, DropoutCache(mask, tuple(x.shape))


def dropout_backward(dy, cache: DropoutCache):
    """Gradient of dropout. Shapes: dy (...) -> dx (...)."""
    mask, shape = cache
    array_module(("dy", dy))
    check_shape("dy", dy, shape)
    if mask is None:
        return dy                                            # y = x  =>  dx = dy
    return dy * mask                                         # y = x * mask  =>  dx = dy * mask
