"""Numba CPU kernels (tinylm/backend/numba_matmul.py, numba_attention.py) beyond tests/test_kernels.py:
edge cases of the packing and blocking, property tests against float64 NumPy, gradient checks through
the public ops on the numba backend, the O(T) memory of the flash cache, the vectorised exp, and a
whole GPT training step that must agree across backends.
"""
import math

import numba
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinylm
from tinylm.backend import numba_attention as na, numba_math
from tinylm.backend import numba_matmul as nm
from tinylm.backend.registry import get_kernel
from tinylm.gradcheck import check_op
from tinylm.ops.attention import ReferenceAttentionCache, attention_backward, attention_forward
from tinylm.ops.matmul import matmul

MATMULS = [nm.matmul_naive, nm.matmul_dot, nm.matmul_tiled, nm.matmul_blis]
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _assert_matmul(got, a, b):
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.shape == want.shape and got.dtype == a.dtype
    scale = max(1.0, np.abs(want).max()) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[a.dtype.type] * scale * math.sqrt(a.shape[-1] or 1))


@pytest.mark.parametrize("f", MATMULS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_matmul_strided_transposed_and_blocked(f, dtype, rng):
    """Transposed and sliced views (any strides); K past one K chunk; rows and columns off the tile grid."""
    a = rng.standard_normal((9, 1100)).astype(dtype)            # K = 1100 > KB, KC: several chunks, accumulate
    b = rng.standard_normal((7, 1100)).astype(dtype).T           # a transposed view: b^T is contiguous
    _assert_matmul(f(a, b), a, b)
    big = rng.standard_normal((40, 60)).astype(dtype)
    a2, b2 = big[1::3, 5:34], big[3:32, ::4]                     # non-contiguous both
    _assert_matmul(f(a2, b2), a2, b2)


@pytest.mark.parametrize("f", MATMULS, ids=lambda f: f.__name__)
def test_matmul_batches_broadcast_and_empty(f, rng):
    a, b = rng.standard_normal((2, 1, 5, 7)), rng.standard_normal((3, 7, 4))
    _assert_matmul(f(a, b), a, b)                                # batch (2,1) x (3,) -> (2,3)
    a3 = rng.standard_normal((2, 3, 13, 6))
    w = rng.standard_normal((6, 5))
    _assert_matmul(f(a3, w), a3, w)                              # 2-D b: batch folds into M
    z = f(np.ones((4, 0)), np.ones((0, 3)))                      # K = 0: an empty sum is 0
    assert z.shape == (4, 3) and np.all(z == 0)
    assert f(np.ones((0, 5)), np.ones((5, 3))).shape == (0, 3)


@pytest.mark.parametrize("f", [nm.matmul_tiled, nm.matmul_blis], ids=lambda f: f.__name__)
def test_matmul_other_float_dtypes_fall_back_to_numpy(f, rng):
    a, b = rng.standard_normal((5, 4)).astype(np.float16), rng.standard_normal((4, 3)).astype(np.float16)
    got = f(a, b)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, a @ b, rtol=1e-3)


@given(M=st.integers(1, 40), K=st.integers(1, 300), N=st.integers(1, 80), f64=st.booleans(),
       seed=st.integers(0, 2**16))
def test_matmul_tiled_and_blis_property(M, K, N, f64, seed):
    r = np.random.default_rng(seed)
    dtype = np.float64 if f64 else np.float32
    a, b = r.standard_normal((M, K)).astype(dtype), r.standard_normal((K, N)).astype(dtype)
    _assert_matmul(nm.matmul_tiled(a, b), a, b)
    _assert_matmul(nm.matmul_blis(a, b), a, b)


def test_microkernels_file_is_the_generators_output():
    from pathlib import Path

    from tinylm.backend import gen_microkernels
    committed = Path(gen_microkernels.__file__).with_name("numba_microkernels.py").read_text()
    assert committed == gen_microkernels.module_source(), \
        "run: python -m tinylm.backend.gen_microkernels > tinylm/backend/numba_microkernels.py"


