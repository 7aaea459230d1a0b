"""NGramLM (tinylm/models/ngram.py, derivations/ngram.md): hand-computed probabilities, normalisation
over the vocabulary for every smoothing but stupid backoff, an independent brute-force Kneser-Ney,
perplexity, sampling, <unk> handling and bad input. Cross-check against nltk.lm: test_ngram_nltk.py."""
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinylm
from tinylm.models.ngram import DISCOUNT_FALLBACK, NGramLM, modified_kn_discounts

NORMALISED = [dict(smoothing="mle"), dict(smoothing="add_k", k=0.5), dict(smoothing="kneser_ney"),
              dict(smoothing="kneser_ney", discount=0.1), dict(smoothing="kneser_ney", discount=0.75)]
ALL = NORMALISED + [dict(smoothing="stupid_backoff")]
TINY = [["a", "b"], ["a", "c"], ["a", "b"]]      # the corpus the hand computations below use


def zipf_corpus(seed, n_sent=150, words=25):
    """Sentences of 1..9 words drawn from a Zipf-like distribution: enough repeats that every
    count-of-count n1..n4 is positive, enough rare words for <unk> and unseen n-grams."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, words + 1)
    vocab = [f"w{i}" for i in range(words)]
    return [[vocab[i] for i in rng.choice(words, size=rng.integers(1, 10), p=p / p.sum())]
            for _ in range(n_sent)]


def markov_corpus(seed, n_sent, words=30):
    """Sentences from a sparse random bigram chain: a bigram model should beat a unigram one."""
    rng = np.random.default_rng(seed)
    nxt = {w: rng.choice(words, size=3, replace=False) for w in range(-1, words)}   # -1 = start
    out = []
    for _ in range(n_sent):
        w, s = -1, []
        while len(s) < 12 and (not s or rng.random() > 0.15):
            w = int(rng.choice(nxt[w]))
            s.append(f"m{w}")
        out.append(s)
    return out


def contexts(model, corpus):
    """Seen, unseen, out-of-vocabulary, sentence-start, shorter and longer-than-needed contexts."""
    m = model.n - 1
    return [None, [], ["<s>"] * m, corpus[0][:m], corpus[-1][-m:] if m else [], ["never-seen"] * m,
            ["<s>"] + corpus[1][:1], corpus[2][:1], ["zzz"] + corpus[3] + corpus[4], ["<unk>"]]


# ---------------------------------------------------------------------- hand-computed values
def test_mle_by_hand():
    m = NGramLM(2, "mle").fit(TINY)   # bigrams: <s>a x3, ab x2, ac, b</s> x2, c</s>
    assert m.vocab == ["<unk>", "</s>", "a", "b", "c"]
    assert m.prob("b", ["a"]) == pytest.approx(2 / 3) and m.prob("c", ["a"]) == pytest.approx(1 / 3)
    assert m.prob("a", ["<s>"]) == 1.0 and m.prob("</s>", ["b"]) == 1.0
    assert m.prob("a") == pytest.approx(3 / 9)                 # unigram: a3 b2 c1 </s>3
    assert m.prob("b", ["zzz"]) == pytest.approx(2 / 9)        # unseen context: longest seen suffix ()
    assert m.prob("c", ["b"]) == 0.0 and m.logprob("c", ["b"]) == -math.inf


def test_add_k_by_hand():
    m = NGramLM(2, "add_k", k=1.0).fit(TINY)
    assert m.prob("b", ["a"]) == pytest.approx((2 + 1) / (3 + 5))
    assert m.prob("<unk>", ["a"]) == pytest.approx(1 / 8)
    assert m.prob("b", ["zzz"]) == pytest.approx(1 / 5)        # unseen context: uniform


def test_stupid_backoff_by_hand():
    m = NGramLM(2, "stupid_backoff").fit(TINY)
    assert m.prob("b", ["a"]) == pytest.approx(2 / 3)
    assert m.prob("a", ["b"]) == pytest.approx(0.4 * 3 / 9)   # unseen bigram: alpha * unigram
    assert m.prob("<unk>", ["a"]) == 0.0
    assert math.fsum(m.prob(w, ["a"]) for w in m.vocab) > 1   # a score, not a probability


def test_kneser_ney_single_discount_by_hand():
    m = NGramLM(2, discount=0.5).fit(TINY)
    # continuation unigram: N1+(.w) = a1 b1 c1 </s>2 over 5 bigram types, not discounted
    assert m.prob("</s>") == pytest.approx(2 / 5) and m.prob("<unk>") == 0.0
    # gamma(a) = 0.5 * 2 followers / 3
    assert m.prob("b", ["a"]) == pytest.approx((2 - 0.5) / 3 + (1 / 3) * (1 / 5))
    assert m.prob("</s>", ["a"]) == pytest.approx((1 / 3) * (2 / 5))


def test_modified_kneser_ney_by_hand():
    m = NGramLM(2).fit(TINY)      # count-of-counts too small: fallback discounts at both orders
    assert m.discounts == {1: DISCOUNT_FALLBACK, 2: DISCOUNT_FALLBACK}
    # unigram: (N1+(.w) - D) / 5 + gamma_1 / V with gamma_1 = (0.5*3 + 1.0*1) / 5 = 0.5, V = 5
    assert m.prob("a") == pytest.approx(0.5 / 5 + 0.5 / 5)
    assert m.prob("</s>") == pytest.approx((2 - 1.0) / 5 + 0.5 / 5)
    assert m.prob("<unk>") == pytest.approx(0.5 / 5)
    # after "a": c(ab) = 2 takes D2 = 1, c(ac) = 1 takes D1 = 0.5, gamma(a) = 1.5 / 3
    assert m.prob("b", ["a"]) == pytest.approx((2 - 1.0) / 3 + 0.5 * 0.2)
    assert m.prob("<unk>", ["a"]) == pytest.approx(0.5 * 0.1)


def test_modified_discount_formula():
    y = 10 / (10 + 2 * 5)
    expected = (1 - 2 * y * 5 / 10, 2 - 3 * y * 3 / 5, 3 - 4 * y * 2 / 3)
    assert modified_kn_discounts(10, 5, 3, 2) == pytest.approx(expected)
    assert modified_kn_discounts(10, 5, 3, 2)[0] == pytest.approx(y)       # D1 = Y
    assert modified_kn_discounts(10, 5, 3, 0) == DISCOUNT_FALLBACK         # undefined
    assert modified_kn_discounts(1, 1, 100, 1) == DISCOUNT_FALLBACK        # D2 < 0


# ---------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("kwargs", NORMALISED, ids=lambda kw: "-".join(map(str, kw.values())))
@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("min_count", [1, 2])
def test_probabilities_sum_to_one(kwargs, n, min_count):
    corpus = zipf_corpus(n, n_sent=60)
    m = NGramLM(n, min_count=min_count, **kwargs).fit(corpus)
    for h in contexts(m, corpus):
        probs = np.array([m.prob(w, h) for w in m.vocab])
        assert np.all(probs >= 0) and math.fsum(probs) == pytest.approx(1.0, abs=1e-12), h
        np.testing.assert_allclose(m.distribution(h), probs, rtol=1e-12, atol=1e-15)
        if kwargs == dict(smoothing="kneser_ney"):
            assert np.all(probs > 0)                           # modified KN: nothing impossible


def test_stupid_backoff_distribution_matches_prob():
    corpus = zipf_corpus(5, n_sent=60)
    m = NGramLM(3, "stupid_backoff", min_count=2).fit(corpus)
    for h in contexts(m, corpus):
        np.testing.assert_allclose(m.distribution(h), [m.prob(w, h) for w in m.vocab], rtol=1e-12)


@given(corpus=st.lists(st.lists(st.sampled_from("abcdefg"), max_size=6), min_size=1, max_size=12),
       n=st.integers(1, 4), kwargs=st.sampled_from(NORMALISED), min_count=st.integers(1, 3),
       context=st.lists(st.sampled_from(list("abcxyz") + ["<s>", "<unk>"]), max_size=4))
def test_sum_to_one_property(corpus, n, kwargs, min_count, context):
    m = NGramLM(n, min_count=min_count, **kwargs).fit(corpus)
    probs = [m.prob(w, context) for w in m.vocab]
    assert min(probs) >= 0 and math.fsum(probs) == pytest.approx(1.0, abs=1e-12)
    assert m.prob("never-seen", context) == m.prob("<unk>", context)


@given(corpus=st.lists(st.lists(st.sampled_from("abcd"), min_size=1, max_size=6), min_size=1, max_size=10),
       n=st.integers(2, 3), context=st.lists(st.sampled_from(["a", "b", "<s>", "q"]), min_size=2, max_size=2))
def test_stupid_backoff_property(corpus, n, context):
    m = NGramLM(n, "stupid_backoff").fit(corpus)
    grams = Counter(tuple(["<s>"] * (n - 1) + s + ["</s>"])[i - n + 1:i + 1]
                    for s in corpus for i in range(n - 1, len(s) + n))
    h = tuple(context[-(n - 1):])
    seen_h = sum(c for g, c in grams.items() if g[:-1] == h)
    for w in m.vocab:
        s = m.prob(w, context)
        assert 0 <= s <= 1
        if grams[h + (w,)] > 0:                                 # seen n-gram: plain relative frequency
            assert s == pytest.approx(grams[h + (w,)] / seen_h)


# ---------------------------------------------------------------------- against a brute-force KN
def reference_kneser_ney(corpus, n, w, h, vocab):
    """Interpolated modified KN straight from the definitions in derivations/ngram.md."""
    grams = [tuple(["<s>"] * (n - 1) + s + ["</s>"])[i - n + 1:i + 1]
             for s in corpus for i in range(n - 1, len(s) + n)]
    p = 1.0 / len(vocab)
    for k in range(1, n + 1):
        if k == n:
            c = Counter(grams)                                  # raw counts
        else:
            c = Counter(g[1:] for g in {g[n - k - 1:] for g in grams})          # N1+(. g)
        D = modified_kn_discounts(*(sum(v == i for v in c.values()) for i in (1, 2, 3, 4)))
        ctx = tuple(h[len(h) - k + 1:])
        follow = {g[-1]: v for g, v in c.items() if g[:-1] == ctx}
        if not follow:
            continue
        disc = lambda x: ((0.0,) + D)[min(x, 3)]
        gamma = sum(disc(v) for v in follow.values()) / sum(follow.values())
        p = (follow.get(w, 0) - disc(follow.get(w, 0))) / sum(follow.values()) + gamma * p
    return p


@pytest.mark.parametrize("n", [1, 2, 3])
def test_modified_kneser_ney_matches_brute_force(n):
    corpus = zipf_corpus(10 + n, n_sent=120, words=60)
    m = NGramLM(n).fit(corpus)
    assert all(d != DISCOUNT_FALLBACK for d in m.discounts.values())   # the estimate is exercised
    for h in (["<s>"] * (n - 1), corpus[0][:n - 1], ["w0", "w1"][:n - 1], ["nope"] * (n - 1)):
        hh = tuple(w if w in m.vocab or w == "<s>" else "<unk>" for w in h)
        for w in m.vocab:
            assert m.prob(w, h) == pytest.approx(reference_kneser_ney(corpus, n, w, hh, m.vocab),
                                                 rel=1e-12, abs=1e-15)


def test_continuation_counts_francisco():
    """Frequent but only after 'san': Kneser-Ney gives 'francisco' less mass after an unseen word
    than a word of the same frequency seen after many words; MLE does not."""
    corpus = [["san", "francisco"]] * 6 + [[w, "glasses"] for w in "abcdef"]
    kn, mle = NGramLM(2).fit(corpus), NGramLM(2, "mle").fit(corpus)
    assert mle.prob("francisco", ["zzz"]) == mle.prob("glasses", ["zzz"])
    assert kn.prob("francisco", ["zzz"]) < kn.prob("glasses", ["zzz"]) / 3


# ---------------------------------------------------------------------- contexts and vocabulary
def test_context_uses_last_n_minus_1_words_and_unk():
    corpus = zipf_corpus(3) + [["w0", "hapax", "w1"]]
    m = NGramLM(3, min_count=2).fit(corpus)
    rare = "hapax"
    assert rare not in m.vocab and "w1" in m.vocab
    assert m.prob(rare, ["w0", "w1"]) == m.prob("<unk>", ["w0", "w1"]) == m.prob("oov", ["w0", "w1"])
    assert m.prob("w2", ["x", "y", "w0", "w1"]) == m.prob("w2", ["w0", "w1"])
    assert m.prob("w2", ["w0", rare]) == m.prob("w2", ("w0", "<unk>"))
    assert NGramLM(1).fit(corpus).prob("w0", ["w3"]) == NGramLM(1).fit(corpus).prob("w0")


def test_vocab_and_refit():
    m = NGramLM(2, min_count=2).fit([["b", "a", "a", "c"], ["b", "d"]])
    assert m.vocab == ["<unk>", "</s>", "a", "b"]               # by count, then alphabetically
    m.fit(TINY)                                                 # a refit replaces the counts
    assert m.vocab == ["<unk>", "</s>", "a", "b"] and m.prob("b", ["a"]) == NGramLM(
        2, min_count=2).fit(TINY).prob("b", ["a"])
    assert NGramLM(2).fit(tuple(tuple(s) for s in TINY)).prob("b", ["a"]) == NGramLM(2).fit(TINY).prob("b", ["a"])


# ---------------------------------------------------------------------- perplexity
def test_perplexity_is_exp_mean_negative_logprob():
    corpus = zipf_corpus(7)
    train, test = corpus[:120], corpus[120:]
    m = NGramLM(3, min_count=2).fit(train)
    logs = [math.log(m.prob(s_pad[i], s_pad[i - 2:i]))
            for s in test for s_pad in [["<s>", "<s>"] + s + ["</s>"]] for i in range(2, len(s) + 3)]
    assert m.perplexity(test) == pytest.approx(math.exp(-sum(logs) / len(logs)), rel=1e-12)


def test_unigram_mle_perplexity_is_exp_entropy_on_training_text():
    corpus = zipf_corpus(8)
    counts = Counter(w for s in corpus for w in s + ["</s>"])
    total = sum(counts.values())
    entropy = -sum(c / total * math.log(c / total) for c in counts.values())
    assert NGramLM(1, "mle").fit(corpus).perplexity(corpus) == pytest.approx(math.exp(entropy), rel=1e-12)


def test_perplexity_limits():
    corpus = zipf_corpus(9)
    train, test = corpus[:120], corpus[120:]
    uniform = NGramLM(2, "add_k", k=1e12).fit(train)
    assert uniform.perplexity(test) == pytest.approx(len(uniform.vocab), rel=1e-6)
    assert NGramLM(2, "mle").fit(train).perplexity(test) == math.inf     # some unseen bigram
    for kwargs in NORMALISED[1:]:
        assert math.isfinite(NGramLM(3, min_count=2, **kwargs).fit(train).perplexity(test))


def test_bigram_beats_unigram_on_held_out_markov_text():
    corpus = markov_corpus(0, 600)
    train, test = corpus[:540], corpus[540:]
    pp = {n: NGramLM(n).fit(train).perplexity(test) for n in (1, 2)}
    assert pp[2] < 0.5 * pp[1]
    assert pp[2] < NGramLM(2, "add_k").fit(train).perplexity(test)


# ---------------------------------------------------------------------- generation
def test_generate_deterministic_chain():
    m = NGramLM(2, "mle").fit([["a", "b", "c"]])
    assert m.generate(10, seed=0) == ["a", "b", "c"]
    assert m.generate(2, seed=0) == ["a", "b"]
    m3 = NGramLM(3, "mle").fit([["x", "y", "z", "w"], ["y", "q"]])
    assert m3.generate(10, context=["x", "y"], seed=1) == ["z", "w"]


def test_generate_seeded_and_in_vocab():
    m = NGramLM(3, min_count=2).fit(zipf_corpus(4))
    a, b = m.generate(15, seed=123), m.generate(15, seed=123)
    assert a == b and all(w in m.vocab for w in a) and len(a) <= 15
    assert len({tuple(m.generate(15, seed=s)) for s in range(8)}) > 1
    tinylm.manual_seed(5); c = m.generate(15)
    tinylm.manual_seed(5); assert m.generate(15) == c
    assert NGramLM(3, "stupid_backoff").fit(zipf_corpus(4)).generate(5, seed=0) is not None


def test_generate_samples_from_the_distribution():
    m = NGramLM(1, "mle").fit([["a"], ["a"], ["b"]])            # p(a) = 2/6, p(b) = 1/6, p(</s>) = 3/6
    rng = np.random.default_rng(0)
    first = Counter(tuple(m.generate(1, seed=rng)) for _ in range(3000))
    assert first[("a",)] / 3000 == pytest.approx(1 / 3, abs=0.03)
    assert first[("b",)] / 3000 == pytest.approx(1 / 6, abs=0.03)
    assert first[()] / 3000 == pytest.approx(1 / 2, abs=0.03)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make, err, match", [
    (lambda: NGramLM(0), ValueError, r"n: expected a positive int, got 0"),
    (lambda: NGramLM(2.5), ValueError, r"n: expected a positive int, got 2\.5"),
    (lambda: NGramLM(2, "kneser"), ValueError, r"smoothing: expected one of .*'kneser_ney'.*got 'kneser'"),
    (lambda: NGramLM(2, "add_k", k=0), ValueError, r"k: expected a finite number > 0 .* got 0"),
    (lambda: NGramLM(2, "add_k", k=-1.0), ValueError, r"k: expected a finite number > 0"),
    (lambda: NGramLM(2, "mle", discount=0.1), ValueError, r"discount: only used by smoothing='kneser_ney'"),
    (lambda: NGramLM(2, discount=1.5), ValueError, r"discount: expected a probability in \[0, 1\], got 1\.5"),
    (lambda: NGramLM(2, "stupid_backoff", alpha=0), ValueError, r"alpha: expected a number in \(0, 1\]"),
    (lambda: NGramLM(2, min_count=0), ValueError, r"min_count: expected a positive int"),
    (lambda: NGramLM(2).fit([]), ValueError, r"sentences: expected at least one sentence, got an empty corpus"),
    (lambda: NGramLM(2).fit("a b"), TypeError, r"sentences: expected a list of sentences"),
    (lambda: NGramLM(2).fit([["a"], "a b"]), TypeError, r"sentences\[1\]: expected a list of str tokens, got str"),
    (lambda: NGramLM(2).fit([["a", 1]]), TypeError, r"sentences\[0\]\[1\]: expected a str token, got int"),
    (lambda: NGramLM(2).fit([["a", "</s>"]]), ValueError, r"sentences\[0\]: contains the reserved boundary"),
    (lambda: NGramLM(2).prob("a"), RuntimeError, r"call fit\(sentences\) before"),
    (lambda: NGramLM(2).fit(TINY).prob(3), TypeError, r"word: expected a str, got int"),
    (lambda: NGramLM(2).fit(TINY).prob("a", "b c"), TypeError,
     r"context: expected None or a list/tuple of str, got str"),
    (lambda: NGramLM(2).fit(TINY).prob("a", ["b", 2]), TypeError, r"context: .* got a non-str token"),
    (lambda: NGramLM(2).fit(TINY).prob("<s>", ["a"]), ValueError, r"word: '<s>' is only ever context"),
    (lambda: NGramLM(2).fit(TINY).perplexity([]), ValueError, r"sentences: expected at least one sentence"),
    (lambda: NGramLM(2).fit(TINY).generate(0), ValueError, r"max_len: expected a positive int, got 0"),
    (lambda: NGramLM(2).fit(TINY).generate(3, seed="x"), TypeError, r"seed: expected None, a non-negative int"),
])
def test_bad_input(make, err, match):
    with pytest.raises(err, match=match):
        make()
