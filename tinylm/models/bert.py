"""BERT: a bidirectional Transformer encoder with post-LN layers, forward and backward written out.

    input_ids (B, T) --word + position + token-type embeddings, LayerNorm, dropout--> x (B, T, C)
      --[BertLayer] x num_hidden_layers--> hidden (B, T, C) --pooler: tanh(dense(hidden[:, 0]))--> (B, C)

    BertLayer (post-LN):   a   = LN_1(x + dropout(attention.output.dense(self_attention(x))))
                           out = LN_2(a + dropout(output.dense(gelu(intermediate.dense(a)))))

Every query sees every real key (no causal mask); ``attention_mask`` (B, T), 1 = token and
0 = padding, hides the padding keys. Padded positions still get hidden states (they attend to the
real tokens), exactly as in Hugging Face's ``BertModel``.

Heads, each a :class:`~tinylm.nn.module.Module` with ``forward`` and ``backward``:

* :class:`BertForMaskedLM`: transform (dense, GELU, LayerNorm), then a decoder whose weight IS
  the word-embedding matrix (tied: one Parameter, its gradient collects both uses) plus a bias
  -> logits (B, T, V).
* :class:`BertForSequenceClassification`: dropout + linear on the pooled [CLS] vector -> (B, num_labels).
* :class:`BertForTokenClassification`: dropout + linear on every hidden state -> (B, T, num_labels).
* :class:`BertForQuestionAnswering`: linear to two scores per token -> start and end logits (B, T) each.

Sentence embeddings: :func:`mean_pooling_forward` / :func:`mean_pooling_backward` average the hidden
states of the real tokens (sentence-transformers' "mean pooling"); :func:`sentence_embeddings` adds
the L2 normalisation for inference.

Parameter names, layouts, defaults and initialisation are those of Hugging Face's ``BertModel`` /
``BertFor*`` (``embeddings.word_embeddings.weight``, ``encoder.layer.0.attention.self.query.weight``,
``cls.predictions.transform.dense.weight``, ...; heads prefix the encoder with ``bert.``), so
:mod:`tinylm.models.bert_hf` reads and writes their checkpoints without renaming anything.

Derivation of the wiring: derivations/bert.md (pieces: derivations/linear.md, derivations/layernorm.md,
derivations/activations.md, derivations/attention.md, derivations/embedding.md, derivations/dropout.md).
Tests: tests/test_bert.py (gradient checks, errors, the MiniLM checkpoint), tests/test_bert_hf.py
(against transformers and sentence-transformers).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

from tinylm._checks import (check_choice, check_config, check_flag, check_float, check_grad, check_head_split,
                            check_index_range, check_int, check_positive_float, check_positive_int, check_probability,
                            check_shape, is_real)
from tinylm.backend import array_module, to_numpy
from tinylm.nn import init
from tinylm.nn.activation import GELU, ReLU, Tanh
from tinylm.nn.container import ModuleList
from tinylm.nn.dropout import Dropout
from tinylm.nn.embedding import Embedding
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module, Parameter
from tinylm.nn.normalization import LayerNorm
from tinylm.ops.attention import attention_backward, attention_forward
from tinylm.ops.linear import linear_backward, linear_forward
from tinylm.random import module_rng

__all__ = ["BertConfig", "BERT", "BertModel", "BertEmbeddings", "BertSelfAttention", "BertAttention",
           "BertIntermediate", "BertOutput", "BertLayer", "BertEncoder", "BertPooler",
           "BertPredictionHeadTransform", "BertLMPredictionHead", "BertForMaskedLM",
           "BertForSequenceClassification", "BertForTokenClassification", "BertForQuestionAnswering",
           "MeanPoolingCache", "mean_pooling_forward", "mean_pooling_backward", "mean_pooling",
           "sentence_embeddings", "HIDDEN_ACTS"]

# Hugging Face's activation names -> GELU's ``approximate`` argument ("none": exact erf form); None = ReLU.
HIDDEN_ACTS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "relu": None}


@dataclass
class BertConfig:
    """Hyper-parameters of :class:`BERT`, with Hugging Face's names and defaults (bert-base-uncased).

    ``hidden_act`` "gelu" is the exact erf GELU (BERT's); "gelu_new" / "gelu_pytorch_tanh" the tanh
    form, "relu" ReLU. ``num_labels`` sizes the classification heads, ``classifier_dropout`` (None:
    ``hidden_dropout_prob``) their dropout. Unknown config.json keys live in ``extra`` for round trips.
    """

    vocab_size: int = 30522
    hidden_size: int = 768                 # C
    num_hidden_layers: int = 12
    num_attention_heads: int = 12          # H, each of width D = C / H
    intermediate_size: int = 3072          # the feed-forward width, 4C in BERT
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1       # embeddings and both residual branches
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512     # longest input
    type_vocab_size: int = 2               # segments A and B
    initializer_range: float = 0.02        # std of the N(0, std^2) init of weights and embeddings
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0                  # its word-embedding row starts at zero and gets no gradient
    classifier_dropout: float | None = None
    num_labels: int = 2
    extra: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size", "num_labels"):
            check_positive_int(name, getattr(self, name))
        check_head_split("hidden_size", self.hidden_size, "num_attention_heads", self.num_attention_heads)
        check_choice("hidden_act", self.hidden_act, tuple(HIDDEN_ACTS))
        check_probability("hidden_dropout_prob", self.hidden_dropout_prob)
        check_probability("attention_probs_dropout_prob", self.attention_probs_dropout_prob)
        if self.classifier_dropout is not None:
            check_probability("classifier_dropout", self.classifier_dropout)
        if isinstance(self.pad_token_id, bool) or not isinstance(self.pad_token_id, int) \
                or not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id: expected an int in [0, {self.vocab_size}), got {self.pad_token_id!r}")
        check_positive_float("layer_norm_eps", self.layer_norm_eps)    # as LayerNorm's own eps check
        _check_real("initializer_range", self.initializer_range, ">= 0 (the std of the initial weights)",
                    lambda v: v >= 0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d


def _check_real(name: str, v, what: str, ok) -> None:
    if not (is_real(v) and math.isfinite(v) and ok(v)):
        raise ValueError(f"{name}: expected a finite number {what}, got {v!r}")


def _activation(name: str) -> Module:
    approximate = HIDDEN_ACTS[name]
    return ReLU() if approximate is None else GELU(approximate=approximate)



def _check_ids(name: str, ids, high: int, dims: dict, what: str) -> None:
    array_module((name, ids))
    check_int(name, ids)
    check_shape(name, ids, ("B", "T"), dims)
    check_index_range(name, ids, high, what=what)


def _key_padding_mask(attention_mask, dims: dict):
    """HF's ``attention_mask`` (B, T), 1 = token, 0 = padding -> attention's (B, T) bool, True = padding."""
    if attention_mask is None:
        return None
    array_module(("attention_mask", attention_mask))
    check_shape("attention_mask", attention_mask, ("B", "T"), dims)
    kind = getattr(attention_mask.dtype, "kind", None)
    if kind not in "biuf":
        raise TypeError(f"attention_mask: expected an int or bool array of 1 (token) and 0 (padding), "
                        f"got {attention_mask.dtype}")
    if kind != "b":
        m = to_numpy(attention_mask)
        bad = np.unique(m[(m != 0) & (m != 1)])
        if bad.size:
            raise ValueError(f"attention_mask: expected only 1 (token) and 0 (padding), got {bad[0].item()!r}")
    return attention_mask == 0


# ----------------------------------------------------------------------------------------------
# The encoder
# ----------------------------------------------------------------------------------------------

class BertEmbeddings(Module):
    """``x = dropout(LayerNorm(word[input_ids] + position[t] + token_type[token_type_ids]))``.

    Shapes: input_ids (B, T) in [0, V), token_type_ids (B, T) in [0, type_vocab_size) or None
    (all segment 0) -> x (B, T, C); T <= max_position_embeddings.
    ``backward(dx)`` returns None (ids have no gradient) and accumulates into the three tables and
    the LayerNorm.
    """

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        C = config.hidden_size
        self.config = config
        self.word_embeddings = Embedding(config.vocab_size, C, padding_idx=config.pad_token_id, rng=rng)
        self.position_embeddings = Embedding(config.max_position_embeddings, C, rng=rng)
        self.token_type_embeddings = Embedding(config.type_vocab_size, C, rng=rng)
        self.LayerNorm = LayerNorm(C, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob, rng=rng)

    def forward(self, input_ids, token_type_ids=None):
        cfg = self.config
        xp = array_module(("input_ids", input_ids), ("token_type_ids", token_type_ids))
        dims: dict[str, int] = {}
        _check_ids("input_ids", input_ids, cfg.vocab_size, dims, "token ids")
        B, T = input_ids.shape
        if T > cfg.max_position_embeddings:
            raise ValueError(f"input_ids: sequence length {T} exceeds max_position_embeddings="
                             f"{cfg.max_position_embeddings}; truncate the input (e.g. the tokenizer's "
                             f"max_length) or split it into windows")
        if token_type_ids is None:
            token_type_ids = xp.zeros((B, T), dtype=np.int64)              # one segment
        else:
            _check_ids("token_type_ids", token_type_ids, cfg.type_vocab_size, dims, "segment ids")
        positions = xp.arange(T)[None, :]                                  # (1,T), shared by the batch
        x = (self.word_embeddings(input_ids)                               # (B,T) -> (B,T,C)
             + self.position_embeddings(positions)                         # (1,T) -> (1,T,C)
             + self.token_type_embeddings(token_type_ids))                 # (B,T) -> (B,T,C)
        return self.dropout(self.LayerNorm(x))                             # (B,T,C)

    def backward(self, dout):
        dx = self.LayerNorm.backward(self.dropout.backward(dout))          # out = dropout(LN(x))      (B,T,C)
        self.word_embeddings.backward(dx)                                  # x = word[ids] + ...
        self.position_embeddings.backward(dx.sum(axis=0, keepdims=True))   # ... + pos[t]: summed over the batch
        self.token_type_embeddings.backward(dx)                            # ... + type[token_type_ids]
        return None                                                        # ids have no gradient


class BertSelfAttention(Module):
    """Multi-head self-attention with separate ``query``, ``key``, ``value`` projections (C -> C).

    Shapes: x (B, T, C), key_padding_mask (B, T) bool (True = padding) or None -> context (B, T, C),
    the heads' outputs side by side (no output projection: that is ``BertAttention.output.dense``).
    ``backward(dcontext)``: dcontext (B, T, C) -> dx (B, T, C).
    """

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        C = config.hidden_size
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = C // config.num_attention_heads
        self.dropout_p = config.attention_probs_dropout_prob
        self.query = Linear(C, C, rng=rng)
        self.key = Linear(C, C, rng=rng)
        self.value = Linear(C, C, rng=rng)
        self.rng = rng
        self._cache = None

    def _split_heads(self, x):
        B, T, C = x.shape
        return x.reshape(B, T, self.num_attention_heads, self.attention_head_size).transpose(0, 2, 1, 3)

    def forward(self, x, key_padding_mask=None):
        q = self._split_heads(self.query(x))                               # (B,T,C) -> (B,H,T,D)
        k = self._split_heads(self.key(x))                                 # (B,T,C) -> (B,H,T,D)
        v = self._split_heads(self.value(x))                               # (B,T,C) -> (B,H,T,D)
        o, self._cache = attention_forward(q, k, v, key_padding_mask=key_padding_mask,
                                           dropout_p=self.dropout_p if self.training else 0.0, rng=self.rng)
        B, H, T, D = o.shape
        return o.transpose(0, 2, 1, 3).reshape(B, T, H * D)                # (B,H,T,D) -> (B,T,C)

    def backward(self, dcontext):
        cache = self._need_cache(self._cache)
        do = self._split_heads(dcontext)                                   # context = merge(o)        (B,H,T,D)
        dq, dk, dv = attention_backward(do, cache)                         # o = attn(q, k, v)         3 x (B,H,T,D)
        B, H, T, D = dq.shape
        merge = lambda g: g.transpose(0, 2, 1, 3).reshape(B, T, H * D)     # noqa: E731  (B,H,T,D) -> (B,T,C)
        # q, k, v = split(query(x)), split(key(x)), split(value(x)): x's gradient is the sum of the three.
        return self.query.backward(merge(dq)) + self.key.backward(merge(dk)) + self.value.backward(merge(dv))


class BertOutput(Module):
    """The post-LN residual step ``out = LayerNorm(dropout(dense(h)) + residual)``.

    Hugging Face has this class twice, as ``BertSelfOutput`` (dense C -> C, after attention) and
    ``BertOutput`` (dense intermediate_size -> C, after the feed-forward); the parameter names are
    the same (``dense``, ``LayerNorm``).
    Shapes: h (B, T, in_features), residual (B, T, C) -> out (B, T, C).
    ``backward(dout)`` returns ``(dh, dresidual)``.
    """

    def __init__(self, config: BertConfig, in_features: int, rng=None):
        super().__init__()
        self.dense = Linear(in_features, config.hidden_size, rng=rng)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob, rng=rng)

    def forward(self, h, residual):
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)     # (B,T,in) -> (B,T,C)

    def backward(self, dout):
        dsum = self.LayerNorm.backward(dout)                               # out = LN(s)               (B,T,C)
        dh = self.dense.backward(self.dropout.backward(dsum))              # s = dropout(dense(h)) + r
        return dh, dsum                                                    # s = ... + r  =>  dr = ds


class BertAttention(Module):
    """Self-attention and its residual step: ``a = LayerNorm(x + dropout(dense(self(x))))``.

    Shapes: x (B, T, C), key_padding_mask (B, T) bool or None -> a (B, T, C); ``backward``: da (B, T, C)
    -> dx (B, T, C).
    """

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        self.self = BertSelfAttention(config, rng)
        self.output = BertOutput(config, config.hidden_size, rng)

    def forward(self, x, key_padding_mask=None):
        return self.output(self.self(x, key_padding_mask), x)             # (B,T,C)

    def backward(self, da):
        dcontext, dx_skip = self.output.backward(da)                       # a = LN(dense(ctx) + x)
        return self.self.backward(dcontext) + dx_skip                      # ctx = self(x): x's second use


class BertIntermediate(Module):
    """The feed-forward's first half: ``act(dense(a))``, C -> intermediate_size.

    Shapes (I = intermediate_size): a (B, T, C) -> h (B, T, I); ``backward``: dh (B, T, I) -> da (B, T, C).
    """

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size, rng=rng)
        self.intermediate_act_fn = _activation(config.hidden_act)

    def forward(self, a):
        return self.intermediate_act_fn(self.dense(a))                     # (B,T,C) -> (B,T,I)

    def backward(self, dh):
        return self.dense.backward(self.intermediate_act_fn.backward(dh))  # (B,T,I) -> (B,T,C)


class BertLayer(Module):
    """One post-LN encoder layer::

        a   = LN_1(x + dropout(W_o selfattn(x)))                 (attention)
        out = LN_2(a + dropout(W_2 gelu(W_1 a)))                 (intermediate, output)

    Shapes: x (B, T, C), key_padding_mask (B, T) bool or None -> out (B, T, C); ``backward``: dout
    (B, T, C) -> dx (B, T, C).
    """

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        self.attention = BertAttention(config, rng)
        self.intermediate = BertIntermediate(config, rng)
        self.output = BertOutput(config, config.intermediate_size, rng)

    def forward(self, x, key_padding_mask=None):
        a = self.attention(x, key_padding_mask)                            # (B,T,C)
        return self.output(self.intermediate(a), a)                        # (B,T,C) -> (B,T,I) -> (B,T,C)

    def backward(self, dout):
        dh, da_skip = self.output.backward(dout)                           # out = LN_2(W_2 h + a)
        da = self.intermediate.backward(dh) + da_skip                      # h = gelu(W_1 a): a's second use
        return self.attention.backward(da)                                 # a = LN_1(... + x)


class BertEncoder(Module):
    """The stack ``encoder.layer.{i}``. Shapes: x (B, T, C), key_padding_mask (B, T) or None -> (B, T, C).

    ``backward``: dout (B, T, C) -> dx (B, T, C).
    """

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        self.layer = ModuleList([BertLayer(config, rng) for _ in range(config.num_hidden_layers)])

    def forward(self, x, key_padding_mask=None):
        for layer in self.layer:
            x = layer(x, key_padding_mask)                                 # (B,T,C)
        return x

    def backward(self, dout):
        for layer in reversed(self.layer):
            dout = layer.backward(dout)                                    # x = layer(x, key_padding_mask)
        return dout


class BertPooler(Module):
    """``pooled = tanh(dense(hidden[:, 0]))``: the [CLS] position, through a C -> C layer.

    Shapes: hidden (B, T, C) -> pooled (B, C); ``backward(dpooled)`` -> dhidden (B, T, C), zero
    except at position 0.
    """

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size, rng=rng)
        self.activation = Tanh()
        self._shape = None

    def forward(self, hidden):
        self._shape = tuple(hidden.shape)
        return self.activation(self.dense(hidden[:, 0]))                   # (B,T,C) -> (B,C)

    def backward(self, dpooled):
        shape = self._need_cache(self._shape)
        xp = array_module(("dpooled", dpooled))
        dfirst = self.dense.backward(self.activation.backward(dpooled))    # pooled = tanh(dense(h0))  (B,C)
        dhidden = xp.zeros(shape, dtype=dfirst.dtype)                      # (B,T,C): only position 0 was read
        dhidden[:, 0] = dfirst                                             # h0 = hidden[:, 0]
        return dhidden


def _init_bert_weights(model: Module, config: BertConfig, rng) -> None:
    """Hugging Face's BERT init: Linear and Embedding weights N(0, initializer_range^2), biases 0,
    the padding row of each embedding 0, LayerNorm weight 1 and bias 0 (already so)."""
    std = config.initializer_range
    for _, m in model.named_modules():
        if isinstance(m, Linear):
            m.weight.data = init.normal(m.weight.shape, std, m.weight.dtype, rng)
            if m.bias is not None:
                m.bias.data = init.zeros(m.bias.shape, m.bias.dtype)
        elif isinstance(m, Embedding):
            m.weight.data = init.normal(m.weight.shape, std, m.weight.dtype, rng)
            if m.padding_idx is not None:
                m.weight.data[m.padding_idx] = 0


class BERT(Module):
    """The BERT encoder (Hugging Face's ``BertModel``).

    ``hidden = model(input_ids, attention_mask=None, token_type_ids=None)``:
    input_ids (B, T) integer token ids in [0, V), T <= max_position_embeddings;
    attention_mask (B, T) 1 = token, 0 = padding (None: no padding); token_type_ids (B, T) segment
    ids (None: all 0) -> hidden (B, T, C), the last layer's hidden states. With the pooler
    (``add_pooling_layer=True``) the forward also sets ``model.pooler_output`` (B, C).

    ``model.backward(dhidden, dpooled=None)``: gradients of the hidden states (B, T, C) and/or of
    the pooled output (B, C) (either may be None); accumulates every parameter's ``.grad`` and
    returns None (token ids have no gradient).

    ``BERT.from_pretrained(dir)`` / ``model.save_pretrained(dir)``: Hugging Face checkpoints
    (see :mod:`tinylm.models.bert_hf`).
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True, rng=None):
        super().__init__()
        check_config(config, BertConfig)
        add_pooling_layer = check_flag("add_pooling_layer", add_pooling_layer)
        rng = module_rng(rng)
        self.config = config
        self.embeddings = BertEmbeddings(config, rng)
        self.encoder = BertEncoder(config, rng)
        self.pooler = BertPooler(config, rng) if add_pooling_layer else None
        self.pooler_output = None
        self._shape = self._dtype = None
        _init_bert_weights(self, config, rng)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        dims = check_shape("input_ids", input_ids, ("B", "T"))
        key_padding_mask = _key_padding_mask(attention_mask, dims)        # (B,T) bool, True = padding
        x = self.embeddings(input_ids, token_type_ids)                     # (B,T) -> (B,T,C)
        hidden = self.encoder(x, key_padding_mask)                         # (B,T,C)
        self.pooler_output = None if self.pooler is None else self.pooler(hidden)   # (B,C)
        self._shape, self._dtype = tuple(hidden.shape), hidden.dtype
        return hidden

    def backward(self, dhidden, dpooled=None):
        shape = self._need_cache(self._shape)
        if dhidden is None and dpooled is None:
            raise ValueError("backward: pass dhidden (B, T, C), dpooled (B, C), or both")
        if dhidden is not None:
            check_grad("dhidden", dhidden, shape, self._dtype)
        if dpooled is not None:
            if self.pooler is None:
                raise ValueError("dpooled: this model has no pooler (add_pooling_layer=False)")
            check_grad("dpooled", dpooled, (shape[0], shape[2]), self._dtype)
            dfrom_pool = self.pooler.backward(dpooled)                     # pooled = pooler(hidden)
            dhidden = dfrom_pool if dhidden is None else dhidden + dfrom_pool   # hidden: returned and pooled
        dx = self.encoder.backward(dhidden)                                # hidden = encoder(x)
        self.embeddings.backward(dx)                                       # x = embeddings(ids)
        return None

    # --- checkpoints (Hugging Face BERT format) ---
    @classmethod
    def from_pretrained(cls, path, dtype=np.float32, **config_overrides):
        """Load a local Hugging Face BERT directory (``config.json`` + ``model.safetensors``).

        ``config_overrides`` replace config.json values (e.g. ``num_labels=3``,
        ``hidden_dropout_prob=0.0``). See :func:`tinylm.models.bert_hf.load_bert`.
        """
        from tinylm.models.bert_hf import load_bert
        return load_bert(cls, path, dtype, **config_overrides)

    def save_pretrained(self, path) -> None:
        """Write ``config.json`` + ``model.safetensors`` that transformers' ``BertModel`` (or the
        matching ``BertFor...``) loads."""
        from tinylm.models.bert_hf import save_bert
        save_bert(self, path)


BertModel = BERT     # Hugging Face's name


# ----------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------

class _Head(Module):
    """What the task heads share: a ``bert`` encoder and Hugging Face checkpoint I/O."""

    @classmethod
    def from_pretrained(cls, path, dtype=np.float32, **config_overrides):
        """Load a Hugging Face checkpoint of this head, or of any BERT (e.g. a plain ``BertModel`` such
        as MiniLM): the encoder comes from the file, a head the file lacks is freshly initialised
        (with a warning). ``config_overrides`` as in :meth:`BERT.from_pretrained` (e.g. ``num_labels``)."""
        from tinylm.models.bert_hf import load_bert
        return load_bert(cls, path, dtype, **config_overrides)

    def save_pretrained(self, path) -> None:
        """Write a checkpoint that transformers' ``BertFor...`` of the same name loads."""
        from tinylm.models.bert_hf import save_bert
        save_bert(self, path)

    def _encode(self, input_ids, attention_mask, token_type_ids):
        return self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)



