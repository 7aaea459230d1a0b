"""Helpers shared by the Numba block-kernel tests (test_numba_attention_v3.py and _v4.py): the float64
reference they are held to, random inputs, and the comparison with its tolerances."""
import numpy as np

from tinylm.backend.registry import get_kernel


def reference(q, k, v, dout, causal, pad, scale):
    """out, dq, dk, dv of the float64 reference kernel (materialises P)."""
    ref = get_kernel("attention", "numpy")
    out, cache = ref.forward(*(x.astype(np.float64) for x in (q, k, v)), causal=causal,
                             key_padding_mask=pad, scale=scale, dropout_mask=None)
    return (out, *ref.backward(dout.astype(np.float64), cache))


def assert_matches(got, want, dtype):
    atol = 2e-5 if dtype == np.float32 else 1e-11
    for name, g, w in zip(["out", "dq", "dk", "dv"], got, want):
        assert g.dtype == dtype and g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=0, atol=atol * max(1.0, np.abs(w).max()), err_msg=name)


def inputs(r, B, H, T, S, D, dtype):
    """q, k, v, dout of standard normals in dtype."""
    return (r.standard_normal(s).astype(dtype) for s in [(B, H, T, D), (B, H, S, D), (B, H, S, D), (B, H, T, D)])
