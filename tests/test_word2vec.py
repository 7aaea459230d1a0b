"""word2vec: tables (vocabulary, subsampling, noise, Huffman tree), the loss and its gradient
(float64 finite differences), the Numba kernel against the NumPy reference, training, errors."""
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.gradcheck import check_op
from tinylm.models import word2vec as w2v
from tinylm.models import word2vec_numba as kernels
from tinylm.models.word2vec import (NOISE_DOMAIN, Word2Vec, build_vocabulary, encode_corpus, huffman_tree,
                                    keep_probabilities, noise_distribution, sgd_step_reference, split_jobs,
                                    word2vec_loss_backward, word2vec_loss_forward)


def topic_corpus(n_sentences=300, seed=0):
    """Two topics that never share a sentence: words of one topic should end up closer."""
    rng = np.random.default_rng(seed)
    topics = [[f"a{i}" for i in range(8)], [f"b{i}" for i in range(8)]]
    return [list(rng.choice(topics[s % 2], size=rng.integers(4, 12))) for s in range(n_sentences)]


def random_corpus(n_sentences=40, vocab=12, seed=0):
    """Zipf-like word frequencies, so subsampling drops the frequent words."""
    rng = np.random.default_rng(seed)
    p = 1 / np.arange(1, vocab + 1)
    return [[f"w{j}" for j in rng.choice(vocab, size=rng.integers(1, 15), p=p / p.sum())]
            for _ in range(n_sentences)]


def sig(x):
    return 1 / (1 + np.exp(-x))


# --- vocabulary and tables -----------------------------------------------------------------

def test_vocabulary_keeps_frequent_words_most_frequent_first():
    sents = [["b", "a", "c", "a"], ["c", "d", "a", "b"], ["e"]]
    vocab = build_vocabulary(sents, min_count=2)
    assert vocab.words == ["a", "b", "c"]              # a:3; b and c tie at 2, b appeared first
    assert vocab.counts.tolist() == [3, 2, 2]
    assert (vocab.n_sentences, vocab.n_tokens) == (3, 9)


def test_keep_probabilities_formula():
    counts = np.array([1000, 100, 10, 1])
    sample = 0.01
    t = sample * counts.sum()
    expected = [min(1.0, (np.sqrt(c / t) + 1) * t / c) for c in counts]
    np.testing.assert_allclose(keep_probabilities(counts, sample), expected)
    assert keep_probabilities(counts, sample)[0] < 1 and keep_probabilities(counts, sample)[-1] == 1
    np.testing.assert_array_equal(keep_probabilities(counts, 0.0), 1.0)


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=50), st.floats(1e-5, 0.5))
def test_keep_probabilities_are_probabilities_that_fall_with_frequency(counts, sample):
    keep = keep_probabilities(np.array(counts), sample)
    assert np.all((keep > 0) & (keep <= 1))
    order = np.argsort(counts, kind="stable")
    assert np.all(np.diff(keep[order]) <= 1e-12)


def test_noise_table_follows_unigram_to_the_power_075():
    counts = np.array([500, 120, 40, 7, 1])
    cum = noise_distribution(counts)
    p = counts ** 0.75 / np.sum(counts ** 0.75)
    np.testing.assert_allclose(np.diff(cum, prepend=0) / NOISE_DOMAIN, p, atol=1e-9)
    # The kernel's sampler is a binary search: word w for r in [cum[w-1], cum[w]).
    rng = np.random.default_rng(0)
    for state in rng.integers(0, 2**48, size=200, dtype=np.uint64):
        r = int(state >> np.uint64(16)) % int(cum[-1])
        assert kernels.sample_noise(cum, state) == np.searchsorted(cum, r, side="right")


def _huffman_cost(counts):
    """Optimal expected code length x total count, by the two-queue method on sorted weights."""
    leaves, merged, cost = sorted(counts), [], 0
    def pop():
        return leaves.pop(0) if leaves and (not merged or leaves[0] <= merged[0]) else merged.pop(0)
    while len(leaves) + len(merged) > 1:
        w = pop() + pop()
        cost += w
        merged.append(w)
    return cost