class BertPredictionHeadTransform(Module):
    """``LayerNorm(act(dense(hidden)))``, C -> C: the MLM head's first step.

    Shapes: hidden (B, T, C) -> out (B, T, C); ``backward``: dout (B, T, C) -> dhidden (B, T, C).
    """

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size, rng=rng)
        self.transform_act_fn = _activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden)))   # (B,T,C)

    def backward(self, dout):
        # out = LayerNorm(act(dense(hidden)))                                                (B,T,C)
        return self.dense.backward(self.transform_act_fn.backward(self.LayerNorm.backward(dout)))


class _PredictionCache(NamedTuple):
    decoder: object    # LinearCache of logits = u E^T + bias: holds u (for dE) and E (for du)
    shape: tuple       # (B, T, V) of the logits: what dlogits must be
    dtype: object      # the logits' dtype


class BertLMPredictionHead(Module):
    """Masked-LM scores: ``logits = transform(hidden) E^T + bias`` with E the word-embedding matrix.

    ``decoder_weight`` is the :class:`Parameter` of ``embeddings.word_embeddings.weight`` itself
    (V, C), not a copy: the head's gradient ``dlogits^T u`` is accumulated into it, on top of the
    embedding lookup's. ``bias`` (V,) starts at zero.
    Shapes: hidden (B, T, C) -> logits (B, T, V); ``backward(dlogits)`` -> dhidden (B, T, C).
    """

    def __init__(self, config: BertConfig, decoder_weight: Parameter, rng=None):
        super().__init__()
        V, C = config.vocab_size, config.hidden_size
        if decoder_weight.shape != (V, C):
            raise ValueError(f"decoder_weight: expected shape ({V}, {C}) (vocab_size, hidden_size), "
                             f"got {decoder_weight.shape}")
        self.transform = BertPredictionHeadTransform(config, rng)
        self.decoder_weight = decoder_weight
        self.bias = Parameter(init.zeros((V,), decoder_weight.dtype))
        self._cache = None

    def forward(self, hidden):
        u = self.transform(hidden)                                         # (B,T,C)
        logits, lin = linear_forward(u, self.decoder_weight.data, self.bias.data)   # (B,T,C) @ (C,V) -> (B,T,V)
        self._cache = _PredictionCache(lin, tuple(logits.shape), logits.dtype)
        return logits

    def backward(self, dlogits):
        cache = self._need_cache(self._cache)
        check_grad("dlogits", dlogits, cache.shape, cache.dtype)
        du, dE, dbias = linear_backward(dlogits, cache.decoder)            # logits = u E^T + bias
        self.decoder_weight.accumulate(dE)                                 # tied: adds to the embedding's grad
        self.bias.accumulate(dbias)
        return self.transform.backward(du)                                 # u = transform(hidden)


