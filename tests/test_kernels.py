"""Every registered kernel against an independent float64 oracle.

Parametrised over ``tinylm.backend.registry.list_kernels()``, so a Numba or CuPy kernel registered
later is tested here without touching this file. Each kernel runs on its own backend, in float32
and in float64, over awkward shapes (T = 1, T = 37 which is no tile size's multiple, S != T, head
dims 16/24/64/80, causal, key padding, dropout), and must agree with the oracle to
``atol + rtol * |oracle|``. The oracles are written out here with explicit products and sums (no
BLAS, no kernel code), so the reference kernels are checked too, not compared with themselves.

Without a GPU the CuPy kernels still run here, on the CPU: as "cupy-emulated" they go through
cupy_kernels.py's host code and tinylm.backend.cuda_emu, which compiles the .cu sources with g++.
"""
import math

import numpy as np
import pytest

import tinylm
import tinylm.backend.cupy_kernels  # noqa: F401  (registers the CUDA kernels; imports no CuPy)
import tinylm.ops.attention  # noqa: F401  (registers the reference attention kernel)
import tinylm.ops.layernorm  # noqa: F401  (registers the reference layernorm kernel)
import tinylm.ops.linear  # noqa: F401  (registers the reference linear and linear_gelu kernels)
import tinylm.ops.matmul  # noqa: F401  (registers the reference matmul kernel)
from tinylm.backend import BACKEND_NAMES, BackendUnavailableError, cuda_emu, to_numpy
from tinylm.backend.registry import get_kernel, list_kernels

EMULATED = "cupy-emulated"     # the cupy kernels, run on the CPU by tinylm.backend.cuda_emu

# Loading a backend imports its kernel module, which registers its kernels; note why one can't run.
UNAVAILABLE: dict[str, str] = {}
for _name in BACKEND_NAMES:
    try:
        with tinylm.use_backend(_name):
            pass
    except BackendUnavailableError as e:
        UNAVAILABLE[_name] = str(e)
if cuda_emu.compiler() is None:
    UNAVAILABLE[EMULATED] = "no C++ compiler (g++ or $CXX) to build the CUDA emulator"


def _on(backend):
    """Run a block on ``backend``; EMULATED is the cupy backend's kernels and host code, on the CPU."""
    return cuda_emu.emulated_cupy_backend() if backend == EMULATED else tinylm.use_backend(backend)

# Per dtype (rtol, atol): |got - oracle| <= atol * max(max|oracle|, 1) + rtol * |oracle|, elementwise.
# The reference kernels stay ~50x inside (float32 errors ~4e-7, float64 ~1e-15 of the scale).
TOL = {np.float64: (1e-10, 1e-12), np.float32: (1e-4, 1e-5),
       np.float16: (1e-2, 2e-3)}    # fp16 kernels: outputs rounded to fp16 (2.4e-4 relative), P and dS too


def _close(name, got, want, dtype):
    rtol, atol = TOL[dtype]
    got = to_numpy(got)
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == dtype, f"{name}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    bound = atol * max(np.abs(want).max(initial=0.0), 1.0) + rtol * np.abs(want)
    err = np.abs(got.astype(np.float64) - want)
    assert np.all(err <= bound), f"{name}: max error {err.max():.2e} (worst excess {(err - bound).max():.2e})"


def _runs(op):
    """(kernel, backend to run it on): each kernel on its own backend, and the reference kernels,
    written against xp, also on the GPU, where they are the fallback for ops without a CUDA kernel."""
    runs = [(k, k.backend) for k in list_kernels(op)]
    runs += [(k, "cupy") for k in list_kernels(op) if k.backend == "numpy"]
    runs += [(k, EMULATED) for k in list_kernels(op) if k.backend == "cupy"]
    return pytest.mark.parametrize("kernel, backend", runs, ids=[f"{k.key}@{b}" for k, b in runs])


def _skip_if_unavailable(kernel, backend):
    if backend in UNAVAILABLE:
        pytest.skip(f"{kernel.key} on {backend}: {UNAVAILABLE[backend]}")


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_backend_kernels_load(backend):
    """Shows, per backend, whether its kernels run here (and why not)."""
    if backend in UNAVAILABLE:
        pytest.skip(f"backend {backend!r}: {UNAVAILABLE[backend]}")
    for op in ("matmul", "attention", "linear", "linear_gelu", "layernorm"):
        k = get_kernel(op, backend)    # its own, or the reference fallback
        assert k.op == op and callable(k.forward)


# --- matmul ---

def _matmul_oracle(a, b):
    return (a[..., :, :, None] * b[..., None, :, :]).sum(axis=-2)        # sum_k a_mk b_kn


