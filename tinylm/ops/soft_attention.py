"""Soft attention for encoder-decoder models: additive (Bahdanau) and multiplicative (Luong) scores.

A query (a decoder state) scores every key (an encoder state), the scores become weights by a
softmax over the keys, and the context is the weighted average of the values:

    e_s     = score(q, k_s)                      one number per key
    alpha   = softmax(e)  over the real keys     padding keys get weight exactly 0
    context = sum_s alpha_s v_s

Scores:

=========  =========================  ==============================================
name       score(q, k)                parameters
=========  =========================  ==============================================
additive   v^T tanh(W_q q + W_k k)    W_q (A, Dq), W_k (A, Dk), v (A,)   (Bahdanau)
dot        q . k                      none; needs Dq == Dk               (Luong "dot")
general    q^T W k                    W (Dq, Dk)                         (Luong "general")
=========  =========================  ==============================================

Each score has its own op pair (``additive_score_forward`` ...), :func:`soft_attention_forward`
turns scores into (context, weights), and ``additive_attention_forward`` ... chain the two. Hard
attention (tinylm/ops/hard_attention.py) reuses the masking and argument helpers; its module
reuses the score functions.

Shapes: B batch, S keys, T query steps, Dq query width, Dk key width, Dv value width, A additive
attention width. A query is (B, Dq) (one decoder step) or (B, T, Dq) (all T steps at once, as in
teacher forcing); scores and weights are then (B, S) or (B, T, S), the context (B, Dv) or
(B, T, Dv). Internally every op works on the (B, T, ...) form and drops T again for a 2-d query.

Masking: ``key_padding_mask`` (B, S) bool, ``True`` = key s of sequence b is padding (PyTorch's
convention). :func:`_fill_padding` sets those scores to ``-inf`` before the softmax of
tinylm/ops/softmax.py, which gives them weight 0 and gradient 0; a query whose keys are all
padding gets all-zero weights and context and zero gradients (that softmax defines an all
``-inf`` row as zeros), never NaN.

Derivation: derivations/soft_attention.md.  Modules: tinylm.nn.soft_attention.
Tests: tests/test_soft_attention.py, tests/test_torch_soft_attention.py.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinylm._checks import check_float, check_grad, check_shape
from tinylm.backend import array_module
from tinylm.ops.activations import TanhCache, tanh_backward, tanh_forward
from tinylm.ops.linear import LinearCache, linear_backward, linear_forward
from tinylm.ops.matmul import matmul
from tinylm.ops.softmax import SoftmaxCache, softmax_backward, softmax_forward

__all__ = ["AdditiveScoreCache", "DotScoreCache", "GeneralScoreCache", "SoftAttentionCache", "ScoredAttentionCache",
           "additive_score_forward", "additive_score_backward", "dot_score_forward", "dot_score_backward",
           "general_score_forward", "general_score_backward", "soft_attention_forward", "soft_attention_backward",
           "additive_attention_forward", "additive_attention_backward", "dot_attention_forward",
           "dot_attention_backward", "general_attention_forward", "general_attention_backward"]


# ----------------------------------------------------------------------------------------------
# Argument helpers (shared with tinylm/ops/hard_attention.py).
# ----------------------------------------------------------------------------------------------

def _steps(name: str, x, last: str, dims: dict):
    """Accept ``x`` of shape (B, last) (one step) or (B, T, last) (T steps).

    Returns ``(x3, squeeze)``: ``x`` as (B, T, last), and whether a T axis of 1 was added (so
    that results drop it again, see :func:`_unsteps`).
    """
    ndim = getattr(x, "ndim", None)
    if ndim == 2:
        check_shape(name, x, ("B", last), dims)
        return x[:, None, :], True
    if ndim == 3:
        check_shape(name, x, ("B", "T", last), dims)
        return x, False
    raise ValueError(f"{name}: expected shape (B, {last}) (one step) or (B, T, {last}) (T steps), "
                     f"got shape {tuple(x.shape)}")


def _unsteps(x3, squeeze: bool):
    """Undo :func:`_steps`: (B, 1, ...) -> (B, ...) when the caller passed a single step."""
    return x3[:, 0] if squeeze else x3


def _check_floats(*named) -> None:
    """Every ``(name, array)`` is a float array of the first one's dtype (no silent upcast)."""
    (ref_name, ref), *rest = named
    check_float(ref_name, ref)
    for name, x in rest:
        check_float(name, x)
        if x.dtype != ref.dtype:
            raise TypeError(f"{name}: dtype {x.dtype} does not match {ref_name} ({ref.dtype}); "
                            f"cast so that all float inputs match")