class _Cls(Module):
    """The ``cls.`` namespace of Hugging Face's BertForMaskedLM, so names match: ``cls.predictions.*``."""

    def __init__(self, predictions: BertLMPredictionHead):
        super().__init__()
        self.predictions = predictions


class BertForMaskedLM(_Head):
    """BERT with the masked-LM head (Hugging Face's ``BertForMaskedLM``; no pooler).

    ``logits = model(input_ids, attention_mask=None, token_type_ids=None)`` -> (B, T, V);
    ``model.backward(dlogits)`` accumulates every gradient (the tied word embeddings collect the
    decoder's share and the lookup's). Train with ``CrossEntropyLoss()`` against labels that are
    -100 except at the masked positions (:mod:`tinylm.data.mlm`).
    """

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        check_config(config, BertConfig)
        rng = module_rng(rng)
        self.config = config
        self.bert = BERT(config, add_pooling_layer=False, rng=rng)
        self.cls = _Cls(BertLMPredictionHead(config, self.bert.embeddings.word_embeddings.weight, rng))
        _init_bert_weights(self.cls, config, rng)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        hidden = self._encode(input_ids, attention_mask, token_type_ids)   # (B,T,C)
        return self._remember_output(self.cls.predictions(hidden))                # (B,T,V)

    def backward(self, dlogits):
        self._check_output_grad("dlogits", dlogits)
        self.bert.backward(self.cls.predictions.backward(dlogits))         # logits = predictions(hidden)
        return None