MATMUL_SHAPES = [((1, 1), (1, 1)), ((37, 5), (5, 3)), ((3, 64), (64, 80)), ((2, 3, 17, 24), (2, 3, 24, 9)),
                 ((4, 1, 7, 16), (3, 16, 5)), ((33, 31), (31, 1))]


@_runs("matmul")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("a_shape, b_shape", MATMUL_SHAPES, ids=[f"{a}@{b}" for a, b in MATMUL_SHAPES])
def test_matmul_kernel(kernel, backend, dtype, a_shape, b_shape):
    _skip_if_unavailable(kernel, backend)
    r = np.random.default_rng(0)
    a, b = r.standard_normal(a_shape), r.standard_normal(b_shape)
    with _on(backend) as be:
        got = kernel.forward(be.asarray(a, dtype), be.asarray(b, dtype))
    _close("a @ b", got, _matmul_oracle(a.astype(dtype).astype(np.float64), b.astype(dtype).astype(np.float64)),
           dtype)


# --- linear and linear_gelu: x W^T + b, and GPT-2's tanh GELU of it ---

def _linear_gelu_oracle(x, w, b):
    h = (x[:, None, :] * w[None, :, :]).sum(-1) + (0.0 if b is None else b)     # sum_i x_ni W_oi + b_o
    s = np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3))
    return 0.5 * h * (1 + s), h, s


LINEAR_SHAPES = [(1, 1, 1), (37, 5, 3), (67, 130, 65), (300, 64, 96), (3, 0, 5), (0, 4, 6)]   # (N, in, out)


def _linear_inputs(shape, bias, dtype, backend):
    N, fan_in, out = shape
    r = np.random.default_rng(fan_in * 100 + out)
    x, w, b = r.standard_normal((N, fan_in)), r.standard_normal((out, fan_in)), 2 * r.standard_normal(out)
    x, w, b = (a.astype(dtype).astype(np.float64) for a in (x, w, b))
    b = b if bias else None
    be = tinylm.backend.get_backend()
    args = (be.asarray(x, dtype), be.asarray(w, dtype), None if b is None else be.asarray(b, dtype))
    return args, _linear_gelu_oracle(x, w, b)


@_runs("linear")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=[str(s) for s in LINEAR_SHAPES])
def test_linear_kernel(kernel, backend, dtype, bias, shape):
    _skip_if_unavailable(kernel, backend)
    with _on(backend):
        args, (_, h, _) = _linear_inputs(shape, bias, dtype, backend)
        got = kernel.forward(*args)
    _close("x W^T + b", got, h, dtype)


@_runs("linear_gelu")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=[str(s) for s in LINEAR_SHAPES])
def test_linear_gelu_kernel(kernel, backend, dtype, bias, shape):
    _skip_if_unavailable(kernel, backend)
    with _on(backend):
        args, want = _linear_inputs(shape, bias, dtype, backend)
        got = kernel.forward(*args)
    for name, g, w in zip(("y = gelu(h)", "h = x W^T + b", "s = tanh(u)"), got, want):
        _close(name, g, w, dtype)
    # backward: dh = dy gelu'(h), against gelu's complex-step derivative (exact to rounding, no formula shared)
    _, h, s = want
    h, s = h.astype(dtype).astype(np.float64), s.astype(dtype).astype(np.float64)
    dy = np.random.default_rng(7).standard_normal(h.shape).astype(dtype).astype(np.float64)
    eps = 1e-30
    hc = h + 1j * eps
    gelu_c = 0.5 * hc * (1 + np.tanh(math.sqrt(2 / math.pi) * (hc + 0.044715 * hc ** 3)))
    with _on(backend) as be:
        dh = kernel.backward(*(be.asarray(a, dtype) for a in (dy, h, s)))
    _close("dh = dy gelu'(h)", dh, dy * gelu_c.imag / eps, dtype)


# --- layernorm: rows x2 (N, C) ---

def _layernorm_oracle(x, w, b, eps):
    """y from sums written out; dy -> dx by complex steps (rows are independent, so one step per column)."""
    def forward(x):
        C = x.shape[1]
        mean = x.sum(axis=1, keepdims=True) / C
        var = ((x - mean) ** 2).sum(axis=1, keepdims=True) / C
        return (x - mean) / np.sqrt(var + eps) * w + b
    return forward


LAYERNORM_CASES = [(1, 1), (37, 24), (130, 128), (3, 769), (0, 5)]     # (N, C)


