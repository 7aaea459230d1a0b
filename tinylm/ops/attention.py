"""Scaled dot-product attention, dispatched to the active backend's attention kernel.

    S = scale * Q K^T        (scores; scale defaults to 1/sqrt(D))
    P = softmax(S)           (over the keys each query may see; the others get probability 0)
    O = P V

Derivation: derivations/attention.md (softmax: derivations/softmax.md).  Module: tinylm.nn.attention.MultiheadAttention.
Tests: tests/test_ops_attention.py, tests/test_kernels.py, tests/test_torch_attention.py.

Shapes: B batch, H heads, T queries, S keys, D head dim.  q (B, H, T, D), k and v (B, H, S, D).

Which keys a query sees:

* ``key_padding_mask`` (B, S) bool: ``True`` marks key s of sequence b as padding; no query sees
  it (PyTorch's ``nn.MultiheadAttention`` convention).
* ``causal=True`` (needs T <= S): queries are aligned to the END of the keys, so query i sees key j
  iff ``j <= i + S - T``. With T == S this is the usual lower triangle; with T < S it is exactly
  what KV-cache decoding needs (T new queries against S = past + T keys). It is PyTorch's
  ``causal_lower_right``; note that ``F.scaled_dot_product_attention(is_causal=True)`` aligns
  to the start instead, which differs when T != S.
* A query that sees no key at all outputs zeros and receives zero gradients (no NaN).

Kernels. :func:`attention_forward` and :func:`attention_backward` validate their arguments, then
call ``tinylm.backend.registry.get_kernel("attention")``. A kernel is a pair

    out, kernel_cache = forward(q, k, v, *, causal, key_padding_mask, scale, dropout_mask)
    dq, dk, dv        = backward(dout, kernel_cache)

that receives validated arguments: ``scale`` a float, ``dropout_mask`` None or a (B, H, T, S) array
of q's dtype holding 0 (dropped) or 1/(1-p) (kept). The mask is drawn here, on the host, so a seed
gives the same dropout on every kernel and backend. ``kernel_cache`` is private to the kernel (the
reference keeps P; a flash kernel keeps O and the row log-sum-exp), so :class:`AttentionCache`
remembers which kernel ran and the backward goes back to that same kernel.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from tinylm._checks import check_flag, check_float, check_grad, check_probability, check_shape, is_real
from tinylm.backend import array_module, get_backend
from tinylm.backend.registry import Kernel, get_kernel, register_kernel
from tinylm.ops.matmul import matmul
from tinylm.ops.softmax import softmax
from tinylm.random import make_rng

__all__ = ["AttentionCache", "ReferenceAttentionCache", "attention_forward", "attention_backward",
           "attention_probs", "attention_forward_reference", "attention_backward_reference"]


# ----------------------------------------------------------------------------------------------
# The reference kernel: readable, written against xp, float64-validated.
# ----------------------------------------------------------------------------------------------

class ReferenceAttentionCache(NamedTuple):
    q: object             # (B,H,T,D)  for dK = scale dS^T Q
    k: object             # (B,H,S,D)  for dQ = scale dS K
    v: object             # (B,H,S,D)  for dP = dO V^T
    p: object             # (B,H,T,S)  the probabilities (before dropout): the softmax backward needs them
    dropout_mask: object  # (B,H,T,S)  0 or 1/(1-p), or None without dropout
    scale: float          # the factor in S = scale Q K^T


def _allowed_keys(xp, T: int, S: int, causal: bool, key_padding_mask):
    """Boolean mask of the (query, key) pairs that take part, broadcastable to (B,H,T,S); None = all."""
    allowed = None
    if causal:
        i = xp.arange(T)[:, None]                                 # query index  (T,1)
        j = xp.arange(S)[None, :]                                 # key index    (1,S)
        allowed = j <= i + (S - T)                                # end-aligned lower triangle  (T,S)
    if key_padding_mask is not None:
        real = ~key_padding_mask[:, None, None, :]                # True = a real key  (B,S) -> (B,1,1,S)
        allowed = real if allowed is None else allowed & real     # -> (B,1,T,S)
    return allowed


def _probs(xp, q, k, causal, key_padding_mask, scale):
    """P = softmax(scale Q K^T) over the keys each query sees, shape (B,H,T,S)."""
    T, S = q.shape[-2], k.shape[-2]
    s = matmul(q, k.swapaxes(-1, -2)) * scale                     # (B,H,T,D) @ (B,H,D,S) -> (B,H,T,S)
    allowed = _allowed_keys(xp, T, S, causal, key_padding_mask)
    if allowed is not None:
        s = xp.where(allowed, s, s.dtype.type(-np.inf))           # unseen keys: exp(-inf) = 0
    return softmax(s, axis=-1)                                    # a row of only -inf gives 0, not NaN


def attention_forward_reference(q, k, v, *, causal, key_padding_mask, scale, dropout_mask):
    """Reference kernel: materialises the full (B,H,T,S) probability matrix P."""
    xp = array_module(("q", q), ("k", k), ("v", v), ("key_padding_mask", key_padding_mask),
                      ("dropout_mask", dropout_mask))
    p = _probs(xp, q, k, causal, key_padding_mask, scale)         # (B,H,T,S)
    pd = p if dropout_mask is None else p * dropout_mask          # dropout on the probabilities
    out = matmul(pd, v)                                           # (B,H,T,S) @ (B,H,S,D) -> (B,H,T,D)
    return out, ReferenceAttentionCache(q, k, v, p, dropout_mask, scale)


def attention_backward_reference(dout, cache: ReferenceAttentionCache):
    """Reference kernel backward: ``(dq, dk, dv)`` from P kept by the forward.

    Shapes: dout (B,H,T,D) -> dq (B,H,T,D), dk (B,H,S,D), dv (B,H,S,D).
    """
    q, k, v, p, dropout_mask, scale = cache
    pd = p if dropout_mask is None else p * dropout_mask          # Pd = P * M, recomputed as in the forward  (B,H,T,S)
    dv = matmul(pd.swapaxes(-1, -2), dout)                        # O = Pd V  =>  dV = Pd^T dO   (B,H,S,D)
    dp = matmul(dout, v.swapaxes(-1, -2))                         # O = Pd V  =>  dPd = dO V^T   (B,H,T,S)
    if dropout_mask is not None:
        dp = dp * dropout_mask                                    # Pd = P * M  =>  dP = dPd * M
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))          # P = softmax(S)  =>  dS = P * (dP - rowsum(dP P))
    dq = matmul(ds, k) * scale                                    # S = scale Q K^T  =>  dQ = scale dS K    (B,H,T,D)
    dk = matmul(ds.swapaxes(-1, -2), q) * scale                   # S = scale Q K^T  =>  dK = scale dS^T Q  (B,H,S,D)
    return dq, dk, dv


register_kernel("attention", "numpy", "v0_reference", attention_forward_reference, attention_backward_reference)


# ----------------------------------------------------------------------------------------------
# The public op: validate, draw the dropout mask, dispatch.
# ----------------------------------------------------------------------------------------------

class AttentionCache(NamedTuple):
    kernel: Kernel        # the kernel that ran the forward: only its backward understands kernel_cache
    kernel_cache: object  # private to that kernel
    dropout_mask: object  # (B,H,T,S) 0 or 1/(1-p), or None; kept so callers can report post-dropout weights
    out_shape: tuple      # (B,H,T,D), to check dout
    dtype: object         # dtype of q, k, v (and of dout)


def _check_inputs(q, k, v, causal, key_padding_mask, scale) -> tuple[dict[str, int], bool, float]:
    """Validate the shared arguments; return the bound dims, causal and the resolved scale."""
    array_module(("q", q), ("k", k), ("v", v), ("key_padding_mask", key_padding_mask))
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_float(name, x)
    dims = check_shape("q", q, ("B", "H", "T", "D"))
    check_shape("k", k, ("B", "H", "S", "D"), dims)
    check_shape("v", v, ("B", "H", "S", "D"), dims)
    for name, x in (("k", k), ("v", v)):
        if x.dtype != q.dtype:
            raise TypeError(f"{name}: dtype {x.dtype} differs from q's {q.dtype}; cast so q, k and v match")
    if dims["T"] < 1 or dims["S"] < 1:
        raise ValueError(f"q, k: need at least one query and one key, got T={dims['T']}, S={dims['S']}")
    if key_padding_mask is not None:
        if getattr(key_padding_mask, "dtype", None) != np.bool_:
            got = getattr(key_padding_mask, "dtype", type(key_padding_mask).__name__)
            raise TypeError(f"key_padding_mask: expected a bool array (True = padding key, ignored), got {got}")
        check_shape("key_padding_mask", key_padding_mask, ("B", "S"), dims)
    causal = check_flag("causal", causal)
    if causal and dims["T"] > dims["S"]:
        raise ValueError(f"causal: needs T <= S (queries are aligned to the end of the keys), "
                         f"got T={dims['T']}, S={dims['S']}")
    if scale is None:
        scale = 1.0 / math.sqrt(dims["D"])
    if not (is_real(scale) and math.isfinite(scale)):
        raise ValueError(f"scale: expected a finite real number or None (1/sqrt(D)), got {scale!r}")
    return dims, causal, float(scale)


def _dropout_mask(shape: tuple[int, ...], p: float, dtype, rng):
    """Inverted-dropout mask drawn on the host: 1/(1-p) with probability 1-p, else 0."""
    keep = make_rng(rng, name="rng").random(shape) >= p
    return get_backend().asarray(keep.astype(dtype) / dtype.type(1.0 - p))


def attention_forward(q, k, v, causal=False, key_padding_mask=None, scale=None, dropout_p=0.0, rng=None):
    """``O = dropout(softmax(scale Q K^T + mask)) V`` on the active backend's kernel.

    Shapes: q (B,H,T,D), k (B,H,S,D), v (B,H,S,D), key_padding_mask (B,S) bool or None
    -> out (B,H,T,D). ``scale`` defaults to 1/sqrt(D). ``dropout_p`` in [0, 1) drops attention
    probabilities (inverted dropout, mask drawn from ``tinylm.random.make_rng(rng)``); pass 0 at
    evaluation time. See the module docstring for the masking rules. Returns ``(out, cache)``.
    """
    dims, causal, scale = _check_inputs(q, k, v, causal, key_padding_mask, scale)
    dropout_p = check_probability("dropout_p", dropout_p)
    B, H, T, S = dims["B"], dims["H"], dims["T"], dims["S"]
    mask = _dropout_mask((B, H, T, S), dropout_p, q.dtype, rng) if dropout_p > 0 else None
    kernel = get_kernel("attention")
    out, kernel_cache = kernel.forward(q, k, v, causal=causal, key_padding_mask=key_padding_mask,
                                       scale=scale, dropout_mask=mask)
    return out, AttentionCache(kernel, kernel_cache, mask, tuple(q.shape), q.dtype)


def attention_backward(dout, cache: AttentionCache):
    """Gradients of :func:`attention_forward`: dout (B,H,T,D) -> ``(dq, dk, dv)`` with the shapes of q, k, v."""
    array_module(("dout", dout))
    check_grad("dout", dout, cache.out_shape, cache.dtype)
    return cache.kernel.backward(dout, cache.kernel_cache)    # out = kernel.forward(q, k, v, ...)


def attention_probs(q, k, causal=False, key_padding_mask=None, scale=None):
    """The attention probabilities P (B,H,T,S) (no dropout), for inspection and heatmaps.

    Same arguments and masking as :func:`attention_forward` (v is not needed). Rows sum to 1 over
    the keys a query sees and are 0 elsewhere; a query that sees no key has an all-zero row.
    """
    xp = array_module(("q", q), ("k", k))
    _, causal, scale = _check_inputs(q, k, k, causal, key_padding_mask, scale)
    return _probs(xp, q, k, causal, key_padding_mask, scale)
