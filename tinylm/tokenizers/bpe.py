"""Byte-level byte-pair encoding (BPE), the tokenizer of GPT-2.

What BPE does
-------------
A language model reads a sequence of integer ids. Giving every *character* an id (see
``char.py``) keeps the vocabulary small but makes sequences long; giving every *word* an id
makes sequences short but the vocabulary huge, and a word never seen in training has no id.
BPE sits in between: it starts from a tiny alphabet and learns, from data, which adjacent
pieces occur together so often that they deserve an id of their own.

Training (``ByteLevelBPETokenizer.train``) starts with one token per symbol and repeats:

1. count every pair of adjacent tokens in the training text;
2. take the most frequent pair, say ``("t", "h")``, give the new token ``"th"`` the next free
   id, and write the rule ``t h`` at the end of the *merge list*;
3. replace every occurrence of that pair in the text by the new token;

until the vocabulary has the requested size. On "aaabdaaabac" the first rule is ``a a``
(4 occurrences), the text becomes ``aa a b d aa a b a c``, and so on; the tests work the whole
example out by hand.

Encoding (``encode``) replays the merge list on new text: split the text into the base symbols,
then, while some adjacent pair has a rule, apply the rule that was learned *earliest* (its
*rank* in the merge list) everywhere in the word. Frequent words end up as a single token; a
rare word falls apart into a few known pieces, and in the worst case into base symbols, so
nothing is ever out of vocabulary.

Byte level
----------
GPT-2 runs BPE over the UTF-8 *bytes* of the text instead of its characters: the alphabet is
exactly 256 symbols and every string -- emoji, CJK, control characters -- has an encoding, so
``decode(encode(text)) == text`` for any text. (A token boundary may fall inside a multi-byte
character; the bytes still concatenate back to the original.) For files and debugging each
byte is written as one printable Unicode character (``bytes_to_unicode``): printable Latin-1
bytes stand for themselves and the rest (space, control bytes, ...) are shifted to U+0100 and
beyond, so a space is written ``Ġ`` and the token " the" appears in ``vocab.json`` as ``Ġthe``.

Pre-tokenization
----------------
Before BPE the text is cut into "pre-tokens" by GPT-2's regular expression (``pretokenize``):
contractions ('s 't 're 've 'm 'll 'd), runs of letters, runs of digits and runs of other
symbols, each with at most one leading space, and runs of white space. Merges never cross a
pre-token boundary, so "dog." can never become one token, and training only needs the count
of each distinct pre-token instead of the whole text.

The original pattern uses the third-party ``regex`` module's ``\\p{L}`` (letter) and ``\\p{N}``
(number) classes, which Python's ``re`` lacks::

    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

``gpt2_split_pattern`` builds the same expression for ``re`` with explicit character classes:
``\\p{L}`` becomes every code point whose ``unicodedata`` category starts with L, ``\\p{N}`` with
N, and ``\\s`` the Unicode White_Space set (Python's own ``\\s`` also matches U+001C..U+001F,
which ``regex`` and GPT-2 treat as symbols). The one remaining difference is the Unicode
version: the classes come from the running Python's ``unicodedata`` (Unicode 14.0 on Python
3.11), while ``regex`` ships newer tables, so a letter or digit *added to Unicode after that
version* counts as a symbol here and as a letter/number there. Text made of characters that
exist in Unicode 14 splits identically (the tests compare against ``regex`` when it is
installed).

Ties and determinism
--------------------
When several pairs are equally frequent, training merges the pair whose ``(left bytes, right
bytes)`` is smallest in byte order (compare the left tokens' bytes, then the right tokens').
The result depends only on the text, not on dict order or on the order of the texts. Pair
counts are the plain number of adjacent positions, so "aaa" counts the pair ``a a`` twice
even though only one of them can be merged (as in Sennrich et al.'s original BPE code and
Hugging Face's trainer).

Efficiency
----------
A full recount after every merge costs O(text) per merge. Instead ``train`` keeps a count per
pair and the set of distinct pre-tokens containing it; a merge rewrites only those pre-tokens
and adjusts the counts of the pairs that changed around the merged positions. The best pair
comes from a heap with lazy deletion (an entry whose count is out of date is skipped when it
surfaces). Measured on tiny Shakespeare (1.1 MB) to a 1000-token vocabulary: 1-2 s, of which
0.3 s is pre-tokenization; recounting every pair before each merge costs ~0.1 s per merge, ~80 s.

Ids and special tokens
----------------------
A trained tokenizer gives the 256 bytes ids 0..255 (id == byte value), then one id per new
token in the order it was learned, then the special tokens (as GPT-2's "<|endoftext|>" is its
last id, 50256). A special token is matched as a whole, before pre-tokenization, when ``encode``
is told to allow it; it is never produced by merges: training skips the text of special tokens
and never learns a merge whose result is spelled like one. A tokenizer loaded from files can
have any id layout (GPT-2's own files number the bytes differently).

Files: ``save`` writes GPT-2's ``vocab.json`` (token -> id, tokens spelled with
``bytes_to_unicode``; special tokens spelled as themselves) and ``merges.txt`` (a
``#version: 0.2`` line, then one ``left right`` rule per line in rank order), which Hugging Face's
``GPT2Tokenizer`` reads; ``from_pretrained`` reads these, and OpenAI's original
``encoder.json`` / ``vocab.bpe`` pair. Tests: tests/test_tokenizer_bpe.py and, against Hugging
Face, tests/test_tokenizer_bpe_hf.py.
"""
from __future__ import annotations

