"""MultiheadAttention (tinylm/nn/attention.py) and the positional encodings (tinylm/nn/positional.py).
PyTorch cross-checks: tests/test_torch_attention.py."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinylm.gradcheck import check_module, fixed_random_streams
from tinylm.nn.attention import MultiheadAttention
from tinylm.nn.module import Module
from tinylm.nn.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding


class _AttnOutput(Module):
    """attn_output only (check_module differentiates one output). ``self_attention`` feeds one input
    as query, key and value and sums the three gradients, as a caller of MHA.backward must."""

    def __init__(self, mha, self_attention=False, **kwargs):
        super().__init__()
        self.mha, self.self_attention, self.kwargs = mha, self_attention, kwargs

    def forward(self, *xs):
        q, k, v = xs * 3 if self.self_attention else xs
        return self.mha(q, k, v, need_weights=False, **self.kwargs)[0]

    def backward(self, dout):
        dq, dk, dv = self.mha.backward(dout)
        return dq + dk + dv if self.self_attention else (dq, dk, dv)


def _mha(E, H, gen, **kwargs):
    """A float64 MultiheadAttention whose biases (zero at init, as PyTorch's) are random, so that a
    backward that mishandles them (or lets them leak into dx) cannot pass as the zero gradient."""
    m = MultiheadAttention(E, H, **kwargs).double()
    if m.in_proj_bias is not None:
        m.in_proj_bias.data = gen.standard_normal(3 * E)
        m.out_proj.bias.data = gen.standard_normal(E)
    return m


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _mha_naive(m, query, key, value, pad=None, causal=False):
    """attn_output, head by head, from the module's parameters (inputs batch-first)."""
    E, H = m.embed_dim, m.num_heads
    D = E // H
    W, b = m.in_proj_weight.data, m.in_proj_bias.data
    Q, K, V = query @ W[:E].T + b[:E], key @ W[E:2 * E].T + b[E:2 * E], value @ W[2 * E:].T + b[2 * E:]
    T, S = query.shape[1], key.shape[1]
    heads = []
    for h in range(H):
        cols = slice(h * D, (h + 1) * D)
        s = Q[..., cols] @ K[..., cols].transpose(0, 2, 1) / math.sqrt(D)       # (B,T,S)
        if pad is not None:
            s = np.where(pad[:, None, :], -np.inf, s)
        if causal:
            s = np.where(np.arange(S) > np.arange(T)[:, None] + S - T, -np.inf, s)
        heads.append(_softmax(s) @ V[..., cols])
    return np.concatenate(heads, -1) @ m.out_proj.weight.data.T + m.out_proj.bias.data


# --- MultiheadAttention: gradient checks ---

def _inputs(rng, B=2, T=3, S=4, E=4, batch_first=False):
    shape = (lambda L: (B, L, E)) if batch_first else (lambda L: (L, B, E))
    return rng.standard_normal(shape(T)), rng.standard_normal(shape(S)), rng.standard_normal(shape(S))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"is_causal": True}], ids=["full", "causal"])
def test_mha_self_attention_gradcheck(rng, batch_first, kwargs):
    m = _mha(4, 2, rng, batch_first=batch_first, rng=1)
    x, _, _ = _inputs(rng, T=3, batch_first=batch_first)
    check_module(_AttnOutput(m, self_attention=True, **kwargs), x, tol=1e-6)


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_cross_attention_gradcheck_with_padding(rng, batch_first):
    m = _mha(4, 2, rng, batch_first=batch_first, rng=2)
    pad = np.array([[False, True, False, False], [True, True, True, True]])   # sequence 1: all padding
    check_module(_AttnOutput(m, key_padding_mask=pad), *_inputs(rng, T=3, S=4, batch_first=batch_first), tol=1e-5)


def test_mha_causal_padding_no_bias_gradcheck(rng):
    m = _mha(6, 3, rng, bias=False, batch_first=True, rng=3)
    pad = np.array([[False, False, True, False, False], [True, False, False, False, False]])
    check_module(_AttnOutput(m, key_padding_mask=pad, is_causal=True), *_inputs(rng, T=2, S=5, E=6, batch_first=True),
                 tol=1e-6)


