import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import tinylm
from tinylm.backend import BackendMismatchError, BackendUnavailableError, array_module
from tinylm.backend.registry import get_kernel, list_kernels, register_kernel


def test_default_is_numpy():
    b = tinylm.get_backend()
    assert b.name == "numpy" and b.xp is np


def test_env_variable_sets_default():
    code = "import tinylm; print(tinylm.get_backend().name)"
    env = dict(os.environ, TINYLM_BACKEND="numba")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "numba"
    env["TINYLM_BACKEND"] = "fortran"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "TINYLM_BACKEND" in bad.stderr and "fortran" in bad.stderr


def test_use_backend_restores():
    with tinylm.use_backend("numba") as b:
        assert b.name == "numba" and tinylm.get_backend().name == "numba"
    assert tinylm.get_backend().name == "numpy"


def test_set_backend_unknown_name():
    with pytest.raises(ValueError, match=r"expected one of \('numpy', 'numba', 'cupy'\), got 'torch'"):
        tinylm.set_backend("torch")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed here")
def test_cupy_missing_says_how_to_install():
    with pytest.raises(BackendUnavailableError, match=r"pip install"):
        tinylm.set_backend("cupy")


class _FakeCupyArray:  # looks like a cupy array to the mismatch check
    __module__ = "cupy._core.core"
    shape = (2, 2)


def test_mixing_backends_is_a_clear_error():
    with pytest.raises(BackendMismatchError, match=r"b: is a cupy array but the active backend 'numpy'"):
        array_module(("a", np.zeros(2)), ("b", _FakeCupyArray()))
    with pytest.raises(TypeError, match=r"x: expected a numpy array, got list"):
        array_module(("x", [1.0, 2.0]))


def test_matmul_dispatches_to_registered_kernel(rng):
    from tinylm.backend import registry

    calls = []

    def spy(a, b):
        calls.append(a.shape)
        return a @ b

    tinylm.set_backend("numba")                   # loads the numba kernels first, so the spy overrides them
    tinylm.set_backend("numpy")
    before_kernels = dict(registry._KERNELS.get(("matmul", "numba"), {}))
    before_default = registry._DEFAULTS.get(("matmul", "numba"))
    register_kernel("matmul", "numba", "test_spy", spy, default=True)
    try:
        a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
        with tinylm.use_backend("numba"):
            np.testing.assert_allclose(tinylm.ops.matmul(a, b), a @ b)
        assert calls == [(3, 4)]
        tinylm.ops.matmul(a, b)          # numpy backend: the reference, not the spy
        assert calls == [(3, 4)]
    finally:                             # restore the registry exactly as it was
        registry._KERNELS[("matmul", "numba")] = before_kernels
        if before_default is None:
            registry._KERNELS.pop(("matmul", "numba"))
            registry._DEFAULTS.pop(("matmul", "numba"))
        else:
            registry._DEFAULTS[("matmul", "numba")] = before_default


def test_registry_lists_reference_kernels():
    keys = {k.key for k in list_kernels()}
    assert "matmul/numpy/v0_reference" in keys
    assert get_kernel("matmul", "numpy").version == "v0_reference"
    with pytest.raises(KeyError, match="registered versions"):
        get_kernel("matmul", "numpy", "v99")


@pytest.mark.parametrize("a_shape, b_shape, match", [
    ((3, 4), (5, 2), r"inner sizes differ: a\(3, 4\) has K=4 but b\(5, 2\) has K=5"),
    ((4,), (4, 2), r"need at least 2 dims"),
])
def test_matmul_bad_shapes(a_shape, b_shape, match):
    with pytest.raises(ValueError, match=match):
        tinylm.ops.matmul(np.ones(a_shape), np.ones(b_shape))


def test_use_backend_takes_back_a_backend_it_yielded():
    with tinylm.use_backend("numba") as numba_backend:
        pass
    assert tinylm.get_backend().name == "numpy"
    with tinylm.use_backend(numba_backend) as again:
        assert again is numba_backend and tinylm.get_backend() is numba_backend
    assert tinylm.get_backend().name == "numpy"
    with pytest.raises(TypeError, match="name must be a str or a Backend, got int"):
        with tinylm.use_backend(3):
            pass
