import os

import pytest

# Fixed, CI-friendly hypothesis budget; seeds still change between runs.
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=int(os.environ.get("JSMA_FAST_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")


def pytest_collection_modifyitems(config, items):
    from jsma_fast import cuda_available

    if cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device (or jsma_fast built without CUDA)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
