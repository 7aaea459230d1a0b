"""CuPy raw-CUDA kernels for the "cupy" backend: imported (and so registered) when it is selected.

Sources live beside this file in ``cuda/`` and are compiled by NVRTC on first use
(``cupy.RawModule``; CuPy caches the binary on disk). CuPy itself is imported lazily, so this module
imports, and its kernels register, on a machine without a GPU; they only run with one.

Versions (all stay registered; the harness times each against ``cupy.matmul``/cuBLAS):

  matmul     v1_naive      cuda/matmul_v1_naive.cu      one thread per output, operands from global
                                                        memory
             v2_tiled      cuda/matmul_v2_tiled.cu      64 x 64 block tiles through shared memory, a
                                                        4 x 4 register patch per thread
             v3_blocktile  cuda/matmul_v3_blocktile.cu  (default) 128 x 128 block tiles, an 8 x 8
                                                        register patch per thread, 16-byte loads
  attention  v1_flash2       cuda/attention_flash2.cu    FlashAttention-2 style: forward keeps O and the
                                                          row log-sum-exp; backward = delta, dK/dV (one
                                                          thread per key) and dQ (one thread per query)
             v2_flash_tiles  cuda/attention_v2_tiles.cu  (default) the same algorithm as 32 x 32 tiles of
                                                          small matrix products, a 2 x 4 score patch and a
                                                          2 x D/8 output patch per thread, all in registers;
                                                          head dim <= 64 (larger: v1)
             v3_flash_mma    cuda/attention_v3_mma.cu    fp16 inputs on the tensor cores (mma.m16n8k16,
                                                          float accumulation), FlashAttention-2's register
                                                          layout; head dim <= 64. float32 goes to v2

matmul and attention v1/v2 take float32, attention v3 fp16; other dtypes (and attention with dropout
or a head dim past what the kernel holds) go to the reference kernel, which on this backend is CuPy's
own matmul (cuBLAS) and the xp-written reference attention.
Every array stays on the GPU: no host round trips. Tests: tests/test_cuda_sources.py (compiles each
source with nvcc when it is installed; runs the kernels against the reference when a GPU is), and,
with or without a GPU, tests/test_kernels.py's "cupy-emulated" cases: this host code and the CUDA
sources run on the CPU through tinylm.backend.cuda_emu.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tinylm.backend.registry import get_kernel, register_kernel

__all__ = ["CUDA_DIR", "SOURCES", "matmul_naive", "matmul_tiled", "matmul_blocktile", "flash_attention_forward",
           "flash_attention_backward", "flash_tiles_forward", "flash_tiles_backward", "flash_mma_forward",
           "flash_mma_backward", "CupyFlashCache", "CupyMmaCache"]

CUDA_DIR = Path(__file__).with_name("cuda")
# source file -> the kernels (extern "C" names) it defines
SOURCES = {
    "matmul_v1_naive.cu": ("matmul_naive",),
    "matmul_v2_tiled.cu": ("matmul_tiled",),
    "matmul_v3_blocktile.cu": ("matmul_blocktile",),
    "attention_flash2.cu": ("flash_fwd", "flash_bwd_delta", "flash_bwd_dkdv", "flash_bwd_dq"),
    "attention_v2_tiles.cu": tuple(f"attn_tiles_{part}_d{dp}" for dp in (32, 64) for part in ("fwd", "bwd_dkdv", "bwd_dq")),
    "attention_v3_mma.cu": ("attn_mma_fwd", "attn_mma_bwd_delta", "attn_mma_bwd_dkdv", "attn_mma_bwd_dq"),
}
D_MAX = 128           # attention_flash2.cu keeps rows of up to D_MAX floats per thread
ROWS_PER_BLOCK = 64   # threads per attention block: one query (or key) row each
TILES_D_MAX = 64      # attention_v2_tiles.cu: head dims up to 64 (in buckets of 32 and 64)
TILE = 32             # attention_v2_tiles.cu: queries (or keys) per block, 128 threads


@functools.cache
def _module(source: str):
    import cupy
    return cupy.RawModule(code=(CUDA_DIR / source).read_text(), options=("--std=c++14",))


def _kernel(source: str, name: str):
    return _module(source).get_function(name)


# ----------------------------------------------------------------------------------------------
# matmul
# ----------------------------------------------------------------------------------------------

def _matmul(a, b, version: str):
    import cupy as cp
    if a.dtype != cp.float32:
        return get_kernel("matmul", "numpy").forward(a, b)    # cuBLAS through cupy.matmul
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    if b.ndim == 2:                                           # shared b: a's batch dims fold into M
        out_shape = a.shape[:-1] + (N,)
        a3 = cp.ascontiguousarray(a).reshape(1, math.prod(a.shape[:-1]), K)
        b3 = cp.ascontiguousarray(b)[None]
    else:
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        out_shape = batch + (M, N)
        a3 = cp.ascontiguousarray(cp.broadcast_to(a, batch + (M, K))).reshape(-1, M, K)
        b3 = cp.ascontiguousarray(cp.broadcast_to(b, batch + (K, N))).reshape(-1, K, N)
    nb, M = a3.shape[0], a3.shape[1]
    c = cp.empty((nb, M, N), cp.float32)
    if c.size == 0:
        return c.reshape(out_shape)
    if K == 0:
        return cp.zeros(out_shape, cp.float32)
    args = (a3, b3, c, np.int32(M), np.int32(N), np.int32(K), np.int64(M * K), np.int64(K * N), np.int64(M * N))
    if version == "naive":
        _kernel("matmul_v1_naive.cu", "matmul_naive")(((N + 15) // 16, (M + 15) // 16, nb), (16, 16, 1), args)
    elif version == "tiled":
        _kernel("matmul_v2_tiled.cu", "matmul_tiled")(((N + 63) // 64, (M + 63) // 64, nb), (256, 1, 1), args)
    else:
        # float4 accesses need every row of A, B and C to start on 16 bytes
        vec = K % 4 == 0 and N % 4 == 0 and all(_address(x) % 16 == 0 for x in (a3, b3, c))
        _kernel("matmul_v3_blocktile.cu", "matmul_blocktile")(
            ((N + 127) // 128, (M + 127) // 128, nb), (256, 1, 1), args + (np.int32(vec),))
    return c.reshape(out_shape)


def _address(x) -> int:
    """Where ``x``'s first element lives (a CuPy array's device pointer; a NumPy array's, emulated)."""
    return x.data.ptr if hasattr(x.data, "ptr") else x.ctypes.data


