"""Choosing the next token from logits: greedy, temperature, top-k and nucleus (top-p) sampling.

The draw happens on the host with a NumPy ``Generator`` (so a seed gives the same tokens on every
backend); for CuPy arrays this moves B x V logits to the host once per generated token, which is
small next to the forward pass that produced them.
"""
from __future__ import annotations

import math

import numpy as np

from tinylm._checks import check_flag, check_float, check_shape, is_real
from tinylm.backend import get_backend, to_numpy
from tinylm.random import make_rng

__all__ = ["sample_next", "filter_logits", "check_sampling_args"]


def _check_top_k(top_k) -> int | None:
    if top_k is None:
        return None
    if isinstance(top_k, (bool, np.bool_)) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k: expected None or a positive int (keep the k most probable tokens), got {top_k!r}")
    return int(top_k)


def _check_top_p(top_p) -> float | None:
    if top_p is None:
        return None
    if not is_real(top_p) or not 0.0 < top_p <= 1.0:              # NaN fails the comparison too
        raise ValueError(f"top_p: expected None or a float in (0, 1] (the nucleus's probability mass), got {top_p!r}")
    return float(top_p)


def check_sampling_args(temperature=1.0, top_k=None, top_p=None, do_sample=False) -> None:
    """Validate the decoding arguments shared by :func:`sample_next` and ``GPT.generate``, whether
    or not ``do_sample`` is set (a bad value is a bug even when greedy decoding ignores it).

    ``temperature`` must be a finite number > 0 when sampling; greedy decoding also accepts 0
    (the usual spelling of "greedy").
    """
    sample = check_flag("do_sample", do_sample)
    if not is_real(temperature) or not math.isfinite(temperature) or temperature < 0 \
            or (sample and temperature == 0):
        raise ValueError(f"temperature: expected a float > 0 when sampling (>= 0 when greedy), "
                         f"got {temperature!r}")
    _check_top_k(top_k)
    _check_top_p(top_p)


def _check_logits(logits) -> None:
    check_shape("logits", logits, ("B", "V"))
    check_float("logits", logits)
    if logits.shape[1] < 1:
        raise ValueError(f"logits: expected at least one token (V >= 1), got shape {tuple(logits.shape)}")


def filter_logits(logits: np.ndarray, top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """Set to -inf every logit outside the top-k and outside the nucleus of mass top_p.

    Shapes: logits (B, V) float64 on the host -> (B, V). The nucleus is the smallest set of the
    most probable tokens whose probability sums to at least ``top_p``; it always keeps the argmax.
    """
    _check_logits(logits)
    top_k, top_p = _check_top_k(top_k), _check_top_p(top_p)
    V = logits.shape[-1]
    out = logits.copy()
    if top_k is not None:
        k = min(top_k, V)
        kth = np.partition(out, V - k, axis=-1)[:, V - k][:, None]       # (B,1) k-th largest
        out[out < kth] = -np.inf
    if top_p is not None:
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
                do_sample: bool = False, rng: np.random.Generator | int | None = None):
    """Next token per row: logits (B, V) float -> ids (B,) int64 on the active backend.

    ``rng``: a numpy Generator, an int seed (a fresh generator each call) or None (tinylm's global
    generator, which ``tinylm.manual_seed`` seeds). The arguments are checked whether or not
    ``do_sample`` is set; NaN logits, or a row without a finite logit, are an error (they would
    otherwise silently give token 0).
    """
    _check_logits(logits)
    check_sampling_args(temperature, top_k, top_p, do_sample)
    rng = make_rng(rng, name="rng")                                     # checked even when greedy
    z = to_numpy(logits).astype(np.float64)
    if np.isnan(z).any():
        row = int(np.flatnonzero(np.isnan(z).any(axis=-1))[0])
        raise ValueError(f"logits: row {row} contains NaN (of shape {tuple(z.shape)}); the forward pass that "
                         f"produced them diverged or read garbage")
    top = z.max(axis=-1)                                                 # (B,)
    if not np.isfinite(top).all():
        row = int(np.flatnonzero(~np.isfinite(top))[0])
        raise ValueError(f"logits: row {row} has no finite maximum (max {top[row]}): every token is -inf, "
                         f"or one is +inf, so no distribution can be formed")
    if not do_sample:
        ids = z.argmax(axis=-1)
    else:
        z = filter_logits(z / temperature, top_k, top_p)
        p = np.exp(z - z.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        u = rng.random((z.shape[0], 1))                                  # one uniform per row
        ids = np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), z.shape[1] - 1)   # inverse CDF
    return get_backend().asarray(ids.astype(np.int64))
