"""Word-level text preprocessing with Keras' semantics: ``Tokenizer`` and ``pad_sequences``.

The pipeline of every word-level classifier in this repository (examples/sentiment_*.py)::

    tok = Tokenizer(num_words=10000, oov_token="<unk>")
    tok.fit_on_texts(train_texts)                       # count words, rank them by frequency
    seqs = tok.texts_to_sequences(train_texts)          # [[12, 7, 1, 430], ...]  (1 = <unk>)
    x = pad_sequences(seqs, maxlen=40)                  # (N, 40) int32, zeros in front

Id 0 is never a word: it is the padding value, so ``Embedding(mask_zero=True)`` (tinylm.keras)
can tell padding from words. With an ``oov_token`` it takes id 1 and the most frequent word id 2.

Differences from Keras: no ``char_level`` and no ``texts_to_matrix``; a tokenizer is saved with
``to_json`` / ``Tokenizer.from_json`` (plain JSON, as Keras' ``tokenizer_from_json``).
Plain Python and NumPy: nothing here runs on an accelerator. Tests: tests/test_text.py.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["DEFAULT_FILTERS", "text_to_word_sequence", "Tokenizer", "pad_sequences"]

# Keras' default: punctuation and tabs/newlines become separators. The apostrophe is kept ("it's").
DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def text_to_word_sequence(text: str, filters: str = DEFAULT_FILTERS, lower: bool = True,
                          split: str = " ") -> list[str]:
    """The words of ``text``: lower-cased, every character of ``filters`` turned into ``split``,
    split on ``split``, empty pieces dropped (Keras' function of the same name)."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    if lower:
        text = text.lower()
    text = text.translate(str.maketrans({c: split for c in filters}))
    return [w for w in text.split(split) if w]


def _check_texts(name: str, texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name}: expected a list of texts, got a single str (wrap it in a list)")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}]: expected str, got {type(t).__name__}")
    return texts


class Tokenizer:
    """Maps words to integer ids ranked by frequency, as ``keras.preprocessing.text.Tokenizer``.

    ``Tokenizer(num_words=None, filters=DEFAULT_FILTERS, lower=True, split=" ", oov_token=None)``

    * ``fit_on_texts(texts)`` counts the words. ``word_index`` then maps EVERY word seen to an
      id: 1 for ``oov_token`` if given, then the words by decreasing count (ties: first seen
      first), starting right after it. Id 0 is reserved for padding.
    * ``texts_to_sequences(texts)`` keeps only ids ``< num_words`` (all with ``num_words=None``);
      any other word becomes ``oov_token``'s id, or is dropped when there is no ``oov_token``.
    * ``vocab_size`` is the number of ids the sequences can hold, padding included: the
      ``input_dim`` an ``Embedding`` needs.

    Attributes as in Keras: ``word_counts`` (word -> count, first-seen order), ``word_docs``
    (word -> number of texts containing it), ``word_index``, ``index_word``, ``document_count``.
    """

    def __init__(self, num_words: int | None = None, filters: str = DEFAULT_FILTERS, lower: bool = True,
                 split: str = " ", oov_token: str | None = None):
        if num_words is not None and (isinstance(num_words, bool) or not isinstance(num_words, int)
                                      or num_words < 1):
            raise ValueError(f"num_words: expected None or a positive int, got {num_words!r}")
        if not isinstance(split, str) or not split:
            raise ValueError(f"split: expected a non-empty str, got {split!r}")
        if oov_token is not None and not isinstance(oov_token, str):
            raise TypeError(f"oov_token: expected None or a str, got {type(oov_token).__name__}")
        self.num_words = num_words
        self.filters = filters
        self.lower = bool(lower)
        self.split = split
        self.oov_token = oov_token
        self.word_counts: OrderedDict[str, int] = OrderedDict()
        self.word_docs: dict[str, int] = {}
        self.document_count = 0
        self.word_index: dict[str, int] = {}
        self.index_word: dict[int, str] = {}

    def _words(self, text: str) -> list[str]:
        return text_to_word_sequence(text, self.filters, self.lower, self.split)

    def fit_on_texts(self, texts: Iterable[str]) -> None:
        """Count the words of ``texts`` (added to earlier counts) and rebuild ``word_index``."""
        for text in _check_texts("texts", texts):
            self.document_count += 1
            words = self._words(text)
            for w in words:
                self.word_counts[w] = self.word_counts.get(w, 0) + 1
            for w in set(words):
                self.word_docs[w] = self.word_docs.get(w, 0) + 1
        # sorted() is stable: equal counts keep their first-seen order, as in Keras.
        ranked = sorted(self.word_counts, key=self.word_counts.__getitem__, reverse=True)
        if self.oov_token is not None:
            ranked = [self.oov_token] + [w for w in ranked if w != self.oov_token]
        self.word_index = {w: i for i, w in enumerate(ranked, start=1)}
        self.index_word = {i: w for w, i in self.word_index.items()}

    @property
    def vocab_size(self) -> int:
        """Ids in use plus one for padding: ``min(num_words, len(word_index) + 1)``."""
        n = len(self.word_index) + 1
        return n if self.num_words is None else min(self.num_words, n)

    def _require_fit(self) -> None:
        if not self.word_index:
            raise RuntimeError("Tokenizer: call fit_on_texts(texts) before converting texts")

    def texts_to_sequences(self, texts: Iterable[str]) -> list[list[int]]:
        """One list of word ids per text (see the class docstring for the out-of-vocabulary rule)."""
        self._require_fit()
        limit = self.vocab_size
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        out = []
        for text in _check_texts("texts", texts):
            seq = []
            for w in self._words(text):
                i = self.word_index.get(w)
                if i is None or i >= limit:
                    i = oov
                if i is not None:
                    seq.append(i)
            out.append(seq)
        return out

    def sequences_to_texts(self, sequences: Iterable[Sequence[int]]) -> list[str]:
        """The inverse, word by word, joined with ``split``; padding (0) and unknown ids are skipped."""
        self._require_fit()
        limit = self.vocab_size
        return [self.split.join(self.index_word[int(i)] for i in seq if 0 < int(i) < limit)
                for seq in sequences]

    # --- saving ---
    def to_json(self) -> str:
        """Configuration and counts as a JSON string; ``Tokenizer.from_json`` restores it exactly."""
        return json.dumps({"class_name": "Tokenizer", "config": {
            "num_words": self.num_words, "filters": self.filters, "lower": self.lower, "split": self.split,
            "oov_token": self.oov_token, "document_count": self.document_count,
            "word_counts": list(self.word_counts.items()), "word_docs": self.word_docs}})

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("class_name") != "Tokenizer":
            raise ValueError("from_json: not a Tokenizer's JSON (expected class_name 'Tokenizer')")
        cfg = data["config"]
        tok = cls(cfg["num_words"], cfg["filters"], cfg["lower"], cfg["split"], cfg["oov_token"])
        # Replay the counts in their saved (first-seen) order, so ties rank exactly as before.
        tok.word_counts = OrderedDict((w, int(c)) for w, c in cfg["word_counts"])
        tok.word_docs = {w: int(c) for w, c in cfg["word_docs"].items()}
        tok.document_count = int(cfg["document_count"])
        tok.fit_on_texts([])
        return tok

    def __repr__(self) -> str:
        return (f"Tokenizer(num_words={self.num_words}, oov_token={self.oov_token!r}, "
                f"words={len(self.word_counts)}, vocab_size={self.vocab_size})")


