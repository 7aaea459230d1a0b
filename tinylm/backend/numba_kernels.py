"""Numba CPU kernels for the "numba" backend: imported (and so registered) when it is selected.

* :mod:`tinylm.backend.numba_matmul`     matmul: v1 naive, v2 unit-stride dots, v3 6x4 register tile, v4 BLIS
  8x32 outer-product micro-kernel (default); also the fused "linear" and "linear_gelu" kernels (v4)
* :mod:`tinylm.backend.numba_attention`  attention: v1 row-at-a-time online softmax, v2 4-row tiles, v3 64 x 64
  blocks with BLAS gemm tile products (default); forward keeps only O and the row log-sum-exp
* :mod:`tinylm.backend.numba_layernorm`  layernorm: v1 one pass per row, forward and backward

Every kernel is compiled with ``cache=True``: the first process pays the JIT compile (see
``python -m tinylm.bench``, which reports it), later processes load machine code from
``__pycache__``. Each kernel is validated against the float64 reference in tests/test_kernels.py.
"""
import os

# Numba's OpenMP threads spin while they wait for work. On a machine shared with other processes
# (a 2-core CI box running tests in parallel) a spinning thread holds a core that the thread it waits
# for needs, and a parallel matmul ran 20x slower (7 vs 160 GFLOP/s) than with sleeping threads.
# Respect an explicit setting; it must be in place before the first parallel kernel starts OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from tinylm.backend import numba_attention, numba_layernorm, numba_matmul  # noqa: E402,F401  (they register kernels)