def matmul_naive(a, b):
    """v1: one CUDA thread per output element, operands read from global memory."""
    return _matmul(a, b, "naive")


def matmul_tiled(a, b):
    """v2: 64x64 shared-memory tiles, 4x4 register patch per thread."""
    return _matmul(a, b, "tiled")


def matmul_blocktile(a, b):
    """v3: 128x128 block tiles, 8x8 register patch per thread, float4 loads and stores."""
    return _matmul(a, b, "blocktile")


# ----------------------------------------------------------------------------------------------
# attention
# ----------------------------------------------------------------------------------------------

class CupyFlashCache(NamedTuple):
    q: object           # (B,H,T,D) float32, C-contiguous: the backward recomputes the scores
    k: object           # (B,H,S,D)
    v: object           # (B,H,S,D)  for dP = dO V^T
    pad: object         # (B,S) uint8, 1 = padding key
    out: object         # (B,H,T,D)  O, for delta_i = dO_i . O_i
    lse: object         # (B,H,T)    row log-sum-exp; +inf marks a row that saw no key
    causal: bool
    scale: float


def _dims(q, k):
    B, H, T, D = q.shape
    return B, H, T, k.shape[2], D


def _pad_mask(key_padding_mask, B, S):
    """(B, S) uint8, 1 = padding key, as the kernels read it (all 0 without a mask)."""
    import cupy as cp
    if key_padding_mask is None:
        return cp.zeros((B, S), cp.uint8)
    return cp.ascontiguousarray(key_padding_mask).astype(cp.uint8)


