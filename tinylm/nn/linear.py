"""``Linear``: PyTorch's ``nn.Linear`` (weight (out, in), bias (out,)) over tinylm.ops.linear,
and ``LinearGELU``: a Linear whose output goes through GELU, computed as one op."""
from __future__ import annotations

import numpy as np

from tinylm._checks import check_choice, check_flag, check_positive_int
from tinylm.nn import init
from tinylm.nn.module import Module, Parameter
from tinylm.ops.activations import GELU_APPROXIMATIONS
from tinylm.ops.linear import linear_backward, linear_forward, linear_gelu_backward, linear_gelu_forward

__all__ = ["Linear", "LinearGELU"]


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
        bias = check_flag("bias", bias)
        self.weight = Parameter(init.fan_in_uniform((out_features, in_features), in_features, dtype, rng))
        self.register_parameter("bias", Parameter(init.fan_in_uniform((out_features,), in_features, dtype, rng))
                                if bias else None)
        self._cache = None

    def forward(self, x):
        y, self._cache = linear_forward(x, self.weight.data, None if self.bias is None else self.bias.data)
        return y

    def backward(self, dy):
        return self._accumulate(*linear_backward(dy, self._need_cache(self._cache)))       # y = x W^T + b

    def _accumulate(self, dx, dweight, dbias):
        """Add the parameter gradients (``Parameter.accumulate``: +=) and pass dx on."""
        self.weight.accumulate(dweight)
        if self.bias is not None:
            self.bias.accumulate(dbias)
        return dx

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class LinearGELU(Linear):
    """``y = gelu(x W^T + b)``: a Linear layer and its GELU as one op (a Transformer MLP's first half).

    Parameters, names and initialisation are Linear's, so checkpoints do not change; the forward
    runs :func:`tinylm.ops.linear.linear_gelu_forward`, which a backend may fuse into one pass
    (bias and GELU applied while each output block is still in cache).
    Shapes: x (..., in_features) -> y (..., out_features).
    ``approximate``: "tanh" (GPT-2's form, fused) or "none" (exact erf form, two ops).
    Derivation: derivations/linear.md (and derivations/activations.md for GELU).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, approximate: str = "tanh",
                 dtype=np.float32, rng=None):
        super().__init__(in_features, out_features, bias, dtype=dtype, rng=rng)
        self.approximate = check_choice("approximate", approximate, GELU_APPROXIMATIONS)

    def forward(self, x):
        y, self._cache = linear_gelu_forward(x, self.weight.data, None if self.bias is None else self.bias.data,
                                             self.approximate)
        return y

    def backward(self, dy):
        return self._accumulate(*linear_gelu_backward(dy, self._need_cache(self._cache)))  # y = gelu(x W^T + b)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, approximate={self.approximate!r}"
