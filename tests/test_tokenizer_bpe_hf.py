"""Cross-check ByteLevelBPETokenizer against Hugging Face (transformers' GPT2Tokenizer and the
`tokenizers` library). Skipped unless transformers is installed; run with the torch venv:

    PYTHONPATH=/work/main /work/torchenv/bin/python -m pytest tests/test_tokenizer_bpe_hf.py -p no:cacheprovider
"""
import pytest
from hypothesis import given, strategies as st

from tinylm.tokenizers.bpe import ByteLevelBPETokenizer

transformers = pytest.importorskip("transformers")
hf_tokenizers = pytest.importorskip("tokenizers")

pytestmark = pytest.mark.torch

EOT = "<|endoftext|>"
CORPUS = [
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 4,
    "It's 3:45pm -- we'll meet at 221B Baker St. at 1,234.50 GBP; they've said I'm late!\n" * 3,
    "naïve café, Ångström, straße, ПРИВЕТ мир, γειά σου κόσμε, שלום עולם, مرحبا بالعالم\n" * 3,
    "你好，世界。東京は晴れです。안녕하세요 🙂😀👍🏽👨‍👩‍👧 🇫🇷 e\u0301 a\u0308 ½ Ⅻ ٣\n" * 3,
    "def f(x):\n    return x ** 2  # comment\n\tindented\r\n   \n\n    \n" * 4,
]
TEXTS = [
    "Hello world", " Hello  world ", "First Citizen: speak, speak!", "It's, I'm, we'll, they've, she'd, don't",
    "DON'T 'S 'sweet' ''", "a   b\t\tc\n\n\nd  ", "   leading and trailing   ", "\n", "",
    "naïve cafés in Ångström-land", "你好世界 東京 안녕", "emoji 😀👍🏽👨‍👩‍👧‍👦🇯🇵 unseen 🦀",
    "e\u0301 combining  a\u0308\u0304", "\x00\x01\x1b[0m\x7f control", "NBSP\u00a0and\u2003em\u3000ideo",
    "numbers 1234567890 ½ Ⅻ ٣٤ 3.14", f"two{EOT}documents {EOT} here{EOT}", "x" * 200,
    "    return x ** 2  # comment\r\n",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tok = ByteLevelBPETokenizer.train(CORPUS, 500, special_tokens=[EOT])
    directory = tmp_path_factory.mktemp("tinylm_bpe")
    vocab_path, merges_path = tok.save(directory)
    # transformers 5 takes the file paths positionally (as `vocab`, `merges`).
    hf = transformers.GPT2Tokenizer(vocab_path, merges_path)
    return tok, hf, directory


def hf_ids(hf, text):
    return hf(text, add_special_tokens=False)["input_ids"]


def test_hf_reads_our_files(trained):
    tok, hf, directory = trained
    assert len(hf) == tok.vocab_size == 500
    assert hf.convert_tokens_to_ids(EOT) == tok.special_tokens[EOT] == 499
    assert hf.get_vocab() == tok.get_vocab()


@pytest.mark.parametrize("text", TEXTS)
def test_same_ids_as_hf_gpt2_tokenizer(trained, text):
    tok, hf, _ = trained
    ids = tok.encode(text, allowed_special="all")
    assert ids == hf_ids(hf, text)
    assert tok.decode(ids) == text
    assert hf.decode(ids) == text


def test_from_pretrained_directory_matches_too(trained):
    tok, _, directory = trained
    hf = transformers.GPT2Tokenizer.from_pretrained(str(directory))
    for text in TEXTS:
        assert tok.encode(text, allowed_special="all") == hf_ids(hf, text)


# HF's regex engine has newer Unicode tables than Python 3.11's unicodedata; compare on
# characters assigned in ours (see the pre-tokenization note in tinylm/tokenizers/bpe.py).
assigned_text = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cn")), max_size=80)
tricky_text = st.text(alphabet=" \t\n\r\x0b\x1c\x85\xa0\u2003\u3000'sdtlmvS1٣Ⅻ.,!é😀\u0301你", max_size=80)


@given(st.lists(st.one_of(assigned_text, tricky_text, st.just(EOT)), max_size=4))
def test_same_ids_as_hf_on_random_text(trained, parts):
    tok, hf, _ = trained
    text = "".join(parts)
    assert tok.encode(text, allowed_special="all") == hf_ids(hf, text)


def test_reads_files_written_by_hf_tokenizers_trainer(tmp_path):
    # The `tokenizers` library's own byte-level BPE trainer (different tie-breaking, special
    # tokens first) writes vocab.json + merges.txt; we load them and must encode as it does.
    trainer_tok = hf_tokenizers.ByteLevelBPETokenizer()
    trainer_tok.train_from_iterator(CORPUS, vocab_size=600, min_frequency=1, special_tokens=[EOT, "<pad>"],
                                    show_progress=False)
    trainer_tok.save_model(str(tmp_path))
    tok = ByteLevelBPETokenizer.from_pretrained(tmp_path)
    assert tok.special_tokens == {EOT: 0, "<pad>": 1}
    assert tok.vocab_size == trainer_tok.get_vocab_size()
    for text in TEXTS:
        plain = text.replace(EOT, "")                 # that tokenizer was not told EOT is special
        assert tok.encode(plain) == trainer_tok.encode(plain).ids
        assert tok.decode(tok.encode(plain)) == plain
