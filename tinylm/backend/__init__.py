"""The array-module switch.

tinylm writes every array computation against ``xp``, the array module of the active backend:

=========  ==============  ====================================================================
name       ``xp``          what changes
=========  ==============  ====================================================================
numpy      ``numpy``       the reference: every op runs its readable NumPy form (the default)
numba      ``numpy``       same arrays; ``matmul`` and attention dispatch to Numba CPU kernels
cupy       ``cupy``        arrays live on the GPU; hot ops dispatch to raw-CUDA kernels
=========  ==============  ====================================================================

Select a backend with :func:`set_backend`, temporarily with :func:`use_backend`, or for a whole
process with the environment variable ``TINYLM_BACKEND``. Only ``matmul`` and scaled dot-product
attention have backend-specific kernels (see :mod:`tinylm.backend.registry`); every other op is
written once against ``xp`` and runs unchanged on every backend.

Arrays of two backends never mix silently: :func:`array_module` raises a clear error when an op
receives, say, a NumPy array while the CuPy backend is active.
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterator

import numpy as np

__all__ = [
    "Backend", "BackendUnavailableError", "BackendMismatchError", "BACKEND_NAMES",
    "set_backend", "get_backend", "use_backend", "array_module", "to_numpy",
]

BACKEND_NAMES = ("numpy", "numba", "cupy")


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (package missing, or no GPU)."""


class BackendMismatchError(TypeError):
    """An array of one backend reached an op while another backend is active."""


@dataclass(frozen=True)
class Backend:
    """An active backend: its ``name`` and its array module ``xp`` (``numpy`` or ``cupy``)."""

    name: str
    xp: ModuleType

    def asarray(self, x: Any, dtype: Any = None):
        """``x`` as an array of this backend (copies host data to the GPU for cupy)."""
        return self.xp.asarray(x, dtype=dtype)

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, xp={self.xp.__name__})"


def _load_kernels(name: str) -> None:
    # Kernel modules register themselves on import; a backend without kernels yet simply
    # falls back to the reference kernels (see registry.get_kernel).
    module = f"tinylm.backend.{name}_kernels"
    if importlib.util.find_spec(module) is not None:
        importlib.import_module(module)


def _make_backend(name: str) -> Backend:
    if name == "numpy":
        return Backend("numpy", np)
    if name == "numba":
        try:
            import numba  # noqa: F401
        except ImportError as e:  # pragma: no cover - numba is an install requirement
            raise BackendUnavailableError(
                "backend 'numba' needs the numba package, which is not installed: "
                "pip install numba (it is a dependency of tinylm: pip install -e .)") from e
        _load_kernels("numba")
        return Backend("numba", np)
    if name == "cupy":
        try:
            import cupy
        except ImportError as e:
            raise BackendUnavailableError(
                "backend 'cupy' needs CuPy, which is not installed: pip install -e '.[gpu]' "
                "(or the cupy-cudaXXx wheel matching your CUDA version)") from e
        try:
            n_gpus = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CUDA driver missing or broken
            raise BackendUnavailableError(
                f"backend 'cupy': CuPy is installed but no CUDA device is usable ({e})") from e
        if n_gpus < 1:
            raise BackendUnavailableError("backend 'cupy': CuPy is installed but no GPU was found")
        _load_kernels("cupy")
        return Backend("cupy", cupy)
    raise ValueError(f"backend: expected one of {BACKEND_NAMES}, got {name!r}")


def _default_backend() -> Backend:
    name = os.environ.get("TINYLM_BACKEND", "numpy").strip().lower() or "numpy"
    if name not in BACKEND_NAMES:
        raise ValueError(
            f"environment variable TINYLM_BACKEND: expected one of {BACKEND_NAMES}, got {name!r}")
    return _make_backend(name)


# A ContextVar rather than a plain global so that use_backend() in one thread (or asyncio
# task) does not switch the backend under another one.
_active: contextvars.ContextVar[Backend | None] = contextvars.ContextVar("tinylm_backend", default=None)
_process_default: Backend | None = None


def get_backend() -> Backend:
    """The active :class:`Backend` (``.name``, ``.xp``)."""
    global _process_default
    b = _active.get()
    if b is not None:
        return b
    if _process_default is None:
        _process_default = _default_backend()
    return _process_default


def set_backend(name: str) -> Backend:
    """Make ``name`` ("numpy", "numba" or "cupy") the active backend and return it.

    Raises :class:`BackendUnavailableError` (saying what to install) when it cannot run here.
    """
    if not isinstance(name, str):
        raise TypeError(f"set_backend: name must be a str, got {type(name).__name__}")
    b = _make_backend(name.lower())
    _active.set(b)
    return b


@contextlib.contextmanager
def use_backend(name: str | Backend) -> Iterator[Backend]:
    """``with use_backend("numba"): ...`` runs the block on that backend, then restores the old one.

    ``name`` may also be a :class:`Backend` a previous ``use_backend`` yielded: it is made active again
    as it is, without the checks and imports of a fresh one (cheap enough to wrap a timed call).
    """
    if isinstance(name, Backend):
        b = name
    elif isinstance(name, str):
        b = _make_backend(name.lower())
    else:
        raise TypeError(f"use_backend: name must be a str or a Backend, got {type(name).__name__}")
    token = _active.set(b)
    try:
        yield b
    finally:
        _active.reset(token)


def _module_of(x: Any) -> str | None:
    if isinstance(x, (np.ndarray, np.generic)):
        return "numpy"
    if type(x).__module__.startswith("cupy"):
        return "cupy"
    return None


def array_module(*named_arrays: tuple[str, Any]) -> ModuleType:
    """The active ``xp``, after checking that every ``(name, array)`` pair belongs to it.

    ``None`` arrays are skipped. Raises :class:`BackendMismatchError` naming the offending
    argument when, e.g., a NumPy array reaches an op under the CuPy backend.
    """
    b = get_backend()
    want = "cupy" if b.xp.__name__ == "cupy" else "numpy"
    for name, x in named_arrays:
        if x is None:
            continue
        got = _module_of(x)
        if got is None:
            raise TypeError(f"{name}: expected a {want} array, got {type(x).__name__}")
        if got != want:
            hint = ("move it with tinylm.get_backend().asarray(...)" if want == "cupy"
                    else "move it to the host with tinylm.to_numpy(...) or use_backend('cupy')")
            raise BackendMismatchError(
                f"{name}: is a {got} array but the active backend {b.name!r} works on {want} arrays; {hint}")
    return b.xp


def to_numpy(x: Any) -> np.ndarray:
    """A host NumPy copy (or view) of ``x``, whatever backend it came from."""
    if _module_of(x) == "cupy":
        return x.get()
    return np.asarray(x)