class _ClassifierHead(_Head):
    """BERT + dropout + ``classifier`` Linear(C, num_labels): what sequence and token
    classification share; subclasses say whether the pooler is built and what they classify."""

    add_pooling_layer: bool

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        check_config(config, BertConfig)
        rng = module_rng(rng)
        self.config = config
        self.num_labels = config.num_labels
        self.bert = BERT(config, add_pooling_layer=self.add_pooling_layer, rng=rng)
        p = config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout
        self.dropout = Dropout(p, rng=rng)
        self.classifier = Linear(config.hidden_size, config.num_labels, rng=rng)
        _init_bert_weights(self.classifier, config, rng)


class BertForSequenceClassification(_ClassifierHead):
    """BERT + dropout + ``classifier`` (C -> num_labels) on the pooled [CLS] vector.

    ``logits = model(input_ids, attention_mask=None, token_type_ids=None)`` -> (B, num_labels);
    ``model.backward(dlogits)``. Train with ``CrossEntropyLoss()`` against class ids (B,).
    """

    add_pooling_layer = True

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        self._encode(input_ids, attention_mask, token_type_ids)
        return self._remember_output(self.classifier(self.dropout(self.bert.pooler_output)))   # (B,C) -> (B,num_labels)

    def backward(self, dlogits):
        self._check_output_grad("dlogits", dlogits)
        dpooled = self.dropout.backward(self.classifier.backward(dlogits))  # logits = W dropout(pooled) + b
        self.bert.backward(None, dpooled)                                  # pooled = bert.pooler_output
        return None


