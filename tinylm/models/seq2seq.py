"""Sequence-to-sequence translation: two encoder-decoder models, teacher forcing, greedy and beam search.

* :class:`LSTMSeq2Seq`: a bidirectional LSTM encoder, an LSTM decoder and Bahdanau's additive
  attention ``score(h_t, e_s) = v . tanh(W_q h_t + W_k e_s)``.
* :class:`TransformerSeq2Seq`: the encoder-decoder Transformer of tinylm.nn.transformer with
  sinusoidal positions and optional weight tying.
* :func:`greedy_decode` and :func:`beam_search` decode with either model.

Both models share one interface. Token ids are int arrays, right-padded with ``pad_idx``::

    logits = model(src, tgt_in)     # teacher forcing: src (B, S), tgt_in (B, T) -> logits (B, T, V)
    model.backward(dlogits)         # accumulates every parameter's .grad; returns (None, None)
    state = model.encode(src)                       # decoding: run the encoder once
    logits, state = model.decode_step(state, tok)   # tok (N,) last tokens -> logits (N, V) of the next
    state = model.reorder_state(state, rows)        # keep / repeat / reorder rows (beam search)
    weights = model.attention_map(src, tgt_in)      # (B, T, S) cross-attention, for heatmaps

Teacher forcing: for a target ``y_1 .. y_n`` the decoder reads ``tgt_in = <bos> y_1 .. y_n`` and
is trained to predict ``tgt_out = y_1 .. y_n <eos>`` (the same tokens shifted by one) at every
position at once, with cross-entropy ignoring padding (``CrossEntropyLoss(ignore_index=pad_idx)``).

Derivation: derivations/seq2seq.md (and derivations/transformer_layers.md).
Tests: tests/test_seq2seq.py.  Example: examples/translate.py.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from tinylm._checks import (check_choice, check_flag, check_grad, check_head_split, check_index_range, check_int,
                            check_positive_int, check_probability, check_shape, is_real)
from tinylm.backend import array_module, get_backend, to_numpy
from tinylm.nn import init
from tinylm.nn.dropout import Dropout
from tinylm.nn.embedding import Embedding
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module, Parameter
from tinylm.nn.normalization import LayerNorm
from tinylm.nn.positional import SinusoidalPositionalEncoding
from tinylm.nn.recurrent import LSTM
from tinylm.nn.soft_attention import AdditiveAttention
from tinylm.nn.transformer import (TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                                   TransformerEncoderLayer)
from tinylm.ops.activations import TanhCache, tanh_backward, tanh_forward
from tinylm.ops.linear import LinearCache, linear_backward, linear_forward
from tinylm.ops.softmax import log_softmax
from tinylm.random import module_rng

__all__ = ["LSTMSeq2Seq", "TransformerSeq2Seq", "LSTMState", "TransformerState", "greedy_decode", "beam_search",
           "length_penalty", "LENGTH_NORMS"]


# ----------------------------------------------------------------------------------------------
# What both models share.
# ----------------------------------------------------------------------------------------------

class _Seq2Seq(Module):
    """Special ids, argument checks, and the source padding mask."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, pad_idx: int, bos_idx: int, eos_idx: int):
        super().__init__()
        self.src_vocab_size = check_positive_int("src_vocab_size", src_vocab_size)
        self.tgt_vocab_size = check_positive_int("tgt_vocab_size", tgt_vocab_size)
        for name, i in (("pad_idx", pad_idx), ("bos_idx", bos_idx), ("eos_idx", eos_idx)):
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or not 0 <= i < tgt_vocab_size:
                raise ValueError(f"{name}: expected an int in [0, {tgt_vocab_size}) (tgt_vocab_size), got {i!r}")
        if not pad_idx < src_vocab_size:                     # the source is padded with it too
            raise ValueError(f"pad_idx: expected an int in [0, {src_vocab_size}) (src_vocab_size: the source is "
                             f"padded with it too), got {pad_idx!r}")
        pad_idx, bos_idx, eos_idx = int(pad_idx), int(bos_idx), int(eos_idx)
        if len({pad_idx, bos_idx, eos_idx}) != 3:
            raise ValueError(f"pad_idx, bos_idx, eos_idx: must differ, got {pad_idx}, {bos_idx}, {eos_idx}")
        self.pad_idx, self.bos_idx, self.eos_idx = pad_idx, bos_idx, eos_idx
        self._cache = None

    def _check_src(self, src):
        """src (B, S) ids -> its key padding mask (B, S) bool (True = padding) and lengths (B,) (host)."""
        xp = array_module(("src", src))
        check_int("src", src)
        check_shape("src", src, ("B", "S"))
        check_index_range("src", src, self.src_vocab_size, what="token ids")
        pad = src == self.pad_idx                                        # (B,S)
        lengths = to_numpy((~pad).sum(axis=1))                           # (B,)
        S = src.shape[1]
        if (lengths == 0).any():
            raise ValueError(f"src: row {int(np.argmax(lengths == 0))} is all padding (pad_idx={self.pad_idx})")
        # right padding only: position s is padding exactly when s >= length
        if not bool(xp.all(pad == (xp.arange(S)[None, :] >= xp.asarray(lengths)[:, None]))):
            raise ValueError(f"src: padding (pad_idx={self.pad_idx}) must come after every real token of a row")
        return pad, lengths

    def _check_tgt(self, tgt_in, batch: int):
        array_module(("tgt_in", tgt_in))
        check_int("tgt_in", tgt_in)
        check_shape("tgt_in", tgt_in, ("B", "T"), {"B": batch})
        check_index_range("tgt_in", tgt_in, self.tgt_vocab_size, what="token ids")

    def _check_tokens(self, tokens, rows: int):
        """decode_step's tokens: (N,) ids in [0, tgt_vocab_size), N = the state's rows."""
        array_module(("tokens", tokens))
        check_int("tokens", tokens)
        check_shape("tokens", tokens, (rows,))
        check_index_range("tokens", tokens, self.tgt_vocab_size, what="token ids")

    @staticmethod
    def _check_state(state, kind: type):
        if not isinstance(state, kind):
            raise TypeError(f"state: expected the {kind.__name__} of this model's encode(), got {type(state).__name__}")

    @staticmethod
    def _check_rows(rows, n: int):
        """reorder_state's rows: (M,) integer indices into the state's n rows."""
        array_module(("rows", rows))
        check_int("rows", rows)
        check_shape("rows", rows, ("M",))
        check_index_range("rows", rows, n, what=f"row indices into the state's {n} rows")


