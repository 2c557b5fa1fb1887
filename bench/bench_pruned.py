"""Pruned against exhaustive pair search on the CPU, and how many features survive pruning.

    python -m bench.bench_pruned [--write-results] [--threads N] [--repeats R]

Times ``select_pairs(method="exact")`` and ``select_pairs(method="pruned")`` on the same
seeded standard-normal inputs (bench/common.py) in one process, checks that the scores are
identical, and reports the distribution of the survivors (features whose pairs were
searched). ``--write-results`` replaces the ``pruned`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import numpy as np
import torch

import jsma_fast
from bench import common
from bench.results_file import RESULTS, write_section
from jsma_fast import select_pairs

CASES = [(100, 784), (1, 150528)]
EXACT_BUDGET_S = {784: 5.0, 150528: 20.0}


def run_case(batch: int, m: int, threads: int, repeats: int) -> dict:
    alpha, beta, domain = common.make_inputs(batch, m)
    exact = select_pairs(alpha, beta, domain, method="exact", num_threads=threads)
    pruned, searched = select_pairs(
        alpha, beta, domain, method="pruned", num_threads=threads, return_candidates=True
    )
    same_score = bool(torch.equal(exact.score, pruned.score))
    same_pair = bool(torch.equal(exact.p, pruned.p) and torch.equal(exact.q, pruned.q))
    t_exact = common.time_calls(
        lambda: select_pairs(alpha, beta, domain, method="exact", num_threads=threads),
        repeats,
        EXACT_BUDGET_S.get(m, 10.0),
    )
    t_pruned = common.time_calls(
        lambda: select_pairs(alpha, beta, domain, method="pruned", num_threads=threads),
        max(repeats, 50),
        2.0,
    )
    s = searched.numpy().reshape(-1)
    return {
        "batch": batch,
        "m": m,
        "exact": t_exact.median,
        "pruned": t_pruned.median,
        "exact_best": t_exact.best,
        "pruned_best": t_pruned.best,
        "same_score": same_score,
        "same_pair": same_pair,
        "survivors": (int(s.min()), float(np.median(s)), float(np.percentile(s, 90)), int(s.max())),
    }


def ms(x: float) -> str:
    return f"{x * 1e3:.3f} ms"


def markdown(env: List[str], rows: List[dict], threads: int, command: str) -> str:
    lines = [
        "## Pruned pair search against the exact kernel (CPU)",
        "",
        f"Command: `{command}`",
        "",
        *env,
        "",
        f"Seeded standard-normal alpha and beta (bench/common.py), full domain, "
        f"{threads} threads for both; median (best) wall time per `select_pairs` call. "
        "Timings on a shared 2-core machine are noisy and provisional.",
        "",
        "| B | M | exact | pruned | exact / pruned | identical scores | identical pairs "
        "| survivors min / median / p90 / max |",
        "|---:|---:|---:|---:|---:|:---:|:---:|---:|",
    ]
    for r in rows:
        sv = r["survivors"]
        lines.append(
            f"| {r['batch']} | {r['m']} | {ms(r['exact'])} ({ms(r['exact_best'])}) | "
            f"{ms(r['pruned'])} ({ms(r['pruned_best'])}) | "
            f"**{r['exact'] / r['pruned']:.0f}x** | {'yes' if r['same_score'] else 'NO'} | "
            f"{'yes' if r['same_pair'] else 'no (exact score ties)'} | "
            f"{sv[0]} / {sv[1]:.0f} / {sv[2]:.0f} / {sv[3]} |"
        )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--threads", type=int, default=jsma_fast.ops.default_num_threads())
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = common.environment(f"{args.threads} threads used")
    rows = [run_case(b, m, args.threads, args.repeats) for b, m in CASES]
    text = markdown(env, rows, args.threads, common.command("bench_pruned", argv))
    print(text)
    if args.write_results:
        write_section(RESULTS, "pruned", text)
    return 0 if all(r["same_score"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
