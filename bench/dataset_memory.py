"""Peak memory of ``attack_dataset`` on synthetic data sets of 10^4 and 10^5 rows.

    python -m bench.dataset_memory --rows 2000,20000        # a smaller smoke run
    python -m bench.dataset_memory [--write-results]         # 10^4 and 10^5 rows

The data set is a map-style Dataset that makes each row when asked (a seeded 1 x 16 x 16
image in [0, 1] and the label ``index % 10``), so the data itself takes no memory; the model
is a small MLP (256 -> 64 -> 10, seeded); the attack is JSMA with gamma = 5% (at most 6 pair
steps), target ``next``, 500 rows per chunk, results written to a temporary directory.
Each case runs in a fresh process; its peak is the increase of VmHWM (reset through
``/proc/self/clear_refs``) over the RSS once the model and the data set exist, and the
whole process's VmHWM. Flat memory means: the same peak at 10^4 and 10^5 rows when the
adversarial inputs are not kept (and, since the merge streams one chunk at a time, also
when they are). ``--write-results`` replaces the ``dataset-memory`` section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import torch
from torch import nn

from bench import common
from bench.results_file import RESULTS, write_section

BATCH = 500


class Synthetic(torch.utils.data.Dataset):
    """``rows`` seeded images made on access: no memory for the data set itself."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        return torch.rand(1, 16, 16, generator=g), i % 10


def case(rows: int, keep_adv: bool) -> dict:
    """One measurement, in this process."""
    from jsma_fast import JSMA
    from jsma_fast.runner import attack_dataset

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10)).eval()
    data = Synthetic(rows)
    attack = JSMA(gamma=0.05)
    with tempfile.TemporaryDirectory() as out:
        baseline = common.rss_bytes()
        reset = common.reset_peak_rss()
        start = time.perf_counter()
        result = attack_dataset(
            model,
            data,
            attack,
            "next",
            out=out,
            batch_size=BATCH,
            keep_adv=keep_adv,
            progress=False,
        )
        seconds = time.perf_counter() - start
        peak = common.peak_rss_bytes()
        size = Path(result.path).stat().st_size
    return {
        "rows": rows,
        "keep_adv": keep_adv,
        "seconds": seconds,
        "baseline": baseline,
        "peak": peak,
        "increase": peak - baseline if reset else None,
        "results_bytes": size,
        "success_rate": result.summary["success_rate"],
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="10000,100000", help="comma-separated sizes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # "rows,keep_adv"
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.case:
        rows, keep = args.case.split(",")
        print(json.dumps(case(int(rows), keep == "1")))
        return 0

    sizes = [int(r) for r in args.rows.split(",")]
    env = common.environment(f"{args.threads} threads used")  # the load at the start
    results = []
    for keep in (False, True):
        for rows in sizes:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.dataset_memory",
                    "--threads",
                    str(args.threads),
                    "--case",
                    f"{rows},{int(keep)}",
                ],
                stdout=subprocess.PIPE,
                timeout=3 * 3600,
                check=True,
                cwd=common.ROOT,
            )
            r = json.loads(done.stdout.decode().strip().splitlines()[-1])
            results.append(r)
            print(
                f"  {rows} rows, keep_adv={keep}: peak +{common.format_bytes(r['increase'] or 0)}"
                f" ({common.format_bytes(r['peak'])} in all) in {r['seconds']:.1f} s",
                flush=True,
            )

    shown = ["--rows", args.rows] + (["--write-results"] if args.write_results else [])
    lines = [
        "## Memory of attack_dataset on 10^4 and 10^5 rows",
        "",
        f"Command: `{common.command('dataset_memory', shown)}`",
        "",
        *env,
        "",
        "Synthetic rows made on access (1 x 16 x 16 in [0, 1]), MLP 256-64-10, JSMA gamma = 5%, "
        f"target `next`, {BATCH} rows per chunk, results to a temporary directory; each case in "
        "a fresh process. Peak increase: VmHWM over the RSS after the model and the data set "
        "were made.",
        "",
        "| rows | adversarial inputs kept | peak RSS increase | peak RSS of the process | "
        "results.npz | time | rows/s |",
        "|---:|:---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        inc = common.format_bytes(r["increase"]) if r["increase"] is not None else "n/a"
        lines.append(
            f"| {r['rows']:,} | {'yes' if r['keep_adv'] else 'no'} | {inc} | "
            f"{common.format_bytes(r['peak'])} | {r['results_bytes'] / common.MIB:.1f} MiB"
            f" | {r['seconds']:.1f} s | {r['rows'] / r['seconds']:.0f} |"
        )
    text = "\n".join(lines)
    print("\n" + text)
    if args.write_results:
        write_section(RESULTS, "dataset-memory", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