# ----------------------------------------------------------------------------------------------
# LSTM encoder-decoder with Bahdanau attention.
# ----------------------------------------------------------------------------------------------

class LSTMState(NamedTuple):
    """Decoding state of :class:`LSTMSeq2Seq` (N rows: sentences, or sentences x beams)."""
    enc: object     # (N, S, 2H) encoder outputs: attention keys and values
    pad: object     # (N, S) bool, True = padding key
    h: object       # (L, N, H) decoder LSTM hidden state
    c: object       # (L, N, H) decoder LSTM cell state


class _LSTMCache(NamedTuple):
    bridge_tanh: TanhCache     # h_0 = tanh(bridge(encoder final states)) (L,B,H): 1 - h_0^2 for dbridge
    combine_tanh: TanhCache    # a = tanh(combine([s; c])) (N,H), N = B*T: 1 - a^2 for dcombine
    shape: tuple               # (B, T) of the target, to restore the (B,T,.) shapes of the gradients
    dtype: object              # the logits' dtype: what dlogits must be


class LSTMSeq2Seq(_Seq2Seq):
    """Bidirectional LSTM encoder, LSTM decoder, additive (Bahdanau) attention::

        e   = biLSTM(drop(src_embed(src)))                  encoder states e_s = [fwd_s; bwd_s]  (B,S,2H)
        h_0 = tanh(bridge([fwd_final; bwd_final]))          decoder initial state, per layer   (L,B,H)
        s   = LSTM(drop(tgt_embed(tgt_in)), (h_0, 0))       decoder states s_t                 (B,T,H)
        c_t = sum_s alpha_ts e_s,  alpha_t = softmax_s(v . tanh(W_q s_t + W_k e_s))            (B,T,2H)
        a_t = tanh(combine([s_t; c_t]))                     attentional state                  (B,T,H)
        logits = out(drop(a_t))                                                                (B,T,V)

    The score is Bahdanau et al.'s (2015); its placement is Luong et al.'s (2015): the query is
    the decoder's current state s_t and the context enters the output, not the LSTM input. That
    lets teacher forcing run the decoder LSTM over all T steps in one call and score all T queries
    against the S keys at once; decoding runs the same modules one step at a time.

    ``LSTMSeq2Seq(src_vocab_size, tgt_vocab_size, embed_dim=256, hidden_size=256, num_layers=1,
    attn_dim=None (= hidden_size), dropout=0.0, pad_idx=0, bos_idx=1, eos_idx=2)``.
    Children: ``src_embed``, ``encoder`` (LSTM, bidirectional, batch first), ``bridge`` (Linear 2H -> H),
    ``tgt_embed``, ``decoder`` (LSTM), ``attention`` (AdditiveAttention H, 2H -> A), ``combine``
    (Linear 3H -> H, no bias), ``out`` (Linear H -> V), PyTorch initialisation.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 256, hidden_size: int = 256,
                 num_layers: int = 1, attn_dim: int | None = None, dropout: float = 0.0, pad_idx: int = 0,
                 bos_idx: int = 1, eos_idx: int = 2, *, dtype=np.float32, rng=None):
        super().__init__(src_vocab_size, tgt_vocab_size, pad_idx, bos_idx, eos_idx)
        E = check_positive_int("embed_dim", embed_dim)
        H = self.hidden_size = check_positive_int("hidden_size", hidden_size)
        L = self.num_layers = check_positive_int("num_layers", num_layers)
        A = H if attn_dim is None else check_positive_int("attn_dim", attn_dim)
        p = check_probability("dropout", dropout)
        g = module_rng(rng)                                  # one stream for every child (None: global)
        kw = dict(dtype=dtype, rng=g)
        between = p if L > 1 else 0.0                        # LSTM dropout acts between stacked layers only
        self.src_embed = Embedding(src_vocab_size, E, padding_idx=self.pad_idx, **kw)
        self.encoder = LSTM(E, H, L, batch_first=True, bidirectional=True, dropout=between, **kw)
        self.bridge = Linear(2 * H, H, **kw)
        self.tgt_embed = Embedding(tgt_vocab_size, E, padding_idx=self.pad_idx, **kw)
        self.decoder = LSTM(E, H, L, batch_first=True, dropout=between, **kw)
        self.attention = AdditiveAttention(H, 2 * H, A, **kw)
        self.combine = Linear(3 * H, H, bias=False, **kw)
        self.out = Linear(H, tgt_vocab_size, **kw)
        self.src_dropout = Dropout(p, rng=g)
        self.tgt_dropout = Dropout(p, rng=g)
        self.out_dropout = Dropout(p, rng=g)
        self.attn_weights = None                             # (B, T, S) of the last forward

    # --- encoder, shared by teacher forcing and decoding ---
    def _encode(self, src):
        """(enc (B,S,2H), pad (B,S), h_0 (L,B,H) for the decoder, tanh cache of the bridge)."""
        xp = array_module(("src", src))
        pad, lengths = self._check_src(src)
        x = self.src_dropout(self.src_embed(src))                        # (B,S) -> (B,S,E)
        enc, (h_n, _) = self.encoder(x, lengths=lengths)                 # (B,S,2H), (2L,B,H)
        final = xp.concatenate([h_n[0::2], h_n[1::2]], axis=-1)          # layer l: [fwd; bwd]  (L,B,2H)
        h0, bridge_tanh = tanh_forward(self.bridge(final))               # (L,B,2H) -> (L,B,H)
        return enc, pad, h0, bridge_tanh

    def _readout(self, s, ctx):
        """logits (..., V) and the tanh cache from decoder states s (..., H) and contexts ctx (..., 2H).

        Computed on N = prod(...) rows, so that each Linear is one 2-d matrix product (NumPy's
        matmul of a (B, T, K) array loops over B, several times slower for these shapes).
        """
        xp = array_module(("s", s), ("ctx", ctx))
        sc = xp.concatenate([s, ctx], axis=-1).reshape(-1, 3 * self.hidden_size)       # (N,3H)
        a, combine_tanh = tanh_forward(self.combine(sc))                                # (N,3H) -> (N,H)
        logits = self.out(self.out_dropout(a))                                          # (N,H) -> (N,V)
        return logits.reshape(s.shape[:-1] + (-1,)), combine_tanh

    # --- teacher forcing ---
    def forward(self, src, tgt_in):
        xp = array_module(("src", src), ("tgt_in", tgt_in))
        enc, pad, h0, bridge_tanh = self._encode(src)
        self._check_tgt(tgt_in, src.shape[0])
        y = self.tgt_dropout(self.tgt_embed(tgt_in))                     # (B,T) -> (B,T,E)
        s, _ = self.decoder(y, (h0, xp.zeros_like(h0)))                  # (B,T,H)
        ctx, self.attn_weights = self.attention(s, enc, enc, key_padding_mask=pad)   # (B,T,2H), (B,T,S)
        logits, combine_tanh = self._readout(s, ctx)                     # (B,T,V)
        self._cache = _LSTMCache(bridge_tanh, combine_tanh, tuple(tgt_in.shape), logits.dtype)
        return logits

    def backward(self, dlogits):
        bridge_tanh, combine_tanh, (B, T), dtype = self._need_cache(self._cache)
        check_grad("dlogits", dlogits, (B, T, self.tgt_vocab_size), dtype)
        xp = array_module(("dlogits", dlogits))
        H, L = self.hidden_size, self.num_layers
        da = self.out_dropout.backward(self.out.backward(dlogits.reshape(B * T, -1)))  # logits = out(drop(a))  (N,H)
        dsc = self.combine.backward(tanh_backward(da, combine_tanh))     # a = tanh(combine([s; c]))  (N,3H)
        dsc = dsc.reshape(B, T, 3 * H)                                   # sc = [...].reshape(N, 3H)  (B,T,3H)
        ds, dctx = dsc[..., :H], dsc[..., H:]                            # sc = [s; ctx]  (B,T,H), (B,T,2H)
        dquery, dkeys, dvalues = self.attention.backward(dctx)           # c = attn(s, e, e)
        ds = ds + dquery                                                 # s feeds the readout and the query
        denc = dkeys + dvalues                                           # e is both keys and values  (B,S,2H)
        dy, (dh0, _) = self.decoder.backward(ds)                         # s = LSTM(y, (h_0, 0))
        self.tgt_embed.backward(self.tgt_dropout.backward(dy))           # y = tgt_dropout(tgt_embed(tgt_in))
        dfinal = self.bridge.backward(tanh_backward(dh0, bridge_tanh))   # h_0 = tanh(bridge(final))  (L,B,2H)
        dh_n = xp.empty((2 * L, B, H), dtype=dfinal.dtype)               # (2L,B,H): layer l's fwd at 2l, bwd at 2l+1
        dh_n[0::2], dh_n[1::2] = dfinal[..., :H], dfinal[..., H:]        # final = [h_n fwd; h_n bwd]  (2L,B,H)
        dx = self.encoder.backward(denc, dh_n)                           # e, h_n = biLSTM(x)
        self.src_embed.backward(self.src_dropout.backward(dx))           # x = src_dropout(src_embed(src))
        return None, None                                                # token ids have no gradient

    # --- decoding ---
    def encode(self, src) -> LSTMState:
        enc, pad, h0, _ = self._encode(src)
        return LSTMState(enc, pad, h0, get_backend().xp.zeros_like(h0))

    def decode_step(self, state: LSTMState, tokens):
        """tokens (N,) -> logits (N, V) for the next token, and the advanced state."""
        self._check_state(state, LSTMState)
        self._check_tokens(tokens, state.h.shape[1])
        y = self.tgt_embed(tokens[:, None])                              # (N,) -> (N,1,E)
        s, (h, c) = self.decoder(y, (state.h, state.c))                  # (N,1,H)
        ctx, _ = self.attention(s[:, 0], state.enc, state.enc, key_padding_mask=state.pad)   # (N,2H)
        logits, _ = self._readout(s[:, 0], ctx)                          # (N,V)
        return logits, state._replace(h=h, c=c)

    def reorder_state(self, state: LSTMState, rows) -> LSTMState:
        self._check_state(state, LSTMState)
        self._check_rows(rows, state.h.shape[1])
        return LSTMState(state.enc[rows], state.pad[rows], state.h[:, rows], state.c[:, rows])

    def attention_map(self, src, tgt_in):
        """Attention weights (B, T, S) of a teacher-forced pass: row t is where step t looked."""
        was = self.training
        self.eval()
        try:
            self.forward(src, tgt_in)
        finally:
            self.train(was)
        return self.attn_weights


# ----------------------------------------------------------------------------------------------
# Transformer encoder-decoder.
# ----------------------------------------------------------------------------------------------

class TransformerState(NamedTuple):
    """Decoding state of :class:`TransformerSeq2Seq`: the decoder re-reads its whole prefix each step."""
    memory: object  # (N, S, C) encoder output
    pad: object     # (N, S) bool, True = padding key
    prefix: object  # (N, t) the tokens fed so far (<bos> first)


class _TransformerCache(NamedTuple):
    head: LinearCache   # logits = h W_out^T (+ b) on N = B*T rows: h for dW_out, W_out for dh
    shape: tuple        # (B, T, C) of h, to restore dh's shape
    dtype: object       # the logits' dtype: what dlogits must be


class TransformerSeq2Seq(_Seq2Seq):
    """The Transformer of Vaswani et al. (2017) for translation::

        x      = drop(src_embed(src) * sqrt(C) + PE)          (B,S,C)
        memory = encoder(x, src_key_padding_mask)             (B,S,C)
        y      = drop(tgt_embed(tgt_in) * sqrt(C) + PE)       (B,T,C)
        h      = decoder(y, memory, causal, memory_key_padding_mask)   (B,T,C)
        logits = h W_out^T (+ b_out)                          (B,T,V)

    ``TransformerSeq2Seq(src_vocab_size, tgt_vocab_size, d_model=256, nhead=4, num_encoder_layers=3,
    num_decoder_layers=3, dim_feedforward=1024, dropout=0.1, activation="relu", norm_first=True,
    max_len=256, tie_output=True, share_embeddings=False, pad_idx=0, bos_idx=1, eos_idx=2)``.

    Weight tying: ``tie_output`` makes W_out the target embedding matrix (no output bias; one
    Parameter, whose gradient sums both uses); ``share_embeddings`` also makes the source embedding
    the same matrix (needs one joint vocabulary, src_vocab_size == tgt_vocab_size). Otherwise
    ``output_proj`` is a Linear(C, V) with bias. Embeddings start N(0, 1/C), so that after the
    sqrt(C) scale they have unit variance and tied logits start near unit scale; the encoder and
    decoder weights are Xavier-uniform, as ``nn.Transformer`` initialises them. Both stacks end in
    a LayerNorm (``encoder.norm``, ``decoder.norm``), as in ``nn.Transformer``.
    Decoding re-runs the decoder over the whole prefix at each step (no key/value cache).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 256, nhead: int = 4,
                 num_encoder_layers: int = 3, num_decoder_layers: int = 3, dim_feedforward: int = 1024,
                 dropout: float = 0.1, activation: str = "relu", norm_first: bool = True, max_len: int = 256,
                 tie_output: bool = True, share_embeddings: bool = False, pad_idx: int = 0, bos_idx: int = 1,
                 eos_idx: int = 2, *, dtype=np.float32, rng=None):
        super().__init__(src_vocab_size, tgt_vocab_size, pad_idx, bos_idx, eos_idx)
        # Checked here, under this constructor's names, before the layers check them under theirs.
        C = self.d_model = check_positive_int("d_model", d_model)
        nhead = check_positive_int("nhead", nhead)
        check_head_split("d_model", C, "nhead", nhead)
        num_encoder_layers = check_positive_int("num_encoder_layers", num_encoder_layers)
        num_decoder_layers = check_positive_int("num_decoder_layers", num_decoder_layers)
        dim_feedforward = check_positive_int("dim_feedforward", dim_feedforward)
        check_probability("dropout", dropout)
        self.max_len = check_positive_int("max_len", max_len)
        tie_output = check_flag("tie_output", tie_output)
        share_embeddings = check_flag("share_embeddings", share_embeddings)
        norm_first = check_flag("norm_first", norm_first)
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError(f"share_embeddings: needs one joint vocabulary, got src_vocab_size={src_vocab_size} "
                             f"and tgt_vocab_size={tgt_vocab_size}")
        self.tie_output, self.share_embeddings = tie_output, share_embeddings
        g = module_rng(rng)
        layer_kw = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                        batch_first=True, norm_first=norm_first, dtype=dtype, rng=g)

        self.src_embed = Embedding(src_vocab_size, C, padding_idx=self.pad_idx, dtype=dtype, rng=g)
        self.tgt_embed = Embedding(tgt_vocab_size, C, padding_idx=self.pad_idx, dtype=dtype, rng=g)
        for emb in (self.src_embed, self.tgt_embed):
            emb.weight.data = init.normal(emb.weight.shape, C ** -0.5, dtype, g)
            emb.weight.data[self.pad_idx] = 0
        if share_embeddings:
            self.src_embed.weight = self.tgt_embed.weight            # one Parameter, two lookups
        self.src_pos = SinusoidalPositionalEncoding(C, max_len)
        self.tgt_pos = SinusoidalPositionalEncoding(C, max_len)
        self.src_dropout = Dropout(dropout, rng=g)
        self.tgt_dropout = Dropout(dropout, rng=g)
        self.encoder = TransformerEncoder(TransformerEncoderLayer(C, nhead, **layer_kw), num_encoder_layers,
                                          norm=LayerNorm(C, dtype=dtype))
        self.decoder = TransformerDecoder(TransformerDecoderLayer(C, nhead, **layer_kw), num_decoder_layers,
                                          norm=LayerNorm(C, dtype=dtype))
        for p in list(self.encoder.parameters()) + list(self.decoder.parameters()):
            if len(p.shape) > 1:                                      # nn.Transformer's xavier_uniform_
                fan_out, fan_in = p.shape
                p.data = init.uniform(p.shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype, g)
        self.output_proj = None if tie_output else Linear(C, tgt_vocab_size, dtype=dtype, rng=g)

    @property
    def output_weight(self) -> Parameter:
        """W_out (V, C): the target embedding itself when tied."""
        return self.tgt_embed.weight if self.tie_output else self.output_proj.weight

    def _embed(self, ids, embed: Embedding, pos: SinusoidalPositionalEncoding, drop: Dropout):
        return drop(pos(embed(ids) * math.sqrt(self.d_model)))           # (B,L) -> (B,L,C)

    def _embed_backward(self, dx, embed: Embedding, pos: SinusoidalPositionalEncoding, drop: Dropout):
        embed.backward(pos.backward(drop.backward(dx)) * math.sqrt(self.d_model))   # x = drop(pos(embed(ids) sqrt(C)))

    def _check_length(self, name: str, length: int, what: str = "sequence length") -> None:
        if length > self.max_len:
            raise ValueError(f"{name}: {what} {length} exceeds max_len={self.max_len} of TransformerSeq2Seq "
                             f"(its positional encodings); shorten the input or construct the model with a "
                             f"larger max_len")

    def _run_encoder(self, src):
        pad, _ = self._check_src(src)
        self._check_length("src", src.shape[1])
        memory = self.encoder(self._embed(src, self.src_embed, self.src_pos, self.src_dropout),
                              src_key_padding_mask=pad)                  # (B,S,C)
        return memory, pad

    def _run_decoder(self, tgt_in, memory, pad):
        y = self._embed(tgt_in, self.tgt_embed, self.tgt_pos, self.tgt_dropout)          # (B,T,C)
        h = self.decoder(y, memory, memory_key_padding_mask=pad, tgt_is_causal=True)     # (B,T,C)
        bias = None if self.tie_output else self.output_proj.bias.data
        B, T, C = h.shape
        # on N = B*T rows: one 2-d matrix product (NumPy's matmul would loop over B, much slower)
        logits, head = linear_forward(h.reshape(B * T, C), self.output_weight.data, bias)  # (N,C) -> (N,V)
        return logits.reshape(B, T, -1), head

    # --- teacher forcing ---
    def forward(self, src, tgt_in):
        memory, pad = self._run_encoder(src)
        self._check_tgt(tgt_in, src.shape[0])
        self._check_length("tgt_in", tgt_in.shape[1])
        logits, head = self._run_decoder(tgt_in, memory, pad)
        self._cache = _TransformerCache(head, tuple(tgt_in.shape) + (self.d_model,), logits.dtype)
        return logits

    def backward(self, dlogits):
        head, (B, T, C), dtype = self._need_cache(self._cache)
        check_grad("dlogits", dlogits, (B, T, self.tgt_vocab_size), dtype)
        dh, dW, db = linear_backward(dlogits.reshape(B * T, -1), head)   # logits = h W_out^T + b   (N,C)
        dh = dh.reshape(B, T, C)                                         # h.reshape(B * T, C)  (N,C) -> (B,T,C)
        self.output_weight.accumulate(dW)                                # tied: adds to tgt_embed's grad
        if not self.tie_output:
            self.output_proj.bias.accumulate(db)
        dy, dmemory = self.decoder.backward(dh)                          # h = decoder(y, memory)
        self._embed_backward(dy, self.tgt_embed, self.tgt_pos, self.tgt_dropout)   # y = _embed(tgt_in, ...)
        dx = self.encoder.backward(dmemory)                              # memory = encoder(x)
        self._embed_backward(dx, self.src_embed, self.src_pos, self.src_dropout)   # x = _embed(src, ...)
        return None, None

    # --- decoding ---
    def encode(self, src) -> TransformerState:
        memory, pad = self._run_encoder(src)
        return TransformerState(memory, pad, get_backend().xp.zeros((src.shape[0], 0), dtype=src.dtype))

    def decode_step(self, state: TransformerState, tokens):
        """tokens (N,) -> logits (N, V) for the next token, and the advanced state."""
        self._check_state(state, TransformerState)
        self._check_tokens(tokens, state.prefix.shape[0])
        self._check_length("tokens", state.prefix.shape[1] + 1, "this step makes the prefix length")
        xp = array_module(("tokens", tokens))
        prefix = xp.concatenate([state.prefix, tokens[:, None].astype(state.prefix.dtype)], axis=1)   # (N,t+1)
        logits, _ = self._run_decoder(prefix, state.memory, state.pad)  # (N,t+1,V)
        return logits[:, -1], state._replace(prefix=prefix)

    def reorder_state(self, state: TransformerState, rows) -> TransformerState:
        self._check_state(state, TransformerState)
        self._check_rows(rows, state.prefix.shape[0])
        return TransformerState(state.memory[rows], state.pad[rows], state.prefix[rows])

    def attention_map(self, src, tgt_in):
        """Cross-attention weights (B, T, S) of the last decoder layer, averaged over heads."""
        was, last = self.training, self.decoder.layers[-1]
        self.eval()
        last.need_weights = True
        try:
            self.forward(src, tgt_in)
        finally:
            last.need_weights = False
            self.train(was)
        return last.cross_attn_weights


