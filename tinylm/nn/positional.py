"""Positional encodings added to token embeddings x (B, T, C):

* :class:`SinusoidalPositionalEncoding` (Vaswani et al. 2017), fixed, no parameters;
* :class:`LearnedPositionalEmbedding`, one trained vector per position (GPT-2's ``wpe``, BERT's
  ``position_embeddings``), parameter ``weight`` (max_len, C).

Both take ``offset``: the position of x's first token, so that KV-cache decoding, which feeds
only the new tokens, gives them their true positions. Derivation of both backwards:
derivations/embedding.md (Positional embeddings). Test: tests/test_nn_attention.py.
"""
from __future__ import annotations

import numpy as np

from tinylm._checks import check_float, check_positive_int, check_shape
from tinylm.backend import array_module, get_backend
from tinylm.nn import init
from tinylm.nn.module import Module, Parameter

__all__ = ["SinusoidalPositionalEncoding", "LearnedPositionalEmbedding", "sinusoidal_table"]


def sinusoidal_table(max_len: int, d_model: int) -> np.ndarray:
    """The (max_len, d_model) float64 table PE[pos, 2i] = sin(pos w_i), PE[pos, 2i+1] = cos(pos w_i),
    w_i = 10000^(-2i/d_model). For odd d_model the last column is a sine."""
    pos = np.arange(max_len, dtype=np.float64)[:, None]                       # (max_len, 1)
    freq = 10000.0 ** (-np.arange(0, d_model, 2, dtype=np.float64) / d_model)  # (ceil(C/2),)
    pe = np.zeros((max_len, d_model))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq[: d_model // 2])
    return pe


def _check_positions(owner: Module, x, offset, max_len: int, d_model: int) -> int:
    """Validate x (B, T, C) and offset; return T."""
    check_float("x", x)
    T = check_shape("x", x, ("B", "T", "C"), {"C": d_model})["T"]
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
        raise ValueError(f"offset: expected a non-negative int, got {offset!r}")
    if offset + T > max_len:
        raise ValueError(f"x: positions {offset}..{offset + T - 1} (offset {offset} + sequence length {T}) "
                         f"exceed max_len={max_len} of {type(owner).__name__}; construct it with a larger max_len")
    return T


class SinusoidalPositionalEncoding(Module):
    """``y = x + PE[offset : offset + T]`` with the fixed sinusoidal table (no parameters).

    Shapes: x (B, T, C) with C = d_model -> y (B, T, C). The table is kept in float64 and cast to
    x's dtype. ``backward(dout)`` returns dout: the encoding is a constant.
    """

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.max_len = check_positive_int("max_len", max_len)
        self.pe = get_backend().asarray(sinusoidal_table(max_len, d_model))   # a constant, not a Parameter
        self._shape = None

    def forward(self, x, offset: int = 0):
        array_module(("x", x))
        T = _check_positions(self, x, offset, self.max_len, self.d_model)
        self._shape = tuple(x.shape)
        return x + self.pe[offset:offset + T].astype(x.dtype, copy=False)     # (B,T,C) + (T,C)

    def backward(self, dout):
        check_shape("dout", dout, self._need_cache(self._shape))
        return dout                                                           # y = x + const  =>  dx = dy

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(Module):
    """``y = x + weight[offset : offset + T]``, one learned vector per position.

    Shapes: x (B, T, C) with C = d_model -> y (B, T, C). Parameter ``weight`` (max_len, d_model),
    initialised N(0, 1) as ``nn.Embedding`` (GPT-2 and BERT re-initialise it N(0, 0.02)).
    ``backward(dout)`` returns dx = dout and accumulates the batch sum of dout into rows
    offset..offset+T-1 of ``weight.grad`` (the other rows get zero).
    """

    def __init__(self, max_len: int, d_model: int, *, dtype=np.float32, rng=None):
        super().__init__()
        self.max_len = check_positive_int("max_len", max_len)
        self.d_model = check_positive_int("d_model", d_model)
        self.weight = Parameter(init.normal((max_len, d_model), 1.0, dtype, rng))
        self._cache = None

    def forward(self, x, offset: int = 0):
        array_module(("x", x))
        T = _check_positions(self, x, offset, self.max_len, self.d_model)
        if x.dtype != self.weight.dtype:
            raise TypeError(f"x: dtype {x.dtype} differs from weight's {self.weight.dtype}; "
                            f"cast the input or the module (.to(dtype))")
        self._cache = (tuple(x.shape), offset)
        return x + self.weight.data[offset:offset + T]                        # (B,T,C) + (T,C)

    def backward(self, dout):
        shape, offset = self._need_cache(self._cache)                         # shape: x's (B, T, C)
        xp = array_module(("dout", dout))
        check_shape("dout", dout, shape)
        dweight = xp.zeros(self.weight.shape, dtype=self.weight.dtype)        # (max_len, C): unused rows get 0
        dweight[offset:offset + shape[1]] = dout.sum(axis=0)                  # y = x + W[t]  =>  dW[t] = sum_b dy[b,t]
        self.weight.accumulate(dweight)
        return dout                                                           # y = x + W[t]  =>  dx = dy

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}"
