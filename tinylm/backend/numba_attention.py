"""Numba CPU kernels for scaled dot-product attention, registered for backend "numba".

Versions (all stay registered: ``get_kernel("attention", "numba", "v1_flash_rows")``):

  v1_flash_rows  FlashAttention-2's algorithm, one query row at a time: the keys are visited in
                 tiles of BK with an online softmax (running max m and running sum l, the partial
                 output rescaled by exp(m_old - m_new) whenever the max grows), so the (T, S) score
                 matrix never exists. The forward keeps only O and the row log-sum-exp
                 lse = m + log(l); the backward recomputes each tile's probabilities as
                 exp(scale q.k - lse) and forms dQ, dK, dV in the same pass. Parallel over B x H.
  v2_flash_tiles the same algorithm on blocks of 4 query rows: every key and value row
                 loaded from memory serves 4 queries (``_dot_4``: four dot products in four scalar
                 accumulators, see numba_matmul.py's v3 for why scalars), and the 4 output rows,
                 dK and dV rows are updated together. About 1.4x v1 forward and 1.6x backward.
  v3_flash_blocks FlashAttention-2 blocking proper: 64 query rows against 64 keys, so
                 the tile products (forward S = Q K^T and P V; backward S again, dP = dO V^T,
                 dV += P^T dO, dK += dS^T Q, dQ += dS K) are small matrix products, written as
                 ``np.dot`` on contiguous 2-D tiles, which Numba lowers to a BLAS gemm call. On a
                 64 x 64 x 64 float32 tile OpenBLAS runs at ~255 GFLOP/s on one core here (A B and
                 A^T B; A B^T only ~160, so the forward holds the score tile transposed, keys x
                 queries, and the backward copies K^T and V^T once per key block); the best Numba
                 register tile (numba_matmul.py's 6 x 4) reaches ~65 on the same tile, where its
                 horizontal sums over a depth of only 64 dominate. Holding S^T also turns each
                 query's running max and sum into vector updates across a key row: a max reduction
                 along a row does not vectorise without fastmath's "nnan" (~0.75 cycles per score).
                 The forward runs (b, h, query block) tasks in parallel, the backward (b, h) tasks
                 (dK, dV sum over every query block, so no two tasks write the same rows). Tiles
                 are kept at M N K <= 2^18 so OpenBLAS never starts its own threads inside ours
                 (see _block_sizes). Forward + backward, float32, B = H = 4, D = 64, one thread,
                 against PyTorch 2.14 CPU ``scaled_dot_product_attention``: T = 256 1.55x (causal
                 2.4x), T = 1024 1.55x (2.1x), T = 2048 1.54x (1.8x); 2.5-3.7x v2. Caveat: with
                 OPENBLAS_CORETYPE=Haswell OpenBLAS uses its AVX2 kernels (~90 GFLOP/s on these tiles)
                 and v3 drops to ~0.8x PyTorch at T = 2048 (still ~2x v2).
  v4_flash_ukernel (default) v3's blocking with the five tile products on tinylm's own BLIS
                 micro-kernel (numba_microkernels.py: an 8 x NR register tile, NR = 32 float32 / 16
                 float64, over packed panels), so no BLAS call, no dependence on OpenBLAS's core type
                 and no tile-size cap for its threads. Each product is arranged so that its right
                 operand (read NR values per depth step) is a packed panel or a whole score tile:
                 the forward packs K once per call (8-key panels) and each task's NR queries as a
                 Q^T panel, holds S^T (keys x queries) as v3 does, and accumulates the output
                 transposed, O^T += V^T P^T, so P^T's rows serve as the panel; the backward (per
                 (b, h)) uses key blocks of exactly NR keys, so the (bq, NR) tiles P and dS are
                 themselves panels for dV^T += dO^T P and dK^T += Q^T dS, and packs Q, dO (8-row
                 panels) and K (along D) once per task. D is zero-padded to a multiple of 8.
                 Forward + backward, float32, B = H = 4, D = 64, 2 threads, against PyTorch 2.14
                 SDPA in one run (python -m tinylm.bench): causal 4.4x / 1.6x / 1.4x at T = 256 /
                 1024 / 2048, unmasked 2.0x / 1.2x / 1.2x, in either OPENBLAS_CORETYPE setting (v3:
                 1.4x unmasked with OpenBLAS's best kernels, 0.7x with OPENBLAS_CORETYPE=Haswell).
                 The micro-kernel is called, not inlined: inlined into each of the dozen call sites
                 it ran ~1.2x faster but took 4 minutes to compile; called, the first call compiles
                 in ~50 s (float32), then the cache.

Derivation of the online softmax, the tiled backward and v3's blocked form: derivations/flash_attention.md.
Calling convention, masks and fully-masked rows: tinylm/ops/attention.py (a row that sees no key
outputs 0 and gets zero gradients; causal aligns queries to the END of the keys when T < S).
With a dropout mask these kernels hand the call to the reference kernel (a flash kernel would
regenerate the mask from a seed per tile; tinylm draws it on the host so every backend agrees).
Extra memory: O(B H T) for lse, and per running task a few tiles of scratch (v3's backward also a (T,)
row for delta = rowsum(dO * O)); never (T, S).

Numba here has no SVML, so ``math.exp`` would be a scalar libm call per score: the kernels
exponentiate whole tiles with the vectorisable exp of :mod:`tinylm.backend.numba_math`.
Tests: tests/test_kernels.py (float64 oracle, odd shapes, masks), tests/test_numba_kernels.py,
tests/test_numba_attention_v3.py (v3 with tiny blocks, block sizes, threads),
tests/test_numba_attention_v4.py (v4 with small blocks, odd D, threads).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from tinylm.backend.numba_math import exp_tile, scale_by_pow2
from tinylm.backend.numba_matmul import _JIT_BLIS, _slp_vectorize
from tinylm.backend.numba_microkernels import ukernel
from tinylm.backend.registry import get_kernel, register_kernel

__all__ = ["FlashCache", "flash_attention_forward", "flash_attention_backward",
           "flash_rows_forward", "flash_rows_backward", "flash_blocks_forward", "flash_blocks_backward",
           "flash_ukernel_forward", "flash_ukernel_backward"]

# fastmath without "ninf"/"nnan": the kernels test for -inf (masked scores, empty rows) and +inf (the
# lse of a row that saw no key), and with those flags the compiler may assume such tests are false.
# "reassoc" is the flag that lets it vectorise the dot-product reductions.
_JIT = dict(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp", "afn"}, nogil=True)

BK = 64          # keys per tile: one tile of scores, probabilities and exponent bits stays in L1

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
                exp_tile(s, bits, n)
                scale_by_pow2(s, e, n)                       # s[j] = p~_j = exp(s_j - m_new)
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
                exp_tile(p, bits, n)
                scale_by_pow2(p, e, n)
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
                    exp_tile(sr, bits, n)
                    scale_by_pow2(sr, e, n)
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
                    exp_tile(pr, bits, n)
                    scale_by_pow2(pr, e, n)
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
# v3: blocks of BQ query rows against blocks of BK keys; the tile products are BLAS gemm calls.
# ----------------------------------------------------------------------------------------------

BQ3, BK3 = 64, 64     # query rows x keys per tile for D <= 64 (smaller for larger D, see _block_sizes)
SERIAL_GEMM = 2**18   # OpenBLAS runs a gemm with M N K <= this (65536 x its default threshold 4) on the caller


def _block_sizes(D):
    """(bq, bk) with bq * bk * D <= SERIAL_GEMM: every tile product runs on the thread that calls it.

    A bigger gemm called from inside our prange threads makes OpenBLAS wake its own threads as well,
    and the two thread pools fight over the cores: with 128 x 64 tiles at D = 64 (M N K = 2^19) a
    2-thread forward + backward at T = 2048 took 42 s instead of 0.5 s.
    """
    bk = min(BK3, max(1, SERIAL_GEMM // (8 * D)))
    bq = max(8, min(BQ3, SERIAL_GEMM // (bk * D)) // 8 * 8)
    return bq, bk


@njit(inline="always", **_JIT)
def _exp_inplace(x, bits):
    """x <- exp(x) in place for a flat contiguous x; ``bits``: integer scratch at least as long (see numba_math.exp_tile)."""
    n = x.shape[0]
    exp_tile(x, bits, n)
    scale_by_pow2(x, bits.view(x.dtype), n)


@njit(inline="always", **_JIT)
def _online_softmax_tile(st, st_flat, nk, pad_b, j0, i0, T, S, causal, scale, m, m_new, alpha, shift, l, bits):
    """One key tile of the forward's online softmax, on scores held transposed (keys x queries).

    In: st[:nk] (nk, nq) the unscaled scores q_r . k_j of keys j0.. and queries i0..; pad_b (S,) the
    batch row's key padding. Out: st[:nk] = p~ = exp(scale s - m_new) (0 where masked), the running
    max m and sum l of each query updated, and alpha = exp(m_old - m_new), which the caller applies
    to its o~ before adding p~ V. ``st_flat`` is st[:nk]'s memory as one row (for the vector exp);
    m_new and shift are scratch. Shared by v3 and v4: they differ only in how they multiply.
    """
    ninf = -np.inf
    nq = st.shape[1]
    m_new[:] = m
    for j in range(nk):                                 # scale, mask, and the new running max
        row = st[j]
        if pad_b[j0 + j]:
            row[:] = ninf
            continue
        r0 = max(0, j0 + j - (S - T) - i0) if causal else 0   # first query of the block that sees key j
        for r in range(min(r0, nq)):
            row[r] = ninf
        for r in range(r0, nq):
            x = scale * row[r]
            row[r] = x
            m_new[r] = max(m_new[r], x)
    for r in range(nq):
        seen = m_new[r] != ninf                         # has query r seen any key yet?
        alpha[r] = m[r] - m_new[r] if seen else 0.0     # exp(m_old - m_new) rescales what was summed so far
        shift[r] = m_new[r] if seen else 0.0            # (-inf - 0 stays -inf: unseen keys get p~ = 0)
    m[:] = m_new
    for j in range(nk):
        row = st[j]
        for r in range(nq):
            row[r] -= shift[r]
    _exp_inplace(st_flat, bits)                         # st <- p~^T = exp(s - m_new)
    _exp_inplace(alpha, bits)
    for r in range(nq):
        l[r] *= alpha[r]
    for j in range(nk):
        row = st[j]
        for r in range(nq):
            l[r] += row[r]                              # l <- alpha l + sum_j p~_j


@njit(parallel=True, **_JIT)
def _blocks_forward(q, k, v, pad, causal, scale, out, lse, bq, bk, bits_proto):
    """Queries in blocks of bq rows (one task each), keys in blocks of bk; the tile is held transposed.

    Scores come out as S^T (keys x queries) so that each query's running max and running sum are
    elementwise vector updates over a key row (max/sum *reductions* along a row do not vectorise
    without fastmath's "nnan"), and both tile products are gemm shapes OpenBLAS runs fastest
    (A B and A^T B; A B^T was ~40% slower at 64 x 64 x 64 here).
    """
    B, H, T, D = q.shape
    S = k.shape[2]
    ninf = -np.inf
    n_qblk = (T + bq - 1) // bq
    for task in prange(B * H * n_qblk):                        # (b, h, query block): many tasks balance the threads
        bh, blk = divmod(np.int64(task), n_qblk)
        b, h = divmod(bh, H)
        i0 = blk * bq
        nq = min(bq, T - i0)
        kb, vb = k[b, h], v[b, h]                               # (S, D)
        qt = np.ascontiguousarray(q[b, h, i0:i0 + nq].T)        # (D, nq): the block's queries as columns
        st_buf = np.empty(bk * nq, q.dtype)                     # per-task scratch (a few KiB)
        bits = np.empty(bk * nq, bits_proto.dtype)
        pv = np.empty((nq, D), q.dtype)
        acc = np.zeros((nq, D), q.dtype)                        # o~: the unnormalised output rows
        m = np.full(nq, ninf, q.dtype)                          # running max of each query's scores
        l = np.zeros(nq, q.dtype)                               # running sum of exp(s - m)
        m_new = np.empty(nq, q.dtype)
        alpha = np.empty(nq, q.dtype)
        shift = np.empty(nq, q.dtype)
        hi = _key_range(i0 + nq - 1, T, S, causal)             # causal: key blocks past the last row's are skipped
        for j0 in range(0, hi, bk):
            nk = min(bk, hi - j0)
            st = st_buf[:nk * nq].reshape(nk, nq)
            np.dot(kb[j0:j0 + nk], qt, st)                      # (nk,D) @ (D,nq) -> (nk,nq): S^T, unscaled
            _online_softmax_tile(st, st_buf[:nk * nq], nk, pad[b], j0, i0, T, S, causal, scale,   # st <- p~
                                 m, m_new, alpha, shift, l, bits)
            np.dot(st.T, vb[j0:j0 + nk], pv)                    # (nq,nk) @ (nk,D) -> (nq,D): p~ V
            for r in range(nq):
                a = alpha[r]
                for d in range(D):
                    acc[r, d] = acc[r, d] * a + pv[r, d]        # o~ <- alpha o~ + p~ V
        for r in range(nq):
            if l[r] > 0.0:
                out[b, h, i0 + r] = acc[r] / l[r]
                lse[b, h, i0 + r] = m[r] + np.log(l[r])
            else:
                out[b, h, i0 + r] = 0.0
                lse[b, h, i0 + r] = np.inf                      # sees no key: out 0, and exp(s - inf) = 0 later


@njit(parallel=True, **_JIT)
def _blocks_backward(q, k, v, pad, causal, scale, out, dout, lse, dq, dk, dv, bq, bk, bits_proto):
    """FlashAttention-2's order: one task per (b, h) (dK and dV sum over all query blocks); per key
    block, K^T and V^T are copied once so that the score and dP products are plain A B gemms."""
    B, H, T, D = q.shape
    S = k.shape[2]
    ninf = -np.inf
    for task in prange(B * H):
        b, h = divmod(np.int64(task), H)
        qb, kb, vb, dob = q[b, h], k[b, h], v[b, h], dout[b, h]
        dqb, dkb, dvb = dq[b, h], dk[b, h], dv[b, h]
        dqb[:] = 0.0
        p_buf = np.empty(bq * bk, q.dtype)
        ds_buf = np.empty(bq * bk, q.dtype)
        bits = np.empty(bq * bk, bits_proto.dtype)
        kt_buf = np.empty(D * bk, q.dtype)
        vt_buf = np.empty(D * bk, q.dtype)
        g_buf = np.empty(max(bq, bk) * D, q.dtype)              # one tile product before it is added
        delta = np.empty(T, q.dtype)
        for i in range(T):
            delta[i] = _dot(dob[i], out[b, h, i])               # rowsum(dP * P) = dO_i . O_i
        for j0 in range(0, S, bk):
            nk = min(bk, S - j0)
            kj, dkj, dvj = kb[j0:j0 + nk], dkb[j0:j0 + nk], dvb[j0:j0 + nk]
            kt = kt_buf[:D * nk].reshape(D, nk)
            vt = vt_buf[:D * nk].reshape(D, nk)
            kt[:] = kj.T                                        # (D, nk), reused by every query block
            vt[:] = vb[j0:j0 + nk].T
            dkj[:] = 0.0
            dvj[:] = 0.0
            g_k = g_buf[:nk * D].reshape(nk, D)
            first = max(0, j0 - (S - T)) if causal else 0       # causal: earlier queries do not see these keys
            for i0 in range(first - first % bq, T, bq):         # query blocks on the grid of bq rows
                nq = min(bq, T - i0)
                qi, doi, dqi = qb[i0:i0 + nq], dob[i0:i0 + nq], dqb[i0:i0 + nq]
                p = p_buf[:nq * nk].reshape(nq, nk)
                ds = ds_buf[:nq * nk].reshape(nq, nk)
                np.dot(qi, kt, p)                               # S = Q K^T            (nq,D) @ (D,nk)
                for r in range(nq):                             # P = exp(scale S - lse), 0 where unseen
                    pr = p[r]
                    lim = _key_range(i0 + r, T, S, causal) - j0
                    L = lse[b, h, i0 + r]
                    for j in range(nk):
                        pr[j] = ninf if (j >= lim or pad[b, j0 + j]) else scale * pr[j] - L
                _exp_inplace(p_buf[:nq * nk], bits)
                np.dot(doi, vt, ds)                             # dP = dO V^T          (nq,D) @ (D,nk)
                for r in range(nq):
                    dr, pr, dsr = delta[i0 + r], p[r], ds[r]
                    for j in range(nk):
                        dsr[j] = pr[j] * (dsr[j] - dr) * scale  # scale dS = scale P (dP - delta)
                np.dot(p.T, doi, g_k)                           # dV_j += P^T dO       (nk,nq) @ (nq,D)
                dvj += g_k
                np.dot(ds.T, qi, g_k)                           # dK_j += scale dS^T Q (nk,nq) @ (nq,D)
                dkj += g_k
                g_q = g_buf[:nq * D].reshape(nq, D)
                np.dot(ds, kj, g_q)                             # dQ_i += scale dS K   (nq,nk) @ (nk,D)
                dqi += g_q


# ----------------------------------------------------------------------------------------------
# v4: v3's blocking, the tile products on tinylm's BLIS micro-kernel over packed panels (no BLAS).
# ----------------------------------------------------------------------------------------------
# ukernel(ap, bp, c, accumulate): c[:8, :NR] (+)= ap^T bp, ap (depth, 8) read a scalar at a time (a
# strided view works), bp (depth, NR) with C-contiguous rows (vector loads). NR = 32 (float32), 16
# (float64). Every product below is arranged so that its bp is a packed panel or a whole score tile.

BK4 = 64     # forward: keys per block (queries per task: one panel of NR)
BQ4 = 64     # backward: query rows per block (keys per block: one panel of NR)


@njit(inline="always", **_JIT_BLIS)
def _pack_rows_as_a(x, out):
    """out[g, p, r] = x[8 g + r, p] (0 past the last row): x (R, D) as micro-kernel A panels (ceil(R/8), D, 8)."""
    R = x.shape[0]
    for g in range(out.shape[0]):
        og = out[g]
        for r in range(8):
            i = 8 * g + r
            if i < R:
                xi = x[i]
                for p in range(x.shape[1]):
                    og[p, r] = xi[p]
            else:
                for p in range(x.shape[1]):
                    og[p, r] = 0


@njit(inline="always", **_JIT_BLIS)
def _pack_rows_as_bt(x, i0, n, out):
    """out[p, c] = x[i0 + c, p] for c < n, else 0: rows i0..i0+n-1 of x (R, D) as one B panel (D, NR) of x^T."""
    for p in range(out.shape[0]):
        op = out[p]
        for c in range(n):
            op[c] = x[i0 + c, p]
        for c in range(n, out.shape[1]):
            op[c] = 0


@njit(inline="always", **_JIT_BLIS)
def _pack_cols_as_b(x, out):
    """out[dp, i, c] = x[i, dp NR + c] (0 outside x): x (R, D) as B panels (ceil(D/NR), rows, NR)."""
    R, D = x.shape
    nr = out.shape[2]
    for dp in range(out.shape[0]):
        w = min(nr, D - dp * nr)
        o = out[dp]
        for i in range(out.shape[1]):
            oi = o[i]
            if i < R:
                xi = x[i, dp * nr:dp * nr + w]
                for c in range(w):
                    oi[c] = xi[c]
                for c in range(w, nr):
                    oi[c] = 0
            else:
                oi[:] = 0


@njit(parallel=True, **_JIT_BLIS)
def _pack_heads_as_a(x, out):
    """out[b, h] = A panels of x[b, h] for every head, in parallel (v4's forward packs K once per call)."""
    B, H = x.shape[0], x.shape[1]
    for task in prange(B * H):
        b, h = divmod(np.int64(task), H)
        _pack_rows_as_a(x[b, h], out[b, h])


@njit(parallel=True, **_JIT_BLIS)
def _ukernel_forward(q, k, v, kap, pad, causal, scale, out, lse, nr, bk, bits_proto):
    """One task per (b, h, block of NR queries); the score tile is S^T (keys x queries), as in v3.

    S^T = K Q^T: ap = 8 keys of K (the packed ``kap`` panel, depth D), bp = the block's Q^T panel.
    O^T += V^T P^T: ap = 8 columns of V (a strided view, depth = keys), bp = the P^T tile itself,
    whose rows (one key, NR queries) are contiguous. The output is accumulated transposed, (D, NR),
    so the online softmax's rescaling by alpha (one factor per query) is a vector update along a row.
    D is a multiple of 8 and bk of 8 (the caller pads D).
    """
    B, H, T, D = q.shape
    S = k.shape[2]
    ninf = -np.inf
    n_qblk = (T + nr - 1) // nr
    for task in prange(B * H * n_qblk):
        bh, blk = divmod(np.int64(task), n_qblk)
        b, h = divmod(bh, H)
        i0 = blk * nr
        nq = min(nr, T - i0)
        vb = v[b, h]
        qt = np.empty((D, nr), q.dtype)
        _pack_rows_as_bt(q[b, h], i0, nq, qt)                   # (D, NR): the block's queries as columns
        st_buf = np.empty(bk * nr, q.dtype)
        bits = np.empty(bk * nr, bits_proto.dtype)
        acc = np.zeros((D, nr), q.dtype)                        # o~^T: the unnormalised output, transposed
        m = np.full(nr, ninf, q.dtype)                          # running max of each query's scores
        l = np.zeros(nr, q.dtype)                               # running sum of exp(s - m)
        m_new = np.empty(nr, q.dtype)
        alpha = np.empty(nr, q.dtype)
        shift = np.empty(nr, q.dtype)
        hi = _key_range(i0 + nq - 1, T, S, causal)
        for j0 in range(0, hi, bk):
            nk = min(bk, hi - j0)
            n8 = (nk + 7) // 8
            st = st_buf[:8 * n8 * nr].reshape(8 * n8, nr)
            for g in range(n8):                                 # S^T = K Q^T   (nk,D) @ (D,NR), 8 keys a call
                ukernel(kap[b, h, j0 // 8 + g], qt, st[8 * g:8 * g + 8], False)
            _online_softmax_tile(st, st_buf[:nk * nr], nk, pad[b], j0, i0, T, S, causal, scale,   # st <- p~
                                 m, m_new, alpha, shift, l, bits)
            for d in range(D):
                ad = acc[d]
                for r in range(nr):
                    ad[r] *= alpha[r]                           # o~ <- alpha o~ ...
            for d0 in range(0, D, 8):                           # ... + p~ V, as o~^T += V^T p~^T (8 columns a call)
                ukernel(vb[j0:j0 + nk, d0:d0 + 8], st[:nk], acc[d0:d0 + 8], True)
        for r in range(nq):
            if l[r] > 0.0:
                for d in range(D):
                    out[b, h, i0 + r, d] = acc[d, r] / l[r]
                lse[b, h, i0 + r] = m[r] + np.log(l[r])
            else:
                out[b, h, i0 + r] = 0.0
                lse[b, h, i0 + r] = np.inf                      # sees no key: out 0, and exp(s - inf) = 0 later


@njit(parallel=True, **_JIT_BLIS)
def _ukernel_backward(q, k, v, pad, causal, scale, out, dout, lse, dq, dk, dv, nr, bq, bits_proto):
    """One task per (b, h); key blocks of one panel (NR keys) outer, query blocks of bq rows inner.

    Per task, Q and dO are packed once as A panels (8 rows, depth D) and K as B panels along D;
    per key block, K^T and V^T as B panels (D, NR). Products, with the score tiles P, dS (bq, NR):
      S = Q K^T, dP = dO V^T        ap: 8 rows of Q / dO (packed), bp: K^T / V^T panel
      dV^T += dO^T P, dK^T += Q^T dS ap: 8 columns of dO / Q (strided views), bp: the tile P / dS
      dQ += dS K                     ap: 8 rows of dS viewed transposed, bp: a K panel
    dK, dV are accumulated transposed in (D, NR) tiles, dQ in a (T, D) buffer padded to whole tiles.
    D is a multiple of 8 and bq of 8 (the caller pads D).
    """
    B, H, T, D = q.shape
    S = k.shape[2]
    ninf = -np.inf
    n_dp = (D + nr - 1) // nr                                  # B panels along D
    T8 = (T + 7) // 8 * 8
    Sp = (S + nr - 1) // nr * nr
    for task in prange(B * H):
        b, h = divmod(np.int64(task), H)
        qb, kb, vb, dob = q[b, h], k[b, h], v[b, h], dout[b, h]
        qap = np.empty((T8 // 8, D, 8), q.dtype)
        doap = np.empty((T8 // 8, D, 8), q.dtype)
        _pack_rows_as_a(qb, qap)
        _pack_rows_as_a(dob, doap)
        kbp = np.empty((n_dp, Sp, nr), q.dtype)
        _pack_cols_as_b(kb, kbp)
        dq_buf = np.zeros((T8, n_dp * nr), q.dtype)
        kt = np.empty((D, nr), q.dtype)
        vt = np.empty((D, nr), q.dtype)
        dkt = np.empty((D, nr), q.dtype)
        dvt = np.empty((D, nr), q.dtype)
        p_buf = np.empty(bq * nr, q.dtype)
        ds_buf = np.empty(bq * nr, q.dtype)
        bits = np.empty(bq * nr, bits_proto.dtype)
        key_ok = np.empty(nr, np.bool_)
        delta = np.zeros(T8, q.dtype)
        for i in range(T):
            delta[i] = _dot(dob[i], out[b, h, i])               # rowsum(dP * P) = dO_i . O_i
        for j0 in range(0, S, nr):
            nk = min(nr, S - j0)
            _pack_rows_as_bt(kb, j0, nk, kt)                    # (D, NR), reused by every query block
            _pack_rows_as_bt(vb, j0, nk, vt)
            for j in range(nr):
                key_ok[j] = j < nk and not pad[b, j0 + j]
            dkt[:] = 0.0
            dvt[:] = 0.0
            first = max(0, j0 - (S - T)) if causal else 0       # causal: earlier queries do not see these keys
            for i0 in range(first - first % bq, T, bq):         # query blocks on the grid of bq rows
                nq = min(bq, T - i0)
                n8 = (nq + 7) // 8
                p = p_buf[:8 * n8 * nr].reshape(8 * n8, nr)
                ds = ds_buf[:8 * n8 * nr].reshape(8 * n8, nr)
                for g in range(n8):                             # S = Q K^T, dP = dO V^T   (8,D) @ (D,NR)
                    for a, bt, c in ((qap, kt, p), (doap, vt, ds)):     # S and dP share one call site
                        ukernel(a[i0 // 8 + g], bt, c[8 * g:8 * g + 8], False)
                for r in range(8 * n8):                         # P = exp(scale S - lse), 0 where unseen
                    pr = p[r]
                    lim = _key_range(i0 + r, T, S, causal) - j0
                    L = lse[b, h, i0 + r] if r < nq else np.inf  # rows past T: P = 0
                    for j in range(nr):
                        pr[j] = scale * pr[j] - L if (j < lim and key_ok[j]) else ninf
                _exp_inplace(p_buf[:8 * n8 * nr], bits)
                for r in range(8 * n8):
                    dr, pr, dsr = delta[i0 + r], p[r], ds[r]
                    for j in range(nr):
                        dsr[j] = pr[j] * (dsr[j] - dr) * scale  # scale dS = scale P (dP - delta)
                for d0 in range(0, D, 8):                       # dV^T += dO^T P, dK^T += scale Q^T dS
                    for a, tile, acc in ((dob, p, dvt), (qb, ds, dkt)):
                        ukernel(a[i0:i0 + nq, d0:d0 + 8], tile[:nq], acc[d0:d0 + 8], True)
                for g in range(n8):
                    dsg = ds[8 * g:8 * g + 8].T                 # (NR, 8): 8 rows of dS, key-major
                    for dp in range(n_dp):                      # dQ += scale dS K   (8,NR) @ (NR,NR)
                        ukernel(dsg, kbp[dp, j0:j0 + nr],
                                dq_buf[i0 + 8 * g:i0 + 8 * g + 8, dp * nr:dp * nr + nr], True)
            for j in range(nk):
                dkj, dvj = dk[b, h, j0 + j], dv[b, h, j0 + j]
                for d in range(D):
                    dkj[d] = dkt[d, j]
                    dvj[d] = dvt[d, j]
        dq[b, h] = dq_buf[:T, :D]


_BLIS_NR = {np.dtype(np.float32): 32, np.dtype(np.float64): 16}     # NR of ukernel (MR = 8 for both)


def _pad_head_dim(x, D8):
    """x (..., D) with zero columns appended up to D8 (the v4 kernels cut D into groups of 8)."""
    if x.shape[-1] == D8:
        return x
    out = np.zeros(x.shape[:-1] + (D8,), x.dtype)
    out[..., :x.shape[-1]] = x
    return out


def _ukernel_forward_run(q, k, v, pad, causal, scale, bk=BK4):
    """v4 forward on prepared inputs: (out (B,H,T,D8), lse); D padded to a multiple of 8 with zeros."""
    B, H, T, D = q.shape
    D8 = -(-D // 8) * 8
    q, k, v = (_pad_head_dim(x, D8) for x in (q, k, v))
    S = k.shape[2]
    out = np.empty_like(q)
    lse = np.empty((B, H, T), q.dtype)
    kap = np.empty((B, H, -(-S // 8), D8, 8), q.dtype)          # K as A panels, once per call
    with _slp_vectorize():
        _pack_heads_as_a(k, kap)
        _ukernel_forward(q, k, v, kap, pad, causal, q.dtype.type(scale), out, lse, _BLIS_NR[q.dtype], bk,
                         _bits_proto(q.dtype))
    return q, k, v, out, lse


def _ukernel_backward_run(q, k, v, pad, causal, scale, out, dout, lse, bq=BQ4):
    """v4 backward on the (D-padded) forward tensors; returns dq, dk, dv with the caller's D."""
    D = dout.shape[3]
    dout = _pad_head_dim(np.ascontiguousarray(dout), q.shape[3])
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    with _slp_vectorize():
        _ukernel_backward(q, k, v, pad, causal, q.dtype.type(scale), out, dout, lse, dq, dk, dv,
                          _BLIS_NR[q.dtype], bq, _bits_proto(q.dtype))
    if D != q.shape[3]:
        dq, dk, dv = (np.ascontiguousarray(x[..., :D]) for x in (dq, dk, dv))
    return dq, dk, dv


# ----------------------------------------------------------------------------------------------
# The registered kernels (calling convention of tinylm.ops.attention).
# ----------------------------------------------------------------------------------------------

class FlashCache(NamedTuple):
    version: str          # "rows", "tiles", "blocks" or "ukernel": which backward to run
    q: np.ndarray         # (B,H,T,D)  C-contiguous; the backward recomputes the scores from q and k
                          #            ("ukernel": q, k, v, out with D zero-padded to a multiple of 8)
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


def _bits_proto(dtype):
    """An empty array of the integer type whose bits exp_tile writes for ``dtype`` (the v3 kernels' scratch)."""
    return np.empty(0, np.int32 if dtype == np.float32 else np.int64)


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
    if kind == "ukernel":
        q, k, v, out, lse = _ukernel_forward_run(q, k, v, pad, causal, scale)    # D padded to a multiple of 8
        return np.ascontiguousarray(out[..., :D]), FlashCache(kind, q, k, v, out, lse, pad, causal, scale)
    out = np.empty_like(q)
    lse = np.empty((B, H, T), q.dtype)
    if kind == "blocks":
        _blocks_forward(q, k, v, pad, causal, q.dtype.type(scale), out, lse, *_block_sizes(D), _bits_proto(q.dtype))
    else:
        scratch, bits = _scratch(B * H, D, q.dtype)
        run = _rows_forward if kind == "rows" else _tiles_forward
        run(q, k, v, pad, causal, q.dtype.type(scale), out, lse, scratch, bits)
    return out, FlashCache(kind, q, k, v, out, lse, pad, causal, scale)


def _backward(dout, kernel_cache):
    if not isinstance(kernel_cache, FlashCache):
        return get_kernel("attention", "numpy").backward(dout, kernel_cache)
    kind, q, k, v, out, lse, pad, causal, scale = kernel_cache
    if kind == "ukernel":
        return _ukernel_backward_run(q, k, v, pad, causal, scale, out, dout, lse)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    if kind == "blocks":
        _blocks_backward(q, k, v, pad, causal, q.dtype.type(scale), out, np.ascontiguousarray(dout), lse,
                         dq, dk, dv, *_block_sizes(q.shape[3]), _bits_proto(q.dtype))
        return dq, dk, dv
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


def flash_blocks_forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """v3: FlashAttention-2 forward on (BQ, BK) blocks with gemm tile products; keeps O and the row log-sum-exp."""
    return _forward("blocks", q, k, v, causal, key_padding_mask, scale, dropout_mask)


def flash_ukernel_forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """v4: v3's blocking with the tile products on the BLIS micro-kernel; keeps O and the row log-sum-exp."""
    return _forward("ukernel", q, k, v, causal, key_padding_mask, scale, dropout_mask)


flash_rows_backward = flash_attention_backward = flash_blocks_backward = flash_ukernel_backward = _backward

register_kernel("attention", "numba", "v1_flash_rows", flash_rows_forward, flash_rows_backward)
register_kernel("attention", "numba", "v2_flash_tiles", flash_attention_forward, flash_attention_backward)
register_kernel("attention", "numba", "v3_flash_blocks", flash_blocks_forward, flash_blocks_backward)
register_kernel("attention", "numba", "v4_flash_ukernel", flash_ukernel_forward, flash_ukernel_backward, default=True)
