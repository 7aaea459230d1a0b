"""CharTokenizer: sorted deterministic ids, exact round trips, unknown characters, save/load."""
import json
import random

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.tokenizers.char import CharTokenizer

# Any code point, surrogates included: a Python str may hold them and a char tokenizer never
# needs their UTF-8 bytes.
any_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), min_size=1)


def test_ids_follow_sorted_characters():
    tok = CharTokenizer.from_text("hello")
    # distinct characters sorted: e < h < l < o  ->  e=0, h=1, l=2, o=3
    assert tok.chars == ("e", "h", "l", "o")
    assert tok.vocab_size == 4
    assert tok.encode("hello") == [1, 0, 2, 2, 3]
    assert tok.encode("hole") == [1, 3, 2, 0]
    assert tok.decode([3, 2, 2, 0, 1]) == "olleh"
    assert tok.encode("") == [] and tok.decode([]) == ""


def test_chars_argument_accepts_str_or_iterable_and_dedups():
    assert CharTokenizer("cabca").chars == ("a", "b", "c")
    assert CharTokenizer(["z", "\n", " ", "z"]).chars == ("\n", " ", "z")
    assert CharTokenizer(iter("ba")) == CharTokenizer.from_text("ab")


@given(any_text)
def test_round_trip_any_text(text):
    tok = CharTokenizer.from_text(text)
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text
    assert tok.vocab_size == len(set(text))


@given(any_text, st.randoms(use_true_random=False))
def test_ids_do_not_depend_on_character_order(text, rnd):
    chars = list(text)
    rnd.shuffle(chars)
    shuffled = CharTokenizer("".join(chars))
    assert shuffled == CharTokenizer.from_text(text)
    assert shuffled.encode(text) == CharTokenizer.from_text(text).encode(text)
    assert list(shuffled.chars) == sorted(set(text))


def test_unicode_round_trip_examples():
    text = "naïve café 你好 😀👍🏽 e\u0301 \x00\x1b\t\r\n   end"
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text
    # a combining accent and an emoji modifier are characters of their own
    assert len(tok.encode("e\u0301")) == 2 and len(tok.encode("👍🏽")) == 2


def test_unknown_character_is_a_clear_error():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"character 'z' \(U\+007A\) at index 2 is not in the vocabulary"):
        tok.encode("abzcz")
    with pytest.raises(ValueError, match=r"'\\n' \(U\+000A\) at index 0"):
        tok.encode("\nab")


def test_unk_token_appended_after_the_characters():
    plain = CharTokenizer.from_text("abc")
    tok = CharTokenizer.from_text("abc", unk_token="<unk>")
    assert tok.vocab_size == 4 and tok.unk_id == 3
    assert tok.encode("abc") == plain.encode("abc")           # character ids unchanged
    assert tok.encode("axc?") == [0, 3, 2, 3]
    assert tok.decode(tok.encode("axc")) == "a<unk>c"


def test_unk_token_that_is_already_a_character_keeps_its_id():
    tok = CharTokenizer.from_text("ab?", unk_token="?")
    assert tok.vocab_size == 3 and tok.unk_id == tok.encode("?")[0] == 0   # '?' < 'a' < 'b'
    assert tok.encode("a!b") == [1, 0, 2]


def test_decode_accepts_numpy_ids():
    tok = CharTokenizer.from_text("abc")
    assert tok.decode(np.array([2, 0, 1], dtype=np.int32)) == "cab"
    assert tok.decode(np.array([2, 0], dtype=np.uint8)) == "ca"


def test_save_load_round_trip(tmp_path):
    for tok in (CharTokenizer.from_text("Hello, World!\n\t\x00 😀 \ud800\udc00"),   # two lone surrogates
                CharTokenizer.from_text("xyz", unk_token="<unk>")):
        path = tmp_path / "tok.json"
        tok.save(path)
        loaded = CharTokenizer.load(path)
        assert loaded == tok
        assert loaded.chars == tok.chars and loaded.unk_token == tok.unk_token
        assert loaded.vocab_size == tok.vocab_size
        state = json.loads(path.read_text(encoding="utf-8"))
        assert state["type"] == "tinylm.CharTokenizer" and state["chars"] == list(tok.chars)


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"type": "something else"}))
    with pytest.raises(ValueError, match=r"not a saved CharTokenizer \(expected type 'tinylm.CharTokenizer', "
                                         r"got 'something else'\)"):
        CharTokenizer.load(path)
    path.write_text(json.dumps({"type": "tinylm.CharTokenizer", "version": 99, "chars": ["a"], "unk_token": None}))
    with pytest.raises(ValueError, match="unsupported CharTokenizer file version 99"):
        CharTokenizer.load(path)


def test_bad_input_messages():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(TypeError, match="text: expected str, got bytes"):
        tok.encode(b"abc")
    with pytest.raises(TypeError, match="text: expected str, got list"):
        CharTokenizer.from_text(["a"])
    with pytest.raises(ValueError, match=r"ids: token ids must lie in \[0, 3\), got 3 at position 1"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match=r"got -1 at position 0"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="ids: expected int token ids, got float 1.0 at position 0"):
        tok.decode([1.0])
    with pytest.raises(TypeError, match="ids: expected int token ids, got bool True"):
        tok.decode([True])
    with pytest.raises(TypeError, match="ids: expected a sequence of int token ids, got str"):
        tok.decode("012")
    with pytest.raises(TypeError, match="ids: expected a sequence of int token ids, got NoneType"):
        tok.decode(None)
    with pytest.raises(TypeError, match="ids: expected a sequence of int token ids, got int"):
        tok.decode(3)
    with pytest.raises(TypeError, match=r"ids: expected a sequence of int token ids, got an array of shape \(1, 2\)"):
        tok.decode(np.array([[0, 1]]))
    assert tok.decode(np.array([0, 1])) == "ab"
    with pytest.raises(ValueError, match="chars: every entry must be a single character, got 'ab'"):
        CharTokenizer(["a", "ab"])
    with pytest.raises(ValueError, match="chars: expected at least one character, got none"):
        CharTokenizer.from_text("")
    with pytest.raises(TypeError, match="chars: expected a str or an iterable of single characters, got bytes"):
        CharTokenizer(b"abc")
    with pytest.raises(ValueError, match="unk_token: expected None or a non-empty str, got ''"):
        CharTokenizer("abc", unk_token="")


def test_decode_never_indexes_from_the_end():
    # Python lists accept negative indices; a tokenizer must not.
    tok = CharTokenizer.from_text("ab")
    rnd = random.Random(0)
    for _ in range(20):
        bad = rnd.choice([-2, -1, 2, 3, 10**9])
        with pytest.raises(ValueError):
            tok.decode([0, bad])
