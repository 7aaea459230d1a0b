"""Losses: cross-entropy (with ignore_index and label smoothing), binary cross-entropy on logits,
and mean squared error, with PyTorch's semantics and reductions.

Every loss computes one value per element, ``l`` of shape (...), then reduces it:
``"none"`` returns ``l``; ``"sum"`` returns ``sum(l)``; ``"mean"`` returns ``sum(l) / n``, where n
counts the non-ignored targets (cross-entropy) or all elements (BCE, MSE). As in PyTorch, a mean
over zero elements is NaN (and its gradient is zero). Reduced losses are 0-d arrays.
The backward returns the gradient with respect to the logits (predictions) only: targets and
``pos_weight`` are data, not trained.

Shapes: V classes; (...) any leading dims, flattened to N rows where convenient.
Derivation: derivations/losses.md.  Modules: tinylm.nn.loss.  Test: tests/test_ops_losses.py
(PyTorch cross-check: tests/test_torch_losses.py).
"""
from __future__ import annotations

from typing import NamedTuple

from tinylm._checks import (check_choice, check_float, check_grad, check_index_range, check_int,
                            check_probability, check_shape)
from tinylm.backend import array_module
from tinylm.ops.activations import sigmoid
from tinylm.ops.softmax import log_softmax

__all__ = ["REDUCTIONS", "CrossEntropyCache", "BCEWithLogitsCache", "MSECache",
           "cross_entropy_forward", "cross_entropy_backward", "bce_with_logits_forward",
           "bce_with_logits_backward", "mse_forward", "mse_backward"]

REDUCTIONS = ("mean", "sum", "none")


def _reduce(losses, reduction: str, count: int, xp):
    """Reduce per-element ``losses`` (...); ``"mean"`` divides by ``count`` (NaN when 0, as PyTorch)."""
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "mean":
        total = total / count if count > 0 else xp.nan
    return xp.asarray(total, dtype=losses.dtype)     # a 0-d array, whatever the backend's sum returns


def _upstream(dloss, reduction: str, count: int, shape: tuple, dtype):
    """``dL/dl`` for each per-element loss, from the gradient ``dloss`` of the reduced loss:
    ``dloss`` itself ("none", shape (...)), or the 0-d ``dloss`` ("sum") or ``dloss / count`` ("mean").
    ``dloss`` must be float of the loss's dtype (``dtype``), with exactly the loss's shape."""
    array_module(("dloss", dloss))
    check_grad("dloss", dloss, shape if reduction == "none" else (), dtype)
    if reduction == "none":
        return dloss
    return dloss / max(count, 1) if reduction == "mean" else dloss   # count 0: every l_i ignored anyway


def _check_same(name: str, x, ref_name: str, ref) -> None:
    """``x`` must have exactly ``ref``'s shape and dtype: no broadcast, no silent promotion."""
    check_shape(name, x, tuple(ref.shape))
    if x.dtype != ref.dtype:
        raise TypeError(f"{name}: expected dtype {ref.dtype} (that of {ref_name}), got {x.dtype}")


# --- cross-entropy -----------------------------------------------------------------------------

class CrossEntropyCache(NamedTuple):
    logp: object            # (..., V) log-softmax of the logits; the backward needs p = exp(logp)
    target: object          # (...) class ids, ignored positions replaced by 0 so they can index
    valid: object           # (...) bool, target != ignore_index: ignored positions get no gradient
    label_smoothing: float  # eps: the target distribution is q = (1 - eps) onehot + eps / V
    reduction: str          # "mean", "sum" or "none"
    count: int              # number of valid targets, the divisor of "mean"


def cross_entropy_forward(logits, target, ignore_index: int = -100, label_smoothing: float = 0.0,
                          reduction: str = "mean"):
    """Cross-entropy of ``softmax(logits)`` against class ids ``target``, as ``F.cross_entropy``.

    Per position: ``l = -sum_c q_c log p_c`` with ``p = softmax(logits)`` and the smoothed target
    ``q = (1 - label_smoothing) onehot(target) + label_smoothing / V``; ``l = 0`` where
    ``target == ignore_index``. Unlike PyTorch the class axis is the LAST one.

    Shapes: logits (..., V) float, target (...) integer in [0, V) or ``ignore_index``
    -> loss () for "mean"/"sum", (...) for "none", dtype of logits.  Returns ``(loss, cache)``.
    """
    xp = array_module(("logits", logits), ("target", target))
    check_float("logits", logits)
    check_shape("logits", logits, ("...", "V"))
    check_int("target", target)
    check_shape("target", target, tuple(logits.shape[:-1]))
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index: expected an int, got {ignore_index!r}")
    eps = check_probability("label_smoothing", label_smoothing, allow_one=True)
    check_choice("reduction", reduction, REDUCTIONS)
    V = logits.shape[-1]
    check_index_range("target", target, V, ignore=ignore_index, what="class ids")

    valid = target != ignore_index                                   # (...)
    t = xp.where(valid, target, 0)                                   # (...) a safe index everywhere
    logp = log_softmax(logits, axis=-1)                              # (..., V)
    losses = -xp.take_along_axis(logp, t[..., None], axis=-1)[..., 0]    # -log p_t        (..., V) -> (...)
    if eps > 0:                                                      # (skipped at 0: 0 * -inf is NaN)
        uniform = -logp.sum(axis=-1) / V                             # -mean_c log p_c  (..., V) -> (...)
        losses = (1 - eps) * losses + eps * uniform
    losses = xp.where(valid, losses, 0)                              # where, not *: 0 * inf is NaN
    count = int(valid.sum())
    return _reduce(losses, reduction, count, xp), CrossEntropyCache(logp, t, valid, eps, reduction, count)


