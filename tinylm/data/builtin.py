"""Built-in text that every CPython install carries, so that the examples run with no download:
the text of Python's interactive help topics (``pydoc_data.topics``, about 465 kB of English
prose and code).

Used by examples/train_gpt.py, bert_pretrain.py, word_vectors.py and bench_word2vec_gensim.py;
examples/ngram.py splits the same topics into prose sentences itself. Test: tests/test_examples.py.
"""
from __future__ import annotations

import re

__all__ = ["python_docs_text", "python_docs_word_lines"]

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+")


def python_docs_text() -> str:
    """The help topics, in sorted order of their names (so the text is the same on every run)."""
    import pydoc_data.topics
    return "\n".join(pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics))


def python_docs_word_lines() -> list[list[str]]:
    """:func:`python_docs_text` as lower-cased word lists, one per non-empty line (about 8,300 lines
    and 66,000 words): runs of letters (with inner apostrophes) or digits; punctuation is dropped."""
    lines = (_WORD.findall(line.lower()) for line in python_docs_text().splitlines())
    return [words for words in lines if words]
