"""Choosing the next token from logits: greedy, temperature, top-k and nucleus (top-p) sampling.

The draw happens on the host with a NumPy ``Generator`` (so a seed gives the same tokens on every
backend); for CuPy arrays this moves B x V logits to the host once per generated token, which is
small next to the forward pass that produced them.
"""
from __future__ import annotations

import numpy as np

from tinylm._checks import check_shape
from tinylm.backend import get_backend, to_numpy

__all__ = ["sample_next", "filter_logits"]


def filter_logits(logits: np.ndarray, top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """Set to -inf every logit outside the top-k and outside the nucleus of mass top_p.

    Shapes: logits (B, V) float64 on the host -> (B, V). The nucleus is the smallest set of the
    most probable tokens whose probability sums to at least ``top_p``; it always keeps the argmax.
    """
    V = logits.shape[-1]
    out = logits.copy()
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k: expected a positive int, got {top_k!r}")
        k = min(top_k, V)
        kth = np.partition(out, V - k, axis=-1)[:, V - k][:, None]       # (B,1) k-th largest
        out[out < kth] = -np.inf
    if top_p is not None:
        if not isinstance(top_p, (int, float)) or not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p: expected a float in (0, 1], got {top_p!r}")
        order = np.argsort(-out, axis=-1, kind="stable")                 # (B,V) most probable first
        srt = np.take_along_axis(out, order, axis=-1)
        p = np.exp(srt - srt[:, :1])
        p /= p.sum(-1, keepdims=True)
        mass_before = np.cumsum(p, axis=-1) - p                          # mass of strictly better tokens
        drop_sorted = mass_before >= top_p                               # the argmax is never dropped
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        out[drop] = -np.inf
    return out


def sample_next(logits, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                do_sample: bool = False, rng: np.random.Generator | None = None):
    """Next token per row: logits (B, V) -> ids (B,) int64 on the active backend."""
    check_shape("logits", logits, ("B", "V"))
    z = to_numpy(logits).astype(np.float64)
    if not do_sample:
        ids = z.argmax(axis=-1)
    else:
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(f"temperature: expected a float > 0 when sampling, got {temperature!r}")
        rng = rng if rng is not None else np.random.default_rng()
        z = filter_logits(z / temperature, top_k, top_p)
        p = np.exp(z - z.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        u = rng.random((z.shape[0], 1))                                  # one uniform per row
        ids = np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), z.shape[1] - 1)   # inverse CDF
    return get_backend().asarray(ids.astype(np.int64))
