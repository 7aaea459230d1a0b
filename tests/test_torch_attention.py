"""Cross-checks against PyTorch (skipped without torch): tinylm's attention op vs
``torch.nn.functional.scaled_dot_product_attention`` and ``MultiheadAttention`` vs
``torch.nn.MultiheadAttention`` loaded with the same state dict; outputs, weights and every
gradient, float64, to 1e-10. Fully masked query rows are left out: PyTorch returns NaN for them,
tinylm zeros (tests/test_ops_attention.py covers them).

Run: PYTHONPATH=/work/main /work/torchenv/bin/python -m pytest tests/test_torch_attention.py
"""
import numpy as np
import pytest

from tinylm.nn.attention import MultiheadAttention
from tinylm.ops.attention import attention_backward, attention_forward

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.torch

TOL = dict(rtol=1e-10, atol=1e-10)


def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _allowed(T, S, causal, pad):
    """PyTorch's boolean attn_mask (True = takes part), (B or 1, 1, T, S), built from the definition."""
    allowed = np.ones((1, 1, T, S), bool)
    if causal:
        allowed = allowed & (np.arange(S) <= np.arange(T)[:, None] + S - T)   # end-aligned
    if pad is not None:
        allowed = allowed & ~pad[:, None, None, :]
    return allowed


@pytest.mark.parametrize("T, S, causal, padded, scale", [
    (5, 7, False, False, None), (6, 6, True, False, None), (3, 7, True, False, None),
    (4, 6, False, True, None), (3, 6, True, True, 0.3), (1, 5, True, True, None),
])
def test_attention_matches_sdpa(rng, T, S, causal, padded, scale):
    B, H, D = 2, 3, 8
    q, k, v = rng.standard_normal((B, H, T, D)), rng.standard_normal((B, H, S, D)), rng.standard_normal((B, H, S, D))
    pad = None
    if padded:
        pad = rng.random((B, S)) < 0.3
        pad[:, -1] = False                           # the last key is visible to every query: no empty rows
    dout = rng.standard_normal((B, H, T, D))
    out, cache = attention_forward(q, k, v, causal=causal, key_padding_mask=pad, scale=scale)
    grads = attention_backward(dout, cache)

    tq, tk, tv = _t(q, True), _t(k, True), _t(v, True)
    if causal and T == S and pad is None:
        tout = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True, scale=scale)
    elif causal and pad is None:
        from torch.nn.attention.bias import causal_lower_right   # PyTorch's name for end-aligned causal
        tout = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=causal_lower_right(T, S), scale=scale)
    else:
        tout = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.from_numpy(_allowed(T, S, causal, pad)),
                                              scale=scale)
    (tout * _t(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), **TOL)
    for name, g, tg in zip("qkv", grads, (tq.grad, tk.grad, tv.grad)):
        np.testing.assert_allclose(g, tg.numpy(), **TOL, err_msg=f"d{name}")


def _twin(E, H, bias, batch_first, rng):
    """A tinylm MHA with random (non-zero) parameters and a PyTorch one loaded from its state dict."""
    m = MultiheadAttention(E, H, bias=bias, batch_first=batch_first, rng=0).double()
    for p in m.parameters():
        p.data = rng.standard_normal(p.shape) * 0.5
    tm = torch.nn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first, dtype=torch.float64)
    tm.load_state_dict({n: torch.from_numpy(a.copy()) for n, a in m.state_dict().items()})
    return m, tm


@pytest.mark.parametrize("mode, batch_first, bias, causal, padded, average", [
    ("self", False, True, False, False, True),
    ("self", True, True, True, True, False),
    ("self", False, False, True, False, True),
    ("cross", False, True, False, True, True),
    ("cross", True, True, False, False, False),
    ("cross", True, False, True, True, True),
])
def test_mha_matches_torch(rng, mode, batch_first, bias, causal, padded, average):
    B, T, E, H = 2, 4, 6, 3
    S = T if mode == "self" else 5
    m, tm = _twin(E, H, bias, batch_first, rng)
    shape = (lambda L: (B, L, E)) if batch_first else (lambda L: (L, B, E))
    q = rng.standard_normal(shape(T))
    k, v = (q, q) if mode == "self" else (rng.standard_normal(shape(S)), rng.standard_normal(shape(S)))
    pad = None
    if padded:
        pad = rng.random((B, S)) < 0.3
        pad[:, -1] = False
    dout = rng.standard_normal(shape(T))

    y, w = m(q, k, v, key_padding_mask=pad, is_causal=causal, average_attn_weights=average)
    dq, dk, dv = m.backward(dout)

    tq = _t(q, True)
    tk, tv = (tq, tq) if mode == "self" else (_t(k, True), _t(v, True))
    # PyTorch's bool attn_mask marks the pairs NOT allowed to attend; is_causal is only a hint there.
    attn_mask = torch.from_numpy(~_allowed(T, S, True, None)[0, 0]) if causal else None
    ty, tw = tm(tq, tk, tv, key_padding_mask=None if pad is None else torch.from_numpy(pad),
                attn_mask=attn_mask, average_attn_weights=average)
    (ty * _t(dout)).sum().backward()

    np.testing.assert_allclose(y, ty.detach().numpy(), **TOL)
    np.testing.assert_allclose(w, tw.detach().numpy(), **TOL)
    if mode == "self":
        np.testing.assert_allclose(dq + dk + dv, tq.grad.numpy(), **TOL)
    else:
        for name, g, tg in [("dquery", dq, tq.grad), ("dkey", dk, tk.grad), ("dvalue", dv, tv.grad)]:
            np.testing.assert_allclose(g, tg.numpy(), **TOL, err_msg=name)
    tparams = dict(tm.named_parameters())
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), **TOL, err_msg=name)


def test_mha_default_init_matches_torch_statistics():
    """Same init recipe as PyTorch: zero biases, Xavier bound on in_proj, Linear bound on out_proj."""
    E = 64
    m, tm = MultiheadAttention(E, 4, rng=0), torch.nn.MultiheadAttention(E, 4)
    for name, t in tm.named_parameters():
        ours = dict(m.named_parameters())[name].data
        assert ours.shape == tuple(t.shape)
        t = t.detach().numpy()
        assert abs(np.abs(ours).max() - np.abs(t).max()) <= 0.05 * max(np.abs(t).max(), 1e-12) + 1e-12, name
        assert abs(ours.std() - t.std()) <= 0.1 * max(t.std(), 1e-12) + 1e-12, name