import codecs
import functools
import heapq
import json
import os
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from tinylm.tokenizers.char import check_token_ids

__all__ = ["ByteLevelBPETokenizer", "bytes_to_unicode", "gpt2_split_pattern", "pretokenize",
           "GPT2_SPLIT_PATTERN"]

# GPT-2's pre-tokenization pattern as written for the `regex` module (for reference and tests).
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Unicode's White_Space property (unchanged since Unicode 6.3): what `regex` means by \s.
_WHITE_SPACE = [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
                (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)]

_MERGES_HEADER = "#version: 0.2"
_CACHE_SIZE = 1 << 16   # pre-tokens remembered by encode before the cache is emptied


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's spelling of the 256 byte values as 256 printable, non-space characters.

    The 188 bytes that are printable Latin-1 characters (``!``..``~``, ``¡``..``¬``,
    ``®``..``ÿ``) stand for themselves; the other 68 (controls, space, DEL, NBSP, soft hyphen)
    get ``chr(256)``, ``chr(257)``, ... in byte order, so byte 0x20 (space) is ``Ġ`` (U+0120)
    and 0x0A (newline) is ``Ċ`` (U+010A). Returns ``{byte value: character}``.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    spelling = {b: chr(b) for b in printable}
    shifted = (b for b in range(256) if b not in spelling)
    spelling.update((b, chr(256 + n)) for n, b in enumerate(shifted))
    return dict(sorted(spelling.items()))


def _spell(token: bytes) -> str:
    """Bytes -> their vocab.json spelling."""
    sym = bytes_to_unicode()
    return "".join([sym[b] for b in token])


@functools.cache
def _byte_of_symbol() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def _class_body(ranges: Iterable[tuple[int, int]]) -> str:
    """Code point ranges -> the inside of a ``re`` character class, as \\U escapes."""
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


@functools.cache
def _category_ranges() -> dict[str, list[tuple[int, int]]]:
    """Runs ``(first, last)`` of code points whose general category is a letter (L*) or a number (N*)."""
    runs: dict[str, list[list[int]]] = {"L": [], "N": []}
    previous = None
    for cp in range(sys.maxunicode + 1):
        major = unicodedata.category(chr(cp))[0]          # "Lu" -> "L", "Nd" -> "N", ...
        if major in runs:
            if major == previous:
                runs[major][-1][1] = cp                   # extend the current run
            else:
                runs[major].append([cp, cp])              # start a new one
        previous = major
    return {major: [(first, last) for first, last in r] for major, r in runs.items()}