def _check_mask(key_padding_mask, dims: dict) -> None:
    """``key_padding_mask`` is None or a bool (B, S) array; also require at least one key."""
    if dims["S"] < 1:
        raise ValueError("scores, values: attention needs at least one key (S >= 1), got S=0")
    if key_padding_mask is None:
        return
    if getattr(key_padding_mask, "dtype", None) != np.bool_:
        got = getattr(key_padding_mask, "dtype", type(key_padding_mask).__name__)
        raise TypeError(f"key_padding_mask: expected a bool array (True = padding key, ignored), got {got}")
    check_shape("key_padding_mask", key_padding_mask, ("B", "S"), dims)


def _fill_padding(scores3, key_padding_mask):
    """Scores (B, T, S) with every padding key's score set to -inf, so that the softmax gives it
    weight exactly 0 (and, having no path to the original score, gradient 0)."""
    if key_padding_mask is None:
        return scores3
    xp = array_module(("scores", scores3), ("key_padding_mask", key_padding_mask))
    pad = key_padding_mask[:, None, :]                        # (B,S) -> (B,1,S), broadcast over T
    return xp.where(pad, scores3.dtype.type(-np.inf), scores3)


def _split_dout(dout, context_shape: tuple, weights_shape: tuple, dtype, squeeze: bool):
    """The upstream gradient of ``(context, weights)``: ``dcontext`` alone, or the pair
    ``(dcontext, dweights)`` where either may be None (= 0). Checked against the forward's output
    shapes and returned in the (B, T, ...) form; a None ``dcontext`` becomes zeros."""
    if isinstance(dout, tuple) and len(dout) != 2:
        raise ValueError(f"dout: expected dcontext or a pair (dcontext, dweights), got a tuple of {len(dout)}")
    dcontext, dweights = dout if isinstance(dout, tuple) else (dout, None)
    xp = array_module(("dcontext", dcontext), ("dweights", dweights))
    for name, g, shape in (("dcontext", dcontext, context_shape), ("dweights", dweights, weights_shape)):
        if g is None:
            continue
        check_grad(name, g, shape, dtype)
    if dcontext is None:
        dcontext = xp.zeros(context_shape, dtype)
    if squeeze:
        dcontext = dcontext[:, None, :]
        dweights = None if dweights is None else dweights[:, None, :]
    return dcontext, dweights


# ----------------------------------------------------------------------------------------------
# Scores.
# ----------------------------------------------------------------------------------------------

class AdditiveScoreCache(NamedTuple):
    query_proj: LinearCache   # W_q q: its backward gives dquery and dW_q
    key_proj: LinearCache     # W_k k: its backward gives dkeys and dW_k
    tanh: TanhCache           # h = tanh(W_q q + W_k k) (B,T,S,A): needed for dv = sum dscores h and for 1 - h^2
    v: object                 # (A,) for dh = dscores v
    squeeze: bool             # the query was (B, Dq): drop the T axis from dquery


