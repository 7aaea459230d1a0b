"""ByteLevelBPETokenizer: hand-worked merges and ids, the incremental trainer against a
recount-everything reference, exact round trips of arbitrary text, special tokens, GPT-2 files,
bad input. The Hugging Face cross-check lives in test_tokenizer_bpe_hf.py."""
import importlib.util
import json
import os
import re
import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.tokenizers.bpe import (GPT2_SPLIT_PATTERN, ByteLevelBPETokenizer, bytes_to_unicode,
                                   pretokenize)

EOT = "<|endoftext|>"
MIXED_CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's the dog's day; they'll see, we've won!\n" * 3,
    "naïve café, Ångström, straße, ПРИВЕТ мир, γειά σου κόσμε, שלום, مرحبا\n" * 2,
    "你好，世界。東京は晴れです。안녕하세요 🙂😀👍🏽👨‍👩‍👧 🇫🇷 e\u0301 a\u0308\n" * 2,
    "def f(x):\n    return x ** 2  # 12345 67.89\n\tTAB\r\n   \n" * 3,
]

# Arbitrary UTF-8-encodable text: every code point except surrogates (hypothesis' default).
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)))


@pytest.fixture(scope="module")
def tok():
    return ByteLevelBPETokenizer.train(MIXED_CORPUS, 400, special_tokens=[EOT, "<|pad|>"])


def spell(tokens):
    """Bytes tokens -> vocab.json spellings, for comparing with ``tok.merges``."""
    sym = bytes_to_unicode()
    return ["".join(sym[b] for b in t) for t in tokens]


def reference_train(texts, vocab_size, special_tokens=()):
    """Textbook BPE: recount every pair from scratch before each merge. Tokens are bytes objects."""
    words = Counter()
    for text in texts:
        cut = "|".join(re.escape(s) for s in sorted(special_tokens, key=len, reverse=True))
        for chunk in (re.split(cut, text) if cut else [text]):    # special tokens cut out
            words.update(pretokenize(chunk))
    segs = {w: [bytes([b]) for b in w.encode("utf-8")] for w in words}
    vocab = {bytes([b]) for b in range(256)}
    merges = []
    while len(vocab) < vocab_size - len(special_tokens):
        counts = Counter()
        for w, n in words.items():
            for pair in zip(segs[w], segs[w][1:]):
                counts[pair] += n
        allowed = [p for p in counts if spell([p[0] + p[1]])[0] not in special_tokens]
        if not allowed:
            break
        best = min(allowed, key=lambda p: (-counts[p], p[0], p[1]))
        merges.append(tuple(spell(best)))
        vocab.add(best[0] + best[1])
        for w, seg in segs.items():
            out, i = [], 0
            while i < len(seg):
                if i + 1 < len(seg) and (seg[i], seg[i + 1]) == best:
                    out.append(seg[i] + seg[i + 1])
                    i += 2
                else:
                    out.append(seg[i])
                    i += 1
            segs[w] = out
    return merges


# ----------------------------------------------------------------------------- byte spelling

def test_bytes_to_unicode_is_printable_and_one_to_one():
    sym = bytes_to_unicode()
    assert sorted(sym) == list(range(256))
    assert len(set(sym.values())) == 256
    for b, c in sym.items():
        assert len(c) == 1 and c.isprintable() and not c.isspace()
        if 0x21 <= b <= 0x7E:
            assert c == chr(b)                        # printable ASCII stands for itself
    # the shifted bytes, in byte order, are chr(256), chr(257), ...: byte 0 is the first,
    # space (0x20) the 33rd, newline (0x0A) the 11th
    assert sym[0x00] == "\u0100" and sym[0x20] == "Ġ" and sym[0x0A] == "Ċ"
    assert sym[0x7F] == chr(256 + 33) and sym[0xAD] == chr(256 + 67)


# ----------------------------------------------------------------------------- pre-tokenizer

@pytest.mark.parametrize("text, pieces", [
    ("Hello world", ["Hello", " world"]),
    ("I'm here, it's 2024!", ["I", "'m", " here", ",", " it", "'s", " 2024", "!"]),
    ("don'T", ["don", "'", "T"]),                     # contractions are lower case only
    ("a   b", ["a", "  ", " b"]),                     # the last space of a run joins the word
    ("x  \n\n  ", ["x", "  \n\n  "]),                   # trailing white space stays one run
    ("abc123def", ["abc", "123", "def"]),
    ("  ...?!", [" ", " ...?!"]),
    ("café 東京 ½", ["café", " 東京", " ½"]),             # \p{L} and \p{N} beyond ASCII
    ("a \x1cb", ["a", " \x1c", "b"]),                  # U+001C is a symbol, not white space
    ("e\u0301t", ["e", "\u0301", "t"]),                 # a combining mark (Mn) is neither L nor N
    ("", []),
])
def test_pretokenize_examples(text, pieces):
    assert pretokenize(text) == pieces


