"""Soft attention (tinylm/ops/soft_attention.py, tinylm/nn/soft_attention.py): gradient checks of
every op and module over every float input and parameter, an independent loop reference,
masking properties, and bad-input messages. Derivation: derivations/soft_attention.md."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.gradcheck import check_module, check_op
from tinylm.nn.soft_attention import AdditiveAttention, LuongAttention
from tinylm.ops.soft_attention import (additive_attention_backward, additive_attention_forward,
                                       additive_score_backward, additive_score_forward, dot_attention_backward,
                                       dot_attention_forward, dot_score_backward, dot_score_forward,
                                       general_attention_backward, general_attention_forward,
                                       general_score_backward, general_score_forward, soft_attention_backward,
                                       soft_attention_forward)

B, T, S, DQ, DK, DV, A = 2, 3, 4, 3, 5, 2, 3
# Sequence 0 has two real keys; sequence 1 is all padding (its queries must get zeros, not NaN).
MASK = np.array([[False, True, False, True], [True, True, True, True]])
PARTIAL = np.array([[False, False, False, True], [False, True, False, False]])


def _inputs(rng, kind, steps=True, dtype=np.float64):
    """Named inputs of the ``kind`` attention op (query (B,T,Dq), or (B,Dq) with steps=False)."""
    dq = DK if kind == "dot" else DQ
    x = {"query": rng.standard_normal((B, T, dq) if steps else (B, dq)),
         "keys": rng.standard_normal((B, S, DK)), "values": rng.standard_normal((B, S, DV))}
    if kind == "additive":
        x.update(W_q=rng.standard_normal((A, DQ)), W_k=rng.standard_normal((A, DK)), v=rng.standard_normal(A))
    if kind == "general":
        x["W"] = rng.standard_normal((DQ, DK))
    return {n: a.astype(dtype) for n, a in x.items()}


OPS = {"additive": (additive_attention_forward, additive_attention_backward),
       "dot": (dot_attention_forward, dot_attention_backward),
       "general": (general_attention_forward, general_attention_backward)}


# --- gradient checks ----------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [None, PARTIAL, MASK], ids=["nomask", "partial", "allpad"])
@pytest.mark.parametrize("steps", [True, False], ids=["BTD", "BD"])
@pytest.mark.parametrize("kind", list(OPS))
def test_attention_op_gradcheck(rng, kind, steps, mask):
    # The random upstream gradient covers both outputs: dcontext and dweights.
    fwd, bwd = OPS[kind]
    check_op(fwd, bwd, _inputs(rng, kind, steps), kwargs={"key_padding_mask": mask}, tol=1e-7)


@pytest.mark.parametrize("steps", [True, False], ids=["BTD", "BD"])
def test_score_ops_gradcheck(rng, steps):
    x = _inputs(rng, "additive", steps)
    check_op(additive_score_forward, additive_score_backward,
             {n: x[n] for n in ("query", "keys", "W_q", "W_k", "v")}, tol=1e-7)
    x = _inputs(rng, "general", steps)
    check_op(general_score_forward, general_score_backward, {n: x[n] for n in ("query", "keys", "W")}, tol=1e-7)
    x = _inputs(rng, "dot", steps)
    check_op(dot_score_forward, dot_score_backward, {n: x[n] for n in ("query", "keys")}, tol=1e-7)


@pytest.mark.parametrize("mask", [None, PARTIAL, MASK], ids=["nomask", "partial", "allpad"])
def test_soft_attention_op_gradcheck(rng, mask):
    inputs = {"scores": 3 * rng.standard_normal((B, T, S)), "values": rng.standard_normal((B, S, DV))}
    check_op(soft_attention_forward, soft_attention_backward, inputs, kwargs={"key_padding_mask": mask}, tol=1e-7)


def _module(kind, rng=0):
    if kind == "additive":
        return AdditiveAttention(DQ, DK, A, rng=rng)
    return LuongAttention(DK if kind == "dot" else DQ, DK, mode=kind, rng=rng)


@pytest.mark.parametrize("mask", [None, PARTIAL, MASK], ids=["nomask", "partial", "allpad"])
@pytest.mark.parametrize("steps", [True, False], ids=["BTD", "BD"])
@pytest.mark.parametrize("kind", list(OPS))
def test_module_gradcheck(rng, kind, steps, mask):
    x = _inputs(rng, kind, steps)
    m = _module(kind).double()
    report = check_module(m, x["query"], x["keys"], x["values"], forward_kwargs={"key_padding_mask": mask}, tol=1e-6)
    names = {"additive": {"query_proj.weight", "key_proj.weight", "v.weight"}, "dot": set(), "general": {"weight"}}
    assert set(report.errors) == {"input0", "input1", "input2"} | names[kind]


# --- forward against an independent loop over (b, t, s) -------------------------------------------

def _loop_reference(kind, x, mask):
    q, k, V = x["query"], x["keys"], x["values"]
    ctx, wts = np.zeros((B, T, DV)), np.zeros((B, T, S))
    for b in range(B):
        real = [s for s in range(S) if mask is None or not mask[b, s]]
        for t in range(T):
            e = {}
            for s in real:
                if kind == "additive":
                    e[s] = float(x["v"] @ np.tanh(x["W_q"] @ q[b, t] + x["W_k"] @ k[b, s]))
                elif kind == "dot":
                    e[s] = float(q[b, t] @ k[b, s])
                else:
                    e[s] = float(q[b, t] @ x["W"] @ k[b, s])
            z = sum(np.exp(val) for val in e.values())
            for s in real:
                wts[b, t, s] = np.exp(e[s]) / z
                ctx[b, t] += wts[b, t, s] * V[b, s]
    return ctx, wts


@pytest.mark.parametrize("mask", [None, PARTIAL, MASK], ids=["nomask", "partial", "allpad"])
@pytest.mark.parametrize("kind", list(OPS))
def test_forward_matches_loop_reference(rng, kind, mask):
    x = _inputs(rng, kind)
    (context, weights), _ = OPS[kind][0](**x, key_padding_mask=mask)
    ref_context, ref_weights = _loop_reference(kind, x, mask)
    np.testing.assert_allclose(weights, ref_weights, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(context, ref_context, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", list(OPS))
def test_all_steps_at_once_equals_step_by_step(rng, kind):
    # Teacher forcing: a (B, T, Dq) query gives what T separate (B, Dq) decoder steps give.
    x = _inputs(rng, kind)
    fwd, bwd = OPS[kind]
    (context, weights), cache = fwd(**x, key_padding_mask=PARTIAL)
    dcontext = rng.standard_normal(context.shape)
    grads = bwd(dcontext, cache)
    summed = None
    for t in range(T):
        (c_t, w_t), cache_t = fwd(**dict(x, query=x["query"][:, t]), key_padding_mask=PARTIAL)
        np.testing.assert_allclose(c_t, context[:, t], rtol=1e-12)
        np.testing.assert_allclose(w_t, weights[:, t], rtol=1e-12)
        g_t = bwd(dcontext[:, t], cache_t)
        np.testing.assert_allclose(g_t[0], grads[0][:, t], rtol=1e-10, atol=1e-14)
        summed = list(g_t[1:]) if summed is None else [a + b for a, b in zip(summed, g_t[1:])]
    for got, want in zip(grads[1:], summed):      # keys, values and parameters collect all T steps
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_dcontext_alone_equals_pair_with_no_dweights(rng):
    x = _inputs(rng, "general")
    (context, _), cache = general_attention_forward(**x, key_padding_mask=PARTIAL)
    dc = rng.standard_normal(context.shape)
    for a, b in zip(general_attention_backward(dc, cache), general_attention_backward((dc, None), cache)):
        np.testing.assert_array_equal(a, b)
    dq, dk, dv, dW = general_attention_backward((None, None), cache)
    assert not (dq.any() or dk.any() or dv.any() or dW.any())


# --- masking and other properties ----------------------------------------------------------------

@given(b=st.integers(1, 3), t=st.integers(1, 3), s=st.integers(1, 5), d=st.integers(1, 4),
       kind=st.sampled_from(list(OPS)), steps=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_weights_shapes_and_masking(b, t, s, d, kind, steps, dtype, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((b, s)) < 0.4
    q = rng.standard_normal((b, t, d) if steps else (b, d)).astype(dtype)
    k, V = rng.standard_normal((b, s, d)).astype(dtype), rng.standard_normal((b, s, 2)).astype(dtype)
    params = {"additive": {"W_q": np.ones((3, d), dtype), "W_k": np.ones((3, d), dtype),
                           "v": np.arange(3, dtype=dtype)},
              "dot": {}, "general": {"W": np.eye(d, dtype=dtype)}}[kind]
    fwd, bwd = OPS[kind]
    (context, weights), cache = fwd(q, k, V, **params, key_padding_mask=mask)
    lead = (b, t) if steps else (b,)
    assert context.shape == lead + (2,) and weights.shape == lead + (s,)
    assert context.dtype == dtype and weights.dtype == dtype
    w3 = weights if steps else weights[:, None]
    pad = np.broadcast_to(mask[:, None, :], w3.shape)
    assert np.all(w3[pad] == 0)                                    # padding: exactly zero
    has_key = ~mask.all(axis=1)
    np.testing.assert_allclose(w3.sum(-1)[has_key], 1, rtol=1e-5)   # real keys: a distribution
    assert np.all(w3[~has_key] == 0)                               # no real key: all zero, no NaN
    grads = bwd((np.ones_like(context), np.ones_like(weights)), cache)
    assert all(g.dtype == dtype and np.isfinite(g).all() for g in grads)
    dkeys, dvalues = grads[1], grads[2]
    assert np.all(dkeys[mask] == 0) and np.all(dvalues[mask] == 0)   # padding receives no gradient


def test_padding_keys_and_values_do_not_matter(rng):
    x = _inputs(rng, "additive")
    (c1, w1), _ = additive_attention_forward(**x, key_padding_mask=PARTIAL)
    x["keys"][PARTIAL] = 1e3 * rng.standard_normal((PARTIAL.sum(), DK))
    x["values"][PARTIAL] = 1e6
    (c2, w2), _ = additive_attention_forward(**x, key_padding_mask=PARTIAL)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(c1, c2)


def test_large_scores_stay_finite(rng):
    x = _inputs(rng, "dot")
    x["query"] *= 1e3                                                  # scores ~ 1e6: exp would overflow unshifted
    (context, weights), cache = dot_attention_forward(**x, key_padding_mask=PARTIAL)
    assert np.isfinite(context).all() and np.isfinite(weights).all()
    assert all(np.isfinite(g).all() for g in dot_attention_backward(np.ones_like(context), cache))


# --- modules ------------------------------------------------------------------------------------

def test_module_parameters_follow_pytorch_layout():
    m = AdditiveAttention(DQ, DK, A)
    assert {n: p.shape for n, p in m.named_parameters()} == {
        "query_proj.weight": (A, DQ), "key_proj.weight": (A, DK), "v.weight": (1, A)}
    assert all(p.dtype == np.float32 for p in m.parameters())
    assert [n for n, _ in LuongAttention(DQ, DK, "general").named_parameters()] == ["weight"]
    assert LuongAttention(DQ, DK, "general").weight.shape == (DQ, DK)
    assert list(LuongAttention(DK, DK).parameters()) == []
    bound = 1 / np.sqrt(DK)                                            # nn.Linear(key_dim, query_dim) init
    w = LuongAttention(DQ, DK, "general", rng=1).weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > bound / 2


def test_module_init_is_seeded_and_weights_differ():
    a, b = AdditiveAttention(4, 4, 4, rng=3), AdditiveAttention(4, 4, 4, rng=3)
    for (n, p), (_, p2) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, p2.data, err_msg=n)
    assert not np.array_equal(a.query_proj.weight.data, a.key_proj.weight.data)   # one stream, not one seed each


@pytest.mark.parametrize("kind", list(OPS))
def test_module_equals_op(rng, kind):
    m = _module(kind, rng=5).double()
    x = _inputs(rng, kind)
    params = {"additive": lambda: {"W_q": m.query_proj.weight.data, "W_k": m.key_proj.weight.data,
                                   "v": m.v.weight.data[0]},
              "dot": lambda: {}, "general": lambda: {"W": m.weight.data}}[kind]()
    context, weights = m(x["query"], x["keys"], x["values"], key_padding_mask=PARTIAL)
    (c, w), _ = OPS[kind][0](x["query"], x["keys"], x["values"], **params, key_padding_mask=PARTIAL)
    np.testing.assert_array_equal(context, c)
    np.testing.assert_array_equal(weights, w)


def test_module_backward_accumulates_and_frozen_params_pass_gradient(rng):
    m = AdditiveAttention(DQ, DK, A).double()
    x = _inputs(rng, "additive")
    args = (x["query"], x["keys"], x["values"])
    dc = rng.standard_normal((B, T, DV))
    m(*args)
    d1 = m.backward(dc)
    g1 = m.key_proj.weight.grad.copy()
    m(*args)
    m.backward(dc)
    np.testing.assert_allclose(m.key_proj.weight.grad, 2 * g1)
    m.zero_grad()
    m.requires_grad_(False)
    m(*args)
    d2 = m.backward(dc)
    assert all(p.grad is None for p in m.parameters())
    for a, b in zip(d1, d2):
        np.testing.assert_array_equal(a, b)


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before forward"):
        AdditiveAttention(2, 2, 2).backward(np.zeros((1, 2), np.float32))


# --- bad input ----------------------------------------------------------------------------------

def _bad_cases():
    r = np.random.default_rng(0)
    q, k, V = r.standard_normal((2, 3)), r.standard_normal((2, 4, 5)), r.standard_normal((2, 4, 6))
    Wq, Wk, v, W = r.standard_normal((7, 3)), r.standard_normal((7, 5)), r.standard_normal(7), r.standard_normal((3, 5))
    mask = np.zeros((2, 4), bool)
    add = additive_attention_forward
    gen = general_attention_forward
    return [
        (lambda: add(q[None, None], k, V, Wq, Wk, v), ValueError,
         r"query: expected shape \(B, Dq\) \(one step\) or \(B, T, Dq\) \(T steps\), got shape \(1, 1, 2, 3\)"),
        (lambda: add(q, k[:1], V, Wq, Wk, v), ValueError, r"keys: expected shape \(B, S, Dk\) with B=2"),
        (lambda: add(q, k, V[:, :3], Wq, Wk, v), ValueError, r"values: expected shape \(B, S, Dv\) with B=2, S=4"),
        (lambda: add(q, k, V, Wq, Wk[:, :4], v), ValueError, r"keys: expected shape \(B, S, Dk\) with .*Dk=4"),
        (lambda: add(q, k, V, Wq, Wk, v[:6]), ValueError, r"v: expected shape \(A,\) with A=7"),
        (lambda: add(q, k.astype(np.float32), V, Wq, Wk, v), TypeError,
         r"keys: dtype float32 does not match query \(float64\); cast"),
        (lambda: add(q, k, V.astype(np.float32), Wq, Wk, v), TypeError,
         r"values: dtype float32 does not match query \(float64\)"),
        (lambda: add(q, k.astype(np.int64), V, Wq, Wk, v), TypeError, r"keys: expected a floating-point array"),
        (lambda: add(q, k, V, Wq, Wk, v, key_padding_mask=mask.astype(np.int8)), TypeError,
         r"key_padding_mask: expected a bool array \(True = padding key, ignored\), got int8"),
        (lambda: add(q, k, V, Wq, Wk, v, key_padding_mask=mask[:, :3]), ValueError,
         r"key_padding_mask: expected shape \(B, S\) with B=2, S=4"),
        (lambda: add(q, k, V, Wq, Wk, v, key_padding_mask=mask.tolist()), TypeError,
         r"key_padding_mask: expected a numpy array, got list"),
        (lambda: dot_attention_forward(q, k, V), ValueError,
         r"query: dot attention needs the keys' width D=5, got shape \(2, 3\); use general attention"),
        (lambda: gen(q, k, V, W.T), ValueError, r"query: expected shape \(B, Dq\) with Dq=5, got shape \(2, 3\)"),
        (lambda: gen(q, k[:, :0], V[:, :0], W), ValueError, r"attention needs at least one key \(S >= 1\), got S=0"),
    ]


@pytest.mark.parametrize("i", range(len(_bad_cases())))
def test_bad_input(i):
    call, error, match = _bad_cases()[i]
    with pytest.raises(error, match=match):
        call()


def test_bad_upstream_gradient(rng):
    x = _inputs(rng, "dot")
    (context, weights), cache = dot_attention_forward(**x)
    with pytest.raises(ValueError, match=r"dcontext: expected shape \(2, 3, 2\)"):
        dot_attention_backward(context[:, :1], cache)
    with pytest.raises(ValueError, match=r"dweights: expected shape \(2, 3, 4\)"):
        dot_attention_backward((context, weights[..., :2]), cache)
    with pytest.raises(ValueError, match=r"dout: expected dcontext or a pair \(dcontext, dweights\), got a tuple of 3"):
        dot_attention_backward((context, weights, weights), cache)
    with pytest.raises(TypeError, match=r"dcontext: expected dtype float64 \(the forward's output\), got float32"):
        dot_attention_backward(context.astype(np.float32), cache)


def test_bad_module_arguments():
    with pytest.raises(ValueError, match=r"key_dim: mode='dot' needs key_dim == query_dim=3, got 5"):
        LuongAttention(3, 5)
    with pytest.raises(ValueError, match=r"mode: expected one of \('dot', 'general'\), got 'concat'"):
        LuongAttention(3, 3, mode="concat")
    with pytest.raises(ValueError, match=r"attn_dim: expected a positive int, got 0"):
        AdditiveAttention(3, 3, 0)
