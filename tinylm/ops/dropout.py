"""Inverted dropout: ``y = x * mask / (1 - p)`` with ``mask ~ Bernoulli(1 - p)``, identity at eval.

Scaling the kept entries by ``1 / (1 - p)`` during training keeps ``E[y] = x``, so evaluation
needs no rescaling. The mask is drawn on the host from tinylm's generator
(``tinylm.random.make_rng``) and then moved to the backend, so a seed drops the same entries
on every backend.

Derivation: derivations/dropout.md.  Module: tinylm.nn.dropout.Dropout.  Test: tests/test_ops_dropout.py.
"""
from __future__ import annotations

from typing import NamedTuple

from tinylm._checks import check_flag, check_float, check_grad, check_probability
from tinylm.backend import array_module
from tinylm.random import make_rng

__all__ = ["DropoutCache", "dropout_forward", "dropout_backward"]


class DropoutCache(NamedTuple):
    mask: object   # (...) the scaled mask, 0 or 1/(1-p), so that dx = dy * mask; None when the forward was identity
    shape: tuple   # x.shape, to check dy against
    dtype: object  # x.dtype, likewise


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
    training = check_flag("training", training)
    if not training or p == 0.0:
        return x, DropoutCache(None, tuple(x.shape), x.dtype)
    keep = make_rng(rng, name="rng").random(x.shape) >= p                # host draw: P(keep) = 1 - p
    mask = xp.asarray(keep.astype(x.dtype) / (1.0 - p))      # (...) 0 or 1/(1-p), on the backend, x's dtype
    y = x * mask                                             # (...)
    return y, DropoutCache(mask, tuple(x.shape), x.dtype)


def dropout_backward(dy, cache: DropoutCache):
    """Gradient of dropout. Shapes: dy (...) -> dx (...)."""
    mask, shape, dtype = cache
    array_module(("dy", dy))
    check_grad("dy", dy, shape, dtype)
    if mask is None:
        return dy                                            # y = x  =>  dx = dy
    return dy * mask                                         # y = x * mask  =>  dx = dy * mask