def pad_sequences(sequences: Iterable[Sequence], maxlen: int | None = None, dtype="int32", padding: str = "pre",
                  truncating: str = "pre", value=0) -> np.ndarray:
    """Sequences of different lengths -> one (N, maxlen) array, as ``keras.utils.pad_sequences``.

    ``maxlen`` defaults to the longest sequence. Longer sequences lose ids from the front
    (``truncating="pre"``) or the back (``"post"``); shorter ones get ``value`` in front
    (``padding="pre"``, Keras' default) or at the back (``"post"``). Empty sequences become rows of
    ``value``. Returns a host NumPy array of ``dtype``.

    Which padding to choose: a recurrent layer WITHOUT a mask reads the padding too, and pre-padding
    puts it before the words, so the final state has just read the last word (why Keras pads in
    front). With ``Embedding(mask_zero=True)`` or explicit lengths, either works.
    """
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Iterable):
        raise TypeError(f"sequences: expected a list of sequences of ids, got {type(sequences).__name__}")
    if padding not in ("pre", "post"):
        raise ValueError(f"padding: expected 'pre' or 'post', got {padding!r}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"truncating: expected 'pre' or 'post', got {truncating!r}")
    seqs = []
    for i, s in enumerate(sequences):
        a = np.asarray(s)
        if a.ndim != 1:
            raise ValueError(f"sequences[{i}]: expected a 1-D sequence of ids, got shape {a.shape}")
        seqs.append(a)
    if maxlen is None:
        maxlen = max((len(s) for s in seqs), default=0)
    elif isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"maxlen: expected None or an int >= 0, got {maxlen!r}")
    out = np.full((len(seqs), int(maxlen)), value, dtype=dtype)
    for i, s in enumerate(seqs):
        if maxlen == 0 or len(s) == 0:
            continue
        kept = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if padding == "pre":
            out[i, maxlen - len(kept):] = kept
        else:
            out[i, :len(kept)] = kept
    return out