def flash_attention_forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """v1: FlashAttention-2 style forward (one thread per query row, K/V tiles in shared memory)."""
    import cupy as cp
    if dropout_mask is not None or q.dtype != cp.float32 or q.shape[-1] > D_MAX:
        return get_kernel("attention", "numpy").forward(q, k, v, causal=causal, key_padding_mask=key_padding_mask,
                                                        scale=scale, dropout_mask=dropout_mask)
    q, k, v = (cp.ascontiguousarray(x) for x in (q, k, v))
    B, H, T, S, D = _dims(q, k)
    pad = _pad_mask(key_padding_mask, B, S)
    out = cp.empty_like(q)
    lse = cp.empty((B, H, T), cp.float32)
    grid = ((T + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK, B * H)
    _kernel("attention_flash2.cu", "flash_fwd")(
        grid, (ROWS_PER_BLOCK,), (q, k, v, pad, out, lse, np.int32(H), np.int32(T), np.int32(S), np.int32(D),
                                  np.int32(causal), np.float32(scale)))
    return out, CupyFlashCache(q, k, v, pad, out, lse, bool(causal), float(scale))


def flash_attention_backward(dout, cache):
    """v1 backward: delta, then dK/dV (one thread per key) and dQ (one thread per query), no atomics."""
    import cupy as cp
    if not isinstance(cache, CupyFlashCache):
        return get_kernel("attention", "numpy").backward(dout, cache)
    q, k, v, pad, out, lse, causal, scale = cache
    B, H, T, S, D = _dims(q, k)
    dout = cp.ascontiguousarray(dout)
    delta = cp.empty((B, H, T), cp.float32)
    dq, dk, dv = cp.empty_like(q), cp.empty_like(k), cp.empty_like(v)
    rows = B * H * T
    _kernel("attention_flash2.cu", "flash_bwd_delta")(((rows + 255) // 256,), (256,),
                                                        (out, dout, delta, np.int64(rows), np.int32(D)))
    shape_args = (np.int32(H), np.int32(T), np.int32(S), np.int32(D), np.int32(causal), np.float32(scale))
    _kernel("attention_flash2.cu", "flash_bwd_dkdv")(
        ((S + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK, B * H), (ROWS_PER_BLOCK,),
        (q, k, v, pad, dout, lse, delta, dk, dv) + shape_args)
    _kernel("attention_flash2.cu", "flash_bwd_dq")(
        ((T + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK, B * H), (ROWS_PER_BLOCK,),
        (q, k, v, pad, dout, lse, delta, dq) + shape_args)
    return dq, dk, dv


register_kernel("matmul", "cupy", "v1_naive", matmul_naive)
register_kernel("matmul", "cupy", "v2_tiled", matmul_tiled)
register_kernel("matmul", "cupy", "v3_blocktile", matmul_blocktile, default=True)
def flash_tiles_forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """v2: the forward as 32 x 32 tiles of small matrix products (head dim <= 64; otherwise v1)."""
    import cupy as cp
    if dropout_mask is not None or q.dtype != cp.float32 or q.shape[-1] > TILES_D_MAX:
        return flash_attention_forward(q, k, v, causal=causal, key_padding_mask=key_padding_mask, scale=scale,
                                       dropout_mask=dropout_mask)   # v1, which passes on what it can't run
    q, k, v = (cp.ascontiguousarray(x) for x in (q, k, v))
    B, H, T, S, D = _dims(q, k)
    pad = _pad_mask(key_padding_mask, B, S)
    out = cp.empty_like(q)
    lse = cp.empty((B, H, T), cp.float32)
    _kernel("attention_v2_tiles.cu", f"attn_tiles_fwd_d{_bucket(D)}")(
        ((T + TILE - 1) // TILE, B * H), (128,),
        (q, k, v, pad, out, lse, np.int32(H), np.int32(T), np.int32(S), np.int32(D), np.int32(causal),
         np.float32(scale)))
    return out, CupyFlashCache(q, k, v, pad, out, lse, bool(causal), float(scale))


def flash_tiles_backward(dout, cache):
    """v2 backward: delta (v1's kernel), then dK/dV per key tile and dQ per query tile, no atomics."""
    import cupy as cp
    if not isinstance(cache, CupyFlashCache) or cache.q.shape[-1] > TILES_D_MAX:
        return flash_attention_backward(dout, cache)
    q, k, v, pad, out, lse, causal, scale = cache
    B, H, T, S, D = _dims(q, k)
    dout = cp.ascontiguousarray(dout)
    delta = cp.empty((B, H, T), cp.float32)
    dq, dk, dv = cp.empty_like(q), cp.empty_like(k), cp.empty_like(v)
    rows = B * H * T
    _kernel("attention_flash2.cu", "flash_bwd_delta")(((rows + 255) // 256,), (256,),
                                                        (out, dout, delta, np.int64(rows), np.int32(D)))
    shape_args = (np.int32(H), np.int32(T), np.int32(S), np.int32(D), np.int32(causal), np.float32(scale))
    _kernel("attention_v2_tiles.cu", f"attn_tiles_bwd_dkdv_d{_bucket(D)}")(
        ((S + TILE - 1) // TILE, B * H), (128,), (q, k, v, pad, dout, lse, delta, dk, dv) + shape_args)
    _kernel("attention_v2_tiles.cu", f"attn_tiles_bwd_dq_d{_bucket(D)}")(
        ((T + TILE - 1) // TILE, B * H), (128,), (q, k, v, pad, dout, lse, delta, dq) + shape_args)
    return dq, dk, dv


def _bucket(D: int) -> int:
    """The compiled head-dim bucket DP >= D of attention_v2_tiles.cu (columns past D are zeros)."""
    return 32 if D <= 32 else 64


MMA_D_MAX = 64        # attention_v3_mma.cu: head dims up to 64
MMA_ROWS = 64         # attention_v3_mma.cu: queries (or keys) per block, 4 warps of 16


class CupyMmaCache(NamedTuple):
    """What attention v3's backward reads: fp16 inputs and output, float32 lse."""
    q: object           # (B,H,T,D) float16, C-contiguous
    k: object           # (B,H,S,D) float16
    v: object           # (B,H,S,D) float16
    pad: object         # (B,S) uint8, 1 = padding key
    out: object         # (B,H,T,D) float16
    lse: object         # (B,H,T) float32; +inf marks a row that saw no key
    causal: bool
    scale: float


def flash_mma_forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """v3: fp16 forward on the tensor cores (head dim <= 64); float32 goes to v2, the rest to the reference."""
    import cupy as cp
    if q.dtype == cp.float32:
        return flash_tiles_forward(q, k, v, causal=causal, key_padding_mask=key_padding_mask, scale=scale,
                                   dropout_mask=dropout_mask)
    if dropout_mask is not None or q.dtype != cp.float16 or q.shape[-1] > MMA_D_MAX:
        return get_kernel("attention", "numpy").forward(q, k, v, causal=causal, key_padding_mask=key_padding_mask,
                                                        scale=scale, dropout_mask=dropout_mask)
    q, k, v = (cp.ascontiguousarray(x) for x in (q, k, v))
    B, H, T, S, D = _dims(q, k)
    pad = _pad_mask(key_padding_mask, B, S)
    out = cp.empty_like(q)
    lse = cp.empty((B, H, T), cp.float32)
    _kernel("attention_v3_mma.cu", "attn_mma_fwd")(
        ((T + MMA_ROWS - 1) // MMA_ROWS, B * H), (128,),
        (*_bits(q, k, v), pad, *_bits(out), lse, np.int32(H), np.int32(T), np.int32(S), np.int32(D),
         np.int32(causal), np.float32(scale), _vec16(D, k, v)))
    return out, CupyMmaCache(q, k, v, pad, out, lse, bool(causal), float(scale))


def flash_mma_backward(dout, cache):
    """v3 backward: delta, dK/dV per 64 keys and dQ per 64 queries, on the tensor cores; fp16 gradients."""
    import cupy as cp
    if not isinstance(cache, CupyMmaCache):
        return flash_tiles_backward(dout, cache)
    q, k, v, pad, out, lse, causal, scale = cache
    B, H, T, S, D = _dims(q, k)
    dout = cp.ascontiguousarray(dout).astype(cp.float16, copy=False)
    delta = cp.empty((B, H, T), cp.float32)
    dq, dk, dv = cp.empty_like(q), cp.empty_like(k), cp.empty_like(v)
    rows = B * H * T
    _kernel("attention_v3_mma.cu", "attn_mma_bwd_delta")(((rows + 255) // 256,), (256,),
                                                           (*_bits(out, dout), delta, np.int64(rows), np.int32(D)))
    shape_args = (np.int32(H), np.int32(T), np.int32(S), np.int32(D), np.int32(causal), np.float32(scale),
                  _vec16(D, q, k, v, dout))
    _kernel("attention_v3_mma.cu", "attn_mma_bwd_dkdv")(
        ((S + MMA_ROWS - 1) // MMA_ROWS, B * H), (128,),
        (*_bits(q, k, v), pad, *_bits(dout), lse, delta, *_bits(dk, dv)) + shape_args)
    _kernel("attention_v3_mma.cu", "attn_mma_bwd_dq")(
        ((T + MMA_ROWS - 1) // MMA_ROWS, B * H), (128,),
        (*_bits(q, k, v), pad, *_bits(dout), lse, delta, *_bits(dq)) + shape_args)
    return dq, dk, dv


def _vec16(D: int, *arrays) -> np.int32:
    """1 when attention v3 may load whole 16-byte rows: D = 64 and every array starts 16-byte aligned."""
    return np.int32(D == MMA_D_MAX and all(_address(a) % 16 == 0 for a in arrays))


def _bits(*arrays):
    """fp16 arrays as the uint16 bit patterns the header-free kernel takes (views, no copies)."""
    import cupy as cp
    return tuple(a.view(cp.uint16) for a in arrays)


register_kernel("attention", "cupy", "v1_flash2", flash_attention_forward, flash_attention_backward)
register_kernel("attention", "cupy", "v2_flash_tiles", flash_tiles_forward, flash_tiles_backward)
register_kernel("attention", "cupy", "v3_flash_mma", flash_mma_forward, flash_mma_backward, default=True)
