"""Transformer encoder and decoder layers and stacks with PyTorch's signatures, parameter names,
layouts and numerics: ``TransformerEncoderLayer``, ``TransformerDecoderLayer``,
``TransformerEncoder``, ``TransformerDecoder``.

One layer is a few sublayers, each wrapped in a residual connection and a LayerNorm. Where the
norm sits is the ``norm_first`` switch (``sa`` self-attention, ``ca`` cross-attention to the
encoder output ``memory``, ``ff`` the feed-forward block ``linear2(dropout(act(linear1(x))))``,
each followed by its own dropout)::

    post-LN (norm_first=False, Vaswani et al. 2017)      pre-LN (norm_first=True, GPT-2 style)
    x = norm1(x + sa(x))                                  x = x + sa(norm1(x))
    x = norm2(x + ca(x, memory))      (decoder only)      x = x + ca(norm2(x), memory)
    x = normN(x + ff(x))              (N = 2 or 3)        x = x + ff(normN(x))

A PyTorch ``state_dict`` (converted to NumPy) loads with ``load_state_dict`` and gives the same
outputs and gradients (tests/test_torch_transformer.py): the names are ``self_attn.*``,
``multihead_attn.*`` (decoder), ``linear1.*``, ``linear2.*``, ``norm1.*`` .. ``norm3.*``, and
``layers.{i}.*`` / ``norm.*`` in the stacks.

Differences from PyTorch: masks are ``*_key_padding_mask`` (B, S) bool (True = padding) and the
``is_causal`` flags, which apply the causal mask themselves; general float/bool ``attn_mask``
arguments (``src_mask``, ``tgt_mask``, ``memory_mask``) are accepted only as None. ``activation``
is the string "relu" or "gelu" (exact erf form, as PyTorch's ``F.gelu``).

Derivation: derivations/transformer_layers.md (pieces: multihead_attention.md, layernorm.md,
linear.md, activations.md, dropout.md).  Tests: tests/test_transformer_layers.py,
tests/test_torch_transformer.py.
"""
from __future__ import annotations

import copy

import numpy as np

from tinylm._checks import (check_choice, check_flag, check_float, check_head_split, check_positive_float,
                            check_positive_int, check_probability, check_shape)
from tinylm.backend import array_module
from tinylm.nn.activation import GELU, ReLU
from tinylm.nn.attention import MultiheadAttention
from tinylm.nn.container import ModuleList
from tinylm.nn.dropout import Dropout
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module
from tinylm.nn.normalization import LayerNorm
from tinylm.random import make_rng

__all__ = ["TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder", "TransformerDecoder",
           "ACTIVATIONS"]

ACTIVATIONS = ("relu", "gelu")


# ----------------------------------------------------------------------------------------------
# Argument checks shared by layers and stacks.
# ----------------------------------------------------------------------------------------------

def _no_attn_mask(name: str, mask) -> None:
    if mask is not None:
        raise ValueError(f"{name}: general attention masks are not supported, got {type(mask).__name__}; "
                         f"pass None and use the *_key_padding_mask (B, S) and is_causal arguments")


def _check_sequence(name: str, x, layout: tuple, dims: dict, dtype) -> None:
    """``x`` is a float array of ``layout`` (binding its symbols in ``dims``) and the parameters' dtype."""
    array_module((name, x))
    check_float(name, x)
    check_shape(name, x, layout, dims)
    if x.dtype != dtype:
        raise TypeError(f"{name}: dtype {x.dtype} differs from the parameters' {dtype}; "
                        f"cast the input or the module (.to(dtype))")


def _check_padding_mask(name: str, mask, dims: dict, length: str) -> None:
    """``mask`` is None or a bool (B, length) array: True marks a padding position."""
    if mask is None:
        return
    array_module((name, mask))
    if getattr(mask, "dtype", None) != np.bool_:
        got = getattr(mask, "dtype", type(mask).__name__)
        raise TypeError(f"{name}: expected a bool array (True = padding position, ignored), got {got}")
    check_shape(name, mask, ("B", length), dims)