# ----------------------------------------------------------------------------------------------
# Decoding.
# ----------------------------------------------------------------------------------------------

LENGTH_NORMS = ("gnmt", "average", "none")


def length_penalty(length: int, method: str = "gnmt", alpha: float = 0.6) -> float:
    """The divisor of a hypothesis's log-probability in beam search.

    ``"gnmt"`` (Wu et al. 2016): ``((5 + length) / 6) ** alpha`` (alpha = 0: no normalisation,
    alpha = 1: nearly per-token); ``"average"``: ``length`` (mean log-probability per token);
    ``"none"``: 1. ``length`` counts the generated tokens including ``<eos>``.
    """
    check_choice("method", method, LENGTH_NORMS)
    check_positive_int("length", length)
    _check_alpha(alpha)
    if method == "gnmt":
        return ((5.0 + length) / 6.0) ** alpha
    if method == "average":
        return float(length)
    return 1.0


def _check_alpha(alpha) -> float:
    if not is_real(alpha) or not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha: expected a finite number >= 0 (0: no length normalisation), got {alpha!r}")
    return float(alpha)


def _check_decoding(model, max_len) -> int:
    """The model is a seq2seq model, and max_len decoding steps fit in its positions."""
    if not isinstance(model, _Seq2Seq):
        raise TypeError(f"model: expected an LSTMSeq2Seq or TransformerSeq2Seq, got {type(model).__name__}")
    max_len = check_positive_int("max_len", max_len)
    if isinstance(model, TransformerSeq2Seq) and max_len > model.max_len:
        raise ValueError(f"max_len: decoding up to {max_len} tokens needs {max_len} target positions, but the "
                         f"model was built with max_len={model.max_len}; pass max_len <= {model.max_len} "
                         f"(or construct TransformerSeq2Seq with a larger max_len)")
    return max_len


