"""Times one pair-selection case in this process and prints its measurements as one JSON line.

``python -m bench.compare_kernels`` runs every case in a fresh process through this script,
so that the peak RSS of one case is not hidden by an earlier, larger one. Run alone for a
single case:

    python -m bench.kernel_case --impl kernel --batch 100 --features 784 --threads 2
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from typing import Any, Callable

import torch

import jsma_fast
from bench.broadcast import broadcast_select_pairs
from bench.common import (
    make_inputs,
    num_pairs,
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
    time_calls,
)

IMPLS = ("kernel", "broadcast")


def _selector(impl: str, inputs: tuple, threads: int) -> Callable[[], tuple]:
    alpha, beta, domain = inputs
    if impl == "kernel":
        return lambda: tuple(
            jsma_fast.select_pairs(alpha, beta, domain, method="exact", num_threads=threads)
        )
    return lambda: broadcast_select_pairs(alpha, beta, domain)


def _check_equal(inputs: tuple, result: tuple, threads: int) -> None:
    """Asserts that ``result`` is the exact kernel's answer on ``inputs``, bit for bit."""
    expected = _selector("kernel", inputs, threads)()
    for name, got, want in zip(("p", "q", "score", "valid"), result, expected):
        if not torch.equal(got, want):
            bad = int((got != want).sum())
            raise AssertionError(f"broadcast and kernel disagree on {name} in {bad} samples")


def run_case(
    impl: str, batch: int, features: int, threads: int, repeats: int, budget_s: float, seed: int
) -> dict[str, Any]:
    """Measures one case; the peak RSS increase counts from after imports and input creation."""
    torch.set_num_threads(threads)
    inputs = make_inputs(batch, features, seed)
    select = _selector(impl, inputs, threads)
    gc.collect()
    peak_reset = reset_peak_rss()
    baseline = rss_bytes() if peak_reset else peak_rss_bytes()

    timing = time_calls(select, repeats, budget_s)
    peak_increase = max(0, peak_rss_bytes() - baseline)

    checked = False
    if impl == "broadcast":
        _check_equal(inputs, select(), threads)
        checked = True
    return {
        "impl": impl,
        "batch": batch,
        "features": features,
        "threads": threads,
        "repeats": len(timing.times),
        "median_s": timing.median,
        "best_s": timing.best,
        "pairs_per_s": num_pairs(batch, features) / timing.median,
        "peak_rss_increase_bytes": peak_increase,
        "peak_reset": peak_reset,
        "checked_equal": checked,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=IMPLS, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--features", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=10, help="timed calls at most")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="stop after 3 calls once this many seconds"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run_case(
        args.impl, args.batch, args.features, args.threads, args.repeats, args.budget, args.seed
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
