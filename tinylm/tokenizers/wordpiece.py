"""WordPiece, the tokenizer of BERT: text -> ``[CLS] ... [SEP]`` ids, exactly as the original.

The pipeline
------------
BERT tokenizes in two stages. ``BasicTokenizer`` cuts text into words; ``WordPieceTokenizer``
cuts each word into pieces of a fixed vocabulary (``vocab.txt``, one token per line, the line
number is the id). On "Héllo, wörld!!" with an uncased vocabulary::

    clean text             drop NUL, U+FFFD and control characters; every white-space
                           character (tab, newline, NBSP, ...) becomes a plain space
    space out CJK          put spaces around each Chinese/Japanese kanji ideograph
    NFC                    compose "e" + U+0301 into "é" (so both spellings agree)
    split on white space   ["Héllo,", "wörld!!"]
    lower-case, strip      ["hello,", "world!!"]   (strip = NFD, then drop the combining
      accents              marks, Unicode category Mn: "ö" -> "o" + U+0308 -> "o")
    split punctuation      ["hello", ",", "world", "!", "!"]   (each punctuation char alone)
    WordPiece              ["hello", ",", "world", "!", "!"]   (all in the vocabulary)

WordPiece is greedy longest-match-first: take the longest prefix of the word that is in the
vocabulary, then the longest vocabulary entry ``##...`` matching the start of what is left
(``##`` marks a piece that continues a word), and so on. "unaffable" -> ``un ##aff ##able``.
If at some point no piece matches, the WHOLE word becomes ``[UNK]`` (not just the remainder);
so does any word longer than ``max_input_chars_per_word`` (100) characters. There is no
merge list to replay, unlike BPE (``bpe.py``): the vocabulary alone defines the encoding.

Finally ``encode`` adds the special tokens: ``[CLS] A [SEP]`` for one text, ``[CLS] A [SEP] B
[SEP]`` for a pair, with token type ids 0 for the first segment and 1 for the second. A special
token written literally in the text (``"a [MASK] b"``) is recognised as that token.

Definitions (BERT's, not Python's ``str.isspace`` / ``str.isalnum``):

- white space: space, tab, newline, carriage return, and Unicode category Zs;
- control: category C* (Cc, Cf, Cs, Co, Cn) except tab, newline and carriage return;
- punctuation: every ASCII character that is not a letter, digit, space or control
  (so ``$ + < = > ^ ` | ~`` count, although Unicode calls them symbols), plus category P*;
- CJK: the CJK Unified Ideographs blocks and extensions A-E, and the compatibility
  ideographs (``CJK_RANGES``). Hiragana, Katakana and Hangul are ordinary letters: Japanese
  kana and Korean words are split only on white space and punctuation.

``do_lower_case`` and ``strip_accents`` are Hugging Face's: with ``strip_accents=None`` accents
are stripped exactly when lower-casing (as in the original uncased BERT); ``True``/``False``
force it. ``never_split`` words (and the special tokens) are kept whole: not lower-cased, not
split. Categories come from the running Python's ``unicodedata`` (Unicode 14.0 on Python 3.11).

Which "original"
----------------
This module reproduces Hugging Face's Python ``BertTokenizer`` (``BertTokenizerLegacy`` in
transformers 5), which is Google's ``tokenization.py`` plus the NFC step. The Rust
``BertTokenizerFast`` gives the same ids on ordinary text, but not on all text
(tests/test_tokenizer_wordpiece_hf.py checks both and lists the cases):

- unassigned code points (category Cn) are control characters here and vanish; the Rust
  tokenizer keeps them, so the word holding one becomes ``[UNK]``;
- its Unicode tables are older than Python 3.11's (Unicode 14): punctuation and combining
  marks added since (U+2E43..., U+0898...) are ordinary letters to it;
- its CJK extension E starts at U+2B920, not U+2B820;
- Python's ``str.lower`` turns a word-final capital sigma into final ``ς``, Rust into ``σ``;
- it has no NFC step, which matters when accents are kept (cased models): "e" + U+0301
  stays two characters there.

Where the two disagree we follow the Python one. So do pair truncation (when both segments
must be cut to an odd total, Python gives the odd token to the first, Rust to the longer) and
``decode``'s clean-up of spaces (Python joins "it ' s" into "it's", Rust does not).

Batches, truncation, padding
----------------------------
``tok(texts, text_pairs)`` encodes a batch into int64 arrays ``input_ids``, ``token_type_ids``
and ``attention_mask`` (1 = real token, 0 = padding, which uses ``[PAD]``), each (B, T). A pair
too long for ``max_length`` is cut "longest first": one token at a time from the end of the
longer segment, from the second one on a tie.

Training
--------
``WordPieceTokenizer.train`` learns a vocabulary from text, as WordPiece was described by
Schuster & Nakajima (2012) and in Hugging Face's course: start from the characters (``c`` at
the start of a word, ``##c`` inside one), then repeatedly merge the adjacent pair ``(a, b)``
with the highest score ``count(ab) / (count(a) * count(b))``: up to a constant,
``p(ab) / (p(a) p(b))``, how much more often ``a`` and ``b`` occur side by side than two
independent pieces would. Unlike BPE's raw pair count, it prefers pairs whose parts rarely
occur apart (``##q ##u`` before ``t ##h``). (Hugging Face's
``tokenizers`` ``WordPieceTrainer`` runs plain BPE frequency merges with ``##`` prefixes
instead; the encoding algorithm is the same either way.) Ties go to the more frequent pair,
then to the smaller ``(a, b)`` in string order.

Files: ``save_pretrained`` / ``from_pretrained`` use Hugging Face's ``vocab.txt`` and
``tokenizer_config.json``, which ``transformers.BertTokenizer.from_pretrained`` reads.
Tests: tests/test_tokenizer_wordpiece.py and, against transformers,
tests/test_tokenizer_wordpiece_hf.py. Plain Python and NumPy; no arrays flow through here
except the batch outputs.
"""
from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from tinylm.tokenizers.bpe import merge_pair
from tinylm.tokenizers.char import check_token_ids

