"""The attack beside other busy processes: default settings against the best thread setting.

    python -m bench.contention --quick                       # smoke run: 6 digits, loads 0 and 2
    python -m bench.contention [--digits 20] [--loads 0,2,4] [--old ../checkout] [--write-results]

For each load level k this script starts k busy processes of its own (one Python loop each,
``while True: pass``), then times, each in a fresh process (the OpenMP runtime reads its wait
policy once, when it loads):

* the attack, ``JSMA(variant="tjsma")`` on the first ``--digits`` correctly classified
  held-out digits of the demo LeNet, target ``next``, one call on all rows (after a warm-up
  call on 2 rows); a script that imports torch, then jsma_fast, as a user's would;
* the command line, ``python -m jsma_fast.cli attack --model jsma_fast.mnist.models:LeNet
  --weights W --data D.npz --variant tjsma --targets next`` on the same model and rows (its
  attack time from ``summary.json``, and the command's wall time, start-up included);

with the default settings (nothing set in the environment, no thread count) and with every
setting of a small sweep: torch threads x search threads (1, 2) x wait policy (libgomp's
default spin of 300,000 (``GOMP_SPINCOUNT=300000``), short spins (``GOMP_SPINCOUNT=10000``
and ``1000``), ``OMP_WAIT_POLICY=PASSIVE``). ``--old PATH`` adds the default settings of
another checkout of the project (its ``jsma_fast`` with a compiled ``_C``, e.g. ``git worktree
add ../old main``), run in the same way: "today's default". Every configuration's results
(success and L0; for the Python attack a hash of the adversarial inputs) are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import numpy as np

from bench.common import command, environment, load_average
from bench.results_file import RESULTS, write_section

ROOT = Path(__file__).resolve().parents[1]
#: Goals: the default within this factor of the best setting at every load level ...
BEST_FACTOR = 1.3
#: ... and, on the idle machine, within this factor of the reference checkout's default.
IDLE_FACTOR = 1.05

#: The wait policies of the sweep: name -> environment.
POLICIES: Dict[str, Dict[str, str]] = {
    "spin 300k": {"GOMP_SPINCOUNT": "300000"},
    "spin 10k": {"GOMP_SPINCOUNT": "10000"},
    "spin 1k": {"GOMP_SPINCOUNT": "1000"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
}
#: The command line's model: the demo's LeNet architecture, with its weights from ``--weights``.
MODEL = "jsma_fast.mnist.models:LeNet"
#: Variables that decide threads and waiting; removed from every run's environment first.
CONTROLLED = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

WORKER = r"""
import hashlib, json, sys, time
import numpy as np
import torch
from jsma_fast import JSMA
from jsma_fast.mnist.models import LeNet

folder, torch_threads, search_threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if torch_threads:
    torch.set_num_threads(torch_threads)
model = LeNet()
model.load_state_dict(torch.load(folder + "/weights.pt", weights_only=True))
model.eval()
with np.load(folder + "/digits.npz") as data:
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
attack = JSMA(variant="tjsma", num_threads=search_threads or None)
attack(model, x[:2], "next", y=y[:2])
start = time.perf_counter()
result = attack(model, x, "next", y=y)
seconds = time.perf_counter() - start
digest = hashlib.sha256(result.x_adv.numpy().tobytes()).hexdigest()[:12]
print(json.dumps({"seconds": seconds, "success": int(result.success.sum()),
                  "l0": float(result.l0_fraction.sum()), "digest": digest}))
