"""Training-mode gradient checks: every model and layer with dropout, dropout ON (p ~ 0.3).

check_module(..., dropout_seed=s) re-seeds every random stream before each forward (tinylm/gradcheck.py,
fixed_random_streams), so all finite-difference forwards draw the same masks and the backward passes only
if it reuses exactly the masks its own forward drew, each at its own site. Every test also asserts that
dropout acted (every Dropout drew a mask with zeros, the attention-probability masks too, and the output
differs from eval mode), so no check passes with dropout silently off.
float64, a random upstream gradient, every float input and every parameter (the trainable set is
compared with the report), tol 1e-6 (1e-5 for the seq2seq transformer, whose ReLU kinks cost margin).
"""
import numpy as np
import pytest

from tinylm.gradcheck import check_module, fixed_random_streams
from tinylm.keras.layers import (LSTM as KerasLSTM, Conv1D, Dense, Dropout as KerasDropout, Embedding as KerasEmbedding,
                                 GlobalMaxPooling1D)
from tinylm.keras.models import Sequential
from tinylm.models.bert import (BERT, BertConfig, BertForMaskedLM, BertForQuestionAnswering,
                                BertForSequenceClassification, BertForTokenClassification)
from tinylm.models.gpt import GPT, Block, CausalSelfAttention, GPTConfig
from tinylm.models.seq2seq import LSTMSeq2Seq, TransformerSeq2Seq
from tinylm.models.textcnn import TextCNN
from tinylm.nn.attention import MultiheadAttention
from tinylm.nn.dropout import Dropout
from tinylm.nn.module import Module
from tinylm.nn.normalization import LayerNorm
from tinylm.nn.recurrent import GRU, LSTM, RNN
from tinylm.nn.transformer import (TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                                   TransformerEncoderLayer)
from tinylm.ops.attention import AttentionCache

P = 0.3


# --- helpers --------------------------------------------------------------------------------------

def _leaves(out):
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in _leaves(o)]
    return [out]


def _attention_caches(obj, depth=0):
    """Every AttentionCache reachable from ``obj``'s attributes (tuples / NamedTuples, a few levels deep)."""
    if isinstance(obj, AttentionCache):
        return [obj]
    if depth > 3:
        return []
    if isinstance(obj, (tuple, list)):
        return [c for o in obj for c in _attention_caches(o, depth + 1)]
    if isinstance(obj, Module):
        return [c for k, v in vars(obj).items() if k.startswith("_") and k not in ("_modules", "_parameters")
                for c in _attention_caches(v, depth + 1)]
    return []


def assert_dropout_acts(model, run, attention=0):
    """In training mode (with fixed streams) every Dropout with p > 0 drew a mask with zeros, at least
    ``attention`` attention-probability masks did too, and the output differs from eval mode's."""
    with fixed_random_streams(model, 0) as reset:
        reset()
        y_train = run(True)
        drops = [(n, m) for n, m in model.named_modules() if isinstance(m, Dropout) and m.p > 0]
        for n, m in drops:
            assert m._cache.mask is not None and (m._cache.mask == 0).any(), f"{n} drew no mask"
        masks = [c.dropout_mask for _, m in model.named_modules() for c in _attention_caches(m)]
        masks = [mk for mk in masks if mk is not None]
        assert len(masks) >= attention and all((mk == 0).any() for mk in masks)
    y_eval = run(False)
    model.train()
    assert any(not np.allclose(a, b) for a, b in zip(_leaves(y_train), _leaves(y_eval))), "dropout changed nothing"
    return [n for n, _ in drops]


def assert_everything_checked(model, report, n_inputs=0):
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable <= set(report.errors)
    assert sum(k.startswith("input") for k in report.errors) == n_inputs


def randomise(model, rng, scale=0.3):
    """Move every parameter off its init (small inits make attention nearly uniform and gradients tiny)."""
    for _, p in model.named_parameters():
        p.data = p.data + scale * rng.standard_normal(p.shape)
    return model


# --- GPT: embedding, attention-probability, residual and MLP dropout ----------------------------

def gpt_cfg(**kw):
    return GPTConfig(**{"vocab_size": 11, "block_size": 6, "n_layer": 2, "n_head": 2, "n_embd": 8, "dropout": P, **kw})


