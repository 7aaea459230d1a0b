"""examples/gpu_check.py, the prepared GPU script: its parts run here on the Numba backend, and
without a GPU it stops at once with a clear message."""
import importlib.util
from pathlib import Path

import pytest

import tinylm
from tinylm.backend import BackendUnavailableError

PATH = Path(__file__).resolve().parents[1] / "examples" / "gpu_check.py"
spec = importlib.util.spec_from_file_location("gpu_check", PATH)
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def _has_gpu() -> bool:
    try:
        with tinylm.use_backend("cupy"):
            return True
    except BackendUnavailableError:
        return False


@pytest.mark.skipif(_has_gpu(), reason="a GPU is present: the script would run in full")
def test_without_a_gpu_it_says_why_and_exits_2(capsys):
    assert gpu_check.main([]) == 2
    assert "the cupy backend cannot run here" in capsys.readouterr().out


def test_training_step_check_passes_on_a_matching_backend(capsys):
    assert gpu_check.check_training_step_matches_numpy("numba")
    assert "ok" in capsys.readouterr().out


def test_training_part_runs_train_gpt(tmp_path, capsys):
    assert gpu_check.train_small_gpt(2, "numpy", out=tmp_path / "run")
    assert "exit 0" in capsys.readouterr().out


def test_gpu_bars_read_the_harness_rows():
    from tinylm import bench
    from tinylm.backend import cupy_kernels  # noqa: F401  (registers the cupy kernels the bars name)
    mm = [bench.Row("matmul/cupy/v3_blocktile", "4096x4096x4096", 2.0, 1, 1, 1),
          bench.Row("matmul/numpy/v0_reference@cupy", "4096x4096x4096", 1.2, 1, 1, 1)]
    att = [bench.Row("attention/cupy/v3_flash_mma", "B4 H16 T4096 D64", 4.0, 1, 1, 1),
           bench.Row("torch SDPA fp16 flash@cuda", "B4 H16 T4096 D64", 1.0, 1, 1, 1)]
    lines = gpu_check.gpu_bars(mm, att)
    assert lines[0] == ("matmul: 0.60x matmul/numpy/v0_reference@cupy at 4096x4096x4096: met (bar 0.5x)")
    assert lines[1].startswith("attention: 0.25x torch SDPA fp16 flash@cuda") and "NOT met" in lines[1]
    assert "not measured (torch SDPA fp16 flash@cuda missing" in gpu_check.gpu_bars(mm, att[:1])[1]


def test_a_part_that_raises_is_a_failure_and_the_script_goes_on(capsys):
    def broken():
        raise RuntimeError("kernel exploded")
    assert gpu_check._part(broken) is False
    assert "RuntimeError: kernel exploded" in capsys.readouterr().err
    assert gpu_check._part(lambda: True) is True
