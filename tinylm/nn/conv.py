"""Convolution and pooling over time, (B, C, L) layout: ``Conv1d`` and ``MaxPool1d`` (PyTorch's
names, layouts and defaults), and ``GlobalMaxPool1d`` / ``GlobalAvgPool1d``, which pool a whole
sequence into one vector while ignoring padded positions. Over tinylm.ops.conv.

Derivation: derivations/conv.md.  Tests: tests/test_ops_conv.py, tests/test_torch_conv.py.
"""
from __future__ import annotations

import numpy as np

from tinylm._checks import check_positive_int
from tinylm.nn import init
from tinylm.nn.module import Module, Parameter
from tinylm.ops.conv import (conv1d_backward, conv1d_forward, global_avg_pool1d_backward, global_avg_pool1d_forward,
                             global_max_pool1d_backward, global_max_pool1d_forward, max_pool1d_backward,
                             max_pool1d_forward)

__all__ = ["Conv1d", "MaxPool1d", "GlobalMaxPool1d", "GlobalAvgPool1d"]


class Conv1d(Module):
    """PyTorch's ``nn.Conv1d`` (groups=1, zero padding):
    ``y[:, l] = bias + sum_{c,k} weight[:, c, k] * x_pad[c, l*stride + k*dilation]``.

    ``Conv1d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True)``.
    Shapes: x (B, in_channels, L) -> y (B, out_channels, L_out),
    L_out = floor((L + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1.
    Parameters: ``weight`` (out_channels, in_channels, kernel_size), ``bias`` (out_channels,), both
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels * kernel_size, as in PyTorch.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, bias: bool = True, *, dtype=np.float32, rng=None):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        self.stride = check_positive_int("stride", stride)
        self.dilation = check_positive_int("dilation", dilation)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding: expected a non-negative int, got {padding!r}")
        self.padding = padding
        fan_in = in_channels * kernel_size
        self.weight = Parameter(init.fan_in_uniform((out_channels, in_channels, kernel_size), fan_in, dtype, rng))
        self.register_parameter("bias", Parameter(init.fan_in_uniform((out_channels,), fan_in, dtype, rng))
                                if bias else None)
        self._cache = None

    def forward(self, x):
        y, self._cache = conv1d_forward(x, self.weight.data, None if self.bias is None else self.bias.data,
                                        self.stride, self.padding, self.dilation)
        return y

    def backward(self, dy):
        dx, dweight, dbias = conv1d_backward(dy, self._need_cache(self._cache))   # y = conv1d(x, weight) + bias
        self.weight.accumulate(dweight)
        if self.bias is not None:
            self.bias.accumulate(dbias)
        return dx

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size=({self.kernel_size},), stride=({self.stride},)"
        if self.padding:
            s += f", padding=({self.padding},)"
        if self.dilation != 1:
            s += f", dilation=({self.dilation},)"
        return s + ("" if self.bias is not None else ", bias=False")


class MaxPool1d(Module):
    """PyTorch's ``nn.MaxPool1d(kernel_size, stride=None)`` (no padding, dilation or ceil_mode).

    Shapes: x (B, C, L) -> y (B, C, L_out), L_out = floor((L - kernel_size) / stride) + 1, ``stride``
    defaulting to ``kernel_size``. No parameters.
    """

    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__()
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        self.stride = kernel_size if stride is None else check_positive_int("stride", stride)
        self._cache = None

    def forward(self, x):
        y, self._cache = max_pool1d_forward(x, self.kernel_size, self.stride)
        return y

    def backward(self, dy):
        return max_pool1d_backward(dy, self._need_cache(self._cache))          # y = max_pool1d(x)  (B, C, L)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class GlobalMaxPool1d(Module):
    """Max over time, ignoring padding: ``y[b, c] = max over real l of x[b, c, l]`` (TextCNN's pooling).

    ``forward(x, mask=None, lengths=None)``: x (B, C, L); mask (B, L) bool, True at real positions,
    or lengths (B,) ints in [1, L] (l is real when l < lengths[b]), or neither -> y (B, C).
    ``backward(dy)`` returns dx (B, C, L). No parameters.
    """

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x, mask=None, lengths=None):
        y, self._cache = global_max_pool1d_forward(x, mask, lengths)
        return y

    def backward(self, dy):
        return global_max_pool1d_backward(dy, self._need_cache(self._cache))   # y = max over real l of x  (B, C, L)


class GlobalAvgPool1d(Module):
    """Mean over time, ignoring padding: ``y[b, c] = mean over real l of x[b, c, l]``.

    ``forward(x, mask=None, lengths=None)`` and ``backward(dy)`` as in ``GlobalMaxPool1d``.
    Shapes: x (B, C, L), mask (B, L) or lengths (B,) or neither -> y (B, C); ``backward``: dy (B, C)
    -> dx (B, C, L). No parameters.
    """

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x, mask=None, lengths=None):
        y, self._cache = global_avg_pool1d_forward(x, mask, lengths)
        return y

    def backward(self, dy):
        return global_avg_pool1d_backward(dy, self._need_cache(self._cache))   # y = mean over real l of x  (B, C, L)
