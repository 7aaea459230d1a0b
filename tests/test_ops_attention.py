"""Scaled dot-product attention (tinylm/ops/attention.py): gradient checks, masking semantics,
properties, dispatch and bad input. Kernel-by-kernel numerics: tests/test_kernels.py."""
import importlib
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinylm
from tinylm.backend import registry
from tinylm.gradcheck import check_op
from tinylm.ops.attention import attention_backward, attention_forward, attention_probs


def _qkv(rng, B=2, H=2, T=3, S=4, D=3, dtype=np.float64):
    q, k, v = (rng.standard_normal(shape).astype(dtype) for shape in [(B, H, T, D), (B, H, S, D), (B, H, S, D)])
    return q, k, v


def _naive(q, k, v, causal=False, key_padding_mask=None, scale=None):
    """The definition, one query row at a time: softmax over the keys this query may see."""
    B, H, T, D = q.shape
    S = k.shape[2]
    scale = 1 / math.sqrt(D) if scale is None else scale
    out = np.zeros(q.shape)
    for b in range(B):
        for h in range(H):
            for i in range(T):
                seen = [j for j in range(S) if (not causal or j <= i + S - T)
                        and (key_padding_mask is None or not key_padding_mask[b, j])]
                if not seen:
                    continue
                scores = np.array([scale * q[b, h, i] @ k[b, h, j] for j in seen])
                w = np.exp(scores - scores.max())
                out[b, h, i] = sum(wj * v[b, h, j] for wj, j in zip(w / w.sum(), seen))
    return out


# --- gradient checks (float64, every float input, random upstream gradient) ---

PAD = np.array([[False, False, True, False], [False, True, True, False]])   # (B=2, S=4)


@pytest.mark.parametrize("T, kwargs", [
    (3, {}),                                                   # T != S, no mask
    (4, {"causal": True}),                                     # square causal
    (2, {"causal": True}),                                     # end-aligned causal (KV-cache shape)
    (3, {"key_padding_mask": PAD}),
    (3, {"causal": True, "key_padding_mask": PAD}),
    (3, {"scale": 0.7}),
    (3, {"dropout_p": 0.4, "rng": 5}),                         # int seed -> the same mask on every call
    (3, {"causal": True, "dropout_p": 0.25, "rng": 11, "key_padding_mask": PAD}),
], ids=["plain", "causal", "causal_T<S", "padding", "causal+padding", "scale", "dropout", "all"])
def test_attention_gradcheck(rng, T, kwargs):
    q, k, v = _qkv(rng, T=T)
    check_op(attention_forward, attention_backward, {"q": q, "k": k, "v": v}, kwargs=kwargs, tol=1e-7)


def test_fully_masked_rows_give_zeros_and_zero_gradients(rng):
    q, k, v = _qkv(rng, T=4, S=4)
    pad = np.zeros((2, 4), bool)
    pad[1, :] = True             # sequence 1: every key is padding -> every query of it sees nothing
    pad[0, 0] = True             # sequence 0, causal: query 0 sees only key 0, which is padding
    kwargs = {"causal": True, "key_padding_mask": pad}
    out, cache = attention_forward(q, k, v, **kwargs)
    dq, dk, dv = attention_backward(rng.standard_normal(out.shape), cache)
    assert np.all(np.isfinite(out)) and not out[1].any() and not out[0, :, 0].any()
    assert not dq[1].any() and not dk[1].any() and not dv[1].any() and not dq[0, :, 0].any()
    assert not attention_probs(q, k, **kwargs)[1].any()
    check_op(attention_forward, attention_backward, {"q": q, "k": k, "v": v}, kwargs=kwargs, tol=1e-7)


# --- semantics against the definition ---

@pytest.mark.parametrize("T, S, causal, pad", [(3, 5, False, True), (5, 5, True, False), (2, 5, True, True),
                                               (1, 4, True, False)])
def test_forward_matches_row_by_row_definition(rng, T, S, causal, pad):
    q, k, v = _qkv(rng, B=2, H=3, T=T, S=S, D=4)
    mask = rng.random((2, S)) < 0.3 if pad else None
    out, _ = attention_forward(q, k, v, causal=causal, key_padding_mask=mask)
    np.testing.assert_allclose(out, _naive(q, k, v, causal, mask), rtol=1e-12, atol=1e-12)


def test_causal_mask_is_end_aligned():
    # T=2 new queries against S=5 keys: query 0 is position 3, query 1 position 4.
    q, k = np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 5, 2))
    p = attention_probs(q, k, causal=True)[0, 0]
    np.testing.assert_allclose(p, [[1 / 4, 1 / 4, 1 / 4, 1 / 4, 0], [1 / 5] * 5])


