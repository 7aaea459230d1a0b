"""Parallel text for translation: readers, a word tokenizer, a vocabulary, padding.

* :func:`read_tatoeba` reads the Tatoeba/manythings pairs (``fra-eng.zip`` with ``fra.txt``, one
  ``english<TAB>french[<TAB>attribution]`` line per pair, or the extracted text file).
* :func:`read_multi30k` reads a Multi30k split (``train.de`` / ``train.en``, line-aligned).
* :class:`WordTokenizer` splits text into words and punctuation marks and joins them back.
* :class:`Vocab` maps tokens to ids with the specials ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2,
  ``<unk>`` = 3.
* :func:`pad_batch` stacks id lists into a right-padded (B, T) array.

Example: examples/translate.py.  Tests: tests/test_seq2seq.py.
"""
from __future__ import annotations

import io
import pathlib
import re
import zipfile
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

__all__ = ["read_tatoeba", "read_multi30k", "WordTokenizer", "Vocab", "pad_batch",
           "PAD", "BOS", "EOS", "UNK", "SPECIALS", "PAD_ID", "BOS_ID", "EOS_ID", "UNK_ID"]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)


# ----------------------------------------------------------------------------------------------
# Readers.
# ----------------------------------------------------------------------------------------------

def read_tatoeba(path, member: str = "fra.txt") -> list[tuple[str, str]]:
    """``(english, other)`` pairs from a manythings.org Tatoeba file, in file order.

    ``path`` is the zip (``fra-eng.zip``; ``member`` names the text file inside it) or the
    extracted text file. Each line is ``english<TAB>other``, optionally followed by a third
    attribution column, which is dropped. Text is stripped of surrounding whitespace only.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no such file {str(path)!r} (expected fra-eng.zip or fra.txt)")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if member not in zf.namelist():
                raise ValueError(f"member: {member!r} is not in {path.name}; it holds {zf.namelist()}")
            with zf.open(member) as f:
                lines = io.TextIOWrapper(f, encoding="utf-8").read().splitlines()
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
    pairs = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise ValueError(f"{path.name}, line {n}: expected 'english<TAB>translation', got {line[:60]!r}")
        pairs.append((cols[0].strip(), cols[1].strip()))
    return pairs


def read_multi30k(directory, split: str = "train", src: str = "de", tgt: str = "en") -> list[tuple[str, str]]:
    """``(source, target)`` pairs of a Multi30k split: lines of ``{split}.{src}`` and ``{split}.{tgt}``.

    Splits in the raw release: ``train``, ``val``, ``test_2016_flickr`` (languages ``de``, ``en``).
    """
    d = pathlib.Path(directory)
    files = [d / f"{split}.{lang}" for lang in (src, tgt)]
    for f in files:
        if not f.exists():
            have = sorted(p.name for p in d.glob("*.*")) if d.is_dir() else []
            raise FileNotFoundError(f"split: no file {f.name!r} in {str(d)!r}; found {have}")
    a, b = (f.read_text(encoding="utf-8").splitlines() for f in files)
    if len(a) != len(b):
        raise ValueError(f"{files[0].name} has {len(a)} lines but {files[1].name} has {len(b)}: not aligned")
    return [(x.strip(), y.strip()) for x, y in zip(a, b)]


# ----------------------------------------------------------------------------------------------
# Tokenizer and vocabulary.
# ----------------------------------------------------------------------------------------------

# A number with its decimal point or separators ("3.5", "10:30"), a word with inner apostrophes
# ("don't", "aujourd'hui"; "l'homme" stays one token unless split_elision), or one other
# non-space character (punctuation).
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)+|\w+(?:['’]\w+)*|[^\w\s]")
# French elided articles and pronouns: "l'homme" -> "l'", "homme".
_ELISION = re.compile(r"^((?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu)['’])(\w.*)$", re.IGNORECASE)
_NO_SPACE_BEFORE = set(".,!?;:%)]}…")
_NO_SPACE_AFTER = set("([{¿¡")


class WordTokenizer:
    """Splits text into words and punctuation marks; :meth:`detokenize` joins them back.

    ``WordTokenizer(lowercase=False, split_elision=False)``. ``tokenize("Don't go, Tom!")`` ->
    ``["Don't", "go", ",", "Tom", "!"]``. With ``split_elision`` (for French) an elided article or
    pronoun becomes its own token: ``"l'homme"`` -> ``["l'", "homme"]``. ``detokenize`` puts one
    space between tokens except before closing punctuation (``. , ! ? ; : % ) ]``), after opening
    brackets, inside pairs of straight double quotes and after an elided ``l'``; it inverts
    ``tokenize`` on ordinary English sentences (quotes with inner spaces aside).
    """

    def __init__(self, lowercase: bool = False, split_elision: bool = False):
        self.lowercase = bool(lowercase)
        self.split_elision = bool(split_elision)

    def tokenize(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        if self.lowercase:
            text = text.lower()
        tokens = _TOKEN.findall(text)
        if not self.split_elision:
            return tokens
        out = []
        for t in tokens:
            m = _ELISION.match(t)
            out.extend(m.groups() if m else (t,))
        return out

    __call__ = tokenize

    def detokenize(self, tokens: Sequence[str]) -> str:
        text, prev, in_quote = "", "", False
        for t in tokens:
            if t == '"':
                in_quote = not in_quote
                glue = not in_quote                          # a closing quote sticks to the word before
            else:
                glue = (t in _NO_SPACE_BEFORE or prev in _NO_SPACE_AFTER
                        or (prev == '"' and in_quote)        # the word right after an opening quote
                        or (len(prev) > 1 and prev[-1] in "'’"))   # after an elided "l'", "qu'"
            text += t if (glue or not text) else " " + t
            prev = t
        return text

    def __repr__(self) -> str:
        return f"WordTokenizer(lowercase={self.lowercase}, split_elision={self.split_elision})"


class Vocab:
    """Token <-> id maps; ids 0..3 are ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``.

    Build with :meth:`build` from tokenised sentences (most frequent first, ties in first-seen
    order), or from an explicit token list. ``encode`` maps unknown tokens to ``<unk>`` and can
    wrap the ids in ``<bos>`` ... ``<eos>``; ``decode`` stops at ``<eos>`` and drops the specials.
    """

    def __init__(self, tokens: Iterable[str] = ()):
        self.itos: list[str] = list(SPECIALS)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        for t in tokens:
            if t not in self.stoi:
                self.stoi[t] = len(self.itos)
                self.itos.append(t)

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """A vocabulary of the tokens seen at least ``min_freq`` times, at most ``max_size`` in all
        (specials included)."""
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq: expected a positive int, got {min_freq!r}")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int)
                                     or max_size < len(SPECIALS)):
            raise ValueError(f"max_size: expected None or an int >= {len(SPECIALS)}, got {max_size!r}")
        counts = Counter(t for s in sentences for t in s)
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])               # stable: ties keep first-seen order
        keep = [t for t, c in ranked if c >= min_freq and t not in SPECIALS]
        if max_size is not None:
            keep = keep[:max_size - len(SPECIALS)]
        return cls(keep)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = [self.stoi.get(t, UNK_ID) for t in tokens]
        return ([BOS_ID] if add_bos else []) + ids + ([EOS_ID] if add_eos else [])

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` up to the first ``<eos>``, without ``<pad>``/``<bos>``; ``<unk>`` is kept."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"ids: {i} is not in [0, {len(self.itos)})")
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(self.itos[i])
        return out

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int = PAD_ID, length: int | None = None) -> np.ndarray:
    """Right-pad id lists into an int64 array (B, T), T = ``length`` or the longest sequence."""
    if len(seqs) == 0:
        raise ValueError("seqs: need at least one sequence")
    longest = max(len(s) for s in seqs)
    T = longest if length is None else length
    if T < longest:
        raise ValueError(f"length: {T} is shorter than the longest sequence ({longest})")
    out = np.full((len(seqs), T), pad_id, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out
