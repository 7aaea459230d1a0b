"""The CuPy backend's check, in one run: validate every CUDA kernel, train a small GPT, benchmark.

    python examples/gpu_check.py                 # on a machine with an NVIDIA GPU and CuPy
    python examples/gpu_check.py --steps 300     # the GPT part's length (default 300)

tinylm need not be installed: run from a checkout, the script finds the package beside it (and
hands that path to the processes it starts), so it runs on a bare GPU machine that has NumPy,
Numba, SciPy, CuPy and pytest (PyTorch with CUDA adds its columns).

Written to be run as one prepared script whenever a GPU is at hand (issue #7):

1. ``pytest tests/test_kernels.py tests/test_cuda_sources.py -k "cupy and not emulated"``: every CUDA
   kernel on the GPU against the float64 oracle over awkward shapes, and the reference kernels there
   (CI has already run the same kernels on its CPU, through tinylm.backend.cuda_emu);
2. a whole GPT training step on numpy and on cupy: same loss and gradients to 1e-4 (float32);
3. a small GPT trained for ``--steps`` steps on the cupy backend: loss falls, tokens/s;
4. the harness's kernel tables on the GPU: matmul at n = 4096 against ``cupy.matmul`` (cuBLAS), and
   attention forward + backward at T = 1024..4096, in float32 and in fp16 (the tensor-core kernel),
   against the xp-written reference and, when a CUDA PyTorch is installed, its SDPA in the same dtype
   (fp16 pinned to its flash kernel); then the issue's two GPU bars as measured (matmul >= 0.5x cuBLAS
   at n = 4096, fp16 attention >= 0.5x PyTorch's flash at T = 4096).
Each part prints its own verdict, and a part that raises is reported and the others still run; the
exit status is non-zero when a part fails (the bars are reported, not enforced). Without CuPy or a
GPU it stops at once and says why.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
try:
    import tinylm
except ImportError:                      # a bare GPU machine: use the checkout this script lives in
    sys.path.insert(0, str(ROOT))
    import tinylm
from tinylm.backend import BackendUnavailableError, to_numpy

# the processes this script starts import the same tinylm
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(tinylm.__file__).parents[1]),
                                                                 os.environ.get("PYTHONPATH")]))}


def check_training_step_matches_numpy(backend: str = "cupy") -> bool:
    """Loss and every gradient of one GPT step, numpy vs ``backend``, float32, to 1e-4 relative."""
    from tinylm.models.gpt import GPT, GPTConfig
    from tinylm.nn.loss import CrossEntropyLoss
    cfg = GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_embd=64, dropout=0.0)
    idx = np.random.default_rng(0).integers(0, cfg.vocab_size, (4, cfg.block_size))
    results = {}
    for name in ("numpy", backend):
        with tinylm.use_backend(name) as be:
            tinylm.manual_seed(0)
            model, crit = GPT(cfg), CrossEntropyLoss()
            x = be.asarray(idx)
            loss = crit(model(x), x)
            model.backward(crit.backward())
            results[name] = (float(to_numpy(loss)),
                                {n: to_numpy(p.grad) for n, p in model.named_parameters()})
    (l0, g0), (l1, g1) = results["numpy"], results[backend]
    worst = max(float(np.abs(g1[n] - g0[n]).max() / max(np.abs(g0[n]).max(), 1e-12)) for n in g0)
    ok = abs(l1 - l0) <= 1e-4 * abs(l0) and worst <= 1e-4
    print(f"  loss numpy {l0:.6f} {backend} {l1:.6f}; worst relative gradient difference {worst:.1e}: "
          f"{'ok' if ok else 'FAIL'}")
    return ok


def train_small_gpt(steps: int, backend: str = "cupy", out: Path = ROOT / "runs" / "gpu_check") -> bool:
    """examples/train_gpt.py's 4-layer GPT on its built-in corpus for ``steps`` steps on ``backend``."""
    cmd = [sys.executable, str(ROOT / "examples" / "train_gpt.py"), "--backend", backend,
           "--max-iters", str(steps), "--warmup-iters", str(min(100, steps // 3)),
           "--eval-interval", str(max(steps // 3, 1)), "--sample-tokens", "0",
           "--out", str(out)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, env=ENV)
    print("\n".join("    " + line for line in done.stdout.strip().splitlines()[-8:]))
    if done.returncode:
        print(done.stderr[-3000:])
    print(f"  train_gpt.py --backend {backend}, {steps} steps: exit {done.returncode}, "
          f"{time.perf_counter() - t0:.0f} s wall")
    return done.returncode == 0


def gpu_bars(matmul_rows, attention_rows) -> list[str]:
    """The two GPU bars from the harness's rows: the default CUDA matmul against cupy.matmul (cuBLAS) at
    n = 4096, and the default CUDA attention in fp16 (the tensor-core kernel) against PyTorch's fp16
    flash kernel at T = 4096."""
    from tinylm.backend.registry import get_kernel
    secs = {(r.name, r.shape): r.seconds for r in matmul_rows + attention_rows}

    def bar(what, kernel, baseline, shape, need=0.5):
        mine, theirs = secs.get((kernel, shape)), secs.get((baseline, shape))
        if mine is None or theirs is None:
            return f"{what}: not measured ({kernel if mine is None else baseline} missing at {shape})"
        ratio = theirs / mine
        return f"{what}: {ratio:.2f}x {baseline} at {shape}: {'met' if ratio >= need else 'NOT met'} (bar {need}x)"
    return [bar("matmul", get_kernel("matmul", "cupy").key, "matmul/numpy/v0_reference@cupy", "4096x4096x4096"),
            bar("attention", get_kernel("attention", "cupy").key, "torch SDPA fp16 flash@cuda", "B4 H16 T4096 D64")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300, help="GPT training steps on the GPU")
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    try:
        with tinylm.use_backend("cupy"):
            pass
    except BackendUnavailableError as e:
        print(f"gpu_check: the cupy backend cannot run here: {e}")
        return 2
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"GPU: {props['name'].decode()}, CuPy {cupy.__version__}")

    verdicts = {}
    print("\n1. CUDA kernels against the float64 oracle (pytest)")
    verdicts["kernels"] = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_kernels.py",
         "tests/test_cuda_sources.py", "-k", "cupy and not emulated"], cwd=ROOT, env=ENV).returncode == 0
    print("\n2. one GPT training step, numpy vs cupy")
    verdicts["step"] = _part(check_training_step_matches_numpy)
    print("\n3. a small GPT trained on the GPU")
    verdicts["train"] = train_small_gpt(a.steps)
    print("\n4. benchmarks (vs np = against the reference kernel run on the GPU: cuBLAS for matmul)")
    tables = {}
    verdicts["bench"] = _part(lambda: bench_tables(tables, a.repeats))
    print("\n5. the issue's GPU bars, as measured")
    for line in gpu_bars(tables.get("matmul", []), tables.get("attention, causal, fp16", [])):
        print("  " + line)

    print("\nverdicts: " + ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in verdicts.items()))
    return 0 if all(verdicts.values()) else 1


def bench_tables(tables: dict, repeats: int) -> bool:
    """Fills ``tables`` (title -> rows) one table at a time, printing each as it comes: a failure in one
    leaves the tables before it measured."""
    from tinylm import bench
    backends = ["cupy"]
    plan = {"matmul": lambda: bench.bench_matmul(backends, [(4096, 4096, 4096)], repeats, naive_max_flops=2e11),
            "attention, causal, float32": lambda: bench.bench_attention(backends, [1024, 4096], repeats, B=4, H=16,
                                                                        D=64),
            "attention, causal, fp16": lambda: bench.bench_attention(backends, [1024, 4096], repeats, B=4, H=16,
                                                                     D=64, dtype="float16")}
    for title, run in plan.items():
        tables[title] = run()
        print(f"  {title}\n{bench.HEADER}")
        for row in tables[title]:
            print(row)
    return True


def _part(fn) -> bool:
    """fn()'s verdict; an exception is printed and counts as a failure, and the next parts still run
    (a GPU is lent for minutes: one broken part must not cost the others)."""
    try:
        return bool(fn())
    except Exception:
        traceback.print_exc()
        return False

if __name__ == "__main__":
    sys.exit(main())
