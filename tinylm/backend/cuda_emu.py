"""Run tinylm's raw-CUDA kernels on the CPU: a checking emulator, not a backend.

The ``.cu`` sources in ``tinylm/backend/cuda/`` are compiled with the host C++ compiler (g++) against
``cuda_emu.h``, which supplies ``threadIdx``/``blockIdx``/``__syncthreads``/``__shared__``; each
block's threads become OS threads, one block at a time. What that checks, on a machine without a
GPU: a kernel's arithmetic, its indexing and edge handling (odd sizes, masks), that every output
element is written and nothing outside an argument is. Built with a sanitizer it checks more,
for every path the launch runs: with ThreadSanitizer (``sanitize="thread"``) that a block's threads
never touch the same shared memory without a ``__syncthreads`` between them (TSan reasons about
the order the barriers impose, not about timing luck); with AddressSanitizer (``"address"``) that
no access, read or write, falls outside an argument, a shared array or a thread's own arrays. What
it cannot check: speed, warp-level behaviour, register or shared-memory limits. A kernel that
passes here still has to pass on a GPU (``examples/gpu_check.py``).

The interface is CuPy's, so cupy_kernels.py's host code can run unchanged on NumPy arrays
(:func:`emulated_cupy_backend` does that for a whole model)::

    mod = RawModule(code=Path("tinylm/backend/cuda/matmul_v2_tiled.cu").read_text())
    kernel = mod.get_function("matmul_tiled")
    kernel(grid, block, (A, B, C, np.int32(M), ...))     # like a cupy.RawKernel launch

Arguments are checked harder than CUDA does: a pointer parameter takes a C-contiguous NumPy array of
the matching dtype (``const float*`` -> float32), a scalar parameter the matching NumPy scalar
(``int`` -> ``np.int32``, ``long long`` -> ``np.int64``, ``float`` -> ``np.float32``), so a host call
that would hand the GPU the wrong bits fails here with the parameter's name. Each array is copied
into a buffer with 4 KiB of 0xFF bytes (NaN for floats) on each side: a read past an edge brings
NaN into the result, a write past an edge raises. ``__shared__`` arrays are 0xFF-filled before each
block, so a read of shared memory the block never wrote is NaN too. Each launch is one run of a
small compiled program (the kernels, a launcher per kernel and a ``main``) that maps the argument
files, so a kernel that crashes (an access beyond the guards) or hangs raises
:class:`CudaEmuError` here instead of taking the Python process down, and so sanitizers work
without touching the Python process; ``$TINYLM_CUDA_EMU_TIMEOUT`` (seconds, default 300) bounds a
launch. Launches cost a few milliseconds each, plus the kernel's own time.

Compiled programs are cached under ``$TINYLM_CUDA_EMU_CACHE`` (default
``~/.cache/tinylm/cuda_emu``), keyed by a hash of the source, the header and the compiler flags.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

__all__ = ["RawModule", "EmulatedKernel", "CudaEmuError", "compiler", "emulated_cupy_backend", "HEADER"]

HEADER = Path(__file__).with_name("cuda_emu.h")
GUARD_BYTES = 4096
CXXFLAGS = ("-std=c++20", "-O2", "-pthread", "-Wall", "-Wno-unknown-pragmas",
            "-Wno-sign-compare", "-Werror")   # CUDA code compares threadIdx (unsigned) with ints
# with $TINYLM_CUDA_EMU_SANITIZE=thread (or address, undefined): line numbers in reports, and a
# report ends the launch with an error
SANITIZE_FLAGS = ("-g", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all")

# C parameter type (const and * removed) -> NumPy dtype; what a pointer points at or a scalar is.
C_TYPES = {
    "float": np.float32, "double": np.float64,
    "int": np.int32, "unsigned": np.uint32, "unsigned int": np.uint32,
    "long long": np.int64, "unsigned long long": np.uint64,
    "unsigned char": np.uint8, "char": np.int8, "signed char": np.int8,
    "unsigned short": np.uint16, "short": np.int16,       # fp16 data travels as its bits
}
_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)')
_SHARED = re.compile(r"__shared__\s+(__align__\s*\(\s*\d+\s*\)\s+)?((?:unsigned\s+|signed\s+|const\s+)*\w+)\s+([^;]+);")


class CudaEmuError(RuntimeError):
    """The emulator cannot compile or run a kernel, or the kernel broke a rule it checks."""


class Param(NamedTuple):
    name: str
    ctype: str        # as declared, without __restrict__: "const float*", "int"
    dtype: type       # NumPy dtype of the scalar, or of the elements pointed at
    pointer: bool
    const: bool


def compiler() -> str | None:
    """The C++ compiler the emulator uses ($CXX, else g++), or None when there is none."""
    return shutil.which(os.environ.get("CXX", "g++"))


_TYPEDEF = re.compile(r"typedef\s+([\w\s]+?)\s+(\w+)\s*;")


def _parse_params(kernel: str, text: str, types: dict) -> list[Param]:
    """``types``: C_TYPES plus the source's typedefs of them (``typedef unsigned short half_bits;``)."""
    params = []
    for raw in text.split(","):
        decl = " ".join(raw.replace("__restrict__", " ").replace("*", " * ").split())
        m = re.fullmatch(r"(.*?)\s*(\w+)", decl)
        if m is None:
            raise CudaEmuError(f"kernel {kernel}: cannot read parameter {raw.strip()!r}")
        ctype, name = re.sub(r"\s*\*", "*", m.group(1)), m.group(2)       # "const float * *" -> "const float**"
        pointer = ctype.count("*")
        base = " ".join(w for w in ctype.replace("*", " ").split() if w != "const")
        if pointer > 1 or base not in types:
            raise CudaEmuError(f"kernel {kernel}: parameter {name!r} has type {ctype!r}, which the emulator "
                               f"does not pass (known: {sorted(types)}, as scalars or single pointers)")
        params.append(Param(name, ctype, types[base], bool(pointer), ctype.startswith("const ")))
    return params