def _next_log_probs(model: _Seq2Seq, logits):
    """log-softmax of the logits (N, V) with <pad> and <bos> ruled out (they are never targets)."""
    logp = log_softmax(logits, axis=-1)
    logp[:, [model.pad_idx, model.bos_idx]] = -np.inf
    return logp


def _strip(row, eos: int) -> list[int]:
    row = [int(t) for t in row]
    return row[:row.index(eos)] if eos in row else row


def greedy_decode(model: _Seq2Seq, src, max_len: int = 50) -> list[list[int]]:
    """The most probable next token at every step, until ``<eos>`` or ``max_len`` tokens.

    src (B, S) -> B lists of token ids (no ``<bos>``/``<eos>``). Runs in eval mode. A sentence
    that has produced ``<eos>`` leaves the batch, so the remaining steps cost less.
    """
    max_len = _check_decoding(model, max_len)
    xp = array_module(("src", src))
    out: list[list[int]] = [[] for _ in range(src.shape[0])]
    active = np.arange(src.shape[0])                            # sentences still decoding: the state's rows
    was = model.training
    model.eval()
    try:
        state = model.encode(src)
        tokens = xp.full((src.shape[0],), model.bos_idx, dtype=src.dtype)
        for _ in range(max_len):
            logits, state = model.decode_step(state, tokens)
            nxt = to_numpy(_next_log_probs(model, logits).argmax(axis=-1))   # (n,)
            for b, v in zip(active, nxt):
                out[b].append(int(v))
            running = np.flatnonzero(nxt != model.eos_idx)
            if len(running) == 0:
                break
            if len(running) < len(active):                      # drop the finished rows
                state = model.reorder_state(state, xp.asarray(running))
                active, nxt = active[running], nxt[running]
            tokens = xp.asarray(nxt, dtype=src.dtype)
    finally:
        model.train(was)
    return [_strip(row, model.eos_idx) for row in out]