# (time first, padded and causal: tests/test_dropout_gradchecks.py)
@pytest.mark.parametrize("batch_first, kwargs", [
    (True, {}), (False, {}),
    (True, {"key_padding_mask": np.array([[False, True, False, False], [False, False, True, True]]),
            "is_causal": True}),
], ids=["batch_first", "time_first", "batch_first-pad-causal"])
def test_mha_dropout_gradcheck(rng, batch_first, kwargs):
    """Training mode, attention-probability dropout with the masks fixed by dropout_seed; with the
    padding and causal masks, dropout acts on the masked probabilities (zeros stay zeros)."""
    m = _mha(4, 2, rng, dropout=0.3, batch_first=batch_first, rng=4)
    wrapped, xs = _AttnOutput(m, **kwargs), _inputs(rng, batch_first=batch_first)
    with fixed_random_streams(wrapped, 9) as reset:
        reset()
        out = wrapped(*xs)
    assert not np.allclose(out, wrapped.eval()(*xs))          # dropout did act in training mode
    report = check_module(wrapped.train(), *xs, tol=1e-6, dropout_seed=9)
    assert set(report.errors) == {"input0", "input1", "input2", "mha.in_proj_weight", "mha.in_proj_bias",
                                  "mha.out_proj.weight", "mha.out_proj.bias"}


# --- MultiheadAttention: behaviour ---

@pytest.mark.parametrize("T, S, causal", [(3, 5, False), (4, 4, True), (2, 5, True)])
def test_mha_matches_head_by_head_definition(rng, T, S, causal):
    m = MultiheadAttention(6, 3, rng=5).double()
    m.in_proj_bias.data = rng.standard_normal(18)          # non-zero biases, so they are checked too
    m.out_proj.bias.data = rng.standard_normal(6)
    q, k, v = _inputs(rng, T=T, S=S, E=6, batch_first=True)
    pad = np.array([[False] * S, [False] * (S - 1) + [True]])       # no query left without keys
    y, _ = m(q.swapaxes(0, 1), k.swapaxes(0, 1), v.swapaxes(0, 1), key_padding_mask=pad, is_causal=causal)
    np.testing.assert_allclose(y.swapaxes(0, 1), _mha_naive(m, q, k, v, pad, causal), rtol=1e-12, atol=1e-12)