def _rewrite_shared(source: str) -> str:
    """``__shared__ [__align__(n)] T a[..], b[..];`` -> the static arrays plus one
    cuda_emu::SharedRegistration each."""
    def one(m: re.Match) -> str:
        align, ctype, declarators = m.group(1) or "", m.group(2), [d.strip() for d in m.group(3).split(",")]
        out = []
        for d in declarators:
            name = re.match(r"\w+", d).group(0)
            out.append(f"{align}static {ctype} {d}; "
                       f"static cuda_emu::SharedRegistration cuda_emu_shared_{name}({name}, sizeof({name}));")
        return " ".join(out)
    return _SHARED.sub(one, source)


def _driver(kernels: dict[str, list[Param]]) -> str:
    """One launcher per kernel, the table driver_main looks kernels up in, and main()."""
    out, entries = [], []
    for k, params in kernels.items():
        # cuLaunchKernel's convention: args[i] points at the value of parameter i
        call = ", ".join(f"*static_cast<{p.ctype}*>(args[{i}])" for i, p in enumerate(params))
        out.append(f"static void cuda_emu_launch_{k}(dim3 grid, dim3 block, void** args) {{\n"
                   f"    cuda_emu::launch(grid, block, [args] {{ {k}({call}); }});\n}}\n")
        kinds = "".join("p" if p.pointer else str(np.dtype(p.dtype).itemsize) for p in params)
        entries.append(f'    {{"{k}", cuda_emu_launch_{k}, "{kinds}"}},\n')
    out.append("static const cuda_emu::KernelEntry cuda_emu_kernels[] = {\n" + "".join(entries) + "};\n")
    out.append("int main(int argc, char** argv) {\n    return cuda_emu::driver_main(argc, argv, cuda_emu_kernels, "
               f"{len(kernels)});\n}}\n")
    return "".join(out)


