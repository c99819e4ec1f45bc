import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "fopa",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile(
    "explore",  # FOPA_HYPOTHESIS_PROFILE=explore: random, many more examples
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
settings.load_profile(os.environ.get("FOPA_HYPOTHESIS_PROFILE", "fopa"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_sessionstart(session):
    """On an empty numba cache (a fresh CI machine) compile fopa's kernels first, one
    part per core (``fopa.precompile``), instead of one after another inside the first
    tests that call them; a warm cache costs only the check."""
    from fopa.precompile import precompile

    jobs = min(os.cpu_count() or 1, 4)
    if jobs > 1:
        precompile(jobs, only_cold=True)
