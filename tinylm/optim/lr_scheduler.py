"""Learning-rate schedules: each sets ``optimizer.param_groups[i]["lr"]`` from a step count.

=================  ==========================================================================
StepLR             ``base * gamma ** (step // step_size)``
CosineWithWarmup   linear from 0 to ``base`` over ``warmup_steps``, then a half cosine from
                   ``base`` down to ``min_lr`` at ``total_steps``, then ``min_lr`` (nanoGPT's shape)
LinearDecay        linear from 0 to ``base`` over ``warmup_steps``, then linear from ``base`` down
                   to ``base * end_factor`` at ``total_steps``, then constant
=================  ==========================================================================

Usage, in PyTorch's order (the optimizer steps, then the schedule)::

    sched = CosineWithWarmup(opt, warmup_steps=100, total_steps=5000, min_lr=3e-5)
    for step in range(5000):
        ...                                  # forward, backward; this step uses sched.get_last_lr()
        opt.step()
        sched.step()

A schedule is a pure function of the step: ``lr_at(step)`` returns every group's learning rate at
``step`` without changing anything; ``step()`` advances ``last_step`` by one and writes
``lr_at(last_step)`` into the groups. Constructing a schedule applies step 0. A group's base rate
is its ``lr`` when the first schedule was attached, kept in the group as ``"initial_lr"`` (as in
PyTorch), so it survives ``optimizer.state_dict()``. Unlike PyTorch's chainable schedulers, two
schedules on one optimizer do not compose: whichever stepped last set the rate.

Formulas: derivations/optim.md.  Tests: tests/test_lr_scheduler.py, tests/test_torch_optim.py.
"""
from __future__ import annotations

import math
from typing import Any

from tinylm._checks import check_positive_int
from tinylm.optim.optimizer import check_nonnegative

__all__ = ["LRScheduler", "StepLR", "CosineWithWarmup", "LinearDecay"]


def _check_step(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{name}: expected an int >= 0, got {v!r}")
    return v


class LRScheduler:
    """Base class: subclasses define ``_lr(step, base_lr) -> float``; see the module docstring."""

    def __init__(self, optimizer):
        groups = getattr(optimizer, "param_groups", None)
        if not isinstance(groups, list):
            raise TypeError(f"optimizer: expected a tinylm optimizer (with param_groups), "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in groups]
        self.last_step = 0
        self._apply()

    def _lr(self, step: int, base_lr: float) -> float:
        raise NotImplementedError

    def lr_at(self, step: int) -> list[float]:
        """The learning rate of every parameter group at ``step`` (changes nothing)."""
        _check_step("step", step)
        return [self._lr(step, base) for base in self.base_lrs]

    def step(self) -> None:
        """Advance one step and set every group's ``lr`` to ``lr_at(last_step)``."""
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rates the schedule set last (one per group)."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """``{"last_step": int, "base_lrs": [float, ...]}``; the shape of the schedule comes from its constructor."""
        return {"last_step": self.last_step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state["last_step"]`` (and re-apply its learning rates to the optimizer)."""
        if not isinstance(state, dict) or set(state) != {"last_step", "base_lrs"}:
            raise TypeError("load_state_dict: expected a dict with keys 'last_step' and 'base_lrs' "
                            "(from a schedule's state_dict())")
        last_step = _check_step("load_state_dict: last_step", state["last_step"])
        base_lrs = [check_nonnegative("load_state_dict: base_lrs", b) for b in state["base_lrs"]]
        if len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"load_state_dict: the state has {len(base_lrs)} base learning rates, "
                             f"the optimizer has {len(self.optimizer.param_groups)} parameter groups")
        self.last_step, self.base_lrs = last_step, base_lrs
        self._apply()

    def _apply(self) -> None:
        self._last_lr = self.lr_at(self.last_step)
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


class StepLR(LRScheduler):
    """``lr = base * gamma ** (step // step_size)``: multiply by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = check_positive_int("step_size", step_size)
        self.gamma = check_nonnegative("gamma", gamma)
        super().__init__(optimizer)

    def _lr(self, step, base_lr):
        return base_lr * self.gamma ** (step // self.step_size)


class CosineWithWarmup(LRScheduler):
    """Linear warm-up from 0, then cosine decay to ``min_lr`` (an absolute rate, the same for every group).

    ``lr(s) = base * s / W`` for ``s < W``; ``min_lr + (base - min_lr) * (1 + cos(pi * (s - W) / (S - W))) / 2``
    for ``W <= s < S``; ``min_lr`` for ``s >= S`` (``W = warmup_steps``, ``S = total_steps``).
    """

    def __init__(self, optimizer, warmup_steps: int, total_steps: int, min_lr: float = 0.0):
        self.total_steps = check_positive_int("total_steps", total_steps)
        self.warmup_steps = _check_step("warmup_steps", warmup_steps)
        if warmup_steps > total_steps:
            raise ValueError(f"warmup_steps: expected at most total_steps={total_steps}, got {warmup_steps}")
        self.min_lr = check_nonnegative("min_lr", min_lr)
        super().__init__(optimizer)
        for i, base in enumerate(self.base_lrs):             # else the "decay" would rise towards min_lr
            if self.min_lr > base:
                raise ValueError(f"min_lr: expected at most every group's base lr, got {min_lr!r} > "
                                 f"param_groups[{i}] lr {base!r}")

    def _lr(self, step, base_lr):
        if step < self.warmup_steps:
            return base_lr * step / self.warmup_steps                                 # 0 -> base
        if step >= self.total_steps:
            return self.min_lr
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)  # 0 -> 1
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class LinearDecay(LRScheduler):
    """Linear warm-up from 0 (if ``warmup_steps > 0``), then linear decay to ``base * end_factor``.

    ``lr(s) = base * s / W`` for ``s < W``; ``base * (e + (1 - e) * (S - s) / (S - W))`` for
    ``W <= s < S``; ``base * e`` for ``s >= S`` (``W = warmup_steps``, ``S = total_steps``, ``e = end_factor``).
    """

    def __init__(self, optimizer, total_steps: int, warmup_steps: int = 0, end_factor: float = 0.0):
        self.total_steps = check_positive_int("total_steps", total_steps)
        self.warmup_steps = _check_step("warmup_steps", warmup_steps)
        if warmup_steps > total_steps:
            raise ValueError(f"warmup_steps: expected at most total_steps={total_steps}, got {warmup_steps}")
        self.end_factor = check_nonnegative("end_factor", end_factor)
        if self.end_factor > 1:
            raise ValueError(f"end_factor: expected a number in [0, 1] (the final lr as a fraction of the base), "
                             f"got {end_factor!r}")
        super().__init__(optimizer)

    def _lr(self, step, base_lr):
        if step < self.warmup_steps:
            return base_lr * step / self.warmup_steps                                 # 0 -> base
        if step >= self.total_steps:
            return base_lr * self.end_factor
        remaining = (self.total_steps - step) / (self.total_steps - self.warmup_steps)  # 1 -> 0
        return base_lr * (self.end_factor + (1.0 - self.end_factor) * remaining)
