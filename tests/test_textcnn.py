import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.data.sst2 import SST2_URL, load_sst2, read_sst2_tsv, toy_sentiment
from tinylm.gradcheck import check_module
from tinylm.models.textcnn import TextCNN


def small(**kwargs):
    args = dict(vocab_size=12, num_classes=3, embed_dim=4, num_filters=3, kernel_sizes=(2, 3), dropout=0.5, rng=0)
    args.update(kwargs)
    return TextCNN(**args)


def test_gradcheck_every_parameter_with_lengths(rng):
    model = small().double().eval()                          # eval: dropout off, so the forward is deterministic
    ids = np.array([[3, 5, 7, 2, 9, 4], [8, 1, 6, 11, 0, 0]])
    report = check_module(model, ids, forward_kwargs={"lengths": np.array([6, 4])}, tol=1e-7)
    assert set(report.errors) == {n for n, _ in model.named_parameters()}


def test_gradcheck_short_sentences_without_padding_idx():
    # Sentences shorter than the widest kernel. Without lengths the 0 ids are words, and with
    # padding_idx=None their row is a parameter like any other: it must get its gradient.
    model = small(padding_idx=None, kernel_sizes=(1, 3)).double().eval()
    ids = np.array([[3, 0, 0, 0], [8, 1, 6, 0]])
    check_module(model, ids, forward_kwargs={"lengths": np.array([1, 3])}, tol=1e-7)
    check_module(model, ids, tol=1e-7)


def reference_logits(model, ids, lengths):
    """Kim's TextCNN written directly (eval mode): zero-padded wide windows, max, ReLU, linear."""
    E = model.embedding.weight.data
    rows = []
    for row, n in zip(ids, lengths):
        feats = []
        for k, conv in zip(model.kernel_sizes, model.convs):
            words = np.pad(E[row[:n]], ((k - 1, k - 1), (0, 0)))                  # (n + 2(k-1), C)
            w, b = conv.weight.data, conv.bias.data                               # (F, C, k)
            windows = [np.einsum("kc,fck->f", words[l:l + k], w) + b for l in range(n + k - 1)]
            feats.append(np.maximum(np.max(windows, axis=0), 0))
        rows.append(model.fc.weight.data @ np.concatenate(feats) + model.fc.bias.data)
    return np.array(rows)


def test_matches_a_direct_implementation(rng):
    model = small(kernel_sizes=(1, 2, 4)).double().eval()
    ids, lengths = rng.integers(0, 12, (3, 5)), np.array([5, 2, 1])
    np.testing.assert_allclose(model(ids, lengths=lengths), reference_logits(model, ids, lengths), rtol=1e-10)


def test_padding_changes_nothing(rng):
    model = small().double().eval()
    sentence = rng.integers(1, 12, 5)
    alone = model(sentence[None, :])
    padded = np.zeros((2, 9), dtype=np.int64)
    padded[0, :5] = sentence
    padded[1] = rng.integers(1, 12, 9)
    np.testing.assert_allclose(model(padded, lengths=np.array([5, 9]))[0], alone[0], rtol=1e-12)
    padded[0, 5:] = rng.integers(1, 12, 4)                   # other words in the padding: still ignored
    np.testing.assert_allclose(model(padded, lengths=np.array([5, 9]))[0], alone[0], rtol=1e-12)


def test_dropout_only_in_training():
    model = small(dropout=0.5)
    ids = np.array([[1, 2, 3, 4]])
    a, b = model(ids), model(ids)
    assert not np.allclose(a, b)
    model.eval()
    np.testing.assert_array_equal(model(ids), model(ids))