@given(st.lists(st.integers(1, 1000), min_size=2, max_size=40))
def test_huffman_tree_is_an_optimal_prefix_code(counts):
    counts = np.array(sorted(counts, reverse=True))
    V = len(counts)
    tree = huffman_tree(counts)
    codes = ["".join(map(str, tree.codes[w, :tree.lengths[w]])) for w in range(V)]
    assert not any(a != b and b.startswith(a) for a in codes for b in codes)      # prefix-free
    assert sum(2.0 ** -len(c) for c in codes) == pytest.approx(1.0)               # a full binary tree
    assert int((counts * tree.lengths).sum()) == _huffman_cost(list(counts))      # optimal
    assert np.all(tree.points[:, 0] == V - 2)                                     # every path starts at the root
    assert tree.points.max() <= V - 2


@given(st.lists(st.integers(1, 100), min_size=2, max_size=30), st.integers(0, 2**31))
def test_hierarchical_softmax_is_a_distribution_over_the_vocabulary(counts, seed):
    rng = np.random.default_rng(seed)
    tree = huffman_tree(np.array(counts))
    w_hs, h = rng.standard_normal((len(counts) - 1, 5)), rng.standard_normal(5)
    p = [np.prod(sig((1 - 2.0 * tree.codes[w, :n]) * (w_hs[tree.points[w, :n]] @ h)))
         for w, n in enumerate(tree.lengths)]
    assert sum(p) == pytest.approx(1.0)


def test_encode_corpus_drops_unknown_words_and_splits_long_sentences():
    index = {"a": 0, "b": 1}
    corpus = encode_corpus([["a", "x", "b"], ["x"], ["b"] * 5], index, max_sentence_len=2)
    assert corpus.words.tolist() == [0, 1, 1, 1, 1, 1, 1]
    assert corpus.sent_bounds.tolist() == [0, 2, 4, 6, 7]


@given(st.lists(st.integers(1, 30), min_size=1, max_size=60), st.integers(1, 50))
def test_jobs_cover_every_sentence_once_in_order(lengths, job_words):
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    jobs = split_jobs(bounds, job_words)
    assert jobs[0] == 0 and jobs[-1] == len(lengths) and np.all(np.diff(jobs) > 0)


# --- the loss and its gradient ----------------------------------------------------------------

def _batch(rng, V, C, B, I, J, hs=False):
    w_in = rng.standard_normal((V, C)) * 0.5
    w_out = rng.standard_normal((V - 1 if hs else V, C)) * 0.5
    inputs = rng.integers(0, V, size=(B, I))
    if I > 1:
        inputs[0, 1] = inputs[0, 0]                                      # a repeated context word
    outputs = rng.integers(0, w_out.shape[0], size=(B, J))
    labels = (rng.random((B, J)) < 0.3).astype(np.float64)
    in_mask = np.ones((B, I), bool)
    if I > 1:
        in_mask[1:, -1] = False                                          # padding in CBOW batches
    out_mask = rng.random((B, J)) < 0.8
    return dict(w_in=w_in, w_out=w_out, inputs=inputs, outputs=outputs, labels=labels, in_mask=in_mask,
                out_mask=out_mask)


@pytest.mark.parametrize("I, J, hs", [(1, 6, False), (4, 6, False), (1, 4, True), (5, 3, True)],
                         ids=["sg-ns", "cbow-ns", "sg-hs", "cbow-hs"])
def test_loss_gradcheck(rng, I, J, hs):
    inputs = _batch(rng, V=6, C=4, B=3, I=I, J=J, hs=hs)
    check_op(word2vec_loss_forward, word2vec_loss_backward, inputs, wrt=["w_in", "w_out"], tol=1e-7)


def test_loss_value_is_the_binary_cross_entropy(rng):
    b = _batch(rng, V=6, C=4, B=3, I=3, J=5)
    loss, _ = word2vec_loss_forward(**b)
    expected = 0.0
    for n in range(3):
        rows = b["inputs"][n][b["in_mask"][n]]
        h = b["w_in"][rows].mean(0)
        for j in range(5):
            if b["out_mask"][n, j]:
                x = b["w_out"][b["outputs"][n, j]] @ h
                expected -= np.log(sig(x) if b["labels"][n, j] == 1 else 1 - sig(x))
    assert loss == pytest.approx(expected, rel=1e-12)


