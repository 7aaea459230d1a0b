import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import tinylm

# Property tests: bounded so the whole suite stays within CI's budget on 2 cores.
settings.register_profile("tinylm", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tinylm"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _numpy_backend():
    """Every test starts on the numpy backend with a fixed global seed."""
    with tinylm.use_backend("numpy"):
        tinylm.manual_seed(0)
        yield