class BertForTokenClassification(_ClassifierHead):
    """BERT (no pooler) + dropout + ``classifier`` (C -> num_labels) on every position.

    ``logits = model(input_ids, attention_mask=None, token_type_ids=None)`` -> (B, T, num_labels);
    ``model.backward(dlogits)``. Train with ``CrossEntropyLoss()`` against tag ids (B, T), -100 at
    padding and at the word pieces that do not start a word.
    """

    add_pooling_layer = False

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        hidden = self._encode(input_ids, attention_mask, token_type_ids)   # (B,T,C)
        return self._remember_output(self.classifier(self.dropout(hidden)))       # (B,T,C) -> (B,T,num_labels)

    def backward(self, dlogits):
        self._check_output_grad("dlogits", dlogits)
        # logits = classifier(dropout(hidden))                                           (B,T,num_labels)
        self.bert.backward(self.dropout.backward(self.classifier.backward(dlogits)))
        return None


class BertForQuestionAnswering(_Head):
    """BERT (no pooler) + ``qa_outputs`` (C -> 2): a start and an end score for every token.

    ``start_logits, end_logits = model(input_ids, attention_mask=None, token_type_ids=None)``, each
    (B, T); ``model.backward((dstart_logits, dend_logits))``, either may be None. Train with
    ``CrossEntropyLoss()`` on each against the answer's start and end positions (B,), averaged.
    """

    def __init__(self, config: BertConfig, rng=None):
        super().__init__()
        check_config(config, BertConfig)
        rng = module_rng(rng)
        self.config = config
        self.bert = BERT(config, add_pooling_layer=False, rng=rng)
        self.qa_outputs = Linear(config.hidden_size, 2, rng=rng)
        _init_bert_weights(self.qa_outputs, config, rng)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        hidden = self._encode(input_ids, attention_mask, token_type_ids)   # (B,T,C)
        logits = self.qa_outputs(hidden)                                   # (B,T,C) -> (B,T,2)
        self._remember_output(logits[..., 0])                                     # what each of the pair must be
        return logits[..., 0], logits[..., 1]                              # 2 x (B,T)

    def backward(self, dlogits):
        if not (isinstance(dlogits, (tuple, list)) and len(dlogits) == 2):
            raise TypeError("dlogits: expected a pair (dstart_logits, dend_logits), each (B, T) or None, "
                            f"got {type(dlogits).__name__}")
        dstart, dend = dlogits
        if dstart is None and dend is None:
            raise ValueError("dlogits: at least one of dstart_logits, dend_logits must be given")
        for name, g in (("dstart_logits", dstart), ("dend_logits", dend)):
            if g is not None:
                self._check_output_grad(name, g)
        like = dstart if dstart is not None else dend
        xp = array_module(("dstart_logits", dstart), ("dend_logits", dend))
        zero = xp.zeros_like(like)                                         # the gradient of an unused one  (B,T)
        dboth = xp.stack([zero if dstart is None else dstart,
                          zero if dend is None else dend], axis=-1)       # logits[..., 0|1]   (B,T,2)
        self.bert.backward(self.qa_outputs.backward(dboth))                # logits = qa_outputs(hidden)  (B,T,C)
        return None                                                        # ids have no gradient


