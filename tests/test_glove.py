"""GloVe: co-occurrence counting, the weighted least-squares loss and its gradient (float64 finite
differences), the AdaGrad kernel against the NumPy reference, training, errors."""
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, strategies as st

from tinylm.gradcheck import check_op
from tinylm.models.glove import (GloVe, adagrad_step, adagrad_step_reference, cooccurrence_matrix, glove_loss_backward,
                                 glove_loss_forward, glove_weight)


def topic_corpus(n_sentences=300, seed=0):
    rng = np.random.default_rng(seed)
    topics = [[f"a{i}" for i in range(8)], [f"b{i}" for i in range(8)]]
    return [list(rng.choice(topics[s % 2], size=rng.integers(4, 12))) for s in range(n_sentences)]


def random_corpus(n_sentences=30, vocab=10, seed=0):
    rng = np.random.default_rng(seed)
    return [[f"w{j}" for j in rng.integers(0, vocab, size=rng.integers(1, 12))] for _ in range(n_sentences)]


# --- counting ------------------------------------------------------------------------------------

@given(st.lists(st.lists(st.integers(0, 5), max_size=12), min_size=1, max_size=8), st.integers(1, 6))
def test_cooccurrence_matches_a_direct_count(sentences, window):
    expected = defaultdict(float)
    for s in sentences:
        for t, w in enumerate(s):
            for u in range(max(0, t - window), min(len(s), t + window + 1)):
                if u != t:
                    expected[w, s[u]] += 1.0 / abs(u - t)          # both sides: symmetric window, 1/d
    words = np.array([w for s in sentences for w in s], np.int64)
    bounds = np.concatenate([[0], np.cumsum([len(s) for s in sentences])])
    X = cooccurrence_matrix(words, bounds, 6, window)
    assert scipy.sparse.issparse(X) and X.shape == (6, 6)
    dense = np.zeros((6, 6))
    for (i, j), v in expected.items():
        dense[i, j] = v
    np.testing.assert_allclose(X.toarray(), dense, rtol=1e-12)
    np.testing.assert_allclose(X.toarray(), X.toarray().T)


def test_glove_weight():
    x = np.array([1.0, 50.0, 100.0, 1000.0])
    np.testing.assert_allclose(glove_weight(x, 100.0, 0.75), [0.01 ** 0.75, 0.5 ** 0.75, 1.0, 1.0])


# --- the loss and its gradient --------------------------------------------------------------------

def _problem(rng, V=5, C=3, B=7):
    rows = rng.integers(0, V, size=B)
    cols = rng.integers(0, V, size=B)
    rows[1], cols[2] = rows[0], cols[0]                            # repeated words accumulate
    return dict(w=rng.standard_normal((V, C)), w_tilde=rng.standard_normal((V, C)), b=rng.standard_normal(V),
                b_tilde=rng.standard_normal(V), rows=rows, cols=cols, counts=rng.uniform(0.2, 20.0, size=B))


def test_loss_gradcheck(rng):
    p = _problem(rng)
    check_op(glove_loss_forward, glove_loss_backward, p, kwargs=dict(x_max=10.0, alpha=0.75),
             wrt=["w", "w_tilde", "b", "b_tilde"], tol=1e-7)


def test_loss_value(rng):
    p = _problem(rng)
    loss, _ = glove_loss_forward(**p, x_max=10.0, alpha=0.75)
    expected = sum(0.5 * min(1.0, (x / 10.0) ** 0.75) * (p["w"][i] @ p["w_tilde"][j] + p["b"][i] + p["b_tilde"][j]
                                                          - np.log(x)) ** 2
                   for i, j, x in zip(p["rows"], p["cols"], p["counts"]))
    assert loss == pytest.approx(expected, rel=1e-12)


# --- the kernel against the reference -------------------------------------------------------------

