"""The benchmark harness: every registered matmul and attention kernel, validated, then timed.

    python -m tinylm.bench            # full: matmul n = 512..2048, linear + GELU, attention T = 256..2048, tiny GPT
    python -m tinylm.bench --quick    # under a minute once the Numba cache is warm

For each kernel of each available backend (numpy reference, numba, cupy with a GPU):

1. validate against the float64 reference kernel at an awkward shape: |got - ref| <= atol + rtol |ref|
   (a kernel that fails is reported and not timed);
2. time: the first call (JIT compile or cache load) is reported on its own, then the median of
   ``--repeats`` runs after a warm-up; GFLOP/s, the ratio to the NumPy/OpenBLAS baseline measured in
   the same run, and the ratio to PyTorch (``torch.matmul``, ``scaled_dot_product_attention``) when
   torch is importable; for attention also the peak extra host memory (tracemalloc: NumPy buffers,
   which is where every kernel here allocates its (T, S) or O(T) arrays);
3. end to end: training tokens/s of the README's tiny GPT (4 layers, 4 heads, 128 wide, block 128,
   batch 16, AdamW, float32) on each backend and, with torch, the same model in PyTorch eager.

Run it with torch available (e.g. a venv with torch and tinylm installed) to get the torch columns.
On a shared machine timings move a lot: ratios are measured side by side (interleaved repeats) so
that both sides see the same load; compare medians across several runs. OpenBLAS honours
``OPENBLAS_CORETYPE``; unset it to let it pick the best kernels for the CPU.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

import tinylm
from tinylm.backend import BACKEND_NAMES, BackendUnavailableError, to_numpy, use_backend
from tinylm.backend.registry import Kernel, get_kernel, list_kernels

__all__ = ["main", "bench_matmul", "bench_linear_gelu", "bench_attention", "bench_gpt_tinylm", "bench_gpt_torch"]

RTOL, ATOL = 1e-4, 1e-5          # float32 validation: atol is relative to max |ref|


# ----------------------------------------------------------------------------------------------
# Timing helpers.
# ----------------------------------------------------------------------------------------------

def _sync(backend: str):
    if backend == "cupy":
        import cupy
        cupy.cuda.Device().synchronize()
    elif backend == "torch@cuda":
        _torch().cuda.synchronize()


def _timed(fn, backend: str) -> float:
    _sync(backend)
    t0 = time.perf_counter()
    fn()
    _sync(backend)
    return time.perf_counter() - t0


def _on(be, fn):
    """fn, called with backend ``be`` active: a kernel timed after its setup block has closed (the
    reference kernels on CuPy check their arrays against the active backend)."""
    def run():
        with use_backend(be):
            return fn()
    return run


def _time_side_by_side(fns: dict, backends: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each fn, repeats interleaved so that every fn sees the same machine load.

    Each timed call follows an untimed call of the same fn: the thread pool of the library that ran
    before (OpenBLAS workers keep spinning after a call; OpenMP workers sleep and wake up on a busy
    core) would otherwise slow the first call down, which on 2 cores halved short kernels' speed.
    """
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn()
            times[name].append(_timed(fn, backends[name]))
    return {name: float(np.median(t)) for name, t in times.items()}


def _validate(got, ref, rtol=RTOL, atol=ATOL) -> tuple[bool, float]:
    got = to_numpy(got).astype(np.float64)
    bound = atol * max(np.abs(ref).max(), 1.0) + rtol * np.abs(ref)
    err = np.abs(got - ref)
    return bool(np.all(err <= bound)), float(err.max())


@dataclass(frozen=True)
class _Run:
    """A kernel and the backend it runs on (a reference kernel also runs on the GPU)."""
    kernel: Kernel
    backend: str

    @property
    def name(self) -> str:
        return self.kernel.key if self.backend == self.kernel.backend else f"{self.kernel.key}@{self.backend}"


def _runs(op: str, backends) -> list[_Run]:
    """Each kernel of ``op`` on its own backend; with the GPU, the reference kernels there too: on CuPy
    they are ``cupy.matmul`` (cuBLAS) and the xp-written attention, the baselines for the CUDA kernels."""
    runs = [_Run(k, k.backend) for k in list_kernels(op) if k.backend in backends]
    if "cupy" in backends:
        runs += [_Run(k, "cupy") for k in list_kernels(op) if k.backend == "numpy"]
    return runs