def test_blis_micro_kernel_is_vectorised():
    """The SLP switch works: the micro-kernel multiplies with 512-bit FMAs, not a scalar FMA loop.

    Checked on freshly compiled machine code (a cached kernel cannot be inspected), so a Numba
    upgrade that ignores the switch fails here instead of silently running v4 twenty times slower."""
    import re

    from numba import njit

    from tinylm.backend.numba_microkernels import ukernel_8x32

    fresh = njit(fastmath={"contract"}, error_model="numpy")(ukernel_8x32.py_func)   # not from the cache
    with nm._slp_vectorize():
        fresh(np.ones((4, 8), np.float32), np.ones((4, 32), np.float32), np.zeros((8, 32), np.float32), False)
    asm = fresh.inspect_asm(fresh.signatures[0])
    if not re.search(r"\bzmm\d", asm):
        pytest.skip("this CPU has no AVX-512: the micro-kernel is vectorised for narrower registers")
    packed = len(re.findall(r"vfmadd\w*ps\s+[^\n]*zmm", asm))
    scalar = len(re.findall(r"vfmadd\w*ss\s", asm))
    assert packed >= 16 and scalar < packed, f"{packed} packed vs {scalar} scalar FMAs"


def test_numba_backend_dispatches_matmul_and_attention():
    with tinylm.use_backend("numba"):
        assert get_kernel("matmul").key == "matmul/numba/v4_blis"
        assert get_kernel("linear").key == "linear/numba/v4_blis"
        assert get_kernel("linear_gelu").key == "linear_gelu/numba/v4_blis"
        assert get_kernel("attention").key == "attention/numba/v4_flash_ukernel"
        a = np.arange(12.0, dtype=np.float32).reshape(3, 4)
        np.testing.assert_allclose(matmul(a, a.T), a @ a.T, rtol=1e-6)
        with pytest.raises(ValueError, match="inner sizes differ"):      # the op still validates
            matmul(a, a)


# --- attention ---

ATTENTION = [("v1_flash_rows", na.flash_rows_forward, na.flash_rows_backward),
             ("v2_flash_tiles", na.flash_attention_forward, na.flash_attention_backward),
             ("v3_flash_blocks", na.flash_blocks_forward, na.flash_blocks_backward),
             ("v4_flash_ukernel", na.flash_ukernel_forward, na.flash_ukernel_backward)]


def _reference(q, k, v, dout, **kw):
    ref = get_kernel("attention", "numpy")
    out, cache = ref.forward(*(x.astype(np.float64) for x in (q, k, v)), dropout_mask=None, **kw)
    return (out, *ref.backward(dout.astype(np.float64), cache))


@pytest.mark.parametrize("name, fwd, bwd", ATTENTION, ids=[a[0] for a in ATTENTION])
@given(B=st.integers(1, 2), H=st.integers(1, 2), T=st.integers(1, 11), extra_keys=st.integers(0, 140),
       D=st.sampled_from([1, 3, 16, 24]), causal=st.booleans(), padding=st.booleans(), f64=st.booleans(),
       seed=st.integers(0, 2**16))
