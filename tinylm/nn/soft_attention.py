"""Attention modules for encoder-decoder models: soft (Bahdanau, Luong) and hard attention.

Every module is called as ``context, weights = attn(query, keys, values, key_padding_mask=None)``
with query (B, Dq) (one decoder step) or (B, T, Dq) (all steps, e.g. under teacher forcing),
keys (B, S, Dk), values (B, S, Dv), key_padding_mask (B, S) bool (True = padding key) or None;
context is (B, Dv) or (B, T, Dv), weights (B, S) or (B, T, S). ``attn.backward(dout)`` takes
``dcontext`` or ``(dcontext, dweights)`` and returns ``(dquery, dkeys, dvalues)``.

* :class:`AdditiveAttention`  Bahdanau: ``score = v . tanh(W_q q + W_k k)``
* :class:`LuongAttention`     Luong: ``score = q . k`` ("dot") or ``q^T W k`` ("general")
* :class:`HardAttention`      one key per query, chosen by the score function of a soft module

Ops: tinylm/ops/soft_attention.py, tinylm/ops/hard_attention.py. Derivations:
derivations/soft_attention.md, derivations/hard_attention.md. Tests: tests/test_soft_attention.py,
tests/test_hard_attention.py.
"""
from __future__ import annotations

import numpy as np

from tinylm._checks import check_choice, check_positive_int, check_probability
from tinylm.backend import to_numpy
from tinylm.nn import init
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module, Parameter
from tinylm.ops.hard_attention import (HARD_ATTENTION_ESTIMATORS, HARD_ATTENTION_MODES, hard_attention_backward,
                                       hard_attention_forward)
from tinylm.ops.soft_attention import (additive_score_backward, additive_score_forward, dot_score_backward,
                                       dot_score_forward, general_score_backward, general_score_forward,
                                       soft_attention_backward, soft_attention_forward)
from tinylm.random import make_rng, module_rng

__all__ = ["SoftAttention", "AdditiveAttention", "LuongAttention", "HardAttention"]


class SoftAttention(Module):
    """Base class: a score function (``scores``/``scores_backward``, defined by subclasses) followed
    by a softmax over the real keys and a weighted sum of the values.

    ``scores(query, keys)`` -> (B, S) or (B, T, S) and ``scores_backward(dscores)`` ->
    ``(dquery, dkeys)`` (accumulating the parameter gradients) are public so that
    :class:`HardAttention` can reuse a soft module's score function and parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self._score_cache = None
        self._soft_cache = None

    def scores(self, query, keys):
        raise NotImplementedError(f"{type(self).__name__}.scores")

    def scores_backward(self, dscores):
        raise NotImplementedError(f"{type(self).__name__}.scores_backward")

    def forward(self, query, keys, values, key_padding_mask=None):
        scores = self.scores(query, keys)
        (context, weights), self._soft_cache = soft_attention_forward(scores, values, key_padding_mask)
        return context, weights

    def backward(self, dout):
        # context = weights V, weights = softmax(scores) over the real keys
        dscores, dvalues = soft_attention_backward(dout, self._need_cache(self._soft_cache))
        dquery, dkeys = self.scores_backward(dscores)                        # scores = self.scores(query, keys)
        return dquery, dkeys, dvalues


class AdditiveAttention(SoftAttention):
    """Bahdanau (additive) attention: ``score(q, k) = v . tanh(W_q q + W_k k)``.

    Parameters (no biases, as in Bahdanau et al. 2015), laid out as the ``nn.Linear(..., bias=False)``
    layers a PyTorch implementation would use, with PyTorch's default init:
    ``query_proj.weight`` (A, Dq) = W_q, ``key_proj.weight`` (A, Dk) = W_k, ``v.weight`` (1, A) = v.
    The three children are ``Linear`` only for these names, layouts and init: the math runs in the
    fused op ``additive_score_forward``, which projects the keys once for all T queries.
    Derivation: derivations/soft_attention.md.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int, *, dtype=np.float32, rng=None):
        super().__init__()
        self.query_dim = check_positive_int("query_dim", query_dim)
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.attn_dim = check_positive_int("attn_dim", attn_dim)
        rng = make_rng(rng, name="rng")        # one stream for all three weights (an int seed would repeat its draws)
        self.query_proj = Linear(query_dim, attn_dim, bias=False, dtype=dtype, rng=rng)
        self.key_proj = Linear(key_dim, attn_dim, bias=False, dtype=dtype, rng=rng)
        self.v = Linear(attn_dim, 1, bias=False, dtype=dtype, rng=rng)

    def scores(self, query, keys):
        scores, self._score_cache = additive_score_forward(
            query, keys, self.query_proj.weight.data, self.key_proj.weight.data, self.v.weight.data[0])
        return scores

    def scores_backward(self, dscores):
        # scores = v . tanh(W_q q + W_k k)
        dquery, dkeys, dW_q, dW_k, dv = additive_score_backward(dscores, self._need_cache(self._score_cache))
        self.query_proj.weight.accumulate(dW_q)
        self.key_proj.weight.accumulate(dW_k)
        self.v.weight.accumulate(dv[None, :])                 # (A,) -> (1, A), the layout of v.weight
        return dquery, dkeys

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, attn_dim={self.attn_dim}"


