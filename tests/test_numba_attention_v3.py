"""v3_flash_blocks (tinylm/backend/numba_attention.py) beyond tests/test_kernels.py and
tests/test_numba_kernels.py: the block loops run with tiny blocks so that small shapes cross many
query and key blocks (ragged last blocks, the causal diagonal inside a block, T < S), the block-size
rule that keeps OpenBLAS single-threaded, results independent of the thread count and fully masked
rows. The handoff to the reference kernel and finite differences through the public op are checked
for v3 and v4 together, in tests/test_numba_attention_v4.py.
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.backend import numba_attention as na
from tinylm.backend.registry import get_kernel

from attention_checks import assert_matches, inputs, reference   # tests/attention_checks.py

V3 = get_kernel("attention", "numba", "v3_flash_blocks")


def _v3_blocks(q, k, v, dout, causal, pad, scale, bq, bk):
    """The v3 forward and backward with explicit block sizes (the registered kernel picks them from D)."""
    B, H, T, D = q.shape
    S = k.shape[2]
    pad = np.zeros((B, S), np.bool_) if pad is None else pad
    out, lse = np.empty_like(q), np.empty((B, H, T), q.dtype)
    bits = na._bits_proto(q.dtype)
    sc = q.dtype.type(scale)
    na._blocks_forward(q, k, v, pad, causal, sc, out, lse, bq, bk, bits)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    na._blocks_backward(q, k, v, pad, causal, sc, out, dout, lse, dq, dk, dv, bq, bk, bits)
    return out, dq, dk, dv


@given(T=st.integers(1, 20), extra_keys=st.integers(0, 25), D=st.sampled_from([1, 3, 16]),
       bq=st.sampled_from([1, 3, 8]), bk=st.sampled_from([1, 5, 8]), causal=st.booleans(),
       padding=st.booleans(), f64=st.booleans(), seed=st.integers(0, 2**16))
def test_small_blocks_match_the_reference(T, extra_keys, D, bq, bk, causal, padding, f64, seed):
    """Blocks of 1..8 rows and keys: every edge case of the block loops appears at small T and S."""
    r = np.random.default_rng(seed)
    dtype = np.float64 if f64 else np.float32
    S = T + extra_keys
    q, k, v, dout = inputs(r, 2, 2, T, S, D, dtype)
    pad = (r.random((2, S)) < 0.4) if padding else None
    scale = 1 / math.sqrt(D)
    got = _v3_blocks(q, k, v, dout, causal, pad, scale, bq, bk)
    assert_matches(got, reference(q, k, v, dout, causal, pad, scale), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("T, S, D, causal", [(130, 130, 64, True), (70, 150, 80, True), (65, 129, 24, False)])
def test_registered_kernel_across_full_blocks(dtype, T, S, D, causal, rng):
    """The registered block sizes (64 x 64; 48 x 64 at D = 80) with ragged last blocks, padding, T < S."""
    q, k, v, dout = inputs(rng, 2, 1, T, S, D, dtype)
    pad = rng.random((2, S)) < 0.2
    scale = 0.7 / math.sqrt(D)
    out, cache = V3.forward(q, k, v, causal=causal, key_padding_mask=pad, scale=scale, dropout_mask=None)
    assert isinstance(cache, na.FlashCache) and cache.version == "blocks"
    assert_matches((out, *V3.backward(dout, cache)), reference(q, k, v, dout, causal, pad, scale), dtype)


@pytest.mark.parametrize("D", [1, 16, 24, 64, 80, 128, 256, 1000])
def test_block_sizes_keep_every_tile_product_serial(D):
    bq, bk = na._block_sizes(D)
    assert bq >= 8 and bk >= 1 and bq % 8 == 0
    assert bq * bk * D <= na.SERIAL_GEMM, (bq, bk)      # OpenBLAS would start its own threads above this


def test_block_sizes_at_the_benchmark_head_dim():
    assert na._block_sizes(64) == (64, 64)
