"""Tokenizers: text <-> integer ids.

``CharTokenizer`` (one id per character) and ``ByteLevelBPETokenizer`` (GPT-2's byte-level BPE,
trainable, reads and writes GPT-2's vocab.json + merges.txt). Plain Python; no arrays involved.
"""
from tinylm.tokenizers.bpe import ByteLevelBPETokenizer
from tinylm.tokenizers.char import CharTokenizer

__all__ = ["CharTokenizer", "ByteLevelBPETokenizer"]