def _validated(runs: list[_Run], run, refs, **tol) -> list[_Run]:
    """The runs whose outputs ``run(kernel, backend)`` match ``refs`` (float64), printing each verdict
    and the first call's time (a JIT compile, or a load from Numba's cache)."""
    good = []
    for r in runs:
        with use_backend(r.backend) as be:
            t0 = time.perf_counter()
            outs = run(r.kernel, be)
            _sync(r.backend)
            first = time.perf_counter() - t0
        checks = [_validate(g, ref, **tol) for g, ref in zip(outs, refs)]
        ok, err = all(c[0] for c in checks), max(c[1] for c in checks)
        print(f"  validate {r.name:<28} {'ok ' if ok else 'FAIL'} max err {err:.1e}   first call {first:6.2f} s")
        if ok:
            good.append(r)
    return good


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_devices(backends) -> list[str]:
    """Where to run the PyTorch baselines: on the CPU beside CPU backends, on CUDA beside cupy (a GPU
    kernel is never compared with PyTorch on the CPU, nor the other way round)."""
    torch = _torch()
    if torch is None:
        return []
    devices = ["cpu"] if any(b != "cupy" for b in backends) else []
    if "cupy" in backends and torch.cuda.is_available():
        devices.append("cuda")
    return devices


def _torch_name(base: str, device: str) -> str:
    return base if device == "cpu" else f"{base}@cuda"


def _vs_torch(t: dict, where: dict, name: str, base: str) -> float:
    """Time of the PyTorch baseline on the row's own device over the row's time (nan without one)."""
    device = "cuda" if where[name] in ("cupy", "torch@cuda") else "cpu"
    return t.get(_torch_name(base, device), float("nan")) / t[name]


def _available_backends(wanted) -> list[str]:
    ok = []
    for name in wanted:
        try:
            with use_backend(name):
                pass
            ok.append(name)
        except BackendUnavailableError as e:
            print(f"  backend {name}: skipped ({e})")
    return ok


@dataclass
class Row:
    name: str
    shape: str
    seconds: float
    gflops: float
    vs_base: float
    vs_torch: float
    extra: str = ""

    def __str__(self):
        vt = f"{self.vs_torch:6.2f}x" if math.isfinite(self.vs_torch) else "      -"
        return (f"  {self.name:<32} {self.shape:<18} {self.seconds * 1e3:10.2f} ms {self.gflops:8.1f} "
                f"{self.vs_base:7.2f}x {vt}  {self.extra}")


HEADER = (f"  {'kernel':<32} {'shape':<18} {'median':>13} {'GFLOP/s':>8} {'vs np':>8} {'vs torch':>7}  extra")


# ----------------------------------------------------------------------------------------------
# matmul
# ----------------------------------------------------------------------------------------------

def bench_matmul(backends, shapes, repeats: int, naive_max_flops: float = 3e8) -> list[Row]:
    """Rows for every matmul kernel on ``backends`` at ``shapes`` [(M, K, N), ...], float32."""
    torch = _torch()
    kernels = _runs("matmul", backends)
    r = np.random.default_rng(0)
    a64, b64 = r.standard_normal((67, 45)), r.standard_normal((45, 37))
    ref = a64 @ b64
    good = _validated(kernels, lambda k, be: [k.forward(be.asarray(a64, np.float32), be.asarray(b64, np.float32))],
                      [ref])                                # 1. validate (and pay the JIT: timed apart)
    rows = []
    for M, K, N in shapes:
        flops = 2.0 * M * K * N
        a, b = r.standard_normal((M, K)).astype(np.float32), r.standard_normal((K, N)).astype(np.float32)
        fns, where = {}, {}
        for run in good:
            k = run.kernel
            if "naive" in k.version and flops > naive_max_flops:
                continue                                    # the teaching loop would take minutes
            with use_backend(run.backend) as be:
                ad, bd = be.asarray(a), be.asarray(b)
                k.forward(ad, bd)                           # warm-up
                fns[run.name] = _on(be, lambda k=k, ad=ad, bd=bd: k.forward(ad, bd))
                where[run.name] = run.backend
        for device in _torch_devices(backends):
            ta, tb = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
            torch.matmul(ta, tb)
            name = _torch_name("torch.matmul", device)
            fns[name], where[name] = (lambda ta=ta, tb=tb: torch.matmul(ta, tb)), f"torch@{device}"
        t = _time_side_by_side(fns, where, repeats)
        base = t.get("matmul/numpy/v0_reference", t.get("matmul/numpy/v0_reference@cupy", float("nan")))
        for name, sec in t.items():
            rows.append(Row(name, f"{M}x{K}x{N}", sec, flops / sec / 1e9, base / sec,
                            _vs_torch(t, where, name, "torch.matmul")))
    return rows