def test_flash_attention_property(name, fwd, bwd, B, H, T, extra_keys, D, causal, padding, f64, seed):
    """Against the float64 reference over shapes that cross the 4-row blocks and the 64-key tiles."""
    r = np.random.default_rng(seed)
    dtype = np.float64 if f64 else np.float32
    S = T + extra_keys
    q, k, v, dout = (r.standard_normal(s).astype(dtype) for s in [(B, H, T, D), (B, H, S, D), (B, H, S, D),
                                                                   (B, H, T, D)])
    pad = (r.random((B, S)) < 0.4) if padding else None
    kw = dict(causal=causal, key_padding_mask=pad, scale=1 / math.sqrt(D))
    out, cache = fwd(q, k, v, dropout_mask=None, **kw)
    got = (out, *bwd(dout, cache))
    for g, want in zip(got, _reference(q, k, v, dout, **kw)):
        assert g.dtype == dtype and g.shape == want.shape
        np.testing.assert_allclose(g, want, rtol=0, atol=(2e-5 if dtype == np.float32 else 1e-11)
                                   * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("name, fwd, bwd", ATTENTION, ids=[a[0] for a in ATTENTION])
def test_fully_masked_rows_are_zero_with_zero_gradient(name, fwd, bwd, rng):
    q, k, v, dout = (rng.standard_normal((2, 1, 5, 8)) for _ in range(4))
    pad = np.zeros((2, 5), bool)
    pad[1] = True                                                # sequence 1: every key is padding
    out, cache = fwd(q, k, v, causal=False, key_padding_mask=pad, scale=0.3, dropout_mask=None)
    dq, dk, dv = bwd(dout, cache)
    assert np.all(out[1] == 0) and np.all(dq[1] == 0) and np.all(dk[1] == 0) and np.all(dv[1] == 0)
    assert np.all(np.isfinite(out)) and np.abs(out[0]).sum() > 0


def test_flash_cache_is_linear_in_T(rng):
    """The cache holds q, k, v, O and the (B,H,T) log-sum-exp: nothing of size T x S."""
    B, H, T, D = 1, 2, 96, 8
    q, k, v = (rng.standard_normal((B, H, T, D)).astype(np.float32) for _ in range(3))
    _, cache = na.flash_attention_forward(q, k, v, causal=True, key_padding_mask=None, scale=0.3, dropout_mask=None)
    assert isinstance(cache, na.FlashCache)
    sizes = [x.size for x in cache if isinstance(x, np.ndarray)]
    assert max(sizes) == B * H * T * D and cache.lse.shape == (B, H, T)


# --- the block kernels (v3, v4): threads, ragged causal blocks, cache size ---

BLOCKS = [a for a in ATTENTION if a[0] in ("v3_flash_blocks", "v4_flash_ukernel")]


def _block_inputs(r, B, H, T, S, D, dtype):
    return (r.standard_normal(s).astype(dtype) for s in [(B, H, T, D), (B, H, S, D), (B, H, S, D), (B, H, T, D)])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("name, fwd, bwd", BLOCKS, ids=[a[0] for a in BLOCKS])
def test_block_kernels_same_result_on_one_and_two_threads(name, fwd, bwd, rng):
    """Tasks never share output rows, so the thread count cannot change a single bit (for v3 this
    also runs the BLAS tile products from two threads at once)."""
    q, k, v, dout = _block_inputs(rng, 2, 2, 150, 150, 64, np.float32)
    kw = dict(causal=True, key_padding_mask=None, scale=0.125, dropout_mask=None)
    results = []
    old = numba.get_num_threads()
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            out, cache = fwd(q, k, v, **kw)
            results.append((out, *bwd(dout, cache)))
    finally:
        numba.set_num_threads(old)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("name, fwd, bwd", BLOCKS, ids=[a[0] for a in BLOCKS])
def test_block_kernels_fully_masked_rows_in_ragged_blocks(name, fwd, bwd, rng):
    """Sequence 1 has only padding keys; in sequence 0 key 0 is padding, so causal query 0 sees nothing."""
    q, k, v, dout = _block_inputs(rng, 2, 2, 70, 70, 16, np.float32)
    pad = np.zeros((2, 70), bool)
    pad[1] = True
    pad[0, 0] = True
    out, cache = fwd(q, k, v, causal=True, key_padding_mask=pad, scale=0.25, dropout_mask=None)
    dq, dk, dv = bwd(dout, cache)
    assert np.all(out[1] == 0) and np.all(dq[1] == 0) and np.all(dk[1] == 0) and np.all(dv[1] == 0)
    assert np.all(out[0, :, 0] == 0) and np.all(dq[0, :, 0] == 0) and np.all(cache.lse[0, :, 0] == np.inf)
    assert np.all(dk[0, :, 0] == 0) and np.all(dv[0, :, 0] == 0)          # the padding key gets nothing
    assert np.all(np.isfinite(out)) and np.abs(out[0, :, 1:]).min() > 0


@pytest.mark.parametrize("name, fwd, bwd", BLOCKS, ids=[a[0] for a in BLOCKS])
def test_block_kernels_cache_is_linear_in_T(name, fwd, bwd, rng):
    B, H, T, D = 1, 2, 200, 8
    q, k, v = (rng.standard_normal((B, H, T, D)).astype(np.float32) for _ in range(3))
    _, cache = fwd(q, k, v, causal=False, key_padding_mask=None, scale=0.3, dropout_mask=None)
    assert max(x.size for x in cache if isinstance(x, np.ndarray)) == B * H * T * D
    assert cache.lse.shape == (B, H, T)


def test_dropout_is_handed_to_the_reference_kernel(rng):
    q, k, v, dout = (rng.standard_normal((1, 2, 4, 8)) for _ in range(4))
    drop = (rng.random((1, 2, 4, 4)) > 0.5) * 2.0
    kw = dict(causal=True, key_padding_mask=None, scale=0.3, dropout_mask=drop)
    out, cache = na.flash_attention_forward(q, k, v, **kw)
    assert isinstance(cache, ReferenceAttentionCache)
    ref_out, ref_cache = get_kernel("attention", "numpy").forward(q, k, v, **kw)
    np.testing.assert_allclose(out, ref_out)
    ref_grads = get_kernel("attention", "numpy").backward(dout, ref_cache)
    for g, want in zip(na.flash_attention_backward(dout, cache), ref_grads):
        np.testing.assert_allclose(g, want)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_gradcheck_on_numba_backend(causal, rng):
    """Finite differences through the public op, with the numba backend's flash kernel doing the work."""
    q, k, v = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((1, 2, 7, 4)), rng.standard_normal((1, 2, 7, 4))
    pad = np.array([[False, True, False, False, False, False, False]])
    with tinylm.use_backend("numba"):
        check_op(attention_forward, attention_backward, {"q": q, "k": k, "v": v},
                 kwargs={"causal": causal, "key_padding_mask": pad}, tol=1e-7)   # raises on failure


@pytest.mark.parametrize("f64", [False, True], ids=["f32", "f64"])
def test_vectorised_exp_accuracy(f64):
    dtype, idtype = (np.float64, np.int64) if f64 else (np.float32, np.int32)
    lo = -700.0 if f64 else -87.0
    x = np.concatenate([np.linspace(lo, 0.0, 4001), [-1e4, -np.inf, 0.3]]).astype(dtype)
    e = np.empty_like(x)
    got = x.copy()
    numba_math.exp_tile(got, e.view(idtype), x.size)
    numba_math.scale_by_pow2(got, e, x.size)
    want = np.exp(x.astype(np.float64))
    rel = np.abs(got - want) / np.maximum(want, np.finfo(dtype).tiny)
    finite = want > np.finfo(dtype).tiny * 1e3
    eps = np.finfo(dtype).eps                                    # r = x - k ln2 rounds ln2: error ~ |x| eps
    assert np.all(rel[finite] <= 8 * eps + np.abs(x[finite]) * eps)
    assert got[-2] == 0.0 and got[-3] < 1e-30                   # -inf -> exactly 0; far below -> ~0


# --- the whole model ---

def _gpt_step(backend, dtype=np.float32):
    from tinylm.models.gpt import GPT, GPTConfig
    from tinylm.nn.loss import CrossEntropyLoss
    with tinylm.use_backend(backend):
        tinylm.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=32))
        crit = CrossEntropyLoss()
        x = np.random.default_rng(0).integers(0, 11, (3, 16))
        loss = crit(model(x), x)
        model.zero_grad()
        model.backward(crit.backward())
        return float(loss), {n: p.grad.copy() for n, p in model.named_parameters()}