class LuongAttention(SoftAttention):
    """Luong (multiplicative) attention, ``mode="dot"``: ``score(q, k) = q . k`` (no parameters,
    needs query_dim == key_dim), or ``mode="general"``: ``score(q, k) = q^T W k``.

    Parameter (general only): ``weight`` (query_dim, key_dim) = W, initialised as PyTorch's
    ``nn.Linear(key_dim, query_dim, bias=False).weight``; a PyTorch module computing
    ``q . linear(k)`` with such a layer loads its weight here unchanged.
    Derivation: derivations/soft_attention.md.
    """

    MODES = ("dot", "general")

    def __init__(self, query_dim: int, key_dim: int, mode: str = "dot", *, dtype=np.float32, rng=None):
        super().__init__()
        self.query_dim = check_positive_int("query_dim", query_dim)
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.mode = check_choice("mode", mode, self.MODES)
        if mode == "dot" and query_dim != key_dim:
            raise ValueError(f"key_dim: mode='dot' needs key_dim == query_dim={query_dim}, got {key_dim}; "
                             f"use mode='general' for different widths")
        self.register_parameter("weight", Parameter(init.fan_in_uniform((query_dim, key_dim), key_dim, dtype, rng))
                                if mode == "general" else None)

    def scores(self, query, keys):
        if self.mode == "dot":
            scores, self._score_cache = dot_score_forward(query, keys)
        else:
            scores, self._score_cache = general_score_forward(query, keys, self.weight.data)
        return scores

    def scores_backward(self, dscores):
        cache = self._need_cache(self._score_cache)
        if self.mode == "dot":
            return dot_score_backward(dscores, cache)                    # scores = q . k
        dquery, dkeys, dW = general_score_backward(dscores, cache)       # scores = q^T W k
        self.weight.accumulate(dW)
        return dquery, dkeys

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, mode={self.mode!r}"


class HardAttention(Module):
    """Hard attention: each query reads the value of ONE key, scored by ``scorer``.

    ``scorer`` is a soft attention module (:class:`AdditiveAttention` or :class:`LuongAttention`):
    its score function and parameters (``scorer.*``) are used, its softmax-average is not.
    ``mode``: "argmax" or "sample" (a draw from the attention distribution; ``rng`` as in
    ``Dropout``: None = tinylm's global generator, an int or Generator = this module's own stream).
    ``estimator`` (see tinylm/ops/hard_attention.py and derivations/hard_attention.md):

    * "straight_through": ``backward(dout)`` returns soft attention's gradients for the scores.
    * "reinforce" (needs mode="sample"): ``backward(dout, reward=R)`` with R (B,) or (B, T), higher
      is better, returns the score-function gradient ``-(R - b) d log p(chosen) / d scores``. The
      baseline ``b`` is ``self.baseline``: None (b = 0) before the first reward, then the mean
      reward of the first batch (a float), then ``b <- m b + (1 - m) mean(R)`` with ``m = baseline_momentum``,
      updated AFTER the gradient is formed so that ``b`` never depends on the current draw.

    Either way ``dvalues`` is exact. Returns ``(context, weights)`` with one-hot weights.
    """

    def __init__(self, scorer: SoftAttention, mode: str = "argmax", estimator: str = "straight_through",
                 baseline_momentum: float = 0.9, rng=None):
        super().__init__()
        if not isinstance(scorer, SoftAttention):
            raise TypeError(f"scorer: expected a soft attention module (AdditiveAttention or LuongAttention), "
                            f"got {type(scorer).__name__}")
        self.mode = check_choice("mode", mode, HARD_ATTENTION_MODES)
        self.estimator = check_choice("estimator", estimator, HARD_ATTENTION_ESTIMATORS)
        if estimator == "reinforce" and mode != "sample":
            raise ValueError(f"mode: the 'reinforce' estimator needs mode='sample', got mode={mode!r}")
        self.baseline_momentum = check_probability("baseline_momentum", baseline_momentum)
        self.scorer = scorer
        # a generator once: an int seed per call would repeat its draws
        self.rng = module_rng(rng)
        self.baseline = None                                 # moving-average reward; None until the first reward
        self._cache = None

    def forward(self, query, keys, values, key_padding_mask=None):
        scores = self.scorer.scores(query, keys)
        (context, weights), self._cache = hard_attention_forward(scores, values, key_padding_mask, self.mode,
                                                                 self.estimator, self.rng)
        return context, weights

    def backward(self, dout, reward=None):
        cache = self._need_cache(self._cache)
        b = 0.0 if self.baseline is None else self.baseline  # b = 0 until a first reward was seen
        # context, weights = hard_attention(scores, values): dscores shaped as scores, dvalues (B,S,Dv)
        dscores, dvalues = hard_attention_backward(dout, cache, reward=reward, baseline=b)
        if reward is not None:                               # after the gradient: b never depends on this draw
            mean = float(to_numpy(reward).mean())            # mean R over (B,) or (B,T), keyless queries included
            m = self.baseline_momentum
            # b <- m b + (1 - m) mean R; the first reward sets b = mean R
            self.baseline = mean if self.baseline is None else m * self.baseline + (1 - m) * mean
        dquery, dkeys = self.scorer.scores_backward(dscores)  # scores = scorer.scores(query, keys)
        return dquery, dkeys, dvalues

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, estimator={self.estimator!r}, baseline_momentum={self.baseline_momentum}"