__all__ = ["BasicTokenizer", "WordPieceTokenizer", "CJK_RANGES", "is_whitespace", "is_control",
           "is_punctuation", "is_cjk", "remove_accents", "split_on_punctuation", "truncate_longest_first"]

VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer_config.json"

# Code point ranges BERT treats as Chinese characters (Google's tokenization.py, as in HF).
CJK_RANGES = ((0x4E00, 0x9FFF),     # CJK Unified Ideographs
              (0x3400, 0x4DBF),     # Extension A
              (0x20000, 0x2A6DF),   # Extension B
              (0x2A700, 0x2B73F),   # Extension C
              (0x2B740, 0x2B81F),   # Extension D
              (0x2B820, 0x2CEAF),   # Extension E
              (0xF900, 0xFAFF),     # Compatibility Ideographs
              (0x2F800, 0x2FA1F))   # Compatibility Ideographs Supplement

# The five special tokens, in the order (and with the ids) that `train` gives them.
_SPECIAL_ROLES = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
_SPECIAL_DEFAULTS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
                     "sep_token": "[SEP]", "mask_token": "[MASK]"}
_WORD_CACHE_SIZE = 1 << 16   # words remembered by the WordPiece stage before the cache is emptied
# decode's clean-up (Hugging Face's): glue punctuation and English contractions back on.
_CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
             (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


# ----------------------------------------------------------------------------- character classes

def is_whitespace(ch: str) -> bool:
    """BERT's white space: space, tab, newline, carriage return, and category Zs."""
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch: str) -> bool:
    """BERT's control characters: category C*, except tab, newline and carriage return."""
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_punctuation(ch: str) -> bool:
    """BERT's punctuation: any non-alphanumeric printable ASCII character, or category P*."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True                     # !"#$%&'()*+,-./  :;<=>?@  [\]^_`  {|}~
    return unicodedata.category(ch).startswith("P")


def is_cjk(ch: str) -> bool:
    """Is ``ch`` in one of BERT's ``CJK_RANGES``?"""
    cp = ord(ch)
    return cp >= 0x3400 and any(lo <= cp <= hi for lo, hi in CJK_RANGES)   # (most text is below)


class _CharMap(dict):
    """A ``str.translate`` table filled in on demand: ``rule(ch)`` for each character met, kept.

    ``text.translate(table)`` applies a per-character rule in one C loop, calling the Python
    rule once per distinct character instead of once per character (the basic tokenizer splits
    tiny Shakespeare in 0.4 s instead of 1.7 s). The rules are the functions above.
    """

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def __missing__(self, cp: int) -> str:
        out = self[cp] = self.rule(chr(cp))
        return out


