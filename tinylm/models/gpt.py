"""GPT: a decoder-only Transformer with the GPT-2 architecture, forward and backward written out.

    idx (B, T) --wte + wpe--> x (B, T, C) --[Block] x n_layer--> ln_f --> logits = x wte^T (B, T, V)

    Block (pre-LN):   h   = x + attn(ln_1(x))          attn: causal multi-head self-attention
                      out = h + mlp(ln_2(h))           mlp:  c_fc (C->4C) + GELU (tanh form), c_proj (4C->C)

Parameter names are those of Hugging Face's ``GPT2LMHeadModel`` (``transformer.wte.weight``,
``transformer.h.0.attn.c_attn.weight``, ...) with PyTorch ``Linear`` layouts (out, in); the
checkpoint code in :mod:`tinylm.models.gpt_hf` transposes to and from GPT-2's ``Conv1D`` layout (in, out).
The LM head is tied to ``wte``: one Parameter, whose gradient collects both uses.

Derivation of each piece: derivations/linear.md, derivations/layernorm.md, derivations/activations.md,
derivations/attention.md, derivations/embedding.md; the block's residual backward and the whole
model's wiring: derivations/transformer.md.
Tests: tests/test_gpt.py (gradcheck of every parameter, KV-cache equality, errors).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

from tinylm._checks import (check_config, check_flag, check_grad, check_head_split, check_index_range,
                            check_positive_float, check_positive_int, check_probability, check_shape)
from tinylm.backend import array_module, get_backend
from tinylm.nn import init
from tinylm.nn.container import ModuleList
from tinylm.nn.dropout import Dropout
from tinylm.nn.embedding import Embedding
from tinylm.nn.linear import Linear, LinearGELU
from tinylm.nn.module import Module
from tinylm.nn.normalization import LayerNorm
from tinylm.ops.attention import attention_backward, attention_forward
from tinylm.ops.linear import linear_backward, linear_forward
from tinylm.random import make_rng, module_rng

__all__ = ["GPTConfig", "GPT", "Block", "CausalSelfAttention", "MLP", "KVCache"]


@dataclass
class GPTConfig:
    """Hyper-parameters of :class:`GPT` (GPT-2 small: 50257, 1024, 12, 12, 768)."""

    vocab_size: int = 50257
    block_size: int = 1024       # longest context (number of learned positions)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0         # embedding, attention-probability and residual dropout
    bias: bool = True            # biases in Linear and LayerNorm (GPT-2 has them)
    layer_norm_epsilon: float = 1e-5
    extra: dict = field(default_factory=dict, repr=False)   # unknown config.json keys, kept for round trips

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_positive_int(name, getattr(self, name))
        check_head_split("n_embd", self.n_embd, "n_head", self.n_head)
        check_probability("dropout", self.dropout)
        check_flag("bias", self.bias)
        check_positive_float("layer_norm_epsilon", self.layer_norm_epsilon)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d


class KVCache:
    """Keys and values of the tokens seen so far, per layer: k, v (B, H, block_size, D), filled to ``length``."""

    def __init__(self, n_layer: int, B: int, H: int, block_size: int, D: int, dtype):
        for name, v in (("n_layer", n_layer), ("B", B), ("H", H), ("block_size", block_size), ("D", D)):
            check_positive_int(name, v)
        xp = get_backend().xp
        self.k = [xp.zeros((B, H, block_size, D), dtype) for _ in range(n_layer)]
        self.v = [xp.zeros((B, H, block_size, D), dtype) for _ in range(n_layer)]
        self.length = 0
        self.capacity = block_size


class CausalSelfAttention(Module):
    """Masked multi-head self-attention with GPT-2's fused QKV projection.

    Shapes: x (B, T, C) -> y (B, T, C); H = n_head heads of D = C / H.
    Parameters: ``c_attn`` Linear(C, 3C) (rows: q, k, v), ``c_proj`` Linear(C, C).
    """

    def __init__(self, cfg: GPTConfig, rng=None):
        super().__init__()
        C = cfg.n_embd
        rng = module_rng(rng)
        self.n_head, self.attn_dropout, self.rng = cfg.n_head, cfg.dropout, rng
        self.c_attn = Linear(C, 3 * C, bias=cfg.bias, rng=rng)
        self.c_proj = Linear(C, C, bias=cfg.bias, rng=rng)
        self.resid_dropout = Dropout(cfg.dropout, rng=rng)
        self._cache = None

    def forward(self, x, kv: KVCache | None = None, layer: int = 0):
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        qkv = self.c_attn(x)                                             # (B,T,C) -> (B,T,3C)
        q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, H, D).transpose(0, 2, 1, 3)
                   for i in range(3))                                    # 3 x (B,H,T,D)
        if kv is not None:                                               # decoding: append to the cache
            t0 = kv.length
            kv.k[layer][:, :, t0:t0 + T] = k
            kv.v[layer][:, :, t0:t0 + T] = v
            k, v = kv.k[layer][:, :, :t0 + T], kv.v[layer][:, :, :t0 + T]   # (B,H,S,D), S = t0 + T
        p = self.attn_dropout if self.training else 0.0
        o, attn_cache = attention_forward(q, k, v, causal=True, dropout_p=p, rng=self.rng)   # (B,H,T,D)
        self._cache = attn_cache
        y = o.transpose(0, 2, 1, 3).reshape(B, T, C)                     # (B,H,T,D) -> (B,T,C)
        return self.resid_dropout(self.c_proj(y))                        # (B,T,C)

    def backward(self, dy):
        attn_cache = self._need_cache(self._cache)
        B, T, C = dy.shape
        H, D = self.n_head, C // self.n_head
        dy = self.c_proj.backward(self.resid_dropout.backward(dy))       # out = resid_dropout(c_proj(y))  (B,T,C)
        do = dy.reshape(B, T, H, D).transpose(0, 2, 1, 3)                # y = o^T reshaped     (B,H,T,D)
        dq, dk, dv = attention_backward(do, attn_cache)                  # o = attn(q, k, v)    3 x (B,H,T,D)
        xp = array_module(("dy", dy))
        # q, k, v = qkv[..., i*C:(i+1)*C] split into heads: qkv = [q | k | v]     3 x (B,H,T,D) -> (B,T,3C)
        dqkv = xp.concatenate([g.transpose(0, 2, 1, 3).reshape(B, T, C) for g in (dq, dk, dv)], axis=-1)
        return self.c_attn.backward(dqkv)                                # qkv = c_attn(x)      (B,T,C)


class MLP(Module):
    """Position-wise feed-forward: ``c_proj(gelu(c_fc(x)))``, C -> 4C -> C, GELU in GPT-2's tanh form.

    ``c_fc`` is a :class:`LinearGELU` (Linear's parameters, one op with its GELU), so a backend
    with a fused kernel adds the bias and applies GELU while each output block is in cache.
    Shapes: x (B, T, C) -> y (B, T, C); ``backward``: dy (B, T, C) -> dx (B, T, C).
    """

    def __init__(self, cfg: GPTConfig, rng=None):
        super().__init__()
        C = cfg.n_embd
        rng = module_rng(rng)
        self.c_fc = LinearGELU(C, 4 * C, bias=cfg.bias, approximate="tanh", rng=rng)
        self.c_proj = Linear(4 * C, C, bias=cfg.bias, rng=rng)
        self.dropout = Dropout(cfg.dropout, rng=rng)

    def forward(self, x):
        return self.dropout(self.c_proj(self.c_fc(x)))                 # (B,T,C) -> (B,T,4C) -> (B,T,C)

    def backward(self, dy):
        return self.c_fc.backward(self.c_proj.backward(self.dropout.backward(dy)))   # y = dropout(c_proj(c_fc(x)))


class Block(Module):
    """One pre-LN Transformer decoder block: ``h = x + attn(ln_1(x)); out = h + mlp(ln_2(h))``.

    Shapes: x (B, T, C) -> out (B, T, C); ``backward``: dout (B, T, C) -> dx (B, T, C).
    """

    def __init__(self, cfg: GPTConfig, rng=None):
        super().__init__()
        C = cfg.n_embd
        rng = module_rng(rng)
        self.ln_1 = LayerNorm(C, eps=cfg.layer_norm_epsilon, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg, rng)
        self.ln_2 = LayerNorm(C, eps=cfg.layer_norm_epsilon, bias=cfg.bias)
        self.mlp = MLP(cfg, rng)

    def forward(self, x, kv: KVCache | None = None, layer: int = 0):
        h = x + self.attn(self.ln_1(x), kv, layer)                       # (B,T,C)
        return h + self.mlp(self.ln_2(h))                                # (B,T,C)

    def backward(self, dout):
        dh = dout + self.ln_2.backward(self.mlp.backward(dout))          # out = h + mlp(ln_2(h))
        return dh + self.ln_1.backward(self.attn.backward(dh))           # h = x + attn(ln_1(x))


class _Transformer(Module):
    """The ``transformer.`` namespace of GPT2LMHeadModel: wte, wpe, drop, h.{i}, ln_f."""

    def __init__(self, cfg: GPTConfig, rng=None):
        super().__init__()
        self.wte = Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = Embedding(cfg.block_size, cfg.n_embd)
        self.drop = Dropout(cfg.dropout, rng=rng)
        self.h = ModuleList([Block(cfg, rng) for _ in range(cfg.n_layer)])
        self.ln_f = LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon, bias=cfg.bias)


class _HeadCache(NamedTuple):
    linear: object    # LinearCache of logits = x wte^T
    shape: tuple      # (B, T, V) of the logits: what dlogits must be
    dtype: object     # the logits' dtype


class GPT(Module):
    """GPT-2-style language model.

    ``logits = model(idx)``: idx (B, T) integer token ids, T <= block_size -> logits (B, T, V).
    ``model.backward(dlogits)``: dlogits (B, T, V); accumulates every parameter's ``.grad``.
    ``model.generate(...)``: autoregressive decoding with a KV cache.
    ``rng``: None (tinylm's global generator), an int seed or a Generator: one stream serves the
    initialisation and every dropout, so a seed gives a reproducible model with distinct layers.
    """

    def __init__(self, config: GPTConfig, rng=None):
        super().__init__()
        check_config(config, GPTConfig)
        self.config = config
        rng = module_rng(rng)
        self.transformer = _Transformer(config, rng)
        self._init_weights(rng)
        self._cache = None

    def _init_weights(self, rng):
        # GPT-2's scheme: N(0, 0.02) for weights, zeros for biases, and the residual output
        # projections scaled by 1/sqrt(2 n_layer) so the residual stream's variance does not
        # grow with depth (two residual additions per block).
        cfg = self.config
        for name, p in self.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                continue                                                 # LayerNorm: ones (already)
            if name.endswith(".bias"):
                p.data = init.zeros(p.shape, p.dtype)
            elif name.endswith("c_proj.weight"):
                p.data = init.normal(p.shape, 0.02 / math.sqrt(2 * cfg.n_layer), p.dtype, rng)
            else:
                p.data = init.normal(p.shape, 0.02, p.dtype, rng)

    @property
    def lm_head_weight(self):
        """The LM head's weight: ``transformer.wte.weight`` itself (tied)."""
        return self.transformer.wte.weight

    def forward(self, idx, kv: KVCache | None = None):
        tr, cfg = self.transformer, self.config
        xp = array_module(("idx", idx))
        check_shape("idx", idx, ("B", "T"))
        check_index_range("idx", idx, cfg.vocab_size, what="token ids")
        B, T = idx.shape
        if T < 1:
            raise ValueError(f"idx: expected at least one token (T >= 1), got shape {tuple(idx.shape)}")
        if kv is not None:
            self._check_kv(kv, B)
        t0 = 0 if kv is None else kv.length
        if t0 + T > cfg.block_size:
            if t0:
                raise ValueError(f"idx, kv: sequence length {t0 + T} ({t0} cached in kv + {T} new in idx) exceeds "
                                 f"block_size={cfg.block_size}, the cache's capacity; start a new cache "
                                 f"(model.new_kv_cache(B)) on the last {cfg.block_size} tokens")
            raise ValueError(f"idx: sequence length {T} exceeds block_size={cfg.block_size}")
        pos = xp.arange(t0, t0 + T)[None, :]                              # (1,T)
        x = tr.drop(tr.wte(idx) + tr.wpe(pos))                           # (B,T,C)
        for i, block in enumerate(tr.h):
            x = block(x, kv, i)                                          # (B,T,C)
        x = tr.ln_f(x)                                                   # (B,T,C)
        logits, lin = linear_forward(x, self.lm_head_weight.data)        # (B,T,C) @ (C,V) -> (B,T,V)
        if kv is not None:
            kv.length += T
        self._cache = _HeadCache(lin, tuple(logits.shape), logits.dtype)
        return logits

    def _check_kv(self, kv, B: int) -> None:
        """``kv`` must be a cache from this model's ``new_kv_cache(B)`` (same layers, heads, width, dtype)."""
        cfg = self.config
        if not isinstance(kv, KVCache):
            raise TypeError(f"kv: expected None or a KVCache from model.new_kv_cache(batch_size), "
                            f"got {type(kv).__name__}")
        H, D = cfg.n_head, cfg.n_embd // cfg.n_head
        want = (cfg.n_layer, H, cfg.block_size, D, self.lm_head_weight.dtype)
        got = (len(kv.k), kv.k[0].shape[1], kv.k[0].shape[2], kv.k[0].shape[3], kv.k[0].dtype)
        if got != want:
            raise ValueError(f"kv: the cache was built for another model (n_layer, n_head, block_size, head width, "
                             f"dtype = {got}), this one needs {want}; make it with this model's new_kv_cache")
        if kv.k[0].shape[0] != B:
            raise ValueError(f"kv: the cache was built for batch size {kv.k[0].shape[0]} "
                             f"(new_kv_cache({kv.k[0].shape[0]})), got idx with B={B}")

    def backward(self, dlogits):
        cache = self._need_cache(self._cache)
        check_grad("dlogits", dlogits, cache.shape, cache.dtype)
        tr = self.transformer
        dx, dwte, _ = linear_backward(dlogits, cache.linear)             # logits = x wte^T
        self.lm_head_weight.accumulate(dwte)                             # tied: adds to wte's grad
        dx = tr.ln_f.backward(dx)                                        # x = ln_f(x)         (B,T,C)
        for block in reversed(tr.h):
            dx = block.backward(dx)                                      # x = block(x, kv, i)  (B,T,C)
        dx = tr.drop.backward(dx)                                        # x = drop(wte(idx) + wpe(pos))
        tr.wte.backward(dx)                                              # wte(idx): adds to wte's grad
        tr.wpe.backward(dx.sum(axis=0, keepdims=True))                   # pos is shared by the batch
        return None                                                      # token ids have no gradient

    # --- inference ---
    def new_kv_cache(self, batch_size: int) -> KVCache:
        """An empty cache for ``batch_size`` rows, to pass as ``model(idx, kv)`` with idx (batch_size, T)."""
        cfg = self.config
        batch_size = check_positive_int("batch_size", batch_size)
        return KVCache(cfg.n_layer, batch_size, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head,
                       self.lm_head_weight.dtype)

    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, do_sample: bool = False, eos_token_id: int | None = None,
                 seed=None, use_cache: bool = True):
        """Continue each row of ``idx`` (B, T0) by ``max_new_tokens`` tokens -> (B, T0 + max_new_tokens).

        Greedy (``do_sample=False``) takes the argmax; sampling draws from softmax(logits / temperature)
        restricted to the ``top_k`` largest and/or the smallest set with probability >= ``top_p``,
        with a generator seeded by ``seed`` (an int or a numpy Generator: reproducible; None: tinylm's
        global generator, which ``tinylm.manual_seed`` seeds). A row that has produced ``eos_token_id``
        keeps emitting it. With ``use_cache`` each step feeds only the new token and reuses the keys and
        values of earlier ones; once the context fills ``block_size`` the window slides and the cache is
        rebuilt each step from the last ``block_size`` tokens (so both paths give identical tokens).
        """
        from tinylm.models.sampling import check_sampling_args, sample_next

        xp = array_module(("idx", idx))
        check_shape("idx", idx, ("B", "T"))
        if idx.shape[1] < 1:
            raise ValueError("idx: need at least one token to condition on, got shape "
                             f"{tuple(idx.shape)}")
        check_index_range("idx", idx, self.config.vocab_size, what="token ids")
        if isinstance(max_new_tokens, (bool, np.bool_)) or not isinstance(max_new_tokens, (int, np.integer)) \
                or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens: expected an int >= 0, got {max_new_tokens!r}")
        check_sampling_args(temperature, top_k, top_p, do_sample)
        use_cache = check_flag("use_cache", use_cache)
        V = self.config.vocab_size
        if eos_token_id is not None:
            if isinstance(eos_token_id, (bool, np.bool_)) or not isinstance(eos_token_id, (int, np.integer)) \
                    or not 0 <= eos_token_id < V:
                raise ValueError(f"eos_token_id: expected None or an int in [0, {V}) (vocab_size), "
                                 f"got {eos_token_id!r}")
            eos_token_id = int(eos_token_id)
        rng = make_rng(seed, name="seed")                              # checks seed: None, an int or a Generator
        was_training = self.training
        self.eval()
        bs = self.config.block_size
        out = idx
        done = xp.zeros(idx.shape[0], dtype=bool)
        kv = None
        try:
            for _ in range(max_new_tokens):
                if not use_cache:
                    logits = self.forward(out[:, -bs:])[:, -1]
                elif kv is None or kv.length + 1 > bs:                     # (re)build the cache
                    kv = self.new_kv_cache(out.shape[0])
                    logits = self.forward(out[:, -bs:], kv)[:, -1]
                else:
                    logits = self.forward(out[:, -1:], kv)[:, -1]             # (B,V)
                nxt = sample_next(logits, temperature=temperature, top_k=top_k, top_p=top_p,
                                  do_sample=do_sample, rng=rng)              # (B,)
                if eos_token_id is not None:
                    nxt = xp.where(done, eos_token_id, nxt)
                    done = done | (nxt == eos_token_id)
                out = xp.concatenate([out, nxt[:, None].astype(out.dtype)], axis=1)
                if eos_token_id is not None and bool(done.all()):
                    break
        finally:
            self.train(was_training)
        return out

    # --- checkpoints (Hugging Face GPT-2 format) ---
    @classmethod
    def from_pretrained(cls, path, dtype=np.float32) -> GPT:
        """Load a local Hugging Face GPT-2 directory (``config.json`` + ``model.safetensors``)."""
        from tinylm.models.gpt_hf import load_gpt2
        return load_gpt2(cls, path, dtype)

    def save_pretrained(self, path) -> None:
        """Write ``config.json`` + ``model.safetensors`` that ``GPT2LMHeadModel.from_pretrained`` loads."""
        from tinylm.models.gpt_hf import save_gpt2
        save_gpt2(self, path)