def additive_score_forward(query, keys, W_q, W_k, v):
    """Bahdanau's score ``e[b,t,s] = v . tanh(W_q query[b,t] + W_k keys[b,s])``.

    Shapes: query (B, Dq) or (B, T, Dq), keys (B, S, Dk), W_q (A, Dq), W_k (A, Dk), v (A,)
    -> scores (B, S) or (B, T, S). Returns ``(scores, cache)``.
    """
    array_module(("query", query), ("keys", keys), ("W_q", W_q), ("W_k", W_k), ("v", v))
    _check_floats(("query", query), ("keys", keys), ("W_q", W_q), ("W_k", W_k), ("v", v))
    dims = check_shape("W_q", W_q, ("A", "Dq"))
    check_shape("W_k", W_k, ("A", "Dk"), dims)
    check_shape("v", v, ("A",), dims)
    q3, squeeze = _steps("query", query, "Dq", dims)
    check_shape("keys", keys, ("B", "S", "Dk"), dims)
    qp, qp_cache = linear_forward(q3, W_q)                    # (B,T,Dq) -> (B,T,A)
    kp, kp_cache = linear_forward(keys, W_k)                  # (B,S,Dk) -> (B,S,A), once for all T queries
    pre = qp[:, :, None, :] + kp[:, None, :, :]               # (B,T,1,A) + (B,1,S,A) -> (B,T,S,A)
    h, tanh_cache = tanh_forward(pre)                         # (B,T,S,A)
    scores = matmul(h, v[:, None])[..., 0]                    # (B,T,S,A) @ (A,1) -> (B,T,S)
    return _unsteps(scores, squeeze), AdditiveScoreCache(qp_cache, kp_cache, tanh_cache, v, squeeze)


def additive_score_backward(dscores, cache: AdditiveScoreCache):
    """Shapes: dscores like the scores -> ``(dquery, dkeys, dW_q, dW_k, dv)`` shaped as the inputs."""
    qp_cache, kp_cache, tanh_cache, v, squeeze = cache
    h = tanh_cache.y                                          # (B,T,S,A)
    B, T, S, A = h.shape
    array_module(("dscores", dscores))
    check_shape("dscores", dscores, (B, S) if squeeze else (B, T, S))
    ds = dscores[:, None, :] if squeeze else dscores          # (B,T,S)
    dv = matmul(ds.reshape(1, -1), h.reshape(-1, A))[0]       # e = h v  =>  dv = sum_{b,t,s} de h   (1,N)@(N,A) -> (A,)
    dh = ds[..., None] * v                                    # e = h v  =>  dh = de v                  (B,T,S,A)
    dpre = tanh_backward(dh, tanh_cache)                      # h = tanh(pre)  =>  dpre = dh (1 - h^2)   (B,T,S,A)
    dqp = dpre.sum(axis=2)                                    # qp is broadcast over the S keys: sum them   (B,T,A)
    dkp = dpre.sum(axis=1)                                    # kp is broadcast over the T queries: sum them (B,S,A)
    dq3, dW_q, _ = linear_backward(dqp, qp_cache)             # qp = q W_q^T  =>  dq = dqp W_q, dW_q = dqp^T q
    dkeys, dW_k, _ = linear_backward(dkp, kp_cache)           # kp = k W_k^T  =>  dk = dkp W_k, dW_k = dkp^T k
    return _unsteps(dq3, squeeze), dkeys, dW_q, dW_k, dv


class DotScoreCache(NamedTuple):
    query: object     # (B,T,D) for dkeys = dscores^T query
    keys: object      # (B,S,D) for dquery = dscores keys
    squeeze: bool     # the query was (B, D): drop the T axis from dquery