def _check_flag(name: str, value) -> bool:
    """A bool flag, or None (PyTorch's stacks default the flags to None) for False."""
    return False if value is None else check_flag(name, value)


# ----------------------------------------------------------------------------------------------
# Layers.
# ----------------------------------------------------------------------------------------------

class _LayerBase(Module):
    """What both layers share. Children in PyTorch's order: ``self_attn``, (decoder:
    ``multihead_attn``), ``linear1``, ``dropout``, ``linear2``, ``norm1``, ``norm2``, (``norm3``),
    ``dropout1``, ``dropout2``, (``dropout3``), ``activation``."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, activation: str,
                 layer_norm_eps: float, batch_first: bool, norm_first: bool, bias: bool, dtype, rng,
                 cross_attention: bool):
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        check_positive_int("nhead", nhead)
        check_head_split("d_model", d_model, "nhead", nhead)     # named here, not as MultiheadAttention's embed_dim
        check_positive_int("dim_feedforward", dim_feedforward)
        self.dropout_p = check_probability("dropout", dropout)
        self.activation_name = check_choice("activation", activation, ACTIVATIONS)
        check_positive_float("layer_norm_eps", layer_norm_eps)
        self.batch_first = check_flag("batch_first", batch_first)
        self.norm_first = check_flag("norm_first", norm_first)
        check_flag("bias", bias)
        # One generator for every initialiser. Dropout (of the residuals and of the attention
        # probabilities) gets it too when a seed was given; None leaves dropout on tinylm's global
        # generator, so that a later tinylm.manual_seed still governs it.
        init_rng = make_rng(rng, name="rng")
        drop_rng = None if rng is None else init_rng
        C, F = d_model, dim_feedforward
        attn_args = dict(dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype, rng=drop_rng)
        self.self_attn = MultiheadAttention(C, nhead, **attn_args)
        if cross_attention:
            self.multihead_attn = MultiheadAttention(C, nhead, **attn_args)
        self.linear1 = Linear(C, F, bias=bias, dtype=dtype, rng=init_rng)
        self.dropout = Dropout(dropout, rng=drop_rng)
        self.linear2 = Linear(F, C, bias=bias, dtype=dtype, rng=init_rng)
        for i in range(1, 4 if cross_attention else 3):
            setattr(self, f"norm{i}", LayerNorm(C, eps=layer_norm_eps, bias=bias, dtype=dtype))
        for i in range(1, 4 if cross_attention else 3):
            setattr(self, f"dropout{i}", Dropout(dropout, rng=drop_rng))
        # PyTorch keeps a function here; a parameter-free module holds the cache for the backward.
        self.activation = ReLU() if activation == "relu" else GELU(approximate="none")

    @property
    def _layouts(self) -> tuple[tuple, tuple]:
        """Shapes of the query-side and key-side sequences: (B, T, C) / (B, S, C) or time first."""
        C = self.d_model
        return ((("B", "T", C), ("B", "S", C)) if self.batch_first else (("T", "B", C), ("S", "B", C)))

    # --- sublayers and their backward passes ---
    def _sa_block(self, x, key_padding_mask, is_causal: bool):
        y, _ = self.self_attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal)
        return self.dropout1(y)

    def _sa_block_backward(self, dy):
        dq, dk, dv = self.self_attn.backward(self.dropout1.backward(dy))   # y = dropout1(self_attn(x, x, x))
        return dq + dk + dv                                  # x feeds query, key and value: the three add

    def _ff_block(self, x, dropout_out: Dropout):
        h = self.dropout(self.activation(self.linear1(x)))  # (.,.,C) -> (.,.,F)
        return dropout_out(self.linear2(h))                  # (.,.,F) -> (.,.,C)

    def _ff_block_backward(self, dy, dropout_out: Dropout):
        dh = self.linear2.backward(dropout_out.backward(dy))       # y = dropout_out(linear2(h))  (.,.,C) -> (.,.,F)
        # h = dropout(activation(linear1(x)))                                    (.,.,F) -> (.,.,C)
        return self.linear1.backward(self.activation.backward(self.dropout.backward(dh)))

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, nhead={self.self_attn.num_heads}, "
                f"dim_feedforward={self.linear1.out_features}, dropout={self.dropout_p}, "
                f"activation={self.activation_name!r}, batch_first={self.batch_first}, norm_first={self.norm_first}")


class TransformerEncoderLayer(_LayerBase):
    """Self-attention and a feed-forward block, each with a residual connection and a LayerNorm.

    ``TransformerEncoderLayer(d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
    layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True)``, PyTorch's order and defaults.

    ``out = layer(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``. Shapes: src
    (S, B, C), or (B, S, C) with ``batch_first``; src_key_padding_mask (B, S) bool (True = padding,
    never attended to) -> out shaped as src. ``is_causal=True``: position i attends to 0..i only.
    ``layer.backward(dout)`` returns dsrc.

    Parameters: ``self_attn`` (MultiheadAttention: in_proj_weight (3C, C), in_proj_bias (3C,),
    out_proj), ``linear1`` (F, C), ``linear2`` (C, F), ``norm1``, ``norm2`` (C,); F = dim_feedforward.
    Dropout (probability ``dropout``) acts on the attention probabilities, after the activation,
    and on each sublayer's output before the residual addition, in training mode only.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, *, dtype=np.float32, rng=None):
        super().__init__(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                         norm_first, bias, dtype, rng, cross_attention=False)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        _no_attn_mask("src_mask", src_mask)
        dims: dict = {}
        _check_sequence("src", src, self._layouts[1], dims, self.linear1.weight.dtype)     # (B, S, C)
        _check_padding_mask("src_key_padding_mask", src_key_padding_mask, dims, "S")
        causal = _check_flag("is_causal", is_causal)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_key_padding_mask, causal)      # h = x + sa(norm1(x))
            x = x + self._ff_block(self.norm2(x), self.dropout2)                    # out = h + ff(norm2(h))
        else:
            x = self.norm1(x + self._sa_block(x, src_key_padding_mask, causal))     # h = norm1(x + sa(x))
            x = self.norm2(x + self._ff_block(x, self.dropout2))                    # out = norm2(h + ff(h))
        return self._remember_output(x)

    def backward(self, dout):
        self._check_output_grad("dout", dout)
        if self.norm_first:
            dh = dout + self.norm2.backward(self._ff_block_backward(dout, self.dropout2))   # out = h + ff(norm2(h))
            return dh + self.norm1.backward(self._sa_block_backward(dh))                   # h = x + sa(norm1(x))
        db = self.norm2.backward(dout)                        # out = norm2(b), b = h + ff(h)
        dh = db + self._ff_block_backward(db, self.dropout2)  # b = h + ff(h)
        da = self.norm1.backward(dh)                          # h = norm1(a), a = x + sa(x)
        return da + self._sa_block_backward(da)               # a = x + sa(x)


