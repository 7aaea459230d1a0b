"""tinylm's Word2Vec against gensim 4.x, side by side in one run.

    pip install gensim            # for this benchmark only; not a tinylm dependency
    python examples/bench_word2vec_gensim.py                    # built-in corpus (Python's help text), skip-gram
    python examples/bench_word2vec_gensim.py --data ../shared/data/embeddings/wikitext-2/valid.txt \
                                                    ../shared/data/embeddings/wikitext-2/test.txt
    python examples/bench_word2vec_gensim.py --epochs 5 --seeds 1 --workers 4 --sg 0

Both libraries train on the same corpus with the same vector size, window, negative samples,
subsampling, learning rates, epochs and worker threads, once per seed, alternating which goes
first. Without ``--data`` the corpus is the built-in one of examples/word_vectors.py (66,000 words:
seconds, and fine for bar 2; the similarity sets find few of their words in it, so bar 1 means
little there). Both are evaluated by the same code (tinylm.embeddings_eval; skipped, and bar 1
with it, when the evaluation sets are not found) and the script checks:

* similarity: |mean Spearman(tinylm) - mean Spearman(gensim)| <= 0.03 on every similarity set;
* throughput: corpus words x epochs / training wall time, tinylm >= 0.5 x gensim (median over seeds).

Training time is the wall time of ``train`` (tinylm: encoding the corpus + the epochs; gensim: its
``train``), after a warm-up run that loads tinylm's compiled kernels from Numba's cache (compiled
on first use: a one-time cost, reported separately). The vocabulary pass is timed apart.
On a shared, loaded machine the throughput numbers move from run to run; the ratio, measured
side by side, moves less.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from tinylm.data.builtin import python_docs_word_lines
from tinylm.data.files import read_word_corpus
from tinylm.embeddings_eval import default_data_dir, evaluate_all
from tinylm.models.word2vec import Word2Vec
from tinylm.scripting import ScriptError, positive_float, positive_int, script_main

SETS = ("wordsim353", "wordsim353_sim", "wordsim353_rel", "simlex999", "men")
SPEARMAN_BAR, THROUGHPUT_BAR = 0.03, 0.5


def train_tinylm(sentences, p, seed):
    m = Word2Vec(vector_size=p.dim, window=p.window, min_count=p.min_count, sg=p.sg, negative=p.negative,
                 sample=p.sample, epochs=p.epochs, workers=p.workers, seed=seed)
    t0 = time.perf_counter()
    m.build_vocab(sentences)
    t1 = time.perf_counter()
    m.train(sentences)
    return m.wv, t1 - t0, time.perf_counter() - t1


def train_gensim(sentences, p, seed):
    from gensim.models import Word2Vec as GensimWord2Vec
    m = GensimWord2Vec(vector_size=p.dim, window=p.window, min_count=p.min_count, sg=p.sg, negative=p.negative,
                       sample=p.sample, epochs=p.epochs, workers=p.workers, seed=seed)
    t0 = time.perf_counter()
    m.build_vocab(sentences)
    t1 = time.perf_counter()
    m.train(sentences, total_examples=m.corpus_count, epochs=p.epochs)
    return m.wv, t1 - t0, time.perf_counter() - t1


@script_main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", default=None,
                    help="corpus files, tokens separated by spaces (default: the built-in corpus)")
    ap.add_argument("--dim", type=positive_int, default=100, help="vector size")
    ap.add_argument("--window", type=positive_int, default=5, help="context window")
    ap.add_argument("--negative", type=positive_int, default=5, help="negative samples per example")
    ap.add_argument("--sample", type=positive_float, default=1e-3, help="subsampling threshold of frequent words")
    ap.add_argument("--min-count", type=positive_int, default=5, help="rarer words are dropped")
    ap.add_argument("--sg", type=int, default=1, choices=(0, 1), help="1 skip-gram, 0 CBOW")
    ap.add_argument("--epochs", type=positive_int, default=10)
    ap.add_argument("--workers", type=positive_int, default=2, help="training threads of each library")
    ap.add_argument("--seeds", type=positive_int, default=3, help="runs per library (seeds 1..n)")
    p = ap.parse_args(argv)
    try:
        import gensim
        from gensim.models.word2vec_inner import FAST_VERSION
    except ImportError:
        raise ScriptError("this benchmark needs gensim 4.x: pip install gensim") from None
    import numba

    sentences = read_word_corpus(p.data) if p.data else python_docs_word_lines()
    evaluate = default_data_dir().is_dir()
    if not evaluate:
        print(f"(no evaluation sets at {default_data_dir()}: throughput only; set TINYLM_EMBEDDINGS_DATA for bar 1)")
    n_tokens = sum(map(len, sentences))
    print(f"corpus: {len(sentences):,} lines, {n_tokens:,} tokens; dim={p.dim} window={p.window} "
          f"negative={p.negative} sample={p.sample} min_count={p.min_count} sg={p.sg} epochs={p.epochs} "
          f"workers={p.workers}")
    print(f"gensim {gensim.__version__} (FAST_VERSION {FAST_VERSION}), numba {numba.__version__}, "
          f"numpy {np.__version__}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

    t0 = time.perf_counter()
    Word2Vec([["warm", "up"]] * 10, vector_size=4, min_count=1, epochs=1, workers=p.workers)
    print(f"tinylm kernel load (compiled on first use, then cached): {time.perf_counter() - t0:.2f} s")

    runs = {"tinylm": [], "gensim": []}
    for seed in range(1, p.seeds + 1):
        order = [("tinylm", train_tinylm), ("gensim", train_gensim)]
        for name, train in (order if seed % 2 else order[::-1]):
            kv, vocab_s, train_s = train(sentences, p, seed)
            results = evaluate_all(kv, similarity_sets=SETS) if evaluate else None
            runs[name].append(dict(vocab_s=vocab_s, train_s=train_s, wps=n_tokens * p.epochs / train_s,
                                   results=results))
            scores = (f", WS353 {results['wordsim353'].spearman:.3f}, MEN {results['men'].spearman:.3f}"
                      if evaluate else "")
            print(f"  seed {seed} {name:>6}: vocab {vocab_s:5.2f} s, train {train_s:6.2f} s "
                  f"({n_tokens * p.epochs / train_s:,.0f} words/s), V={len(kv.index_to_key):,}{scores}")

    def spearman(name, s):
        return [r["results"][s].spearman for r in runs[name]]

    print(f"\n{'':26s}{'tinylm':>16s}{'gensim':>16s}{'difference':>12s}")
    ok = None                                               # bar 1: None when not evaluated
    if evaluate:
        ok = True
        for s in SETS:
            a, g = spearman("tinylm", s), spearman("gensim", s)
            diff = statistics.mean(a) - statistics.mean(g)
            ok &= abs(diff) <= SPEARMAN_BAR                 # a nan (too few pairs found) fails
            sd = lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0    # noqa: E731  (nan-safe)
            n = runs["tinylm"][0]["results"][s]
            print(f"{s + ' Spearman':26s}{statistics.mean(a):9.3f} ±{sd(a):.3f}{statistics.mean(g):9.3f} "
                  f"±{sd(g):.3f}{diff:+12.3f}   ({n.n_pairs}/{n.n_pairs + n.n_oov} pairs)")
        acc = {k: [r["results"]["analogy"].accuracy for r in runs[k]] for k in runs}
        print(f"{'analogy accuracy':26s}{statistics.mean(acc['tinylm']):16.3f}"
              f"{statistics.mean(acc['gensim']):16.3f}")
    wps = {k: statistics.median(r["wps"] for r in runs[k]) for k in runs}
    ratio = wps["tinylm"] / wps["gensim"]
    print(f"{'words/s (median)':26s}{wps['tinylm']:16,.0f}{wps['gensim']:16,.0f}{ratio:11.2f}x")
    print(f"{'train s (median)':26s}{statistics.median(r['train_s'] for r in runs['tinylm']):16.2f}"
          f"{statistics.median(r['train_s'] for r in runs['gensim']):16.2f}")
    print(f"{'vocab s (median)':26s}{statistics.median(r['vocab_s'] for r in runs['tinylm']):16.2f}"
          f"{statistics.median(r['vocab_s'] for r in runs['gensim']):16.2f}")
    bar1 = "not evaluated (no evaluation sets)" if ok is None else "PASS" if ok else "FAIL"
    print(f"\nbar 1, |Spearman difference| <= {SPEARMAN_BAR} on every set: {bar1}")
    print(f"bar 2, throughput >= {THROUGHPUT_BAR}x gensim: {'PASS' if ratio >= THROUGHPUT_BAR else 'FAIL'} "
          f"({ratio:.2f}x)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return {"bar1": ok, "throughput_ratio": round(ratio, 3), "words_per_s": wps}


if __name__ == "__main__":
    main()