def test_gpt_gradcheck_with_dropout(rng):
    """GPT(cfg) without rng: every dropout, the attention-probability one included, follows
    tinylm's global generator; dropout_seed gives each its own fixed stream."""
    model = randomise(GPT(gpt_cfg()).double(), rng).train()
    idx = rng.integers(0, 11, size=(2, 5))
    names = assert_dropout_acts(model, lambda t: model.train(t)(idx), attention=2)
    assert len(names) == 1 + 2 * 2                              # drop, and per block resid_dropout + mlp.dropout
    report = check_module(model, idx, tol=1e-6, dropout_seed=1)
    assert_everything_checked(model, report)


@pytest.mark.parametrize("cls", [Block, CausalSelfAttention])
def test_gpt_block_and_attention_gradcheck_with_dropout(rng, cls):
    m = randomise(cls(gpt_cfg(n_embd=6, n_head=3)).double(), rng).train()
    x = rng.standard_normal((2, 4, 6))
    assert_dropout_acts(m, lambda t: m.train(t)(x), attention=1)
    assert_everything_checked(m, check_module(m, x, tol=1e-6, dropout_seed=2), n_inputs=1)


# --- BERT: embeddings, attention probabilities, both residual branches, the heads' classifier --

V = 13


def bert_cfg(**kw):
    return BertConfig(**{"vocab_size": V, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                         "intermediate_size": 12, "max_position_embeddings": 8, "hidden_dropout_prob": P,
                         "attention_probs_dropout_prob": P, "classifier_dropout": 0.4, "num_labels": 3, **kw})


def bert_for_gradcheck(model, rng):
    """float64, off its init, key biases frozen (they provably get zero gradient: test_bert.py)."""
    randomise(model.double(), rng)
    for name, p in model.named_parameters():
        if name.endswith("attention.self.key.bias"):
            p.requires_grad = False
    return model.train()


def bert_batch(rng, B=2, T=4):
    ids = rng.integers(1, V, size=(B, T))                      # no [PAD]: its embedding row gets no gradient
    mask = np.ones((B, T), dtype=np.int64)
    mask[1, T - 1:] = 0
    return ids, mask, rng.integers(0, 2, size=(B, T))


