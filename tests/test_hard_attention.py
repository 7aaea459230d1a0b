"""Hard attention (tinylm/ops/hard_attention.py, tinylm.nn.soft_attention.HardAttention): the
selection, each estimator against its own definition, the moving-average baseline, and bad input.
Derivation: derivations/hard_attention.md."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.gradcheck import check_op, numerical_grad
from tinylm.nn.soft_attention import AdditiveAttention, HardAttention, LuongAttention
from tinylm.ops.hard_attention import hard_attention_backward, hard_attention_forward
from tinylm.ops.soft_attention import soft_attention_backward, soft_attention_forward

B, T, S, DV = 2, 3, 4, 2
MASK = np.array([[False, True, False, False], [True, True, True, True]])   # sequence 1: no real key


def _softmax_masked(scores, mask):
    """Independent reference: p over the real keys (zeros for a row without any)."""
    e = np.where(mask[:, None, :], -np.inf, scores)
    p = np.zeros_like(scores)
    for idx in np.ndindex(scores.shape[:-1]):
        row = e[idx]
        if np.isfinite(row).any():
            x = np.exp(row - row[np.isfinite(row)].max())
            p[idx] = x / x.sum()
    return p


# --- forward: what is selected ---------------------------------------------------------------------

def test_argmax_selects_the_best_real_key(rng):
    scores, values = rng.standard_normal((B, T, S)), rng.standard_normal((B, S, DV))
    scores[0, :, 1] = 10.0                                       # the best score sits on a padding key
    (context, weights), _ = hard_attention_forward(scores, values, MASK, mode="argmax")
    best = np.where(MASK[:, None, :], -np.inf, scores).argmax(-1)
    for t in range(T):
        assert weights[0, t].sum() == 1 and weights[0, t, best[0, t]] == 1
        np.testing.assert_array_equal(context[0, t], values[0, best[0, t]])
    assert not weights[1].any() and not context[1].any()        # no real key: nothing selected


def test_sample_frequencies_follow_the_attention_distribution(rng):
    n = 40_000
    scores = np.broadcast_to(np.array([0.5, 2.0, -1.0, 1.0]), (n, S)).copy()
    mask = np.broadcast_to(np.array([False, False, False, True]), (n, S)).copy()
    values = np.broadcast_to(np.eye(S)[None], (n, S, S)).copy()
    (context, weights), _ = hard_attention_forward(scores, values, mask, mode="sample", rng=7)
    p = _softmax_masked(scores[:1, None], mask[:1])[0, 0]
    freq = weights.mean(axis=0)
    assert freq[3] == 0                                          # a padding key is never drawn
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-12)
    np.testing.assert_array_equal(context, weights)              # values = identity: context = one-hot


def test_sampling_is_seeded(rng):
    scores, values = rng.standard_normal((8, 5, S)), rng.standard_normal((8, S, DV))
    w1 = hard_attention_forward(scores, values, mode="sample", rng=1)[0][1]
    w2 = hard_attention_forward(scores, values, mode="sample", rng=1)[0][1]
    w3 = hard_attention_forward(scores, values, mode="sample", rng=2)[0][1]
    np.testing.assert_array_equal(w1, w2)
    assert not np.array_equal(w1, w3)


@given(b=st.integers(1, 3), t=st.integers(1, 3), s=st.integers(1, 5), steps=st.booleans(),
       mode=st.sampled_from(["argmax", "sample"]), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_selection_properties(b, t, s, steps, mode, dtype, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((b, s)) < 0.4
    scores = rng.standard_normal((b, t, s) if steps else (b, s)).astype(dtype)
    values = rng.standard_normal((b, s, 3)).astype(dtype)
    (context, weights), cache = hard_attention_forward(scores, values, mask, mode=mode, rng=seed)
    assert weights.shape == scores.shape and context.shape == scores.shape[:-1] + (3,)
    assert weights.dtype == dtype and context.dtype == dtype
    w3 = weights if steps else weights[:, None]
    assert set(np.unique(w3)) <= {0, 1}
    has_key = ~mask.all(axis=1)
    np.testing.assert_array_equal(w3.sum(-1), np.broadcast_to(has_key[:, None], w3.shape[:-1]).astype(dtype))
    assert not w3[np.broadcast_to(mask[:, None, :], w3.shape)].any()   # padding is never selected
    np.testing.assert_array_equal(context, np.einsum("b...s,bsd->b...d", weights, values))
    for estimator in ["straight_through", "reinforce"]:
        if estimator == "reinforce" and mode == "argmax":
            continue
        _, cache = hard_attention_forward(scores, values, mask, mode=mode, estimator=estimator, rng=seed)
        reward = np.ones(scores.shape[:-1], dtype) if estimator == "reinforce" else None
        dscores, dvalues = hard_attention_backward(np.ones_like(context), cache, reward=reward)
        assert dscores.shape == scores.shape and dvalues.shape == values.shape
        assert dscores.dtype == dtype and np.isfinite(dscores).all()
        d3 = dscores if steps else dscores[:, None]
        assert not d3[np.broadcast_to(mask[:, None, :], d3.shape)].any()   # padding gets no gradient


# --- gradients ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["argmax", "sample"])
def test_values_gradient_is_exact(rng, mode):
    # The values do not influence the choice, so dvalues = onehot^T dcontext is the true gradient.
    inputs = {"scores": rng.standard_normal((B, T, S)), "values": rng.standard_normal((B, S, DV))}
    check_op(hard_attention_forward, hard_attention_backward, inputs, wrt=[None, "values"],
             kwargs={"key_padding_mask": MASK, "mode": mode, "rng": 3}, tol=1e-7)


@pytest.mark.parametrize("mode", ["argmax", "sample"])
def test_selection_has_zero_true_gradient(rng, mode):
    scores, values = rng.standard_normal((B, T, S)), rng.standard_normal((B, S, DV))
    g = rng.standard_normal((B, T, DV))
    f = lambda: float(np.sum(hard_attention_forward(scores, values, MASK, mode=mode, rng=3)[0][0] * g))
    assert not numerical_grad(f, scores).any()                   # piecewise constant: why estimators exist


@pytest.mark.parametrize("steps", [True, False], ids=["BTS", "BS"])
@pytest.mark.parametrize("mode", ["argmax", "sample"])
def test_straight_through_scores_gradient_is_the_soft_one(rng, mode, steps):
    shape = (B, T, S) if steps else (B, S)
    scores, values = rng.standard_normal(shape), rng.standard_normal((B, S, DV))
    (context, weights), cache = hard_attention_forward(scores, values, MASK, mode=mode, rng=0)
    (_, soft_weights), soft_cache = soft_attention_forward(scores, values, MASK)
    dout = (rng.standard_normal(context.shape), rng.standard_normal(weights.shape))
    dscores, dvalues = hard_attention_backward(dout, cache)
    soft_dscores, _ = soft_attention_backward(dout, soft_cache)
    np.testing.assert_allclose(dscores, soft_dscores, rtol=1e-12, atol=1e-15)
    onehot, dcontext = weights.reshape(B, -1, S), dout[0].reshape(B, -1, DV)
    np.testing.assert_allclose(dvalues, np.einsum("bts,btd->bsd", onehot, dcontext), rtol=1e-12)


def _expected_reward_example():
    """One query, S = 4 keys (the last is padding), a fixed reward per choice."""
    scores = np.array([0.3, -0.5, 1.0, 2.0])
    mask = np.array([False, False, False, True])
    values = np.eye(S)
    reward_of = np.array([1.0, -2.0, 0.5, 100.0])               # the padding key's reward must never count
    return scores, mask, values, reward_of


def _reinforce_samples(n, baseline, seed, offset=0.0):
    scores, mask, values, reward_of = _expected_reward_example()
    reward_of = reward_of + offset
    (_, weights), cache = hard_attention_forward(np.tile(scores, (n, 1)), np.tile(values, (n, 1, 1)),
                                                 np.tile(mask, (n, 1)), mode="sample", estimator="reinforce",
                                                 rng=seed)
    reward = weights @ reward_of                                 # (n,): the reward of each draw
    dscores, _ = hard_attention_backward(np.zeros((n, S)), cache, reward=reward, baseline=baseline)
    return dscores


def _true_gradient():
    """-dJ/dscores for J = sum_i p_i R_i, by central differences on the exact expectation."""
    scores, mask, _, reward_of = _expected_reward_example()
    x = scores.copy()
    J = lambda: float(_softmax_masked(x[None, None], mask[None])[0, 0] @ reward_of)
    return -numerical_grad(J, x)


@pytest.mark.parametrize("baseline", [0.0, 0.4, -3.0])
def test_reinforce_is_unbiased_for_any_baseline(baseline):
    n = 100_000
    samples = _reinforce_samples(n, baseline, seed=11)
    true = _true_gradient()
    stderr = samples.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(samples.mean(axis=0) - true) < 5 * stderr + 1e-12)
    assert samples[:, 3].max() == 0 == samples[:, 3].min()      # the padding key: exactly zero
    assert np.abs(true).max() > 0.1                              # the check is not vacuous


def test_good_baseline_reduces_variance():
    # Rewards far from 0 (here around 10, like a score or an accuracy) make the plain estimator
    # noisy; subtracting their mean leaves the expectation alone and removes most of the noise.
    scores, mask, _, reward_of = _expected_reward_example()
    p = _softmax_masked(scores[None, None], mask[None])[0, 0]
    mean_reward = float(p @ (reward_of + 10.0))
    plain = _reinforce_samples(50_000, 0.0, seed=5, offset=10.0)
    centred = _reinforce_samples(50_000, mean_reward, seed=5, offset=10.0)
    assert centred.var(axis=0).sum() < 0.1 * plain.var(axis=0).sum()
    np.testing.assert_allclose(centred.mean(axis=0), _true_gradient(), atol=0.05)


def test_reinforce_fully_masked_query_gets_zero_gradient(rng):
    scores, values = rng.standard_normal((B, T, S)), rng.standard_normal((B, S, DV))
    _, cache = hard_attention_forward(scores, values, MASK, mode="sample", estimator="reinforce", rng=0)
    dscores, dvalues = hard_attention_backward(np.ones((B, T, DV)), cache, reward=np.ones((B, T)), baseline=0.2)
    assert not dscores[1].any() and not dvalues[1].any()


@pytest.mark.parametrize("steps", [True, False], ids=["BTS", "BS"])
@pytest.mark.parametrize("baseline_kind", ["float", "array"])
def test_reinforce_gradient_is_its_definition(rng, steps, baseline_kind):
    """dscores = -(R - b)(onehot - p) per query, with a float baseline or one baseline per query
    (an array shaped as the reward), p the masked softmax; dvalues = onehot^T dcontext."""
    shape = (B, T) if steps else (B,)
    scores = rng.standard_normal((*shape, S))
    values = rng.standard_normal((B, S, DV))
    (context, onehot), cache = hard_attention_forward(scores, values, MASK, mode="sample", estimator="reinforce",
                                                     rng=3)
    reward = rng.uniform(1, 2, shape)                         # R - b >= 1: the check is not vacuous
    baseline = -0.5 if baseline_kind == "float" else rng.uniform(-1, 0, shape)
    dcontext = rng.standard_normal(context.shape)
    dscores, dvalues = hard_attention_backward(dcontext, cache, reward=reward, baseline=baseline)
    p = _softmax_masked(scores if steps else scores[:, None], MASK)
    p = p if steps else p[:, 0]
    want = -np.asarray(reward - baseline)[..., None] * (onehot - p)
    np.testing.assert_allclose(dscores, want, rtol=1e-12, atol=1e-15)
    assert np.abs(want[0]).max() > 0.1 and not want[1].any()   # sequence 1 has no real key
    oh = onehot if steps else onehot[:, None]
    dc = dcontext if steps else dcontext[:, None]
    np.testing.assert_allclose(dvalues, oh.swapaxes(1, 2) @ dc, rtol=1e-12, atol=1e-15)


# --- module -----------------------------------------------------------------------------------------

def _qkv(rng, steps=True):
    q = rng.standard_normal((B, T, 3) if steps else (B, 3))
    return q, rng.standard_normal((B, S, 5)), rng.standard_normal((B, S, DV))


@pytest.mark.parametrize("scorer", ["additive", "general"])
def test_module_straight_through_equals_soft_module_backward(rng, scorer):
    soft = (AdditiveAttention(3, 5, 4, rng=0) if scorer == "additive" else LuongAttention(3, 5, "general", rng=0))
    soft = soft.double()
    hard = HardAttention(soft, mode="argmax", estimator="straight_through")
    q, k, V = _qkv(rng)
    context, weights = hard(q, k, V, key_padding_mask=MASK)
    dout = (rng.standard_normal(context.shape), rng.standard_normal(weights.shape))
    dq, dk, dv = hard.backward(dout)
    hard_grads = {n: p.grad.copy() for n, p in soft.named_parameters()}
    soft.zero_grad()
    soft(q, k, V, key_padding_mask=MASK)
    sq, sk, _ = soft.backward(dout)
    np.testing.assert_allclose(dq, sq, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dk, sk, rtol=1e-12, atol=1e-15)
    for n, p in soft.named_parameters():
        np.testing.assert_allclose(hard_grads[n], p.grad, rtol=1e-12, atol=1e-15, err_msg=n)
    assert [n for n, _ in hard.named_parameters()] == [f"scorer.{n}" for n, _ in soft.named_parameters()]
    # ... while dvalues is the exact gradient of the hard forward:
    f = lambda: float(np.sum(hard(q, k, V, key_padding_mask=MASK)[0] * dout[0]))
    np.testing.assert_allclose(dv, numerical_grad(f, V), rtol=1e-7, atol=1e-10)


def test_module_reinforce_uses_then_updates_the_moving_average_baseline(rng):
    scorer = LuongAttention(5, 5, "dot").double()
    hard = HardAttention(scorer, mode="sample", estimator="reinforce", baseline_momentum=0.75, rng=4)
    q, k, V = rng.standard_normal((B, T, 5)), rng.standard_normal((B, S, 5)), rng.standard_normal((B, S, DV))
    rewards = [rng.standard_normal((B, T)) for _ in range(3)]
    expected_baseline = [0.0, rewards[0].mean(), 0.75 * rewards[0].mean() + 0.25 * rewards[1].mean()]
    assert hard.baseline is None
    for r, b in zip(rewards, expected_baseline):
        context, _ = hard(q, k, V)
        dq, dk, dv = hard.backward(context, reward=r)
        # The same gradient from the op with the baseline the module should have used:
        dscores, dvalues = hard_attention_backward(context, hard._cache, reward=r, baseline=b)
        np.testing.assert_allclose(dq, dscores @ k, rtol=1e-12)   # dot score: dquery = dscores keys
        np.testing.assert_allclose(dv, dvalues, rtol=1e-12)
    np.testing.assert_allclose(hard.baseline, 0.75 * expected_baseline[2] + 0.25 * rewards[2].mean())


@pytest.mark.parametrize("estimator", ["straight_through", "reinforce"])
def test_module_learns_to_attend_to_the_rewarded_key(estimator):
    # Scores q^T W k; reward 1 when the chosen key is key 2. A few SGD steps must raise p(key 2).
    rng = np.random.default_rng(0)
    scorer = LuongAttention(3, 3, "general", rng=0).double()
    hard = HardAttention(scorer, mode="sample", estimator=estimator, rng=1)
    q, k = rng.standard_normal((64, 3)), np.broadcast_to(np.eye(3)[None], (64, 3, 3)).copy()
    values = np.broadcast_to(np.eye(3)[None], (64, 3, 3)).copy()   # context = one-hot of the choice
    target = np.array([0.0, 0.0, 1.0])

    def p_target():
        return soft_attention_forward(scorer.scores(q, k), values)[0][1][:, 2].mean()

    before = p_target()
    for _ in range(30):
        scorer.zero_grad()
        context, _ = hard(q, k, values)
        if estimator == "reinforce":
            hard.backward(np.zeros_like(context), reward=context @ target)
        else:
            hard.backward(-np.broadcast_to(target, context.shape))        # loss -context . target
        scorer.weight.data -= 0.5 * scorer.weight.grad
    assert p_target() > before + 0.2


# --- bad input ----------------------------------------------------------------------------------

def test_bad_arguments(rng):
    scores, values = rng.standard_normal((B, T, S)), rng.standard_normal((B, S, DV))
    with pytest.raises(ValueError, match=r"mode: the 'reinforce' estimator needs mode='sample'.*got mode='argmax'"):
        hard_attention_forward(scores, values, estimator="reinforce")
    with pytest.raises(ValueError, match=r"mode: expected one of \('argmax', 'sample'\), got 'gumbel'"):
        hard_attention_forward(scores, values, mode="gumbel")
    with pytest.raises(ValueError, match=r"estimator: expected one of \('straight_through', 'reinforce'\), got 'st'"):
        hard_attention_forward(scores, values, estimator="st")
    with pytest.raises(ValueError, match=r"values: expected shape \(B, S, Dv\) with B=2, S=4"):
        hard_attention_forward(scores, values[:, 1:])
    with pytest.raises(TypeError, match=r"key_padding_mask: expected a bool array"):
        hard_attention_forward(scores, values, MASK.astype(float))
    (context, _), st_cache = hard_attention_forward(scores, values)
    with pytest.raises(ValueError, match=r"reward: only the 'reinforce' estimator uses a reward; "
                                         r"this forward used 'straight_through'"):
        hard_attention_backward(context, st_cache, reward=np.ones((B, T)))
    _, rf_cache = hard_attention_forward(scores, values, mode="sample", estimator="reinforce")
    with pytest.raises(ValueError, match=r"reward: the 'reinforce' estimator needs a reward of shape \(2, 3\)"):
        hard_attention_backward(context, rf_cache)
    with pytest.raises(ValueError, match=r"reward: expected shape \(2, 3\), got shape \(2,\)"):
        hard_attention_backward(context, rf_cache, reward=np.ones(B))
    with pytest.raises(TypeError, match=r"reward: expected a floating-point array"):
        hard_attention_backward(context, rf_cache, reward=np.ones((B, T), int))
    with pytest.raises(ValueError, match=r"baseline: expected shape \(2, 3\)"):
        hard_attention_backward(context, rf_cache, reward=np.ones((B, T)), baseline=np.ones(3))


def test_bad_module_arguments():
    scorer = LuongAttention(3, 3)
    with pytest.raises(TypeError, match=r"scorer: expected a soft attention module .* got Linear"):
        from tinylm.nn.linear import Linear
        HardAttention(Linear(3, 3))
    with pytest.raises(ValueError, match=r"mode: the 'reinforce' estimator needs mode='sample', got mode='argmax'"):
        HardAttention(scorer, estimator="reinforce")
    with pytest.raises(ValueError, match=r"baseline_momentum: expected a probability in \[0, 1\), got 1.0"):
        HardAttention(scorer, mode="sample", estimator="reinforce", baseline_momentum=1.0)
    with pytest.raises(RuntimeError, match="before forward"):
        HardAttention(scorer).backward(np.zeros((1, 3), np.float32))