def dot_score_forward(query, keys):
    """Luong's "dot" score ``e[b,t,s] = query[b,t] . keys[b,s]`` (unscaled).

    Shapes: query (B, D) or (B, T, D), keys (B, S, D) -> scores (B, S) or (B, T, S).
    Returns ``(scores, cache)``.
    """
    array_module(("query", query), ("keys", keys))
    _check_floats(("query", query), ("keys", keys))
    dims = check_shape("keys", keys, ("B", "S", "D"))
    if getattr(query, "ndim", 0) in (2, 3) and query.shape[-1] != dims["D"]:
        raise ValueError(f"query: dot attention needs the keys' width D={dims['D']}, got shape "
                         f"{tuple(query.shape)}; use general attention for different widths")
    q3, squeeze = _steps("query", query, "D", dims)
    scores = matmul(q3, keys.swapaxes(1, 2))                  # (B,T,D) @ (B,D,S) -> (B,T,S)
    return _unsteps(scores, squeeze), DotScoreCache(q3, keys, squeeze)


def dot_score_backward(dscores, cache: DotScoreCache):
    """Shapes: dscores like the scores -> ``(dquery, dkeys)`` shaped as the inputs."""
    q3, keys, squeeze = cache
    (B, T, _), S = q3.shape, keys.shape[1]
    array_module(("dscores", dscores))
    check_shape("dscores", dscores, (B, S) if squeeze else (B, T, S))
    ds = dscores[:, None, :] if squeeze else dscores          # (B,T,S)
    dq3 = matmul(ds, keys)                                    # e = q k^T  =>  dq = de k     (B,T,S)@(B,S,D) -> (B,T,D)
    dkeys = matmul(ds.swapaxes(1, 2), q3)                     # e = q k^T  =>  dk = de^T q   (B,S,T)@(B,T,D) -> (B,S,D)
    return _unsteps(dq3, squeeze), dkeys


class GeneralScoreCache(NamedTuple):
    query: object     # (B,T,Dq) for dW = query^T dqw
    qw: object        # (B,T,Dk) the projected query q W, for dkeys = dscores^T qw
    keys: object      # (B,S,Dk) for dqw = dscores keys
    W: object         # (Dq,Dk) for dquery = dqw W^T
    squeeze: bool     # the query was (B, Dq): drop the T axis from dquery


def general_score_forward(query, keys, W):
    """Luong's "general" score ``e[b,t,s] = query[b,t]^T W keys[b,s]``.

    Computed as ``(query W) . keys``: projecting the T queries, not the S keys, is the cheaper
    side when decoding one step at a time. Shapes: query (B, Dq) or (B, T, Dq), keys (B, S, Dk),
    W (Dq, Dk) -> scores (B, S) or (B, T, S). Returns ``(scores, cache)``.
    """
    array_module(("query", query), ("keys", keys), ("W", W))
    _check_floats(("query", query), ("keys", keys), ("W", W))
    dims = check_shape("W", W, ("Dq", "Dk"))
    q3, squeeze = _steps("query", query, "Dq", dims)
    check_shape("keys", keys, ("B", "S", "Dk"), dims)
    qw = matmul(q3, W)                                        # (B,T,Dq) @ (Dq,Dk) -> (B,T,Dk)
    scores = matmul(qw, keys.swapaxes(1, 2))                  # (B,T,Dk) @ (B,Dk,S) -> (B,T,S)
    return _unsteps(scores, squeeze), GeneralScoreCache(q3, qw, keys, W, squeeze)


def general_score_backward(dscores, cache: GeneralScoreCache):
    """Shapes: dscores like the scores -> ``(dquery, dkeys, dW)`` shaped as the inputs."""
    q3, qw, keys, W, squeeze = cache
    (B, T, Dq), (S, Dk) = q3.shape, keys.shape[1:]
    array_module(("dscores", dscores))
    check_shape("dscores", dscores, (B, S) if squeeze else (B, T, S))
    ds = dscores[:, None, :] if squeeze else dscores          # (B,T,S)
    dqw = matmul(ds, keys)                                    # e = qw k^T  =>  dqw = de k    (B,T,S)@(B,S,Dk)
    dkeys = matmul(ds.swapaxes(1, 2), qw)                     # e = qw k^T  =>  dk = de^T qw  (B,S,T)@(B,T,Dk)
    dq3 = matmul(dqw, W.T)                                    # qw = q W  =>  dq = dqw W^T     (B,T,Dk)@(Dk,Dq)
    dW = matmul(q3.reshape(-1, Dq).T, dqw.reshape(-1, Dk))    # qw = q W  =>  dW = q^T dqw     (Dq,N)@(N,Dk)
    return _unsteps(dq3, squeeze), dkeys, dW