def _cache_dir() -> Path:
    return Path(os.environ.get("TINYLM_CUDA_EMU_CACHE", Path.home() / ".cache" / "tinylm" / "cuda_emu"))


def _scratch_dir() -> str | None:
    """Where a launch's argument files go: /dev/shm (memory) when there is one, else the temp dir."""
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def _dim3(value, what: str, kernel: str) -> tuple[int, int, int]:
    t = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(t) <= 3 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in t):
        raise CudaEmuError(f"kernel {kernel}: {what} must be 1 to 3 positive ints, got {value!r}")
    return tuple(int(v) for v in t) + (1,) * (3 - len(t))


class EmulatedKernel:
    """One ``extern "C" __global__`` kernel; call it as ``kernel(grid, block, args)``."""

    def __init__(self, name: str, params: list[Param], exe: Path):
        self.name, self.params, self._exe = name, params, exe

    def __repr__(self) -> str:
        return f"EmulatedKernel({self.name}({', '.join(f'{p.ctype} {p.name}' for p in self.params)}))"

    def __call__(self, grid, block, args) -> None:
        grid, block = _dim3(grid, "grid", self.name), _dim3(block, "block", self.name)
        if np.prod(block) > 1024:
            raise CudaEmuError(f"kernel {self.name}: block {block} has {np.prod(block)} threads; CUDA allows 1024")
        args = tuple(args)
        if len(args) != len(self.params):
            raise CudaEmuError(f"kernel {self.name}: expected {len(self.params)} arguments "
                               f"({', '.join(p.name for p in self.params)}), got {len(args)}")
        with tempfile.TemporaryDirectory(prefix="cuda_emu-", dir=_scratch_dir()) as tmp:
            words, buffers = [], []
            for i, (p, a) in enumerate(zip(self.params, args)):
                if p.pointer:
                    words.append(f"{self._guarded(p, a, buffers, Path(tmp) / str(i))}:{GUARD_BYTES}:{a.nbytes}")
                elif type(a) is not p.dtype:
                    raise CudaEmuError(f"kernel {self.name}: argument {p.name!r} ({p.ctype}) must be "
                                       f"numpy.{p.dtype.__name__}, got {type(a).__name__} {a!r}")
                else:
                    words.append(np.asarray(a).astype(np.dtype(p.dtype).newbyteorder("<")).tobytes().hex())
            self._run(grid, block, words)
            overwritten = [f"{p.name!r} ({where} its {a.nbytes} bytes)" for p, a, buf in buffers
                           for where, guard in (("before", buf[:GUARD_BYTES]), ("after", buf[GUARD_BYTES + a.nbytes:]))
                           if (guard != 0xFF).any()]
            if overwritten:
                raise CudaEmuError(f"kernel {self.name}: wrote outside its arguments, into the guard bytes of "
                                   + ", ".join(overwritten))
            for p, a, buf in buffers:
                if not p.const:
                    a[...] = buf[GUARD_BYTES:GUARD_BYTES + a.nbytes].view(a.dtype).reshape(a.shape)

    def _guarded(self, p: Param, a, buffers: list, path: Path) -> Path:
        """``a`` copied into file ``path`` between two guards of 0xFF bytes; the launch maps the file."""
        if not isinstance(a, np.ndarray):
            raise CudaEmuError(f"kernel {self.name}: argument {p.name!r} ({p.ctype}) must be a NumPy array, "
                               f"got {type(a).__name__}")
        if a.dtype != p.dtype:
            raise CudaEmuError(f"kernel {self.name}: argument {p.name!r} ({p.ctype}) must have dtype "
                               f"{np.dtype(p.dtype)}, got {a.dtype}")
        if not a.flags.c_contiguous:
            raise CudaEmuError(f"kernel {self.name}: argument {p.name!r} must be C-contiguous "
                               f"(the kernel indexes it as one flat buffer), got strides {a.strides}")
        if not p.const and not a.flags.writeable:
            raise CudaEmuError(f"kernel {self.name}: argument {p.name!r} ({p.ctype}) is written, but the array "
                               f"is read-only")
        for q, other, _ in buffers:
            if a.size and other.size and np.shares_memory(a, other):
                raise CudaEmuError(f"kernel {self.name}: arguments {q.name!r} and {p.name!r} share memory; the "
                                   f"emulator copies each argument, so it cannot run aliased ones")
        buf = np.memmap(path, np.uint8, "w+", shape=(a.nbytes + 2 * GUARD_BYTES,))
        buf.fill(0xFF)
        buf[GUARD_BYTES:GUARD_BYTES + a.nbytes] = a.reshape(-1).view(np.uint8)
        buf.flush()
        buffers.append((p, a, buf))
        return path

    def _run(self, grid, block, words: list[str]) -> None:
        """The launch: one run of the compiled driver, so a crash or a hang is an error here, not a dead
        Python process; under a sanitizer, its report fails the launch too."""
        timeout = float(os.environ.get("TINYLM_CUDA_EMU_TIMEOUT", 300))
        try:
            res = subprocess.run([str(self._exe), self.name, *map(str, grid + block), *words],
                                 capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CudaEmuError(f"kernel {self.name}: still running after {timeout:g} s ($TINYLM_CUDA_EMU_TIMEOUT): "
                               f"a loop that never ends, or threads waiting on each other?") from None
        if res.returncode < 0:
            raise CudaEmuError(f"kernel {self.name}: crashed ({signal.Signals(-res.returncode).name}): an access "
                               f"far outside an argument (beyond the {GUARD_BYTES}-byte guards)?\n{res.stderr}")
        if res.returncode != 0 or res.stderr:
            raise CudaEmuError(f"kernel {self.name}: the launch failed (exit status {res.returncode}):\n{res.stderr}")


class RawModule:
    """A CUDA source compiled for the CPU, with ``cupy.RawModule``'s ``get_function``.

    ``code``: the CUDA C++ source. ``options``: NVRTC options; ``-D``/``--define-macro`` ones are
    passed on, the rest (``--std=...``, architecture flags) mean nothing here and are ignored.
    ``name``: the file name reports show. ``sanitize``: a g++ sanitizer to build with ("thread"
    reports data races between a block's threads, such as a missing ``__syncthreads``; "address",
    "undefined"), default ``$TINYLM_CUDA_EMU_SANITIZE``; a sanitizer's report fails the launch.
    Raises :class:`CudaEmuError` when there is no C++ compiler or the source does not compile.
    """

    def __init__(self, code: str, options: tuple[str, ...] = (), name: str = "kernel.cu", *,
                 sanitize: str | None = None):
        cxx = compiler()
        if cxx is None:
            raise CudaEmuError("no C++ compiler: the emulator needs g++ (or $CXX), found neither")
        types = dict(C_TYPES)
        types.update({alias: C_TYPES[" ".join(base.split())] for base, alias in _TYPEDEF.findall(code)
                      if " ".join(base.split()) in C_TYPES})
        self.kernels = {k: _parse_params(k, p, types) for k, p in _KERNEL.findall(code)}
        if not self.kernels:
            raise CudaEmuError(f'{name}: no extern "C" __global__ kernels found')
        defines = [o for o in options if o.startswith(("-D", "--define-macro"))]
        unit = (f'#include "{HEADER}"\n#line 1 "{name}"\n{_rewrite_shared(code)}\n'
                + _driver(self.kernels))
        sanitize = os.environ.get("TINYLM_CUDA_EMU_SANITIZE", "") if sanitize is None else sanitize
        flags = (*CXXFLAGS, *defines, *(SANITIZE_FLAGS + (f"-fsanitize={sanitize}",) if sanitize else ()))
        key = hashlib.sha256("\0".join([HEADER.read_text(), unit, cxx, *flags]).encode()).hexdigest()[:20]
        self._exe = _cache_dir() / f"{Path(name).stem}-{key}"
        if not self._exe.exists():
            self._exe.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self._exe.parent) as tmp:
                src, out = Path(tmp) / "unit.cpp", Path(tmp) / "driver"
                src.write_text(unit)
                res = subprocess.run([cxx, *flags, str(src), "-o", str(out)], capture_output=True, text=True)
                if res.returncode != 0:
                    raise CudaEmuError(f"{name}: {Path(cxx).name} could not compile it for the emulator:\n{res.stderr}")
                os.replace(out, self._exe)    # atomic: a concurrent process sees no half-written program
        self.name = name

    def get_function(self, name: str) -> EmulatedKernel:
        if name not in self.kernels:
            raise CudaEmuError(f"{self.name}: no kernel {name!r}; it defines {sorted(self.kernels)}")
        return EmulatedKernel(name, self.kernels[name], self._exe)


