"""The benchmark harness runs end to end on tiny sizes: every kernel validates, every row is timed.

(Speed is never asserted here: ratios are for ``python -m tinylm.bench`` to print.)
"""
import math

import pytest

import tinylm
from tinylm import bench
from tinylm.models.gpt import GPTConfig

BACKENDS = bench._available_backends(["numpy", "numba"])     # loads (and so registers) the Numba kernels


def _check_rows(rows, must_have):
    names = {r.name for r in rows}
    assert set(must_have) <= names, f"missing rows: {set(must_have) - names}"
    for r in rows:
        assert r.seconds > 0 and math.isfinite(r.gflops) and r.gflops > 0, r
        assert math.isfinite(r.vs_base) and r.vs_base > 0, r
    assert str(rows[0]).strip().startswith(rows[0].name)


def test_bench_matmul_validates_and_times_every_kernel(capsys):
    rows = bench.bench_matmul(BACKENDS, [(33, 17, 20)], repeats=1)
    _check_rows(rows, ["matmul/numpy/v0_reference", "matmul/numba/v4_blis", "matmul/numba/v1_naive"])
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("validate") >= 5


def test_bench_linear_gelu(capsys):
    rows = bench.bench_linear_gelu(BACKENDS, [(40, 16, 24)], repeats=1)
    _check_rows(rows, ["linear_gelu/numpy/v0_reference", "linear_gelu/numba/v4_blis"])
    assert "FAIL" not in capsys.readouterr().out


@pytest.mark.parametrize("causal", [True, False])
def test_bench_attention(causal, capsys):
    rows = bench.bench_attention(BACKENDS, [19], repeats=1, B=1, H=2, D=8, causal=causal)
    _check_rows(rows, ["attention/numpy/v0_reference", "attention/numba/v3_flash_blocks"])
    assert "FAIL" not in capsys.readouterr().out
    assert all("peak extra" in r.extra for r in rows if not r.name.startswith("torch"))


def test_bench_gpt_tokens_per_second():
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
    for backend in BACKENDS:
        assert bench.bench_gpt_tinylm(cfg, batch=2, steps=1, warmup=1, backend=backend) > 0


def test_torch_baselines_run_on_the_device_of_the_kernels_they_are_compared_with(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench._torch_devices(["numpy", "numba"]) == ["cpu"]
    assert bench._torch_devices(["cupy"]) == []                  # a GPU kernel is never timed against the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert bench._torch_devices(["cupy"]) == ["cuda"]
    assert bench._torch_devices(["numba", "cupy"]) == ["cpu", "cuda"]
    t = {"k@gpu": 2.0, "k@cpu": 4.0, "torch.matmul": 1.0, "torch.matmul@cuda": 3.0}
    where = {"k@gpu": "cupy", "k@cpu": "numba", "torch.matmul": "torch@cpu", "torch.matmul@cuda": "torch@cuda"}
    assert bench._vs_torch(t, where, "k@gpu", "torch.matmul") == 1.5
    assert bench._vs_torch(t, where, "k@cpu", "torch.matmul") == 0.25
    assert math.isnan(bench._vs_torch({"k": 1.0}, {"k": "cupy"}, "k", "torch.matmul"))


def test_bench_attention_in_half_precision(capsys):
    rows = bench.bench_attention(BACKENDS, [19], repeats=1, B=1, H=2, D=8, dtype="float16")
    _check_rows(rows, ["attention/numpy/v0_reference"])
    assert "FAIL" not in capsys.readouterr().out


def test_bench_validates_and_times_the_cupy_kernels_emulated(monkeypatch, capsys):
    """gpu_check.py's benchmark part, dry-run on the CPU: the cupy kernels (through the CUDA emulator)
    must pass the harness's validation in float32 and fp16 and get timed rows."""
    from tinylm.backend import cuda_emu, use_backend
    if cuda_emu.compiler() is None:
        pytest.skip("no C++ compiler for the CUDA emulator")
    backends_at_launch = set()                                 # on a GPU, a reference@cupy kernel run under
    launch = cuda_emu.EmulatedKernel.__call__                  # another backend fails: it reads xp from it
    monkeypatch.setattr(cuda_emu.EmulatedKernel, "__call__", lambda self, *a: (
        backends_at_launch.add(tinylm.get_backend().name), launch(self, *a))[1])
    with cuda_emu.emulated_cupy_backend() as emulated:         # "cupy" means the emulated backend
        monkeypatch.setattr(bench, "use_backend", lambda b: use_backend(emulated if b == "cupy" else b))
        monkeypatch.setattr(bench, "_sync", lambda backend: None)
        monkeypatch.setattr(bench, "_torch_devices", lambda backends: [])   # no GPU PyTorch to compare with
        with use_backend("numpy"):                             # timed calls must bring their backend along
            mm = bench.bench_matmul(["cupy"], [(70, 36, 68)], repeats=1)
            att32 = bench.bench_attention(["cupy"], [40], repeats=1, B=1, H=1, D=64)
            att16 = bench.bench_attention(["cupy"], [40], repeats=1, B=1, H=1, D=64, dtype="float16")
    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert {"matmul/cupy/v1_naive", "matmul/cupy/v2_tiled", "matmul/cupy/v3_blocktile",
            "matmul/numpy/v0_reference@cupy"} <= {r.name for r in mm}
    for rows in (att32, att16):
        assert {"attention/cupy/v1_flash2", "attention/cupy/v2_flash_tiles", "attention/cupy/v3_flash_mma",
                "attention/numpy/v0_reference@cupy"} <= {r.name for r in rows}
        assert all(r.seconds > 0 for r in rows)
    assert backends_at_launch == {"cupy"}
