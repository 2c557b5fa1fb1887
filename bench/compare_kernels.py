"""The exact pair-search kernel against the PyTorch broadcast selection, on this machine.

For each (B, M) case both run in fresh processes (``bench.kernel_case``) on the same seeded
inputs; the broadcast selection runs only where its estimated peak fits the memory limit, and
its answers are asserted equal to the kernel's. Reports the median wall time, pair
evaluations per second (B * M * (M - 1) / 2 / time), the peak RSS increase, and the ratio
broadcast time / kernel time; then the exact kernel at (1, 30000) on 1 and 2 threads.

    python -m bench.compare_kernels --quick            # smoke run, a minute or less
    python -m bench.compare_kernels --write-results    # full run, updates bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.broadcast import broadcast_memory
from bench.common import (
    BENCH_DIR,
    GIB,
    MIB,
    ROOT,
    command,
    environment,
    format_bytes,
    num_pairs,
    write_csv,
)
from bench.results_file import RESULTS, write_section

CASES: tuple[tuple[int, int], ...] = ((100, 784), (32, 3072), (8, 12288), (1, 150528))
QUICK_CASES: tuple[tuple[int, int], ...] = ((100, 784), (8, 12288))
SCALING_CASE = (1, 30000)
SPEEDUP_TARGET = 100.0  # at (100, 784), against the broadcast selection
PAIRS_PER_S_TARGET = 8e9  # exact search at (1, 30000) on both cores
SECTION = "kernels"

CSV_FIELDS = (
    "impl",
    "batch",
    "features",
    "threads",
    "status",
    "repeats",
    "median_s",
    "best_s",
    "pairs_per_s",
    "peak_rss_increase_bytes",
    "broadcast_bytes_per_tensor",
    "broadcast_peak_bytes",
    "speedup",
)


@dataclass
class Row:
    """One measured (or skipped) implementation at one case."""

    impl: str
    batch: int
    features: int
    threads: int
    status: str  # "ok", or why it did not run
    measured: dict[str, Any] | None = None
    speedup: float | None = None  # broadcast median / kernel median, on broadcast rows

    def csv_record(self) -> dict[str, Any]:
        memory = broadcast_memory(self.batch, self.features)
        record: dict[str, Any] = {
            "impl": self.impl,
            "batch": self.batch,
            "features": self.features,
            "threads": self.threads,
            "status": self.status,
            "broadcast_bytes_per_tensor": memory.per_tensor,
            "broadcast_peak_bytes": int(memory.peak),
            "speedup": "" if self.speedup is None else f"{self.speedup:.1f}",
        }
        for key in ("repeats", "median_s", "best_s", "pairs_per_s", "peak_rss_increase_bytes"):
            record[key] = "" if self.measured is None else self.measured[key]
        return record


def run_worker(
    impl: str, batch: int, features: int, threads: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Runs ``bench.kernel_case`` in a fresh process and returns its JSON measurements."""
    command = [
        sys.executable,
        "-m",
        "bench.kernel_case",
        "--impl",
        impl,
        "--batch",
        str(batch),
        "--features",
        str(features),
        "--threads",
        str(threads),
        "--repeats",
        str(args.repeats),
        "--budget",
        str(args.budget),
        "--seed",
        str(args.seed),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=args.case_timeout, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed with exit code {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def mem_available_bytes() -> int:
    """MemAvailable of /proc/meminfo: what may be allocated now without swapping."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemAvailable")


def broadcast_skip_reason(batch: int, features: int, limit_bytes: float) -> str | None:
    """Why the broadcast selection must not run at this case, or None when it fits."""
    memory = broadcast_memory(batch, features)
    needs = f"needs {format_bytes(memory.per_tensor)} per tensor, {format_bytes(memory.peak)}"
    if memory.peak > limit_bytes:
        return f"not run: {needs} at peak (limit {format_bytes(limit_bytes)})"
    if memory.peak > 0.9 * mem_available_bytes():
        return f"not run: {needs} at peak (only {format_bytes(mem_available_bytes())} free)"
    return None


def measure(args: argparse.Namespace) -> tuple[list[Row], list[Row]]:
    """Measures the comparison cases and the thread scaling; returns both lists of rows."""
    cases = QUICK_CASES if args.quick else CASES
    limit = args.memory_limit_gib * GIB
    compared: list[Row] = []
    for batch, features in cases:
        print(f"({batch}, {features}): exact kernel ...", file=sys.stderr, flush=True)
        kernel = Row(
            "kernel",
            batch,
            features,
            args.threads,
            "ok",
            run_worker("kernel", batch, features, args.threads, args),
        )
        compared.append(kernel)
        reason = broadcast_skip_reason(batch, features, limit)
        if reason is not None:
            compared.append(Row("broadcast", batch, features, args.threads, reason))
            continue
        print(f"({batch}, {features}): broadcast ...", file=sys.stderr, flush=True)
        measured = run_worker("broadcast", batch, features, args.threads, args)
        speedup = measured["median_s"] / kernel.measured["median_s"]
        compared.append(Row("broadcast", batch, features, args.threads, "ok", measured, speedup))

    scaling: list[Row] = []
    batch, features = SCALING_CASE
    for threads in args.scaling_threads:
        print(f"({batch}, {features}): exact kernel on {threads} thread(s) ...", file=sys.stderr)
        measured = run_worker("kernel", batch, features, threads, args)
        scaling.append(Row("kernel", batch, features, threads, "ok", measured))
    return compared, scaling


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _measured_cells(row: Row) -> list[str]:
    """Time, pairs/s and peak RSS increase of a row, or its skip reason."""
    if row.measured is None:
        return [row.status, "", ""]
    m = row.measured
    return [
        _time(m["median_s"]),
        f"{m['pairs_per_s']:.2e}",
        f"{m['peak_rss_increase_bytes'] / MIB:.0f} MiB",
    ]


def comparison_table(rows: Sequence[Row]) -> str:
    """Markdown table: one line per (B, M) with the kernel and the broadcast selection."""
    lines = [
        (
            "| B | M | pairs | kernel time | kernel pairs/s | kernel peak RSS | broadcast time "
            "| broadcast pairs/s | broadcast peak RSS | broadcast / kernel |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kernel, broadcast in zip(rows[0::2], rows[1::2]):
        ratio = "" if broadcast.speedup is None else f"**{broadcast.speedup:.0f}x**"
        cells = [
            str(kernel.batch),
            str(kernel.features),
            f"{num_pairs(kernel.batch, kernel.features):.2e}",
            *_measured_cells(kernel),
            *_measured_cells(broadcast),
            ratio,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_table(rows: Sequence[Row]) -> str:
    """Markdown table of the exact kernel at one case on several thread counts."""
    lines = ["| B | M | threads | time | pairs/s |", "|---:|---:|---:|---:|---:|"]
    for row in rows:
        time_cell, rate, _ = _measured_cells(row)
        lines.append(f"| {row.batch} | {row.features} | {row.threads} | {time_cell} | {rate} |")
    return "\n".join(lines)


def target_lines(compared: Sequence[Row], scaling: Sequence[Row]) -> list[str]:
    """The targets, each with the number measured in this run and met / not met."""
    lines = []
    for row in compared:
        if (row.impl, row.batch, row.features) == ("broadcast", 100, 784) and row.speedup:
            verdict = "met" if row.speedup >= SPEEDUP_TARGET else "NOT met"
            lines.append(
                f"- (100, 784): the kernel is {row.speedup:.0f}x faster than the "
                f"broadcast selection (target >= {SPEEDUP_TARGET:.0f}x): "
                f"{verdict}"
            )
    for row in scaling:
        if row.threads == 2 and row.measured is not None:
            rate = row.measured["pairs_per_s"]
            verdict = "met" if rate >= PAIRS_PER_S_TARGET else "NOT met"
            lines.append(
                f"- {SCALING_CASE}, 2 threads: {rate:.2e} pairs/s "
                f"(target >= {PAIRS_PER_S_TARGET:.0e}): {verdict}"
            )
    for row in compared:
        if (row.impl, row.batch, row.features) == ("kernel", 1, 150528):
            lines.append(
                f"- (1, 150528): answered exactly in {_time(row.measured['median_s'])}"
                f"; the broadcast selection needs "
                f"{format_bytes(broadcast_memory(1, 150528).per_tensor)} per "
                "tensor"
            )
    return lines


def machine_facts() -> list[str]:
    """CPU, cores, SIMD level chosen at run time, load, and the versions in use; first, a
    warning when the machine is busy."""
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()
    # Any other runnable process takes a core from the all-thread runs.
    busy = load[0] > 0.5 * cores
    shown = ", ".join(f"{x:.2f}" for x in load)
    warning = [f"- **Busy machine** (load {shown} on {cores} cores): timings not representative"]
    return [*(warning if busy else []), *environment()]


def report(
    compared: Sequence[Row], scaling: Sequence[Row], facts: Sequence[str], args: argparse.Namespace
) -> str:
    """The Markdown report: command, machine facts, both tables, the targets, how measured."""
    threads = f"{args.threads} threads for both (torch.set_num_threads and num_threads)"
    counts = sorted(row.measured["repeats"] for row in [*compared, *scaling] if row.measured)
    calls = f"{counts[0]}" if counts[0] == counts[-1] else f"{counts[0]} to {counts[-1]}"
    return "\n".join(
        [
            "## Kernels: exact pair search against the PyTorch broadcast selection",
            "",
            f"Command: `{command('compare_kernels', args.argv)}`",
            "",
            *facts,
            "",
            (
                f'Exact kernel (`select_pairs(method="exact")`) and broadcast selection '
                f"(`bench/broadcast.py`), {threads}:"
            ),
            "",
            comparison_table(compared),
            "",
            "Exact kernel, thread scaling:",
            "",
            scaling_table(scaling),
            "",
            "Targets, in this run:",
            "",
            *target_lines(compared, scaling),
            "",
            textwrap.fill(
                f"Time: median of {calls} timed calls per case after one warm-up call (at "
                f"most {args.repeats}; a case stops at 3 once its calls took {args.budget:g} s). "
                "Pairs/s: B * M * (M - 1) / 2 divided by that time. Peak RSS: increase of VmHWM "
                "over the RSS after imports and input creation, each case in a fresh process. "
                "Inputs: seeded "
                "standard normal alpha and beta, all-True domain, increase mode. The broadcast "
                "selection runs where its estimated peak (4 float32 and 1 bool B x M x M tensors) "
                f"fits the memory limit ({args.memory_limit_gib:g} GiB); its answers are asserted "
                "equal to the kernel's.",
                width=100,
            ),
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: cases {QUICK_CASES}, 3 repeats"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="threads for the comparison (default: CPUs usable)",
    )
    parser.add_argument(
        "--scaling-threads",
        type=lambda s: [int(t) for t in s.split(",")],
        default=[1, 2],
        help="thread counts at (1, 30000) (default: 1,2)",
    )
    parser.add_argument(
        "--memory-limit-gib",
        type=float,
        default=8.0,
        help="run the broadcast selection only below this peak (default: 8)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed calls per case at most (default: 10, --quick: 3)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds of timed calls per case before stopping at 3 calls (default: 20, --quick: 2)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--case-timeout",
        type=float,
        default=900.0,
        help="seconds before one case's process is stopped",
    )
    parser.add_argument(
        "--csv",
        type=Path,
        default=None,
        help="CSV output (default: bench/results/kernels.csv, "
        "--quick: bench/results/kernels-quick.csv)",
    )
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="update the kernels section of bench/RESULTS.md",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 10
    if args.budget is None:
        args.budget = 2.0 if args.quick else 20.0
    if args.csv is None:
        name = "kernels-quick.csv" if args.quick else "kernels.csv"
        args.csv = BENCH_DIR / "results" / name
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = machine_facts()  # before the runs, so the load average is that of the start
    compared, scaling = measure(args)
    write_csv(args.csv, CSV_FIELDS, [row.csv_record() for row in [*compared, *scaling]])
    text = report(compared, scaling, facts, args)
    print(text)
    print(f"\nCSV: {args.csv}", file=sys.stderr)
    if args.write_results:
        write_section(args.results, SECTION, text)
        print(f"Updated the {SECTION} section of {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
