"""Containers: ``Sequential`` (a chain of modules) and ``ModuleList`` (a list of modules).

Children are registered under the names "0", "1", ... (or the names given to ``Sequential`` in
an ``OrderedDict``), exactly as in PyTorch, so parameter names such as ``"0.weight"`` line up
with a PyTorch ``state_dict``.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Iterator

from tinylm.nn.module import Module

__all__ = ["Sequential", "ModuleList"]


def _check_module(owner: str, name: str, m) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{owner}: entry {name} must be a tinylm Module, got {type(m).__name__}")
    return m


def _position(owner: str, idx, n: int) -> int:
    """An int index in [-n, n) -> its non-negative position (IndexError otherwise)."""
    if isinstance(idx, bool) or not isinstance(idx, int):
        raise TypeError(f"{owner} indices must be ints or slices, got {type(idx).__name__}")
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for a {owner} of length {n}")
    return idx % n


class Sequential(Module):
    """``Sequential(m0, m1, ...)`` runs ``m0``, then ``m1``, ... on one input; backward runs in reverse.

    Also ``Sequential(OrderedDict([("name", m), ...]))`` to choose the child names.
    ``len``, indexing (an int gives the module, a slice a new ``Sequential`` sharing the modules
    and their names), iteration and ``append`` work as in PyTorch.
    Shapes: x (the first module's input) -> y (the last module's output); ``backward``: dout (y's shape)
    -> dx (x's shape), or None where the first module's input is not differentiable (e.g. Embedding ids).
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(str(name), _check_module("Sequential", repr(name), m))
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), _check_module("Sequential", str(i), m))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx):
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(items[idx]))
        return items[_position("Sequential", idx, len(items))][1]

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), _check_module("Sequential", str(len(self)), module))
        return self

    def forward(self, x):
        for m in self:
            x = m(x)
        if getattr(x, "dtype", None) is not None and x.dtype.kind == "f":
            return self._remember_output(x)                  # a float output: dout is checked against it
        self._out_spec = None
        return x

    def backward(self, dout):
        if self._out_spec is not None:                       # named dout here, not dy in the last module
            self._check_output_grad("dout", dout)
        after = None                                         # the module that produced dout
        for name, m in reversed(self._modules.items()):     # last module first
            if dout is None:
                # e.g. an Embedding (ids are not differentiable) placed after another module
                raise RuntimeError(f"Sequential.backward: module {after!r} returned no input gradient, "
                                   f"so module {name!r} before it cannot get one")
            dout = m.backward(dout)                          # x = m(x)
            after = name
        return dout


class ModuleList(Module):
    """A list of modules whose parameters are registered (names "0", "1", ...); it has no forward.

    Supports ``len``, indexing (a slice gives a new ``ModuleList``), iteration, ``append`` and ``extend``.
    """

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(mods[idx])
        return mods[_position("ModuleList", idx, len(mods))]

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), _check_module("ModuleList", str(len(self)), module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if isinstance(modules, Module):
            raise TypeError(f"ModuleList.extend: expected an iterable of modules, "
                            f"got a single {type(modules).__name__}")
        for m in modules:
            self.append(m)
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward: iterate over it and call its modules")
