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
settings.load_profile("fopa")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