def _named_raw_module(code: str, options: tuple[str, ...] = ()) -> RawModule:
    """RawModule(code, options), named after the file in tinylm/backend/cuda/ the code came from, so
    compiler errors and sanitizer reports point at that file's lines."""
    from tinylm.backend.cupy_kernels import CUDA_DIR
    path = next((p for p in sorted(CUDA_DIR.glob("*.cu")) if p.read_text() == code), None)
    return RawModule(code, options, name=str(path) if path else "kernel.cu")


def _numpy_as_cupy() -> types.ModuleType:
    """A stand-in ``cupy`` module for cupy_kernels.py's host code: NumPy, with RawModule emulated and
    ``empty``/``empty_like`` filled with 0xFF bytes (NaN), so an output a kernel never writes shows."""
    def poisoned(a: np.ndarray) -> np.ndarray:
        a.reshape(-1).view(np.uint8).fill(0xFF)
        return a

    shim = types.ModuleType("cupy", "tinylm.backend.cuda_emu's stand-in for CuPy: NumPy arrays, kernels on the CPU")
    shim.__getattr__ = lambda name: getattr(np, name)        # everything else is NumPy's
    shim.RawModule = _named_raw_module
    shim.asnumpy = np.asarray
    shim.empty = lambda shape, dtype=float, order="C": poisoned(np.empty(shape, dtype, order))
    shim.empty_like = lambda a, dtype=None: poisoned(np.empty_like(a, dtype=dtype, order="C"))
    return shim