def beam_search(model: _Seq2Seq, src, beam_size: int = 4, max_len: int = 50, length_norm: str = "gnmt",
                alpha: float = 0.6) -> list[list[int]]:
    """Beam search: keep the ``beam_size`` most probable prefixes of each sentence.

    At each step every live prefix is extended by every token; of the extensions the best
    2 * beam_size by total log-probability are read in order: one ending in ``<eos>`` becomes a
    finished hypothesis, scored ``log p / length_penalty(length, length_norm, alpha)``; the
    others become the next live prefixes, up to ``beam_size``. A sentence is done when it has
    ``beam_size`` finished hypotheses (it then leaves the batch); at ``max_len`` its live prefixes
    count as finished too. The best finished hypothesis by normalised score wins.
    ``beam_size=1`` is greedy decoding.

    src (B, S) -> B lists of token ids (no ``<bos>``/``<eos>``). Runs in eval mode.
    """
    max_len = _check_decoding(model, max_len)
    K = check_positive_int("beam_size", beam_size)
    check_choice("length_norm", length_norm, LENGTH_NORMS)
    _check_alpha(alpha)
    xp = array_module(("src", src))
    B, eos = src.shape[0], model.eos_idx
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]   # (normalised score, tokens)
    active = np.arange(B)                    # sentences still searching; sentence active[i] owns rows i*K..i*K+K-1
    tokens = np.full(B * K, model.bos_idx)   # the last token of each live prefix
    history = np.zeros((B * K, 0), dtype=np.int64)              # the tokens of each live prefix
    scores = np.full((B, K), -np.inf)        # total log-probability of each live prefix
    scores[:, 0] = 0.0                       # the K copies start equal: extend only the first
    was = model.training
    model.eval()
    try:
        state = model.reorder_state(model.encode(src), xp.asarray(np.repeat(np.arange(B), K)))
        for t in range(max_len):
            logits, state = model.decode_step(state, xp.asarray(tokens, dtype=src.dtype))
            logp = to_numpy(_next_log_probs(model, logits))     # (n*K, V)
            n, V = len(active), logp.shape[1]
            cand = (scores[:, :, None] + logp.reshape(n, K, V)).reshape(n, K * V)    # total log p
            order = np.argsort(-cand, axis=1, kind="stable")[:, :2 * K]   # at most K end in <eos>
            rows = np.repeat(np.arange(n) * K, K)               # a dead slot copies its sentence's row 0
            tokens = np.full(n * K, eos)
            scores = np.full((n, K), -np.inf)
            for i, b in enumerate(active):
                live = 0
                for j in order[i]:
                    if len(finished[b]) >= K or live == K or cand[i, j] == -np.inf:
                        break
                    k, v = divmod(int(j), V)
                    if v == eos:
                        lp = length_penalty(t + 1, length_norm, alpha)
                        finished[b].append((cand[i, j] / lp, history[i * K + k].tolist()))
                    else:
                        rows[i * K + live], tokens[i * K + live], scores[i, live] = i * K + k, v, cand[i, j]
                        live += 1
            keep = np.array([i for i, b in enumerate(active) if len(finished[b]) < K], dtype=np.int64)
            if len(keep) == 0:
                break
            slots = (keep[:, None] * K + np.arange(K)).reshape(-1)        # the rows of the sentences kept
            rows, tokens, scores, active = rows[slots], tokens[slots], scores[keep], active[keep]
            history = np.concatenate([history[rows], tokens[:, None]], axis=1)
            state = model.reorder_state(state, xp.asarray(rows))          # reorder beams, drop finished
        else:                                                   # max_len reached: live prefixes count too
            for i, b in enumerate(active):
                for k in range(K):
                    if len(finished[b]) < K and scores[i, k] > -np.inf:
                        lp = length_penalty(history.shape[1], length_norm, alpha)
                        finished[b].append((scores[i, k] / lp, history[i * K + k].tolist()))
    finally:
        model.train(was)
    return [max(f, key=lambda h: h[0])[1] for f in finished]