def cross_entropy_backward(dloss, cache: CrossEntropyCache):
    """Shapes: dloss () for "mean"/"sum", (...) for "none" -> dlogits (..., V)."""
    logp, t, valid, eps, reduction, count = cache
    xp = array_module(("dloss", dloss))
    V = logp.shape[-1]
    dl = _upstream(dloss, reduction, count, tuple(valid.shape), logp.dtype)   # () or (...)
    dl = xp.where(valid, dl, 0)                                      # (...) 0 where ignored
    dlogits = xp.exp(logp) - eps / V                                 # p - eps/V                  (..., V)
    rows = dlogits.reshape(-1, V)                                    # (N, V), a view
    rows[xp.arange(rows.shape[0]), t.reshape(-1)] -= 1 - eps         # ... - (1 - eps) onehot  =  p - q
    return dlogits * dl[..., None]                                   # l = -sum_c q_c log p_c  =>  dz = dl (p - q)


# --- binary cross-entropy on logits ------------------------------------------------------------

class BCEWithLogitsCache(NamedTuple):
    logits: object          # (...) x: the backward recomputes sigmoid(x)
    target: object          # (...) y in [0, 1]
    pos_weight: object      # (C,) weight of the positive term per class (last axis), or None
    reduction: str          # "mean", "sum" or "none"


def bce_with_logits_forward(logits, target, reduction: str = "mean", pos_weight=None):
    """Binary cross-entropy of ``sigmoid(logits)`` against probabilities ``target``, as
    ``F.binary_cross_entropy_with_logits``:

    ``l = -[pos_weight y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]``, computed stably as
    ``(1 - y) x + (1 + (pos_weight - 1) y) softplus(-x)``, ``softplus(-x) = max(-x, 0) + log1p(exp(-|x|))``.

    ``target`` must lie in [0, 1] (checked: a label of 2 or -1 would give a finite, meaningless loss).

    Shapes: logits (...) float, target (...) same shape and dtype (no broadcast), pos_weight
    (C,) with C = logits.shape[-1] (one weight per class, broadcast along the last axis) or None
    -> loss () for "mean"/"sum", (...) for "none".  Returns ``(loss, cache)``.
    """
    xp = array_module(("logits", logits), ("target", target), ("pos_weight", pos_weight))
    check_float("logits", logits)
    check_float("target", target)
    _check_same("target", target, "logits", logits)
    if pos_weight is not None:
        check_float("pos_weight", pos_weight)
        check_shape("logits", logits, ("...", "C"))
        check_shape("pos_weight", pos_weight, (logits.shape[-1],))
        if pos_weight.dtype != logits.dtype:
            raise TypeError(f"pos_weight: expected dtype {logits.dtype} (that of logits), got {pos_weight.dtype}")
    check_choice("reduction", reduction, REDUCTIONS)
    if target.size:
        lo, hi = float(target.min()), float(target.max())                # a NaN makes both NaN
        if not (lo >= 0.0 and hi <= 1.0):
            bad = lo if not lo >= 0.0 else hi
            raise ValueError(f"target: expected probabilities in [0, 1], got {bad!r}")
    x, y = logits, target
    softplus = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))      # log(1 + e^{-x}) = -log sigmoid(x)
    weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * y   # (...) the factor of -log sigmoid(x)
    losses = (1 - y) * x + weight * softplus                         # (...)
    return _reduce(losses, reduction, losses.size, xp), BCEWithLogitsCache(x, y, pos_weight, reduction)


def bce_with_logits_backward(dloss, cache: BCEWithLogitsCache):
    """Shapes: dloss () for "mean"/"sum", (...) for "none" -> dlogits (...)."""
    x, y, pos_weight, reduction = cache
    dl = _upstream(dloss, reduction, x.size, tuple(x.shape), x.dtype)         # () or (...)
    if pos_weight is None:
        return dl * (sigmoid(x) - y)                                 # l = (1-y) x + sp(-x)  =>  dx = sigmoid(x) - y
    weight = 1 + (pos_weight - 1) * y
    return dl * (weight * sigmoid(x) - pos_weight * y)               # dx = (1-y) - weight (1 - sigmoid(x))


# --- mean squared error ------------------------------------------------------------------------

class MSECache(NamedTuple):
    diff: object            # (...) pred - target, the whole gradient up to a factor 2
    reduction: str          # "mean", "sum" or "none"


def mse_forward(pred, target, reduction: str = "mean"):
    """Squared error ``l = (pred - target)^2``, reduced as ``F.mse_loss``.

    Shapes: pred (...) float, target (...) same shape and dtype (no broadcast)
    -> loss () for "mean"/"sum", (...) for "none".  Returns ``(loss, cache)``.
    """
    xp = array_module(("pred", pred), ("target", target))
    check_float("pred", pred)
    check_float("target", target)
    _check_same("target", target, "pred", pred)
    check_choice("reduction", reduction, REDUCTIONS)
    diff = pred - target                                             # (...)
    return _reduce(diff * diff, reduction, diff.size, xp), MSECache(diff, reduction)


def mse_backward(dloss, cache: MSECache):
    """Shapes: dloss () for "mean"/"sum", (...) for "none" -> dpred (...)."""
    diff, reduction = cache
    dl = _upstream(dloss, reduction, diff.size, tuple(diff.shape), diff.dtype)
    return dl * 2 * diff                                             # l = diff^2  =>  dpred = 2 diff
