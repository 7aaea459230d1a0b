"""Cross-checks against PyTorch (skipped without torch): tinylm's Transformer layers and stacks
(tinylm/nn/transformer.py) vs ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer`` /
``TransformerEncoder`` / ``TransformerDecoder`` loaded with the same state dict; outputs and the
gradients of every input and parameter, float64, to 1e-10.

Run: PYTHONPATH=/work/main /work/torchenv/bin/python -m pytest tests/test_torch_transformer.py -p no:cacheprovider
"""
import numpy as np
import pytest

from tinylm.nn.normalization import LayerNorm
from tinylm.nn.transformer import (TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                                   TransformerEncoderLayer)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

TOL = dict(rtol=1e-10, atol=1e-10)
C, H, F = 8, 2, 12


def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _randomise(m, rng):
    """Random parameters (LayerNorm weights near 1), so no gradient is accidentally trivial."""
    for name, p in m.named_parameters():
        base = 1.0 if name.endswith(("norm1.weight", "norm2.weight", "norm3.weight", "norm.weight")) else 0.0
        p.data = base + 0.5 * rng.standard_normal(p.shape)


def _load_into_torch(m, tm):
    tm.load_state_dict({n: torch.from_numpy(a.copy()) for n, a in m.state_dict().items()})
    tm.eval()                                          # dropout off (dropout=0 anyway); grads still flow


def _compare_grads(m, tm):
    tparams = dict(tm.named_parameters())
    names = [n for n, _ in m.named_parameters()]
    assert sorted(names) == sorted(tparams), "parameter names differ from PyTorch's"
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[n].grad.numpy(), **TOL, err_msg=n)


def _causal(T):
    """PyTorch's boolean causal attn_mask (True = may NOT attend), the type of the padding masks."""
    return torch.ones(T, T, dtype=torch.bool).triu(1)


def _padding(rng, B, L):
    pad = rng.random((B, L)) < 0.3
    pad[:, 0] = False                                  # every sequence keeps a real first position
    return pad


@pytest.mark.parametrize("norm_first, activation, batch_first, padded, causal", [
    (False, "relu", False, False, False), (False, "gelu", True, True, False),
    (True, "relu", True, True, True), (True, "gelu", False, False, True),
])
def test_encoder_layer_matches_torch(rng, norm_first, activation, batch_first, padded, causal):
    B, S = 3, 5
    m = TransformerEncoderLayer(C, H, F, dropout=0.0, activation=activation, batch_first=batch_first,
                                norm_first=norm_first, rng=0).double()
    _randomise(m, rng)
    tm = torch.nn.TransformerEncoderLayer(C, H, F, dropout=0.0, activation=activation, batch_first=batch_first,
                                          norm_first=norm_first, dtype=torch.float64)
    _load_into_torch(m, tm)
    x = rng.standard_normal((B, S, C) if batch_first else (S, B, C))
    pad = _padding(rng, B, S) if padded else None
    dout = rng.standard_normal(x.shape)

    out = m(x, src_key_padding_mask=pad, is_causal=causal)
    dx = m.backward(dout)
    tx = _t(x, True)
    tout = tm(tx, src_mask=_causal(S) if causal else None, is_causal=causal,
              src_key_padding_mask=None if pad is None else torch.from_numpy(pad))
    (tout * _t(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), **TOL)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL)
    _compare_grads(m, tm)


@pytest.mark.parametrize("norm_first, activation, batch_first, padded", [
    (False, "relu", False, False), (False, "gelu", True, True), (True, "relu", True, True), (True, "gelu", False, True),
])
def test_decoder_layer_matches_torch(rng, norm_first, activation, batch_first, padded):
    B, T, S = 2, 4, 6
    m = TransformerDecoderLayer(C, H, F, dropout=0.0, activation=activation, batch_first=batch_first,
                                norm_first=norm_first, rng=0).double()
    _randomise(m, rng)
    tm = torch.nn.TransformerDecoderLayer(C, H, F, dropout=0.0, activation=activation, batch_first=batch_first,
                                          norm_first=norm_first, dtype=torch.float64)
    _load_into_torch(m, tm)
    tgt = rng.standard_normal((B, T, C) if batch_first else (T, B, C))
    mem = rng.standard_normal((B, S, C) if batch_first else (S, B, C))
    tpad, mpad = (_padding(rng, B, T), _padding(rng, B, S)) if padded else (None, None)
    dout = rng.standard_normal(tgt.shape)

    out = m(tgt, mem, tgt_key_padding_mask=tpad, memory_key_padding_mask=mpad, tgt_is_causal=True)
    dtgt, dmem = m.backward(dout)
    ttgt, tmem = _t(tgt, True), _t(mem, True)
    as_t = lambda a: None if a is None else torch.from_numpy(a)   # noqa: E731
    tout = tm(ttgt, tmem, tgt_mask=_causal(T), tgt_is_causal=True, tgt_key_padding_mask=as_t(tpad),
              memory_key_padding_mask=as_t(mpad))
    (tout * _t(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), **TOL)
    np.testing.assert_allclose(dtgt, ttgt.grad.numpy(), **TOL)
    np.testing.assert_allclose(dmem, tmem.grad.numpy(), **TOL)
    _compare_grads(m, tm)


@pytest.mark.parametrize("norm_first", [False, True])
def test_stacks_match_torch(rng, norm_first):
    """Two-layer encoder and decoder stacks with a final norm: state-dict names, outputs and
    gradients, including dmemory summed over the decoder layers."""
    B, T, S = 2, 3, 5
    kw = dict(dropout=0.0, batch_first=True, norm_first=norm_first)
    enc = TransformerEncoder(TransformerEncoderLayer(C, H, F, rng=0, **kw), 2, norm=LayerNorm(C)).double()
    dec = TransformerDecoder(TransformerDecoderLayer(C, H, F, rng=1, **kw), 2, norm=LayerNorm(C)).double()
    _randomise(enc, rng)
    _randomise(dec, rng)
    tkw = dict(dropout=0.0, batch_first=True, norm_first=norm_first, dtype=torch.float64)
    tenc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(C, H, F, **tkw), 2,
                                       norm=torch.nn.LayerNorm(C, dtype=torch.float64), enable_nested_tensor=False)
    tdec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(C, H, F, **tkw), 2,
                                       norm=torch.nn.LayerNorm(C, dtype=torch.float64))
    _load_into_torch(enc, tenc)
    _load_into_torch(dec, tdec)
    src, tgt = rng.standard_normal((B, S, C)), rng.standard_normal((B, T, C))
    pad = _padding(rng, B, S)
    dout = rng.standard_normal((B, T, C))

    mem = enc(src, src_key_padding_mask=pad)
    out = dec(tgt, mem, memory_key_padding_mask=pad, tgt_is_causal=True)
    dtgt, dmem = dec.backward(dout)
    dsrc = enc.backward(dmem)

    tsrc, ttgt = _t(src, True), _t(tgt, True)
    tmem = tenc(tsrc, src_key_padding_mask=torch.from_numpy(pad))
    tout = tdec(ttgt, tmem, tgt_mask=_causal(T), tgt_is_causal=True, memory_key_padding_mask=torch.from_numpy(pad))
    (tout * _t(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), **TOL)
    np.testing.assert_allclose(dtgt, ttgt.grad.numpy(), **TOL)
    np.testing.assert_allclose(dsrc, tsrc.grad.numpy(), **TOL)
    _compare_grads(enc, tenc)
    _compare_grads(dec, tdec)
