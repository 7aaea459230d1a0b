import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.text import Tokenizer, pad_sequences, text_to_word_sequence

TEXTS = ["The cat sat.", "the DOG sat on the mat!"]


def test_text_to_word_sequence_lowers_and_splits_on_punctuation():
    assert text_to_word_sequence("Hello, World! it's--fine") == ["hello", "world", "it's", "fine"]
    assert text_to_word_sequence("A-B", filters="", lower=False) == ["A-B"]


def test_word_index_ranks_by_count_then_first_seen():
    tok = Tokenizer()
    tok.fit_on_texts(TEXTS)
    # counts: the 3, sat 2, then cat, dog, on, mat once each, in the order they first appear
    assert tok.word_index == {"the": 1, "sat": 2, "cat": 3, "dog": 4, "on": 5, "mat": 6}
    assert tok.index_word[4] == "dog"
    assert tok.word_counts["the"] == 3 and tok.word_docs["the"] == 2 and tok.word_docs["mat"] == 1
    assert tok.document_count == 2
    assert tok.vocab_size == 7                               # six words and the padding id 0
    assert tok.texts_to_sequences(["the mat sat"]) == [[1, 6, 2]]


def test_oov_token_takes_id_1_and_num_words_limits_ids():
    tok = Tokenizer(num_words=4, oov_token="<unk>")
    tok.fit_on_texts(TEXTS)
    assert tok.word_index["<unk>"] == 1 and tok.word_index["the"] == 2 and tok.word_index["cat"] == 4
    # ids < 4 are kept: <unk>, the, sat; cat (4) and unseen words become <unk>
    assert tok.texts_to_sequences(["the cat sat", "zebra"]) == [[2, 1, 3], [1]]
    assert tok.vocab_size == 4
    assert tok.sequences_to_texts([[0, 2, 3, 1]]) == ["the sat <unk>"]


def test_without_oov_token_unknown_words_are_dropped():
    tok = Tokenizer(num_words=3)
    tok.fit_on_texts(TEXTS)
    assert tok.texts_to_sequences(["the cat sat zebra"]) == [[1, 2]]


def test_fit_on_texts_accumulates():
    a, b = Tokenizer(), Tokenizer()
    a.fit_on_texts(TEXTS)
    b.fit_on_texts(TEXTS[:1])
    b.fit_on_texts(TEXTS[1:])
    assert a.word_index == b.word_index and a.word_counts == b.word_counts


def test_json_round_trip():
    tok = Tokenizer(num_words=5, oov_token="<unk>", filters="!")
    tok.fit_on_texts(TEXTS + ["cat cat dog"])
    back = Tokenizer.from_json(tok.to_json())
    assert back.word_index == tok.word_index and back.word_docs == tok.word_docs
    assert back.texts_to_sequences(TEXTS) == tok.texts_to_sequences(TEXTS)
    assert repr(back) == repr(tok)


@pytest.mark.parametrize("bad, error, match", [
    (lambda: Tokenizer(num_words=0), ValueError, r"num_words: expected None or a positive int, got 0"),
    (lambda: Tokenizer(oov_token=3), TypeError, r"oov_token: expected None or a str"),
    (lambda: Tokenizer().fit_on_texts("one text"), TypeError, r"texts: expected a list of texts, got a single str"),
    (lambda: Tokenizer().fit_on_texts(["ok", 3]), TypeError, r"texts\[1\]: expected str, got int"),
    (lambda: Tokenizer().texts_to_sequences(["a"]), RuntimeError, r"call fit_on_texts"),
    (lambda: Tokenizer.from_json('{"class_name": "X"}'), ValueError, r"not a Tokenizer's JSON"),
])
def test_tokenizer_bad_input(bad, error, match):
    with pytest.raises(error, match=match):
        bad()


def test_pad_sequences_modes():
    seqs = [[1, 2, 3, 4], [5], []]
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=3),
                                  [[2, 3, 4], [0, 0, 5], [0, 0, 0]])
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=3, padding="post", truncating="post", value=9),
                                  [[1, 2, 3], [5, 9, 9], [9, 9, 9]])
    out = pad_sequences(seqs)
    assert out.shape == (3, 4) and out.dtype == np.int32
    np.testing.assert_array_equal(out[1], [0, 0, 0, 5])
    assert pad_sequences([[1.5]], dtype="float32", maxlen=2).tolist() == [[0.0, 1.5]]


@given(seqs=st.lists(st.lists(st.integers(1, 50), max_size=8), min_size=1, max_size=6),
       maxlen=st.integers(0, 10), padding=st.sampled_from(["pre", "post"]),
       truncating=st.sampled_from(["pre", "post"]))
def test_pad_sequences_keeps_the_right_ids(seqs, maxlen, padding, truncating):
    out = pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating)
    assert out.shape == (len(seqs), maxlen)
    for row, s in zip(out, seqs):
        kept = s if len(s) <= maxlen else (s[len(s) - maxlen:] if truncating == "pre" else s[:maxlen])
        words = row[row != 0].tolist()                       # ids are >= 1, so 0 is padding
        assert words == kept
        if kept and padding == "pre":
            assert row[-1] == kept[-1]
        if kept and padding == "post":
            assert row[0] == kept[0]


@pytest.mark.parametrize("kwargs, match", [
    ({"padding": "middle"}, r"padding: expected 'pre' or 'post', got 'middle'"),
    ({"truncating": "both"}, r"truncating: expected 'pre' or 'post'"),
    ({"maxlen": -1}, r"maxlen: expected None or an int >= 0, got -1"),
])
def test_pad_sequences_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences([[1, 2]], **kwargs)


def test_pad_sequences_bad_sequences():
    with pytest.raises(ValueError, match=r"sequences\[1\]: expected a 1-D sequence of ids, got shape \(1, 2\)"):
        pad_sequences([[1], [[1, 2]]])
    with pytest.raises(TypeError, match="sequences: expected a list of sequences"):
        pad_sequences("abc")
