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
             v2_flash_tiles  cuda/attention_v2_tiles.cu  the same algorithm as 32 x 32 tiles of small
                                                          matrix products, a 2 x 4 score patch and a
                                                          2 x D/8 output patch per thread, all in registers;
                                                          head dim <= 64 (larger: v1)
             v3_flash_mma    cuda/attention_v3_mma.cu    (default) fp16 on the tensor cores (mma.m16n8k16,
                                                          float accumulation), FlashAttention-2's register
                                                          layout; head dim <= 64. float32 goes to v2
  One backward (flash_backward) serves all three: delta, dK/dV per block of keys, dQ per block of
  queries, with the kernels of the version whose forward made the cache.

matmul and attention v1/v2 take float32, attention v3 fp16; other dtypes (and attention with dropout
or a head dim past what the kernel holds) go to the reference kernel, which on this backend is CuPy's
own matmul (cuBLAS) and the xp-written reference attention.
Every array stays on the GPU: no host round trips. Tests: tests/test_cuda_sources.py (compiles each
source with nvcc and with NVRTC, reads ptxas's register report; runs the kernels when a GPU is
there), and, with or without a GPU, tests/test_kernels.py's "cupy-emulated" cases: this host code
and the CUDA sources run on the CPU through tinylm.backend.cuda_emu.
Derivation of the online softmax and of the tiled backward: derivations/flash_attention.md.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tinylm.backend.registry import get_kernel, register_kernel

__all__ = ["CUDA_DIR", "SOURCES", "matmul_naive", "matmul_tiled", "matmul_blocktile", "flash_attention_forward",
           "flash_tiles_forward", "flash_mma_forward", "flash_backward", "CupyFlashCache"]

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
MMA_D_MAX = 64        # attention_v3_mma.cu: head dims up to 64
MMA_ROWS = 64         # attention_v3_mma.cu: queries (or keys) per block, 4 warps of 16


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

class _Flash(NamedTuple):
    """One CUDA attention version: its kernels and how they are launched."""
    source: str          # the .cu file
    fwd: str             # forward kernel
    dkdv: str            # backward, dK and dV per block of keys
    dq: str              # backward, dQ per block of queries
    delta: tuple         # (source, kernel) of delta_i = dO_i . O_i
    rows: int            # queries (or keys) per block
    threads: int         # threads per block
    fp16: bool           # fp16 data, passed as its uint16 bits (the source is header-free)


_V1_ROWS = _Flash("attention_flash2.cu", "flash_fwd", "flash_bwd_dkdv", "flash_bwd_dq",
                  ("attention_flash2.cu", "flash_bwd_delta"), ROWS_PER_BLOCK, ROWS_PER_BLOCK, False)
_V3_MMA = _Flash("attention_v3_mma.cu", "attn_mma_fwd", "attn_mma_bwd_dkdv", "attn_mma_bwd_dq",
                 ("attention_v3_mma.cu", "attn_mma_bwd_delta"), MMA_ROWS, 128, True)


def _v2_tiles(D: int) -> _Flash:
    dp = 32 if D <= 32 else 64                  # the compiled head-dim bucket (columns past D are zeros)
    return _Flash("attention_v2_tiles.cu", f"attn_tiles_fwd_d{dp}", f"attn_tiles_bwd_dkdv_d{dp}",
                  f"attn_tiles_bwd_dq_d{dp}", ("attention_flash2.cu", "flash_bwd_delta"), TILE, 128, False)


class CupyFlashCache(NamedTuple):
    q: object           # (B,H,T,D) C-contiguous, float32 (fp16 for v3): the backward recomputes the scores
    k: object           # (B,H,S,D)
    v: object           # (B,H,S,D)  for dP = dO V^T
    pad: object         # (B,S) uint8, 1 = padding key
    out: object         # (B,H,T,D)  O, for delta_i = dO_i . O_i
    lse: object         # (B,H,T)    float32 row log-sum-exp; +inf marks a row that saw no key
    causal: bool
    scale: float
    kernels: _Flash     # the version whose forward made this: its backward kernels run


def _dims(q, k):
    B, H, T, D = q.shape
    return B, H, T, k.shape[2], D


def _pad_mask(key_padding_mask, B, S):
    """(B, S) uint8, 1 = padding key, as the kernels read it (all 0 without a mask)."""
    import cupy as cp
    if key_padding_mask is None:
        return cp.zeros((B, S), cp.uint8)
    return cp.ascontiguousarray(key_padding_mask).astype(cp.uint8)


def _data(f: _Flash, *arrays):
    """The arrays as kernel f takes them: fp16 as uint16 bit patterns (views, no copies)."""
    import cupy as cp
    return tuple(a.view(cp.uint16) for a in arrays) if f.fp16 else arrays


def _vec16(f: _Flash, D: int, *arrays) -> tuple:
    """v3's last argument: 1 when it may load whole 16-byte rows (D = 64, every array 16-byte aligned)."""
    if not f.fp16:
        return ()
    return (np.int32(D == MMA_D_MAX and all(_address(a) % 16 == 0 for a in arrays)),)