"""


@dataclass(frozen=True)
class Config:
    """One way to run: a code tree, thread counts (0: the default) and a wait policy."""

    tree: Path
    torch_threads: int = 0
    search_threads: int = 0
    policy: str = "default"

    def env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
        env["PYTHONPATH"] = str(self.tree)
        env.update(POLICIES.get(self.policy, {}))
        return env


@dataclass
class Row:
    """The timings of one configuration at one load level."""

    label: str
    config: Config
    seconds: List[float] = field(default_factory=list)
    walls: List[float] = field(default_factory=list)  # the command's, start-up included
    outcome: Optional[str] = None  # success, L0 and digest of the first run

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def python_run(config: Config, work: Path) -> tuple[float, str]:
    """Seconds of the attack call and its outcome, in a fresh process."""
    argv = [str(work), str(config.torch_threads), str(config.search_threads)]
    done = subprocess.run(
        [sys.executable, "-c", WORKER, *argv],
        env=config.env(),
        cwd=tempfile.gettempdir(),  # the tree comes from PYTHONPATH only
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker failed ({config}):\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["seconds"], f"{out['success']} ok, L0 sum {out['l0']:.4f}, {out['digest']}"


def cli_run(config: Config, work: Path) -> tuple[float, float, str]:
    """Attack time (``summary.json``'s ``seconds``) and wall time of one ``jsma-fast attack``
    command, and its outcome, in a fresh process."""
    out = Path(tempfile.mkdtemp(dir=work))
    argv = [sys.executable, "-m", "jsma_fast.cli", "attack", "--model", MODEL]
    argv += ["--weights", str(work / "weights.pt"), "--data", str(work / "digits.npz")]
    argv += ["--variant", "tjsma", "--targets", "next", "--no-progress", "--out", str(out / "r")]
    argv += ["--threads", str(config.torch_threads)] if config.torch_threads else []
    start = time.perf_counter()
    done = subprocess.run(
        argv, env=config.env(), cwd=work, capture_output=True, text=True, timeout=1800
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"command failed ({config}):\n{done.stderr[-3000:]}")
    summary = json.loads((out / "r" / "summary.json").read_text())
    with np.load(out / "r" / "results.npz") as results:  # columns of every version
        success, l0 = results["success"], results["l0"]
    shutil.rmtree(out, ignore_errors=True)
    return summary["seconds"], wall, f"{int(success.sum())} ok, L0 sum {int(l0[success].sum())}"


def save_inputs(work: Path, digits: int) -> None:
    """The demo LeNet's weights and its first ``digits`` correctly classified held-out digits,
    in ``work``: every run, of either tree, attacks the same model and rows."""
    import torch

    from bench.common import correct_digits, demo_lenet

    model, split = demo_lenet()
    x, y = correct_digits(model, split, digits)
    torch.save(model.state_dict(), work / "weights.pt")
    np.savez(work / "digits.npz", x=x.numpy(), y=y.numpy())


@contextmanager
def busy(k: int) -> Iterator[None]:
    """``k`` busy processes (one Python loop each) for the duration of the block."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(k)
    ]
    try:
        time.sleep(2.0 if k else 0.0)  # let them take their share of the cores
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def python_rows(old: Optional[Path]) -> List[Row]:
    rows = [Row("default", Config(ROOT))]
    rows += [Row("today's default", Config(old))] if old else []
    for policy in POLICIES:
        for tt in (1, 2):
            for st in (1, 2):
                rows.append(Row(f"{tt} / {st} / {policy}", Config(ROOT, tt, st, policy)))
    return rows


def cli_rows(old: Optional[Path]) -> List[Row]:
    rows = [Row("default", Config(ROOT))]
    rows += [Row("today's default", Config(old))] if old else []
    for policy in POLICIES:
        for tt in (1, 2):
            rows.append(Row(f"--threads {tt} / {policy}", Config(ROOT, tt, 0, policy)))
    return rows


def measure(kind: str, rows: List[Row], repeats: int, work: Path) -> None:
    """Times every row ``repeats`` times, the rows interleaved, in a new (seeded) order each
    round, so that a passing disturbance spreads over all of them."""
    order = random.Random(0)
    for _ in range(repeats):
        for row in order.sample(rows, len(rows)):
            if kind == "python":
                seconds, outcome = python_run(row.config, work)
            else:
                seconds, wall, outcome = cli_run(row.config, work)
                row.walls.append(wall)
            row.seconds.append(seconds)
            row.outcome = row.outcome or outcome
            print(f"    {kind} {row.label}: {seconds:.2f} s  ({outcome})", flush=True)


def table(kind: str, k: int, load: str, rows: List[Row]) -> tuple[List[str], List[str]]:
    """The Markdown table of one kind at one load level, and its goal lines."""
    swept = [r for r in rows if "default" not in r.label] or rows[:1]
    best = min(swept, key=lambda r: r.median)
    default = rows[0]
    lines = [
        f"| {k} | {load} | {r.label} | {r.median:.2f} s | {r.median / best.median:.2f}x |"
        + (" **best** |" if r is best else " |")
        + (f" {statistics.median(r.walls):.1f} s |" if r.walls else "")
        for r in rows
    ]
    ratio = default.median / best.median
    goals = [
        f"- {kind}, load {k}: default {default.median:.2f} s, best ({best.label}) "
        f"{best.median:.2f} s: {ratio:.2f}x (goal <= {BEST_FACTOR}x): "
        f"{'met' if ratio <= BEST_FACTOR else 'NOT met'}"
    ]
    old = [r for r in rows if r.label == "today's default"]
    if k == 0 and old:
        idle = default.median / old[0].median
        goals.append(
            f"- {kind}, no busy process started (load {load}): default {default.median:.2f} s "
            f"against today's default "
            f"{old[0].median:.2f} s: {idle:.2f}x (goal <= {IDLE_FACTOR}x): "
            f"{'met' if idle <= IDLE_FACTOR else 'NOT met'}"
        )
    same = len({r.outcome for r in rows}) == 1
    goals.append(f"- {kind}, load {k}: the same results in every row: {'yes' if same else 'NO'}")
    return lines, goals