def test_mha_parameters_follow_pytorch():
    m = MultiheadAttention(8, 2)
    assert [(n, p.shape) for n, p in m.named_parameters()] == [
        ("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)), ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]
    assert m.in_proj_weight.dtype == np.float32
    assert not m.in_proj_bias.data.any() and not m.out_proj.bias.data.any()
    bound = math.sqrt(6 / (8 + 24))                          # xavier_uniform_ on (3E, E)
    assert np.abs(m.in_proj_weight.data).max() <= bound and np.abs(m.in_proj_weight.data).max() > 0.8 * bound
    assert np.abs(m.out_proj.weight.data).max() <= 1 / math.sqrt(8)
    assert [n for n, _ in MultiheadAttention(8, 2, bias=False).named_parameters()] == [
        "in_proj_weight", "out_proj.weight"]


def test_mha_weights_are_the_ones_used(rng):
    m = MultiheadAttention(4, 2, dropout=0.5, batch_first=True, rng=6).double()
    q, k, v = _inputs(rng, batch_first=True)
    y, w = m(q, k, v, average_attn_weights=False)             # training mode: dropout is on
    assert w.shape == (2, 2, 3, 4)
    V = (v @ m.in_proj_weight.data[8:].T + m.in_proj_bias.data[8:]).reshape(2, 4, 2, 2).transpose(0, 2, 1, 3)
    merged = (w @ V).transpose(0, 2, 1, 3).reshape(2, 3, 4)
    np.testing.assert_allclose(y, merged @ m.out_proj.weight.data.T + m.out_proj.bias.data, rtol=1e-12)
    m.eval()
    y1, wa = m(q, k, v)                                       # eval: no dropout, deterministic
    y2, _ = m(q, k, v)
    np.testing.assert_array_equal(y1, y2)
    assert wa.shape == (2, 3, 4)
    np.testing.assert_allclose(wa.sum(-1), 1, rtol=1e-12)
    assert m(q, k, v, need_weights=False)[1] is None


def test_mha_backward_accumulates_and_frozen_params_pass_gradient(rng):
    m = MultiheadAttention(4, 2, rng=7).double()
    q, k, v = _inputs(rng)
    dy = rng.standard_normal((3, 2, 4))
    m(q, k, v)
    g1 = m.backward(dy)
    w1 = m.in_proj_weight.grad.copy()
    m(q, k, v)
    g2 = m.backward(dy)
    np.testing.assert_allclose(m.in_proj_weight.grad, 2 * w1)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b)
    m.zero_grad()
    m.requires_grad_(False)
    m(q, k, v)
    g3 = m.backward(dy)
    assert all(p.grad is None for p in m.parameters())
    for a, b in zip(g1, g3):
        np.testing.assert_allclose(a, b)


@given(B=st.integers(1, 3), T=st.integers(1, 4), S=st.integers(1, 4), heads=st.sampled_from([1, 2, 4]),
       batch_first=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_mha_shapes_and_dtypes(B, T, S, heads, batch_first, dtype):
    m = MultiheadAttention(8, heads, batch_first=batch_first, rng=0).to(dtype)
    r = np.random.default_rng(0)
    q, k, v = (x.astype(dtype) for x in _inputs(r, B, T, S, 8, batch_first))
    y, w = m(q, k, v, average_attn_weights=False)
    assert y.shape == q.shape and y.dtype == dtype and w.shape == (B, heads, T, S) and w.dtype == dtype
    grads = m.backward(np.ones_like(y))
    assert [g.shape for g in grads] == [q.shape, k.shape, v.shape] and all(g.dtype == dtype for g in grads)
    assert m.in_proj_weight.grad.dtype == dtype


@pytest.mark.parametrize("call, err, match", [
    (lambda m, q, k, v: m(q[..., :3], k, v), ValueError, r"query: expected shape \(T, B, E\) with E=4, got shape"),
    (lambda m, q, k, v: m(q, k, v[:3]), ValueError, r"value: expected shape \(S, B, E\) .* \(S=3, not 4\)"),
    (lambda m, q, k, v: m(q, k[:, :1], v), ValueError, r"key: expected shape \(S, B, E\) .* \(B=1, not 2\)"),
    (lambda m, q, k, v: m(q, k, v, key_padding_mask=np.zeros((2, 3), bool)), ValueError,
     r"key_padding_mask: expected shape \(B, S\) with B=2, S=4, got shape \(2, 3\)"),
    (lambda m, q, k, v: m(q, k, v, key_padding_mask=np.zeros((2, 4))), TypeError,
     r"key_padding_mask: expected a bool array"),
    (lambda m, q, k, v: m(q.astype(np.float32), k, v), TypeError, r"query: dtype float32 differs from the parameters'"),
    (lambda m, q, k, v: m(q, k, v, is_causal=True), ValueError, r"causal: needs T <= S"),
])
def test_mha_bad_input(rng, call, err, match):
    m = MultiheadAttention(4, 2).double()
    q, k, v = _inputs(rng, T=5, S=4)
    if "causal" not in match:
        q = q[:3]
    with pytest.raises(err, match=match):
        call(m, q, k, v)


def test_mha_bad_construction_and_backward(rng):
    with pytest.raises(ValueError, match=r"embed_dim: must be divisible by num_heads=3 .*got embed_dim=10"):
        MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match=r"dropout: expected a probability in \[0, 1\), got 1.5"):
        MultiheadAttention(4, 2, dropout=1.5)
    m = MultiheadAttention(4, 2).double()
    with pytest.raises(RuntimeError, match="before forward"):
        m.backward(np.zeros((3, 2, 4)))
    q, k, v = _inputs(rng)
    m(q, k, v)
    with pytest.raises(ValueError, match=r"dout: expected shape \(3, 2, 4\), got shape \(2, 3, 4\)"):
        m.backward(np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match=r"dout: expected dtype float64 \(the forward's output\), got float32"):
        m.backward(np.zeros((3, 2, 4), np.float32))
    with pytest.raises(TypeError, match=r"dout: expected a floating-point array .*got int64"):
        m.backward(np.zeros((3, 2, 4), int))
    with pytest.raises(TypeError, match=r"batch_first: expected a bool, got 'yes'"):
        MultiheadAttention(4, 2, batch_first="yes")
    with pytest.raises(TypeError, match=r"rng: expected None, a non-negative int .*got 'x'"):
        MultiheadAttention(4, 2, rng="x")
    for flag in ("is_causal", "need_weights", "average_attn_weights"):
        with pytest.raises(TypeError, match=rf"{flag}: expected a bool, got 'no'"):
            m(q, k, v, **{flag: "no"})


# --- positional encodings ---

def test_sinusoidal_table_values():
    pe = SinusoidalPositionalEncoding(5, max_len=7).pe
    for pos in range(7):
        for c in range(5):
            angle = pos / 10000 ** (2 * (c // 2) / 5)
            assert pe[pos, c] == pytest.approx(math.sin(angle) if c % 2 == 0 else math.cos(angle), abs=1e-12)


def test_sinusoidal_adds_table_and_keeps_dtype(rng):
    m = SinusoidalPositionalEncoding(6, max_len=10)
    x = rng.standard_normal((2, 4, 6)).astype(np.float32)
    y = m(x)
    assert y.dtype == np.float32 and m.num_parameters() == 0
    np.testing.assert_allclose(y - x, np.broadcast_to(m.pe[:4], (2, 4, 6)), atol=1e-6)
    np.testing.assert_allclose(m(x[:, 2:], offset=2), y[:, 2:])
    m(x)
    dout = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(m.backward(dout), dout)


def test_positional_gradchecks(rng):
    x = rng.standard_normal((2, 3, 4))
    check_module(SinusoidalPositionalEncoding(4, max_len=8), x, tol=1e-7)
    m = LearnedPositionalEmbedding(8, 4, rng=0).double()
    check_module(m, x, forward_kwargs={"offset": 2}, tol=1e-7)
    assert not m.weight.grad[:2].any() and not m.weight.grad[5:].any()


def test_learned_matches_definition(rng):
    m = LearnedPositionalEmbedding(6, 3, rng=1)
    assert [(n, p.shape) for n, p in m.named_parameters()] == [("weight", (6, 3))]
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    y = m(x, offset=1)
    np.testing.assert_allclose(y, x + m.weight.data[1:5][None], rtol=1e-6)
    dout = rng.standard_normal((2, 4, 3)).astype(np.float32)
    dx = m.backward(dout)
    np.testing.assert_array_equal(dx, dout)
    np.testing.assert_allclose(m.weight.grad[1:5], dout.sum(0), rtol=1e-6)



# property tests (hypothesis): random (B, T, C, offset) and table length
_positions = dict(B=st.integers(1, 3), T=st.integers(1, 6), C=st.integers(1, 9), offset=st.integers(0, 20),
                  extra=st.integers(0, 4), seed=st.integers(0, 2 ** 16))


@settings(max_examples=40, deadline=None)
@given(**_positions)
def test_property_sinusoidal_matches_closed_form(B, T, C, offset, extra, seed):
    """y[b, t, c] = x[b, t, c] + sin(p w_c) for even c, cos(p w_c) for odd c, with p = offset + t
    and w_c = 10000^(-2 floor(c/2) / C), computed here one entry at a time with math."""
    m = SinusoidalPositionalEncoding(C, max_len=offset + T + extra)
    x = np.random.default_rng(seed).standard_normal((B, T, C))
    want = np.empty((T, C))
    for t in range(T):
        for c in range(C):
            angle = (offset + t) / 10000 ** (2 * (c // 2) / C)
            want[t, c] = math.sin(angle) if c % 2 == 0 else math.cos(angle)
    y = m(x, offset=offset)
    assert y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_allclose(y - x, np.broadcast_to(want, (B, T, C)), rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["sinusoidal", "learned"]), **_positions)
def test_property_offset_equals_slicing_a_longer_sequence(kind, B, T, C, offset, extra, seed):
    """Encoding x at offset o gives positions o..o+T-1 of the encoding of a longer sequence in
    which x starts at position o (what KV-cache decoding relies on)."""
    rng = np.random.default_rng(seed)
    L = offset + T + extra
    m = SinusoidalPositionalEncoding(C, max_len=L) if kind == "sinusoidal" else \
        LearnedPositionalEmbedding(L, C, rng=seed).double()
    longer = rng.standard_normal((B, L, C))
    np.testing.assert_array_equal(m(longer[:, offset:offset + T], offset=offset), m(longer)[:, offset:offset + T])


@settings(max_examples=40, deadline=None)
@given(**_positions)
def test_property_learned_backward_scatters_batch_sum(B, T, C, offset, extra, seed):
    """dx = dy, and weight.grad row offset+t is sum_b dy[b, t], every other row zero (built here
    by a loop over (b, t))."""
    rng = np.random.default_rng(seed)
    L = offset + T + extra
    m = LearnedPositionalEmbedding(L, C, rng=seed).double()
    x, dy = rng.standard_normal((B, T, C)), rng.standard_normal((B, T, C))
    m(x, offset=offset)
    np.testing.assert_array_equal(m.backward(dy), dy)
    want = np.zeros((L, C))
    for b in range(B):
        for t in range(T):
            want[offset + t] += dy[b, t]
    assert m.weight.grad.shape == (L, C) and m.weight.grad.dtype == np.float64
    np.testing.assert_allclose(m.weight.grad, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", [lambda: SinusoidalPositionalEncoding(4, max_len=5),
                                  lambda: LearnedPositionalEmbedding(5, 4)], ids=["sinusoidal", "learned"])
def test_positional_bad_input(make):
    m = make()
    x = np.zeros((1, 6, 4), np.float32)
    with pytest.raises(ValueError, match=r"x: positions 0..5 \(offset 0 \+ sequence length 6\) exceed max_len=5"):
        m(x)
    with pytest.raises(ValueError, match=r"exceed max_len=5"):
        m(x[:, :3], offset=3)
    with pytest.raises(ValueError, match=r"offset: expected a non-negative int, got -1"):
        m(x[:, :3], offset=-1)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, T, C\) with C=4, got shape \(1, 6, 3\)"):
        m(x[..., :3])
    with pytest.raises(ValueError, match=r"x: expected shape \(B, T, C\) with C=4, got shape \(6, 4\)"):
        m(x[0])