def test_one_kernel_step_equals_one_reference_step():
    rng = np.random.default_rng(3)
    V, C, lr, x_max, alpha = 6, 5, 0.1, 10.0, 0.75
    params = [rng.standard_normal((V, C)).astype(np.float32), rng.standard_normal((V, C)).astype(np.float32),
              rng.standard_normal(V).astype(np.float32), rng.standard_normal(V).astype(np.float32)]
    sums = [np.ones_like(p) + rng.random(p.shape).astype(np.float32) for p in params]
    before = [p.copy() for p in params]
    ref_params, ref_sums = [p.copy() for p in params], [s.copy() for s in sums]
    i, j, x = 2, 4, 3.5
    loss, cache = glove_loss_forward(*ref_params, np.array([i]), np.array([j]), np.array([x]), x_max, alpha)
    adagrad_step_reference(ref_params, glove_loss_backward(1.0, cache), ref_sums, lr)
    f = float(glove_weight(np.array(x), x_max, alpha))
    got = adagrad_step(*params, *sums, i, j, np.float32(np.log(x)), np.float32(f), np.float32(lr))
    assert got == pytest.approx(float(loss), rel=1e-5)
    for a, b in zip(params + sums, ref_params + ref_sums):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    others = [k for k in range(V) if k not in (i, j)]
    assert not np.allclose(params[0][i], before[0][i]) and not np.allclose(params[1][j], before[1][j])
    np.testing.assert_array_equal(params[0][others], before[0][others])      # only rows i, j move


def test_kernel_epoch_on_one_thread_equals_reference_epoch():
    sents = random_corpus()
    kw = dict(vector_size=6, window=3, x_max=5.0, epochs=3, learning_rate=0.1, min_count=1, workers=1, seed=2)
    fast, ref = GloVe(**kw).fit(sents), GloVe(**kw).fit(sents, engine="numpy")
    np.testing.assert_allclose(fast.loss_history, ref.loss_history, rtol=1e-5)
    for a, b in ((fast.w, ref.w), (fast.w_tilde, ref.w_tilde), (fast.b, ref.b), (fast.b_tilde, ref.b_tilde)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# --- training -------------------------------------------------------------------------------------

def test_training_fits_the_log_counts_and_separates_topics():
    sents = topic_corpus()
    m = GloVe(vector_size=16, window=4, x_max=10.0, epochs=30, learning_rate=0.1, min_count=1, workers=2,
              seed=0).fit(sents)
    assert m.loss_history[-1] < 0.2 * m.loss_history[0]
    np.testing.assert_allclose(m.wv.vectors, m.w + m.w_tilde)
    within = np.mean([m.wv.similarity(f"a{i}", f"a{j}") for i in range(8) for j in range(8) if i != j])
    across = np.mean([m.wv.similarity(f"a{i}", f"b{j}") for i in range(8) for j in range(8)])
    assert within > across + 0.3
    assert m.cooccurrence[m.wv.get_index("a0"), m.wv.get_index("b0")] == 0     # topics never share a sentence


# --- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(window=0), r"window: expected a positive int, got 0"),
    (dict(x_max=0.0), r"x_max: expected a positive number, got 0.0"),
    (dict(learning_rate=-1), r"learning_rate: expected a positive number"),
    (dict(epochs=0), r"epochs: expected a positive int"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GloVe(**kwargs)


@pytest.mark.parametrize("sentences, error, match", [
    ([], ValueError, r"sentences: the corpus is empty"),
    ([["a"], ["b"], ["a"], ["b"]], ValueError, r"no two vocabulary words occur within window=15"),
    (iter([["a", "b"]]), TypeError, r"re-iterable corpus"),
])
def test_bad_corpus(sentences, error, match):
    with pytest.raises(error, match=match):
        GloVe(min_count=1).fit(sentences)


def test_loss_rejects_non_positive_counts(rng):
    p = _problem(rng)
    p["counts"][3] = 0.0
    with pytest.raises(ValueError, match=r"counts: co-occurrence counts must be positive"):
        glove_loss_forward(**p)