# ----------------------------------------------------------------------------------------------
# linear + GELU (the fused epilogue)
# ----------------------------------------------------------------------------------------------

def bench_linear_gelu(backends, shapes, repeats: int) -> list[Row]:
    """Rows for every "linear_gelu" kernel, y = gelu(x W^T + b), at shapes [(N, in, out), ...], float32.

    "vs np" is against the unfused NumPy path (matmul, bias add, then GELU's elementwise passes):
    the reference kernel, measured in the same run.
    """
    import tinylm.ops.linear  # noqa: F401  (registers the reference kernels)
    torch = _torch()
    kernels = _runs("linear_gelu", backends)
    reference = get_kernel("linear_gelu", "numpy")
    r = np.random.default_rng(0)
    x64, w64, b64 = r.standard_normal((67, 45)), r.standard_normal((37, 45)), r.standard_normal(37)
    refs = reference.forward(x64, w64, b64)                     # (y, h, s) in float64
    good = _validated(kernels, lambda k, be: k.forward(*(be.asarray(a, np.float32) for a in (x64, w64, b64))), refs)
    rows = []
    for N, fan_in, out in shapes:
        flops = 2.0 * N * fan_in * out
        x, w = r.standard_normal((N, fan_in)).astype(np.float32), r.standard_normal((out, fan_in)).astype(np.float32)
        b = r.standard_normal(out).astype(np.float32)
        fns, where = {}, {}
        for run in good:
            with use_backend(run.backend) as be:
                args = tuple(be.asarray(a) for a in (x, w, b))
                run.kernel.forward(*args)                       # warm-up
                fns[run.name], where[run.name] = _on(be, lambda k=run.kernel, args=args: k.forward(*args)), run.backend
        for device in _torch_devices(backends):
            tx, tw, tb = (torch.from_numpy(a).to(device) for a in (x, w, b))
            F = torch.nn.functional
            name = _torch_name("torch gelu(linear)", device)
            fns[name], where[name] = \
                (lambda tx=tx, tw=tw, tb=tb: F.gelu(F.linear(tx, tw, tb), approximate="tanh")), f"torch@{device}"
        t = _time_side_by_side(fns, where, repeats)
        base = t.get("linear_gelu/numpy/v0_reference", t.get("linear_gelu/numpy/v0_reference@cupy", float("nan")))
        for name, sec in t.items():
            rows.append(Row(name, f"{N}x{fan_in}->{out}", sec, flops / sec / 1e9, base / sec,
                            _vs_torch(t, where, name, "torch gelu(linear)")))
    return rows


# ----------------------------------------------------------------------------------------------
# attention
# ----------------------------------------------------------------------------------------------

def _attention_flops(B, H, T, D, causal) -> float:
    # forward: Q K^T and P V (2 products); backward: recomputed scores, dV, dP, dQ, dK (5): 7 x 2 B H T S D,
    # halved by a causal mask (the kernels skip masked key tiles; torch's flash kernel too)
    return 7 * 2.0 * B * H * T * T * D * (0.5 if causal else 1.0)


def _peak_extra_bytes(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def _torch_attention_step(torch, arrays, device: str, dtype: str, causal: bool):
    """One warmed-up forward + backward of PyTorch's SDPA on ``device`` in ``dtype``; fp16 is pinned to
    the flash backend (an error, not a silent fallback, if it cannot run it)."""
    tq, tk, tv, tdo = (torch.from_numpy(x).to(device=device, dtype=getattr(torch, dtype)) for x in arrays)
    for t in (tq, tk, tv):
        t.requires_grad_()
    F = torch.nn.functional

    def step():
        tq.grad = tk.grad = tv.grad = None
        F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).backward(tdo)
    if dtype == "float16":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def flash_step():
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                step()
        flash_step()
        return flash_step
    step()
    return step