@_runs("layernorm")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("affine", [True, False, "weight_only"], ids=["affine", "plain", "weight_only"])
@pytest.mark.parametrize("shape", LAYERNORM_CASES, ids=[str(s) for s in LAYERNORM_CASES])
def test_layernorm_kernel(kernel, backend, dtype, affine, shape):
    """``weight_only`` is LayerNorm(bias=False): a weight, no bias, so no dbias comes back."""
    _skip_if_unavailable(kernel, backend)
    r = np.random.default_rng(shape[0] + shape[1])
    x, dy = (3 + 2 * r.standard_normal(shape)).astype(dtype).astype(np.float64), r.standard_normal(shape)
    dy = dy.astype(dtype).astype(np.float64)
    w, b = (r.standard_normal(shape[1]).astype(dtype).astype(np.float64) if affine else None for _ in range(2))
    if affine == "weight_only":
        b = None
    eps = 1e-5
    forward = _layernorm_oracle(x, 1.0 if w is None else w, 0.0 if b is None else b, eps)
    xhat = _layernorm_oracle(x, 1.0, 0.0, eps)(x)
    dx = np.zeros(shape)
    for c in range(shape[1]):                                  # complex step along column c of every row
        xs = x.astype(complex)
        xs[:, c] += 1e-30j
        dx[:, c] = (forward(xs) * dy).sum(axis=1).imag / 1e-30
    with _on(backend) as be:
        args = [be.asarray(a, dtype) if a is not None else None for a in (x, w, b)]
        y, xh, rstd = kernel.forward(*args, eps)
        got = kernel.backward(be.asarray(dy, dtype), xh, rstd, args[1], b is not None)   # has_bias
    _close("y", y, forward(x), dtype)
    _close("xhat", xh, xhat, dtype)
    _close("dx", got[0], dx, dtype)
    if w is not None:
        _close("dweight", got[1], (dy * xhat).sum(axis=0), dtype)
    else:
        assert got[1] is None
    if b is not None:
        _close("dbias", got[2], dy.sum(axis=0), dtype)
    else:
        assert got[2] is None


# --- attention ---

def _attention_oracle(q, k, v, causal, pad, scale, drop, dout):
    """Forward and backward, one (b, h) at a time, with the softmax Jacobian written as a matrix
    (diag(p) - p p^T) rather than the kernels' rowsum shortcut."""
    B, H, T, D = q.shape
    S = k.shape[2]
    out, dq, dk, dv = np.zeros(q.shape), np.zeros(q.shape), np.zeros(k.shape), np.zeros(v.shape)
    for b in range(B):
        for h in range(H):
            for i in range(T):
                seen = np.array([(not causal or j <= i + S - T) and not (pad is not None and pad[b, j])
                                 for j in range(S)])
                if not seen.any():
                    continue
                s = scale * (k[b, h] * q[b, h, i]).sum(-1)                       # (S,)
                e = np.where(seen, np.exp(np.where(seen, s, 0) - s[seen].max()), 0)
                p = e / e.sum()
                m = np.ones(S) if drop is None else drop[b, h, i]
                out[b, h, i] = ((p * m)[:, None] * v[b, h]).sum(0)
                dv[b, h] += (p * m)[:, None] * dout[b, h, i][None, :]
                dp = m * (v[b, h] * dout[b, h, i]).sum(-1)                     # (S,)
                ds = (np.diag(p) - np.outer(p, p)) @ dp                        # softmax Jacobian
                dq[b, h, i] = scale * (ds[:, None] * k[b, h]).sum(0)
                dk[b, h] += scale * ds[:, None] * q[b, h, i][None, :]
    return out, dq, dk, dv


ATTENTION_CASES = {
    # name: (B, H, T, S, D, causal, padding, dropout[, scale]); scale defaults to 1/sqrt(D)
    "T1_decode_step": (2, 2, 1, 9, 16, True, False, False),
    "T37_S37_causal": (1, 2, 37, 37, 24, True, False, False),
    "T37_S50_pad": (2, 1, 37, 50, 64, False, True, False),
    "T5_S40_causal_pad": (2, 2, 5, 40, 80, True, True, False),
    "T37_S37_causal_pad": (1, 1, 37, 37, 16, True, True, False),
    "T7_S3_D80": (1, 3, 7, 3, 80, False, False, False),
    "T6_S11_dropout": (2, 2, 6, 11, 24, True, True, True),
    # 32-wide tiles (the CUDA v2 kernels): the last visible key opens a new tile; S - T = 1 shifts
    # the causal diagonal across a tile boundary
    "T33_S33_causal_D32": (1, 2, 33, 33, 32, True, False, False),
    "T40_S41_causal_pad": (2, 1, 40, 41, 64, True, True, False),
    # ... and two tiles of 64 (CUDA v3, Numba v3/v4 blocks): the online softmax rescales, and the
    # causal diagonal crosses from one query tile into the next
    "T70_S71_causal_pad": (1, 2, 70, 71, 64, True, True, False),
    # a scale other than 1/sqrt(D): every kernel must use the one it is given, in the forward's
    # scores and in dq, dk (sharper softmax than the default, and a flatter one with dropout)
    "T37_S50_pad_scale0.3": (2, 1, 37, 50, 64, False, True, False, 0.3),
    "T6_S11_dropout_scale0.05": (2, 2, 6, 11, 24, True, True, True, 0.05),
    "T70_S71_causal_pad_scale0.3": (1, 2, 70, 71, 64, True, True, False, 0.3),
}