class BertBothOutputs(Module):
    """BERT's hidden states and pooled [CLS] vector as one tuple, so check_module sees both."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, *a):
        hidden = self.bert(*a)
        return hidden, self.bert.pooler_output

    def backward(self, g):
        return self.bert.backward(*g)


class QAOneSide(Module):
    """Only the start (side 0) or only the end (side 1) logits: backward((g, None)) / ((None, g))."""

    def __init__(self, model, side):
        super().__init__()
        self.model, self.side = model, side

    def forward(self, *a):
        return self.model(*a)[self.side]

    def backward(self, g):
        return self.model.backward((g, None) if self.side == 0 else (None, g))


BERT_MODELS = {
    "bert": lambda: BertBothOutputs(BERT(bert_cfg(), rng=0)),
    "sequence_classification": lambda: BertForSequenceClassification(bert_cfg(), rng=0),
    "token_classification": lambda: BertForTokenClassification(bert_cfg(), rng=0),
    "question_answering": lambda: BertForQuestionAnswering(bert_cfg(), rng=0),
    "question_answering_start_only": lambda: QAOneSide(BertForQuestionAnswering(bert_cfg(), rng=0), 0),
    "question_answering_end_only": lambda: QAOneSide(BertForQuestionAnswering(bert_cfg(), rng=0), 1),
    "masked_lm": lambda: BertForMaskedLM(bert_cfg(), rng=0),
}


@pytest.mark.parametrize("name", BERT_MODELS)
def test_bert_gradcheck_with_dropout(rng, name):
    """rng=0: BERT shares ONE generator among all its dropouts (random.module_rng); the check gives
    each its own stream and puts the shared one back afterwards."""
    model = bert_for_gradcheck(BERT_MODELS[name](), rng)
    shared = {id(m.rng) for _, m in model.named_modules() if hasattr(m, "rng")}
    assert len(shared) == 1
    ids, mask, types = bert_batch(rng)
    names = assert_dropout_acts(model, lambda t: model.train(t)(ids, mask, types), attention=1)
    for site in ("embeddings.dropout", "attention.output.dropout", "layer.0.output.dropout"):
        assert any(n.endswith(site) for n in names), site
    if "classification" in name:
        assert any(n == "dropout" for n in names)              # the head's classifier dropout
    report = check_module(model, ids, mask, types, tol=1e-6, dropout_seed=3)
    assert_everything_checked(model, report)
    assert {id(m.rng) for _, m in model.named_modules() if hasattr(m, "rng")} == shared


# --- seq2seq models ---------------------------------------------------------------------------------

SV = 9
SRC = np.array([[5, 6, 7], [8, 4, 0]])                             # 0 = <pad>
TGT_IN = np.array([[1, 5, 6], [1, 7, 4]])                          # no <pad> (its embedding row gets no gradient)


def seq2seq_randomise(m, seed, scale=0.5, attention_scale=2.5):
    """As test_seq2seq.py: larger weights in the additive attention, or dW_q is too small to check."""
    r = np.random.default_rng(seed)
    for name, p in m.named_parameters():
        p.data = r.standard_normal(p.shape) * (attention_scale if name.startswith("attention") else scale)
    return m


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_seq2seq_gradcheck_with_dropout(kind):
    if kind == "lstm":                                           # src/tgt/out dropout + between the 2 layers
        m = LSTMSeq2Seq(SV, SV, embed_dim=2, hidden_size=2, attn_dim=3, num_layers=2, dropout=P, rng=0)
        n_drop, tol = 3, 1e-6
    else:                                                        # embeddings + every sublayer's dropouts
        m = TransformerSeq2Seq(SV, SV, d_model=4, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                               dim_feedforward=4, dropout=P, rng=0)
        n_drop, tol = 2 + 3 + 4, 1e-5
    m = seq2seq_randomise(m.double(), seed=2).train()
    names = assert_dropout_acts(m, lambda t: m.train(t)(SRC, TGT_IN), attention=0 if kind == "lstm" else 3)
    assert len(names) == n_drop
    if kind == "lstm":
        assert m.encoder.dropout == P and m.decoder.dropout == P
    report = check_module(m, SRC, TGT_IN, tol=tol, dropout_seed=4)
    assert len(report.errors) == len(list(m.parameters()))


# --- transformer layers and stacks ----------------------------------------------------------------

C, H, F = 4, 2, 6


def _pad(B, L, rng):
    pad = rng.random((B, L)) < 0.4
    pad[:, 0] = False
    return pad


@pytest.mark.parametrize("norm_first, batch_first", [(False, True), (True, False)])
def test_encoder_layer_gradcheck_with_dropout(rng, norm_first, batch_first):
    """Self-attention probabilities, dropout (ff), dropout1, dropout2: four distinct masks."""
    m = TransformerEncoderLayer(C, H, F, dropout=P, norm_first=norm_first, batch_first=batch_first,
                                activation="gelu", rng=5)
    m = randomise(m.double(), rng, scale=0.5).train()
    B, S = 2, 3
    x = rng.standard_normal((B, S, C) if batch_first else (S, B, C))
    kw = dict(src_key_padding_mask=_pad(B, S, rng), is_causal=True)
    names = assert_dropout_acts(m, lambda t: m.train(t)(x, **kw), attention=1)
    assert len(names) == 3
    assert_everything_checked(m, check_module(m, x, forward_kwargs=kw, tol=1e-6, dropout_seed=5), n_inputs=1)


def test_stacks_gradcheck_with_dropout(rng):
    """Two layers each (the clones get their own dropout generators) and a final norm."""
    kw = dict(dropout=P, dim_feedforward=4, batch_first=True, rng=3)
    enc = TransformerEncoder(TransformerEncoderLayer(C, H, norm_first=True, **kw), 2, norm=LayerNorm(C))
    dec = TransformerDecoder(TransformerDecoderLayer(C, H, **kw), 2, norm=LayerNorm(C))
    enc, dec = randomise(enc.double(), rng, 0.5).train(), randomise(dec.double(), rng, 0.5).train()
    pad = np.array([[False, False, True], [False, False, False]])
    src, tgt, mem = rng.standard_normal((2, 3, C)), rng.standard_normal((2, 2, C)), rng.standard_normal((2, 3, C))
    ekw = dict(src_key_padding_mask=pad, is_causal=True)
    dkw = dict(memory_key_padding_mask=pad, tgt_is_causal=True)
    assert len(assert_dropout_acts(enc, lambda t: enc.train(t)(src, **ekw), attention=2)) == 6
    assert len(assert_dropout_acts(dec, lambda t: dec.train(t)(tgt, mem, **dkw), attention=4)) == 8
    assert_everything_checked(enc, check_module(enc, src, forward_kwargs=ekw, tol=1e-6, dropout_seed=6), 1)
    assert_everything_checked(dec, check_module(dec, tgt, mem, forward_kwargs=dkw, tol=1e-6, dropout_seed=7), 2)


# --- RNN / LSTM / GRU: dropout between stacked layers, a different mask at each boundary ----------

class FlatStates(Module):
    """forward(x, h0[, c0]) -> (output, h_n[, c_n]) with every initial state a float input."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.lstm = isinstance(layer, LSTM)

    def forward(self, x, *states):
        output, final = self.layer(x, tuple(states) if self.lstm else states[0], lengths=np.array([3, 2]))
        return (output, *final) if self.lstm else (output, final)

    def backward(self, g):
        dx, dhx = self.layer.backward(g[0], *g[1:])
        return (dx, *dhx) if self.lstm else (dx, dhx)


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_stacked_recurrent_gradcheck_with_distinct_dropout_masks(rng, cls):
    """Three layers, so two boundaries; the layer's one generator advances between them, so the two
    masks differ and a backward that uses the wrong boundary's mask fails."""
    layer = cls(3, 2, num_layers=3, dropout=0.5, bidirectional=True, rng=0).double().train()
    m = FlatStates(layer)
    x = rng.standard_normal((3, 2, 3))
    states = [0.5 * rng.standard_normal((6, 2, 2)) for _ in range(2 if cls is LSTM else 1)]
    assert_dropout_acts(m, lambda t: m.train(t)(x, *states))
    with fixed_random_streams(m, 8) as reset:
        reset()
        m(x, *states)
        masks = [c.mask for c in layer._cache[1]]
    assert len(masks) == 2 and (masks[0] == 0).any() and not np.array_equal(masks[0], masks[1])
    report = check_module(m, x, *states, tol=1e-6, dropout_seed=8)
    assert_everything_checked(m, report, n_inputs=1 + len(states))


