"""The main job's script: it trains, checkpoints atomically and resumes exactly."""
import importlib.util
import pathlib

import numpy as np
import pytest

import tinylm

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8", "--batch-size", "4",
        "--max-iters", "6", "--warmup-iters", "2", "--eval-interval", "3", "--eval-iters", "2",
        "--sample-tokens", "5", "--no-progress"]


def test_train_resume_is_exact(tmp_path):
    train_gpt = load_example("train_gpt")
    data = tmp_path / "text.txt"
    data.write_text("to be or not to be, that is the question. " * 20)
    straight = train_gpt.main(TINY + ["--data", str(data), "--out", str(tmp_path / "a")])
    train_gpt.main(TINY + ["--data", str(data), "--out", str(tmp_path / "b"), "--stop-after", "3"])
    resumed = train_gpt.main(TINY + ["--data", str(data), "--out", str(tmp_path / "b"), "--resume"])
    assert straight["step"] == resumed["step"] == 6
    a = tinylm.load(tmp_path / "a" / "ckpt.safetensors")
    b = tinylm.load(tmp_path / "b" / "ckpt.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert straight["val"] == resumed["val"]


def test_builtin_corpus_needs_no_download():
    from tinylm.data.builtin import python_docs_text
    text = python_docs_text()
    assert len(text) > 200_000 and "assert" in text


def test_trains_and_samples_on_the_cupy_kernels_emulated(tmp_path):
    """What gpu_check.py's part 3 runs on a GPU (train_gpt on the cupy backend), here with the CUDA
    kernels emulated on the CPU: same losses as the numpy backend, to float32 rounding."""
    from tinylm.backend import cuda_emu
    if cuda_emu.compiler() is None:
        pytest.skip("no C++ compiler for the CUDA emulator")
    train_gpt = load_example("train_gpt")
    args = TINY + ["--data", str(ROOT / "README.md")]
    reference = train_gpt.main(args + ["--out", str(tmp_path / "numpy")])
    with cuda_emu.emulated_cupy_backend():
        emulated = train_gpt.main(args + ["--out", str(tmp_path / "cupy")])
    assert emulated["step"] == reference["step"] == 6
    np.testing.assert_allclose(emulated["val"], reference["val"], rtol=1e-4)
