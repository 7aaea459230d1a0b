"""``Linear``: PyTorch's ``nn.Linear`` (weight (out, in), bias (out,)) over tinylm.ops.linear."""
from __future__ import annotations

import numpy as np

from tinylm._checks import check_positive_int
from tinylm.nn import init
from tinylm.nn.module import Module, Parameter
from tinylm.ops.linear import linear_backward, linear_forward

__all__ = ["Linear"]


class Linear(Module):
    """``y = x W^T + b``.

    Shapes: x (..., in_features) -> y (..., out_features).
    Parameters: ``weight`` (out_features, in_features), ``bias`` (out_features,), both
    initialised U(-1/sqrt(in), 1/sqrt(in)) as in PyTorch.
    Derivation: derivations/linear.md.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.weight = Parameter(init.fan_in_uniform((out_features, in_features), in_features, dtype, rng))
        self.register_parameter("bias", Parameter(init.fan_in_uniform((out_features,), in_features, dtype, rng))
                                if bias else None)
        self._cache = None

    def forward(self, x):
        y, self._cache = linear_forward(x, self.weight.data, None if self.bias is None else self.bias.data)
        return y

    def backward(self, dy):
        dx, dweight, dbias = linear_backward(dy, self._need_cache(self._cache))
        self.weight.accumulate(dweight)
        if self.bias is not None:
            self.bias.accumulate(dbias)
        return dx

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