def test_gpt_training_step_is_the_same_on_numpy_and_numba():
    loss_np, g_np = _gpt_step("numpy")
    loss_nb, g_nb = _gpt_step("numba")
    assert abs(loss_nb - loss_np) <= 1e-4 * abs(loss_np)
    assert g_np.keys() == g_nb.keys()
    for name in g_np:
        scale = np.abs(g_np[name]).max()
        np.testing.assert_allclose(g_nb[name], g_np[name], rtol=0, atol=1e-4 * scale, err_msg=name)


def test_numba_backend_keeps_freed_memory_for_reuse():
    """After the backend loads, re-allocating activation-sized arrays does not page-fault again
    (glibc keeps freed blocks instead of unmapping them: see numba_kernels.keep_freed_memory)."""
    resource = pytest.importorskip("resource")
    from tinylm.backend import numba_kernels
    if not numba_kernels.KEPT_FREED_MEMORY:
        pytest.skip("not glibc, or MALLOC_*_THRESHOLD_ set in the environment")

    def churn():
        arrays = [np.empty((2048, 512), np.float32) for _ in range(3)]      # 3 x 4 MiB, touched
        for a in arrays:
            a.fill(1.0)

    churn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        churn()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
    assert faults < 300, f"{faults:.0f} page faults per round of 12 MiB (3072 pages if nothing is reused)"
