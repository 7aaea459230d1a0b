"""Layer normalisation over the last dimension: ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

Statistics are per row (every leading index), the variance is the biased one (divide by C), as
in PyTorch's ``nn.LayerNorm``.

The arithmetic is the registry's "layernorm" kernel: the reference kernels below (written against
``xp``, so they run on every backend), or a backend's own (tinylm/backend/numba_layernorm.py: one
pass per row instead of NumPy's eight passes over the whole array).

Derivation: derivations/layernorm.md.  Module: tinylm.nn.normalization.LayerNorm.
Test: tests/test_ops_layernorm.py, tests/test_kernels.py.
"""
from __future__ import annotations

from typing import NamedTuple

from tinylm._checks import check_float, check_grad, check_positive_float, check_shape
from tinylm.backend import array_module
from tinylm.backend.registry import get_kernel, register_kernel

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
    array_module(("x", x), ("weight", weight), ("bias", bias))
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
    eps = check_positive_float("eps", eps)

    C = dims["C"]
    y, xhat, rstd = get_kernel("layernorm").forward(x.reshape(-1, C), weight, bias, eps)   # (N, C), N rows
    return y.reshape(x.shape), LayerNormCache(xhat.reshape(x.shape), rstd.reshape(*x.shape[:-1], 1), weight,
                                              bias is not None)


def layernorm_backward(dy, cache: LayerNormCache):
    """Gradients of layer normalisation.

    Shapes: dy (..., C) -> dx (..., C), dweight (C,) or None, dbias (C,) or None
    (``None`` where the forward had no such parameter).
    """
    xhat, rstd, weight, has_bias = cache
    array_module(("dy", dy))
    check_grad("dy", dy, tuple(xhat.shape), xhat.dtype)
    C = xhat.shape[-1]
    dx, dweight, dbias = get_kernel("layernorm").backward(dy.reshape(-1, C), xhat.reshape(-1, C), rstd.reshape(-1, 1),
                                                          weight, has_bias)
    return dx.reshape(xhat.shape), dweight, dbias


# ----------------------------------------------------------------------------------------------
# Reference kernels: rows x2 (N, C).
# ----------------------------------------------------------------------------------------------

def layernorm_reference_forward(x2, weight, bias, eps):
    """x2 (N, C), weight/bias (C,) or None -> y (N, C), xhat (N, C), rstd (N, 1)."""
    xp = array_module(("x", x2))
    mean = x2.mean(axis=-1, keepdims=True)                   # (N, C) -> (N, 1)
    xc = x2 - mean                                           # (N, C)
    var = (xc * xc).mean(axis=-1, keepdims=True)             # (N, 1)  biased: divide by C
    rstd = 1.0 / xp.sqrt(var + eps)                          # (N, 1)
    xhat = xc * rstd                                         # (N, C)  mean 0, variance ~1 per row
    y = xhat if weight is None else xhat * weight            # (N, C) * (C,)
    if bias is not None:
        y = y + bias                                         # (N, C) + (C,)
    return y, xhat, rstd


def layernorm_reference_backward(dy2, xhat, rstd, weight, has_bias):
    """dy2, xhat (N, C), rstd (N, 1), weight (C,) or None -> dx (N, C), dweight (C,) or None, dbias (C,) or None."""
    # Parameters are shared by all N rows, so their gradients sum over the rows.
    dweight = None if weight is None else (dy2 * xhat).sum(axis=0)   # y = xhat * w    (C,)
    dbias = dy2.sum(axis=0) if has_bias else None                    # y = ... + b     (C,)
    g = dy2 if weight is None else dy2 * weight              # y = xhat * w  =>  dxhat = dy * w        (N, C)
    # xhat = (x - mean) * rstd, with mean and rstd functions of the whole row (derivation, steps 2-5):
    dx = rstd * (g - g.mean(axis=-1, keepdims=True)
                 - xhat * (g * xhat).mean(axis=-1, keepdims=True))                     # (N, C)
    return dx, dweight, dbias


register_kernel("layernorm", "numpy", "v0_reference", layernorm_reference_forward, layernorm_reference_backward)
