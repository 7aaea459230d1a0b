"""Gradient clipping, PyTorch's ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``.

Call after ``backward`` and before ``optimizer.step()``. Both change ``p.grad`` in place and
skip parameters whose ``grad`` is ``None``.

Formulas: derivations/optim.md.  Tests: tests/test_optim.py, tests/test_torch_optim.py.
"""
from __future__ import annotations

import math
import numbers

from tinylm.backend import array_module
from tinylm.optim.optimizer import check_nonnegative, check_params

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(params) -> list:
    """The ``.grad`` arrays of ``params`` (a Parameter or an iterable of them) that have one."""
    return [p.grad for p in check_params("params", params) if p.grad is not None]


def _norm(xp, a, norm_type: float):
    """The ``norm_type``-norm of ``a`` flattened, as a 0-d array of ``a``'s dtype."""
    if a.size == 0:
        return xp.zeros((), dtype=a.dtype)
    if norm_type == math.inf:
        return xp.abs(a).max()                               # max_i |a_i|
    if norm_type == 2.0:
        return xp.sqrt(xp.sum(a * a))                        # (sum_i a_i^2)^(1/2)
    return xp.sum(xp.abs(a) ** norm_type) ** (1.0 / norm_type)


def clip_grad_norm_(params, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False):
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    ``total = || (||g_1||, ||g_2||, ...) ||`` (the norm of all gradients concatenated), then every
    gradient is multiplied by ``min(1, max_norm / (total + 1e-6))``. ``norm_type`` is ``p > 0``
    or ``math.inf``. Returns ``total`` (before clipping) as a 0-d array of the gradients' dtype,
    kept on the device: ``float(total)`` to log it (on CuPy that waits for the GPU).
    With ``error_if_nonfinite=True`` a nan/inf total raises a ``RuntimeError`` before anything changes.
    """
    check_nonnegative("max_norm", max_norm)
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or not norm_type > 0:
        raise ValueError(f"norm_type: expected a number > 0 or math.inf, got {norm_type!r}")
    norm_type = float(norm_type)
    grads = _grads(params)
    if not grads:
        return 0.0
    xp = array_module(*((f"params[{i}].grad", g) for i, g in enumerate(grads)))
    norms = xp.stack([_norm(xp, g, norm_type) for g in grads])     # one norm per gradient
    total = _norm(xp, norms, norm_type)                             # the norm of all of them together
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total gradient norm is {float(total)}; "
                           f"set error_if_nonfinite=False to clip anyway")
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)               # <= 1: only ever shrinks
    for g in grads:
        g *= coef
    return total


def clip_grad_value_(params, clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place."""
    check_nonnegative("clip_value", clip_value)
    for i, g in enumerate(_grads(params)):
        xp = array_module((f"grad {i}", g))
        xp.clip(g, -clip_value, clip_value, out=g)
