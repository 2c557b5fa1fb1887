"""The cost of the kernels' fork safety (csrc/cpu/parallel.cpp).

Two costs, each a ratio of timings taken in the same run:

* in a forked child the kernels run on one thread: the same searches timed in the parent
  (2 threads) and in a child forked after them (2 threads asked for, 1 used);
* in the parent, every kernel call reads whether the process is a forked child: tiny calls
  (where that read weighs most) timed against a ``_C`` built without the mechanism
  (``--baseline``, e.g. from the commit before it; how to build it: bench/README.md),
  interleaved call by call.

Usage: python -m bench.bench_fork [--baseline PATH/_C....so] [--write-results]
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

from bench.common import command, environment
from bench.results_file import RESULTS, write_section
from jsma_fast import _C, select_pairs

THREADS = 2
# (label, method, batch, features): large enough that two threads split the work.
SEARCHES = [("exact", "exact", 1, 20000), ("pruned", "pruned", 100, 784)]


def inputs(batch: int, m: int) -> tuple:
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((batch, m), dtype=np.float32),
        rng.standard_normal((batch, m), dtype=np.float32),
    )


def call_times(fn: Callable[[], object], repeats: int) -> List[float]:
    """Median and best seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return [statistics.median(times), min(times)]


def search_times(repeats: int) -> Dict[str, Dict[int, List[float]]]:
    """[median, best] seconds per call, per search and thread count."""
    out: Dict[str, Dict[int, List[float]]] = {}
    for label, method, batch, m in SEARCHES:
        a, b = inputs(batch, m)
        out[label] = {
            t: call_times(
                lambda a=a, b=b, method=method, t=t: select_pairs(
                    a, b, method=method, num_threads=t
                ),
                repeats,
            )
            for t in (1, THREADS)
        }
    return out


def child_times(repeats: int) -> Dict[str, Dict[int, List[float]]]:
    """:func:`search_times` in a child forked now, returned through a pipe."""
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork() with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os.close(read)
        with os.fdopen(write, "w") as fh:
            json.dump(search_times(repeats), fh)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        data = json.load(fh)
    os.waitpid(pid, 0)
    return {label: {int(t): v for t, v in d.items()} for label, d in data.items()}


def load_module(path: Path):
    """A second ``_C`` from another build, loaded under a name of its own."""
    loader = importlib.machinery.ExtensionFileLoader("jsma_fast_baseline._C", str(path))
    spec = importlib.util.spec_from_file_location("jsma_fast_baseline._C", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def per_call_overhead(baseline, rounds: int, calls: int) -> Dict[str, float]:
    """Median per-call seconds of a tiny exact search (1 x 8 features), this build against
    ``baseline``, alternating rounds of ``calls`` calls so that both see the same load."""
    a, b = inputs(1, 8)
    times: Dict[str, List[float]] = {"this build": [], "baseline": []}
    for _ in range(rounds):
        for name, module in (("this build", _C), ("baseline", baseline)):
            start = time.perf_counter()
            for _ in range(calls):
                module.pair_search(a, b, None, True, THREADS, "auto")
            times[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(v) for name, v in times.items()}


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def both(times: List[float]) -> str:
    return f"{us(times[0])} ({us(times[1])})"


def report(parent: Dict, child: Dict, overhead: Dict, baseline: str) -> str:
    # The baseline's path is this machine's: the command says what it stands for.
    shown = command("bench_fork", []) + " --baseline <_C built before the change> --write-results"
    lines = [
        "## Fork safety: cost of the one-thread rule in forked children",
        "",
        f"Command: `{shown}`",
        "",
        *environment(load_at="end"),
        "",
        "Time per `select_pairs` call, median (best) of the timed calls, seeded "
        "standard-normal inputs, in the parent and in a child forked after the parent's "
        "searches (same run); ratios of the best times:",
        "",
        "| search | B x M | parent, 1 thread | parent, 2 threads | child, 2 asked (1 used) "
        "| child / parent (2 threads) | child / parent (1 thread) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, _, batch, m in SEARCHES:
        p, c = parent[label], child[label]
        lines.append(
            f"| {label} | {batch} x {m} | {both(p[1])} | {both(p[THREADS])} | "
            f"{both(c[THREADS])} | **{c[THREADS][1] / p[THREADS][1]:.2f}x** | "
            f"{c[THREADS][1] / p[1][1]:.2f}x |"
        )
    lines.append("")
    if overhead:
        ratio = overhead["this build"] / overhead["baseline"]
        lines += [
            f"Per call in the parent (tiny exact search, 1 x 8 features, `_C.pair_search`, "
            f"rounds alternating with the baseline build `{baseline}`): this build "
            f"{us(overhead['this build'])}, baseline {us(overhead['baseline'])}, ratio "
            f"**{ratio:.3f}** (the mechanism adds one relaxed atomic load per call).",
            "",
        ]
    else:
        lines += ["Per-call overhead in the parent: not measured (no `--baseline`).", ""]
    speedups = ", ".join(
        f"{parent[label][1][1] / parent[label][THREADS][1]:.2f}x ({label})"
        for label, _, _, _ in SEARCHES
    )
    lines += [
        "Reading: a forked child runs at the parent's one-thread speed (last column near 1). "
        f"What it gives up is the parent's {THREADS}-thread speed-up, in this run {speedups}; "
        "a speed-up below 1 means the other cores were busy (see the load average), where one "
        "thread per process is the faster choice anyway. Forked workers usually run one per "
        "core; a process that needs several threads per worker should use the `spawn` or "
        "`forkserver` start method. Timings on a shared 2-core machine are noisy.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="a _C extension built without the fork-safety mechanism",
    )
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    parent = search_times(args.repeats)
    child = child_times(args.repeats)
    overhead = {}
    if args.baseline is not None:
        overhead = per_call_overhead(load_module(args.baseline), rounds=21, calls=20000)
    text = report(parent, child, overhead, args.baseline.name if args.baseline else "")
    print(text)
    if args.write_results:
        write_section(RESULTS, "fork", text)


if __name__ == "__main__":
    sys.exit(main())