def test_saturated_scores_give_finite_loss_and_gradient():
    w_in = np.array([[40.0, 0.0]])
    w_out = np.array([[40.0, 0.0], [-40.0, 0.0]])
    loss, cache = word2vec_loss_forward(w_in, w_out, np.array([[0]]), np.array([[0, 1]]), np.array([[0.0, 1.0]]))
    dw_in, dw_out = word2vec_loss_backward(1.0, cache)
    assert loss == pytest.approx(2 * 1600.0)                             # two confident mistakes: 2 x 40^2
    assert np.all(np.isfinite(dw_in)) and np.all(np.isfinite(dw_out))


# --- the kernel against the reference ---------------------------------------------------------

@pytest.mark.parametrize("n_in, use_ns, use_hs", [(1, True, False), (3, True, False), (1, False, True),
                                                  (4, False, True), (2, True, True)],
                         ids=["sg-ns", "cbow-ns", "sg-hs", "cbow-hs", "cbow-both"])
def test_one_kernel_step_equals_one_reference_step(n_in, use_ns, use_hs):
    rng = np.random.default_rng(7)
    V, C, alpha = 9, 6, 0.3
    w_in = rng.standard_normal((V, C)).astype(np.float32)
    w_ns = rng.standard_normal((V, C)).astype(np.float32)
    w_hs = rng.standard_normal((V - 1, C)).astype(np.float32)
    in_rows = np.array([3, 5, 3, 1][:n_in], np.int32)                    # CBOW: word 3 twice
    ns_rows = np.array([2, 7, 4, 7], np.int32)                           # target 2; noise word 7 twice
    ns_labels = np.array([1, 0, 0, 0], np.float32)
    hs_rows = np.array([7, 4, 0], np.int32)
    hs_labels = np.array([0, 1, 1], np.float32)
    before = w_in.copy()
    ref = [a.copy() for a in (w_in, w_ns, w_hs)]
    layers = ([(ref[1], ns_rows, ns_labels)] if use_ns else []) + ([(ref[2], hs_rows, hs_labels)] if use_hs else [])
    ref_loss = sgd_step_reference(ref[0], in_rows, layers, alpha)
    h, dh, dscore = np.empty(C, np.float32), np.empty(C, np.float32), np.empty(8, np.float32)
    loss = kernels.sgd_step(w_in, in_rows, n_in, w_ns, ns_rows, ns_labels, 4 if use_ns else 0, w_hs, hs_rows,
                            hs_labels, 3 if use_hs else 0, alpha, True, h, dh, dscore)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for got, want in zip((w_in, w_ns, w_hs), ref):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(w_in[in_rows], before[in_rows])               # the step did move the inputs


@pytest.mark.parametrize("sg, hs, negative", [(1, 0, 3), (0, 0, 3), (1, 1, 0), (0, 1, 0), (1, 1, 2)],
                         ids=["sg-ns", "cbow-ns", "sg-hs", "cbow-hs", "sg-both"])
def test_kernel_epoch_on_one_thread_equals_reference_epoch(sg, hs, negative):
    sents = random_corpus()
    kw = dict(vector_size=6, window=3, min_count=1, sg=sg, hs=hs, negative=negative, sample=0.05, epochs=2,
              workers=1, seed=3, compute_loss=True)
    fast, ref = Word2Vec(**kw).build_vocab(sents), Word2Vec(**kw).build_vocab(sents)
    assert fast.keep.min() < 1                                           # subsampling is exercised
    r_fast, r_ref = fast.train(sents), ref.train(sents, engine="numpy")
    assert r_fast.examples == r_ref.examples > 0                         # the same random draws
    np.testing.assert_allclose(r_fast.epoch_losses, r_ref.epoch_losses, rtol=1e-5)
    np.testing.assert_allclose(fast.wv.vectors, ref.wv.vectors, rtol=1e-4, atol=1e-6)
    for out_fast, out_ref in ((fast.syn1neg, ref.syn1neg), (fast.syn1, ref.syn1)):
        if out_fast is not None:
            np.testing.assert_allclose(out_fast, out_ref, rtol=1e-4, atol=1e-6)


# --- what the training loop feeds the steps (recorded from the reference loop) ------------------------