def bench_attention(backends, Ts, repeats: int, B=4, H=4, D=64, causal=True, dtype="float32") -> list[Row]:
    """Rows for every attention kernel: forward + backward at (B, H, T, D), causal or not, in ``dtype``
    ("float32", or "float16" for the GPU's tensor-core kernel; validated to fp16's tolerance)."""
    torch = _torch()
    kernels = _runs("attention", backends)
    tol = {} if dtype == "float32" else {"rtol": 1e-2, "atol": 2e-3}
    reference = get_kernel("attention", "numpy")
    r = np.random.default_rng(0)
    # 1. validate at an awkward shape (T = 37, S = 45, key padding, causal) against float64 reference
    q64, k64, v64 = (r.standard_normal(s) for s in [(2, 2, 37, 24), (2, 2, 45, 24), (2, 2, 45, 24)])
    do64, pad = r.standard_normal((2, 2, 37, 24)), r.random((2, 45)) < 0.3
    kw = dict(causal=True, key_padding_mask=pad, scale=0.2, dropout_mask=None)
    o_ref, c_ref = reference.forward(q64, k64, v64, **kw)
    refs = (o_ref, *reference.backward(do64, c_ref))

    if dtype != "float32":                  # the oracle sees the inputs the kernels see: rounded to dtype
        q64, k64, v64, do64 = (x.astype(dtype).astype(np.float64) for x in (q64, k64, v64, do64))
        o_ref, c_ref = reference.forward(q64, k64, v64, **kw)
        refs = (o_ref, *reference.backward(do64, c_ref))

    def run(k, be):
        dev = [be.asarray(x, dtype) for x in (q64, k64, v64, do64)]
        out, cache = k.forward(*dev[:3], **{**kw, "key_padding_mask": be.asarray(pad)})
        return (out, *k.backward(dev[3], cache))
    good = _validated(kernels, run, refs, **tol)
    rows = []
    for T in Ts:
        flops = _attention_flops(B, H, T, D, causal)
        q, k_, v, do = (r.standard_normal((B, H, T, D)).astype(dtype) for _ in range(4))
        scale = 1 / math.sqrt(D)
        fns, where, mem = {}, {}, {}
        for run in good:
            kern = run.kernel
            with use_backend(run.backend) as be:
                dev = [be.asarray(x) for x in (q, k_, v, do)]

                def step(kern=kern, dev=dev):
                    out, cache = kern.forward(*dev[:3], causal=causal, key_padding_mask=None, scale=scale,
                                              dropout_mask=None)
                    return kern.backward(dev[3], cache)
                step()                                              # warm-up
                if run.backend != "cupy":
                    mem[run.name] = _peak_extra_bytes(step)
                fns[run.name], where[run.name] = _on(be, step), run.backend
        for device in _torch_devices(backends):
            # in the kernels' dtype; in half precision pinned to PyTorch's flash kernel, its fastest
            # (and the GPU bar's yardstick)
            name = _torch_name("torch SDPA" if dtype == "float32" else "torch SDPA fp16 flash", device)
            fns[name], where[name] = _torch_attention_step(torch, (q, k_, v, do), device, dtype, causal), \
                f"torch@{device}"
        t = _time_side_by_side(fns, where, repeats)
        base = t.get("attention/numpy/v0_reference", t.get("attention/numpy/v0_reference@cupy", float("nan")))
        for name, sec in t.items():
            extra = f"peak extra {mem[name] / 2**20:7.1f} MiB" if name in mem else ""
            rows.append(Row(name, f"B{B} H{H} T{T} D{D}", sec, flops / sec / 1e9, base / sec,
                            _vs_torch(t, where, name, "torch SDPA" if dtype == "float32" else "torch SDPA fp16 flash"),
                            extra))
    return rows


# ----------------------------------------------------------------------------------------------
# End to end: the tiny GPT.
# ----------------------------------------------------------------------------------------------

