"""The NaN guard: one check per training step that the loss is a finite number.

Training loops call ``check_finite(loss, step)`` once per step, right after the forward pass.
Checking every op instead would cost a host sync per op; one per step catches a divergence
within a step of its start, before the optimizer writes nan into the weights.

Tests: tests/test_optim.py.
"""
from __future__ import annotations

import math
import numbers

__all__ = ["NonFiniteLossError", "check_finite"]

_HINT = ("usual causes: a learning rate too high for the model (lower it, or lengthen the warm-up), "
         "exploding gradients (clip them with tinylm.optim.clip_grad_norm_), nan/inf in the input batch, "
         "or float16 overflow (train in float32). Resume from the last checkpoint after fixing it.")


class NonFiniteLossError(FloatingPointError):
    """The loss became nan or +-inf; ``.loss`` and ``.step`` say which and when."""

    def __init__(self, loss: float, step: int):
        self.loss, self.step = loss, step
        super().__init__(f"loss is {loss} at step {step}; {_HINT}")


def check_finite(loss, step: int) -> float:
    """Return ``loss`` as a float, or raise :class:`NonFiniteLossError` if it is nan or inf.

    ``loss`` is a Python number or a one-element array (NumPy or CuPy; reading a CuPy value
    waits for the GPU, once per step).
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step: expected an int, got {step!r}")
    size = getattr(loss, "size", 1)
    if size != 1 or isinstance(loss, (str, bytes)):
        raise TypeError(f"loss: expected a scalar, got {type(loss).__name__} of size {size}")
    if hasattr(loss, "dtype") and loss.dtype.kind not in "fiu":
        raise TypeError(f"loss: expected a real number, got an array of dtype {loss.dtype}")
    if not hasattr(loss, "dtype") and (isinstance(loss, bool) or not isinstance(loss, numbers.Real)):
        raise TypeError(f"loss: expected a real number or a one-element array, got {loss!r}")
    value = float(loss.item() if hasattr(loss, "item") else loss)
    if not math.isfinite(value):
        raise NonFiniteLossError(value, step)
    return value