# --- TextCNN ----------------------------------------------------------------------------------------

def test_textcnn_gradcheck_with_dropout(rng):
    model = TextCNN(vocab_size=12, num_classes=3, embed_dim=4, num_filters=3, kernel_sizes=(2, 3), dropout=P,
                    rng=0).double().train()
    ids = np.array([[3, 5, 7, 2, 9, 4], [8, 1, 6, 11, 0, 0]])
    kw = {"lengths": np.array([6, 4])}
    assert assert_dropout_acts(model, lambda t: model.train(t)(ids, **kw)) == ["dropout"]
    report = check_module(model, ids, forward_kwargs=kw, tol=1e-6, dropout_seed=9)
    assert set(report.errors) == {n for n, _ in model.named_parameters()}


# --- Keras Dropout layer in training mode ------------------------------------------------------------

def test_keras_dropout_gradcheck_in_training_mode(rng):
    """model(ids, training=True): the Dropout layers act (model(ids) alone is inference mode)."""
    model = Sequential([KerasEmbedding(9, 3), Conv1D(3, 2, padding="same", activation="tanh"), KerasDropout(P, seed=1),
                        KerasLSTM(2, return_sequences=True), GlobalMaxPooling1D(), KerasDropout(P), Dense(2)])
    ids = rng.integers(1, 9, (3, 5))
    model.build((None, ids.shape[1]))
    model.double()
    randomise(model, rng)
    assert len(assert_dropout_acts(model, lambda t: model(ids, training=t))) == 2
    report = check_module(model, ids, forward_kwargs={"training": True}, tol=1e-6, dropout_seed=10)
    assert set(report.errors) == {n for n, _ in model.named_parameters()}


# --- MultiheadAttention: dropout + padding + causal + sequence-first ----------------------------------

class AttnOutput(Module):
    """attn_output only, for three separate inputs."""

    def __init__(self, mha, **kwargs):
        super().__init__()
        self.mha, self.kwargs = mha, kwargs

    def forward(self, q, k, v):
        return self.mha(q, k, v, need_weights=False, **self.kwargs)[0]

    def backward(self, dout):
        return self.mha.backward(dout)


def test_mha_gradcheck_with_dropout_padding_causal_sequence_first(rng):
    mha = MultiheadAttention(4, 2, dropout=P, batch_first=False, rng=4).double().train()
    mha.in_proj_bias.data = rng.standard_normal(12)           # non-zero biases, so they are checked too
    mha.out_proj.bias.data = rng.standard_normal(4)
    T, S, B = 3, 5, 2
    pad = np.array([[False, False, True, False, False], [True, False, False, False, False]])
    m = AttnOutput(mha, key_padding_mask=pad, is_causal=True)
    q, k, v = (rng.standard_normal((L, B, 4)) for L in (T, S, S))
    assert_dropout_acts(m, lambda t: m.train(t)(q, k, v), attention=1)
    report = check_module(m, q, k, v, tol=1e-6, dropout_seed=11)
    assert_everything_checked(m, report, n_inputs=3)
