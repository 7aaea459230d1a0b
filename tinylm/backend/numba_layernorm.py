"""Numba CPU kernel for layer normalisation over rows, registered for backend "numba".

Versions:

  v1_rows  one pass per row for the forward (mean, variance, then xhat and y while the row is in
           L1) and for the backward (the two row means of g = dy w and g xhat, then dx), rows in
           parallel. The NumPy reference makes about eight passes over the whole (N, C) array
           each way, each a round trip through memory; at GPT's (2048, 128) that was ~1 ms per
           call against ~0.1 ms here. dweight and dbias sum over rows: each parallel chunk of rows
           sums into its own row of a partials array, and the few partial rows are added at the
           end (no two threads write the same memory, and the sum does not depend on timing).

Formulas and their derivation: derivations/layernorm.md (the names here are the derivation's:
xhat, rstd, g). Calling convention: tinylm/ops/layernorm.py's reference kernels.
Tests: tests/test_kernels.py (float64 oracle), tests/test_ops_layernorm.py.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinylm.backend.registry import register_kernel

__all__ = ["layernorm_rows_forward", "layernorm_rows_backward"]

# "reassoc" lets the compiler vectorise the row sums; no "nnan"/"ninf", so NaN and inf propagate.
# error_model="numpy": divisions follow IEEE (no ZeroDivisionError branch in the loops).
_JIT = dict(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, nogil=True, error_model="numpy")
ROWS = 64        # rows per parallel chunk (and per partial sum of dweight, dbias)


@njit(parallel=True, **_JIT)
def _forward(x, w, b, eps, y, xhat, rstd):
    N, C = x.shape
    t = x.dtype.type
    for chunk in prange((N + ROWS - 1) // ROWS):
        for n in range(chunk * ROWS, min(N, chunk * ROWS + ROWS)):
            xr, xh, yr = x[n], xhat[n], y[n]
            mean = t(0)
            for c in range(C):
                mean += xr[c]
            mean /= C
            var = t(0)
            for c in range(C):
                d = xr[c] - mean
                var += d * d
            r = t(1.0) / np.sqrt(var / C + t(eps))                   # rstd = 1 / sqrt(var + eps), biased var
            rstd[n, 0] = r
            for c in range(C):
                v = (xr[c] - mean) * r                               # xhat = (x - mean) rstd
                xh[c] = v
                yr[c] = v * w[c] + b[c]                              # y = xhat w + b


@njit(parallel=True, **_JIT)
def _backward(dy, xhat, rstd, w, dx, dw_part, db_part):
    N, C = dy.shape
    t = dy.dtype.type
    for chunk in prange((N + ROWS - 1) // ROWS):
        dwp, dbp = dw_part[chunk], db_part[chunk]
        dwp[:] = 0
        dbp[:] = 0
        for n in range(chunk * ROWS, min(N, chunk * ROWS + ROWS)):
            dyr, xh, dxr = dy[n], xhat[n], dx[n]
            g_mean = t(0)
            gx_mean = t(0)
            for c in range(C):
                g = dyr[c] * w[c]                                    # g = dxhat = dy w
                g_mean += g
                gx_mean += g * xh[c]
                dwp[c] += dyr[c] * xh[c]                             # dw = sum_n dy xhat
                dbp[c] += dyr[c]                                     # db = sum_n dy
            g_mean /= C
            gx_mean /= C
            r = rstd[n, 0]
            for c in range(C):
                dxr[c] = r * (dyr[c] * w[c] - g_mean - xh[c] * gx_mean)   # dx = rstd (g - mean g - xhat mean(g xhat))


def layernorm_rows_forward(x2, weight, bias, eps):
    """v1: x2 (N, C), weight/bias (C,) or None -> y (N, C), xhat (N, C), rstd (N, 1)."""
    N, C = x2.shape
    dt = x2.dtype
    if dt not in (np.float32, np.float64):                   # float16 & co: compute in float32
        args = (None if a is None else a.astype(np.float32) for a in (x2, weight, bias))
        return tuple(r.astype(dt) for r in layernorm_rows_forward(*args, eps))
    w = np.ones(C, dt) if weight is None else np.ascontiguousarray(weight)
    b = np.zeros(C, dt) if bias is None else np.ascontiguousarray(bias)
    y, xhat, rstd = np.empty((N, C), dt), np.empty((N, C), dt), np.empty((N, 1), dt)
    _forward(np.ascontiguousarray(x2), w, b, eps, y, xhat, rstd)
    return y, xhat, rstd


def layernorm_rows_backward(dy2, xhat, rstd, weight, has_bias):
    """v1: dy2, xhat (N, C), rstd (N, 1), weight (C,) or None -> dx (N, C), dweight (C,) or None, dbias or None."""
    N, C = xhat.shape
    dt = xhat.dtype
    if dt not in (np.float32, np.float64):
        args = (None if a is None else a.astype(np.float32) for a in (dy2, xhat, rstd, weight))
        return tuple(None if r is None else r.astype(dt) for r in layernorm_rows_backward(*args, has_bias))
    w = np.ones(C, dt) if weight is None else np.ascontiguousarray(weight)
    n_chunks = (N + ROWS - 1) // ROWS
    dx = np.empty((N, C), dt)
    dw_part, db_part = np.empty((n_chunks, C), dt), np.empty((n_chunks, C), dt)
    _backward(np.ascontiguousarray(dy2, dtype=dt), np.ascontiguousarray(xhat), np.ascontiguousarray(rstd), w,
              dx, dw_part, db_part)
    dweight = None if weight is None else dw_part.sum(axis=0)
    dbias = db_part.sum(axis=0) if has_bias else None
    return dx, dweight, dbias


register_kernel("layernorm", "numba", "v1_rows", layernorm_rows_forward, layernorm_rows_backward)