# ----------------------------------------------------------------------------------------------
# Scores -> (context, weights).
# ----------------------------------------------------------------------------------------------

class SoftAttentionCache(NamedTuple):
    softmax: SoftmaxCache   # weights = softmax(filled scores): its backward gives dscores from dweights
    values: object          # (B,S,Dv) for dweights = dcontext values^T
    context_shape: tuple    # the context as returned ((B,Dv) or (B,T,Dv)), to check dcontext
    squeeze: bool           # the scores were (B, S): results drop the T axis


def soft_attention_forward(scores, values, key_padding_mask=None):
    """``weights = softmax(scores)`` over the real keys, ``context = weights @ values``.

    Shapes: scores (B, S) or (B, T, S), values (B, S, Dv), key_padding_mask (B, S) bool
    (True = padding) or None -> context (B, Dv) or (B, T, Dv), weights shaped as scores.
    Padding keys get weight exactly 0; a query with no real key gets zero weights and context.
    Returns ``((context, weights), cache)``.
    """
    array_module(("scores", scores), ("values", values), ("key_padding_mask", key_padding_mask))
    _check_floats(("scores", scores), ("values", values))
    dims: dict[str, int] = {}
    s3, squeeze = _steps("scores", scores, "S", dims)
    check_shape("values", values, ("B", "S", "Dv"), dims)
    _check_mask(key_padding_mask, dims)
    weights, softmax_cache = softmax_forward(_fill_padding(s3, key_padding_mask), axis=-1)   # (B,T,S)
    context = matmul(weights, values)                         # (B,T,S) @ (B,S,Dv) -> (B,T,Dv)
    context, weights = _unsteps(context, squeeze), _unsteps(weights, squeeze)
    return (context, weights), SoftAttentionCache(softmax_cache, values, tuple(context.shape), squeeze)


def soft_attention_backward(dout, cache: SoftAttentionCache):
    """Gradients of :func:`soft_attention_forward`.

    ``dout`` is ``dcontext``, or ``(dcontext, dweights)`` when the weights feed a loss too (either
    may be None). Returns ``(dscores, dvalues)`` shaped as scores and values.

    Shapes: dcontext (B, Dv) or (B, T, Dv), dweights (B, S) or (B, T, S) or None
    -> dscores (B, S) or (B, T, S), dvalues (B, S, Dv).
    """
    softmax_cache, values, context_shape, squeeze = cache
    weights = softmax_cache.y                                 # (B,T,S)
    dcontext, dweights = _split_dout(dout, context_shape, context_shape[:-1] + weights.shape[-1:],
                                     values.dtype, squeeze)
    dvalues = matmul(weights.swapaxes(1, 2), dcontext)        # c = a V  =>  dV = a^T dc   (B,S,T)@(B,T,Dv) -> (B,S,Dv)
    dw = matmul(dcontext, values.swapaxes(1, 2))              # c = a V  =>  da = dc V^T   (B,T,Dv)@(B,Dv,S) -> (B,T,S)
    if dweights is not None:
        dw = dw + dweights                                    # a is also an output: add its own upstream gradient
    dscores = softmax_backward(dw, softmax_cache)             # a = softmax(e) => de = a (da - sum(da a)); 0 at padding
    return _unsteps(dscores, squeeze), dvalues


# ----------------------------------------------------------------------------------------------
# Score + soft attention in one call.
# ----------------------------------------------------------------------------------------------

class ScoredAttentionCache(NamedTuple):
    score: object              # the score op's cache (Additive/Dot/GeneralScoreCache)
    soft: SoftAttentionCache   # the cache of soft_attention_forward