@functools.cache
def gpt2_split_pattern() -> re.Pattern:
    """GPT-2's pre-tokenization regex for Python's ``re`` (see the module docstring).

    Built on first use (one scan of the Unicode tables, ~0.2 s) and cached.
    """
    L = _class_body(_category_ranges()["L"])
    N = _class_body(_category_ranges()["N"])
    W = _class_body(_WHITE_SPACE)
    return re.compile(
        r"'s|'t|'re|'ve|'m|'ll|'d"     # common English contractions
        rf"| ?[{L}]+"                   # a run of letters, with at most one leading space
        rf"| ?[{N}]+"                   # a run of digits / numerals
        rf"| ?[^{W}{L}{N}]+"            # a run of anything else (punctuation, symbols, emoji)
        rf"|[{W}]+(?![^{W}])"           # white space not followed by a non-space: all of a
                                        # trailing run, or a run minus its last char, which
                                        # then joins the next word as its leading space
        rf"|[{W}]+")                    # a lone tab/newline/... before a word (" ?" takes
                                        # only a plain space)


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into GPT-2 pre-tokens; ``"".join(pretokenize(text)) == text``.

    >>> pretokenize("Hello world, it's  42!")
    ['Hello', ' world', ',', ' it', "'s", ' ', ' 42', '!']
    """
    return gpt2_split_pattern().findall(_check_text("text", text))


def _check_text(name: str, text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected str, got {type(text).__name__}")
    return text


def _check_utf8(name: str, text: str) -> None:
    """A lone surrogate (possible in a Python str) has no UTF-8 bytes, so no tokens."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{name}: character {text[e.start]!r} at index {e.start} is a lone surrogate, "
                         f"which has no UTF-8 encoding") from None


def merge_pair(ids: list, pair: tuple, new_id) -> list:
    """Replace each occurrence of ``pair`` in ``ids``, left to right, by ``new_id``.

    Occurrences cannot overlap: with the rule ``a a``, ``a a a`` becomes ``aa a``. The symbols may
    be ids (BPE) or strings (the WordPiece trainer uses it too).
    """
    a, b = pair
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _special_splitter(specials: Iterable[str]) -> re.Pattern | None:
    """A regex matching any of ``specials``; the longest wins where two start at one place."""
    names = sorted(specials, key=lambda s: (-len(s), s))
    return re.compile("|".join(map(re.escape, names))) if names else None


def _check_special_tokens(special_tokens: object) -> list[str]:
    if isinstance(special_tokens, str) or not isinstance(special_tokens, Iterable):
        raise TypeError(f"special_tokens: expected a list of str, got {type(special_tokens).__name__} "
                        f"{special_tokens!r}" + (" (wrap a single token in a list)"
                                                 if isinstance(special_tokens, str) else ""))
    specials = list(special_tokens)
    symbols = set(bytes_to_unicode().values())
    for s in specials:
        if not isinstance(s, str) or s == "":
            raise ValueError(f"special_tokens: every entry must be a non-empty str, got {s!r}")
        _check_utf8(f"special_tokens: {s!r}", s)
        if s in symbols:
            raise ValueError(f"special_tokens: {s!r} is the spelling of byte "
                             f"0x{_byte_of_symbol()[s]:02X} in vocab.json and cannot also be a special token")
    dupes = sorted(s for s, n in Counter(specials).items() if n > 1)
    if dupes:
        raise ValueError(f"special_tokens: each token may appear once, got {dupes[0]!r} more than once")
    return specials


