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
