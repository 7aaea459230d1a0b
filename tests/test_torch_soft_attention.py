"""PyTorch cross-check of the soft attention ops (tinylm/ops/soft_attention.py): the same
computation written with torch autograd must give the same context, weights and gradients of every
input and parameter. Run with the torch venv (see the contributing notes); skipped without torch."""
import numpy as np
import pytest

from tinylm.ops.soft_attention import (additive_attention_backward, additive_attention_forward,
                                       dot_attention_backward, dot_attention_forward, general_attention_backward,
                                       general_attention_forward)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

B, T, S, DQ, DK, DV, A = 3, 4, 5, 3, 6, 2, 7
MASK = np.array([[False, False, True, False, True], [True] * 5, [False] * 5])   # partial, all padding, none


def _torch_attention(kind, x, mask):
    """Bahdanau / Luong attention as a PyTorch implementation would write it."""
    q, k, V = x["query"], x["keys"], x["values"]
    if kind == "additive":
        W_q, W_k, v = x["W_q"], x["W_k"], x["v"]
        scores = torch.tanh((q @ W_q.T).unsqueeze(2) + (k @ W_k.T).unsqueeze(1)) @ v        # (B,T,S)
    elif kind == "dot":
        scores = torch.bmm(q, k.transpose(1, 2))
    else:
        scores = torch.bmm(q, (k @ x["W"].T).transpose(1, 2))                               # q . (W k)
    pad = torch.from_numpy(mask)[:, None, :]
    weights = torch.softmax(scores.masked_fill(pad, float("-inf")), dim=-1)
    weights = torch.where(pad.all(-1, keepdim=True), torch.zeros_like(weights), weights)    # all padding -> 0 (not NaN)
    return torch.bmm(weights, V), weights


OPS = {"additive": (additive_attention_forward, additive_attention_backward, ["W_q", "W_k", "v"]),
       "dot": (dot_attention_forward, dot_attention_backward, []),
       "general": (general_attention_forward, general_attention_backward, ["W"])}


@pytest.mark.parametrize("kind", list(OPS))
def test_matches_torch_autograd(kind):
    rng = np.random.default_rng(0)
    x = {"query": rng.standard_normal((B, T, DK if kind == "dot" else DQ)),
         "keys": rng.standard_normal((B, S, DK)), "values": rng.standard_normal((B, S, DV))}
    x.update({"additive": {"W_q": rng.standard_normal((A, DQ)), "W_k": rng.standard_normal((A, DK)),
                           "v": rng.standard_normal(A)},
              "dot": {}, "general": {"W": rng.standard_normal((DQ, DK))}}[kind])
    fwd, bwd, params = OPS[kind]
    (context, weights), cache = fwd(**x, key_padding_mask=MASK)
    dcontext, dweights = rng.standard_normal(context.shape), rng.standard_normal(weights.shape)
    grads = dict(zip(["query", "keys", "values"] + params, bwd((dcontext, dweights), cache)))

    xt = {n: torch.tensor(a, requires_grad=True) for n, a in x.items()}
    tc, tw = _torch_attention(kind, xt, MASK)
    ((tc * torch.from_numpy(dcontext)).sum() + (tw * torch.from_numpy(dweights)).sum()).backward()
    np.testing.assert_allclose(context, tc.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(weights, tw.detach().numpy(), rtol=1e-12, atol=1e-14)
    for n, g in grads.items():
        np.testing.assert_allclose(g, xt[n].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)