@given(any_text)
def test_pretokenize_covers_the_text(text):
    assert "".join(pretokenize(text)) == text


# Characters assigned in this Python's Unicode version (the documented difference from `regex`
# concerns only characters added later).
assigned_text = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cn")))


@pytest.mark.skipif(importlib.util.find_spec("regex") is None, reason="the regex module is not installed")
@given(st.one_of(assigned_text, st.text(alphabet=" \t\n\x1c\x85\xa0\u2003'sdtlmve1٣Ⅻ.,!é😀\u0301")))
def test_pretokenize_matches_the_original_regex_pattern(text):
    import regex
    assert pretokenize(text) == regex.findall(GPT2_SPLIT_PATTERN, text)


# ----------------------------------------------------------------------------- training

def test_train_aaabdaaabac_by_hand():
    # One pre-token, "aaabdaaabac". Pair counts: aa 4 (two in each "aaa"), ab 2, bd da ba ac 1.
    #  1. merge a a   -> aa a b d aa a b a c ; counts: (aa,a) 2, (a,b) 2, the rest 1
    #  2. tie at 2: (a,b) wins, since b"a" < b"aa"  -> aa ab d aa ab a c
    #  3. (aa,ab) 2   -> aaab d aaab a c ; four pairs left, each once
    #  4. tie at 1: smallest left bytes is b"a": (a,c)  -> aaab d aaab ac
    tok = ByteLevelBPETokenizer.train("aaabdaaabac", 260)
    assert tok.merges == [("a", "a"), ("a", "b"), ("aa", "ab"), ("a", "c")]
    vocab = tok.get_vocab()
    assert [vocab[t] for t in ("aa", "ab", "aaab", "ac")] == [256, 257, 258, 259]
    assert vocab["a"] == ord("a") and tok.vocab_size == 260
    a, b, c, d = (ord(ch) for ch in "abcd")
    assert tok.encode("aaabdaaabac") == [258, d, 258, 259]
    assert tok.encode("aaaa") == [256, 256]
    assert tok.encode("aaa") == [256, a]              # left to right: (aa) a
    assert tok.encode("abac") == [257, 259]
    assert tok.encode("cab d") == [c, 257, ord(" "), d]


def test_tie_break_by_bytes_across_pre_tokens():
    # "ba ab" -> pre-tokens "ba", " ab"; pairs (b,a) (Ġ,a) (a,b) all once.
    # Byte order: 0x20 < 'a' < 'b', so (Ġ,a) first; then (b,a) 1 and (Ġa,b) 1: b" a" < b"b".
    tok = ByteLevelBPETokenizer.train("ba ab", 259)
    assert tok.merges == [("Ġ", "a"), ("Ġa", "b"), ("b", "a")]
    assert tok.encode(" ab ba") == [257, ord(" "), 258]


def test_training_does_not_depend_on_document_order():
    docs = MIXED_CORPUS + ["zzz yyy zzz"]
    assert ByteLevelBPETokenizer.train(docs, 320) == ByteLevelBPETokenizer.train(docs[::-1], 320)


@pytest.mark.parametrize("docs", [MIXED_CORPUS, ["aaaaaaa aaaa aa a"], ["abababab ba ba ab"], ["x"], [""]])
def test_incremental_trainer_matches_recount_reference(docs):
    tok = ByteLevelBPETokenizer.train(docs, 330)
    assert tok.merges == reference_train(docs, 330)


@given(st.lists(st.text(alphabet="ab c\n'sé1", max_size=30), max_size=4), st.integers(256, 300))
def test_incremental_trainer_matches_reference_on_random_text(docs, vocab_size):
    assert ByteLevelBPETokenizer.train(docs, vocab_size).merges == reference_train(docs, vocab_size)


def test_two_rules_may_spell_the_same_token():
    # Legal in GPT-2-format files: "a aa" and "aa a" both make "aaa" (one vocab entry).
    sym = bytes_to_unicode()
    vocab = {sym[b]: b for b in range(256)} | {"aa": 256, "aaa": 257, "Ġa": 258}
    t = ByteLevelBPETokenizer(vocab, [("Ġ", "a"), ("a", "a"), ("a", "aa"), ("aa", "a")])
    assert t.vocab_size == 259 and t.special_tokens == {}
    a = ord("a")
    assert t.encode("aaa") == [257]          # a a a -> (a a) a -> "aa a" -> aaa
    assert t.encode("aaaa") == [256, 256]    # aa aa: no rule joins them
    assert t.encode(" aaa") == [258, 256]    # Ġa a a -> Ġa aa ("Ġa" ranks first)
    assert t.encode("aaaaa") == [256, 257]   # aa aa a -> aa aaa
    assert t.decode([257, a, 258]) == "aaaa a"


