"""Character-level tokenizer: one token per Unicode character.

The simplest tokenizer there is, and the one the first language models in this repository use
(tiny Shakespeare, names). The vocabulary is the set of distinct characters of a training text;
each character gets an id by its position in the *sorted* vocabulary, so the same text always
gives the same ids, whatever order the characters first appeared in::

    tok = CharTokenizer.from_text("hello")       # vocabulary e, h, l, o -> ids 0, 1, 2, 3
    tok.encode("hole")                           # [1, 3, 2, 0]
    tok.decode([1, 0, 2, 2, 3])                  # 'hello'

A character outside the vocabulary is an error that names it, unless the tokenizer was built
with an ``unk_token``: then every unknown character maps to that token's id (and decodes to the
``unk_token`` string, so such a round trip is lossy by design).

"Character" means a Python ``str`` element, i.e. a Unicode code point: a letter followed by a
combining accent is two tokens, an emoji made of several code points is several tokens.

Tests: tests/test_tokenizer_char.py.
"""
from __future__ import annotations

import json
import operator
import os
from collections.abc import Iterable

__all__ = ["CharTokenizer", "check_token_ids"]

_FORMAT = "tinylm.CharTokenizer"   # the "type" field of the saved JSON file
_FORMAT_VERSION = 1


def check_token_ids(name: str, ids: Iterable[int], vocab_size: int) -> list[int]:
    """``ids`` as a list of Python ints, each in ``[0, vocab_size)``.

    Accepts any iterable of ints (a list, a tuple, a 1-D NumPy integer array). Booleans and
    floats are refused: a ``True`` or a ``3.0`` among token ids is a bug upstream, not an id.
    """
    if ids is None or isinstance(ids, (str, bytes, dict)) or not hasattr(ids, "__iter__") \
            or getattr(ids, "ndim", 1) != 1:
        got = f"an array of shape {tuple(ids.shape)}" if hasattr(ids, "shape") else type(ids).__name__
        raise TypeError(f"{name}: expected a sequence of int token ids, got {got}")
    out = []
    for pos, i in enumerate(ids):
        if isinstance(i, bool):
            raise TypeError(f"{name}: expected int token ids, got bool {i!r} at position {pos}")
        try:
            i = operator.index(i)
        except TypeError:
            raise TypeError(f"{name}: expected int token ids, got {type(i).__name__} {i!r} "
                            f"at position {pos}") from None
        if not 0 <= i < vocab_size:
            raise ValueError(f"{name}: token ids must lie in [0, {vocab_size}), got {i} at position {pos}")
        out.append(i)
    return out


def _check_text(name: str, text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected str, got {type(text).__name__}")
    return text


class CharTokenizer:
    """Maps each character to an id by its rank in the sorted vocabulary.

    Args:
        chars: the vocabulary, an iterable of single characters (a ``str`` works: its
            characters). Duplicates are dropped; order does not matter (ids follow sorted order).
        unk_token: optional string that unknown characters map to. If it is itself one of
            ``chars`` it keeps that character's id; otherwise it gets the last id,
            ``len(chars)``, so the character ids are the same with or without it.

    Attributes:
        chars: the sorted vocabulary characters; ``chars[i]`` has id ``i``.
        unk_token, unk_id: the unknown token and its id (both ``None`` when there is none).
        vocab_size: number of ids (``len(chars)``, plus one for an appended ``unk_token``).
    """

    def __init__(self, chars: Iterable[str], unk_token: str | None = None):
        if isinstance(chars, (bytes, bytearray)) or not isinstance(chars, Iterable):
            raise TypeError(f"chars: expected a str or an iterable of single characters, "
                            f"got {type(chars).__name__}")
        vocab = set()
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"chars: every entry must be a single character, got {c!r}")
            vocab.add(c)
        if not vocab:
            raise ValueError("chars: expected at least one character, got none")
        if unk_token is not None and (not isinstance(unk_token, str) or unk_token == ""):
            raise ValueError(f"unk_token: expected None or a non-empty str, got {unk_token!r}")

        self.chars: tuple[str, ...] = tuple(sorted(vocab))
        self._stoi = {c: i for i, c in enumerate(self.chars)}
        self._itos = list(self.chars)
        self.unk_token = unk_token
        self.unk_id: int | None = None
        if unk_token is not None:
            self.unk_id = self._stoi.get(unk_token, len(self.chars))
            if self.unk_id == len(self.chars):
                self._itos.append(unk_token)

    @classmethod
    def from_text(cls, text: str, unk_token: str | None = None) -> "CharTokenizer":
        """The tokenizer whose vocabulary is every distinct character of ``text``."""
        return cls(_check_text("text", text), unk_token=unk_token)

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    def encode(self, text: str) -> list[int]:
        """``text`` -> one id per character."""
        _check_text("text", text)
        stoi = self._stoi
        if self.unk_id is not None:
            unk = self.unk_id
            return [stoi.get(c, unk) for c in text]
        try:
            return [stoi[c] for c in text]
        except KeyError as e:
            c = e.args[0]
            raise ValueError(f"text: character {c!r} (U+{ord(c):04X}) at index {text.index(c)} is not in "
                             f"the vocabulary of {len(self.chars)} characters; build the tokenizer with "
                             f"unk_token=... to map unknown characters to one id") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text (the ``unk_id`` decodes to the ``unk_token`` string)."""
        itos = self._itos
        return "".join([itos[i] for i in check_token_ids("ids", ids, self.vocab_size)])

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary to a JSON file (``load`` reads it back)."""
        # A list, not a joined string: json would fuse two lone surrogates that happen to sit
        # side by side into one character. ensure_ascii (the default) escapes control
        # characters and surrogates, so any vocabulary survives the file.
        state = {"type": _FORMAT, "version": _FORMAT_VERSION, "chars": list(self.chars),
                 "unk_token": self.unk_token}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(state, f)
            f.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CharTokenizer":
        """Read a tokenizer written by ``save``."""
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        if not isinstance(state, dict) or state.get("type") != _FORMAT:
            got = state.get("type") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"path: {os.fspath(path)!r} is not a saved CharTokenizer "
                             f"(expected type {_FORMAT!r}, got {got!r})")
        if state.get("version") != _FORMAT_VERSION:
            raise ValueError(f"path: unsupported CharTokenizer file version {state.get('version')!r} "
                             f"(this tinylm reads version {_FORMAT_VERSION})")
        return cls(state["chars"], unk_token=state["unk_token"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CharTokenizer):
            return NotImplemented
        return self.chars == other.chars and self.unk_token == other.unk_token

    def __repr__(self) -> str:
        unk = f", unk_token={self.unk_token!r}" if self.unk_token is not None else ""
        return f"CharTokenizer(vocab_size={self.vocab_size}{unk})"
