"""Adagrad: per-coordinate learning rates from the running sum of squared gradients.

The update is PyTorch's ``torch.optim.Adagrad``, step for step (derivations/optim.md):

    g   = g + weight_decay * p                     (weight decay as an L2 gradient)
    clr = lr / (1 + (t - 1) * lr_decay)
    s   = s + g^2                                  (s starts at initial_accumulator_value)
    p   = p - clr * g / (sqrt(s) + eps)

Tests: tests/test_optim.py, tests/test_torch_optim.py.
"""
from __future__ import annotations

from typing import Any

from tinylm.optim.optimizer import Optimizer, check_nonnegative

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """``Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10)``.

    State per parameter: ``step`` (int) and ``sum`` (the parameter's shape).
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _check(self, group: dict[str, Any], where: str) -> None:
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_nonnegative(where + key, group[key])

    def _init_state(self, xp, p, group):
        return {"step": 0, "sum": xp.full_like(p.data, group["initial_accumulator_value"])}

    def _update(self, xp, p, grad, state, group):
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data       # g = g + wd p  (never changes p.grad)
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += grad * grad                                       # s_t = s_{t-1} + g_t^2
        p.data -= clr * (grad / (xp.sqrt(s) + group["eps"]))   # p_t = p_{t-1} - clr g_t / (sqrt(s_t) + eps)
