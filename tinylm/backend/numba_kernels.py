"""Numba CPU kernels for the "numba" backend: imported (and so registered) when it is selected.

* :mod:`tinylm.backend.numba_matmul`     matmul: v1 naive, v2 unit-stride dots, v3 6x4 register tile, v4 BLIS
  8x32 outer-product micro-kernel (default); also the fused "linear" and "linear_gelu" kernels (v4)
* :mod:`tinylm.backend.numba_attention`  attention: v1 row-at-a-time online softmax, v2 4-row tiles, v3 64 x 64
  blocks with BLAS gemm tile products (default); forward keeps only O and the row log-sum-exp
* :mod:`tinylm.backend.numba_layernorm`  layernorm: v1 one pass per row, forward and backward

Loading this module also tunes the process for kernels (see below): OpenMP threads sleep while
idle, and glibc keeps freed memory for reuse (:func:`keep_freed_memory`).

Every kernel is compiled with ``cache=True``: the first process pays the JIT compile (see
``python -m tinylm.bench``, which reports it), later processes load machine code from
``__pycache__``. Each kernel is validated against the float64 reference in tests/test_kernels.py.
"""
import ctypes
import ctypes.util
import os
import sys

# Numba's OpenMP threads spin while they wait for work. On a machine shared with other processes
# (a 2-core CI box running tests in parallel) a spinning thread holds a core that the thread it waits
# for needs, and a parallel matmul ran 20x slower (7 vs 160 GFLOP/s) than with sleeping threads.
# Respect an explicit setting; it must be in place before the first parallel kernel starts OpenMP.
# The price: a kernel call wakes sleeping workers, which on small products (GPT at block 64) costs as
# much as the work. On a dedicated machine GOMP_SPINCOUNT=20000 (a bounded spin) made the tiny GPT
# 1.7x faster; with one competing busy process it made a matmul loop 27% slower (measured here).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")



def keep_freed_memory() -> bool:
    """Let glibc keep freed blocks of up to 32 MiB for reuse instead of returning them to the OS.

    A training step allocates and frees the same activation-sized arrays (4 MiB each at GPT's
    (2048, 512)) again and again. By default glibc gives large freed blocks back to the kernel, and
    the next allocation of the same size page-faults on every 4 KiB page: measured here, a fused
    linear + GELU forward took 7.8 ms on two threads, 0.9 ms of it computing, the rest in page
    faults that the two threads serialise on. PyTorch avoids this with its caching allocator; this
    is the same idea at the malloc level (the process keeps its peak heap). Only on glibc; an
    explicit MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment wins.
    Returns whether the setting was applied.
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ \
            or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):                         # musl & co: no mallopt
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3               # from glibc's <malloc.h>
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))


KEPT_FREED_MEMORY = keep_freed_memory()

from tinylm.backend import numba_attention, numba_layernorm, numba_matmul  # noqa: E402,F401  (they register kernels)