def keep(label: str, only: Optional[str]) -> bool:
    """Whether a row is measured: the defaults always, the sweep's settings named by
    ``--only`` (comma-separated labels; default: all)."""
    return only is None or "default" in label or label in only.split(",")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digits", type=int, default=20, help="rows attacked per run")
    parser.add_argument("--loads", default="0,2,4", help="busy processes, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration")
    parser.add_argument("--old", type=Path, default=None, help="checkout of today's code")
    parser.add_argument("--no-cli", action="store_true", help="not the command line")
    parser.add_argument("--no-python", action="store_true", help="not the Python attack")
    parser.add_argument("--quick", action="store_true", help="6 digits, loads 0 and 2")
    parser.add_argument(
        "--only", default=None, help="measure only these settings (labels, comma-separated)"
    )
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument(
        "--section", default="contention", help="the RESULTS.md section --write-results writes"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.digits, args.loads = 6, "0,2"
    args.loads = [int(k) for k in args.loads.split(",")]
    if args.old is not None and not (args.old / "jsma_fast" / "__init__.py").exists():
        parser.error(f"--old must be a checkout of the project, got {args.old}")
    return args


def report(args: argparse.Namespace, env: List[str], results: List[tuple]) -> str:
    lines = [
        "## Contention: the attack beside busy processes, default against the best setting",
        "",
        f"Command: `{command('contention')}`",
        "",
        *env,
        "",
        f'`JSMA(variant="tjsma")` on {args.digits} correctly classified held-out digits of the '
        "demo LeNet, target `next` (time of the attack call), and `jsma-fast attack` on the "
        "same model and rows (attack time from `summary.json`; the command's wall time, "
        "start-up included, beside it), "
        "each in a fresh process beside k busy processes (`while True: pass`). Sweep: torch "
        "threads / search threads / wait policy (`spin 300k`: `GOMP_SPINCOUNT=300000`, libgomp's "
        "default; `spin 10k`, `spin 1k`: `GOMP_SPINCOUNT=10000`, `1000`; `passive`: "
        "`OMP_WAIT_POLICY=PASSIVE`). "
        '"today\'s default": the default settings of the code before this change, in the '
        f"same run; median of {args.repeats} run(s). Load: the 1-minute load average when the "
        "level started.",
    ]
    goals: List[str] = []
    for kind, title in (("python", "The attack in Python"), ("cli", "`jsma-fast attack`")):
        part = [(k, load, rows) for (kd, k, load, rows) in results if kd == kind]
        if not part:
            continue
        head = "| k | load | setting | time | to best |  |"
        rule = "|---:|---:|---|---:|---:|---|"
        if kind == "cli":
            head, rule = head + " command |", rule + "---:|"
        lines += ["", f"{title}:", "", head, rule]
        for k, load, rows in part:
            body, g = table(title, k, load, rows)
            lines += body
            goals += g
    return "\n".join(lines + [""] + goals)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    print("Model: the demo LeNet (trained and cached on first use) ...", flush=True)
    env = environment()
    kinds = ([] if args.no_python else ["python"]) + ([] if args.no_cli else ["cli"])
    results = []
    work = Path(tempfile.mkdtemp(prefix="jsma-contention-"))
    try:
        save_inputs(work, args.digits)
        for k in args.loads:
            with busy(k):
                load = f"{os.getloadavg()[0]:.2f}"
                print(f"load level {k} (load average {load_average()})", flush=True)
                for kind in kinds:
                    rows = (python_rows if kind == "python" else cli_rows)(args.old)
                    rows = [r for r in rows if keep(r.label, args.only)]
                    measure(kind, rows, args.repeats, work)
                    results.append((kind, k, load, rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(args, env, results)
    print("\n" + text)
    if args.write_results:
        write_section(RESULTS, args.section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