def test_kv_cache_decoding_matches_full_causal_attention(rng):
    # The last Tn rows of causal self-attention over S tokens equal causal attention of just those
    # Tn queries against all S keys: what incremental decoding with a KV cache computes.
    q, k, v = _qkv(rng, B=2, H=2, T=6, S=6, D=4)
    full, _ = attention_forward(q, k, v, causal=True)
    for tn in (1, 2, 5):
        step, _ = attention_forward(q[:, :, -tn:], k, v, causal=True)
        np.testing.assert_allclose(step, full[:, :, -tn:], rtol=1e-12, atol=1e-12)


def test_scale_multiplies_the_scores(rng):
    q, k, v = _qkv(rng, D=4)
    a, _ = attention_forward(q, k, v, scale=0.3)
    b, _ = attention_forward(q * 0.3 * math.sqrt(4), k, v)          # default scale 1/sqrt(4)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_dropout_is_seeded_and_scales_kept_probabilities(rng):
    q, k, v = _qkv(rng, B=2, H=4, T=8, S=16, D=4)
    a, ca = attention_forward(q, k, v, dropout_p=0.3, rng=42)
    b, _ = attention_forward(q, k, v, dropout_p=0.3, rng=42)
    c, _ = attention_forward(q, k, v, dropout_p=0.3, rng=43)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    m = ca.dropout_mask
    assert set(np.unique(m)) == {0.0, 1 / 0.7} and abs((m == 0).mean() - 0.3) < 0.05
    p = attention_probs(q, k)
    np.testing.assert_allclose(a, (p * m) @ v, rtol=1e-12)
    tinylm.manual_seed(7)
    d, _ = attention_forward(q, k, v, dropout_p=0.3)                 # rng=None: the global generator
    tinylm.manual_seed(7)
    e, _ = attention_forward(q, k, v, dropout_p=0.3)
    np.testing.assert_array_equal(d, e)
    assert attention_forward(q, k, v, dropout_p=0.0)[1].dropout_mask is None


# --- properties over shapes and dtypes ---

shapes = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 5), st.integers(1, 6), st.integers(1, 5))