# ----------------------------------------------------------------------------------------------
# Sentence embeddings
# ----------------------------------------------------------------------------------------------

class MeanPoolingCache(NamedTuple):
    mask: object     # (B, T, 1) 1.0 at real tokens, 0.0 at padding (hidden's dtype): who shares the gradient
    count: object    # (B, 1) the number of real tokens, floored at 1e-9: the divisor
    shape: tuple     # (B, T, C) of hidden, to check dpooled against


def mean_pooling_forward(hidden, attention_mask=None):
    """Average of the hidden states of the real tokens: ``sum_t m_t h_t / max(sum_t m_t, 1e-9)``.

    Shapes: hidden (B, T, C) float, attention_mask (B, T) of 1 (token) and 0 (padding), or None
    (every position counts) -> pooled (B, C). A row without tokens pools to zeros, as in
    sentence-transformers. Returns ``(pooled, cache)``.
    """
    xp = array_module(("hidden", hidden), ("attention_mask", attention_mask))
    check_float("hidden", hidden)
    dims = check_shape("hidden", hidden, ("B", "T", "C"))
    if attention_mask is None:
        mask = xp.ones(hidden.shape[:2] + (1,), dtype=hidden.dtype)
    else:
        _key_padding_mask(attention_mask, dims)                            # shape and 0/1 values
        mask = attention_mask.astype(hidden.dtype)[:, :, None]             # (B,T) -> (B,T,1)
    count = xp.maximum(mask.sum(axis=1), 1e-9)                             # (B,1)
    pooled = (hidden * mask).sum(axis=1) / count                           # (B,T,C) -> (B,C)
    return pooled, MeanPoolingCache(mask, count, tuple(hidden.shape))


