"""One attack in a fresh process, so that its peak memory is its own.

``run_worker`` (in the parent) starts ``python -m bench.attacks.worker`` and reads back what
it saved: the outputs, the wall time of each timed run, the peak RSS increase (VmHWM over the
RSS after imports, model and data) and, for the default jsma-fast configuration, the gradient
floor and a profile.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import torch

from bench.attacks.floor import active_batch_sizes, profile_attack, replay_floor
from bench.attacks.registry import ATTACKS, GAMMA, THETA, load_model_and_digits, make_attack
from bench.common import ROOT, peak_rss_bytes, reset_peak_rss, rss_bytes


def run_worker(
    name: str,
    samples: int,
    attack_samples: int,
    *,
    threads: int,
    repeats: int,
    repeat_budget: float,
    timeout: float,
) -> dict[str, Any]:
    """Runs attack ``name`` on the first ``attack_samples`` of ``samples`` digits in a fresh
    process; returns its saved outputs, or ``{"error": ...}``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.pt"
        command = [
            sys.executable,
            "-m",
            "bench.attacks.worker",
            "--attack",
            name,
            "--samples",
            str(samples),
            "--attack-samples",
            str(attack_samples),
            "--threads",
            str(threads),
            "--repeats",
            str(repeats),
            "--repeat-budget",
            str(repeat_budget),
            "--out",
            str(out),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
            )
        except subprocess.TimeoutExpired:
            return {"error": f"did not finish within --timeout {timeout} s"}
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            return {
                "error": lines[-1] if lines else f"exit code {done.returncode}",
                "stderr": done.stderr,
            }
        return torch.load(out, weights_only=False)


def timed_runs(
    run: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor,
    repeats: int,
    repeat_budget: float,
) -> tuple[list[float], torch.Tensor, Any]:
    """Times ``run`` until ``repeats`` runs or ``repeat_budget`` seconds; returns the wall
    times and the last run's outputs."""
    times: list[float] = []
    while True:
        start = time.perf_counter()
        x_adv, result = run(x, y, target)
        times.append(time.perf_counter() - start)
        if len(times) >= repeats or sum(times) > repeat_budget:
            return times, x_adv, result


def floor_and_profile(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor,
    result: Any,
    repeats: int,
) -> dict[str, Any]:
    """The default configuration's gradient floor (median of the replays after one warm-up)
    and a profile of one more run."""
    passes = active_batch_sizes(result.iterations, result.stop_code)
    rows = [r for r, _ in passes]
    derivatives = [d for _, d in passes]
    replay_floor(model, x, rows, derivatives, target)  # warm-up
    floors = [replay_floor(model, x, rows, derivatives, target) for _ in range(max(repeats, 3))]
    return {
        "floor_s": statistics.median(floors),
        "floor_passes": passes,
        "profile": profile_attack(model, x, y, target, THETA, GAMMA),
    }


def work(args: argparse.Namespace) -> dict[str, Any]:
    """Runs one attack in this process: its outputs and measurements."""
    torch.set_num_threads(args.threads)
    model, x, y, target, _ = load_model_and_digits(args.samples)
    n = args.attack_samples or args.samples
    x, y, target = x[:n], y[:n], target[:n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = make_attack(args.attack, model, n)
    gc.collect()
    baseline = rss_bytes()
    peak_reset = reset_peak_rss()
    run(x[:1], y[:1], target[:1])  # warm-up: first-call allocations, thread pools, lazy imports
    times, x_adv, result = timed_runs(run, x, y, target, args.repeats, args.repeat_budget)
    peak = peak_rss_bytes() - baseline
    out: dict[str, Any] = {
        "attack": args.attack,
        "samples": n,
        "threads": torch.get_num_threads(),
        "times": times,
        "peak_rss_increase_bytes": peak,
        "peak_reset": peak_reset,
        "x_adv": x_adv.detach().cpu().contiguous(),
    }
    if result is not None:
        out["iterations"] = result.iterations
        out["stop_code"] = result.stop_code
    if args.attack == "jsma_fast" and result is not None:
        out.update(floor_and_profile(model, x, y, target, result, args.repeats))
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attack", choices=sorted(ATTACKS), required=True)
    parser.add_argument("--samples", type=int, required=True, help="digits loaded")
    parser.add_argument("--attack-samples", type=int, default=None, help="digits attacked")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--repeat-budget", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True, help="torch.save file")
    args = parser.parse_args(argv)
    torch.save(work(args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
