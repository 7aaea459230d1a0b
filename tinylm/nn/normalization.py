"""``LayerNorm``: PyTorch's ``nn.LayerNorm`` over the last dimension, over tinylm.ops.layernorm."""
from __future__ import annotations

import numpy as np

from tinylm._checks import check_flag, check_positive_float, check_positive_int, check_shape
from tinylm.nn import init
from tinylm.nn.module import Module, Parameter
from tinylm.ops.layernorm import layernorm_backward, layernorm_forward

__all__ = ["LayerNorm"]


def _last_dim(normalized_shape) -> int:
    """An int C or a 1-tuple (C,) -> C. Normalising over several trailing dims is not supported."""
    if isinstance(normalized_shape, (tuple, list)) and len(normalized_shape) == 1:
        normalized_shape = normalized_shape[0]
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape, bool):
        return check_positive_int("normalized_shape", int(normalized_shape))
    raise ValueError(f"normalized_shape: expected an int C or a 1-tuple (C,) (tinylm normalises over "
                     f"the last dimension only), got {normalized_shape!r}")


class LayerNorm(Module):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias``, statistics over the last dimension.

    Shapes: x (..., C) -> y (..., C).
    Parameters: ``weight`` (C,) ones and ``bias`` (C,) zeros, as in PyTorch; both absent when
    ``elementwise_affine=False``, only ``bias`` absent when ``bias=False``.
    Derivation: derivations/layernorm.md.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 *, dtype=np.float32):
        super().__init__()
        C = _last_dim(normalized_shape)
        self.normalized_shape = (C,)
        self.eps = check_positive_float("eps", eps)        # here, not only at the first forward
        self.elementwise_affine = elementwise_affine = check_flag("elementwise_affine", elementwise_affine)
        bias = check_flag("bias", bias)
        self.register_parameter("weight", Parameter(init.ones((C,), dtype)) if elementwise_affine else None)
        self.register_parameter("bias", Parameter(init.zeros((C,), dtype)) if elementwise_affine and bias else None)
        self._cache = None

    def forward(self, x):
        # Checked here too: without weight the op has nothing to compare x's last dimension with.
        check_shape("x", x, ("...", self.normalized_shape[0]))
        y, self._cache = layernorm_forward(x, None if self.weight is None else self.weight.data,
                                           None if self.bias is None else self.bias.data, self.eps)
        return y

    def backward(self, dy):
        dx, dweight, dbias = layernorm_backward(dy, self._need_cache(self._cache))   # y = layernorm(x) * weight + bias
        if self.weight is not None:
            self.weight.accumulate(dweight)
        if self.bias is not None:
            self.bias.accumulate(dbias)
        return dx

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
