"""The raw-CUDA kernels (tinylm/backend/cuda/*.cu, registered by tinylm/backend/cupy_kernels.py).

Without a GPU: every source must compile with ``nvcc --ptx -arch=sm_90`` (skipped, with the reason,
when nvcc is not installed) and define the kernels cupy_kernels.py launches; the module must import
and register without CuPy. With CuPy and a GPU: the kernels run against the reference (the generic
comparison over odd shapes is tests/test_kernels.py, which picks the cupy kernels up automatically)
and a GPT training step on the cupy backend matches the numpy backend. Without a GPU, that step and
the large matmuls run on the CPU too, through tinylm.backend.cuda_emu ("emulated").
"""
import ctypes
import functools
import importlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import tinylm
from tinylm.backend import BackendUnavailableError, cuda_emu
from tinylm.backend.cupy_kernels import CUDA_DIR, SOURCES

NVCC = shutil.which("nvcc")
CU_FILES = sorted(CUDA_DIR.glob("*.cu"))


def test_every_source_is_listed_and_exists():
    assert sorted(p.name for p in CU_FILES) == sorted(SOURCES)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed: cannot compile the .cu sources here")
@pytest.mark.parametrize("path", CU_FILES, ids=lambda p: p.name)
def test_source_compiles_with_nvcc(path, tmp_path):
    ptx = tmp_path / (path.stem + ".ptx")
    res = subprocess.run([NVCC, "--ptx", "-arch=sm_90", "-std=c++14", str(path), "-o", str(ptx)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"nvcc failed on {path.name}:\n{res.stderr}"
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx.read_text()))
    assert set(SOURCES[path.name]) <= entries, f"{path.name}: kernels {entries}, expected {SOURCES[path.name]}"
    assert "warning" not in res.stderr.lower(), res.stderr


def _nvrtc():
    """libnvrtc, the compiler CuPy's RawModule uses (from the nvidia-cuda-nvrtc wheel); None without it."""
    for entry in map(Path, sys.path):
        for lib in sorted(entry.glob("nvidia/*/lib/libnvrtc.so.*")):
            if not re.fullmatch(r"libnvrtc\.so\.\d+", lib.name):
                continue
            for builtins in lib.parent.glob("libnvrtc-builtins.so.*"):     # found by soname once loaded
                if re.fullmatch(r"libnvrtc-builtins\.so\.[\d.]+", builtins.name):
                    ctypes.CDLL(str(builtins), mode=ctypes.RTLD_GLOBAL)
            return ctypes.CDLL(str(lib))
    return None


NVRTC = _nvrtc()


@pytest.mark.skipif(NVRTC is None, reason="libnvrtc not found (pip install nvidia-cuda-nvrtc, in the test extra)")
@pytest.mark.parametrize("path", CU_FILES, ids=lambda p: p.name)
def test_source_compiles_with_nvrtc_as_cupy_does(path):
    """NVRTC, unlike nvcc, sees no host headers (no <math.h>, so no INFINITY): each source must stand alone."""
    prog = ctypes.c_void_p()
    assert NVRTC.nvrtcCreateProgram(ctypes.byref(prog), path.read_bytes(), path.name.encode(), 0, None, None) == 0
    # cupy_kernels.py's option, then what CuPy 14 adds for an H100/H200: flush-to-zero, sm_90 machine code
    options = [b"--std=c++14", b"-ftz=true", b"-arch=sm_90"]
    rc = NVRTC.nvrtcCompileProgram(prog, len(options), (ctypes.c_char_p * len(options))(*options))
    size = ctypes.c_size_t()
    NVRTC.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    NVRTC.nvrtcGetProgramLog(prog, log)
    assert rc == 0, f"NVRTC failed on {path.name}:\n{log.value.decode()}"
    assert "warning" not in log.value.decode().lower(), log.value.decode()
    NVRTC.nvrtcGetPTXSize(prog, ctypes.byref(size))
    ptx = ctypes.create_string_buffer(size.value)
    NVRTC.nvrtcGetPTX(prog, ptx)
    NVRTC.nvrtcDestroyProgram(ctypes.byref(prog))
    assert set(SOURCES[path.name]) <= set(re.findall(r"\.entry\s+(\w+)", ptx.value.decode()))


# Sources whose every per-thread array has a compile-time size, so all of it must live in registers:
# a run-time index (or too many live values) would put it in local memory, a device-memory round
# trip per access (attention v1 does that on purpose, as the "before" picture: 1-2 KiB per thread).
REGISTER_ONLY = ["matmul_v2_tiled.cu", "matmul_v3_blocktile.cu", "attention_v2_tiles.cu", "attention_v3_mma.cu"]