def additive_attention_forward(query, keys, values, W_q, W_k, v, key_padding_mask=None):
    """Bahdanau attention: ``e = v . tanh(W_q q + W_k k)``, ``a = softmax(e)``, ``c = a @ values``.

    Shapes: query (B, Dq) or (B, T, Dq), keys (B, S, Dk), values (B, S, Dv), W_q (A, Dq),
    W_k (A, Dk), v (A,), key_padding_mask (B, S) bool or None -> context (B, Dv) or (B, T, Dv),
    weights (B, S) or (B, T, S). Returns ``((context, weights), cache)``.
    """
    _check_floats(("query", query), ("values", values))      # named here: the score op never sees values
    scores, score_cache = additive_score_forward(query, keys, W_q, W_k, v)
    out, soft_cache = soft_attention_forward(scores, values, key_padding_mask)
    return out, ScoredAttentionCache(score_cache, soft_cache)


def additive_attention_backward(dout, cache: ScoredAttentionCache):
    """``dout`` = dcontext or (dcontext, dweights) -> ``(dquery, dkeys, dvalues, dW_q, dW_k, dv)``."""
    dscores, dvalues = soft_attention_backward(dout, cache.soft)             # out = soft_attention(scores, values)
    dquery, dkeys, dW_q, dW_k, dv = additive_score_backward(dscores, cache.score)   # scores = additive_score(...)
    return dquery, dkeys, dvalues, dW_q, dW_k, dv


def dot_attention_forward(query, keys, values, key_padding_mask=None):
    """Luong "dot" attention: ``e = q . k``, ``a = softmax(e)``, ``c = a @ values``.

    Shapes: query (B, D) or (B, T, D), keys (B, S, D), values (B, S, Dv), key_padding_mask (B, S)
    bool or None -> context (B, Dv) or (B, T, Dv), weights (B, S) or (B, T, S).
    Returns ``((context, weights), cache)``.
    """
    _check_floats(("query", query), ("values", values))      # named here: the score op never sees values
    scores, score_cache = dot_score_forward(query, keys)
    out, soft_cache = soft_attention_forward(scores, values, key_padding_mask)
    return out, ScoredAttentionCache(score_cache, soft_cache)


def dot_attention_backward(dout, cache: ScoredAttentionCache):
    """``dout`` = dcontext or (dcontext, dweights) -> ``(dquery, dkeys, dvalues)``."""
    dscores, dvalues = soft_attention_backward(dout, cache.soft)             # out = soft_attention(scores, values)
    dquery, dkeys = dot_score_backward(dscores, cache.score)                 # scores = dot_score(query, keys)
    return dquery, dkeys, dvalues


def general_attention_forward(query, keys, values, W, key_padding_mask=None):
    """Luong "general" attention: ``e = q^T W k``, ``a = softmax(e)``, ``c = a @ values``.

    Shapes: query (B, Dq) or (B, T, Dq), keys (B, S, Dk), values (B, S, Dv), W (Dq, Dk),
    key_padding_mask (B, S) bool or None -> context (B, Dv) or (B, T, Dv), weights (B, S) or
    (B, T, S). Returns ``((context, weights), cache)``.
    """
    _check_floats(("query", query), ("values", values))      # named here: the score op never sees values
    scores, score_cache = general_score_forward(query, keys, W)
    out, soft_cache = soft_attention_forward(scores, values, key_padding_mask)
    return out, ScoredAttentionCache(score_cache, soft_cache)


def general_attention_backward(dout, cache: ScoredAttentionCache):
    """``dout`` = dcontext or (dcontext, dweights) -> ``(dquery, dkeys, dvalues, dW)``."""
    dscores, dvalues = soft_attention_backward(dout, cache.soft)             # out = soft_attention(scores, values)
    dquery, dkeys, dW = general_score_backward(dscores, cache.score)         # scores = general_score(query, keys, W)
    return dquery, dkeys, dvalues, dW