def mean_pooling_backward(dpooled, cache: MeanPoolingCache):
    """Shapes: dpooled (B, C) -> dhidden (B, T, C): each real token gets ``dpooled / count``, padding 0."""
    mask, count, (B, T, C) = cache
    array_module(("dpooled", dpooled))
    check_shape("dpooled", dpooled, (B, C))
    return mask * (dpooled / count)[:, None, :]                            # pooled = sum_t m_t h_t / n


def mean_pooling(hidden, attention_mask=None):
    """:func:`mean_pooling_forward` without the cache, for inference."""
    return mean_pooling_forward(hidden, attention_mask)[0]


def sentence_embeddings(model: BERT, input_ids, attention_mask=None, token_type_ids=None, normalize: bool = True):
    """Sentence vectors as sentence-transformers computes them: mean pooling of the last hidden states
    over the real tokens, then (``normalize``) division by the L2 norm. Inference only: runs the
    model in eval mode and leaves its training flag as it was.

    Shapes: input_ids, attention_mask, token_type_ids (B, T) -> (B, C).
    """
    if not isinstance(model, BERT):
        hint = " (pass its encoder, head.bert)" if isinstance(model, _Head) else ""
        raise TypeError(f"model: expected a BERT (BertModel), got {type(model).__name__}{hint}")
    normalize = check_flag("normalize", normalize)
    was_training = model.training
    model.eval()
    try:
        hidden = model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
    finally:
        model.train(was_training)
    emb = mean_pooling(hidden, attention_mask)                             # (B,C)
    if normalize:
        xp = array_module(("input_ids", input_ids))
        norm = xp.sqrt((emb * emb).sum(axis=-1, keepdims=True))            # (B,1)
        emb = emb / xp.maximum(norm, 1e-12)                                # as torch.nn.functional.normalize
    return emb

