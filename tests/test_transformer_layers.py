"""Transformer encoder/decoder layers and stacks (tinylm/nn/transformer.py): float64 gradient checks of
every input and parameter (post-LN and pre-LN, ReLU and GELU, padding and causal masks, dropout with
fixed masks), invariants (padding, causality, layouts), and argument errors.
PyTorch cross-checks: tests/test_torch_transformer.py."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.gradcheck import check_module, fixed_random_streams
from tinylm.nn.normalization import LayerNorm
from tinylm.nn.transformer import (TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                                   TransformerEncoderLayer)

C, H, F = 4, 2, 6


def _randomise(m, rng, scale=0.5):
    """Random parameters (LayerNorm weights near 1) so that no gradient is accidentally tiny."""
    for name, p in m.named_parameters():
        base = 1.0 if ".weight" in name and "norm" in name.split(".")[-2] else 0.0
        p.data = base + scale * rng.standard_normal(p.shape)
    return m


def _layer(kind, gen, **kw):
    """A float64 encoder ("enc") or decoder ("dec") layer with parameters drawn from ``gen``."""
    cls = TransformerEncoderLayer if kind == "enc" else TransformerDecoderLayer
    return _randomise(cls(C, H, F, **{"dropout": 0.0, "rng": 0, **kw}).double(), gen)


def _pad(B, L, rng):
    pad = rng.random((B, L)) < 0.4
    pad[:, 0] = False                                       # each sequence keeps a real position
    return pad


# --- gradient checks -------------------------------------------------------------------------

@pytest.mark.parametrize("norm_first, activation, batch_first, causal, bias", [
    (False, "relu", True, False, True), (False, "gelu", False, True, True),
    (True, "gelu", True, True, True), (True, "relu", False, False, True),
    (False, "gelu", True, True, False), (True, "relu", True, False, False),
])
def test_encoder_layer_gradcheck(rng, norm_first, activation, batch_first, causal, bias):
    """bias=False: no Linear, in_proj, out_proj or LayerNorm bias (PyTorch's bias switch)."""
    m = _layer("enc", rng, norm_first=norm_first, activation=activation, batch_first=batch_first, bias=bias)
    assert any(n.endswith("bias") for n, _ in m.named_parameters()) == bias
    B, S = 2, 3
    x = rng.standard_normal((B, S, C) if batch_first else (S, B, C))
    check_module(m, x, tol=1e-5, forward_kwargs=dict(src_key_padding_mask=_pad(B, S, rng), is_causal=causal))


@pytest.mark.parametrize("norm_first, activation, batch_first, bias, memory_is_causal", [
    (False, "relu", True, True, False), (False, "gelu", False, True, False),
    (True, "gelu", True, True, False), (True, "relu", False, True, False),
    (False, "gelu", True, False, True), (True, "relu", False, False, False), (True, "gelu", True, True, True),
])
def test_decoder_layer_gradcheck(rng, norm_first, activation, batch_first, bias, memory_is_causal):
    """Both inputs: dtgt through the self-attention and residuals, dmemory through the
    cross-attention's keys and values (causally masked with memory_is_causal, T=3 < S=4)."""
    m = _layer("dec", rng, norm_first=norm_first, activation=activation, batch_first=batch_first, bias=bias)
    assert any(n.endswith("bias") for n, _ in m.named_parameters()) == bias
    B, T, S = 2, 3, 4
    tgt = rng.standard_normal((B, T, C) if batch_first else (T, B, C))
    mem = rng.standard_normal((B, S, C) if batch_first else (S, B, C))
    kw = dict(tgt_key_padding_mask=_pad(B, T, rng), memory_key_padding_mask=_pad(B, S, rng), tgt_is_causal=True,
              memory_is_causal=memory_is_causal)
    if memory_is_causal:                                      # the flag does mask the cross-attention
        assert not np.allclose(m(tgt, mem, **kw), m(tgt, mem, **{**kw, "memory_is_causal": False}))
    check_module(m, tgt, mem, tol=1e-6, forward_kwargs=kw)


def test_stacks_gradcheck(rng):
    """Two layers and a final norm (post-LN encoder, pre-LN decoder, pre-LN causal encoder); the
    decoder's dmemory sums the gradients of both layers."""
    kw = dict(dropout=0.0, dim_feedforward=4, batch_first=True)
    enc = TransformerEncoder(TransformerEncoderLayer(C, H, **kw), 2, norm=LayerNorm(C))
    dec = TransformerDecoder(TransformerDecoderLayer(C, H, norm_first=True, **kw), 2, norm=LayerNorm(C))
    pre = TransformerEncoder(TransformerEncoderLayer(C, H, norm_first=True, **kw), 2, norm=LayerNorm(C))
    enc, dec, pre = (_randomise(m.double(), rng) for m in (enc, dec, pre))
    pad = np.array([[False, False, True], [False, False, False]])
    check_module(enc, rng.standard_normal((2, 3, C)), tol=1e-5, forward_kwargs=dict(src_key_padding_mask=pad))
    check_module(dec, rng.standard_normal((2, 2, C)), rng.standard_normal((2, 3, C)), tol=1e-5,
                 forward_kwargs=dict(memory_key_padding_mask=pad, tgt_is_causal=True))
    check_module(pre, rng.standard_normal((2, 3, C)), tol=1e-5,
                 forward_kwargs=dict(src_key_padding_mask=pad, is_causal=True))


@pytest.mark.parametrize("norm_first", [False, True])
def test_dropout_masks_reach_the_backward(rng, norm_first):
    """Training mode with dropout_seed: every forward of the check draws the same masks (a distinct
    stream per Dropout/attention dropout), so the backward must reuse exactly those."""
    m = _layer("dec", rng, norm_first=norm_first, dropout=0.3, rng=5, batch_first=True).train()
    tgt, mem = rng.standard_normal((2, 3, C)), rng.standard_normal((2, 4, C))
    with fixed_random_streams(m, 11) as reset:
        reset()
        out = m(tgt, mem, tgt_is_causal=True)
    assert not np.allclose(out, m.eval()(tgt, mem, tgt_is_causal=True))   # dropout did act in training mode
    m.train()
    check_module(m, tgt, mem, tol=1e-6, dropout_seed=11, forward_kwargs=dict(tgt_is_causal=True))


# --- invariants ------------------------------------------------------------------------------

def test_padding_positions_do_not_matter(rng):
    """Changing padded source positions changes no real encoder output and no decoder output."""
    enc, dec = _layer("enc", rng, batch_first=True), _layer("dec", rng, batch_first=True)
    src, tgt = rng.standard_normal((2, 5, C)), rng.standard_normal((2, 3, C))
    pad = np.array([[False] * 3 + [True] * 2, [False] * 5])
    src2 = src.copy()
    src2[0, 3:] = 100 * rng.standard_normal((2, C))
    np.testing.assert_allclose(enc(src2, src_key_padding_mask=pad)[~pad], enc(src, src_key_padding_mask=pad)[~pad],
                               rtol=1e-12, atol=1e-12)
    out = dec(tgt, src, memory_key_padding_mask=pad)
    np.testing.assert_allclose(dec(tgt, src2, memory_key_padding_mask=pad), out, rtol=1e-12, atol=1e-12)
    _, dmem = dec.backward(np.ones_like(out))
    assert np.all(dmem[pad] == 0) and np.abs(dmem[~pad]).max() > 0


def test_causal_decoder_ignores_the_future(rng):
    dec = _layer("dec", rng, batch_first=True)
    tgt, mem = rng.standard_normal((2, 5, C)), rng.standard_normal((2, 4, C))
    tgt2 = tgt.copy()
    tgt2[:, 3:] += rng.standard_normal((2, 2, C))
    a, b = dec(tgt, mem, tgt_is_causal=True), dec(tgt2, mem, tgt_is_causal=True)
    np.testing.assert_allclose(a[:, :3], b[:, :3], rtol=1e-12, atol=1e-12)
    assert not np.allclose(a[:, 3:], b[:, 3:])


def test_post_ln_output_is_normalised(rng):
    """Post-LN ends in LayerNorm (weight 1, bias 0 at init): each output row has mean 0, variance 1."""
    m = TransformerEncoderLayer(8, 2, 16, dropout=0.0, rng=0).double()
    y = m(3 * rng.standard_normal((4, 2, 8)) + 1)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(-1), 1, rtol=1e-4)


