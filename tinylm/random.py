"""Seeding: the one way to make a tinylm run reproducible bit for bit.

Call ``tinylm.manual_seed(seed)`` once at the start. It re-seeds the process-wide NumPy
``Generator`` that parameter initialisation, dropout masks, data shuffling and sampling draw
from when no explicit ``rng``/``seed`` is passed. Random numbers are always drawn on the host
(NumPy's PCG64) and then moved to the active backend, so the same seed gives the same weights
on every backend. On one machine, a float32 run is then repeatable bit for bit; across machines
BLAS may sum in a different order, so expect agreement to rounding, not to the bit.
"""
from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "default_rng", "make_rng", "module_rng"]

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Re-seed tinylm's global generator and return it."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _rng = np.random.default_rng(int(seed))
    return _rng


def default_rng() -> np.random.Generator:
    """The global generator (what ``manual_seed`` seeded)."""
    return _rng


def make_rng(seed_or_rng=None, name: str = "seed") -> np.random.Generator:
    """``None`` -> the global generator; an int -> a fresh generator with that seed; a Generator -> itself.

    ``name`` is the caller's argument name, for the error (``make_rng(rng, name="rng")``)."""
    if seed_or_rng is None:
        return _rng
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    if isinstance(seed_or_rng, (int, np.integer)) and not isinstance(seed_or_rng, bool) and seed_or_rng >= 0:
        return np.random.default_rng(int(seed_or_rng))
    raise TypeError(f"{name}: expected None, a non-negative int or a numpy Generator, got {seed_or_rng!r}")


def module_rng(rng=None, name: str = "rng") -> np.random.Generator | None:
    """The generator a module (and all its submodules) draws from, made ONCE in its constructor.

    ``None`` stays None: the module then follows tinylm's global generator, so ``manual_seed``
    still governs it. An int becomes one Generator seeded with it, to be handed to every submodule:
    handing the int itself down would give each layer a fresh generator with the same seed, so
    same-shaped layers would start with identical weights and every Dropout draw identical masks.
    A Generator is used as it is.
    """
    return None if rng is None else make_rng(rng, name=name)
