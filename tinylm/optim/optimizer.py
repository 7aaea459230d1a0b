"""``Optimizer``: the base class of SGD, Adam, AdamW and Adagrad.

It owns what every optimizer shares, in PyTorch's layout:

* ``param_groups``: a list of dicts ``{"params": [Parameter, ...], "lr": ..., <hyperparameters>}``.
  A schedule changes ``param_groups[i]["lr"]``; a no-decay group gives biases and norms
  ``weight_decay=0``.
* ``state``: per-parameter state (step counts, moment buffers), keyed by the ``Parameter``
  object itself, never by a name.
* ``step()``: updates every parameter that has a gradient, in place. Parameters whose ``grad``
  is ``None`` or that have ``requires_grad=False`` are skipped. Only ``p.grad`` is read and only
  ``p.data`` is written, with ``xp`` array ops (no host round trip on CuPy).
* ``zero_grad()``: sets every ``p.grad`` to ``None`` (the next backward allocates it).
* ``state_dict()`` / ``load_state_dict()``: parameters are identified by their position in the
  groups (0, 1, 2, ... across groups in order), as in PyTorch; the dict holds arrays and plain
  numbers only.

A subclass supplies three methods: ``_check(group, where)`` (hyperparameter checks),
``_init_state(xp, p, group)`` (the state a parameter starts with, created on its first update)
and ``_update(xp, p, grad, state, group)`` (one in-place step of ``p.data``).

Update rules: derivations/optim.md.  Tests: tests/test_optim.py, tests/test_torch_optim.py.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinylm._checks import is_real
from tinylm.backend import array_module, to_numpy
from tinylm.nn.module import Module, Parameter

__all__ = ["Optimizer"]

_GROUP_EXTRAS = ("initial_lr",)   # keys a schedule adds to a group (see lr_scheduler.py)


def check_nonnegative(name: str, v: Any) -> float:
    """``v`` must be a finite real number ``>= 0`` (hyperparameters: lr, eps, weight_decay, ...);
    NumPy scalars count (``np.float32(0.1)``). Returned as a float."""
    if not is_real(v) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    return float(v)


def check_params(name: str, params) -> list[Parameter]:
    """``params``: one Parameter or an iterable of them, as a list. A Module (a likely slip for
    ``model.parameters()``) and None get a clear error instead of "object is not iterable"."""
    if isinstance(params, Module):
        raise TypeError(f"{name}: expected a Parameter or an iterable of Parameters, got a {type(params).__name__} "
                        f"module (pass model.parameters())")
    if isinstance(params, Parameter):
        return [params]
    if params is None or isinstance(params, (str, bytes, dict)) or not hasattr(params, "__iter__"):
        raise TypeError(f"{name}: expected a Parameter or an iterable of Parameters, got {type(params).__name__}")
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"{name}[{i}]: expected a tinylm Parameter, got {type(p).__name__}")
    return params


class Optimizer:
    """Base class; see the module docstring. ``params`` is an iterable of :class:`Parameter`
    (one group) or of dicts ``{"params": [...], "<hyperparameter>": value}`` (one group each;
    missing hyperparameters take the constructor's values, kept in ``defaults``)."""

    def __init__(self, params, defaults: dict[str, Any]):
        self._check(defaults, "")
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Parameter, dict[str, Any]] = {}   # Parameter object -> its state
        for group in _as_groups(params):
            self.add_param_group(group)

    # --- what a subclass defines ---
    def _check(self, group: dict[str, Any], where: str) -> None:
        """Raise a ``ValueError`` naming ``where + key`` for a bad hyperparameter in ``group``."""
        raise NotImplementedError

    def _init_state(self, xp, p: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _update(self, xp, p: Parameter, grad, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    # --- groups ---
    def add_param_group(self, group: dict[str, Any]) -> None:
        """Append a group ``{"params": [...], <hyperparameters>}``; unset hyperparameters take the defaults."""
        where = f"param_groups[{len(self.param_groups)}]"
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{where}: expected a dict with a 'params' key, got {type(group).__name__}")
        unknown = sorted(set(group) - set(self.defaults) - {"params", *_GROUP_EXTRAS})
        if unknown:
            raise ValueError(f"{where}: unknown hyperparameter(s) {unknown} for {type(self).__name__}; "
                             f"expected some of {sorted(self.defaults)}")
        params = [group["params"]] if isinstance(group["params"], Parameter) else list(group["params"])
        if not params:
            raise ValueError(f"{where}: 'params' is empty")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{where}['params'][{i}]: expected a tinylm Parameter, got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"{where}['params'][{i}]: this parameter already appears in a parameter group "
                                 f"(each parameter may be in one group, once)")
            seen.add(id(p))
        new = {"params": params, **self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._check(new, f"{where}.")
        self.param_groups.append(new)

    # --- the training-loop API ---
    def step(self) -> None:
        """Update, in place, every parameter that has a gradient."""
        for i, group in enumerate(self.param_groups):
            self._check(group, f"param_groups[{i}].")   # a few scalars: catches e.g. a schedule's negative lr
            for p in group["params"]:
                if not p.requires_grad or p.grad is None:
                    continue
                xp = array_module(("param", p.data), ("grad", p.grad))
                if p.grad.shape != p.data.shape or p.grad.dtype != p.data.dtype:
                    error = ValueError if p.grad.shape != p.data.shape else TypeError
                    raise error(f"{self._where(p)}: grad is {p.grad.dtype}{tuple(p.grad.shape)} but the "
                                f"parameter is {p.data.dtype}{tuple(p.data.shape)}; they must match")
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = self._init_state(xp, p, group)
                self._update(xp, p, p.grad, state, group)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to ``None``."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    # --- saving and resuming ---
    def state_dict(self) -> dict[str, Any]:
        """A snapshot ``{"state": {index: {name: array or number}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Arrays are copies (later steps do not change the snapshot) on the parameters' backend.
        """
        index: dict[Parameter, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[p] = len(index)
                ids.append(index[p])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[p]: {k: (v.copy() if hasattr(v, "shape") else v) for k, v in s.items()}
                 for p, s in self.state.items() if p in index}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (hyperparameters included) onto this optimizer's parameters.

        Groups are matched by position and must hold as many parameters as when saved; arrays
        are copied to each parameter's backend and dtype. Everything is checked first: on any
        error the optimizer is left unchanged.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise TypeError("load_state_dict: expected a dict with keys 'state' and 'param_groups' "
                            "(from Optimizer.state_dict())")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: the state has {len(saved_groups)} parameter group(s), "
                             f"this optimizer has {len(self.param_groups)}")
        by_index: dict[int, Parameter] = {}
        new_groups = []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"load_state_dict: param_groups[{i}] has {len(saved['params'])} parameters in "
                                 f"the state but {len(group['params'])} in this optimizer")
            keys = set(saved) - {"params", *_GROUP_EXTRAS}
            if keys != set(self.defaults):
                raise ValueError(f"load_state_dict: param_groups[{i}] has hyperparameters {sorted(keys)}, "
                                 f"{type(self).__name__} uses {sorted(self.defaults)}")
            by_index.update(zip((int(j) for j in saved["params"]), group["params"]))
            new = {"params": group["params"],
                   **{k: (tuple(v) if isinstance(v, list) else v) for k, v in saved.items() if k != "params"}}
            self._check(new, f"load_state_dict: param_groups[{i}].")
            new_groups.append(new)
        new_state: dict[Parameter, dict[str, Any]] = {}
        for j, entry in saved_state.items():
            p = by_index.get(int(j))
            if p is None:
                raise ValueError(f"load_state_dict: state for parameter {j}, which is in no parameter group")
            new_state[p] = {k: (_copy_like(v, p, f"load_state_dict: state[{j}][{k!r}]") if hasattr(v, "shape") else v)
                            for k, v in entry.items()}
        self.param_groups[:] = new_groups
        self.state = new_state

    # --- helpers ---
    def _where(self, p: Parameter) -> str:
        for i, group in enumerate(self.param_groups):
            for j, q in enumerate(group["params"]):
                if q is p:
                    return f"param_groups[{i}]['params'][{j}]"
        return "parameter"

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        n = sum(len(g["params"]) for g in self.param_groups)
        return f"{type(self).__name__}({hyper}; {len(self.param_groups)} group(s), {n} parameters)"


def _as_groups(params) -> list[dict[str, Any]]:
    """The constructor's ``params`` as a list of group dicts (one group for a flat list)."""
    if isinstance(params, (Parameter, Module, dict)) or not hasattr(params, "__iter__"):
        hint = " (pass model.parameters())" if isinstance(params, Module) else ""
        raise TypeError(f"params: expected an iterable of Parameters or of param-group dicts, "
                        f"got {type(params).__name__}{hint}")
    items = list(params)
    if not items:
        raise ValueError("params: the optimizer got an empty parameter list")
    if all(isinstance(x, dict) for x in items):
        return items
    if any(isinstance(x, dict) for x in items):
        raise TypeError("params: expected all Parameters or all param-group dicts, got a mix")
    return [{"params": items}]


def _copy_like(v, p: Parameter, name: str):
    """A copy of state array ``v`` on ``p``'s backend and dtype (it must have ``p``'s shape)."""
    if tuple(v.shape) != p.shape:
        raise ValueError(f"{name}: has shape {tuple(v.shape)} but its parameter has shape {p.shape}")
    xp = array_module(("param", p.data))
    return xp.array(to_numpy(v) if xp is np else v, dtype=p.data.dtype)
