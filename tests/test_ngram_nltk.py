"""NGramLM against nltk.lm (optional: skipped without nltk): same n-grams, same vocabulary, same numbers.

NLTK is fed the n-grams NGramLM counts, built here with nltk.util.ngrams: each sentence padded with
n-1 "<s>" and one "</s>", every n-gram of order 1..n that ends on a predicted token (not "<s>").
Its KneserNeyInterpolated is single-discount KN, which NGramLM reproduces with ``discount=d``.
"""
import math
import re

import pytest

from tinylm.models.ngram import NGramLM

nltk_lm = pytest.importorskip("nltk.lm")
from nltk.util import ngrams  # noqa: E402


def corpus():
    """Sentences of a few pages of Python's documentation (ships with CPython)."""
    from pydoc_data.topics import topics
    text = " ".join(topics[k] for k in ("if", "while", "for", "try", "with", "class"))
    sents = [re.findall(r"[a-z]+|[^\sa-z]", s.lower()) for s in re.split(r"(?<=[.:])\s+", text)]
    return [s for s in sents if len(s) >= 2]


def nltk_model(cls, sentences, n, min_count, **kwargs):
    pad = lambda s: ["<s>"] * (n - 1) + s + ["</s>"]
    vocab = nltk_lm.Vocabulary([w for s in sentences for w in pad(s)], unk_cutoff=min_count, unk_label="<unk>")
    lm = cls(order=n, vocabulary=vocab, **kwargs)
    lm.fit([[g for k in range(1, n + 1) for g in ngrams(pad(s), k) if g[-1] != "<s>"] for s in sentences])
    return lm


def check_contexts(n):
    return [None, ["<s>"] * (n - 1), ["the"], ["if", "the"], ["the", "else", ":"], ["zzz"] * 3,
            ["<s>", "zzz"], ["is", "qqq", "the"]]


@pytest.fixture(scope="module")
def data():
    sents = corpus()
    cut = int(0.9 * len(sents))
    return sents[:cut], sents[cut:]


@pytest.mark.parametrize("n, min_count, discount", [(2, 1, 0.1), (3, 2, 0.1), (4, 1, 0.75), (3, 1, 0.5)])
def test_kneser_ney_matches_nltk(data, n, min_count, discount):
    train, _ = data
    ours = NGramLM(n, discount=discount, min_count=min_count).fit(train)
    theirs = nltk_model(nltk_lm.KneserNeyInterpolated, train, n, min_count, discount=discount)
    assert len(ours.vocab) > 100
    for h in check_contexts(n):
        for w in ours.vocab:
            assert abs(ours.prob(w, h) - theirs.score(w, h)) < 1e-12, (w, h)


def test_kneser_ney_perplexity_matches_nltk(data):
    train, test = data
    n = 3
    ours = NGramLM(n, discount=0.1, min_count=2).fit(train)
    theirs = nltk_model(nltk_lm.KneserNeyInterpolated, train, n, 2, discount=0.1)
    held_out = [g for s in test for g in ngrams(["<s>"] * (n - 1) + s + ["</s>"], n)]
    assert ours.perplexity(test) == pytest.approx(theirs.perplexity(held_out), rel=1e-9)
    # modified KN, as a sanity check that it is the better estimate on held-out text
    assert NGramLM(n, min_count=2).fit(train).perplexity(test) < ours.perplexity(test)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_mle_and_stupid_backoff_match_nltk(data, n):
    train, _ = data
    mle, nltk_mle = NGramLM(n, "mle").fit(train), nltk_model(nltk_lm.MLE, train, n, 1)
    sb, nltk_sb = NGramLM(n, "stupid_backoff").fit(train), nltk_model(nltk_lm.StupidBackoff, train, n, 1, alpha=0.4)
    seen = [["<s>"] * (n - 1), train[0][:n - 1], train[5][2:n + 1], train[-1][-n:-1]]
    for h in seen:                                          # NLTK's MLE does not back off unseen ones
        for w in mle.vocab:
            assert abs(mle.prob(w, h) - nltk_mle.score(w, h)) < 1e-12, (w, h)
            assert math.isclose(sb.prob(w, h), nltk_sb.score(w, h), rel_tol=1e-12, abs_tol=1e-15), (w, h)