def _attention_case(cases, case):
    """(B, H, T, S, D, causal, padding, dropout, scale) with the default scale filled in."""
    spec = cases[case]
    scale = spec[8] if len(spec) > 8 else 1 / math.sqrt(spec[4])
    return (*spec[:8], scale)


@_runs("attention")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(ATTENTION_CASES))
def test_attention_kernel(kernel, backend, dtype, case):
    _skip_if_unavailable(kernel, backend)
    B, H, T, S, D, causal, padding, dropout, scale = _attention_case(ATTENTION_CASES, case)
    r = np.random.default_rng(list(ATTENTION_CASES).index(case))
    q, k, v = (r.standard_normal(s).astype(dtype) for s in [(B, H, T, D), (B, H, S, D), (B, H, S, D)])
    dout = r.standard_normal((B, H, T, D)).astype(dtype)
    pad = None
    if padding:
        pad = r.random((B, S)) < 0.3
        if B > 1:
            pad[0, :] = True                 # a sequence with no real key: its rows must come out 0
        pad[-1, S - 1] = False               # and at least one real key in the last one
    drop = ((r.random((B, H, T, S)) >= 0.25) / 0.75).astype(dtype) if dropout else None
    want = _attention_oracle(*(x.astype(np.float64) for x in (q, k, v)), causal, pad, scale,
                             None if drop is None else drop.astype(np.float64), dout.astype(np.float64))
    with _on(backend) as be:
        dev = [None if x is None else be.asarray(x) for x in (q, k, v, pad, drop, dout)]
        out, cache = kernel.forward(dev[0], dev[1], dev[2], causal=causal, key_padding_mask=dev[3],
                                    scale=scale, dropout_mask=dev[4])
        grads = kernel.backward(dev[5], cache)
    for name, got, ref in zip(["out", "dq", "dk", "dv"], (out, *grads), want):
        _close(name, got, ref, dtype)


FP16_CASES = {c: spec for c, spec in ATTENTION_CASES.items() if spec[4] <= 64 and not spec[7]}
# three key tiles of 64, every row seeing all of them: the running max moves between tiles
FP16_CASES["T20_S130_D48_three_key_tiles"] = (1, 2, 20, 130, 48, False, False, False)


@pytest.mark.parametrize("backend", ["cupy", EMULATED])
@pytest.mark.parametrize("case", list(FP16_CASES))
def test_attention_fp16_tensor_core_kernel(backend, case, monkeypatch):
    """CUDA attention v3 (fp16 on the tensor cores) against the oracle run on the fp16-rounded inputs."""
    kernel = get_kernel("attention", "cupy", "v3_flash_mma")
    _skip_if_unavailable(kernel, backend)
    launched = []
    if backend == EMULATED:                       # the tensor-core kernels must be the ones that ran
        launch = cuda_emu.EmulatedKernel.__call__
        monkeypatch.setattr(cuda_emu.EmulatedKernel, "__call__",
                            lambda self, *a: (launched.append(self.name), launch(self, *a))[1])
    B, H, T, S, D, causal, padding, _, scale = _attention_case(FP16_CASES, case)
    r = np.random.default_rng(list(FP16_CASES).index(case))
    q, k, v, dout = (r.standard_normal(s).astype(np.float16) for s in [(B, H, T, D), (B, H, S, D), (B, H, S, D),
                                                                        (B, H, T, D)])
    pad = None
    if padding:
        pad = r.random((B, S)) < 0.3
        if B > 1:
            pad[0, :] = True
        pad[-1, S - 1] = False
    want = _attention_oracle(*(x.astype(np.float64) for x in (q, k, v)), causal, pad, scale, None,
                             dout.astype(np.float64))
    with _on(backend) as be:
        dev = [None if x is None else be.asarray(x) for x in (q, k, v, pad, dout)]
        out, cache = kernel.forward(*dev[:3], causal=causal, key_padding_mask=dev[3], scale=scale, dropout_mask=None)
        grads = kernel.backward(dev[4], cache)
    for name, got, ref in zip(["out", "dq", "dk", "dv"], (out, *grads), want):
        _close(name, got, ref, np.float16)
    if backend == EMULATED:
        assert {"attn_mma_fwd", "attn_mma_bwd_delta", "attn_mma_bwd_dkdv", "attn_mma_bwd_dq"} <= set(launched)