class TransformerDecoderLayer(_LayerBase):
    """Masked self-attention, cross-attention to the encoder output, and a feed-forward block, each
    with a residual connection and a LayerNorm.

    ``TransformerDecoderLayer(d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
    layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True)``.

    ``out = layer(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False)``. Shapes: tgt (T, B, C),
    memory (S, B, C) (batch first with ``batch_first``), tgt_key_padding_mask (B, T) and
    memory_key_padding_mask (B, S) bool (True = padding) -> out shaped as tgt. ``tgt_is_causal=True``
    applies the causal mask to the self-attention (PyTorch also wants it in ``tgt_mask``; here the
    flag alone does it). ``layer.backward(dout)`` returns ``(dtgt, dmemory)``.

    Parameters: ``self_attn``, ``multihead_attn`` (both MultiheadAttention), ``linear1`` (F, C),
    ``linear2`` (C, F), ``norm1``, ``norm2``, ``norm3`` (C,). Set ``need_weights = True`` to keep the
    cross-attention weights of each forward, averaged over heads, in ``cross_attn_weights``
    (B, T, S) (for heatmaps; they cost one extra softmax).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, *, dtype=np.float32, rng=None):
        super().__init__(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                         norm_first, bias, dtype, rng, cross_attention=True)
        self.need_weights = False
        self.cross_attn_weights = None

    def _ca_block(self, x, memory, key_padding_mask, is_causal: bool):
        y, w = self.multihead_attn(x, memory, memory, key_padding_mask=key_padding_mask,
                                   need_weights=self.need_weights, is_causal=is_causal)
        self.cross_attn_weights = w
        return self.dropout2(y)

    def _ca_block_backward(self, dy):
        dq, dk, dv = self.multihead_attn.backward(self.dropout2.backward(dy))   # y = dropout2(mha(x, memory, memory))
        return dq, dk + dv                                   # memory feeds key and value: dmemory = dk + dv

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        _no_attn_mask("tgt_mask", tgt_mask)
        _no_attn_mask("memory_mask", memory_mask)
        dims: dict = {}
        tgt_layout, mem_layout = self._layouts
        dtype = self.linear1.weight.dtype
        _check_sequence("tgt", tgt, tgt_layout, dims, dtype)
        _check_sequence("memory", memory, mem_layout, dims, dtype)
        _check_padding_mask("tgt_key_padding_mask", tgt_key_padding_mask, dims, "T")
        _check_padding_mask("memory_key_padding_mask", memory_key_padding_mask, dims, "S")
        causal = _check_flag("tgt_is_causal", tgt_is_causal)
        mem_causal = _check_flag("memory_is_causal", memory_is_causal)
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_key_padding_mask, causal)                   # h1
            x = x + self._ca_block(self.norm2(x), memory, memory_key_padding_mask, mem_causal)    # h2
            x = x + self._ff_block(self.norm3(x), self.dropout3)                                # out
        else:
            x = self.norm1(x + self._sa_block(x, tgt_key_padding_mask, causal))                   # h1
            x = self.norm2(x + self._ca_block(x, memory, memory_key_padding_mask, mem_causal))    # h2
            x = self.norm3(x + self._ff_block(x, self.dropout3))                                # out
        return self._remember_output(x)

    def backward(self, dout):
        self._check_output_grad("dout", dout)
        if self.norm_first:
            dh2 = dout + self.norm3.backward(self._ff_block_backward(dout, self.dropout3))  # out = h2 + ff(norm3(h2))
            dq, dmemory = self._ca_block_backward(dh2)                      # h2 = h1 + ca(norm2(h1), m): the ca branch
            dh1 = dh2 + self.norm2.backward(dq)                                             # h2 = h1 + ca(norm2(h1), m)
            dtgt = dh1 + self.norm1.backward(self._sa_block_backward(dh1))                  # h1 = x + sa(norm1(x))
            return dtgt, dmemory
        dc = self.norm3.backward(dout)                        # out = norm3(c), c = h2 + ff(h2)
        dh2 = dc + self._ff_block_backward(dc, self.dropout3)  # c = h2 + ff(h2)
        db = self.norm2.backward(dh2)                         # h2 = norm2(b), b = h1 + ca(h1, m)
        dq, dmemory = self._ca_block_backward(db)             # b = h1 + ca(h1, m): the ca branch
        dh1 = db + dq                                         # b = h1 + ca(h1, m)
        da = self.norm1.backward(dh1)                         # h1 = norm1(a), a = x + sa(x)
        return da + self._sa_block_backward(da), dmemory      # a = x + sa(x)


# ----------------------------------------------------------------------------------------------
# Stacks.
# ----------------------------------------------------------------------------------------------

def _clones(layer: Module, num_layers: int) -> ModuleList:
    """``num_layers`` deep copies of ``layer``, as PyTorch's ``_get_clones``: every copy starts from
    the same weights. A copied dropout generator would repeat the original's masks in every layer,
    so each copy's generators are re-seeded from the original's."""
    check_positive_int("num_layers", num_layers)
    copies = []
    for _ in range(num_layers):
        clone = copy.deepcopy(layer)
        for (_, m), (_, m_clone) in zip(layer.named_modules(), clone.named_modules()):
            g = getattr(m, "rng", None)
            if isinstance(g, np.random.Generator):
                m_clone.rng = np.random.default_rng(g.integers(2 ** 63))
        copies.append(clone)
    return ModuleList(copies)


def _check_stack_norm(norm, d_model: int) -> None:
    if norm is not None and not isinstance(norm, Module):
        raise TypeError(f"norm: expected a LayerNorm or None, got {type(norm).__name__}")
    if isinstance(norm, LayerNorm) and norm.normalized_shape != (d_model,):
        raise ValueError(f"norm: expected a LayerNorm over the layers' d_model={d_model} features, "
                         f"got normalized_shape={norm.normalized_shape}")


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of ``encoder_layer``, then an optional final ``norm``
    (use one after pre-LN layers, whose output is not normalised).

    ``TransformerEncoder(encoder_layer, num_layers, norm=None)``; ``out = enc(src, mask=None,
    src_key_padding_mask=None, is_causal=None)`` with the layer's shapes; ``enc.backward(dout)``
    returns dsrc. Parameters ``layers.{i}.*`` and ``norm.*``. As in PyTorch, the copies start
    from identical weights (``nn.Transformer`` re-initialises them afterwards).
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: LayerNorm | None = None):
        super().__init__()
        if not isinstance(encoder_layer, TransformerEncoderLayer):
            raise TypeError(f"encoder_layer: expected a TransformerEncoderLayer, got {type(encoder_layer).__name__}")
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        _check_stack_norm(norm, self.layers[0].d_model)
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        _no_attn_mask("mask", mask)
        causal = _check_flag("is_causal", is_causal)
        x = src
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=src_key_padding_mask, is_causal=causal)
        x = x if self.norm is None else self.norm(x)
        return self._remember_output(x)

    def backward(self, dout):
        self._check_output_grad("dout", dout)
        dx = dout if self.norm is None else self.norm.backward(dout)   # x = norm(x) (when there is a norm)
        for layer in reversed(self.layers):
            dx = layer.backward(dx)                          # x = layer(x, ...)
        return dx


class TransformerDecoder(Module):
    """A stack of ``num_layers`` copies of ``decoder_layer``, then an optional final ``norm``.

    ``TransformerDecoder(decoder_layer, num_layers, norm=None)``; ``out = dec(tgt, memory, tgt_mask=None,
    memory_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=None,
    memory_is_causal=False)`` with the layer's shapes. ``dec.backward(dout)`` returns
    ``(dtgt, dmemory)``: every layer reads the same memory, so dmemory is the sum of the layers'
    cross-attention gradients. Parameters ``layers.{i}.*`` and ``norm.*``.
    """

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: LayerNorm | None = None):
        super().__init__()
        if not isinstance(decoder_layer, TransformerDecoderLayer):
            raise TypeError(f"decoder_layer: expected a TransformerDecoderLayer, got {type(decoder_layer).__name__}")
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        _check_stack_norm(norm, self.layers[0].d_model)
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        _no_attn_mask("tgt_mask", tgt_mask)
        _no_attn_mask("memory_mask", memory_mask)
        causal = _check_flag("tgt_is_causal", tgt_is_causal)
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=causal,
                      memory_is_causal=memory_is_causal)
        x = x if self.norm is None else self.norm(x)
        return self._remember_output(x)

    def backward(self, dout):
        self._check_output_grad("dout", dout)
        dx = dout if self.norm is None else self.norm.backward(dout)   # x = norm(x) (when there is a norm)
        dmemory = None
        for layer in reversed(self.layers):
            dx, dm = layer.backward(dx)                      # x = layer(x, memory, ...)
            dmemory = dm if dmemory is None else dmemory + dm    # memory = every layer's key and value
        return dx, dmemory
