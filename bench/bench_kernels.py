"""pytest-benchmark benchmarks of the native searches (kept out of the default ``pytest`` run).

    pytest bench/bench_kernels.py --benchmark-enable                 # measure
    pytest bench/bench_kernels.py --benchmark-enable -m "not slow"   # without (1, 150528)
    pytest bench/bench_kernels.py                                    # one call each, no timing

Each benchmark records its pair (or feature) count in ``extra_info``, and the evaluations per
second at the median time when benchmarking is enabled.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch

import jsma_fast
from bench.broadcast import broadcast_select_pairs
from bench.common import make_inputs, num_pairs

PAIR_CASES = [
    pytest.param(100, 784, id="100x784"),
    pytest.param(32, 3072, id="32x3072"),
    pytest.param(8, 12288, id="8x12288"),
    pytest.param(1, 150528, id="1x150528", marks=pytest.mark.slow),
]


def _record_rate(benchmark: Any, evaluations: int) -> None:
    """Stores ``evaluations`` and, when timing was on, evaluations per second at the median."""
    benchmark.extra_info["evaluations"] = evaluations
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["evaluations_per_s"] = evaluations / stats.stats.median


def _run(benchmark: Any, fn: Callable[[], Any], few_rounds: bool) -> Any:
    """Benchmarks ``fn``; calls longer than about 0.1 s get 3 rounds instead of calibration."""
    if few_rounds:
        return benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    return benchmark(fn)


@pytest.mark.parametrize("batch, features", PAIR_CASES)
def test_select_pairs_exact(benchmark: Any, batch: int, features: int) -> None:
    """Exact pair search, all threads, on ``(batch, features)`` inputs."""
    benchmark.group = f"select_pairs {batch}x{features}"
    alpha, beta, domain = make_inputs(batch, features)
    result = _run(
        benchmark,
        lambda: jsma_fast.select_pairs(alpha, beta, domain, method="exact"),
        few_rounds=features > 100_000,
    )
    _record_rate(benchmark, num_pairs(batch, features))
    assert bool(result.valid.all())


def test_broadcast_select_pairs(benchmark: Any) -> None:
    """The broadcast selection at (100, 784), grouped with the kernel there for comparison;
    its answer must be the kernel's."""
    batch, features = 100, 784
    benchmark.group = f"select_pairs {batch}x{features}"
    alpha, beta, domain = make_inputs(batch, features)
    result = _run(benchmark, lambda: broadcast_select_pairs(alpha, beta, domain), True)
    _record_rate(benchmark, num_pairs(batch, features))
    expected = jsma_fast.select_pairs(alpha, beta, domain, method="exact")
    for got, want in zip(result, expected):
        assert torch.equal(got, want)


@pytest.mark.parametrize("threads", [1, 2])
def test_select_pairs_threads(benchmark: Any, threads: int) -> None:
    """Exact pair search at (1, 30000) on 1 and 2 threads (target: >= 8e9 pairs/s on 2)."""
    batch, features = 1, 30000
    benchmark.group = f"select_pairs {batch}x{features} threads"
    alpha, beta, domain = make_inputs(batch, features)
    result = benchmark(
        lambda: jsma_fast.select_pairs(alpha, beta, domain, method="exact", num_threads=threads)
    )
    _record_rate(benchmark, num_pairs(batch, features))
    assert bool(result.valid.all())


@pytest.mark.parametrize("batch, features", PAIR_CASES)
def test_select_features(benchmark: Any, batch: int, features: int) -> None:
    """Single-feature search S(x, t) and its arg-max (memory-bound, O(B * M))."""
    benchmark.group = "select_features"
    alpha, beta, domain = make_inputs(batch, features)
    result = benchmark(lambda: jsma_fast.select_features(alpha, beta, domain))
    _record_rate(benchmark, batch * features)
    assert bool(result.valid.all())