@contextlib.contextmanager
def emulated_cupy_backend() -> Iterator:
    """``with emulated_cupy_backend(): ...`` runs the block on the "cupy" backend's kernels, on the CPU.

    The active backend is named "cupy", so the kernel registry hands out the CUDA kernels, and
    cupy_kernels.py's host code (argument packing, grid sizes, fallbacks) runs unchanged against a
    stand-in ``cupy`` module whose RawModule is this emulator. Arrays stay NumPy arrays (the
    backend's ``xp`` is ``numpy``), so the few CuPy-only branches elsewhere (``cupyx.scatter_add``,
    ``cupyx.scipy.special.erf``) are not exercised. Yields the :class:`~tinylm.backend.Backend`.
    A real CuPy, if installed, is restored afterwards.
    """
    from tinylm import backend as _backend
    from tinylm.backend import cupy_kernels            # registers the cupy kernels (imports no CuPy)
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = _numpy_as_cupy()
    cupy_kernels._module.cache_clear()                 # compiled modules must not cross over
    token = _backend._active.set(_backend.Backend("cupy", np))
    try:
        yield _backend.get_backend()
    finally:
        _backend._active.reset(token)
        cupy_kernels._module.cache_clear()
        if saved is None:
            del sys.modules["cupy"]
        else:
            sys.modules["cupy"] = saved