def test_stack_clones_start_equal_and_are_independent():
    layer = TransformerEncoderLayer(C, H, F, rng=3)
    enc = TransformerEncoder(layer, 3)
    w = [enc.layers[i].linear1.weight for i in range(3)]
    np.testing.assert_array_equal(w[0].data, w[1].data)      # PyTorch's _get_clones: same start
    assert w[0] is not w[1] and w[0].data is not w[1].data
    # seeded dropout streams are re-seeded per copy, so the layers draw different masks
    draws = [enc.layers[i].dropout1.rng.random() for i in range(3)]
    assert len(set(draws)) == 3


@given(B=st.integers(1, 3), T=st.integers(1, 4), S=st.integers(1, 4), heads=st.sampled_from([1, 2, 4]),
       batch_first=st.booleans(), norm_first=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_shapes_dtypes_and_layouts(B, T, S, heads, batch_first, norm_first, dtype):
    """Outputs and gradients keep the input shapes and dtype; batch_first only transposes."""
    rng = np.random.default_rng(0)
    kw = dict(dropout=0.0, norm_first=norm_first, rng=1, dtype=dtype)
    m = TransformerDecoderLayer(4, heads, 6, batch_first=batch_first, **kw)
    tgt = rng.standard_normal((B, T, 4) if batch_first else (T, B, 4)).astype(dtype)
    mem = rng.standard_normal((B, S, 4) if batch_first else (S, B, 4)).astype(dtype)
    out = m(tgt, mem, tgt_is_causal=True)
    assert out.shape == tgt.shape and out.dtype == dtype
    dtgt, dmem = m.backward(np.ones_like(out))
    assert dtgt.shape == tgt.shape and dmem.shape == mem.shape and dmem.dtype == dtype
    twin = TransformerDecoderLayer(4, heads, 6, batch_first=not batch_first, **kw)
    twin.load_state_dict(m.state_dict())
    out2 = twin(tgt.swapaxes(0, 1), mem.swapaxes(0, 1), tgt_is_causal=True)
    np.testing.assert_allclose(out2.swapaxes(0, 1), out, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("call, err, match", [
    (lambda e, d, x, m: e(x[..., :3]), ValueError, r"src: expected shape \(B, S, 4\)"),
    (lambda e, d, x, m: e(x.astype(np.float32)), TypeError, r"src: dtype float32 differs from the parameters' float64"),
    (lambda e, d, x, m: e(x, src_mask=np.zeros((3, 3))), ValueError, r"src_mask: general attention masks"),
    (lambda e, d, x, m: e(x, src_key_padding_mask=np.zeros((2, 4), bool)),
     ValueError, r"src_key_padding_mask: expected shape \(B, S\) with B=2, S=3"),
    (lambda e, d, x, m: e(x, src_key_padding_mask=np.zeros((2, 3))),
     TypeError, r"src_key_padding_mask: expected a bool"),
    (lambda e, d, x, m: e(x, is_causal=1), TypeError, r"is_causal: expected a bool"),
    (lambda e, d, x, m: d(x, m[:1]), ValueError, r"memory: expected shape \(B, S, 4\) with B=2"),
    (lambda e, d, x, m: d(x, m, memory_key_padding_mask=np.zeros((2, 3), bool)),
     ValueError, r"memory_key_padding_mask: expected shape \(B, S\) with B=2, S=5"),
    (lambda e, d, x, m: d(x, m, tgt_mask=np.zeros((3, 3))), ValueError, r"tgt_mask: general attention masks"),
    # backward: the upstream gradient is named dout and checked against the output, not an inner layer's dy
    (lambda e, d, x, m: e.backward(np.ones((2, 3, 5))) if e(x) is not None else None, ValueError,
     r"dout: expected shape \(2, 3, 4\), got shape \(2, 3, 5\)"),
    (lambda e, d, x, m: e.backward(None) if e(x) is not None else None, TypeError,
     r"dout: expected a floating-point array .*got NoneType"),
    (lambda e, d, x, m: e.backward(np.ones((2, 3, 4), np.float32)) if e(x) is not None else None, TypeError,
     r"dout: expected dtype float64 \(the forward's output\), got float32"),
    (lambda e, d, x, m: d.backward(np.ones((2, 5, 4))) if d(x, m) is not None else None, ValueError,
     r"dout: expected shape \(2, 3, 4\), got shape \(2, 5, 4\)"),
    (lambda e, d, x, m: d.backward(np.ones((2, 3, 4), int)) if d(x, m) is not None else None, TypeError,
     r"dout: expected a floating-point array .*got int64"),
])
def test_bad_input(rng, call, err, match):
    enc = TransformerEncoderLayer(4, 2, 6, batch_first=True).double()
    dec = TransformerDecoderLayer(4, 2, 6, batch_first=True).double()
    with pytest.raises(err, match=match):
        call(enc, dec, rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)))


