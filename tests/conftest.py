import os

import numpy as np
import pytest

# Fixed, CI-friendly hypothesis budget; seeds still change between runs.
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("JSMA_FAST_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")

SEED_VARIABLE = "JSMA_FAST_TEST_SEED"
_seed_key = pytest.StashKey[int]()


def pytest_collection_modifyitems(config, items):
    from jsma_fast import cuda_available

    if cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device (or jsma_fast built without CUDA)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A NumPy generator with a fresh seed each run, or ``JSMA_FAST_TEST_SEED``'s; a failing
    test reports the seed that reproduces it."""
    given = os.environ.get(SEED_VARIABLE)
    seed = int(given) if given else int(np.random.SeedSequence().entropy % 2**32)
    request.node.stash[_seed_key] = seed
    return np.random.default_rng(seed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    seed = item.stash.get(_seed_key, None)
    if report.failed and seed is not None:
        report.sections.append(
            ("rng seed", f"rerun with {SEED_VARIABLE}={seed} to draw the same inputs")
        )
