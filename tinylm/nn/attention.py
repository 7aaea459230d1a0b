"""``MultiheadAttention``: PyTorch's ``nn.MultiheadAttention`` over tinylm.ops.attention.

Derivation: derivations/multihead_attention.md (its core: derivations/attention.md).
Tests: tests/test_nn_attention.py, tests/test_torch_attention.py (same state dict as PyTorch).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from tinylm._checks import (check_flag, check_float, check_grad, check_head_split, check_positive_int,
                            check_probability, check_shape)
from tinylm.backend import array_module
from tinylm.nn import init
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module, Parameter
from tinylm.ops.attention import AttentionCache, attention_backward, attention_forward, attention_probs
from tinylm.ops.linear import LinearCache, linear_backward, linear_forward
from tinylm.random import make_rng, module_rng

__all__ = ["MultiheadAttention"]


class _MHACache(NamedTuple):
    q_proj: LinearCache    # query projection: holds query (for dW_q) and W_q (for dquery)
    k_proj: LinearCache    # key projection, likewise
    v_proj: LinearCache    # value projection, likewise
    attn: AttentionCache   # the attention core, per head
    out_shape: tuple       # shape of attn_output, to check dout


class MultiheadAttention(Module):
    """Multi-head scaled dot-product attention with PyTorch's parameters and numerics::

        Q = query W_q^T + b_q,   K = key W_k^T + b_k,   V = value W_v^T + b_v
        O_h = softmax(Q_h K_h^T / sqrt(D) + mask) V_h          for each head h (columns hD..(h+1)D)
        attn_output = concat_h(O_h) W_o^T + b_o

    with [W_q; W_k; W_v] = ``in_proj_weight`` (3E, E), [b_q; b_k; b_v] = ``in_proj_bias`` (3E,), and
    ``out_proj`` a :class:`~tinylm.nn.linear.Linear` (E, E). E = ``embed_dim``, H = ``num_heads``,
    D = E / H. Init as PyTorch: in_proj_weight Xavier-uniform, both biases zero, out_proj.weight
    U(-1/sqrt(E), 1/sqrt(E)).

    Shapes (batched inputs only). ``batch_first=False`` (PyTorch's default): query (T, B, E), key and
    value (S, B, E) -> attn_output (T, B, E). ``batch_first=True``: (B, T, E), (B, S, E) -> (B, T, E).
    ``key_padding_mask`` (B, S) bool, True = padding key (ignored). ``attn_weights``: (B, T, S) averaged
    over heads, or (B, H, T, S) with ``average_attn_weights=False``, after dropout as PyTorch returns
    them; None with ``need_weights=False`` (which also skips recomputing them).

    Self-attention passes one array as query, key and value; cross-attention passes another
    sequence as key and value (S may differ from T). Key and value have width E (PyTorch's
    ``kdim = vdim = embed_dim``); separate kdim/vdim, ``add_bias_kv``, ``add_zero_attn`` and
    ``attn_mask`` are not supported. ``is_causal=True`` applies the causal mask itself (aligned to
    the end of the keys, see tinylm.ops.attention), where PyTorch also wants the mask in attn_mask.
    Dropout acts on the attention probabilities in training mode. ``rng`` seeds the init and the
    dropout masks: None uses tinylm's global generator (``tinylm.manual_seed``); an int seed or a
    ``numpy.random.Generator`` gives the layer its own dropout stream ``.rng``, as ``Dropout`` does.

    ``backward(dout)`` takes the gradient of attn_output (attn_weights are for inspection and are
    not differentiated) and returns ``(dquery, dkey, dvalue)``. In self-attention the one input's
    gradient is their sum: ``dx = sum(mha.backward(dout))``.

    Derivation: derivations/multihead_attention.md.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = False, *, dtype=np.float32, rng=None):
        super().__init__()
        self.embed_dim = check_positive_int("embed_dim", embed_dim)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.head_dim = check_head_split("embed_dim", embed_dim, "num_heads", num_heads)
        self.dropout = check_probability("dropout", dropout)
        self.batch_first = check_flag("batch_first", batch_first)
        gen = make_rng(rng, name="rng")
        E = embed_dim
        # xavier_uniform_ on a (3E, E) tensor: fan_in = E, fan_out = 3E.
        self.in_proj_weight = Parameter(init.uniform((3 * E, E), math.sqrt(6.0 / (E + 3 * E)), dtype, gen))
        self.register_parameter("in_proj_bias", Parameter(init.zeros((3 * E,), dtype)) if bias else None)
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype, rng=gen)
        if bias:
            self.out_proj.bias = Parameter(init.zeros((E,), dtype))     # PyTorch zeroes it too
        # An int seed becomes one generator here, so each forward still draws a fresh mask.
        self.rng = module_rng(rng)
        self._cache = None

    # --- (B,L,E) <-> (B,H,L,D) ---
    def _split_heads(self, xp, x):
        B, L, _ = x.shape
        return xp.ascontiguousarray(x.reshape(B, L, self.num_heads, self.head_dim).transpose(0, 2, 1, 3))

    def _merge_heads(self, x):
        B, _, L, _ = x.shape
        return x.transpose(0, 2, 1, 3).reshape(B, L, self.embed_dim)

    def _in_proj(self, x, rows: slice):
        """One of the three input projections, with its rows of in_proj_weight / in_proj_bias."""
        b = None if self.in_proj_bias is None else self.in_proj_bias.data[rows]
        return linear_forward(x, self.in_proj_weight.data[rows], b)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, is_causal=False,
                average_attn_weights=True):
        xp = array_module(("query", query), ("key", key), ("value", value))
        E = self.embed_dim
        lq, lkv = (("B", "T", "E"), ("B", "S", "E")) if self.batch_first else (("T", "B", "E"), ("S", "B", "E"))
        dims = check_shape("query", query, lq, {"E": E})
        check_shape("key", key, lkv, dims)
        check_shape("value", value, lkv, dims)
        for name, x in (("query", query), ("key", key), ("value", value)):
            check_float(name, x)
            if x.dtype != self.in_proj_weight.dtype:
                raise TypeError(f"{name}: dtype {x.dtype} differs from the parameters' {self.in_proj_weight.dtype}; "
                                f"cast the input or the module (.to(dtype))")
        is_causal = check_flag("is_causal", is_causal)
        need_weights = check_flag("need_weights", need_weights)
        average_attn_weights = check_flag("average_attn_weights", average_attn_weights)
        if not self.batch_first:
            query, key, value = (x.swapaxes(0, 1) for x in (query, key, value))   # (L,B,E) -> (B,L,E)

        q, cq = self._in_proj(query, slice(0, E))                 # (B,T,E) -> (B,T,E)
        k, ck = self._in_proj(key, slice(E, 2 * E))               # (B,S,E) -> (B,S,E)
        v, cv = self._in_proj(value, slice(2 * E, 3 * E))         # (B,S,E) -> (B,S,E)
        q, k, v = (self._split_heads(xp, x) for x in (q, k, v))   # (B,L,E) -> (B,H,L,D)
        o, ca = attention_forward(q, k, v, causal=is_causal, key_padding_mask=key_padding_mask,
                                  dropout_p=self.dropout if self.training else 0.0, rng=self.rng)
        y = self.out_proj(self._merge_heads(o))                   # (B,H,T,D) -> (B,T,E) -> (B,T,E)
        if not self.batch_first:
            y = y.swapaxes(0, 1)                                  # (B,T,E) -> (T,B,E)
        self._cache = _MHACache(cq, ck, cv, ca, tuple(y.shape))

        weights = None
        if need_weights:
            weights = attention_probs(q, k, causal=is_causal, key_padding_mask=key_padding_mask)
            if ca.dropout_mask is not None:
                weights = weights * ca.dropout_mask               # the weights O was computed with
            if average_attn_weights:
                weights = weights.mean(axis=1)                    # (B,H,T,S) -> (B,T,S)
        return y, weights

    def backward(self, dout):
        cq, ck, cv, ca, out_shape = self._need_cache(self._cache)
        xp = array_module(("dout", dout))
        check_grad("dout", dout, out_shape, ca.dtype)
        if not self.batch_first:
            dout = dout.swapaxes(0, 1)                                            # (T,B,E) -> (B,T,E)
        do = self._split_heads(xp, self.out_proj.backward(dout))   # y = out_proj(merge(o))  (B,T,E) -> (B,H,T,D)
        dq, dk, dv = (self._merge_heads(g) for g in attention_backward(do, ca))  # o = attn(q, k, v)  -> (B,L,E)
        dquery, dwq, dbq = linear_backward(dq, cq)                 # q = query W_q^T + b_q   (B,T,E), (E,E), (E,)
        dkey, dwk, dbk = linear_backward(dk, ck)                   # k = key W_k^T + b_k     (B,S,E), (E,E), (E,)
        dvalue, dwv, dbv = linear_backward(dv, cv)                 # v = value W_v^T + b_v   (B,S,E), (E,E), (E,)
        self.in_proj_weight.accumulate(xp.concatenate([dwq, dwk, dwv]))          # rows [W_q; W_k; W_v]  (3E,E)
        if self.in_proj_bias is not None:
            self.in_proj_bias.accumulate(xp.concatenate([dbq, dbk, dbv]))        # [b_q; b_k; b_v]  (3E,)
        grads = (dquery, dkey, dvalue)
        return grads if self.batch_first else tuple(g.swapaxes(0, 1) for g in grads)   # -> (L,B,E)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"bias={self.in_proj_bias is not None}, batch_first={self.batch_first}")
