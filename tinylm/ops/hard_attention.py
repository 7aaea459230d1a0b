"""Hard attention: each query reads exactly ONE value, and two ways to train through the choice.

The probabilities are those of soft attention, ``p = softmax(scores)`` over the real keys
(tinylm/ops/soft_attention.py), but instead of averaging the values the forward selects one key

    i = argmax_s p_s             (mode="argmax")     or     i ~ Categorical(p)   (mode="sample")
    weights = onehot(i)          context = weights @ values = values[i]

The selection is piecewise constant in the scores (argmax), or a draw whose outcome does not move
when the scores move a little (sampling with fixed randomness), so its true derivative is 0
almost everywhere: the scores would never learn. Two estimators replace it (``estimator``):

* ``"straight_through"``: the backward pretends the forward had used the soft weights:
  ``weights = onehot + p - stop_gradient(p)``, so ``dscores`` is exactly soft attention's
  ``dscores`` (biased, low variance, needs no reward). Works with either mode.
* ``"reinforce"`` (needs mode="sample"): the score-function estimator with a baseline. For a
  reward R per query (higher is better, e.g. minus the per-example loss) and a baseline b,
  ``dscores = -(R - b) d log p_i / d scores = -(R - b) (onehot(i) - p)``, the gradient of the
  surrogate loss ``-(R - b) log p_i``. Its expectation over i is ``-d E[R] / d scores``
  (unbiased for any b that does not depend on i); a good b (a moving average of R, kept by
  tinylm.nn.soft_attention.HardAttention) only lowers the variance.

Either way ``dvalues = onehot^T dcontext`` is the exact gradient: the values do not influence
which key is chosen. A query whose keys are all padding selects nothing (zero weights, zero
context, zero gradients). Samples are drawn on the host from ``tinylm.random.make_rng(rng)`` by
inverting the cumulative distribution, so a seed selects the same keys on every backend.

Shapes: B batch, T query steps, S keys, Dv value width; scores (B, S) or (B, T, S), values
(B, S, Dv), key_padding_mask (B, S) bool (True = padding), reward (B,) or (B, T).

Derivation: derivations/hard_attention.md.  Module: tinylm.nn.soft_attention.HardAttention.
Test: tests/test_hard_attention.py.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

from tinylm._checks import check_choice, check_float, check_shape
from tinylm.backend import array_module
from tinylm.ops.matmul import matmul
from tinylm.ops.soft_attention import (_check_floats, _check_mask, _fill_padding, _split_dout, _steps,
                                       _unsteps)
from tinylm.ops.softmax import SoftmaxCache, softmax_backward, softmax_forward
from tinylm.random import make_rng

__all__ = ["HARD_ATTENTION_MODES", "HARD_ATTENTION_ESTIMATORS", "HardAttentionCache",
           "hard_attention_forward", "hard_attention_backward"]

HARD_ATTENTION_MODES = ("argmax", "sample")
HARD_ATTENTION_ESTIMATORS = ("straight_through", "reinforce")


class HardAttentionCache(NamedTuple):
    softmax: SoftmaxCache   # p = softmax(filled scores) (B,T,S): straight-through backpropagates through it,
                            # REINFORCE needs p itself for d log p_i / d scores = onehot - p
    onehot: object          # (B,T,S) the selection (a zero row for a query without real keys): dV = onehot^T dc
    values: object          # (B,S,Dv) for straight-through's dp = dc V^T
    estimator: str          # which gradient the backward returns
    context_shape: tuple    # the context as returned ((B,Dv) or (B,T,Dv)), to check dcontext
    squeeze: bool           # the scores were (B, S): results drop the T axis


def _select(xp, p, mode: str, rng):
    """Index (B,T) of the chosen key per query: argmax of p, or a draw from p."""
    if mode == "argmax":
        return p.argmax(axis=-1)                              # first maximum on ties
    u = xp.asarray(make_rng(rng, name="rng").random(p.shape[:-1]))   # (B,T) uniform in [0,1), float64, on the host
    cdf = xp.cumsum(p, axis=-1)                               # (B,T,S)
    # The first s with cdf_s > u * total: key s with probability p_s / total. A key with p_s = 0
    # (padding) is never first, since cdf_s = cdf_{s-1}; a row with total 0 gives 0 (then discarded).
    return (cdf > u[..., None] * cdf[..., -1:]).argmax(axis=-1)


def hard_attention_forward(scores, values, key_padding_mask=None, mode="argmax", estimator="straight_through",
                           rng=None):
    """Select one key per query and return its value.

    Shapes: scores (B, S) or (B, T, S), values (B, S, Dv), key_padding_mask (B, S) bool
    (True = padding) or None -> context (B, Dv) or (B, T, Dv), weights (one-hot, or zero for a
    query without real keys) shaped as scores. ``mode``: "argmax" or "sample" (a draw from
    ``softmax(scores)`` with ``tinylm.random.make_rng(rng)``). ``estimator``: the gradient the
    backward will return, "straight_through" or "reinforce" (needs mode="sample").
    Returns ``((context, weights), cache)``.
    """
    xp = array_module(("scores", scores), ("values", values), ("key_padding_mask", key_padding_mask))
    check_choice("mode", mode, HARD_ATTENTION_MODES)
    check_choice("estimator", estimator, HARD_ATTENTION_ESTIMATORS)
    if estimator == "reinforce" and mode != "sample":
        raise ValueError(f"mode: the 'reinforce' estimator needs mode='sample' (its gradient is an expectation "
                         f"over draws from the attention distribution), got mode={mode!r}")
    _check_floats(("scores", scores), ("values", values))
    dims: dict[str, int] = {}
    s3, squeeze = _steps("scores", scores, "S", dims)
    check_shape("values", values, ("B", "S", "Dv"), dims)
    _check_mask(key_padding_mask, dims)
    p, softmax_cache = softmax_forward(_fill_padding(s3, key_padding_mask), axis=-1)    # (B,T,S), 0 at padding
    index = _select(xp, p, mode, rng)                         # (B,T)
    chosen = xp.arange(p.shape[-1]) == index[..., None]       # (B,T,S) bool
    onehot = (chosen & (p > 0)).astype(values.dtype)          # the chosen key has p > 0 unless the row has no real key
    context = matmul(onehot, values)                          # (B,T,S) @ (B,S,Dv) -> (B,T,Dv): the chosen value row
    context, weights = _unsteps(context, squeeze), _unsteps(onehot, squeeze)
    cache = HardAttentionCache(softmax_cache, onehot, values, estimator, tuple(context.shape), squeeze)
    return (context, weights), cache


def _check_reward(reward, baseline, shape: tuple, estimator: str):
    """``reward`` (and ``baseline``) as the backward needs them, or a clear error."""
    if estimator != "reinforce":
        if reward is not None:
            raise ValueError(f"reward: only the 'reinforce' estimator uses a reward; this forward used {estimator!r}")
        return None, None
    if reward is None:
        raise ValueError(f"reward: the 'reinforce' estimator needs a reward of shape {shape} (higher is better)")
    array_module(("reward", reward))
    check_float("reward", reward)
    check_shape("reward", reward, shape)
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        return reward, float(baseline)
    array_module(("baseline", baseline))
    check_float("baseline", baseline)
    check_shape("baseline", baseline, shape)
    return reward, baseline


def hard_attention_backward(dout, cache: HardAttentionCache, reward=None, baseline=0.0):
    """The chosen estimator's gradients of :func:`hard_attention_forward`.

    ``dout`` is ``dcontext``, or ``(dcontext, dweights)`` (either may be None). For
    ``estimator="reinforce"`` pass ``reward`` (B,) or (B, T) (one number per query, higher is
    better) and optionally ``baseline`` (a float or an array shaped as ``reward``); ``dweights`` is
    then ignored (the weights are a constant one-hot: put any loss on them into the reward).
    Returns ``(dscores, dvalues)`` shaped as scores and values.
    """
    softmax_cache, onehot, values, estimator, context_shape, squeeze = cache
    p = softmax_cache.y                                       # (B,T,S)
    dcontext, dweights = _split_dout(dout, context_shape, context_shape[:-1] + p.shape[-1:], values.dtype, squeeze)
    reward, baseline = _check_reward(reward, baseline, context_shape[:-1], estimator)
    dvalues = matmul(onehot.swapaxes(1, 2), dcontext)         # c = onehot V => dV = onehot^T dc  (B,S,T)@(B,T,Dv)
    if estimator == "straight_through":
        dw = matmul(dcontext, values.swapaxes(1, 2))          # as if c = p V => dp = dc V^T   (B,T,Dv)@(B,Dv,S)
        if dweights is not None:
            dw = dw + dweights                                # as if weights = p
        dscores = softmax_backward(dw, softmax_cache)         # p = softmax(e)  =>  de = p (dp - sum(dp p))
    else:
        advantage = reward - baseline                         # (B,) or (B,T): R - b
        if squeeze:
            advantage = advantage[:, None]                    # (B,) -> (B,1)
        advantage = advantage.astype(p.dtype)[..., None]      # (B,T,1)
        dscores = -advantage * (onehot - p)                   # loss -(R - b) log p_i  =>  de = -(R - b)(onehot - p)
    return _unsteps(dscores, squeeze), dvalues
