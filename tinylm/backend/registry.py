"""The kernel registry: which function computes a hot op on which backend.

Five ops are dispatched: ``"matmul"``, ``"attention"``, and the Linear layer's ``"linear"``
(x W^T + b) and ``"linear_gelu"`` (gelu of it, returning y, h and tanh(u); its backward maps dy to
dh = dy gelu'(h)), which a backend may fuse into one pass, and ``"layernorm"`` (forward and
backward over rows). Each registered :class:`Kernel` has

* ``op``       the op it computes,
* ``backend``  the backend it runs on ("numpy" marks the float64-validated reference),
* ``version``  a short tag ("v0_reference", "v1_naive", "v2_tiled", ...): older versions stay
               registered so the benchmark harness can compare them and readers can study them,
* ``forward``  the function; for "attention" also ``backward`` (its cache format is private to it).

:func:`get_kernel` returns a backend's default kernel for an op, falling back to the reference
kernel (written against ``xp``, so it runs on every backend) when that backend has none.
Every registered kernel is compared against the float64 reference in ``tests/test_kernels.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Kernel", "register_kernel", "get_kernel", "list_kernels", "REFERENCE_BACKEND", "OPS"]

REFERENCE_BACKEND = "numpy"
OPS = ("matmul", "attention", "linear", "linear_gelu", "layernorm")


@dataclass(frozen=True)
class Kernel:
    op: str
    backend: str
    version: str
    forward: Callable
    backward: Callable | None = None
    doc: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        return f"{self.op}/{self.backend}/{self.version}"


_KERNELS: dict[tuple[str, str], dict[str, Kernel]] = {}
_DEFAULTS: dict[tuple[str, str], str] = {}


def register_kernel(op: str, backend: str, version: str, forward: Callable,
                    backward: Callable | None = None, *, default: bool = False, doc: str = "") -> Kernel:
    """Register ``forward`` (and ``backward``) as version ``version`` of ``op`` on ``backend``.

    The first kernel registered for an (op, backend) pair, or one registered with
    ``default=True``, becomes what :func:`get_kernel` returns for that pair.
    """
    if op not in OPS:
        raise ValueError(f"register_kernel: op must be one of {OPS}, got {op!r}")
    if op == "attention" and backward is None:
        raise ValueError(f"register_kernel: attention kernel {backend}/{version} needs a backward")
    k = Kernel(op, backend, version, forward, backward, doc or (forward.__doc__ or "").strip().split("\n")[0])
    slot = _KERNELS.setdefault((op, backend), {})
    slot[version] = k
    if default or (op, backend) not in _DEFAULTS:
        _DEFAULTS[(op, backend)] = version
    return k


def get_kernel(op: str, backend: str | None = None, version: str | None = None) -> Kernel:
    """The kernel for ``op`` on ``backend`` (default: the active one), optionally a given version."""
    if backend is None:
        from tinylm.backend import get_backend
        backend = get_backend().name
    if version is not None:
        try:
            return _KERNELS[(op, backend)][version]
        except KeyError:
            have = sorted(_KERNELS.get((op, backend), {}))
            raise KeyError(f"no kernel {op}/{backend}/{version}; registered versions: {have}") from None
    if (op, backend) in _DEFAULTS:
        return _KERNELS[(op, backend)][_DEFAULTS[(op, backend)]]
    if (op, REFERENCE_BACKEND) in _DEFAULTS:
        return _KERNELS[(op, REFERENCE_BACKEND)][_DEFAULTS[(op, REFERENCE_BACKEND)]]
    raise KeyError(f"no kernel registered for op {op!r}")


def list_kernels(op: str | None = None) -> list[Kernel]:
    """Every registered kernel (for one op, or all), sorted by op, backend and version."""
    out = [k for (o, _), vs in _KERNELS.items() if op in (None, o) for k in vs.values()]
    return sorted(out, key=lambda k: (k.op, k.backend, k.version))
