"""Embedding lookup: ``out[...] = weight[ids[...]]``, PyTorch's layout (weight is (V, C)).

The forward is a gather; the backward is the matching scatter-add, where an id that occurs
several times collects the sum of its upstream gradient rows.

Derivation: derivations/embedding.md.  Module: tinylm.nn.embedding.Embedding.
Test: tests/test_ops_embedding.py.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinylm._checks import check_float, check_grad, check_index_range, check_int, check_shape
from tinylm.backend import array_module

__all__ = ["EmbeddingCache", "embedding_forward", "embedding_backward", "scatter_add"]


def scatter_add(target, indices, values):
    """``target[indices[n]] += values[n]`` for every n, in place, repeated indices accumulating.

    Shapes: target (V, ...) float, indices (N,) integer in [0, V) (no negative wrap-around),
    values (N, ...) exactly (N,) + target.shape[1:] (no broadcast) and target's dtype -> target.
    (Plain ``target[indices] += values`` is wrong here: with a repeated index only one of the
    writes survives.) NumPy does it with ``numpy.add.at``, CuPy with ``cupyx.scatter_add``.
    """
    array_module(("target", target), ("indices", indices), ("values", values))
    check_float("target", target)
    if target.ndim < 1:
        raise ValueError(f"target: expected an array of at least 1 dim (V, ...), got shape {tuple(target.shape)}")
    check_int("indices", indices)
    dims = check_shape("indices", indices, ("N",))
    check_index_range("indices", indices, target.shape[0], what="row indices")
    check_float("values", values)
    check_shape("values", values, (dims["N"],) + tuple(target.shape[1:]))
    if values.dtype != target.dtype:
        raise TypeError(f"values: expected dtype {target.dtype} (that of target), got {values.dtype}")
    return _scatter_add(target, indices, values)


def _scatter_add(target, indices, values):
    """``scatter_add`` without the checks, for callers whose indices are already known valid."""
    xp = array_module(("target", target))
    if xp.__name__ == "cupy":
        import cupyx
        cupyx.scatter_add(target, indices, values)
    else:
        xp.add.at(target, indices, values)
    return target


class EmbeddingCache(NamedTuple):
    ids: object               # (...) integer ids: the rows the backward scatters dout into
    weight_shape: tuple       # (V, C), the shape of dweight
    dtype: object             # weight's dtype, the dtype of dweight
    padding_idx: int | None   # a row whose gradient stays zero (PyTorch's padding_idx), or None


def _normalize_padding_idx(padding_idx, V: int):
    """PyTorch's rule: ``padding_idx`` in [-V, V), a negative one counting from the end."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, (int, np.integer)) \
            or not -V <= padding_idx < V:
        raise ValueError(f"padding_idx: expected None or an int in [-{V}, {V}) (V={V}), got {padding_idx!r}")
    return int(padding_idx) % V


def embedding_forward(ids, weight, padding_idx=None):
    """Look up one row of ``weight`` per id.

    Shapes: ids (...) integer in [0, V), weight (V, C) -> out (..., C), weight's dtype.
    ``padding_idx`` (an int in [-V, V) or None) only affects the backward: that row gets zero
    gradient. The forward returns whatever the row holds (``nn.Embedding`` zeroes it at init).
    Returns ``(out, cache)``.
    """
    array_module(("ids", ids), ("weight", weight))
    check_int("ids", ids)
    check_float("weight", weight)
    check_shape("weight", weight, ("V", "C"))
    V = weight.shape[0]
    padding_idx = _normalize_padding_idx(padding_idx, V)
    check_index_range("ids", ids, V)
    out = weight[ids]                                        # (...) -> (..., C)
    return out, EmbeddingCache(ids, tuple(weight.shape), weight.dtype, padding_idx)


def embedding_backward(dout, cache: EmbeddingCache):
    """Gradient of the lookup with respect to ``weight`` (ids are not differentiable).

    Shapes: dout (..., C) -> dweight (V, C).
    """
    ids, (V, C), dtype, padding_idx = cache
    xp = array_module(("dout", dout))
    check_grad("dout", dout, tuple(ids.shape) + (C,), dtype)
    dweight = xp.zeros((V, C), dtype=dtype)                  # rows no id selected get no gradient
    # out[n] = weight[ids[n]]  =>  dweight[v] = sum of dout[n] over every n with ids[n] == v
    _scatter_add(dweight, ids.reshape(-1), dout.reshape(-1, C))  # (N,), (N, C) -> (V, C); ids checked by the forward
    if padding_idx is not None:
        dweight[padding_idx] = 0                             # PyTorch: the padding row is never updated
    return dweight
