"""Train word2vec (skip-gram, negative sampling) and GloVe on an English corpus, then evaluate them.

    python examples/word_vectors.py                        # built-in corpus (Python's help text), seconds
    python examples/word_vectors.py --data ../shared/data/embeddings/wikitext-2/valid.txt \
                                           ../shared/data/embeddings/wikitext-2/test.txt
    python examples/word_vectors.py --data a.txt b.tsv --epochs 20 --plot pca.png --save w2v.txt

Prints the evaluation table (WordSim-353 and its similarity/relatedness split, SimLex-999, MEN:
Spearman; Google analogies: accuracy, with the out-of-vocabulary counts) when the evaluation sets
are found (``../shared/data/embeddings`` or ``$TINYLM_EMBEDDINGS_DATA``; without them the table is
skipped), the nearest neighbours of a few words, a few analogies, and with ``--plot PATH`` a 2-D
PCA plot of selected words (needs matplotlib).

Without ``--data`` the corpus is the text of Python's interactive help (``pydoc_data.topics``,
about 66,000 words; tinylm.data.builtin): it runs anywhere, and its neighbours are about Python
("list", "string", "exception"), while the word-similarity sets, about everyday English, find
few of their words in it. Corpus files: one sentence or paragraph per line, tokens separated by
spaces (WikiText-2 is already tokenised); ``.tsv`` files contribute their first column (SST-2's
sentences); heading lines such as `` = Title = `` are skipped; text is lower-cased unless
``--keep-case``. The WikiText-2 files hold ~0.45M words: expect low scores (see
../shared/data/embeddings/README.md).

Code: tinylm/models/word2vec.py, glove.py, keyed_vectors.py, tinylm/embeddings_eval.py.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from tinylm.data.builtin import python_docs_word_lines
from tinylm.data.files import read_word_corpus
from tinylm.embeddings_eval import default_data_dir, evaluate_all, format_results
from tinylm.models.glove import GloVe
from tinylm.models.word2vec import Word2Vec
from tinylm.scripting import nonnegative_int, positive_float, positive_int, script_main

# Words whose neighbours are shown when the corpus has them: WikiText-2's, then the built-in corpus's.
NEIGHBOUR_WORDS = ["king", "city", "music", "war", "french", "film", "three", "good",
                   "list", "string", "exception", "integer", "function", "file"]
ANALOGIES = [("man", "king", "woman"), ("france", "paris", "england"), ("good", "better", "bad"),
             ("big", "bigger", "small")]
PLOT_WORDS = ["january", "february", "march", "april", "one", "two", "three", "four", "five",
              "england", "france", "germany", "japan", "london", "paris", "berlin", "tokyo",
              "king", "queen", "prince", "church", "war", "army", "battle", "music", "song", "album",
              "list", "tuple", "dict", "string", "integer", "float", "function", "method", "class", "module"]


def load_corpus(paths, lowercase: bool = True) -> list[list[str]]:
    """Token lists, one per line: of the files ``paths`` (tinylm.data.files.read_word_corpus), or of
    the built-in corpus when ``paths`` is empty."""
    if not paths:
        return python_docs_word_lines()
    return read_word_corpus(paths, lowercase=lowercase, flag="--data")


def show_neighbours(name, kv, words, topn=6):
    print(f"\nNearest neighbours ({name}):")
    for w in words:
        if w in kv:
            print(f"  {w:>8}: " + ", ".join(f"{n} {s:.2f}" for n, s in kv.most_similar(w, topn=topn)))


def show_analogies(name, kv):
    present = [(a, b, c) for a, b, c in ANALOGIES if all(w in kv for w in (a, b, c))]
    if present:
        print(f"\nAnalogies a : b :: c : ? ({name}, 3CosAdd / 3CosMul):")
    for a, b, c in present:
        add = [w for w, _ in kv.most_similar(positive=[b, c], negative=[a], topn=3)]
        mul = [w for w, _ in kv.most_similar(positive=[b, c], negative=[a], topn=3, method="3cosmul")]
        print(f"  {a} : {b} :: {c} : {', '.join(add)}  /  {', '.join(mul)}")


def pca_plot(models: dict, words, path):
    """2-D PCA of ``words`` for each model, side by side, saved to ``path`` (PNG)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\n(matplotlib is not installed: pip install matplotlib to get the PCA plot)")
        return
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 5.5), squeeze=False)
    for ax, (name, kv) in zip(axes[0], models.items()):
        present = [w for w in words if w in kv]
        x = np.asarray(kv[present], np.float64)
        x = x / np.linalg.norm(x, axis=1, keepdims=True) # cosine geometry, like the queries
        x -= x.mean(axis=0)
        _, s, vt = np.linalg.svd(x, full_matrices=False) # principal directions: rows of vt
        xy = x @ vt[:2].T
        ax.scatter(xy[:, 0], xy[:, 1], s=12)
        for w, (px, py) in zip(present, xy):
            ax.annotate(w, (px, py), fontsize=9, xytext=(3, 3), textcoords="offset points")
        explained = (s[:2] ** 2).sum() / (s ** 2).sum()
        ax.set_title(f"{name}: PCA of {len(present)} words ({explained:.0%} of variance)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"\nPCA plot saved to {path}")


@script_main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", default=None,
                    help="corpus files (default: the built-in corpus, Python's help text)")
    ap.add_argument("--keep-case", action="store_true", help="do not lower-case the corpus")
    ap.add_argument("--dim", type=positive_int, default=100, help="vector size")
    ap.add_argument("--window", type=positive_int, default=5, help="word2vec context window")
    ap.add_argument("--negative", type=positive_int, default=5, help="negative samples per example")
    ap.add_argument("--min-count", type=positive_int, default=5, help="rarer words are dropped")
    ap.add_argument("--epochs", type=positive_int, default=10, help="word2vec epochs")
    ap.add_argument("--workers", type=positive_int, default=os.cpu_count() or 2)
    ap.add_argument("--seed", type=nonnegative_int, default=1)
    ap.add_argument("--glove-window", type=positive_int, default=10)
    ap.add_argument("--glove-epochs", type=positive_int, default=25)
    ap.add_argument("--glove-x-max", type=positive_float, default=10.0,
                    help="10 suits small corpora (the C demo's value)")
    ap.add_argument("--glove-lr", type=positive_float, default=0.05)
    ap.add_argument("--no-glove", action="store_true")
    ap.add_argument("--plot", default=None, metavar="PNG",
                    help="save a PCA plot of selected words here (needs matplotlib)")
    ap.add_argument("--save", default=None, help="save the word2vec vectors in word2vec text format")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    sentences = load_corpus(args.data, lowercase=not args.keep_case)
    n_tokens = sum(map(len, sentences))
    source = ", ".join(args.data) if args.data else "the built-in corpus (pydoc_data.topics)"
    print(f"corpus: {len(sentences):,} lines, {n_tokens:,} tokens from {source} ({time.perf_counter() - t0:.1f} s)")

    models = {}
    w2v = Word2Vec(vector_size=args.dim, window=args.window, min_count=args.min_count, sg=1, negative=args.negative,
                   epochs=args.epochs, workers=args.workers, seed=args.seed, compute_loss=True)
    w2v.build_vocab(sentences)
    report = w2v.train(sentences)
    print(f"word2vec skip-gram: V={len(w2v.wv):,}, {report.examples:,} SGD steps in {report.seconds:.1f} s "
          f"({report.words / report.seconds:,.0f} words/s, {args.workers} workers); loss per example by epoch: "
          + " ".join(f"{x:.3f}" for x in report.epoch_losses))
    models["word2vec"] = w2v.wv
    if not args.no_glove:
        t0 = time.perf_counter()
        glove = GloVe(vector_size=args.dim, window=args.glove_window, x_max=args.glove_x_max, epochs=args.glove_epochs,
                      learning_rate=args.glove_lr, min_count=args.min_count, workers=args.workers,
                      seed=args.seed).fit(sentences)
        print(f"GloVe: {glove.cooccurrence.nnz:,} non-zero co-occurrences, {args.glove_epochs} epochs in "
              f"{glove.seconds:.1f} s (total with counting {time.perf_counter() - t0:.1f} s); loss per non-zero: "
              f"{glove.loss_history[0]:.4f} -> {glove.loss_history[-1]:.4f}")
        models["GloVe"] = glove.wv

    if default_data_dir().is_dir():
        print("\nEvaluation (Spearman for similarity; analogy accuracy 3CosAdd; (evaluated/total), the rest OOV):")
        print(format_results({name: evaluate_all(kv) for name, kv in models.items()}))
    else:
        print(f"\n(no evaluation sets at {default_data_dir()}: set TINYLM_EMBEDDINGS_DATA to a copy of "
              "shared/data/embeddings for the similarity and analogy table)")
    for name, kv in models.items():
        show_neighbours(name, kv, NEIGHBOUR_WORDS)
        show_analogies(name, kv)
    if args.plot:
        pca_plot(models, PLOT_WORDS, args.plot)
    if args.save:
        w2v.wv.save_word2vec_format(args.save)
        print(f"word2vec vectors saved to {args.save}")


if __name__ == "__main__":
    main()
