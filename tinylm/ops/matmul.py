"""Matrix multiplication, dispatched to the active backend's kernel.

``matmul`` is one of the two hot ops (with attention) that backends accelerate; everything
else calls it rather than ``xp.matmul`` so that a faster kernel speeds the whole model up.
Its backward needs no op of its own: for ``C = A @ B``, ``dA = dC @ B^T`` and ``dB = A^T @ dC``
(derivations/matmul.md), which the callers (linear, attention, ...) write out with ``matmul``.
"""
from __future__ import annotations

from tinylm._checks import check_float
from tinylm.backend import array_module
from tinylm.backend.registry import get_kernel, register_kernel

__all__ = ["matmul", "matmul_reference"]


def matmul_reference(a, b):
    """Reference kernel: ``xp.matmul`` (BLAS on NumPy, cuBLAS on CuPy)."""
    xp = array_module(("a", a), ("b", b))
    if a.ndim > 2 and b.ndim == 2:
        # (..., M, K) @ (K, N) as one 2-D product: NumPy 2.x runs the stacked form without BLAS
        # when b is C-contiguous (about 100x slower on (32, 64, 512) @ (512, 128)).
        return xp.matmul(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[-1])
    return xp.matmul(a, b)


register_kernel("matmul", "numpy", "v0_reference", matmul_reference)


def matmul(a, b):
    """``a @ b`` through the active backend's matmul kernel.

    Shapes: a (..., M, K), b (..., K, N) -> (..., M, N); leading (batch) dimensions broadcast
    as in ``numpy.matmul``. Both must be floating-point arrays of the same dtype.
    """
    array_module(("a", a), ("b", b))
    check_float("a", a)
    check_float("b", b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul: a and b need at least 2 dims, got a{tuple(a.shape)} and b{tuple(b.shape)}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: inner sizes differ: a{tuple(a.shape)} has K={a.shape[-1]} "
                         f"but b{tuple(b.shape)} has K={b.shape[-2]}")
    batch_a, batch_b = tuple(a.shape[:-2]), tuple(b.shape[:-2])
    for m, n in zip(reversed(batch_a), reversed(batch_b)):
        if m != n and m != 1 and n != 1:
            raise ValueError(f"matmul: batch dims of a{tuple(a.shape)} and b{tuple(b.shape)} do not broadcast: "
                             f"{batch_a} vs {batch_b} ({m} vs {n}; each pair must be equal or one of them 1)")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: a is {a.dtype} but b is {b.dtype}; cast one so both match")
    return get_kernel("matmul").forward(a, b)
