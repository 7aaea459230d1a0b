"""L1 and L2 penalties as explicit loss terms, each with the backward that adds its gradient.

Usage, in a training step::

    loss = ce_loss + l2_penalty(decay_params, weight)
    model.backward(dlogits)                       # accumulates the data-loss gradient
    l2_penalty_backward(decay_params, weight)     # accumulates  weight * p  on top
    optimizer.step()

Pass only the parameters to regularize (usually the weight matrices, not biases or norms).

L2 penalty versus weight decay. The penalty ``(weight/2) ||p||^2`` adds ``weight * p`` to the
gradient. That is exactly what ``weight_decay=weight`` does in SGD, Adam and Adagrad, and for
plain SGD it equals shrinking the weights, ``p <- (1 - lr weight) p - lr g``: the two are the
same update. In Adam the added ``weight * p`` is then divided by ``sqrt(v_hat)`` like the rest of
the gradient, so weights with large gradients are decayed less; AdamW instead shrinks the weights
directly, ``p <- (1 - lr wd) p - (Adam step)``, which is *not* any L2 penalty. Use this module
when you want the penalty inside the loss value (to log it, or for a method that needs it) and
the optimizer's ``weight_decay`` otherwise. derivations/optim.md works through both.

Tests: tests/test_optim.py (values, gradients checked by finite differences).
"""
from __future__ import annotations

from tinylm.backend import array_module
from tinylm.nn.module import Parameter
from tinylm.optim.optimizer import check_nonnegative, check_params

__all__ = ["l2_penalty", "l2_penalty_backward", "l1_penalty", "l1_penalty_backward"]


def _params(params) -> list[Parameter]:
    return check_params("params", params)


def l2_penalty(params, weight: float) -> float:
    """``(weight / 2) * sum_p sum_i p_i^2``: the value to add to the loss."""
    check_nonnegative("weight", weight)
    total = 0.0
    for i, p in enumerate(_params(params)):
        xp = array_module((f"params[{i}]", p.data))
        total += float(xp.sum(p.data * p.data))
    return 0.5 * weight * total


def l2_penalty_backward(params, weight: float) -> None:
    """Accumulate ``d/dp (weight/2) ||p||^2 = weight * p`` into each ``p.grad`` (frozen ones skipped)."""
    check_nonnegative("weight", weight)
    for p in _params(params):
        p.accumulate(weight * p.data)


def l1_penalty(params, weight: float) -> float:
    """``weight * sum_p sum_i |p_i|``: the value to add to the loss."""
    check_nonnegative("weight", weight)
    total = 0.0
    for i, p in enumerate(_params(params)):
        xp = array_module((f"params[{i}]", p.data))
        total += float(xp.sum(xp.abs(p.data)))
    return weight * total


def l1_penalty_backward(params, weight: float) -> None:
    """Accumulate ``weight * sign(p)`` into each ``p.grad``: the subgradient, 0 where ``p == 0``."""
    check_nonnegative("weight", weight)
    for i, p in enumerate(_params(params)):
        xp = array_module((f"params[{i}]", p.data))
        p.accumulate(weight * xp.sign(p.data))