@given(shape=shapes, causal=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_probs_rows_sum_to_one_over_seen_keys(shape, causal, dtype, seed):
    B, H, T, S, D = shape
    T = min(T, S) if causal else T
    r = np.random.default_rng(seed)
    q, k, v = _qkv(r, B, H, T, S, D, dtype)
    pad = r.random((B, S)) < 0.4
    p = attention_probs(q, k, causal=causal, key_padding_mask=pad)
    assert p.shape == (B, H, T, S) and p.dtype == dtype
    seen = ~pad[:, None, None, :] & (np.arange(S) <= np.arange(T)[:, None] + S - T if causal else True)
    seen = np.broadcast_to(seen, p.shape)
    assert np.all(p[~seen] == 0) and np.all(p >= 0)
    sums = p.sum(-1)
    np.testing.assert_allclose(sums[seen.any(-1)], 1, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert np.all(sums[~seen.any(-1)] == 0)
    out, cache = attention_forward(q, k, v, causal=causal, key_padding_mask=pad)
    assert out.shape == q.shape and out.dtype == dtype
    grads = attention_backward(np.ones_like(out), cache)
    assert [g.shape for g in grads] == [q.shape, k.shape, v.shape] and all(g.dtype == dtype for g in grads)


@given(shape=shapes, seed=st.integers(0, 2**16))
def test_causal_output_ignores_later_keys(shape, seed):
    B, H, T, _, D = shape
    r = np.random.default_rng(seed)
    q, k, v = _qkv(r, B, H, T, T, D)
    t = int(r.integers(0, T))
    out, _ = attention_forward(q, k, v, causal=True)
    k2, v2 = k.copy(), v.copy()
    k2[:, :, t + 1:] += 10 * r.standard_normal(k2[:, :, t + 1:].shape)
    v2[:, :, t + 1:] += 10 * r.standard_normal(v2[:, :, t + 1:].shape)
    out2, _ = attention_forward(q, k2, v2, causal=True)
    np.testing.assert_allclose(out2[:, :, :t + 1], out[:, :, :t + 1], rtol=1e-12, atol=1e-12)
    if t + 1 < T:
        assert not np.allclose(out2[:, :, t + 1:], out[:, :, t + 1:])    # later queries do see them


@given(shape=shapes, seed=st.integers(0, 2**16))
def test_permuting_keys_and_values_together_leaves_output_unchanged(shape, seed):
    B, H, T, S, D = shape
    r = np.random.default_rng(seed)
    q, k, v = _qkv(r, B, H, T, S, D)
    pad = r.random((B, S)) < 0.3
    perm = r.permutation(S)
    out, _ = attention_forward(q, k, v, key_padding_mask=pad)
    outp, _ = attention_forward(q, k[:, :, perm], v[:, :, perm], key_padding_mask=pad[:, perm])
    np.testing.assert_allclose(outp, out, rtol=1e-10, atol=1e-12)


# --- dispatch: the backward goes to the kernel that ran the forward ---

@pytest.fixture
def spy_kernel():
    """Register a spy attention kernel as the numba default; restore the registry afterwards."""
    # Import the numba kernels first: they register their own default on import, which would
    # replace the spy if the first ``use_backend("numba")`` of this process came after it.
    importlib.import_module("tinylm.backend.numba_kernels")
    slot = ("attention", "numba")
    saved = (dict(registry._KERNELS.get(slot, {})), registry._DEFAULTS.get(slot))
    calls = []
    ref = registry.get_kernel("attention", "numpy", "v0_reference")

    def fwd(q, k, v, **kw):
        calls.append("forward")
        return ref.forward(q, k, v, **kw)

    def bwd(dout, cache):
        calls.append("backward")
        return ref.backward(dout, cache)

    registry.register_kernel("attention", "numba", "test_spy", fwd, bwd, default=True)
    yield calls
    if saved[1] is None:
        registry._KERNELS.pop(slot, None)
        registry._DEFAULTS.pop(slot, None)
    else:
        registry._KERNELS[slot] = saved[0]
        registry._DEFAULTS[slot] = saved[1]


def test_dispatch_uses_backend_kernel_and_backward_follows_the_cache(rng, spy_kernel):
    q, k, v = _qkv(rng)
    ref_out, ref_cache = attention_forward(q, k, v, causal=False)
    with tinylm.use_backend("numba"):
        out, cache = attention_forward(q, k, v)
    assert spy_kernel == ["forward"] and cache.kernel.version == "test_spy"
    dout = rng.standard_normal(out.shape)
    grads = attention_backward(dout, cache)          # numpy backend active again: still the spy's backward
    assert spy_kernel == ["forward", "backward"]
    np.testing.assert_array_equal(out, ref_out)
    for g, r in zip(grads, attention_backward(dout, ref_cache)):
        np.testing.assert_array_equal(g, r)
    assert ref_cache.kernel.key == "attention/numpy/v0_reference"


# --- bad input: a clear error naming the argument ---

@pytest.mark.parametrize("change, err, match", [
    (lambda a: a.update(key_padding_mask=np.zeros((2, 5), bool)), ValueError,
     r"key_padding_mask: expected shape \(B, S\) with B=2, S=4, got shape \(2, 5\) \(S=5, not 4\)"),
    (lambda a: a.update(key_padding_mask=np.zeros((2, 4), np.float32)), TypeError,
     r"key_padding_mask: expected a bool array \(True = padding key, ignored\), got float32"),
    (lambda a: a.update(k=a["k"][..., :2]), ValueError,
     r"k: expected shape \(B, H, S, D\) with B=2, H=2, D=3, got shape \(2, 2, 4, 2\) \(D=2, not 3\)"),
    (lambda a: a.update(v=a["v"][:1]), ValueError, r"v: expected shape .* \(B=1, not 2\)"),
    (lambda a: a.update(k=a["k"][:, :1]), ValueError, r"k: expected shape .* \(H=1, not 2\)"),
    (lambda a: a.update(v=a["v"][:, :, :3]), ValueError, r"v: expected shape .* S=4.* \(S=3, not 4\)"),
    (lambda a: a.update(q=a["q"][0]), ValueError, r"q: expected shape \(B, H, T, D\), got shape \(2, 3, 3\)"),
    (lambda a: a.update(v=a["v"].astype(np.float32)), TypeError, r"v: dtype float32 differs from q's float64"),
    (lambda a: a.update(q=a["q"].astype(np.int64)), TypeError, r"q: expected a floating-point array"),
    (lambda a: a.update(causal=True, q=np.ones((2, 2, 5, 3))), ValueError, r"causal: needs T <= S .* T=5, S=4"),
    (lambda a: a.update(causal="yes"), TypeError, r"causal: expected a bool, got 'yes'"),
    (lambda a: a.update(dropout_p=1.0), ValueError, r"dropout_p: expected a probability in \[0, 1\), got 1.0"),
    (lambda a: a.update(scale=float("nan")), ValueError, r"scale: expected a finite real number"),
    (lambda a: a.update(k=[[1.0]]), TypeError, r"k: expected a numpy array, got list"),
])
def test_attention_bad_input(rng, change, err, match):
    q, k, v = _qkv(rng)
    args = {"q": q, "k": k, "v": v}
    change(args)
    with pytest.raises(err, match=match):
        attention_forward(**args)


def test_attention_probs_validates_like_forward(rng):
    q, k, _ = _qkv(rng)
    with pytest.raises(ValueError, match=r"key_padding_mask: expected shape \(B, S\)"):
        attention_probs(q, k, key_padding_mask=np.zeros((3, 4), bool))


def test_backward_checks_dout(rng):
    q, k, v = _qkv(rng)
    out, cache = attention_forward(q, k, v)
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 2, 3, 3\), got shape \(2, 2, 3, 4\)"):
        attention_backward(np.ones((2, 2, 3, 4)), cache)
    with pytest.raises(TypeError, match=r"dout: expected dtype float64 \(the forward's output\), got float32"):
        attention_backward(out.astype(np.float32), cache)
