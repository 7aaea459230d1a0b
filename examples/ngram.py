"""N-gram language models: held-out perplexity for n = 1..5 under each smoothing, then samples.

    python examples/ngram.py                                   # built-in corpus, no download
    python examples/ngram.py --data ../shared/data/tinyshakespeare/input.txt
    python examples/ngram.py --data ... --nltk 200             # + nltk.lm on 200 held-out sentences

Model: tinylm/models/ngram.py.  Formulas: derivations/ngram.md.  Tests: tests/test_ngram.py.

Corpus. Without ``--data`` the text is the English prose of Python's own documentation, the
values of ``pydoc_data.topics.topics`` that every CPython install carries: paragraphs that are
not indented (indented blocks are code and grammar), without titles, tables and ``*emphasis*`` marks,
are split into sentences after ``. ! ?``; sentences of fewer than 3 tokens are dropped.
With ``--data`` every non-empty line of the file is one sentence (a line of verse in
tinyshakespeare). The last 10% of the sentences are held out for perplexity.

Tokenizer. Lower-case, then words are runs of letters and digits with inner apostrophes
(``don't``, ``'tis`` -> ``'``, ``tis``), and every other non-space character is a token of its own.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
import time

from tinylm.data.files import read_text
from tinylm.models.ngram import NGramLM
from tinylm.scripting import ScriptError, nonnegative_int, positive_int, script_main

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*|\S")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# (column title, NGramLM keyword arguments); min_count is added from the command line.
MODELS = [
    ("mle", dict(smoothing="mle")),
    ("add-1", dict(smoothing="add_k", k=1.0)),
    ("stupid*", dict(smoothing="stupid_backoff")),
    ("KN d=0.1", dict(smoothing="kneser_ney", discount=0.1)),
    ("mod. KN", dict(smoothing="kneser_ney")),
]


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def python_docs_sentences() -> list[list[str]]:
    """Sentences of the prose in pydoc_data.topics (topics in sorted order, so the split is stable)."""
    from pydoc_data.topics import topics
    sentences = []
    for key in sorted(topics):
        for paragraph in re.split(r"\n\s*\n", topics[key]):
            if paragraph[:1].isspace():
                continue                                     # indented: code or grammar
            lines = paragraph.split("\n")
            rules = {i for i, line in enumerate(lines) if line and set(line) <= set("*=-^~")}
            prose = " ".join(line for i, line in enumerate(lines)   # drop titles, their
                             if not ({i, i + 1} & rules or line[:1] in "+|"))   # underlines, tables
            for s in SENTENCE_END.split(" ".join(prose.replace("*", "").split())):   # drop *emphasis*
                if len(tokens := tokenize(s)) >= 3:
                    sentences.append(tokens)
    return sentences


def file_sentences(path: str) -> list[list[str]]:
    """One sentence per non-empty line of a text file."""
    lines = read_text(path, "--data", "a UTF-8 text file, one sentence per line").splitlines()
    return [tokenize(line) for line in lines if line.strip()]


def nltk_kneser_ney_perplexity(train, test, n: int, min_count: int, discount: float) -> float:
    """Perplexity of nltk.lm.KneserNeyInterpolated fed exactly the n-grams NGramLM counts.

    NLTK recounts continuation counts by scanning every (k+1)-gram on each query, so only a
    few hundred held-out sentences are affordable.
    """
    try:
        from nltk.lm import KneserNeyInterpolated, Vocabulary
        from nltk.util import ngrams
    except ModuleNotFoundError:
        raise ScriptError("--nltk: needs the nltk package: pip install nltk") from None

    def pad(s):
        return ["<s>"] * (n - 1) + s + ["</s>"]

    vocab = Vocabulary([w for s in train for w in pad(s)], unk_cutoff=min_count, unk_label="<unk>")
    lm = KneserNeyInterpolated(n, discount=discount, vocabulary=vocab)
    lm.fit([[g for k in range(1, n + 1) for g in ngrams(pad(s), k) if g[-1] != "<s>"] for s in train])
    test_ngrams = [g for s in test for g in ngrams(pad(s), n)]
    return lm.perplexity(test_ngrams)


@script_main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="a text file, one sentence per line (default: Python's documentation)")
    ap.add_argument("--max-n", type=positive_int, default=5, help="largest order in the table (default 5)")
    ap.add_argument("--min-count", type=positive_int, default=2, help="rarer training words become <unk> (default 2)")
    ap.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the generated samples")
    ap.add_argument("--nltk", type=nonnegative_int, default=0, metavar="S",
                    help="also score the first S held-out sentences with nltk.lm (needs nltk; slow)")
    args = ap.parse_args(argv)

    sentences = file_sentences(args.data) if args.data else python_docs_sentences()
    cut = int(0.9 * len(sentences))
    train, test = sentences[:cut], sentences[cut:]
    if not train or not test:
        raise ScriptError(f"--data: {len(sentences)} non-empty lines are too few to hold out 10% (expected 2 or more)")
    print(f"corpus: {args.data or 'pydoc_data.topics (Python documentation prose)'}")
    print(f"train {len(train)} sentences / {sum(map(len, train))} tokens, "
          f"held out {len(test)} / {sum(map(len, test))}, min_count={args.min_count}\n")

    t0 = time.perf_counter()
    print("held-out perplexity (lower is better)")
    print(f"{'n':>2} " + "".join(f"{title:>10}" for title, _ in MODELS) + f"{'V':>8}")
    for n in range(1, args.max_n + 1):
        row = []
        for _, kwargs in MODELS:
            model = NGramLM(n, min_count=args.min_count, **kwargs).fit(train)
            row.append(model.perplexity(test))
        print(f"{n:>2} " + "".join(f"{p:>10.2f}" if math.isfinite(p) else f"{'inf':>10}" for p in row)
              + f"{len(model.vocab):>8}")
    print("mle: inf as soon as one held-out n-gram was never seen (probability 0).")
    print("stupid*: stupid-backoff scores do not sum to 1, so this is not a true perplexity.")
    print(f"({time.perf_counter() - t0:.1f} s for {len(MODELS) * args.max_n} fits)\n")

    if args.nltk:
        sub = test[:args.nltk]
        print(f"on the first {len(sub)} held-out sentences: tinylm vs nltk.lm.KneserNeyInterpolated (d=0.1)")
        print(f"{'n':>2} {'mod. KN':>10} {'KN d=0.1':>10} {'nltk':>10}")
        for n in range(2, args.max_n + 1):                    # NLTK's KN needs n >= 2
            ours = [NGramLM(n, min_count=args.min_count, **kw).fit(train).perplexity(sub)
                    for kw in (dict(), dict(discount=0.1))]
            theirs = nltk_kneser_ney_perplexity(train, sub, n, args.min_count, 0.1)
            print(f"{n:>2} {ours[0]:>10.4f} {ours[1]:>10.4f} {theirs:>10.4f}")
            sys.stdout.flush()
        print()

    model = NGramLM(3, min_count=args.min_count).fit(train)
    print(f"samples from {model}:")
    for i in range(3):
        print("  " + " ".join(model.generate(30, seed=args.seed + i)))


if __name__ == "__main__":
    main()