def bench_gpt_tinylm(cfg, batch: int, steps: int, warmup: int, backend: str) -> float:
    """Training tokens/s of tinylm's GPT on ``backend`` (AdamW, random token batches, float32)."""
    from tinylm.models.gpt import GPT
    from tinylm.nn.loss import CrossEntropyLoss
    from tinylm.optim import AdamW
    with use_backend(backend) as b:
        tinylm.manual_seed(0)
        model, crit = GPT(cfg), CrossEntropyLoss()
        opt = AdamW(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        t0 = 0.0
        for i in range(warmup + steps):
            if i == warmup:
                _sync(backend)
                t0 = time.perf_counter()
            x = b.asarray(rng.integers(0, cfg.vocab_size, (batch, cfg.block_size)))
            loss = crit(model(x), x)
            model.zero_grad()
            model.backward(crit.backward())
            opt.step()
        _sync(backend)
        if not np.isfinite(float(to_numpy(loss))):
            raise FloatingPointError(f"tiny GPT on {backend}: loss is {loss}")
        return steps * batch * cfg.block_size / (time.perf_counter() - t0)


def bench_gpt_torch(cfg, batch: int, steps: int, warmup: int) -> float | None:
    """The same GPT-2 architecture in PyTorch eager (tied head, tanh GELU, AdamW); None without torch."""
    torch = _torch()
    if torch is None:
        return None
    tnn, F = torch.nn, torch.nn.functional

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            C = cfg.n_embd
            self.ln_1, self.ln_2 = tnn.LayerNorm(C), tnn.LayerNorm(C)
            self.c_attn, self.c_proj = tnn.Linear(C, 3 * C), tnn.Linear(C, C)
            self.c_fc, self.mlp_proj = tnn.Linear(C, 4 * C), tnn.Linear(4 * C, C)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, cfg.n_head, -1).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
            x = x + self.c_proj(y)
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class TorchGPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte = tnn.Embedding(cfg.vocab_size, cfg.n_embd)
            self.wpe = tnn.Embedding(cfg.block_size, cfg.n_embd)
            self.h = tnn.ModuleList(Block() for _ in range(cfg.n_layer))
            self.ln_f = tnn.LayerNorm(cfg.n_embd)

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for blk in self.h:
                x = blk(x)
            return self.ln_f(x) @ self.wte.weight.T

    torch.manual_seed(0)
    model = TorchGPT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        x = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size), generator=gen)
        loss = F.cross_entropy(model(x).view(-1, cfg.vocab_size), x.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch * cfg.block_size / (time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def _machine() -> str:
    torch = _torch()
    import numba
    blas = ""
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{cfg.get('name', '?')} {cfg.get('version', '')}"
    except Exception:                                        # older NumPy: no dict mode
        pass
    return (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs | numpy {np.__version__} "
            f"({blas}), numba {numba.__version__} ({numba.get_num_threads()} threads)"
            + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch
               else ", torch: not installed")
            + f" | OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m tinylm.bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (under a minute, warm cache)")
    p.add_argument("--backends", default=",".join(BACKEND_NAMES), help="comma-separated (default: all available)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per kernel (median reported)")
    p.add_argument("--skip", default="", help="comma-separated sections to skip: matmul,linear,attention,gpt")
    a = p.parse_args(argv)
    skip = set(filter(None, a.skip.split(",")))
    repeats = a.repeats or (3 if a.quick else 7)
    print(_machine())
    backends = _available_backends([b.strip() for b in a.backends.split(",") if b.strip()])
    t_start = time.perf_counter()

    if "matmul" not in skip:
        shapes = ([(512, 512, 512), (2048, 128, 512)] if a.quick else
                  [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),
                   (2048, 128, 512), (2048, 512, 128), (512, 2048, 128)])
        print("\nmatmul, float32 (M x K x N; vs np = speed relative to numpy.matmul/OpenBLAS in this run)")
        rows = bench_matmul(backends, shapes, repeats)
        print(HEADER)
        for row in rows:
            print(row)

    if "linear" not in skip:
        shapes = [(2048, 128, 512)] if a.quick else [(2048, 128, 512), (8192, 256, 1024)]
        print("\nlinear + GELU forward, float32 (N x in -> out; vs np = against the unfused NumPy matmul + bias + GELU)")
        rows = bench_linear_gelu(backends, shapes, repeats)
        print(HEADER)
        for row in rows:
            print(row)

    if "attention" not in skip:
        Ts = [256, 1024] if a.quick else [256, 1024, 2048]
        for causal in ((True,) if a.quick else (True, False)):
            print(f"\nattention forward + backward, float32, {'causal (GFLOP/s counts the unmasked half)' if causal else 'no mask'}")
            rows = bench_attention(backends, Ts, max(1, repeats // 2) if a.quick else repeats, causal=causal)
            print(HEADER)
            for row in rows:
                print(row)

    if "gpt" not in skip:
        from tinylm.models.gpt import GPTConfig
        cfg = GPTConfig(vocab_size=65, block_size=128, n_layer=4, n_head=4, n_embd=128)
        steps, warmup, rounds = (3, 1, 1) if a.quick else (10, 2, 3)
        print(f"\ntiny GPT training (4 layers, 4 heads, 128 wide, block 128, batch 16, AdamW, float32), "
              f"{steps} steps after {warmup} warm-up, median of {rounds} interleaved rounds")
        runs: dict[str, list] = {"pytorch eager": []}
        for _ in range(rounds):                              # interleaved: every side sees the same load
            runs["pytorch eager"].append(bench_gpt_torch(cfg, 16, steps, warmup))
            for name in backends:
                runs.setdefault(f"tinylm {name}", []).append(bench_gpt_tinylm(cfg, 16, steps, warmup, name))
        results = [(name, None if None in v else float(np.median(v))) for name, v in runs.items()]
        ref = results[0][1]
        for name, tps in results:
            if tps is None:
                print(f"  {name:<16} (torch not installed)")
            else:
                vs = f"{tps / ref:6.2f}x torch" if ref else ""
                print(f"  {name:<16} {tps:10,.0f} tokens/s  {vs}")
    print(f"\ntotal {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
