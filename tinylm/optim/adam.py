"""Adam and AdamW.

The updates are PyTorch's ``torch.optim.Adam`` / ``torch.optim.AdamW``, step for step
(derivations/optim.md has the reasoning behind bias correction and decoupled decay):

    p   = p * (1 - lr * weight_decay)                 (AdamW only: decoupled weight decay)
    g   = g + weight_decay * p                        (Adam only: weight decay as an L2 gradient)
    m   = beta1 * m + (1 - beta1) * g                 (first moment, "exp_avg")
    v   = beta2 * v + (1 - beta2) * g^2               (second moment, "exp_avg_sq")
    p   = p - lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)

The difference between the two: Adam's decay term passes through ``1 / sqrt(v)``, so weights
with large gradients are decayed less; AdamW shrinks every weight by the same factor.

Tests: tests/test_optim.py, tests/test_torch_optim.py.
"""
from __future__ import annotations

import math
from typing import Any

from tinylm._checks import is_real
from tinylm.optim.optimizer import Optimizer, check_nonnegative

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)``; weight decay is
    added to the gradient (an L2 penalty). For decoupled decay use :class:`AdamW`.

    State per parameter: ``step`` (int), ``exp_avg`` and ``exp_avg_sq`` (the parameter's shape).
    """

    decoupled_weight_decay = False   # AdamW: True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _check(self, group: dict[str, Any], where: str) -> None:
        for key in ("lr", "eps", "weight_decay"):
            check_nonnegative(where + key, group[key])
        betas = group["betas"]
        if (not isinstance(betas, (tuple, list)) or len(betas) != 2
                or not all(is_real(b) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"{where}betas: expected two numbers in [0, 1), got {betas!r}")

    def _init_state(self, xp, p, group):
        return {"step": 0, "exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}

    def _update(self, xp, p, grad, state, group):
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd != 0:
            if self.decoupled_weight_decay:
                p.data *= 1 - lr * wd                        # AdamW: p = p (1 - lr wd), outside the scaling
            else:
                grad = grad + wd * p.data                    # Adam: g = g + wd p  (never changes p.grad)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1                                           # m_t = beta1 m_{t-1} + (1 - beta1) g_t
        m += (1 - beta1) * grad
        v *= beta2                                           # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        v += (1 - beta2) * (grad * grad)
        bias1 = 1 - beta1 ** t                               # E[m_t] = bias1 E[g]; m_hat = m_t / bias1
        bias2 = 1 - beta2 ** t                               # E[v_t] = bias2 E[g^2]; v_hat = v_t / bias2
        denom = xp.sqrt(v) / math.sqrt(bias2) + eps          # sqrt(v_hat) + eps
        p.data -= (lr / bias1) * (m / denom)                 # p_t = p_{t-1} - lr m_hat / (sqrt(v_hat) + eps)


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)``: Adam with
    decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay`` before the Adam
    step, instead of adding ``weight_decay * p`` to the gradient. Same state as :class:`Adam`.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
