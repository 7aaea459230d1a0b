"""Parameter initialisers. Values are drawn on the host from tinylm's generator (tinylm.random),
then moved to the active backend, so a seed gives the same weights on every backend. ``dtype``
must be a float dtype (checked here, so every layer's ``dtype=`` argument is)."""
from __future__ import annotations

import math

import numpy as np

from tinylm._checks import check_float_dtype
from tinylm.backend import get_backend
from tinylm.random import make_rng

__all__ = ["uniform", "normal", "zeros", "ones", "fan_in_uniform"]


def _to_backend(a: np.ndarray, dtype):
    return get_backend().asarray(a.astype(check_float_dtype("dtype", dtype), copy=False))


def uniform(shape, bound: float, dtype=np.float32, rng=None):
    """U(-bound, bound) of the given shape."""
    return _to_backend(make_rng(rng, name="rng").uniform(-bound, bound, size=shape), dtype)


def normal(shape, std: float, dtype=np.float32, rng=None, mean: float = 0.0):
    """N(mean, std^2) of the given shape."""
    return _to_backend(make_rng(rng, name="rng").normal(mean, std, size=shape), dtype)


def zeros(shape, dtype=np.float32):
    return get_backend().xp.zeros(shape, dtype=check_float_dtype("dtype", dtype))


def ones(shape, dtype=np.float32):
    return get_backend().xp.ones(shape, dtype=check_float_dtype("dtype", dtype))


def fan_in_uniform(shape, fan_in: int, dtype=np.float32, rng=None):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for Linear, Conv and RNN weights
    (``kaiming_uniform_(a=sqrt(5))`` reduces to exactly this bound)."""
    return uniform(shape, 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0, dtype, rng)
