"""Tokenizers: text <-> integer ids.

``CharTokenizer`` (one id per character), ``ByteLevelBPETokenizer`` (GPT-2's byte-level BPE,
trainable, reads and writes GPT-2's vocab.json + merges.txt) and ``WordPieceTokenizer`` (BERT's
basic tokenization + greedy longest-match WordPiece, reads Hugging Face vocab.txt, trainable).
Plain Python; no arrays involved except the batch encoders' outputs.
"""
from tinylm.tokenizers.bpe import ByteLevelBPETokenizer
from tinylm.tokenizers.char import CharTokenizer
from tinylm.tokenizers.wordpiece import BasicTokenizer, WordPieceTokenizer

__all__ = ["CharTokenizer", "ByteLevelBPETokenizer", "BasicTokenizer", "WordPieceTokenizer"]
