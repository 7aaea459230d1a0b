"""``Embedding``: PyTorch's ``nn.Embedding`` (weight (V, C)) over tinylm.ops.embedding."""
from __future__ import annotations

import numpy as np

from tinylm._checks import check_positive_int
from tinylm.nn import init
from tinylm.nn.module import Module, Parameter
from tinylm.ops.embedding import _normalize_padding_idx, embedding_backward, embedding_forward

__all__ = ["Embedding"]


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``; ``out = weight[ids]``.

    Shapes: ids (...) integer in [0, V) -> out (..., C), with V = num_embeddings, C = embedding_dim.
    Parameter: ``weight`` (V, C), initialised N(0, 1) as in PyTorch. With ``padding_idx`` (an int
    in [-V, V), negative counting from the end) that row starts at zero and never gets gradient.
    ``backward`` returns None: ids are not differentiable.
    Derivation: derivations/embedding.md.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 *, dtype=np.float32, rng=None):
        super().__init__()
        self.num_embeddings = check_positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.padding_idx = _normalize_padding_idx(padding_idx, num_embeddings)  # non-negative, as PyTorch
        weight = init.normal((num_embeddings, embedding_dim), 1.0, dtype, rng)
        if self.padding_idx is not None:
            weight[self.padding_idx] = 0
        self.weight = Parameter(weight)
        self._cache = None

    def forward(self, ids):
        out, self._cache = embedding_forward(ids, self.weight.data, self.padding_idx)
        return out

    def backward(self, dout):
        self.weight.accumulate(embedding_backward(dout, self._need_cache(self._cache)))   # out = weight[ids]  (V, C)
        return None

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