@pytest.fixture
def recorded_steps(monkeypatch):
    """Replace the reference SGD step by a recorder: (inputs, target, alpha) of every example."""
    calls = []

    def record(w_in, inputs, layers, alpha):
        calls.append((list(inputs), int(layers[0][1][0]), alpha))      # rows[0] of the first layer: the target
        return 0.0

    monkeypatch.setattr(w2v, "sgd_step_reference", record)
    return calls


def test_learning_rate_falls_linearly_over_all_epochs(recorded_steps):
    sents = random_corpus(n_sentences=30)
    m = Word2Vec(vector_size=4, window=2, min_count=1, sample=0, alpha=0.05, min_alpha=0.001, epochs=3,
                 workers=1).build_vocab(sents)
    m.train(sents, engine="numpy")
    starts = np.cumsum([0] + [len(s) for s in sents])[:-1]               # every word is in the vocabulary
    N = sum(map(len, sents))
    allowed = np.array([0.05 - (0.05 - 0.001) * (e * N + t) / (3 * N) for e in range(3) for t in starts])
    alphas = [a for _, _, a in recorded_steps]
    assert alphas[0] == 0.05 and all(np.isclose(allowed, a, rtol=0, atol=1e-12).any() for a in alphas)
    assert all(a >= b for a, b in zip(alphas, alphas[1:]))
    assert min(alphas) < 0.001 + 0.049 / 3 * 0.1                         # reaches the last sentences


def test_dynamic_window_weights_near_words_more(recorded_steps):
    window, n = 4, 3000
    sentence = [f"w{i}" for i in range(n)]                              # all distinct: id == position
    m = Word2Vec(vector_size=2, window=window, min_count=1, sample=0, negative=1, epochs=1, workers=1)
    m.build_vocab([sentence]).train([sentence], engine="numpy")
    distances = Counter(abs(inputs[0] - target) for inputs, target, _ in recorded_steps)
    for d in range(1, window + 1):                                      # P(reach >= d) = (window - d + 1) / window
        expected = 2 * n * (window - d + 1) / window
        assert distances[d] == pytest.approx(expected, rel=0.06)
    assert max(distances) == window


def test_subsampling_keeps_words_with_the_formula_probability(recorded_steps):
    rng = np.random.default_rng(0)
    sents = [["the" if rng.random() < 0.5 else f"w{rng.integers(0, 200)}" for _ in range(50)] for _ in range(40)]
    m = Word2Vec(vector_size=2, window=5, min_count=1, sg=0, sample=0.01, negative=1, epochs=1, workers=1)
    m.build_vocab(sents).train(sents, engine="numpy")
    keep = m.keep[m.wv.get_index("the")]
    n_the = sum(s.count("the") for s in sents)
    kept = sum(target == m.wv.get_index("the") for _, target, _ in recorded_steps)   # CBOW: one example per center
    assert 0.1 < keep < 0.5
    assert kept / n_the == pytest.approx(keep, abs=4 * np.sqrt(keep * (1 - keep) / n_the))


# --- training ------------------------------------------------------------------------------------

@pytest.mark.parametrize("sg, hs, negative", [(1, 0, 5), (0, 0, 5), (1, 1, 0), (0, 1, 0)],
                         ids=["sg-ns", "cbow-ns", "sg-hs", "cbow-hs"])
def test_training_separates_topics_and_lowers_the_loss(sg, hs, negative):
    sents = topic_corpus()
    m = Word2Vec(sents, vector_size=16, window=3, min_count=1, sg=sg, hs=hs, negative=negative, sample=0,
                 alpha=0.05, epochs=8, workers=2, seed=0, compute_loss=True)
    assert m.loss_history[-1] < m.loss_history[0]
    within = np.mean([m.wv.similarity(f"a{i}", f"a{j}") for i in range(8) for j in range(8) if i != j])
    across = np.mean([m.wv.similarity(f"a{i}", f"b{j}") for i in range(8) for j in range(8)])
    assert within > across + 0.3
    assert m.wv.most_similar("a0", topn=3)[0][0].startswith("a")


def test_one_worker_is_repeatable_and_the_seed_matters():
    sents = random_corpus()
    kw = dict(vector_size=8, window=2, min_count=1, epochs=2, workers=1)
    a, b, c = Word2Vec(sents, seed=5, **kw), Word2Vec(sents, seed=5, **kw), Word2Vec(sents, seed=6, **kw)
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)
    assert not np.allclose(a.wv.vectors, c.wv.vectors)


