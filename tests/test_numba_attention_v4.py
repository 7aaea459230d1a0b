"""v4_flash_ukernel (tinylm/backend/numba_attention.py) beyond tests/test_kernels.py and
tests/test_numba_kernels.py: the tile loops with small blocks so that small shapes cross many query
and key blocks (ragged 8-row groups and NR-key panels, the causal diagonal, T < S and T > S), head
dims that are not a multiple of 8 (zero-padded), fully masked rows, results independent of the
thread count; and, for v3 and v4 both, the handoff of dropout and fp16 to the reference kernel and
finite differences through the public op.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinylm
from tinylm.backend import numba_attention as na
from tinylm.backend import registry
from tinylm.backend.registry import get_kernel
from tinylm.gradcheck import check_op
from tinylm.ops.attention import ReferenceAttentionCache, attention_backward, attention_forward

from attention_checks import assert_matches, inputs, reference   # tests/attention_checks.py

V4 = get_kernel("attention", "numba", "v4_flash_ukernel")


def _v4_blocks(q, k, v, dout, causal, pad, scale, bk, bq):
    """The v4 forward and backward with explicit block sizes (forward: bk keys; backward: bq queries)."""
    D = q.shape[3]
    pad = np.zeros((q.shape[0], k.shape[2]), np.bool_) if pad is None else pad
    qp, kp, vp, out, lse = na._ukernel_forward_run(q, k, v, pad, causal, scale, bk=bk)
    grads = na._ukernel_backward_run(qp, kp, vp, pad, causal, scale, out, dout, lse, bq=bq)
    return (out[..., :D], *grads)


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 45), S=st.integers(1, 70), D=st.sampled_from([3, 16, 24, 64, 80]),
       bk=st.sampled_from([8, 16, 64]), bq=st.sampled_from([8, 16, 64]), causal=st.booleans(),
       padding=st.booleans(), f64=st.booleans(), seed=st.integers(0, 2**16))
def test_small_blocks_match_the_reference(T, S, D, bk, bq, causal, padding, f64, seed):
    """Against the float64 reference; T > S with causal gives rows that see no key at all."""
    r = np.random.default_rng(seed)
    dtype = np.float64 if f64 else np.float32
    q, k, v, dout = inputs(r, 2, 2, T, S, D, dtype)
    pad = (r.random((2, S)) < 0.4) if padding else None
    scale = 1 / math.sqrt(D)
    assert_matches(_v4_blocks(q, k, v, dout, causal, pad, scale, bk, bq),
                    reference(q, k, v, dout, causal, pad, scale), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("T, S, D, causal", [(1, 1, 16, True), (37, 37, 24, True), (37, 100, 80, True),
                                             (70, 33, 64, False), (130, 130, 64, True), (37, 37, 5, False)])
def test_registered_kernel_matches_the_reference(dtype, T, S, D, causal, rng):
    """The registered block sizes, with ragged last blocks, key padding, T != S and odd D."""
    q, k, v, dout = inputs(rng, 2, 1, T, S, D, dtype)
    pad = rng.random((2, S)) < 0.2
    scale = 0.7 / math.sqrt(D)
    out, cache = V4.forward(q, k, v, causal=causal, key_padding_mask=pad, scale=scale, dropout_mask=None)
    assert isinstance(cache, na.FlashCache) and cache.version == "ukernel"
    assert_matches((out, *V4.backward(dout, cache)), reference(q, k, v, dout, causal, pad, scale), dtype)


# The handoff and the gradient check through the public op, for both block kernels (v3 tests its own
# block geometry in test_numba_attention_v3.py).
BLOCK_KERNELS = ["v3_flash_blocks", "v4_flash_ukernel"]


@pytest.mark.parametrize("version", BLOCK_KERNELS)
@pytest.mark.parametrize("case", ["dropout", "float16"])
def test_dropout_and_float16_are_handed_to_the_reference_kernel(version, case, rng):
    kernel = get_kernel("attention", "numba", version)
    dtype = np.float16 if case == "float16" else np.float64
    q, k, v, dout = (rng.standard_normal((1, 2, 4, 8)).astype(dtype) for _ in range(4))
    drop = (rng.random((1, 2, 4, 4)) > 0.5) * 2.0 if case == "dropout" else None
    kw = dict(causal=False, key_padding_mask=None, scale=0.3, dropout_mask=drop)
    out, cache = kernel.forward(q, k, v, **kw)
    assert isinstance(cache, ReferenceAttentionCache)
    ref = get_kernel("attention", "numpy")
    ref_out, ref_cache = ref.forward(q, k, v, **kw)
    np.testing.assert_allclose(out, ref_out)
    for g, want in zip(kernel.backward(dout, cache), ref.backward(dout, ref_cache)):
        np.testing.assert_allclose(g, want)


@pytest.mark.parametrize("version", BLOCK_KERNELS)
@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_through_the_public_op(version, causal, rng, monkeypatch):
    """Finite differences of attention_forward on the numba backend, with the block kernel doing the work."""
    monkeypatch.setitem(registry._DEFAULTS, ("attention", "numba"), version)
    q = rng.standard_normal((1, 2, 5, 4))
    k, v = rng.standard_normal((1, 2, 7, 4)), rng.standard_normal((1, 2, 7, 4))
    pad = np.array([[False, True, False, False, False, False, False]])
    with tinylm.use_backend("numba"):
        assert get_kernel("attention").version == version
        check_op(attention_forward, attention_backward, {"q": q, "k": k, "v": v},
                 kwargs={"causal": causal, "key_padding_mask": pad}, tol=1e-7)   # raises on failure
