"""Argument checks that turn bad input into an error naming the argument, what was expected and
what was received, instead of a silent broadcast or a traceback from deep inside NumPy.

Shapes are given as tuples of symbols, ints or ``None`` (any size)::

    dims = {}
    check_shape("q", q, ("B", "H", "T", "D"), dims)      # binds B, H, T, D
    check_shape("k", k, ("B", "H", "S", "D"), dims)      # must agree on B, H, D
    # ValueError: k: expected shape (B, H, S, D) with B=2, H=4, D=16; got (2, 3, 5, 16) (H=3, not 4)
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from tinylm.backend import to_numpy

__all__ = ["check_shape", "check_float", "check_int", "check_index_range", "check_positive_int",
           "check_probability", "check_choice", "check_lengths", "check_flag", "check_grad",
           "check_positive_float", "check_float_dtype", "check_head_split", "check_config", "is_real"]


def is_real(v: Any) -> bool:
    """A real number: a Python or NumPy int or float, but not a bool (``True`` is an int to Python)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _fmt(spec: Sequence[Any]) -> str:
    parts = ["*" if s is None else str(s) for s in spec]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def check_shape(name: str, x: Any, spec: Sequence[Any], dims: dict[str, int] | None = None) -> dict[str, int]:
    """Check ``x.shape`` against ``spec`` and bind symbolic sizes into ``dims`` (returned).

    ``spec`` may start with ``"..."`` to allow any number of leading dimensions.
    """
    dims = {} if dims is None else dims
    shape = getattr(x, "shape", None)
    if shape is None:
        raise TypeError(f"{name}: expected an array of shape {_fmt(spec)}, got {type(x).__name__}")
    lead = len(spec) > 0 and spec[0] == "..."
    core = list(spec[1:]) if lead else list(spec)
    bound = ", ".join(f"{s}={dims[s]}" for s in core if isinstance(s, str) and s in dims)
    expect = f"expected shape {_fmt(spec)}" + (f" with {bound}" if bound else "")
    if (lead and len(shape) < len(core)) or (not lead and len(shape) != len(core)):
        raise ValueError(f"{name}: {expect}, got shape {tuple(shape)} ({len(shape)} dims, "
                         f"expected {'at least ' if lead else ''}{len(core)})")
    tail = shape[len(shape) - len(core):]
    new: dict[str, int] = {}
    for s, n in zip(core, tail):
        if s is None:
            continue
        if isinstance(s, int):
            if n != s:
                raise ValueError(f"{name}: {expect}, got shape {tuple(shape)} (size {n} where {s} is required)")
        elif s in dims or s in new:
            want = dims.get(s, new.get(s))
            if n != want:
                raise ValueError(f"{name}: {expect}, got shape {tuple(shape)} ({s}={n}, not {want})")
        else:
            new[s] = int(n)
    dims.update(new)
    return dims


def check_float(name: str, x: Any) -> None:
    """``x`` must be a floating-point array."""
    dt = getattr(x, "dtype", None)
    if dt is None or dt.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array (float32 or float64), "
                        f"got {dt if dt is not None else type(x).__name__}")


def check_int(name: str, x: Any) -> None:
    """``x`` must be an integer array (token ids, class targets)."""
    dt = getattr(x, "dtype", None)
    if dt is None or dt.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got {dt if dt is not None else type(x).__name__}")


def check_index_range(name: str, x: Any, high: int, *, ignore: int | None = None, what: str = "ids") -> None:
    """Every entry of integer array ``x`` (except ``ignore``) must lie in ``[0, high)``."""
    check_int(name, x)
    if x.size == 0:
        return
    valid = x if ignore is None else x[x != ignore]
    if valid.size == 0:
        return
    lo, hi = int(valid.min()), int(valid.max())
    if lo < 0 or hi >= high:
        bad = lo if lo < 0 else hi
        extra = f" (or {ignore} to ignore)" if ignore is not None else ""
        raise ValueError(f"{name}: {what} must lie in [0, {high}){extra}, got {bad}")


def check_positive_int(name: str, v: Any) -> int:
    """``v`` must be an int >= 1 (a NumPy integer, e.g. ``ids.max() + 1``, counts); returned as int."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}: expected a positive int, got {v!r}")
    return int(v)


def check_positive_float(name: str, v: Any) -> float:
    """``v`` must be a finite real number > 0 (an ``eps``; NumPy scalars count); returned as float."""
    if not (is_real(v) and math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: expected a positive float, got {v!r}")
    return float(v)


def check_float_dtype(name: str, dtype: Any) -> np.dtype:
    """``dtype`` must name a floating-point dtype (``np.float32``, ``"float64"``, ...); returned as ``np.dtype``.
    Parameters and activations are float: an int dtype would truncate every update to zero."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dtype is None or dt.kind != "f":
        got = repr(dtype) if dt is None or dtype is None else str(dt)
        raise TypeError(f"{name}: expected a floating dtype (float32 or float64), got {got}")
    return dt


def check_head_split(width_name: str, width: int, heads_name: str, heads: int) -> int:
    """Multi-head attention splits a width into ``heads`` equal parts: ``width % heads == 0``.
    Returns the head dimension ``width // heads``."""
    if width % heads:
        raise ValueError(f"{width_name}: must be divisible by {heads_name}={heads} (each head gets "
                         f"{width_name} / {heads_name} features), got {width_name}={width}")
    return width // heads


def check_config(config: Any, cls: type) -> None:
    """A model's ``config`` must be a ``cls`` instance (a dict from config.json is not: say how to build one)."""
    if not isinstance(config, cls):
        hint = f" (build one with {cls.__name__}(**d))" if isinstance(config, dict) else ""
        raise TypeError(f"config: expected a {cls.__name__}, got {type(config).__name__}{hint}")


def check_flag(name: str, v: Any) -> bool:
    """``v`` must be a bool (not merely truthy: ``causal="no"`` is an error, not True)."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {v!r}")
    return bool(v)


def check_grad(name: str, g: Any, shape: Sequence[int], dtype: Any) -> None:
    """An upstream gradient must match what the forward returned: float, exactly ``shape``
    (no broadcast) and exactly ``dtype`` (no silent promotion of a float32 model to float64)."""
    check_float(name, g)
    check_shape(name, g, tuple(shape))
    if g.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)} (the forward's output), got {g.dtype}")


def check_probability(name: str, p: Any, *, allow_one: bool = False) -> float:
    real = is_real(p)
    ok = real and (0.0 <= p <= 1.0 if allow_one else 0.0 <= p < 1.0)
    if not ok:
        raise ValueError(f"{name}: expected a probability in [0, 1{']' if allow_one else ')'}, got {p!r}")
    return float(p)


def check_choice(name: str, v: Any, choices: Sequence[Any]) -> Any:
    if v not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {v!r}")
    return v


def check_lengths(name: str, lengths: Any, max_len: int, batch: int | None = None) -> np.ndarray:
    """Lengths of the sequences in a padded batch: integers in ``[1, max_len]``, shape ``(batch,)``.

    Accepts a list or an array of either backend; returns a host NumPy int64 array (masks are
    built from it, and its range check needs the values on the host anyway).
    """
    arr = to_numpy(lengths)
    check_int(name, arr)
    check_shape(name, arr, ("B",), {} if batch is None else {"B": batch})
    if arr.size and (arr.min() < 1 or arr.max() > max_len):
        bad = int(arr.min()) if arr.min() < 1 else int(arr.max())
        raise ValueError(f"{name}: every length must lie in [1, {max_len}] (the padded length), got {bad}")
    return arr.astype(np.int64)