def test_bad_construction():
    with pytest.raises(ValueError, match=r"activation: expected one of \('relu', 'gelu'\), got 'tanh'"):
        TransformerEncoderLayer(4, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"d_model: must be divisible by nhead=4 .*got d_model=6"):
        TransformerDecoderLayer(6, 4)
    with pytest.raises(ValueError, match=r"d_model: must be divisible by nhead=3 .*got d_model=4"):
        TransformerEncoderLayer(4, 3)
    with pytest.raises(ValueError, match=r"layer_norm_eps: expected a positive float, got -1"):
        TransformerEncoderLayer(4, 2, layer_norm_eps=-1)
    with pytest.raises(TypeError, match=r"batch_first: expected a bool, got 'yes'"):
        TransformerDecoderLayer(4, 2, batch_first="yes")
    with pytest.raises(TypeError, match=r"norm_first: expected a bool, got 1"):
        TransformerEncoderLayer(4, 2, norm_first=1)
    with pytest.raises(ValueError, match=r"norm: expected a LayerNorm over the layers' d_model=4 features, "
                                         r"got normalized_shape=\(5,\)"):
        TransformerEncoder(TransformerEncoderLayer(4, 2, 8), 1, norm=LayerNorm(5))
    with pytest.raises(ValueError, match=r"norm: expected a LayerNorm over the layers' d_model=4"):
        TransformerDecoder(TransformerDecoderLayer(4, 2, 8), 1, norm=LayerNorm(3))
    with pytest.raises(ValueError, match="dropout: expected a probability"):
        TransformerEncoderLayer(4, 2, dropout=1.5)
    with pytest.raises(TypeError, match="encoder_layer: expected a TransformerEncoderLayer"):
        TransformerEncoder(TransformerDecoderLayer(4, 2), 2)
    with pytest.raises(ValueError, match="num_layers: expected a positive int, got 0"):
        TransformerDecoder(TransformerDecoderLayer(4, 2), 0)
    with pytest.raises(RuntimeError, match="before forward"):
        TransformerEncoderLayer(4, 2).backward(np.zeros((3, 1, 4), np.float32))


@pytest.mark.parametrize("make, call", [
    (lambda: TransformerEncoder(TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True), 2, norm=LayerNorm(4)),
     lambda s, x: s(x)),
    (lambda: TransformerDecoder(TransformerDecoderLayer(4, 2, 8, dropout=0.0, batch_first=True), 2),
     lambda s, x: s(x, np.ones((2, 5, 4), np.float32))),
], ids=["encoder", "decoder"])
def test_stack_backward_checks_dout(make, call):
    stack = make()
    with pytest.raises(RuntimeError, match="before forward"):
        stack.backward(np.zeros((2, 3, 4), np.float32))
    call(stack, np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 3, 4\), got shape \(3, 3, 4\)"):
        stack.backward(np.zeros((3, 3, 4), np.float32))
    with pytest.raises(TypeError, match=r"dout: expected a numpy array, got list"):
        stack.backward(np.zeros((2, 3, 4)).tolist())
