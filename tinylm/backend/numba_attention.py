"""Numba CPU kernels for scaled dot-product attention, registered for backend "numba".

Versions (all stay registered: ``get_kernel("attention", "numba", "v1_flash_rows")``):

  v1_flash_rows  FlashAttention-2's algorithm, one query row at a time: the keys are visited in
                 tiles of BK with an online softmax (running max m and running sum l, the partial
                 output rescaled by exp(m_old - m_new) whenever the max grows), so the (T, S) score
                 matrix never exists. The forward keeps only O and the row log-sum-exp
                 lse = m + log(l); the backward recomputes each tile's probabilities as
                 exp(scale q.k - lse) and forms dQ, dK, dV in the same pass. Parallel over B x H.
  v2_flash_tiles (default) the same algorithm on blocks of 4 query rows: every key and value row
                 loaded from memory serves 4 queries (``_dot_4``: four dot products in four scalar
                 accumulators, see numba_matmul.py's v3 for why scalars), and the 4 output rows,
                 dK and dV rows are updated together. About 1.4x v1 forward and 1.6x backward.

Derivation of the online softmax and the tiled backward: derivations/flash_attention.md.
Calling convention, masks and fully-masked rows: tinylm/ops/attention.py (a row that sees no key
outputs 0 and gets zero gradients; causal aligns queries to the END of the keys when T < S).
With a dropout mask these kernels hand the call to the reference kernel (a flash kernel would
regenerate the mask from a seed per tile; tinylm draws it on the host so every backend agrees).
Extra memory: O(B H T) for lse and a few (BK,) scratch rows per thread; never (T, S).

Numba here has no SVML, so ``math.exp`` would be a scalar libm call per score. :func:`_exp_tile`
evaluates exp on a whole tile in a form the compiler vectorises: x = n ln2 + r with |r| <= ln2/2,
exp(r) by its Taylor polynomial (degree 7 in float32, 12 in float64; relative error ~|x| eps),
and 2^n written straight into the exponent bits through an integer view of the scratch row.
Tests: tests/test_kernels.py (float64 oracle, odd shapes, masks), tests/test_numba_kernels.py.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from tinylm.backend.registry import get_kernel, register_kernel

__all__ = ["FlashCache", "flash_attention_forward", "flash_attention_backward",
           "flash_rows_forward", "flash_rows_backward"]

# fastmath without "ninf"/"nnan": the kernels test for -inf (masked scores, empty rows) and +inf (the
# lse of a row that saw no key), and with those flags the compiler may assume such tests are false.
# "reassoc" is the flag that lets it vectorise the dot-product reductions.
_JIT = dict(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp", "afn"}, nogil=True)

BK = 64          # keys per tile: one tile of scores, probabilities and exponent bits stays in L1
LOG2E = 1.4426950408889634
# r = x - k ln2 with ln 2 rounded to the working precision: relative error ~ |x| * eps / 2, so 1e-14 at
# x = -700 in float64 and 3e-6 at x = -87 in float32, where exp(x) is far too small to matter. (A
# two-part ln 2 would remove it, but "reassoc" lets the compiler fold the two parts back together.)
LN2 = 0.6931471805599453
_TAYLOR_F32 = tuple(1.0 / math.factorial(n) for n in range(7, -1, -1))    # 1/7!, ..., 1/1!, 1/0!
_TAYLOR_F64 = tuple(1.0 / math.factorial(n) for n in range(12, -1, -1))


# ----------------------------------------------------------------------------------------------
# A vectorisable exp over a tile.
# ----------------------------------------------------------------------------------------------

@njit(inline="always", **_JIT)
def _exp_tile(x, bits, n):
    """x[:n] <- exp(x[:n]) / 2^k_j in place, bits[:n] <- the IEEE bits of 2^k_j; -inf gives exactly 0.

    ``bits`` is an integer view (int32 for float32, int64 for float64) of a scratch float row
    ``e``; :func:`_scale_by_pow2` then multiplies by ``e`` = 2^k. Two loops rather than one so that
    each is a plain vectorisable loop.
    """
    t = x.dtype.type
    f32 = x.itemsize == 4                                    # constant-folded per specialisation
    lo = t(-87.0) if f32 else t(-708.0)                      # below this exp underflows: clamp
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
            for c in _TAYLOR_F64:                            # Horner, degree 12: error < 2^-53
                p = p * r + t(c)
        bits[j] = (np.int64(k) + bias) << shift              # 2^k as IEEE bits
        x[j] = p if x[j] != -np.inf else t(0.0)
    return x


@njit(inline="always", **_JIT)
def _scale_by_pow2(x, e, n):
    for j in range(n):
        x[j] *= e[j]                                         # exp(r) * 2^k


@njit(inline="always", **_JIT)
def _dot(a, b):
    s = a.dtype.type(0)
    for d in range(a.shape[0]):
        s += a[d] * b[d]
    return s


@njit(inline="always", **_JIT)
def _key_range(i, T, S, causal):
    """Keys [0, hi) that query i may see before padding: all, or j <= i + S - T when causal."""
    return min(S, i + S - T + 1) if causal else S


# ----------------------------------------------------------------------------------------------
# v1: one query row at a time.
# ----------------------------------------------------------------------------------------------

@njit(parallel=True, **_JIT)
def _rows_forward(q, k, v, pad, causal, scale, out, lse, scratch, scratch_bits):
    B, H, T, D = q.shape
    S = k.shape[2]
    ninf = -np.inf
    for task in prange(B * H):
        b, h = divmod(np.int64(task), H)
        qb, kb, vb, ob = q[b, h], k[b, h], v[b, h], out[b, h]
        s, e, bits = scratch[task, 0], scratch[task, 1], scratch_bits[task, 1]
        for i in range(T):
            qi, oi = qb[i], ob[i]
            oi[:] = 0.0
            m, l = ninf, 0.0                                  # running max and running sum of exp
            hi = _key_range(i, T, S, causal)
            for j0 in range(0, hi, BK):
                n = min(BK, hi - j0)
                m_tile = ninf
                for j in range(n):                            # scores of this key tile
                    s[j] = ninf if pad[b, j0 + j] else scale * _dot(qi, kb[j0 + j])
                    m_tile = max(m_tile, s[j])
                if m_tile == ninf:
                    continue                                  # every key of the tile is padding
                m_new = max(m, m_tile)
                alpha = np.exp(m - m_new)                     # rescales what was summed so far (0 at the start)
                for j in range(n):
                    s[j] -= m_new
                _exp_tile(s, bits, n)
                _scale_by_pow2(s, e, n)                       # s[j] = p~_j = exp(s_j - m_new)
                l = l * alpha
                for d in range(D):
                    oi[d] *= alpha
                for j in range(n):
                    l += s[j]
                    vj, pj = vb[j0 + j], s[j]
                    for d in range(D):
                        oi[d] += pj * vj[d]                   # o += p~_j v_j
                m = m_new
            if l > 0.0:
                for d in range(D):
                    oi[d] /= l
                lse[b, h, i] = m + np.log(l)
            else:
                lse[b, h, i] = np.inf                         # sees no key: out 0, and exp(s - inf) = 0 later


@njit(parallel=True, **_JIT)
def _rows_backward(q, k, v, pad, causal, scale, out, dout, lse, dq, dk, dv, scratch, scratch_bits):
    B, H, T, D = q.shape
    S = k.shape[2]
    ninf = -np.inf
    for task in prange(B * H):
        b, h = divmod(np.int64(task), H)
        qb, kb, vb = q[b, h], k[b, h], v[b, h]
        dqb, dkb, dvb = dq[b, h], dk[b, h], dv[b, h]
        dqb[:] = 0.0
        dkb[:] = 0.0
        dvb[:] = 0.0
        p, e, bits = scratch[task, 0], scratch[task, 1], scratch_bits[task, 1]
        for i in range(T):
            L = lse[b, h, i]
            if L == np.inf:
                continue                                      # no key seen: all gradients 0
            qi, doi, dqi = qb[i], dout[b, h, i], dqb[i]
            delta = _dot(doi, out[b, h, i])                   # rowsum(dP * P) = dO_i . O_i
            hi = _key_range(i, T, S, causal)
            for j0 in range(0, hi, BK):
                n = min(BK, hi - j0)
                for j in range(n):                            # P_ij = exp(scale q_i.k_j - lse_i), recomputed
                    p[j] = ninf if pad[b, j0 + j] else scale * _dot(qi, kb[j0 + j]) - L
                _exp_tile(p, bits, n)
                _scale_by_pow2(p, e, n)
                for j in range(n):
                    pj = p[j]
                    if pj == 0.0:
                        continue
                    kj, vj, dkj, dvj = kb[j0 + j], vb[j0 + j], dkb[j0 + j], dvb[j0 + j]
                    dsj = pj * (_dot(doi, vj) - delta) * scale  # dS_ij = P_ij (dP_ij - delta_i), times scale
                    for d in range(D):
                        dvj[d] += pj * doi[d]                 # dV_j += P_ij dO_i
                        dqi[d] += dsj * kj[d]                 # dQ_i += scale dS_ij K_j
                        dkj[d] += dsj * qi[d]                 # dK_j += scale dS_ij Q_i


# ----------------------------------------------------------------------------------------------
# v2: blocks of 4 query rows.
# ----------------------------------------------------------------------------------------------

@njit(inline="always", **_JIT)
def _dot_4(a0, a1, a2, a3, x):
    """The 4 dot products a_r . x (one load of x serves four rows)."""
    z = x.dtype.type(0)
    s0 = s1 = s2 = s3 = z
    for d in range(x.shape[0]):
        xd = x[d]
        s0 += a0[d] * xd
        s1 += a1[d] * xd
        s2 += a2[d] * xd
        s3 += a3[d] * xd
    return s0, s1, s2, s3


@njit(parallel=True, **_JIT)
def _tiles_forward(q, k, v, pad, causal, scale, out, lse, scratch, scratch_bits):
    B, H, T, D = q.shape
    S = k.shape[2]
    ninf = -np.inf
    nblk = (T + 3) // 4
    for task in prange(B * H):
        b, h = divmod(np.int64(task), H)
        qb, kb, vb, ob = q[b, h], k[b, h], v[b, h], out[b, h]
        s, e, bits = scratch[task, 0], scratch[task, 1], scratch_bits[task, 1]
        acc = scratch[task, 2, :4 * D].reshape(4, D)           # the 4 output rows being accumulated
        m = np.empty(4, q.dtype)
        l = np.empty(4, q.dtype)
        for blk in range(nblk):
            i0 = blk * 4
            r_n = min(4, T - i0)                               # real rows in this block (the last may be short)
            q0, q1, q2, q3 = qb[i0], qb[min(i0 + 1, T - 1)], qb[min(i0 + 2, T - 1)], qb[min(i0 + 3, T - 1)]
            acc[:] = 0.0
            m[:] = ninf
            l[:] = 0.0
            hi = _key_range(i0 + r_n - 1, T, S, causal)        # the block's last row sees the most keys
            for j0 in range(0, hi, BK):
                n = min(BK, hi - j0)
                for j in range(n):                             # 4 x n scores: s[r*BK + j]
                    jj = j0 + j
                    s0, s1, s2, s3 = _dot_4(q0, q1, q2, q3, kb[jj])
                    s[j], s[BK + j], s[2 * BK + j], s[3 * BK + j] = s0, s1, s2, s3
                for r in range(r_n):
                    sr = s[r * BK:r * BK + n]
                    lim = _key_range(i0 + r, T, S, causal) - j0   # this row's causal limit inside the tile
                    m_tile = ninf
                    for j in range(n):
                        x = ninf if (pad[b, j0 + j] or j >= lim) else scale * sr[j]
                        sr[j] = x
                        m_tile = max(m_tile, x)
                    if m_tile == ninf:
                        sr[:] = 0.0                            # no key of the tile for this row: adds nothing
                        continue
                    m_new = max(m[r], m_tile)
                    alpha = np.exp(m[r] - m_new)
                    for j in range(n):
                        sr[j] -= m_new
                    _exp_tile(sr, bits, n)
                    _scale_by_pow2(sr, e, n)
                    l[r] *= alpha
                    for j in range(n):
                        l[r] += sr[j]
                    ar = acc[r]
                    for d in range(D):
                        ar[d] *= alpha
                    m[r] = m_new
                for j in range(n):                             # acc_r += p~_rj v_j: one load of v_j, 4 rows
                    vj = vb[j0 + j]
                    p0, p1, p2, p3 = s[j], s[BK + j], s[2 * BK + j], s[3 * BK + j]
                    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
                    for d in range(D):
                        vd = vj[d]
                        a0[d] += p0 * vd
                        a1[d] += p1 * vd
                        a2[d] += p2 * vd
                        a3[d] += p3 * vd
            for r in range(r_n):
                orow = ob[i0 + r]
                if l[r] > 0.0:
                    for d in range(D):
                        orow[d] = acc[r, d] / l[r]
                    lse[b, h, i0 + r] = m[r] + np.log(l[r])
                else:
                    orow[:] = 0.0
                    lse[b, h, i0 + r] = np.inf


@njit(parallel=True, **_JIT)
def _tiles_backward(q, k, v, pad, causal, scale, out, dout, lse, dq, dk, dv, scratch, scratch_bits):
    B, H, T, D = q.shape
    S = k.shape[2]
    ninf = -np.inf
    nblk = (T + 3) // 4
    for task in prange(B * H):
        b, h = divmod(np.int64(task), H)
        qb, kb, vb, dob = q[b, h], k[b, h], v[b, h], dout[b, h]
        dqb, dkb, dvb = dq[b, h], dk[b, h], dv[b, h]
        dqb[:] = 0.0
        dkb[:] = 0.0
        dvb[:] = 0.0
        p, e, bits = scratch[task, 0], scratch[task, 1], scratch_bits[task, 1]
        ds = scratch[task, 2]
        delta = np.empty(4, q.dtype)
        L = np.empty(4, q.dtype)
        for blk in range(nblk):
            i0 = blk * 4
            r_n = min(4, T - i0)
            rows = (i0, min(i0 + 1, T - 1), min(i0 + 2, T - 1), min(i0 + 3, T - 1))
            q0, q1, q2, q3 = qb[rows[0]], qb[rows[1]], qb[rows[2]], qb[rows[3]]
            g0, g1, g2, g3 = dob[rows[0]], dob[rows[1]], dob[rows[2]], dob[rows[3]]
            for r in range(4):
                L[r] = lse[b, h, rows[r]] if r < r_n else np.inf   # padding rows of the block: P = 0
                delta[r] = _dot(dob[rows[r]], out[b, h, rows[r]])  # rowsum(dP * P) = dO_i . O_i
            hi = _key_range(i0 + r_n - 1, T, S, causal)
            for j0 in range(0, hi, BK):
                n = min(BK, hi - j0)
                for j in range(n):                              # recompute P_rj = exp(scale q_r.k_j - lse_r)
                    s0, s1, s2, s3 = _dot_4(q0, q1, q2, q3, kb[j0 + j])
                    p[j], p[BK + j], p[2 * BK + j], p[3 * BK + j] = s0, s1, s2, s3
                for r in range(4):
                    pr = p[r * BK:r * BK + n]
                    lim = _key_range(i0 + r, T, S, causal) - j0
                    for j in range(n):
                        pr[j] = ninf if (pad[b, j0 + j] or j >= lim or L[r] == np.inf) else scale * pr[j] - L[r]
                    _exp_tile(pr, bits, n)
                    _scale_by_pow2(pr, e, n)
                for j in range(n):                              # dP_rj = dO_r . v_j: one load of v_j, 4 rows
                    d0, d1, d2, d3 = _dot_4(g0, g1, g2, g3, vb[j0 + j])
                    ds[j] = p[j] * (d0 - delta[0]) * scale      # scale dS_rj = scale P_rj (dP_rj - delta_r)
                    ds[BK + j] = p[BK + j] * (d1 - delta[1]) * scale
                    ds[2 * BK + j] = p[2 * BK + j] * (d2 - delta[2]) * scale
                    ds[3 * BK + j] = p[3 * BK + j] * (d3 - delta[3]) * scale
                for j in range(n):                              # dK_j, dV_j: sums over the block's 4 rows
                    jj = j0 + j
                    p0, p1, p2, p3 = p[j], p[BK + j], p[2 * BK + j], p[3 * BK + j]
                    c0, c1, c2, c3 = ds[j], ds[BK + j], ds[2 * BK + j], ds[3 * BK + j]
                    dvj, dkj = dvb[jj], dkb[jj]
                    for d in range(D):
                        dvj[d] += p0 * g0[d] + p1 * g1[d] + p2 * g2[d] + p3 * g3[d]   # dV_j += sum_r P_rj dO_r
                        dkj[d] += c0 * q0[d] + c1 * q1[d] + c2 * q2[d] + c3 * q3[d]   # dK_j += scale sum_r dS_rj Q_r
                for r in range(r_n):                            # dQ_r += scale sum_j dS_rj K_j
                    dqr, cr = dqb[i0 + r], ds[r * BK:r * BK + n]
                    for j in range(n):
                        kj, c = kb[j0 + j], cr[j]
                        for d in range(D):
                            dqr[d] += c * kj[d]


# ----------------------------------------------------------------------------------------------
# The registered kernels (calling convention of tinylm.ops.attention).
# ----------------------------------------------------------------------------------------------

class FlashCache(NamedTuple):
    version: str          # "rows" or "tiles": which backward to run
    q: np.ndarray         # (B,H,T,D)  C-contiguous; the backward recomputes the scores from q and k
    k: np.ndarray         # (B,H,S,D)
    v: np.ndarray         # (B,H,S,D)  for dP = dO V^T
    out: np.ndarray       # (B,H,T,D)  O, for delta_i = dO_i . O_i (the softmax backward's row sum)
    lse: np.ndarray       # (B,H,T)    row log-sum-exp m + log(l): P_ij = exp(s_ij - lse_i); inf = row sees no key
    pad: np.ndarray       # (B,S) bool True = padding key (all False when no mask was given)
    causal: bool
    scale: float


def _scratch(n_tasks, D, dtype):
    """Per-task rows: [0] scores/probabilities (4 x BK), [1] 2^k factors, [2] dS or the 4 output rows."""
    width = max(4 * BK, 4 * D)
    buf = np.empty((n_tasks, 3, width), dtype)
    return buf, buf.view(np.int32 if dtype == np.float32 else np.int64)


def _prepare(q, k, v, key_padding_mask):
    q, k, v = (np.ascontiguousarray(x) for x in (q, k, v))
    B, S = q.shape[0], k.shape[2]
    pad = np.zeros((B, S), np.bool_) if key_padding_mask is None else np.ascontiguousarray(key_padding_mask)
    return q, k, v, pad


def _forward(kind, q, k, v, causal, key_padding_mask, scale, dropout_mask):
    if dropout_mask is not None or q.dtype not in (np.float32, np.float64):
        # The reference kernel does dropout (and float16); its own cache brings the backward back to it.
        return get_kernel("attention", "numpy").forward(q, k, v, causal=causal, key_padding_mask=key_padding_mask,
                                                        scale=scale, dropout_mask=dropout_mask)
    q, k, v, pad = _prepare(q, k, v, key_padding_mask)
    B, H, T, D = q.shape
    out = np.empty_like(q)
    lse = np.empty((B, H, T), q.dtype)
    scratch, bits = _scratch(B * H, D, q.dtype)
    run = _rows_forward if kind == "rows" else _tiles_forward
    run(q, k, v, pad, causal, q.dtype.type(scale), out, lse, scratch, bits)
    return out, FlashCache(kind, q, k, v, out, lse, pad, causal, scale)


def _backward(dout, kernel_cache):
    if not isinstance(kernel_cache, FlashCache):
        return get_kernel("attention", "numpy").backward(dout, kernel_cache)
    kind, q, k, v, out, lse, pad, causal, scale = kernel_cache
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    scratch, bits = _scratch(q.shape[0] * q.shape[1], q.shape[3], q.dtype)
    run = _rows_backward if kind == "rows" else _tiles_backward
    run(q, k, v, pad, causal, q.dtype.type(scale), out, np.ascontiguousarray(dout), lse, dq, dk, dv,
        scratch, bits)
    return dq, dk, dv


def flash_rows_forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """v1: FlashAttention-2 forward, one query row at a time; keeps O and the row log-sum-exp."""
    return _forward("rows", q, k, v, causal, key_padding_mask, scale, dropout_mask)


def flash_attention_forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """v2: FlashAttention-2 forward on blocks of 4 query rows; keeps O and the row log-sum-exp."""
    return _forward("tiles", q, k, v, causal, key_padding_mask, scale, dropout_mask)


flash_rows_backward = flash_attention_backward = _backward

register_kernel("attention", "numba", "v1_flash_rows", flash_rows_forward, flash_rows_backward)
register_kernel("attention", "numba", "v2_flash_tiles", flash_attention_forward, flash_attention_backward,
                default=True)
