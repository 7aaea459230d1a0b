"""Loss modules, PyTorch's ``nn.CrossEntropyLoss``, ``nn.BCEWithLogitsLoss`` and ``nn.MSELoss``, over
tinylm.ops.losses. None has parameters.

``loss = crit(logits, target)`` returns a Python float (reduction "none": the per-element array);
``crit.backward(dloss=1.0)`` returns the gradient with respect to the logits, scaled by ``dloss``
(reduction "none": ``dloss`` is an array of the loss's shape and dtype, like any upstream gradient;
a reduced loss's scalar ``dloss``, a number or a 0-d array, is converted to the logits' dtype).
Derivation: derivations/losses.md.
"""
from __future__ import annotations

import numbers

from tinylm._checks import check_choice, check_float, check_probability, check_shape
from tinylm.backend import get_backend
from tinylm.nn.module import Module
from tinylm.ops.losses import (REDUCTIONS, bce_with_logits_backward, bce_with_logits_forward, cross_entropy_backward,
                               cross_entropy_forward, mse_backward, mse_forward)

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss"]


class _Loss(Module):
    """What the three losses share: the reduction, the float result, the ``dloss`` argument."""

    def __init__(self, reduction: str):
        super().__init__()
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self._cache = None
        self._dtype = None       # dtype of the last logits, for dloss

    def _result(self, loss, logits):
        self._dtype = logits.dtype
        return loss if self.reduction == "none" else float(loss)

    def _dloss(self, dloss):
        """``dloss`` as the op's backward wants it. Reduced: a number or 0-d array, converted to the
        logits' dtype. "none": passed on as it is; the op checks its shape and dtype exactly."""
        self._need_cache(self._cache)
        if self.reduction == "none":
            if not hasattr(dloss, "shape"):
                raise TypeError(f"dloss: with reduction='none' the loss is an array, so dloss must be an array "
                                f"of its shape (the upstream gradient of each element), got {dloss!r}")
            return dloss
        if hasattr(dloss, "shape"):                          # an array: 0-d, converted to the loss's dtype
            check_shape("dloss", dloss, ())
        elif isinstance(dloss, bool) or not isinstance(dloss, numbers.Real):
            raise TypeError(f"dloss: expected a real number (the upstream gradient of the reduced loss), "
                            f"got {dloss!r}")
        return get_backend().xp.asarray(dloss, dtype=self._dtype)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Cross-entropy of ``softmax(logits)`` against class ids: logits (..., V), target (...) integer.

    Class axis LAST (PyTorch's is axis 1). ``ignore_index`` positions count for nothing;
    ``label_smoothing`` mixes the one-hot target with the uniform distribution over the V classes.
    Shapes: logits (..., V), target (...) -> loss float ("none": (...)); ``backward``: dloss () ("none": (...))
    -> dlogits (..., V).
    """

    def __init__(self, ignore_index: int = -100, label_smoothing: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(f"ignore_index: expected an int, got {ignore_index!r}")
        self.ignore_index = ignore_index
        self.label_smoothing = check_probability("label_smoothing", label_smoothing, allow_one=True)

    def forward(self, logits, target):
        loss, self._cache = cross_entropy_forward(logits, target, self.ignore_index, self.label_smoothing,
                                                  self.reduction)
        return self._result(loss, logits)

    def backward(self, dloss=1.0):
        return cross_entropy_backward(self._dloss(dloss), self._cache)       # loss = CE(logits, target)  (..., V)

    def extra_repr(self) -> str:
        return (f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, "
                f"reduction={self.reduction!r}")


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of ``sigmoid(logits)`` against probabilities: logits and target (...),
    same shape and dtype; ``pos_weight`` (C,) weighs the positive term of each class (last axis).
    Shapes: logits, target (...) -> loss float ("none": (...)); ``backward``: dloss () ("none": (...))
    -> dlogits (...).
    """

    def __init__(self, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction)
        if pos_weight is not None:
            check_float("pos_weight", pos_weight)
            check_shape("pos_weight", pos_weight, ("C",))     # one weight per class (last axis of the logits)
        self.pos_weight = pos_weight      # data, not a Parameter (PyTorch keeps it as a buffer)

    def forward(self, logits, target):
        pw = self.pos_weight
        if pw is not None:
            pw = pw.astype(logits.dtype, copy=False)     # a constant, like a buffer: follow the logits' dtype
        loss, self._cache = bce_with_logits_forward(logits, target, self.reduction, pw)
        return self._result(loss, logits)

    def backward(self, dloss=1.0):
        return bce_with_logits_backward(self._dloss(dloss), self._cache)   # loss = BCE(sigmoid(logits), target)  (...)


class MSELoss(_Loss):
    """Squared error ``(pred - target)^2``: pred and target (...), same shape and dtype.

    Shapes: pred, target (...) -> loss float ("none": (...)); ``backward``: dloss () ("none": (...))
    -> dpred (...).
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)

    def forward(self, pred, target):
        loss, self._cache = mse_forward(pred, target, self.reduction)
        return self._result(loss, pred)

    def backward(self, dloss=1.0):
        return mse_backward(self._dloss(dloss), self._cache)                 # loss = (pred - target)^2  (...)