def test_training_stops_when_pairs_run_out():
    tok = ByteLevelBPETokenizer.train(["ab", "ab"], 1000, special_tokens=[EOT])
    assert tok.merges == [("a", "b")]
    assert tok.vocab_size == 258 and tok.special_tokens == {EOT: 257}


def test_frequent_words_become_single_tokens(tok):
    vocab = tok.get_vocab()
    assert tok.encode(" the") == [vocab["Ġthe"]]
    assert tok.encode(" quick") == [vocab["Ġquick"]]


# ----------------------------------------------------------------------------- round trips

@given(any_text)
def test_round_trip_arbitrary_text(tok, text):
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text
    assert tok.decode_bytes(ids) == text.encode("utf-8")
    assert tok.encode(text) == ids                            # second call goes through the cache


@given(st.lists(st.one_of(any_text, st.sampled_from([EOT, "<|pad|>", "<|", "|>"])), max_size=8))
def test_round_trip_with_special_tokens(tok, parts):
    text = "".join(parts)
    for allowed in ((), "all", [EOT]):
        ids = tok.encode(text, allowed_special=allowed)
        assert tok.decode(ids) == text


@pytest.mark.parametrize("text", [
    "👨‍👩‍👧‍👦🇯🇵🏳️‍🌈 👍🏿", "東京都の天気は晴れ。中文测试", "e\u0301\u0302 a\u0308 ñ", "\x00\x01\x1b[31m\x7f\x85",
    "   \t\t\n\n\r\n \u3000\u2028\u00a0", "ｆｕｌｌ　ｗｉｄｔｈ", "\U0010FFFF\uFFFE\uFEFF", "a" * 500, " " * 300,
])
def test_round_trip_examples(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_decode_of_a_partial_character_and_numpy_ids(tok):
    ids = tok.encode("🦀")                                    # 4 bytes, not in the corpus
    assert len(ids) >= 2 and "🦀".encode().startswith(tok.decode_bytes(ids[:1]))
    assert tok.decode(ids[:1]) == "\ufffd"                    # incomplete UTF-8 -> replacement char
    with pytest.raises(UnicodeDecodeError):
        tok.decode(ids[:1], errors="strict")
    assert tok.decode(np.asarray(tok.encode("fox dog"), dtype=np.int64)) == "fox dog"


# ----------------------------------------------------------------------------- special tokens

def test_special_tokens_get_the_last_ids(tok):
    assert tok.special_tokens == {EOT: 398, "<|pad|>": 399}
    assert tok.id_to_token(398) == EOT and tok.vocab_size == 400


def test_special_tokens_are_atomic_only_when_allowed(tok):
    text = f"dog{EOT} the<|pad|>"
    ordinary = tok.encode("dog") + tok.encode(EOT) + tok.encode(" the") + tok.encode("<|pad|>")
    assert tok.encode(text) == ordinary                              # default: plain text
    assert 398 not in ordinary and 399 not in ordinary
    assert tok.encode(text, allowed_special="all") == tok.encode("dog") + [398] + tok.encode(" the") + [399]
    assert tok.encode(text, allowed_special={EOT}) == (tok.encode("dog") + [398] + tok.encode(" the")
                                                        + tok.encode("<|pad|>"))
    assert tok.encode(EOT * 3, allowed_special="all") == [398] * 3


def test_longest_special_token_wins():
    t = ByteLevelBPETokenizer.train("x", 258, special_tokens=["<a>", "<a><b>"])
    assert t.encode("<a><b><a>", allowed_special="all") == [257, 256]


def test_special_tokens_never_learned_from_text_or_merges():
    # The special token's text is cut out of the corpus before counting: no "<|" rule.
    t = ByteLevelBPETokenizer.train([EOT * 50 + " hi hi"], 270, special_tokens=[EOT])
    assert not any("<" in l + r or "|" in l + r for l, r in t.merges)
    # A merge spelled exactly like a special token is never learned: "aa" stays two "a"s.
    t = ByteLevelBPETokenizer.train(["aaaa aaaa aaaa"], 262, special_tokens=["aa"])
    assert ("a", "a") not in t.merges and t.merges == reference_train(["aaaa aaaa aaaa"], 262, ["aa"])
    assert t.encode("aa") == [ord("a"), ord("a")]
    assert t.encode("aa", allowed_special="all") == [t.special_tokens["aa"]]


# ----------------------------------------------------------------------------- files

def test_save_and_from_pretrained_round_trip(tok, tmp_path):
    vocab_path, merges_path = tok.save(tmp_path / "gpt2ish")
    lines = open(merges_path, encoding="utf-8").read().split("\n")
    assert lines[0] == "#version: 0.2" and lines[-1] == ""
    assert [tuple(line.split(" ")) for line in lines[1:-1]] == tok.merges
    vocab = json.load(open(vocab_path, encoding="utf-8"))
    assert vocab["Ġ"] == 32 and vocab["Ċ"] == 10 and vocab[EOT] == 398
    loaded = ByteLevelBPETokenizer.from_pretrained(tmp_path / "gpt2ish")
    assert loaded == tok and loaded.special_tokens == tok.special_tokens
    text = "".join(MIXED_CORPUS) + EOT + "unseen wörds"
    assert loaded.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


def _gpt2_byte_order():
    """The byte order of GPT-2's own vocab.json: printable Latin-1 first, then the rest."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    return printable + [b for b in range(256) if b not in printable]


def test_reads_gpt2_files_with_gpt2_id_layout(tmp_path):
    # GPT-2's files number the bytes in a different order: id 0 is "!", id 188 is byte 0x00,
    # and "<|endoftext|>" is the last id. Written here under OpenAI's file names.
    sym = bytes_to_unicode()
    vocab = {sym[b]: i for i, b in enumerate(_gpt2_byte_order())}
    rules = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġthe", "Ġ")]    # the last one never fires
    for left, right in rules:
        vocab.setdefault(left + right, len(vocab))
    vocab[EOT] = len(vocab)
    (tmp_path / "encoder.json").write_text(json.dumps(vocab), encoding="utf-8")      # ASCII-escaped
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{l} {r}\n" for l, r in rules))
    t = ByteLevelBPETokenizer.from_pretrained(tmp_path)
    assert t.encode("!") == [0] and t.encode("\x00") == [188] and t.encode(" ") == [220]
    assert t.encode(" the") == [258] and t.encode("the") == [ord("t") - 33, 257]
    assert t.encode(" the the", allowed_special="all") == [258, 258]
    assert t.special_tokens == {EOT: 260} and t.encode(EOT, allowed_special="all") == [260]
    assert t.decode([258, 0, 260]) == " the!" + EOT


def test_from_files_reads_merges_without_header_and_with_crlf(tmp_path):
    sym = bytes_to_unicode()
    vocab = {sym[b]: b for b in range(256)} | {"ab": 256}
    (tmp_path / "v.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "m.txt").write_bytes(b"a b\r\n")
    t = ByteLevelBPETokenizer.from_files(tmp_path / "v.json", tmp_path / "m.txt")
    assert t.merges == [("a", "b")] and t.encode("abab") == [256, 256]


# ----------------------------------------------------------------------------- bad input

def test_bad_training_arguments():
    with pytest.raises(ValueError, match=r"vocab_size: expected an int >= 256 \(256 bytes \+ 0 special tokens\), "
                                         r"got 255"):
        ByteLevelBPETokenizer.train("abc", 255)
    with pytest.raises(ValueError, match=r"expected an int >= 258 \(256 bytes \+ 2 special tokens\), got 257"):
        ByteLevelBPETokenizer.train("abc", 257, special_tokens=[EOT, "<|pad|>"])
    with pytest.raises(ValueError, match="got 300.0"):
        ByteLevelBPETokenizer.train("abc", 300.0)
    with pytest.raises(ValueError, match="got True"):
        ByteLevelBPETokenizer.train("abc", True)
    with pytest.raises(TypeError, match="texts: expected str documents, got bytes at position 1"):
        ByteLevelBPETokenizer.train(["abc", b"def"], 300)
    with pytest.raises(TypeError, match="texts: expected a str or an iterable of str, got int"):
        ByteLevelBPETokenizer.train(42, 300)
    with pytest.raises(TypeError, match=r"special_tokens: expected a list of str, got str .*wrap a single"):
        ByteLevelBPETokenizer.train("abc", 300, special_tokens=EOT)
    with pytest.raises(ValueError, match="special_tokens: each token may appear once, got '<s>' more than once"):
        ByteLevelBPETokenizer.train("abc", 300, special_tokens=["<s>", "<s>"])
    with pytest.raises(ValueError, match="special_tokens: every entry must be a non-empty str, got ''"):
        ByteLevelBPETokenizer.train("abc", 300, special_tokens=[""])
    with pytest.raises(ValueError, match="special_tokens: 'Ġ' is the spelling of byte 0x20"):
        ByteLevelBPETokenizer.train("abc", 300, special_tokens=["Ġ"])


def test_bad_encode_and_decode_arguments(tok):
    with pytest.raises(TypeError, match="text: expected str, got bytes"):
        tok.encode(b"hello")
    with pytest.raises(TypeError, match="text: expected str, got NoneType"):
        tok.encode(None)
    with pytest.raises(ValueError, match=r"text: character '\\ud800' at index 2 is a lone surrogate"):
        tok.encode("ab\ud800")
    with pytest.raises(ValueError, match=r"allowed_special: '<s>' is not a special token of this tokenizer"):
        tok.encode("x", allowed_special=["<s>"])
    with pytest.raises(TypeError, match=r"allowed_special: expected 'all' or a collection .*wrap a single"):
        tok.encode("x", allowed_special=EOT)
    with pytest.raises(ValueError, match=r"ids: token ids must lie in \[0, 400\), got 400 at position 1"):
        tok.decode([1, 400])
    with pytest.raises(ValueError, match=r"got -1 at position 0"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="ids: expected int token ids, got float"):
        tok.decode([1.5])


def test_bad_vocab_and_merges():
    sym = bytes_to_unicode()
    vocab = {sym[b]: b for b in range(256)}
    with pytest.raises(ValueError, match=r"vocab: missing 'Ā', the spelling of byte 0x00"):
        ByteLevelBPETokenizer({k: v - 1 for k, v in vocab.items() if v > 0}, [])
    with pytest.raises(ValueError, match=r"vocab: ids must be 0..256, each once; id 256 is missing"):
        ByteLevelBPETokenizer(vocab | {"ab": 257}, [])
    with pytest.raises(ValueError, match=r"id 255 appears twice"):
        ByteLevelBPETokenizer(vocab | {"ab": 255}, [])
    with pytest.raises(ValueError, match=r"merges\[0\]: the merged token 'ab' of rule 'a' 'b' is not in vocab"):
        ByteLevelBPETokenizer(vocab, [("a", "b")])
    with pytest.raises(ValueError, match=r"merges\[1\]: the rule 'a' 'b' already appears as merges\[0\]"):
        ByteLevelBPETokenizer(vocab | {"ab": 256}, [("a", "b"), ("a", "b")])
    with pytest.raises(ValueError, match=r"merges\[0\]: expected a pair \(left, right\) of str, got 'ab'"):
        ByteLevelBPETokenizer(vocab | {"ab": 256}, ["ab"])
    with pytest.raises(ValueError, match=r"merges\[0\]: '<s>' is neither a byte nor the result of a merge"):
        ByteLevelBPETokenizer(vocab | {"<s>": 256, "<s>a": 257}, [("<s>", "a")])


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds neither vocab.json \\+ merges.txt nor encoder.json"):
        ByteLevelBPETokenizer.from_pretrained(tmp_path)
    sym = bytes_to_unicode()
    (tmp_path / "vocab.json").write_text(json.dumps({sym[b]: b for b in range(256)} | {"ab": 256}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\na  b\n")
    with pytest.raises(ValueError, match=r"merges_file: line 3 of .* should be two tokens separated by one "
                                         r"space, got 'a  b'"):
        ByteLevelBPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="vocab_file: .* must hold a JSON object"):
        ByteLevelBPETokenizer.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------- speed

SHAKESPEARE = "/work/shared/data/tinyshakespeare/input.txt"


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(SHAKESPEARE), reason="tiny Shakespeare not available")
def test_training_one_megabyte_takes_seconds():
    text = open(SHAKESPEARE, encoding="utf-8").read()
    start = time.perf_counter()
    t = ByteLevelBPETokenizer.train(text, 1000)
    elapsed = time.perf_counter() - start
    assert t.vocab_size == 1000 and elapsed < 20, elapsed
    assert t.decode(t.encode(text)) == text


def test_decode_checks_ids_and_errors_up_front():
    tok = ByteLevelBPETokenizer.train(["hello world hello there"] * 3, vocab_size=270)
    with pytest.raises(TypeError, match="ids: expected a sequence of int token ids, got NoneType"):
        tok.decode(None)
    with pytest.raises(ValueError, match=r"errors: expected a codec error handler \('replace', 'strict', 'ignore', "
                                         r"\.\.\.\), got 'explode'"):
        tok.decode([104], errors="explode")                  # valid bytes: Python itself would never look it up
    assert tok.decode([104], errors="strict") == "h"