class ByteLevelBPETokenizer:
    """GPT-2's byte-level BPE tokenizer: ``train`` it, or load GPT-2-format files.

    Args:
        vocab: ``{token spelling: id}`` as in GPT-2's ``vocab.json``, ids exactly 0..len-1.
            It must spell all 256 bytes (``bytes_to_unicode``). Entries that are neither a
            byte nor the result of a merge are the special tokens (GPT-2: "<|endoftext|>").
        merges: the merge rules in rank order, each a pair ``(left, right)`` of spellings
            whose parts and concatenation are all in ``vocab``.

    Attributes:
        vocab_size: number of ids.
        special_tokens: ``{special token: id}``.
        merges: the merge rules, ``[(left, right), ...]`` in rank order.
    """

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[tuple[str, str]]):
        self._vocab = self._check_vocab(vocab)
        self._tokens = [""] * len(self._vocab)             # id -> spelling
        for s, i in self._vocab.items():
            self._tokens[i] = s

        byte_symbol = bytes_to_unicode()
        self._byte_ids = [self._vocab[byte_symbol[b]] for b in range(256)]   # byte value -> id

        # pair of ids -> rank (position in the merge list) and the id of the merged token
        self._merge_rank: dict[tuple[int, int], int] = {}
        self._merge_id: dict[tuple[int, int], int] = {}
        self.merges: list[tuple[str, str]] = []
        for rank, rule in enumerate(merges):
            left, right = self._check_rule(rank, rule)
            pair = (self._vocab[left], self._vocab[right])
            if pair in self._merge_rank:
                raise ValueError(f"merges[{rank}]: the rule {left!r} {right!r} already appears "
                                 f"as merges[{self._merge_rank[pair]}]")
            self._merge_rank[pair] = rank
            self._merge_id[pair] = self._vocab[left + right]
            self.merges.append((left, right))

        regular = set(byte_symbol.values()) | {left + right for left, right in self.merges}
        self.special_tokens: dict[str, int] = {s: i for s, i in self._vocab.items() if s not in regular}
        for rank, (left, right) in enumerate(self.merges):
            for part in (left, right):
                if part in self.special_tokens:
                    raise ValueError(f"merges[{rank}]: {part!r} is neither a byte nor the result of a "
                                     f"merge, so it is a special token and cannot be merged")
        for s in self.special_tokens:
            _check_utf8(f"vocab: special token {s!r}", s)

        byte_of = _byte_of_symbol()
        self._bytes = [s.encode("utf-8") if s in self.special_tokens else bytes([byte_of[c] for c in s])
                       for s in self._tokens]             # id -> the bytes it decodes to
        self._cache: dict[str, tuple[int, ...]] = {}      # pre-token -> its ids
        self._splitters: dict[frozenset[str], re.Pattern | None] = {}

    # ------------------------------------------------------------------ training

    @classmethod
    def train(cls, texts: str | Iterable[str], vocab_size: int,
              special_tokens: Iterable[str] = ()) -> "ByteLevelBPETokenizer":
        """Learn merges from ``texts`` until the vocabulary has ``vocab_size`` ids.

        Args:
            texts: a str, or an iterable of str (documents; no merge crosses two of them).
            vocab_size: 256 bytes + learned tokens + special tokens. Training stops early,
                with a smaller vocabulary, if the text runs out of pairs to merge.
            special_tokens: strings that get their own id after the learned tokens. Their
                occurrences in ``texts`` are cut out before counting.
        """
        docs = [_check_text("texts", texts)] if isinstance(texts, str) else cls._check_texts(texts)
        specials = _check_special_tokens(special_tokens)
        need = 256 + len(specials)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < need:
            raise ValueError(f"vocab_size: expected an int >= {need} (256 bytes + {len(specials)} special "
                             f"tokens), got {vocab_size!r}")

        # 1. Count the distinct pre-tokens ("words"): merges never cross them, so each one is
        #    rewritten once per merge however often it occurs, its count standing in for the rest.
        splitter = _special_splitter(specials)
        word_count: Counter[str] = Counter()
        for doc in docs:
            for chunk in (splitter.split(doc) if splitter else [doc]):
                word_count.update(gpt2_split_pattern().findall(chunk))
        words = [list(w.encode("utf-8")) for w in word_count]   # each word as token ids (= bytes)
        counts = list(word_count.values())

        # 2. Count each adjacent pair, and remember which words contain it.
        token_bytes = [bytes([b]) for b in range(256)]          # id -> bytes
        id_of = {t: i for i, t in enumerate(token_bytes)}       # bytes -> id
        pair_count: Counter[tuple[int, int]] = Counter()
        where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
        for w, (word, n) in enumerate(zip(words, counts)):
            for pair in zip(word, word[1:]):
                pair_count[pair] += n
                where[pair].add(w)

        # 3. Max-heap on (count, then smallest bytes). Counts change after each merge; instead of
        #    updating entries in place we push a fresh one and skip stale ones when they surface.
        def entry(pair):
            return -pair_count[pair], token_bytes[pair[0]], token_bytes[pair[1]], pair

        heap = [entry(p) for p in pair_count]
        heapq.heapify(heap)
        forbidden = set(specials)       # a merge may not produce a token spelled like a special
        merges: list[tuple[int, int]] = []
        while len(token_bytes) < vocab_size - len(specials) and heap:
            neg_count, _, _, pair = heapq.heappop(heap)
            if pair_count.get(pair) != -neg_count:
                continue                                        # stale entry
            merged = token_bytes[pair[0]] + token_bytes[pair[1]]
            if _spell(merged) in forbidden:
                continue                                        # never merged (skipped each time it surfaces)
            new_id = id_of.get(merged)
            if new_id is None:
                new_id = id_of[merged] = len(token_bytes)
                token_bytes.append(merged)
            # else: a safeguard. Two rules may spell one token ("a"+"bc", "ab"+"c"); files allow
            # it and then both rules share the id. (Training text that does it is not known to us.)
            merges.append(pair)

            # 4. Rewrite the words containing the pair; update only the pair counts that change.
            changed = set()
            for w in where.pop(pair):
                old = words[w]
                new = merge_pair(old, pair, new_id)
                if len(new) == len(old):
                    continue            # the pair left this word in an earlier merge
                words[w] = new
                delta = Counter(zip(new, new[1:]))
                delta.subtract(Counter(zip(old, old[1:])))
                for p, d in delta.items():
                    if d:
                        pair_count[p] += d * counts[w]
                        changed.add(p)
                        if d > 0:
                            where[p].add(w)
            for p in changed:
                if pair_count[p] > 0:
                    heapq.heappush(heap, entry(p))
                else:
                    del pair_count[p]
                    where.pop(p, None)

        vocab = {_spell(t): i for i, t in enumerate(token_bytes)}
        vocab.update((s, len(token_bytes) + k) for k, s in enumerate(specials))
        rules = [(_spell(token_bytes[a]), _spell(token_bytes[b])) for a, b in merges]
        return cls(vocab, rules)

    # ------------------------------------------------------------------ encoding

    @property
    def vocab_size(self) -> int:
        return len(self._bytes)

    def encode(self, text: str, *, allowed_special: str | Iterable[str] = ()) -> list[int]:
        """``text`` -> token ids.

        Args:
            text: any str without lone surrogates.
            allowed_special: which special tokens to recognise in ``text``: ``"all"`` or a
                collection of them. A recognised special token becomes its single id; any
                other occurrence is encoded as ordinary text, byte by byte. The default, none,
                keeps text from untrusted sources from injecting control tokens.
        """
        _check_text("text", text)
        _check_utf8("text", text)
        splitter = self._splitter(allowed_special)
        if splitter is None:
            return self._encode_ordinary(text)
        ids, start = [], 0
        for m in splitter.finditer(text):
            ids += self._encode_ordinary(text[start:m.start()])
            ids.append(self.special_tokens[m.group()])
            start = m.end()
        return ids + self._encode_ordinary(text[start:])

    def _encode_ordinary(self, text: str) -> list[int]:
        ids = []
        cache = self._cache
        for piece in gpt2_split_pattern().findall(text):
            piece_ids = cache.get(piece)
            if piece_ids is None:
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                piece_ids = cache[piece] = self._bpe(piece)
            ids += piece_ids
        return ids

    def _bpe(self, piece: str) -> tuple[int, ...]:
        """One pre-token -> ids: apply the earliest-learned applicable rule until none applies.

        Each round is O(len), so a pre-token of n bytes costs O(n^2) at worst (as in GPT-2);
        pre-tokens are words, so n is small in practice.
        """
        ids = [self._byte_ids[b] for b in piece.encode("utf-8")]
        rank = self._merge_rank
        no_rule = len(rank)
        while len(ids) > 1:
            best = min(zip(ids, ids[1:]), key=lambda p: rank.get(p, no_rule))
            if best not in rank:
                break
            ids = merge_pair(ids, best, self._merge_id[best])
        return tuple(ids)

    def _splitter(self, allowed_special: str | Iterable[str]) -> re.Pattern | None:
        if allowed_special == "all":
            allowed = frozenset(self.special_tokens)
        elif isinstance(allowed_special, str) or not isinstance(allowed_special, Iterable):
            raise TypeError(f"allowed_special: expected 'all' or a collection of special tokens, got "
                            f"{type(allowed_special).__name__} {allowed_special!r}"
                            + (" (wrap a single token in a list)" if isinstance(allowed_special, str) else ""))
        else:
            allowed = frozenset(allowed_special)
            unknown = sorted(map(repr, allowed - self.special_tokens.keys()))
            if unknown:
                raise ValueError(f"allowed_special: {', '.join(unknown)} is not a special token of this "
                                 f"tokenizer (it has {sorted(self.special_tokens)})")
        if allowed not in self._splitters:
            self._splitters[allowed] = _special_splitter(allowed)
        return self._splitters[allowed]

    # ------------------------------------------------------------------ decoding

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Token ids -> the exact bytes they stand for (for streaming, or partial characters)."""
        return b"".join([self._bytes[i] for i in check_token_ids("ids", ids, self.vocab_size)])

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Token ids -> text. ``decode(encode(text)) == text`` for every text.

        A slice of ids may end inside a multi-byte character; ``errors`` ("replace", as in
        GPT-2, or "strict", "ignore", ...) says what to do with such incomplete bytes.
        """
        try:                                 # checked up front: Python looks a handler up only on a bad byte
            codecs.lookup_error(errors if isinstance(errors, str) else "")
        except LookupError:
            raise ValueError(f"errors: expected a codec error handler ('replace', 'strict', 'ignore', ...), "
                             f"got {errors!r}") from None
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def id_to_token(self, i: int) -> str:
        """The vocab.json spelling of token ``i`` (e.g. ``'Ġthe'``), for inspecting encodings."""
        (i,) = check_token_ids("i", [i], self.vocab_size)
        return self._tokens[i]

    def get_vocab(self) -> dict[str, int]:
        """A copy of ``{token spelling: id}``."""
        return dict(self._vocab)

    # ------------------------------------------------------------------ files

    def save(self, directory: str | os.PathLike) -> tuple[str, str]:
        """Write ``vocab.json`` and ``merges.txt`` (GPT-2 format) into ``directory``; return their paths."""
        os.makedirs(directory, exist_ok=True)
        vocab_path = os.path.join(directory, "vocab.json")
        merges_path = os.path.join(directory, "merges.txt")
        with open(vocab_path, "w", encoding="utf-8") as f:
            json.dump(dict(sorted(self._vocab.items(), key=lambda kv: kv[1])), f, ensure_ascii=False)
        with open(merges_path, "w", encoding="utf-8", newline="\n") as f:
            f.write(_MERGES_HEADER + "\n")
            f.writelines(f"{left} {right}\n" for left, right in self.merges)
        return vocab_path, merges_path

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "ByteLevelBPETokenizer":
        """Load ``vocab.json`` + ``merges.txt`` (Hugging Face names) or ``encoder.json`` +
        ``vocab.bpe`` (OpenAI's names for the same files) from ``directory``."""
        for vocab_name, merges_name in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
            vocab_path, merges_path = os.path.join(directory, vocab_name), os.path.join(directory, merges_name)
            if os.path.isfile(vocab_path) and os.path.isfile(merges_path):
                return cls.from_files(vocab_path, merges_path)
        raise FileNotFoundError(f"directory: {os.fspath(directory)!r} holds neither vocab.json + merges.txt "
                                f"nor encoder.json + vocab.bpe")

    @classmethod
    def from_files(cls, vocab_file: str | os.PathLike, merges_file: str | os.PathLike) -> "ByteLevelBPETokenizer":
        """Load a GPT-2-format vocabulary file and merges file."""
        with open(vocab_file, encoding="utf-8") as f:
            vocab = json.load(f)
        if not isinstance(vocab, dict):
            raise ValueError(f"vocab_file: {os.fspath(vocab_file)!r} must hold a JSON object "
                             f"{{token: id}}, got a {type(vocab).__name__}")
        with open(merges_file, encoding="utf-8", newline="") as f:
            lines = f.read().split("\n")
        rules = []
        for lineno, line in enumerate(lines, start=1):
            line = line.rstrip("\r")
            if not line or (lineno == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"merges_file: line {lineno} of {os.fspath(merges_file)!r} should be two "
                                 f"tokens separated by one space, got {line!r}")
            rules.append((parts[0], parts[1]))
        return cls(vocab, rules)

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _check_texts(texts: object) -> list[str]:
        if not isinstance(texts, Iterable):
            raise TypeError(f"texts: expected a str or an iterable of str, got {type(texts).__name__}")
        docs = list(texts)
        for k, doc in enumerate(docs):
            if not isinstance(doc, str):
                raise TypeError(f"texts: expected str documents, got {type(doc).__name__} at position {k}")
        return docs

    @staticmethod
    def _check_vocab(vocab: object) -> dict[str, int]:
        if not isinstance(vocab, Mapping):
            raise TypeError(f"vocab: expected a mapping {{token: id}}, got {type(vocab).__name__}")
        for s, i in vocab.items():
            if not isinstance(s, str) or s == "" or isinstance(i, bool) or not isinstance(i, int):
                raise ValueError(f"vocab: expected non-empty str tokens and int ids, got {s!r}: {i!r}")
        ids = sorted(vocab.values())
        for expect, got in zip(range(len(ids)), ids):
            if got != expect:
                problem = f"id {got} appears twice" if got < expect else f"id {expect} is missing"
                raise ValueError(f"vocab: ids must be 0..{len(ids) - 1}, each once; {problem}")
        for b, c in bytes_to_unicode().items():
            if c not in vocab:
                raise ValueError(f"vocab: missing {c!r}, the spelling of byte 0x{b:02X}; a byte-level "
                                 f"vocabulary needs all 256 bytes")
        return dict(vocab)

    def _check_rule(self, rank: int, rule: object) -> tuple[str, str]:
        if not (isinstance(rule, (tuple, list)) and len(rule) == 2 and all(isinstance(p, str) for p in rule)):
            raise ValueError(f"merges[{rank}]: expected a pair (left, right) of str, got {rule!r}")
        left, right = rule
        for what, s in (("left token", left), ("right token", right), ("merged token", left + right)):
            if s not in self._vocab:
                raise ValueError(f"merges[{rank}]: the {what} {s!r} of rule {left!r} {right!r} is not in vocab")
        return left, right

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ByteLevelBPETokenizer):
            return NotImplemented
        return self._vocab == other._vocab and self.merges == other.merges

    def __repr__(self) -> str:
        return (f"ByteLevelBPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"special_tokens={list(self.special_tokens)})")