def test_gensim_names_shapes_and_dtypes():
    sents = random_corpus()
    m = Word2Vec(sents, vector_size=8, min_count=2, hs=1, negative=2, epochs=1)
    V = len(m.wv)
    assert m.wv.vectors.shape == (V, 8) and m.wv.vectors.dtype == np.float32
    assert m.syn1neg.shape == (V, 8) and m.syn1.shape == (V - 1, 8)
    assert Word2Vec(sents, vector_size=8, min_count=2, epochs=1).syn1 is None
    assert all(Counter(w for s in sents for w in s)[w] >= 2 for w in m.wv.index_to_key)


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(window=0), r"window: expected a positive int, got 0"),
    (dict(vector_size=-3), r"vector_size: expected a positive int, got -3"),
    (dict(negative=0, hs=0), r"no output layer"),
    (dict(negative=-1), r"negative: expected a non-negative int"),
    (dict(sg=2), r"sg: expected one of \(0, 1\), got 2"),
    (dict(sample=1.5), r"sample: expected a probability"),
    (dict(alpha=0), r"alpha: expected a positive number, got 0"),
    (dict(workers=0), r"workers: expected a positive int"),
    (dict(ns_exponent="0.75"), r"ns_exponent: expected a finite number .* got '0.75'"),
    (dict(ns_exponent=float("nan")), r"ns_exponent: expected a finite number .* got nan"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Word2Vec(**kwargs)


def test_compute_loss_must_be_a_bool():
    with pytest.raises(TypeError, match=r"compute_loss: expected a bool, got 'no'"):
        Word2Vec(compute_loss="no")
    assert Word2Vec(ns_exponent=-0.5, compute_loss=True).compute_loss is True   # gensim allows a negative exponent


@pytest.mark.parametrize("sentences, error, match", [
    ([], ValueError, r"sentences: the corpus is empty"),
    ([[], []], ValueError, r"sentences: the corpus is empty \(2 sentences"),
    ([["a", "b"]], ValueError, r"min_count: no word occurs 5 times or more \(the most frequent, 'a', occurs 1"),
    (["the cat sat"], TypeError, r"each sentence must be a list of tokens, got the str"),
    ((s for s in [["a"]]), TypeError, r"re-iterable corpus"),
    ([[1, 2, 3]] * 5, TypeError, r"tokens must be str, got int"),
    ("abc", TypeError, r"expected a list of token lists, got str"),
])
def test_bad_corpus(sentences, error, match):
    with pytest.raises(error, match=match):
        Word2Vec(sentences)


def test_training_on_text_without_known_words_is_an_error():
    m = Word2Vec(min_count=1).build_vocab([["a", "b"]])
    with pytest.raises(ValueError, match="no token of the corpus is in the vocabulary"):
        m.train([["c", "d"]])


def test_unknown_word_in_a_query():
    m = Word2Vec(random_corpus(), vector_size=4, min_count=1, epochs=1)
    with pytest.raises(KeyError, match="word 'zebra' is not in the vocabulary"):
        m.wv.most_similar("zebra")


@pytest.mark.parametrize("change, error, match", [
    (dict(inputs=np.array([[0], [9]])), ValueError, r"inputs: word ids must lie in \[0, 6\), got 9"),
    (dict(outputs=np.zeros((2, 3), np.int64)), ValueError, r"labels: expected shape \(B, J\) with B=2, J=3"),
    (dict(in_mask=np.zeros((2, 1), bool)), ValueError, r"in_mask: every example needs at least one input"),
    (dict(w_out=np.zeros((6, 4), np.float32)), TypeError, r"w_out: expected the dtype of w_in \(float64\)"),
    (dict(labels=np.ones((2, 2), np.int64)), TypeError, r"labels: expected a floating-point array"),
])
def test_loss_bad_input(rng, change, error, match):
    args = dict(w_in=rng.standard_normal((6, 4)), w_out=rng.standard_normal((6, 4)), inputs=np.array([[0], [1]]),
                outputs=np.array([[1, 2], [3, 4]]), labels=np.array([[1.0, 0.0], [1.0, 0.0]]))
    args.update(change)
    with pytest.raises(error, match=match):
        word2vec_loss_forward(**args)