# The per-character rules of the pipeline (see the module docstring).
_CLEAN = _CharMap(lambda ch: "" if ch in "\x00\ufffd" or is_control(ch) else " " if is_whitespace(ch) else ch)
_SPACE_CJK = _CharMap(lambda ch: f" {ch} " if is_cjk(ch) else ch)
_SPACE_PUNCTUATION = _CharMap(lambda ch: f" {ch} " if is_punctuation(ch) else ch)
_DROP_MARKS = _CharMap(lambda ch: "" if unicodedata.category(ch) == "Mn" else ch)


def _check_text(name: str, text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected str, got {type(text).__name__}")
    return text


def _check_bool(name: str, v: object, allow_none: bool = False) -> bool | None:
    if not (isinstance(v, bool) or (allow_none and v is None)):
        raise TypeError(f"{name}: expected {'None, ' if allow_none else ''}True or False, got {v!r}")
    return v


def _check_words(name: str, words: object) -> frozenset[str]:
    if words is None:
        return frozenset()
    if isinstance(words, str) or not isinstance(words, Iterable):
        raise TypeError(f"{name}: expected a list of str, got {type(words).__name__} {words!r}"
                        + (" (wrap a single word in a list)" if isinstance(words, str) else ""))
    words = list(words)
    for w in words:
        if not isinstance(w, str) or w == "":
            raise ValueError(f"{name}: every entry must be a non-empty str, got {w!r}")
    return frozenset(words)


# ----------------------------------------------------------------------------- stage 1: words

class BasicTokenizer:
    """Stage 1: text -> words (clean-up, CJK, case and accents, punctuation splitting).

    Args:
        do_lower_case: lower-case every word (not the ``never_split`` ones).
        never_split: words kept exactly as written: no lower-casing, accent stripping or
            punctuation splitting (``WordPieceTokenizer`` adds its special tokens here).
        tokenize_chinese_chars: make each CJK ideograph a word of its own.
        strip_accents: ``None`` strips accents iff ``do_lower_case``; ``True``/``False`` force it.
    """

    def __init__(self, do_lower_case: bool = True, never_split: Iterable[str] | None = None,
                 tokenize_chinese_chars: bool = True, strip_accents: bool | None = None):
        self.do_lower_case = _check_bool("do_lower_case", do_lower_case)
        self.never_split = _check_words("never_split", never_split)
        self.tokenize_chinese_chars = _check_bool("tokenize_chinese_chars", tokenize_chinese_chars)
        self.strip_accents = _check_bool("strip_accents", strip_accents, allow_none=True)
        self._strip = strip_accents if strip_accents is not None else do_lower_case

    def tokenize(self, text: str) -> list[str]:
        """``text`` -> its words, e.g. ``"Héllo, wörld!!"`` -> ``['hello', ',', 'world', '!', '!']``."""
        text = self.clean_text(_check_text("text", text))
        if self.tokenize_chinese_chars:
            text = text.translate(_SPACE_CJK)            # "東京" -> " 東  京 "
        text = unicodedata.normalize("NFC", text)
        words = []
        for word in text.split():              # str.split also splits at U+2028/U+2029 (Zl, Zp)
            if word in self.never_split:
                words.append(word)
                continue
            if self.do_lower_case:
                word = word.lower()
            if self._strip:
                word = remove_accents(word)     # may leave "" (a lone accent): split() drops it
            words += split_on_punctuation(word)
        return words

    @staticmethod
    def clean_text(text: str) -> str:
        """Drop NUL, U+FFFD and control characters; turn every white-space character into " "."""
        return text.translate(_CLEAN)


def remove_accents(word: str) -> str:
    """Decompose (NFD) and drop the combining marks (category Mn): "Ångström" -> "Angstrom"."""
    return unicodedata.normalize("NFD", word).translate(_DROP_MARKS)


def split_on_punctuation(word: str) -> list[str]:
    """A word (no white space) -> its pieces, each punctuation character alone:
    "a.b!!" -> ['a', '.', 'b', '!', '!']."""
    return word.translate(_SPACE_PUNCTUATION).split()


# ----------------------------------------------------------------------------- stage 2: pieces

class WordPieceTokenizer:
    """BERT's tokenizer: ``BasicTokenizer`` words, then greedy longest-match WordPiece.

    Args:
        vocab: the tokens in id order (the lines of ``vocab.txt``). If a token appears twice,
            the later id is the one ``encode`` uses (as Hugging Face does).
        do_lower_case, strip_accents, tokenize_chinese_chars, never_split: see ``BasicTokenizer``.
        unk_token, sep_token, pad_token, cls_token, mask_token: the special tokens; each must
            be in ``vocab``.
        model_max_length: the longest sequence the model takes (BERT: 512 positions), the
            default ``max_length``; ``None`` for no limit.
        max_input_chars_per_word: longer words become ``[UNK]`` without being looked at.

    Attributes:
        vocab_size: number of ids.
        special_tokens: ``{token: id}`` for the five special tokens.
        pad_token_id, unk_token_id, cls_token_id, sep_token_id, mask_token_id: their ids.
    """

    def __init__(self, vocab: Sequence[str], *, do_lower_case: bool = True,
                 strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                 never_split: Iterable[str] | None = None,
                 unk_token: str = "[UNK]", sep_token: str = "[SEP]", pad_token: str = "[PAD]",
                 cls_token: str = "[CLS]", mask_token: str = "[MASK]", model_max_length: int | None = 512,
                 max_input_chars_per_word: int = 100):
        if isinstance(vocab, (str, Mapping)) or not isinstance(vocab, Sequence):
            raise TypeError(f"vocab: expected a list of tokens in id order, got {type(vocab).__name__}")
        for i, tok in enumerate(vocab):
            if not isinstance(tok, str):
                raise TypeError(f"vocab: expected str tokens, got {type(tok).__name__} {tok!r} at id {i}")
        self._tokens = list(vocab)                                  # id -> token
        self._ids = {tok: i for i, tok in enumerate(self._tokens)}  # token -> id (last one wins)
        # No vocabulary entry is longer than this, so longer candidate pieces need no lookup.
        self._longest = max(map(len, self._tokens), default=0)

        roles = {"pad_token": pad_token, "unk_token": unk_token, "cls_token": cls_token,
                 "sep_token": sep_token, "mask_token": mask_token}
        for role, tok in roles.items():
            if not isinstance(tok, str) or tok == "":
                raise TypeError(f"{role}: expected a non-empty str, got {tok!r}")
            if tok not in self._ids:
                raise ValueError(f"{role}: {tok!r} is not in the vocabulary of {len(self._tokens)} tokens")
            setattr(self, role, tok)
            setattr(self, role + "_id", self._ids[tok])
        self.special_tokens: dict[str, int] = {tok: self._ids[tok] for tok in roles.values()}

        if model_max_length is not None:
            model_max_length = _check_max_length("model_max_length", model_max_length)
        self.model_max_length = model_max_length
        self.max_input_chars_per_word = _check_positive("max_input_chars_per_word", max_input_chars_per_word)

        self._user_never_split = _check_words("never_split", never_split)
        self.basic = BasicTokenizer(do_lower_case=do_lower_case, tokenize_chinese_chars=tokenize_chinese_chars,
                                    strip_accents=strip_accents,
                                    never_split=self._user_never_split | self.special_tokens.keys())
        # A special token written in the text is cut out before stage 1 (longest name first).
        names = sorted(self.special_tokens, key=lambda s: (-len(s), s))
        self._special_pattern = re.compile("|".join(map(re.escape, names)))
        self._cache: dict[str, tuple[int, ...]] = {}                # word -> its ids

    # ------------------------------------------------------------------ vocabulary

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    @property
    def do_lower_case(self) -> bool:
        return self.basic.do_lower_case

    def get_vocab(self) -> dict[str, int]:
        """A copy of ``{token: id}``."""
        return dict(self._ids)

    def id_to_token(self, i: int) -> str:
        (i,) = check_token_ids("i", [i], self.vocab_size)
        return self._tokens[i]

    def token_to_id(self, token: str) -> int:
        """The id of ``token``, or ``unk_token_id`` if it is not in the vocabulary."""
        return self._ids.get(_check_text("token", token), self.unk_token_id)

    # ------------------------------------------------------------------ text -> tokens

    def tokenize(self, text: str) -> list[str]:
        """``text`` -> token strings, no [CLS]/[SEP]: "unaffable" -> ``['un', '##aff', '##able']``."""
        return [self._tokens[i] for i in self._encode_text("text", text)]

    def wordpiece(self, word: str) -> list[str]:
        """One word (a ``BasicTokenizer`` output) -> its pieces, greedy longest-match-first."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces, start = [], 0
        while start < len(word):
            # Try the longest candidate first; nothing longer than the longest entry can match.
            end = min(len(word), start + self._longest)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self._ids:
                    break
                end -= 1
            else:
                return [self.unk_token]     # no piece fits here: the whole word is unknown
            pieces.append(piece)
            start = end
        return pieces

    def _word_ids(self, word: str) -> tuple[int, ...]:
        ids = self._cache.get(word)
        if ids is None:
            # never_split words are looked up whole (unknown: [UNK]); so is a special token that
            # the basic tokenizer let through ("[MA\x00SK]" only reads "[MASK]" once cleaned).
            if word in self._user_never_split or word in self.special_tokens:
                ids = (self._ids.get(word, self.unk_token_id),)
            else:
                ids = tuple(self._ids[p] for p in self.wordpiece(word))
            if len(self._cache) >= _WORD_CACHE_SIZE:
                self._cache.clear()
            self._cache[word] = ids
        return ids

    def _encode_text(self, name: str, text: str) -> list[int]:
        """Text -> ids, no [CLS]/[SEP] added; special tokens written in the text become their ids."""
        _check_text(name, text)
        ids, start = [], 0
        for m in self._special_pattern.finditer(text):
            ids += self._encode_plain(text[start:m.start()])
            ids.append(self.special_tokens[m.group()])
            start = m.end()
        return ids + self._encode_plain(text[start:])

    def _encode_plain(self, text: str) -> list[int]:
        ids = []
        for word in self.basic.tokenize(text):
            ids += self._word_ids(word)
        return ids

    # ------------------------------------------------------------------ encoding

    def encode(self, text: str, text_pair: str | None = None, *, add_special_tokens: bool = True,
               max_length: int | None = None, truncation: bool | str = False) -> list[int]:
        """``text`` (and ``text_pair``) -> ids ``[CLS] A [SEP]`` (``[CLS] A [SEP] B [SEP]``).

        Args:
            max_length: the most ids to return, special tokens included; default
                ``model_max_length``.
            truncation: ``False``: a longer encoding is an error. ``True`` or
                ``"longest_first"``: cut it to ``max_length`` (see the module docstring).
        """
        return self._encode_one(("text", "text_pair"), text, text_pair, add_special_tokens, max_length,
                                truncation)[0]

    def __call__(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, *,
                 padding: bool | str = True, truncation: bool | str = True, max_length: int | None = None,
                 add_special_tokens: bool = True, return_arrays: bool = True) -> dict:
        """Encode a batch of B texts (or text pairs) for the model.

        Args:
            texts: a list of B str.
            text_pairs: ``None``, or a list of B str, the second segment of each example.
            padding: ``True``/``"longest"``: pad to the longest encoding of the batch;
                ``"max_length"``: to ``max_length``; ``False``: no padding.
            truncation, max_length: as in ``encode`` (here truncation is on by default).
            return_arrays: int64 NumPy arrays (B, T); ``False`` gives lists of lists.

        Returns:
            ``{"input_ids", "token_type_ids", "attention_mask"}``, each (B, T): the ids, 0/1
            for the first/second segment, and 1 for tokens / 0 for padding.
        """
        texts = _check_batch("texts", texts)
        if text_pairs is not None:
            text_pairs = _check_batch("text_pairs", text_pairs)
            if len(text_pairs) != len(texts):
                raise ValueError(f"text_pairs: expected {len(texts)} texts (one per entry of texts), "
                                 f"got {len(text_pairs)}")
        _check_option("padding", padding, (True, False, "longest", "max_length"))
        _check_bool("return_arrays", return_arrays)

        rows = [self._encode_one((f"texts[{b}]", f"text_pairs[{b}]"), t,
                                 None if text_pairs is None else text_pairs[b], add_special_tokens,
                                 max_length, truncation) for b, t in enumerate(texts)]
        lengths = [len(ids) for ids, _ in rows]
        if padding == "max_length":
            width = max_length if max_length is not None else self.model_max_length
            if width is None:
                raise ValueError("padding: 'max_length' needs max_length (this tokenizer has no "
                                 "model_max_length)")
        elif padding:
            width = max(lengths)
        else:
            width = None
            if return_arrays and len(set(lengths)) > 1:
                raise ValueError(f"padding: with padding=False the encodings have different lengths "
                                 f"({min(lengths)}..{max(lengths)}) and cannot form one array; pass "
                                 f"padding=True or return_arrays=False")
        out = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
        for (ids, types), n in zip(rows, lengths):
            pad = 0 if width is None else width - n
            out["input_ids"].append(ids + [self.pad_token_id] * pad)
            out["token_type_ids"].append(types + [0] * pad)
            out["attention_mask"].append([1] * n + [0] * pad)
        if return_arrays:
            return {k: np.array(v, dtype=np.int64) for k, v in out.items()}
        return out

    def _encode_one(self, names, text, text_pair, add_special_tokens, max_length, truncation):
        """-> (ids, token type ids) of one example; ``names`` of the two texts for error messages."""
        _check_bool("add_special_tokens", add_special_tokens)
        _check_option("truncation", truncation, (True, False, "longest_first"))
        if max_length is not None:
            max_length = _check_max_length("max_length", max_length)
        limit = max_length if max_length is not None else self.model_max_length

        a = self._encode_text(names[0], text)
        b = None if text_pair is None else self._encode_text(names[1], text_pair)
        n_special = (2 if b is None else 3) if add_special_tokens else 0
        total = len(a) + (0 if b is None else len(b)) + n_special
        if limit is not None and total > limit:
            if not truncation:
                what = names[0] if b is None else f"{names[0]} with {names[1]}"
                raise ValueError(f"{what}: encodes to {total} tokens (special tokens included), more than "
                                 f"max_length={limit}; pass truncation=True to cut it, or a larger max_length")
            if limit < n_special:
                raise ValueError(f"max_length: {limit} leaves no room for the {n_special} special tokens")
            a, b = truncate_longest_first(a, b, limit - n_special)

        if not add_special_tokens:
            ids = a + (b or [])
            return ids, [0] * len(a) + [1] * len(b or [])
        ids = [self.cls_token_id, *a, self.sep_token_id]
        types = [0] * len(ids)
        if b is not None:
            ids += [*b, self.sep_token_id]
            types += [1] * (len(b) + 1)
        return ids, types

    # ------------------------------------------------------------------ decoding

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool = True) -> str:
        """Ids -> text: tokens joined by spaces, each ``##`` piece glued to the one before.

        The text is the normalised one (lower-cased, accents stripped, ``[UNK]`` for unknown
        words) with spaces around punctuation. ``clean_up_tokenization_spaces`` then removes
        the space before ``. ? ! ,`` and around English contractions ("it ' s" -> "it's"), as
        Hugging Face's ``BertTokenizer`` does; ``skip_special_tokens`` leaves out the five
        special tokens (``[UNK]`` included).
        """
        tokens = [self._tokens[i] for i in check_token_ids("ids", ids, self.vocab_size)]
        if _check_bool("skip_special_tokens", skip_special_tokens):
            tokens = [t for t in tokens if t not in self.special_tokens]
        text = " ".join(tokens).replace(" ##", "").strip()
        if _check_bool("clean_up_tokenization_spaces", clean_up_tokenization_spaces):
            for before, after in _CLEAN_UP:
                text = text.replace(before, after)
        return text

    # ------------------------------------------------------------------ training

    @classmethod
    def train(cls, texts: str | Iterable[str], vocab_size: int, *, min_frequency: int = 2,
              do_lower_case: bool = True, strip_accents: bool | None = None,
              tokenize_chinese_chars: bool = True, model_max_length: int | None = 512,
              max_input_chars_per_word: int = 100) -> "WordPieceTokenizer":
        """Learn a WordPiece vocabulary of ``vocab_size`` tokens from ``texts``.

        The vocabulary is ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (ids 0..4), then the alphabet
        (every character that starts a word, then every ``##`` character, each group sorted),
        then one token per merge in the order learned (scores: see the module docstring).

        Args:
            texts: a str or an iterable of str; split into words by the same ``BasicTokenizer``
                the result uses (special tokens in the text are left out).
            vocab_size: the size to reach; training stops earlier when no pair is left.
                It must hold the five special tokens and the whole alphabet, so that every
                training word can be encoded.
            min_frequency: pairs seen fewer times are never merged. The score favours pairs of
                rare pieces (two pieces seen once, together: score 1, the highest possible), so
                the default 2 keeps one-off words from filling the vocabulary.
            The others: as in ``WordPieceTokenizer``. Words longer than
                ``max_input_chars_per_word`` are left out (they encode to ``[UNK]`` anyway).

        Cost: one scan over all distinct pairs per merge. Tiny Shakespeare (1.1 MB, 0.4 s to
        split into words) takes about 2 s to 1000 tokens and 6-7 s to 4000.
        """
        if isinstance(texts, str):
            texts = [texts]
        docs = _check_batch("texts", texts, allow_empty=True)
        _check_positive("min_frequency", min_frequency)
        specials = [_SPECIAL_DEFAULTS[r] for r in _SPECIAL_ROLES]
        basic = BasicTokenizer(do_lower_case=do_lower_case, strip_accents=strip_accents,
                               tokenize_chinese_chars=tokenize_chinese_chars)
        cut = re.compile("|".join(map(re.escape, specials)))

        # 1. Distinct words and their counts; each word spelled as characters: h ##u ##g.
        word_count: Counter[str] = Counter()
        for doc in docs:
            for chunk in cut.split(doc):
                word_count.update(w for w in basic.tokenize(chunk) if len(w) <= max_input_chars_per_word)
        words = [[w[0]] + ["##" + ch for ch in w[1:]] for w in word_count]
        counts = list(word_count.values())
        alphabet = sorted({w[0] for w in words}) + sorted({p for w in words for p in w[1:]})
        need = len(specials) + len(alphabet)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < need:
            raise ValueError(f"vocab_size: expected an int >= {need} ({len(specials)} special tokens + "
                             f"{len(alphabet)} characters in the alphabet of the text), got {vocab_size!r}")
        vocab = specials + alphabet
        known = set(vocab)

        # 2. Counts of each piece and each adjacent pair; which words hold each pair.
        piece_count: Counter[str] = Counter()
        pair_count: Counter[tuple[str, str]] = Counter()
        where: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
        for w, (word, n) in enumerate(zip(words, counts)):
            for p in word:
                piece_count[p] += n
            for pair in zip(word, word[1:]):
                pair_count[pair] += n
                where[pair].add(w)

        def rank(pair):   # the smallest rank is merged next
            a, b = pair
            n = pair_count[pair]
            return -n / (piece_count[a] * piece_count[b]), -n, a, b

        # 3. Merge the best pair, rewrite only the words holding it, update the changed counts.
        #    (The scores of all pairs sharing a piece with the merge change too, so the best
        #    pair is found by a scan over all pairs: O(pairs) per merge.)
        while len(vocab) < vocab_size:
            candidates = [p for p, n in pair_count.items() if n >= min_frequency]
            if not candidates:
                break
            a, b = pair = min(candidates, key=rank)
            merged = a + b[2:]                      # b is inside a word, so it starts with "##"
            if merged not in known:     # a safeguard: two pairs ("##b ##cd", "##bc ##d") could spell
                                        # one token; not seen in practice
                vocab.append(merged)
                known.add(merged)
            changed = set()
            for w in where.pop(pair):
                old, new = words[w], merge_pair(words[w], pair, merged)
                if len(new) == len(old):
                    continue                        # the pair left this word in an earlier merge
                words[w] = new
                n = counts[w] * (len(old) - len(new))     # occurrences merged, times the word's count
                piece_count[a] -= n
                piece_count[b] -= n
                piece_count[merged] += n
                delta = Counter(zip(new, new[1:]))
                delta.subtract(Counter(zip(old, old[1:])))
                for p, d in delta.items():
                    if d:
                        pair_count[p] += d * counts[w]
                        changed.add(p)
                        if d > 0:
                            where[p].add(w)
            for p in changed:
                if pair_count[p] <= 0:
                    del pair_count[p]
                    where.pop(p, None)
        return cls(vocab, do_lower_case=do_lower_case, strip_accents=strip_accents,
                   tokenize_chinese_chars=tokenize_chinese_chars, model_max_length=model_max_length,
                   max_input_chars_per_word=max_input_chars_per_word)

    # ------------------------------------------------------------------ files

    def save_pretrained(self, directory: str | os.PathLike) -> tuple[str, str]:
        """Write ``vocab.txt`` and ``tokenizer_config.json`` into ``directory``; return their paths."""
        for i, tok in enumerate(self._tokens):
            if "\n" in tok or "\r" in tok:
                raise ValueError(f"vocab: token {i} ({tok!r}) contains a line break and cannot be "
                                 f"written to {VOCAB_FILE}")
        os.makedirs(directory, exist_ok=True)
        vocab_path, config_path = os.path.join(directory, VOCAB_FILE), os.path.join(directory, CONFIG_FILE)
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(tok + "\n" for tok in self._tokens)
        config = {"tokenizer_class": "BertTokenizer", "do_lower_case": self.basic.do_lower_case,
                  "strip_accents": self.basic.strip_accents,
                  "tokenize_chinese_chars": self.basic.tokenize_chinese_chars,
                  "never_split": sorted(self._user_never_split) or None,
                  "model_max_length": self.model_max_length,
                  **{role: getattr(self, role) for role in _SPECIAL_ROLES}}
        if self.model_max_length is None:
            del config["model_max_length"]
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, ensure_ascii=False)
            f.write("\n")
        return vocab_path, config_path

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides) -> "WordPieceTokenizer":
        """Load a Hugging Face BERT tokenizer directory: ``vocab.txt`` and, if present,
        ``tokenizer_config.json`` (do_lower_case, strip_accents, tokenize_chinese_chars,
        never_split, model_max_length, the special tokens). Keyword ``overrides`` win over the
        config, e.g. ``model_max_length=128``."""
        vocab_path = os.path.join(directory, VOCAB_FILE)
        if not os.path.isfile(vocab_path):
            raise FileNotFoundError(f"directory: no {VOCAB_FILE} in {os.fspath(directory)!r}; a BERT "
                                    f"tokenizer directory holds {VOCAB_FILE} (one token per line)")
        with open(vocab_path, encoding="utf-8") as f:          # universal newlines, as HF reads it
            vocab = [line.rstrip("\n") for line in f]

        kwargs = {}
        config_path = os.path.join(directory, CONFIG_FILE)
        if os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
            if not isinstance(config, dict):
                raise ValueError(f"{CONFIG_FILE}: expected a JSON object, got {type(config).__name__}")
            if config.get("do_basic_tokenize", True) is not True:
                raise ValueError(f"{CONFIG_FILE}: do_basic_tokenize={config['do_basic_tokenize']!r} is not "
                                 f"supported (BERT tokenizers split words first)")
            for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "never_split",
                        *_SPECIAL_ROLES):
                if config.get(key) is not None:
                    value = config[key]
                    if key in _SPECIAL_ROLES and isinstance(value, dict):
                        value = value.get("content")            # a serialised AddedToken
                    kwargs[key] = value
            limit = config.get("model_max_length")
            if isinstance(limit, (int, float)) and not isinstance(limit, bool):
                # transformers writes int(1e30) when a model sets no limit
                kwargs["model_max_length"] = None if limit >= 1e12 else int(limit)
        kwargs.update(overrides)
        return cls(vocab, **kwargs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WordPieceTokenizer):
            return NotImplemented
        return self._config() == other._config()

    def _config(self) -> tuple:
        b = self.basic
        return (self._tokens, b.do_lower_case, b.strip_accents, b.tokenize_chinese_chars,
                self._user_never_split, self.model_max_length, self.max_input_chars_per_word,
                *(getattr(self, role) for role in _SPECIAL_ROLES))

    def __repr__(self) -> str:
        return (f"WordPieceTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.basic.do_lower_case}, "
                f"model_max_length={self.model_max_length})")


# ----------------------------------------------------------------------------- helpers

def truncate_longest_first(a: list[int], b: list[int] | None,
                           budget: int) -> tuple[list[int], list[int] | None]:
    """Cut ``a`` (and ``b``) to ``budget`` ids together, "longest first": remove one id at a
    time from the end of the longer list, from ``b`` on a tie (Hugging Face's Python rule).

    In closed form: if the shorter list fits in half the budget, only the longer one is cut;
    otherwise ``a`` keeps ``ceil(budget / 2)`` ids and ``b`` ``floor(budget / 2)``.
    """
    if b is None:
        return a[:budget], None
    if len(a) + len(b) <= budget:
        return a, b
    shorter = min(len(a), len(b))
    if 2 * shorter <= budget:
        keep_a = budget - len(b) if len(a) > len(b) else len(a)
    else:
        keep_a = budget - budget // 2
    return a[:keep_a], b[:budget - keep_a]


def _check_option(name: str, v: object, choices: tuple) -> object:
    """``v`` must be one of ``choices``; booleans by identity, so ``1`` is not ``True``."""
    if not any(v is c if isinstance(c, bool) else (isinstance(v, str) and v == c) for c in choices):
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {v!r}")
    return v


def _check_positive(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name}: expected a positive int, got {v!r}")
    return v


def _check_max_length(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{name}: expected None or an int >= 0, got {v!r}")
    return v


def _check_batch(name: str, texts: object, allow_empty: bool = False) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name}: expected a list of str, got a single str (wrap it in a list)")
    if not isinstance(texts, Iterable):
        raise TypeError(f"{name}: expected a list of str, got {type(texts).__name__}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}]: expected str, got {type(t).__name__}")
    if not texts and not allow_empty:
        raise ValueError(f"{name}: expected at least one text, got an empty list")
    return texts
