"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

The update is PyTorch's ``torch.optim.SGD``, step for step (derivations/optim.md):

    d   = g + weight_decay * p                          (weight decay as an L2 gradient)
    buf = d                                             (first step: no dampening)
    buf = momentum * buf + (1 - dampening) * d          (later steps)
    d   = d + momentum * buf    if nesterov    else    d = buf
    p   = p - lr * d

Tests: tests/test_optim.py, tests/test_torch_optim.py.
"""
from __future__ import annotations

from typing import Any

from tinylm.optim.optimizer import Optimizer, check_nonnegative

__all__ = ["SGD"]


class SGD(Optimizer):
    """``SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)``.

    State per parameter: ``momentum_buffer`` (same shape as the parameter), only when
    ``momentum != 0``.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check(self, group: dict[str, Any], where: str) -> None:
        for key in ("lr", "momentum", "dampening", "weight_decay"):
            check_nonnegative(where + key, group[key])
        for key in ("momentum", "dampening"):                # buf grows without bound for momentum > 1
            if group[key] > 1:
                raise ValueError(f"{where}{key}: expected a number in [0, 1], got {group[key]!r}")
        if not isinstance(group["nesterov"], bool):
            raise TypeError(f"{where}nesterov: expected a bool, got {group['nesterov']!r}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{where}nesterov: Nesterov momentum needs momentum > 0 and dampening = 0, "
                             f"got momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    def _init_state(self, xp, p, group):
        return {}   # the momentum buffer is created on the first step, as a copy of d

    def _update(self, xp, p, grad, state, group):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        d = grad
        if group["weight_decay"] != 0:
            d = d + group["weight_decay"] * p.data           # d = g + wd * p  (never changes p.grad)
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()    # buf_1 = d_1
            else:
                buf *= momentum                              # buf_t = momentum * buf_{t-1} + (1 - dampening) * d_t
                buf += (1 - dampening) * d
            d = d + momentum * buf if group["nesterov"] else buf
        p.data -= lr * d                                     # p_t = p_{t-1} - lr * d_t
