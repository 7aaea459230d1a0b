"""A vectorisable exp for the Numba kernels (attention's softmax tiles, the fused GELU epilogue).

Numba here has no SVML, so ``math.exp``/``np.exp`` inside a kernel is a scalar libm call per value.
:func:`exp_tile` evaluates exp over a contiguous row in a form the compiler vectorises: x = k ln2 + r
with |r| <= ln2/2, exp(r) by its Taylor polynomial (degree 7 in float32, 12 in float64; relative error
~|x| eps), and 2^k written straight into the exponent bits through an integer view of a scratch row;
:func:`scale_by_pow2` multiplies the two. Derivation and error bounds: derivations/flash_attention.md
("A vectorisable exp"). Test: tests/test_numba_kernels.py (accuracy over the whole float range).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["exp_tile", "scale_by_pow2"]

# No "nnan"/"ninf": exp_tile tests for -inf. The callers' flags apply anyway where these are inlined.
_JIT = dict(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp", "afn"}, nogil=True)

LOG2E = 1.4426950408889634
# r = x - k ln2 with ln 2 rounded to the working precision: relative error ~ |x| * eps / 2, so 1e-14 at
# x = -700 in float64 and 3e-6 at x = -87 in float32, where exp(x) is far too small to matter. (A
# two-part ln 2 would remove it, but "reassoc" lets the compiler fold the two parts back together.)
LN2 = 0.6931471805599453
_TAYLOR_F32 = tuple(1.0 / math.factorial(n) for n in range(7, -1, -1))    # 1/7!, ..., 1/1!, 1/0!
_TAYLOR_F64 = tuple(1.0 / math.factorial(n) for n in range(12, -1, -1))


@njit(inline="always", **_JIT)
def exp_tile(x, bits, n):
    """x[:n] <- exp(x[:n]) / 2^k_j in place, bits[:n] <- the IEEE bits of 2^k_j; -inf gives exactly 0.

    ``bits`` is an integer view (int32 for float32, int64 for float64) of a scratch float row
    ``e``; :func:`scale_by_pow2` then multiplies by ``e`` = 2^k. Two loops rather than one so that
    each is a plain vectorisable loop.
    """
    t = x.dtype.type
    f32 = x.itemsize == 4                                    # constant-folded per specialisation
    lo = t(-87.0) if f32 else t(-708.0)                      # clamp: below it we return e^lo, not 0
    shift = 23 if f32 else 52                                # mantissa bits
    bias = 127 if f32 else 1023                              # exponent bias
    for j in range(n):
        xj = max(x[j], lo)
        k = np.floor(xj * t(LOG2E) + t(0.5))                 # x = k ln2 + r, |r| <= ln2 / 2
        r = xj - k * t(LN2)
        p = t(0.0)
        if f32:
            for c in _TAYLOR_F32:                            # Horner, degree 7: error < 2^-24
                p = p * r + t(c)
        else:
            for c in _TAYLOR_F64:                            # Horner, degree 12: error ~1.7e-16
                p = p * r + t(c)
        bits[j] = (np.int64(k) + bias) << shift              # 2^k as IEEE bits
        x[j] = p if x[j] != -np.inf else t(0.0)
    return x


@njit(inline="always", **_JIT)
def scale_by_pow2(x, e, n):
    """x[:n] *= e[:n]: with ``e`` the float view of exp_tile's ``bits``, this completes exp(x) = exp(r) 2^k."""
    for j in range(n):
        x[j] *= e[j]                                         # exp(r) * 2^k
