"""``Parameter`` and ``Module``: the contract every layer and model in tinylm follows.

* ``out = module(*inputs)`` runs ``forward`` and keeps what ``backward`` needs on the module
  (the op caches of the last call).
* ``dinputs = module.backward(dout)`` returns the gradient with respect to the input(s) (one
  array, or a tuple in the order of the forward's arguments, ``None`` for integer inputs such as
  token ids) and ACCUMULATES (``+=``) into each parameter's ``.grad``. It never changes ``.data``:
  updating weights is the optimizer's job (tinylm.optim).
* A frozen parameter (``requires_grad=False``) gets no ``.grad`` but still passes gradient
  through to the layers below it.

Parameter names are PyTorch's (``weight``, ``bias``, dotted paths through children), so a
PyTorch ``state_dict`` converted to NumPy arrays loads with :meth:`Module.load_state_dict`.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Iterator

import numpy as np

from tinylm._checks import check_flag, check_float, check_float_dtype, check_grad
from tinylm.backend import array_module, get_backend, to_numpy

__all__ = ["Parameter", "Module"]


class Parameter:
    """A trainable array: ``.data`` (the value), ``.grad`` (same shape, or ``None`` before the
    first backward) and ``.requires_grad``. Optimizers key their state on the object itself."""

    __slots__ = ("data", "grad", "requires_grad", "__weakref__")

    def __init__(self, data, requires_grad: bool = True):
        check_float("data", data)          # an array: a list has no dtype, an int one truncates every update
        self.data = data
        self.grad = None
        self.requires_grad = check_flag("requires_grad", requires_grad)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    def accumulate(self, g) -> None:
        """``grad += g`` (allocating on first use); ``g`` is dropped for a frozen parameter.
        ``g``: a float array of exactly the parameter's shape (cast to its dtype), frozen or not:
        a wrong gradient is the caller's bug either way."""
        if g is None or getattr(g, "dtype", None) is None or g.dtype.kind != "f":
            got = type(g).__name__ if getattr(g, "dtype", None) is None else g.dtype
            raise TypeError(f"accumulate: g: expected a floating-point gradient array for {self!r}, got {got}")
        if g.shape != self.data.shape:
            raise ValueError(f"accumulate: g: expected the shape of {self!r}, got shape {tuple(g.shape)}")
        if not self.requires_grad:
            return
        if self.grad is None:
            self.grad = g.astype(self.data.dtype, copy=True)
        else:
            self.grad += g

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, requires_grad={self.requires_grad})"


class Module:
    """Base class of every layer and model; see the module docstring for the contract."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_out_spec", None)   # (shape, dtype) of the last output, see _remember_output

    # --- registration: assigning a Parameter or Module attribute registers it, as in PyTorch ---
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_parameter(self, name: str, p: Parameter | None) -> None:
        """Register ``p`` (or record an absent one, e.g. ``bias=False``) under ``name``."""
        if p is None:
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, p)

    def add_module(self, name: str, m: Module) -> None:
        setattr(self, name, m)

    # --- running ---
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, dout):
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def _need_cache(self, cache):
        """The cache of the last forward, or a clear error when backward comes first."""
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return cache

    def _remember_output(self, y):
        """Record the shape and dtype of the output ``y`` (returned as is): what the upstream
        gradient of :meth:`backward` must be, checked by :meth:`_check_output_grad`."""
        self._out_spec = (tuple(y.shape), y.dtype)
        return y

    def _check_output_grad(self, name: str, g) -> None:
        """``g``, the upstream gradient (named ``name`` in errors), must have the last output's
        shape and dtype: no broadcast, no silent promotion, and a clear error before any forward."""
        shape, dtype = self._need_cache(self._out_spec)
        array_module((name, g))
        check_grad(name, g, shape, dtype)

    # --- traversal ---
    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted_name, Parameter)`` pairs; a parameter shared by two modules appears once."""
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, p in m._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mprefix}.{name}" if mprefix else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def num_parameters(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.parameters())

    # --- state ---
    def state_dict(self) -> OrderedDict[str, Any]:
        """``{dotted_name: array}``; the arrays are the live ``.data`` (not copies)."""
        return OrderedDict((n, p.data) for n, p in self.named_parameters())

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy arrays from ``state`` into the parameters (converted to each parameter's dtype and backend).

        With ``strict=True`` any missing or unexpected name, and always any shape mismatch,
        raises a ``KeyError``/``ValueError`` that lists them; nothing is changed in that case.
        Returns ``(missing, unexpected)``.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state: expected a mapping {{name: array}} (e.g. from state_dict() or "
                            f"tinylm.io.load), got {type(state).__name__}")
        strict = check_flag("strict", strict)
        own = dict(self.named_parameters())
        for n, v in state.items():
            if n not in own:
                continue                                     # unexpected: reported, never read
            dt = getattr(v, "dtype", None)
            if dt is None or not hasattr(v, "shape") or dt.kind != "f":
                raise TypeError(f"state[{n!r}]: expected a floating-point array, got "
                                f"{type(v).__name__ if dt is None else dt}")
        missing = [n for n in own if n not in state]
        unexpected = [n for n in state if n not in own]
        mismatched = [f"{n}: checkpoint {tuple(np.shape(state[n]))} vs model {own[n].shape}"
                      for n in own if n in state and tuple(np.shape(state[n])) != own[n].shape]
        if mismatched:
            raise ValueError("load_state_dict: shape mismatch for " + "; ".join(mismatched))
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        b = get_backend()
        for n, p in own.items():
            if n in state:
                p.data = b.asarray(to_numpy(state[n]) if b.name == "cupy" else state[n], dtype=p.dtype).copy()
        return missing, unexpected

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to ``None`` (the next backward allocates it)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        mode = check_flag("mode", mode)
        for _, m in self.named_modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> Module:
        """Freeze (``False``) or unfreeze every parameter; gradients still flow through."""
        flag = check_flag("flag", flag)
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def to(self, dtype) -> Module:
        """Cast every parameter (and gradient) to ``dtype`` (a float dtype), in place; e.g. float64 for gradcheck."""
        dtype = check_float_dtype("dtype", dtype)
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            if p.grad is not None:
                p.grad = p.grad.astype(dtype)
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"