@given(B=st.integers(1, 3), T=st.integers(1, 7), widths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_shapes_and_gradients(B, T, widths, dtype):
    model = small(kernel_sizes=widths).to(dtype)
    ids = np.arange(B * T).reshape(B, T) % 12
    logits = model(ids, lengths=np.full(B, T))
    assert logits.shape == (B, 3) and logits.dtype == dtype
    assert model.backward(np.ones_like(logits)) is None
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == dtype, name


@pytest.mark.parametrize("bad, error, match", [
    (lambda m: m(np.ones((2, 4))), TypeError, r"ids: expected an integer array"),
    (lambda m: m(np.ones(4, dtype=np.int64)), ValueError, r"ids: expected shape \(B, T\)"),
    (lambda m: m(np.ones((2, 4), np.int64), lengths=np.array([4, 5])), ValueError,
     r"lengths: every length must lie in \[1, 4\]"),
    (lambda m: m(np.ones((2, 4), np.int64), lengths=np.array([4])), ValueError,
     r"lengths: expected shape \(B,\) with B=2"),
    (lambda m: m(np.full((1, 4), 12)), ValueError, r"ids: ids must lie in \[0, 12\), got 12"),
    # the upstream gradient, named dlogits, against the logits' shape (2, 3) and dtype float32
    (lambda m: [m(np.ones((2, 4), np.int64)), m.backward(np.zeros((2, 4), np.float32))], ValueError,
     r"dlogits: expected shape \(2, 3\), got shape \(2, 4\)"),
    (lambda m: [m(np.ones((2, 4), np.int64)), m.backward(None)], TypeError,
     r"dlogits: expected a floating-point array .* got NoneType"),
    (lambda m: [m(np.ones((2, 4), np.int64)), m.backward(np.ones((2, 3), int))], TypeError,
     r"dlogits: expected a floating-point array .* got int64"),
    (lambda m: [m(np.ones((2, 4), np.int64)), m.backward(np.zeros((2, 3), np.float64))], TypeError,
     r"dlogits: expected dtype float32 \(the forward's output\), got float64"),
    (lambda m: m.backward(np.zeros((2, 3), np.float32)), RuntimeError, r"TextCNN.backward called before forward"),
])
def test_bad_input(bad, error, match):
    with pytest.raises(error, match=match):
        bad(small())


def test_bad_arguments():
    with pytest.raises(ValueError, match="kernel_sizes: expected at least one"):
        small(kernel_sizes=())
    with pytest.raises(ValueError, match="dropout: expected a probability"):
        small(dropout=1.0)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(vocab_size=0), ValueError, r"vocab_size: expected a positive int, got 0"),
    (dict(embed_dim=0), ValueError, r"embed_dim: expected a positive int, got 0"),
    (dict(kernel_sizes=3), TypeError, r"kernel_sizes: expected a sequence of kernel widths \(positive ints\), "
                                      r"e.g. \(3, 4, 5\), got 3"),
    (dict(kernel_sizes="345"), TypeError, r"kernel_sizes: expected a sequence of kernel widths"),
    (dict(kernel_sizes=(2, 0)), ValueError, r"kernel_sizes: expected a positive int, got 0"),
    (dict(rng="x"), TypeError, r"rng: expected None, a non-negative int or a numpy Generator, got 'x'"),
    (dict(padding_idx=12), ValueError,
     r"padding_idx: expected None or an int in \[-12, 12\) \(V=12\), got 12"),
])
def test_bad_constructor_arguments_name_textcnn_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        small(**kwargs)


def test_numpy_sizes_are_accepted():
    model = small(vocab_size=np.int64(12), kernel_sizes=[np.int64(2)], embed_dim=np.int64(4))
    assert model.kernel_sizes == (2,) and model(np.ones((1, 3), np.int64)).shape == (1, 3)


# --- the SST-2 reader ----------------------------------------------------------------------------

def test_read_sst2(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nit 's great \t1\ndull \t0\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nfine\t1\n")
    splits = load_sst2(tmp_path)
    assert splits["train"][0] == ["it 's great", "dull"] and splits["train"][1].tolist() == [1, 0]
    assert splits["dev"][1].dtype == np.int64


def test_read_sst2_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=SST2_URL.replace(".", r"\.")):
        load_sst2(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="dev.tsv not found"):
        (tmp_path / "train.tsv").write_text("sentence\tlabel\n")
        load_sst2(tmp_path)
    (tmp_path / "bad.tsv").write_text("index\tsentence\n0\thello\n")
    with pytest.raises(ValueError, match="expected the GLUE SST-2 header"):
        read_sst2_tsv(tmp_path / "bad.tsv")
    (tmp_path / "bad.tsv").write_text("sentence\tlabel\nok\t1\nnope\t2\n")
    with pytest.raises(ValueError, match=r"bad.tsv, line 3: expected 'sentence<TAB>0 or 1'"):
        read_sst2_tsv(tmp_path / "bad.tsv")


def test_toy_sentiment_is_deterministic_and_labelled_by_its_words():
    a, b = toy_sentiment(50, 10, seed=3), toy_sentiment(50, 10, seed=3)
    assert a["train"][0] == b["train"][0] and len(a["dev"][0]) == 10
    for text, label in zip(*a["train"]):
        positive_word = any(w in text.split() for w in ("good", "great", "wonderful", "charming", "moving",
                                                        "brilliant", "delightful", "funny", "beautiful", "smart",
                                                        "touching", "gripping"))
        assert label == (positive_word != (" not " in text))

