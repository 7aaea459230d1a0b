"""Numba CPU kernels for ``matmul``: ``c = a @ b``, registered for backend "numba".

Versions (all stay registered: ``get_kernel("matmul", "numba", "v1_naive")``; the harness times each):

  v1_naive   one dot product per output element, walking down a column of ``b`` with stride N:
             the textbook triple loop, parallel over rows. Strided loads: ~1 GFLOP/s.
  v2_dot     ``b`` transposed once, so every dot product reads two unit-stride rows and
             vectorises (a SIMD reduction over K). Two loads per multiply-add: load-bound.
  v3_tiled   (default) a 6 x 4 register tile: rows i..i+5 of ``a`` against rows j..j+3 of ``b^T``
             give 24 dot products in one pass over K, held in 24 scalar accumulators that the
             compiler turns into 24 SIMD registers (vectorised along K): 10 loads feed 24
             multiply-adds, and only the 4 ``b^T`` rows come from L2. K is cut into chunks of KB
             so the tile's rows stay in L1, a row block of ``a`` sweeps NB rows of ``b^T`` that stay
             in L2, and row blocks run in parallel (``prange``). A 4 x 4 tile reached ~145 GFLOP/s
             on one core here, 6 x 4 ~170 (OpenBLAS: ~220); the gap is the 24 horizontal sums per
             tile and K chunk that a dot-product formulation pays and a BLIS outer-product kernel
             does not, and Numba cannot express vector-register accumulators for the latter.

Why scalars and not a small accumulator array: Numba allocates arrays on the heap, and the
compiler then keeps the accumulator in memory (a load and a store per multiply-add, ~3 GFLOP/s);
named scalars are SSA values that live in registers. Why ``a[i, p0:p1]`` row slices indexed from
0: an index that might be negative gets wrap-around code, which turns vector loads into gathers.
``inspect_asm()`` of the compiled kernel shows both: look for ``vgather`` and for ``(%rsp)`` spills.

Rows are copied ("packed") into a C-contiguous buffer whose row length is padded so that rows do
not start at multiples of 1 KiB (rows 4 KiB apart compete for the same L1 cache sets), and whose
row count is padded to a multiple of the tile (a tile never needs an edge case on the read side).
``b`` is packed transposed with a blocked copy; when ``b`` is already the transpose of a C-contiguous
array (``x @ W.T`` in Linear) its packing is free.

Inputs arrive validated by :func:`tinylm.ops.matmul.matmul`: (..., M, K) @ (..., K, N), same float
dtype, batch dims broadcasting. float32 and float64 run here; other float dtypes use ``numpy.matmul``.
Tests: tests/test_kernels.py (against a float64 oracle), tests/test_numba_kernels.py.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numba
import numpy as np
from numba import njit, prange

from tinylm.backend.numba_math import exp_tile, scale_by_pow2
from tinylm.backend.numba_microkernels import ukernel
from tinylm.backend.registry import register_kernel

__all__ = ["matmul_naive", "matmul_dot", "matmul_tiled"]

_JIT = dict(cache=True, fastmath=True, nogil=True)
# v4's micro-kernel is inlined into its caller and compiled with the caller's flags: "contract" (FMA)
# but not "reassoc", which would let the loop vectoriser turn the depth loop into 256 reductions.
# error_model="numpy": a float division gives inf/nan instead of a Python ZeroDivisionError; the
# check for that error is a branch per division, and it kept the GELU epilogue's loop scalar (16x).
_JIT_BLIS = dict(cache=True, fastmath={"contract"}, nogil=True, error_model="numpy")

MR, NR = 6, 4  # register tile: rows of a x rows of b^T (24 accumulators + 10 loads fit 32 registers)
MB = 240     # rows of a per parallel task (fewer when that leaves too few tasks): b^T is streamed
             # from L3 once per row block, so bigger blocks mean less traffic
NB = 64      # rows of b^T one row block sweeps per K chunk (NB x KB values stay in L2)
KB = 1024    # K chunk: the tile's 10 rows of KB values stay in L1 (10 x 1024 x 4 B = 40 KiB in float32)
MC = 256     # v4: rows of A per task (the MC x KC block of A stays in L2: 512 KiB in float32)
KC = 512     # v4: depth chunk (a B panel, KC x NR, 64 KiB, streams from L2 while A panels stay near)
GELU_SQRT_2_PI = math.sqrt(2.0 / math.pi)
GELU_KAPPA = 0.044715
# (MB, NB, KB) measured on a 2-core Zen 5 with 48 KiB L1 and 2 MiB L2 per core; K chunks also bound
# the cost of the 24 horizontal sums each tile pays per chunk.


# ----------------------------------------------------------------------------------------------
# Batches and packing (shared by the versions).
# ----------------------------------------------------------------------------------------------

def _as_batches(a, b):
    """Views/copies ``a3 (nb, M, K)``, ``b3 (nb, K, N)`` and the output shape (..., M, N).

    A 2-D ``b`` is shared by every row of ``a``, so ``a``'s batch dims fold into M (no copy of ``b``);
    otherwise the batch dims broadcast as in ``numpy.matmul``.
    """
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    if b.ndim == 2:
        out_shape = a.shape[:-1] + (N,)
        return a.reshape(1, math.prod(a.shape[:-1]), K), b[None], out_shape
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a3 = np.broadcast_to(a, batch + (M, K)).reshape(-1, M, K)
    b3 = np.broadcast_to(b, batch + (K, N)).reshape(-1, K, N)
    return a3, b3, batch + (M, N)


def _row_stride(K: int, itemsize: int) -> int:
    """Padded row length: a multiple of 16 elements that is not a multiple of 1 KiB."""
    Kp = -(-K // 16) * 16
    return Kp + 16 if (Kp * itemsize) % 1024 == 0 else Kp


@njit(parallel=True, **_JIT)
def _copy_rows(x, out):
    """out[n, r, :K] = x[n, r, :] for x (nb, R, K) of any strides, by 16 x 16 blocks.

    Blocks keep both sides cache-friendly whichever of x's two axes is the contiguous one
    (packing ``b^T`` reads ``b`` by rows and writes by columns).
    """
    nb, R, K = x.shape
    row_blocks = (R + 15) // 16
    for task in prange(nb * row_blocks):
        n, rb = divmod(np.int64(task), row_blocks)
        r0, r1 = rb * 16, min(rb * 16 + 16, R)
        for p0 in range(0, K, 16):
            for r in range(r0, r1):
                for p in range(p0, min(p0 + 16, K)):
                    out[n, r, p] = x[n, r, p]


def _pack(x, rows_multiple):
    """``x`` (nb, R, K) as a C-contiguous (nb, R4, Kp) buffer: R4 = R rounded up to rows_multiple."""
    nb, R, K = x.shape
    R4, Kp = -(-R // rows_multiple) * rows_multiple, _row_stride(K, x.itemsize)
    if x.flags.c_contiguous and R4 == R and Kp == K:
        return x                                              # already in kernel layout: no copy
    buf = np.empty((nb, R4, Kp), x.dtype)
    buf[:, R:, :] = 0                                         # pad rows: read by edge tiles, results dropped
    _copy_rows(x, buf)
    return buf


# ----------------------------------------------------------------------------------------------
# v1: the naive triple loop.
# ----------------------------------------------------------------------------------------------

@njit(parallel=True, **_JIT)
def _matmul_naive(a, b, c):
    nb, M, K = a.shape
    N = b.shape[2]
    for task in prange(nb * M):
        n, i = divmod(np.int64(task), M)             # prange's index is unsigned: keep ints int
        for j in range(N):
            s = c.dtype.type(0)
            for p in range(K):
                s += a[n, i, p] * b[n, p, j]                  # b[n, :, j]: a stride-N walk down a column
            c[n, i, j] = s


# ----------------------------------------------------------------------------------------------
# v2: dot products of unit-stride rows.
# ----------------------------------------------------------------------------------------------

@njit(parallel=True, **_JIT)
def _matmul_dot(a, bt, c, K):
    nb, M, N = c.shape
    for task in prange(nb * M):
        n, i = divmod(np.int64(task), M)             # prange's index is unsigned: keep ints int
        ai = a[n, i, :K]
        for j in range(N):
            bj = bt[n, j, :K]
            s = c.dtype.type(0)
            for p in range(K):
                s += ai[p] * bj[p]                            # both unit stride: a SIMD reduction
            c[n, i, j] = s


# ----------------------------------------------------------------------------------------------
# v3: 6 x 4 register tile, cache-blocked, parallel over row blocks.
# ----------------------------------------------------------------------------------------------

@njit(inline="always", **_JIT)
def _tile_6x4(a, bt, i, j, p0, p1):
    """The 24 dot products of rows i..i+5 of ``a`` with rows j..j+3 of ``bt`` over columns p0:p1."""
    a0, a1, a2 = a[i, p0:p1], a[i + 1, p0:p1], a[i + 2, p0:p1]
    a3, a4, a5 = a[i + 3, p0:p1], a[i + 4, p0:p1], a[i + 5, p0:p1]
    b0, b1, b2, b3 = bt[j, p0:p1], bt[j + 1, p0:p1], bt[j + 2, p0:p1], bt[j + 3, p0:p1]
    zero = a.dtype.type(0)
    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = c20 = c21 = c22 = c23 = zero
    c30 = c31 = c32 = c33 = c40 = c41 = c42 = c43 = c50 = c51 = c52 = c53 = zero
    for p in range(p1 - p0):                                  # from 0: no wrap-around code, no gathers
        y0, y1, y2, y3 = b0[p], b1[p], b2[p], b3[p]
        x = a0[p]
        c00 += x * y0; c01 += x * y1; c02 += x * y2; c03 += x * y3   # noqa: E702
        x = a1[p]
        c10 += x * y0; c11 += x * y1; c12 += x * y2; c13 += x * y3   # noqa: E702
        x = a2[p]
        c20 += x * y0; c21 += x * y1; c22 += x * y2; c23 += x * y3   # noqa: E702
        x = a3[p]
        c30 += x * y0; c31 += x * y1; c32 += x * y2; c33 += x * y3   # noqa: E702
        x = a4[p]
        c40 += x * y0; c41 += x * y1; c42 += x * y2; c43 += x * y3   # noqa: E702
        x = a5[p]
        c50 += x * y0; c51 += x * y1; c52 += x * y2; c53 += x * y3   # noqa: E702
    return (c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23,
            c30, c31, c32, c33, c40, c41, c42, c43, c50, c51, c52, c53)


@njit(inline="always", **_JIT)
def _store_tile(c, i, j, acc, accumulate):
    """Write (or add, for K chunks after the first) the MR x NR tile into c, dropping rows/cols past the edge."""
    M, N = c.shape
    for r in range(min(MR, M - i)):
        for s in range(min(NR, N - j)):
            if accumulate:
                c[i + r, j + s] += acc[NR * r + s]
            else:
                c[i + r, j + s] = acc[NR * r + s]


@njit(parallel=True, **_JIT)
def _matmul_tiled(a, bt, c, K, mb):
    nb, M, N = c.shape
    row_blocks = (M + mb - 1) // mb
    for task in prange(nb * row_blocks):
        n, rb = divmod(np.int64(task), row_blocks)
        an, btn, cn = a[n], bt[n], c[n]
        for p0 in range(0, K, KB):                            # K chunk: tile rows stay in L1
            p1 = min(p0 + KB, K)
            for j0 in range(0, N, NB):                        # NB rows of b^T: stay in L2
                for i in range(rb * mb, min(rb * mb + mb, M), MR):
                    for j in range(j0, min(j0 + NB, N), NR):
                        _store_tile(cn, i, j, _tile_6x4(an, btn, i, j, p0, p1), p0 > 0)


# ----------------------------------------------------------------------------------------------
# v4: BLIS-style outer-product micro-kernel over packed panels, with a fused epilogue.
# ----------------------------------------------------------------------------------------------

@contextmanager
def _slp_vectorize():
    """Compile inside this block with LLVM's SLP vectoriser on (Numba's default is off).

    The micro-kernels need it: it is what packs a tile row's named scalars into vector registers.
    Compilation happens at a kernel's first call for a type signature, so v4 makes every call
    inside this block; once compiled (or loaded from the cache) the switch costs nothing.
    """
    old = numba.config.SLP_VECTORIZE
    numba.config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        numba.config.SLP_VECTORIZE = old


@njit(parallel=True, **_JIT)
def _pack_panels_from_rows(x, out):
    """out[n, q, p, r] = x[n, q R + r, p] (0 past the last row), for a C-contiguous x (nb, M, K).

    ``out`` (nb, ceil(M / R), K, R): the rows of x cut into panels of R, each stored depth-major so
    the micro-kernel reads R consecutive values per depth p. Reads walk along x's rows.
    """
    nb, n_panels, K, R = out.shape
    M = x.shape[1]
    for task in prange(nb * n_panels):
        n, q = divmod(np.int64(task), n_panels)
        o = out[n, q]
        rows = min(R, M - q * R)
        for r in range(rows):
            xr = x[n, q * R + r]
            for p in range(K):
                o[p, r] = xr[p]
        for p in range(K):
            for r in range(rows, R):
                o[p, r] = 0


@njit(parallel=True, **_JIT)
def _pack_panels_from_columns(xt, out):
    """The same panels from xt = x^T, C-contiguous (nb, K, M): each depth p is one contiguous copy."""
    nb, n_panels, K, R = out.shape
    M = xt.shape[2]
    for task in prange(nb * n_panels):
        n, q = divmod(np.int64(task), n_panels)
        o = out[n, q]
        rows = min(R, M - q * R)
        for p in range(K):
            op, xp = o[p], xt[n, p, q * R:q * R + rows]
            for r in range(rows):
                op[r] = xp[r]
            for r in range(rows, R):
                op[r] = 0


def _pack_panels(x, R):
    """Panels (nb, ceil(M / R), K, R) of x (nb, M, K), read along whichever axis of x is contiguous."""
    nb, M, K = x.shape
    out = np.empty((nb, -(-M // R), K, R), x.dtype)
    xt = x.swapaxes(1, 2)
    if xt.flags.c_contiguous and not x.flags.c_contiguous:
        _pack_panels_from_columns(xt, out)                    # b (K, N) row-major, or a transposed view
    else:
        _pack_panels_from_rows(np.ascontiguousarray(x), out)  # a (M, K) row-major, or W for x W^T
    return out


@njit(inline="always", **_JIT_BLIS)
def _gelu_tanh_row(h, s, y, e, bits):
    """y = 0.5 h (1 + s) with s = tanh(u), u = sqrt(2/pi) (h + 0.044715 h^3), over one contiguous row h (n,).

    tanh(u) = sign(u) (1 - e) / (1 + e) with e = exp(-2 |u|) in (0, 1]: never overflows. The exp
    is the vectorisable one of numba_math.py (Numba has no SVML here: math.tanh is a libm call).
    Every array is a 1-D slice of a C-contiguous row, indexed from 0: the loops vectorise.
    """
    t = h.dtype.type
    n = h.shape[0]
    for j in range(n):
        x = h[j]
        s[j] = t(-2.0 * GELU_SQRT_2_PI) * abs(x + t(GELU_KAPPA) * x * x * x)          # -2|u|
    exp_tile(s, bits, n)
    scale_by_pow2(s, e, n)                                                           # e = exp(-2|u|)
    for j in range(n):
        x = h[j]
        th = (t(1.0) - s[j]) / (t(1.0) + s[j])
        th = th if x >= 0 else -th                            # u has the sign of h
        s[j] = th
        y[j] = t(0.5) * x * (t(1.0) + th)


@njit(parallel=True, **_JIT_BLIS)
def _matmul_blis(ap, bp, c, mc, nc, bias, gelu, s, y, scratch, scratch_bits):
    """c (nb, Mp, Np) = packed A @ packed B; then c += bias and (s, y) = gelu parts of c.

    Tasks are (batch, block of mc rows, block of nc columns). Inside a task, for each K chunk
    of KC: a panel of B (KC, NR) stays in L1 while the task's A panels stream from L2.
    """
    nb, a_panels, K, MR_ = ap.shape
    b_panels, NR_ = bp.shape[1], bp.shape[3]
    mp, np_ = mc // MR_, nc // NR_                           # panels per task
    rblocks, cblocks = (a_panels + mp - 1) // mp, (b_panels + np_ - 1) // np_
    for task in prange(nb * rblocks * cblocks):
        n, rest = divmod(np.int64(task), rblocks * cblocks)
        ib, jb = divmod(rest, cblocks)
        i0, i1 = ib * mp, min(ib * mp + mp, a_panels)
        j0, j1 = jb * np_, min(jb * np_ + np_, b_panels)
        cn = c[n]
        for p0 in range(0, K, KC):
            p1 = min(p0 + KC, K)
            for jp in range(j0, j1):
                bpan = bp[n, jp, p0:p1]                      # (kc, NR): reused by every A panel below
                for ip in range(i0, i1):
                    ukernel(ap[n, ip, p0:p1], bpan, cn[ip * MR_:ip * MR_ + MR_, jp * NR_:jp * NR_ + NR_],
                            p0 > 0)
        if bias.shape[0] == 0 and not gelu:
            continue
        c0, c1 = j0 * NR_, j1 * NR_                            # epilogue on the block just computed (in L2)
        for i in range(i0 * MR_, i1 * MR_):
            hr = cn[i][c0:c1]                                  # 1-D slices of C-contiguous rows: unit stride
            if bias.shape[0] != 0:
                bj = bias[c0:c1]
                for j in range(c1 - c0):
                    hr[j] += bj[j]                             # h = x W^T + b
            if gelu:
                _gelu_tanh_row(hr, s[n, i][c0:c1], y[n, i][c0:c1], scratch[task][:c1 - c0],
                               scratch_bits[task][:c1 - c0])


_BLIS_TILE = {np.dtype(np.float32): (8, 32), np.dtype(np.float64): (8, 16)}     # (MR, NR) of ukernel


def _blis_run(a3, b3, bias=None, gelu=False):
    """v4 on batches a3 (nb, M, K) @ b3 (nb, K, N) -> c (nb, M, N) [, s, y when gelu]."""
    nb, M, K = a3.shape
    N = b3.shape[2]
    MR_, NR_ = _BLIS_TILE[a3.dtype]
    if M == 0 or N == 0:
        empty = np.empty((nb, M, N), a3.dtype)
        return (empty, empty.copy(), empty.copy()) if gelu else empty
    Mp, Np = -(-M // MR_) * MR_, -(-N // NR_) * NR_
    c = (np.empty if K else np.zeros)((nb, Mp, Np), a3.dtype)  # padded to whole tiles: no edge code
    s = np.empty((nb, Mp, Np) if gelu else (1, 1, 1), a3.dtype)
    y = np.empty_like(s)
    bias_p = np.zeros(0 if bias is None else Np, a3.dtype)
    if bias is not None:
        bias_p[:N] = bias
    # Block sizes: mc rows of A (mc x KC stays in L2) by all columns; split rows, then columns,
    # until every thread has about 4 tasks (load balance on small products).
    mc, nc = min(MC, Mp), Np
    while nb * -(-Mp // mc) * -(-Np // nc) < 4 * numba.get_num_threads():
        if mc // 2 >= 4 * MR_:
            mc = mc // 2 // MR_ * MR_
        elif nc // 2 >= 4 * NR_:
            nc = nc // 2 // NR_ * NR_
        else:
            break
    n_tasks = nb * -(-Mp // mc) * -(-Np // nc)
    scratch = np.empty((n_tasks, nc) if gelu else (1, 1), a3.dtype)     # exp's 2^k row, one per task
    bits = scratch.view(np.int32 if a3.dtype == np.float32 else np.int64)
    with _slp_vectorize():
        ap, bp = _pack_panels(a3, MR_), _pack_panels(b3.swapaxes(1, 2), NR_)   # A's rows, B's columns
        _matmul_blis(ap, bp, c, mc, nc, bias_p, gelu, s, y, scratch, bits)
    if Mp != M or Np != N:
        c, s, y = (np.ascontiguousarray(x[:, :M, :N]) for x in (c, s, y)) if gelu else \
            (np.ascontiguousarray(c[:, :M, :N]), s, y)
    return (c, s, y) if gelu else c


# ----------------------------------------------------------------------------------------------
# The registered kernels: same calling convention as tinylm.ops.matmul.matmul_reference.
# ----------------------------------------------------------------------------------------------

def _run(a, b, kernel):
    if a.dtype not in (np.float32, np.float64):
        return np.matmul(a, b)                                # float16 & co: no Numba kernel
    a3, b3, out_shape = _as_batches(a, b)
    nb, M, K = a3.shape
    N = b3.shape[2]
    if K == 0 or M == 0 or N == 0 or nb == 0:
        return np.zeros(out_shape, a.dtype)                   # an empty sum is 0
    if kernel == "blis":
        return _blis_run(a3, b3).reshape(out_shape)
    c = np.empty((nb, M, N), a.dtype)
    if kernel == "naive":
        _matmul_naive(a3, b3, c)
    else:
        bt = _pack(b3.swapaxes(1, 2), NR)                         # (nb, N, K): rows of b^T
        if kernel == "dot":
            _matmul_dot(_pack(a3, 1), bt, c, K)
        else:
            mb = MB                                           # rows per task: enough tasks to balance threads
            while mb > 4 * MR and nb * -(-M // mb) < 4 * numba.get_num_threads():
                mb = mb // 2 // MR * MR
            _matmul_tiled(_pack(a3, MR), bt, c, K, mb)
    return c.reshape(out_shape)


def matmul_naive(a, b):
    """v1: naive triple loop (strided column walk), parallel over rows."""
    return _run(a, b, "naive")


def matmul_dot(a, b):
    """v2: b transposed once, unit-stride SIMD dot products."""
    return _run(a, b, "dot")


def matmul_tiled(a, b):
    """v3: 6x4 register tile over packed rows, K-blocked for L1, parallel over row blocks."""
    return _run(a, b, "tiled")


register_kernel("matmul", "numba", "v1_naive", matmul_naive)
register_kernel("matmul", "numba", "v2_dot", matmul_dot)
def matmul_blis(a, b):
    """v4: BLIS-style 8x32 (float32) / 8x16 (float64) outer-product micro-kernel over packed panels."""
    return _run(a, b, "blis")


def linear_blis(x2, weight, bias):
    """v4 "linear": x2 (N, in) @ weight.T + bias (out,) -> (N, out), the bias added in the epilogue."""
    if x2.dtype not in _BLIS_TILE:                            # float16 & co: NumPy
        h = np.matmul(x2, weight.T)
        return h if bias is None else h + bias
    return _blis_run(x2[None], weight.T[None], bias)[0]


def linear_gelu_blis(x2, weight, bias):
    """v4 "linear_gelu": (y, h, s) = (gelu(h), x2 weight^T + bias, tanh(u)), bias and GELU in the epilogue."""
    if x2.dtype not in _BLIS_TILE:                            # float16 & co: compute in float32
        f32 = (x.astype(np.float32) for x in (x2, weight))
        return tuple(r.astype(x2.dtype) for r in linear_gelu_blis(*f32, None if bias is None else
                                                                  bias.astype(np.float32)))
    h, s, y = _blis_run(x2[None], weight.T[None], bias, gelu=True)
    return y[0], h[0], s[0]


@njit(parallel=True, **_JIT_BLIS)
def _gelu_tanh_backward(dy, h, s, dh):
    """dh = dy (0.5 (1 + s) + 0.5 h (1 - s^2) u'(h)), u' = sqrt(2/pi) (1 + 3 0.044715 h^2); flat arrays."""
    t = h.dtype.type
    n = h.shape[0]
    chunk = 4096
    for c in prange((n + chunk - 1) // chunk):
        lo, hi = c * chunk, min(n, c * chunk + chunk)
        dyc, hc, sc, dhc = dy[lo:hi], h[lo:hi], s[lo:hi], dh[lo:hi]     # indexed from 0: no wrap-around code
        for j in range(hi - lo):
            x, sj = hc[j], sc[j]
            du = t(GELU_SQRT_2_PI) * (t(1.0) + t(3.0 * GELU_KAPPA) * x * x)
            dhc[j] = dyc[j] * (t(0.5) * (t(1.0) + sj) + t(0.5) * x * (t(1.0) - sj * sj) * du)


def linear_gelu_blis_backward(dy, h, s):
    """v4 "linear_gelu" backward: dh = dy gelu'(h) from the saved h and s = tanh(u), in one parallel pass."""
    if h.dtype not in _BLIS_TILE:                             # float16 & co: compute in float32
        return linear_gelu_blis_backward(*(x.astype(np.float32) for x in (dy, h, s))).astype(h.dtype)
    dy = dy.astype(h.dtype, copy=False)                       # the gradient takes the activation's dtype
    dh = np.empty(h.shape, h.dtype)
    _gelu_tanh_backward(np.ascontiguousarray(dy).reshape(-1), np.ascontiguousarray(h).reshape(-1),
                        np.ascontiguousarray(s).reshape(-1), dh.reshape(-1))
    return dh


register_kernel("matmul", "numba", "v3_tiled", matmul_tiled)
register_kernel("matmul", "numba", "v4_blis", matmul_blis, default=True)
register_kernel("linear", "numba", "v4_blis", linear_blis)
register_kernel("linear_gelu", "numba", "v4_blis", linear_gelu_blis, linear_gelu_blis_backward)
