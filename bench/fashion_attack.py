"""The full Fashion-MNIST test set (10,000 images) attacked towards one target each.

    python -m bench.fashion_attack --limit 200          # a stated part: the first 200 images
    python -m bench.fashion_attack [--nproc 2] [--write-results]

Needs Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) or ``--data``.
The model is the project's LeNet trained on the 60,000 training images (``--model lenet``,
cached like the demo's model; trained here first if the cache does not hold it, and its
training time is reported). The attack is one command::

    jsma-fast attack --model lenet --data /usr/share/datasets/fashion-mnist --targets next \\
        --out fashion-next

run here as a subprocess (under ``torchrun --nproc-per-node N`` with ``--nproc N``); its wall
time and its ``summary.json`` are reported. ``--write-results`` replaces the ``fashion``
section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from bench.common import FASHION, command, environment, fashion_missing, load_average
from bench.results_file import RESULTS, write_section
from jsma_fast.evaluation.paper import PAPER


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=FASHION)
    parser.add_argument("--limit", type=int, default=None, help="attack only the first N images")
    parser.add_argument("--nproc", type=int, default=1, help="processes (torchrun) (default: 1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per process (default: the cores / processes)",
    )
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    if fashion_missing(args.data):
        return 2

    from jsma_fast.mnist.training import load_or_train_lenet

    print(
        "LeNet on the 60,000 Fashion-MNIST training images (trained once, then cached) ...",
        flush=True,
    )
    _, split = load_or_train_lenet(source=str(args.data), n_test=None, seed=0)
    trained = (
        "read from the cache"
        if split.from_cache
        else f"trained in {split.train_seconds:.0f} s by this run"
    )
    threads = args.threads or max(1, len(os.sched_getaffinity(0)) // args.nproc)

    options = [
        "--model",
        "lenet",
        "--data",
        str(args.data),
        "--targets",
        "next",
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(threads),
    ]
    options += ["--limit", str(args.limit)] if args.limit else []
    out = Path(tempfile.mkdtemp(prefix="jsma-fashion-"))
    launcher = [sys.executable] + (
        ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(args.nproc)]
        if args.nproc > 1
        else []
    )
    env = environment(f"{threads} threads used")  # the load at the start
    load = load_average()
    start = time.perf_counter()
    done = subprocess.run(
        launcher + ["-m", "jsma_fast.cli", "attack", *options, "--out", str(out / "run")],
        timeout=6 * 3600,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        print(f"the attack failed with exit status {done.returncode}", file=sys.stderr)
        return 1
    s = json.loads((out / "run" / "summary.json").read_text())
    shutil.rmtree(out, ignore_errors=True)

    part = (
        f"a stated part: the first {s['data_set_rows']} of the 10,000 test images"
        if args.limit
        else f"all {s['data_set_rows']} test images"
    )
    shown = " ".join(["jsma-fast", "attack", *options, "--out", "fashion-next"])
    if args.nproc > 1:
        shown = f"torchrun --standalone --nproc-per-node {args.nproc} --no-python " + shown
    lines = [
        "## Fashion-MNIST: the test set attacked towards one target each",
        "",
        f"Command: `{command('fashion_attack', given)}`, which runs",
        "",
        f"    {shown}",
        "",
        *env,
        f"- Load average before the attack: {load}",
        f"- Processes: {args.nproc}, {threads} torch thread(s) each",
        "",
        f"Model: the project's LeNet trained on the 60,000 Fashion-MNIST training images "
        f"(15 epochs, {trained}), test accuracy {split.test_accuracy:.2%} on the 10,000 test "
        f"images. Attacked: {part}, target (y + 1) % 10, default JSMA (theta = +1, gamma = "
        f"{PAPER.gamma:.1%}).",
        "",
        "| rows | command wall time | attack time | row/s | clean accuracy | success (rows "
        "classified correctly) | mean L0 of successes (same rows) | mean iterations (same rows) "
        "| success (every row) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s['data_set_rows']} | {wall:.0f} s | {s['seconds']:.0f} s | "
        f"{s['data_set_rows_per_second']:.1f} | {s['clean_accuracy']:.2%} | "
        f"{s['success_rate_clean_correct']:.2%} | "
        f"{s['mean_l0_fraction_success_clean_correct']:.2%} | "
        f"{s['mean_iterations_clean_correct']:.1f} | {s['success_rate_all_rows']:.2%} |",
        "",
        "Stop reasons: "
        + ", ".join(f"{k[len('stopped_') :]} {s[k]}" for k in sorted(s) if k.startswith("stopped_"))
        + ".",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if args.write_results:
        write_section(RESULTS, "fashion", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
