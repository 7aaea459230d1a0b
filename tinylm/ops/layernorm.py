"""Layer normalisation over the last dimension: ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

Statistics are per row (every leading index), the variance is the biased one (divide by C), as
in PyTorch's ``nn.LayerNorm``.

Derivation: derivations/layernorm.md.  Module: tinylm.nn.normalization.LayerNorm.
Test: tests/test_ops_layernorm.py.
"""
from __future__ import annotations

from typing import NamedTuple

from tinylm._checks import check_float, check_shape
from tinylm.backend import array_module

__all__ = ["LayerNormCache", "layernorm_forward", "layernorm_backward"]


class LayerNormCache(NamedTuple):
    xhat: object     # (..., C) the normalised input: dweight = sum dy * xhat, and it appears in dx
    rstd: object     # (..., 1) 1 / sqrt(var + eps): the factor in front of dx; with xhat it replaces x and mean
    weight: object   # (C,) or None, for g = dy * weight
    has_bias: bool   # whether a dbias is returned


def layernorm_forward(x, weight=None, bias=None, eps=1e-5):
    """Normalise each row of ``x`` to mean 0 and variance 1, then scale by ``weight`` and shift by ``bias``.

    Shapes: x (..., C), weight (C,) or None, bias (C,) or None -> y (..., C), same dtype as x.
    ``eps`` (> 0) is added to the variance for stability. Returns ``(y, cache)``.
    """
    xp = array_module(("x", x), ("weight", weight), ("bias", bias))
    check_float("x", x)
    dims = check_shape("x", x, ("...", "C"))
    if dims["C"] == 0:
        raise ValueError(f"x: cannot normalise over an empty last dimension, got shape {tuple(x.shape)}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            check_float(name, p)
            check_shape(name, p, ("C",), dims)
            if p.dtype != x.dtype:
                raise TypeError(f"{name}: expected dtype {x.dtype} (the dtype of x), got {p.dtype}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"eps: expected a positive float, got {eps!r}")

    mean = x.mean(axis=-1, keepdims=True)                    # (..., C) -> (..., 1)
    xc = x - mean                                            # (..., C)
    var = (xc * xc).mean(axis=-1, keepdims=True)             # (..., 1)  biased: divide by C
    rstd = 1.0 / xp.sqrt(var + eps)                          # (..., 1)
    xhat = xc * rstd                                         # (..., C)  mean 0, variance ~1 per row
    y = xhat if weight is None else xhat * weight            # (..., C) * (C,)
    if bias is not None:
        y = y + bias                                         # (..., C) + (C,)
    return y, LayerNormCache(xhat, rstd, weight, bias is not None)


def layernorm_backward(dy, cache: LayerNormCache):
    """Gradients of layer normalisation.

    Shapes: dy (..., C) -> dx (..., C), dweight (C,) or None, dbias (C,) or None
    (``None`` where the forward had no such parameter).
    """
    xhat, rstd, weight, has_bias = cache
    array_module(("dy", dy))
    check_shape("dy", dy, tuple(xhat.shape))
    C = xhat.shape[-1]
    # Parameters are shared by all N = prod(...) rows, so their gradients sum over the rows.
    dweight = None if weight is None else (dy * xhat).reshape(-1, C).sum(axis=0)  # y = xhat * w    (C,)
    dbias = dy.reshape(-1, C).sum(axis=0) if has_bias else None                  # y = ... + b     (C,)
    g = dy if weight is None else dy * weight                # y = xhat * w  =>  dxhat = dy * w        (..., C)
    # xhat = (x - mean) * rstd, with mean and rstd functions of the whole row (derivation, steps 2-5):
    dx = rstd * (g - g.mean(axis=-1, keepdims=True)
                 - xhat * (g * xhat).mean(axis=-1, keepdims=True))                     # (..., C)
    return dx, dweight, dbias