def _flash_forward(f: _Flash, q, k, v, causal, key_padding_mask, scale):
    import cupy as cp
    q, k, v = (cp.ascontiguousarray(x) for x in (q, k, v))
    B, H, T, S, D = _dims(q, k)
    pad = _pad_mask(key_padding_mask, B, S)
    out = cp.empty_like(q)
    lse = cp.empty((B, H, T), cp.float32)
    _kernel(f.source, f.fwd)(
        ((T + f.rows - 1) // f.rows, B * H), (f.threads,),
        (*_data(f, q, k, v), pad, *_data(f, out), lse, np.int32(H), np.int32(T), np.int32(S), np.int32(D),
         np.int32(causal), np.float32(scale)) + _vec16(f, D, k, v))
    return out, CupyFlashCache(q, k, v, pad, out, lse, bool(causal), float(scale), f)


def flash_backward(dout, cache):
    """Every version's backward: delta, then dK/dV per block of keys and dQ per block of queries (two
    passes instead of atomics), with the kernels of the version that ran the forward."""
    import cupy as cp
    if not isinstance(cache, CupyFlashCache):                 # the forward fell back to the reference
        return get_kernel("attention", "numpy").backward(dout, cache)
    q, k, v, pad, out, lse, causal, scale, f = cache
    B, H, T, S, D = _dims(q, k)
    dout = cp.ascontiguousarray(dout).astype(q.dtype, copy=False)
    delta = cp.empty((B, H, T), cp.float32)
    dq, dk, dv = cp.empty_like(q), cp.empty_like(k), cp.empty_like(v)
    rows = B * H * T
    _kernel(*f.delta)(((rows + 255) // 256,), (256,), (*_data(f, out, dout), delta, np.int64(rows), np.int32(D)))
    shape_args = (np.int32(H), np.int32(T), np.int32(S), np.int32(D), np.int32(causal),
                  np.float32(scale)) + _vec16(f, D, q, k, v, dout)
    _kernel(f.source, f.dkdv)(((S + f.rows - 1) // f.rows, B * H), (f.threads,),
                              (*_data(f, q, k, v), pad, *_data(f, dout), lse, delta, *_data(f, dk, dv)) + shape_args)
    _kernel(f.source, f.dq)(((T + f.rows - 1) // f.rows, B * H), (f.threads,),
                            (*_data(f, q, k, v), pad, *_data(f, dout), lse, delta, *_data(f, dq)) + shape_args)
    return dq, dk, dv


def _reference_forward(q, k, v, **kw):
    return get_kernel("attention", "numpy").forward(q, k, v, **kw)


def flash_attention_forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """v1: one thread per query row (per key row in the backward), K/V tiles in shared memory; float32,
    head dim <= 128; anything else goes to the reference kernel."""
    import cupy as cp
    kw = dict(causal=causal, key_padding_mask=key_padding_mask, scale=scale, dropout_mask=dropout_mask)
    if dropout_mask is not None or q.dtype != cp.float32 or q.shape[-1] > D_MAX:
        return _reference_forward(q, k, v, **kw)
    return _flash_forward(_V1_ROWS, q, k, v, causal, key_padding_mask, scale)


def flash_tiles_forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """v2: 32 x 32 tiles of small matrix products, every per-thread array in registers; float32, head
    dim <= 64; otherwise v1."""
    import cupy as cp
    kw = dict(causal=causal, key_padding_mask=key_padding_mask, scale=scale, dropout_mask=dropout_mask)
    if dropout_mask is not None or q.dtype != cp.float32 or q.shape[-1] > TILES_D_MAX:
        return flash_attention_forward(q, k, v, **kw)
    return _flash_forward(_v2_tiles(q.shape[-1]), q, k, v, causal, key_padding_mask, scale)


def flash_mma_forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """v3: the tensor cores, fp16 in and out (head dim <= 64); float32 goes to v2, the rest to the reference."""
    import cupy as cp
    kw = dict(causal=causal, key_padding_mask=key_padding_mask, scale=scale, dropout_mask=dropout_mask)
    if q.dtype == cp.float32:
        return flash_tiles_forward(q, k, v, **kw)
    if dropout_mask is not None or q.dtype != cp.float16 or q.shape[-1] > MMA_D_MAX:
        return _reference_forward(q, k, v, **kw)
    return _flash_forward(_V3_MMA, q, k, v, causal, key_padding_mask, scale)


register_kernel("matmul", "cupy", "v1_naive", matmul_naive)
register_kernel("matmul", "cupy", "v2_tiled", matmul_tiled)
register_kernel("matmul", "cupy", "v3_blocktile", matmul_blocktile, default=True)
register_kernel("attention", "cupy", "v1_flash2", flash_attention_forward, flash_backward)
register_kernel("attention", "cupy", "v2_flash_tiles", flash_tiles_forward, flash_backward)
register_kernel("attention", "cupy", "v3_flash_mma", flash_mma_forward, flash_backward, default=True)