@functools.cache
def _ptxas_report(name: str) -> dict[str, dict[str, int]]:
    """Per kernel of source ``name``, what ptxas reports for sm_90: stack, spills, registers, smem bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([NVCC, "-cubin", "-arch=sm_90", "-std=c++14", "-Xptxas", "-v", str(CUDA_DIR / name),
                              "-o", str(Path(tmp) / "k.cubin")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    # "Function properties for k" / "N bytes stack frame, N bytes spill stores, ..." / "Used N registers, ... N bytes smem"
    report = {}
    for kernel, block in re.findall(r"Function properties for (\w+)\n(.*?)(?=ptxas info\s+: Compiling|\Z)", res.stderr, re.S):
        smem = re.search(r"(\d+) bytes smem", block)
        report[kernel] = {"stack": int(re.search(r"(\d+) bytes stack frame", block)[1]),
                          "spills": int(re.search(r"(\d+) bytes spill stores", block)[1]),
                          "registers": int(re.search(r"Used (\d+) registers", block)[1]),
                          "smem": int(smem[1]) if smem else 0}
    assert set(report) == set(SOURCES[name]), res.stderr
    return report


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed: cannot compile the .cu sources here")
@pytest.mark.parametrize("name", REGISTER_ONLY)
def test_kernels_keep_their_arrays_in_registers(name):
    for kernel, r in _ptxas_report(name).items():
        assert r["stack"] == 0 and r["spills"] == 0, f"{kernel}: {r}"


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed: cannot compile the .cu sources here")
@pytest.mark.parametrize("path", CU_FILES, ids=lambda p: p.name)
def test_every_source_assembles_for_sm_90(path):
    """ptxas, which the --ptx compile above never runs, assembles every kernel for sm_90 (as CuPy's
    NVRTC does when it makes a cubin): it refuses more than 48 KiB of static shared memory per block
    or 255 registers per thread, the limits restated here."""
    for kernel, r in _ptxas_report(path.name).items():
        assert r["smem"] <= 48 * 1024, f"{kernel}: {r['smem']} bytes of shared memory"
        assert r["registers"] <= 255, f"{kernel}: {r}"


def test_module_imports_and_registers_without_cupy():
    mod = importlib.import_module("tinylm.backend.cupy_kernels")          # cupy is imported lazily
    reg = tinylm.backend.registry
    assert reg.get_kernel("matmul", "cupy").forward is mod.matmul_blocktile
    assert reg.get_kernel("attention", "cupy").forward is mod.flash_mma_forward
    assert reg.get_kernel("attention", "cupy").backward is mod.flash_backward
    assert {k.version for k in reg.list_kernels("attention") if k.backend == "cupy"} == {
        "v1_flash2", "v2_flash_tiles", "v3_flash_mma"}
    assert {k.version for k in reg.list_kernels("matmul") if k.backend == "cupy"} == {"v1_naive", "v2_tiled", "v3_blocktile"}


def _backend_or_skip(name):
    """A context running on ``name``: "cupy" on a GPU, or "emulated" (the cupy kernels on the CPU)."""
    if name == "emulated":
        if cuda_emu.compiler() is None:
            pytest.skip("no C++ compiler (g++ or $CXX) for the CUDA emulator")
        return cuda_emu.emulated_cupy_backend
    try:
        with tinylm.use_backend("cupy"):
            pass
    except BackendUnavailableError as e:
        pytest.skip(str(e))
    return lambda: tinylm.use_backend("cupy")


def _gpt_step(on):
    from tinylm.models.gpt import GPT, GPTConfig
    from tinylm.nn.loss import CrossEntropyLoss
    with on() as be:
        tinylm.manual_seed(0)
        model, crit = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=32)), CrossEntropyLoss()
        x = be.asarray(np.random.default_rng(0).integers(0, 11, (3, 16)))
        loss = crit(model(x), x)
        model.zero_grad()
        model.backward(crit.backward())
        return float(tinylm.to_numpy(loss)), {n: tinylm.to_numpy(p.grad) for n, p in model.named_parameters()}


@pytest.mark.parametrize("where", ["gpu", "emulated"])
def test_gpt_training_step_on_cupy_matches_numpy(where, monkeypatch):
    on = _backend_or_skip("cupy" if where == "gpu" else where)
    calls = []
    if where == "emulated":                   # the CUDA kernels must be the ones doing the work
        launch = cuda_emu.EmulatedKernel.__call__
        monkeypatch.setattr(cuda_emu.EmulatedKernel, "__call__",
                            lambda self, *a: (calls.append(self.name), launch(self, *a))[1])
    loss_np, g_np = _gpt_step(lambda: tinylm.use_backend("numpy"))
    loss_cp, g_cp = _gpt_step(on)
    if where == "emulated":
        assert {"matmul_blocktile", "attn_tiles_fwd_d32", "flash_bwd_delta", "attn_tiles_bwd_dkdv_d32",
                "attn_tiles_bwd_dq_d32"} <= set(calls), set(calls)
    assert abs(loss_cp - loss_np) <= 1e-4 * abs(loss_np)
    for name in g_np:
        np.testing.assert_allclose(g_cp[name], g_np[name], rtol=0, atol=1e-4 * np.abs(g_np[name]).max(), err_msg=name)


@pytest.mark.parametrize("where", ["gpu", "emulated"])
def test_cupy_matmul_large_and_batched(where):
    on = _backend_or_skip("cupy" if where == "gpu" else where)
    from tinylm.backend import cupy_kernels as ck
    r = np.random.default_rng(0)
    # odd sizes take the scalar paths; K, N multiples of 4 the float4 ones (with edge tiles on every side)
    for a_shape, b_shape in [((300, 257), (257, 129)), ((2, 3, 65, 70), (3, 70, 33)), ((130, 68), (68, 132)),
                             ((2, 3, 129, 64), (3, 64, 36))]:
        a, b = r.standard_normal(a_shape).astype(np.float32), r.standard_normal(b_shape).astype(np.float32)
        want = np.matmul(a.astype(np.float64), b.astype(np.float64))
        with on() as be:
            for f in (ck.matmul_naive, ck.matmul_tiled, ck.matmul_blocktile):
                got = tinylm.to_numpy(f(be.asarray(a), be.asarray(b)))
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())
