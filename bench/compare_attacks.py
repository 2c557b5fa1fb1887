"""jsma-fast against the public JSMA implementations, end to end, on the demo's LeNet (CPU).

Attacks the first ``--samples`` (default 100) correctly classified held-out digits of the
demo's LeNet (``jsma_fast.mnist.training.load_or_train_lenet``, loaded from its cache) towards the
target ``(y + 1) % 10`` with theta = 1 and the paper's gamma = 0.145, with:

* jsma-fast: the default configuration, ``JSMA.preset("cleverhans")``,
  ``JSMA.preset("advertorch")`` and ``JSMA.preset("art")``;
* torchattacks' ``JSMA``, advertorch's ``JacobianSaliencyMapAttack`` and ART's
  ``SaliencyMapMethod`` (each skipped, with the reason, when it cannot be imported).

Each attack runs in a fresh process (``bench.attacks.worker``) so that its peak memory (the
increase of VmHWM over the RSS after imports, model and data) is its own. This process then
scores every output with the same model: success (``model(x_adv).argmax == target``), mean L0
(the fraction of changed pixels, over successful samples), and how many outputs equal
torchattacks', advertorch's and ART's (``torch.equal`` per sample), with the causes of the
differences that can be read from the outputs.

The worker of the default configuration also measures the *gradient floor*: it replays the
attack's per-step batch sizes (at step k the rows with ``iterations >= k`` are forwarded; all
but the last step also take the two vector-Jacobian products) with plain PyTorch calls, so
``attack time / floor`` shows what the loop costs beyond its unavoidable gradients; and a
profile of one attack run (derivatives, pair search, the rest).

    python -m bench.compare_attacks --quick            # smoke run on 10 digits
    python -m bench.compare_attacks                    # 100 digits, a few minutes
    python -m bench.compare_attacks --write-results    # and update bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from bench.attacks.registry import ATTACKS, GAMMA, THETA, load_model_and_digits
from bench.attacks.report import machine_facts, model_fact, report
from bench.attacks.scoring import CSV_FIELDS, Row, compare, default_vs_exact, score
from bench.attacks.worker import run_worker
from bench.common import BENCH_DIR, command, write_csv
from bench.results_file import RESULTS, write_section

SECTION = "attacks"


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--samples", type=int, default=100, help="held-out digits to attack (default 100)")
    add(
        "--quick",
        action="store_true",
        help="smoke run: 10 digits, results to *-quick.csv, never RESULTS.md",
    )
    add(
        "--torchattacks-samples",
        type=int,
        default=None,
        help="digits for torchattacks, the slowest (default: --samples)",
    )
    add(
        "--attacks",
        default=",".join(ATTACKS),
        help=f"comma-separated subset of {','.join(ATTACKS)}",
    )
    add(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="torch threads in every attack (default: the CPUs this process may use; "
        "on a busy machine use 1, see bench/README.md)",
    )
    add("--repeats", type=int, default=3, help="timed runs where a run is short (default 3)")
    add(
        "--repeat-budget",
        type=float,
        default=10.0,
        help="no further timed runs once they took this many seconds (default 10)",
    )
    add("--timeout", type=float, default=900.0, help="seconds per attack process (default 900)")
    add("--csv", type=Path, default=None, help="CSV path (default bench/results/attacks.csv)")
    add(
        "--write-results",
        action="store_true",
        help="update the attacks section of bench/RESULTS.md",
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.samples = 10
        if args.write_results:
            parser.error("--quick results are a smoke test; they are not written to RESULTS.md")
    for name in ("samples", "threads", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    args.attacks = [name.strip() for name in args.attacks.split(",") if name.strip()]
    unknown = sorted(set(args.attacks) - set(ATTACKS))
    if unknown:
        parser.error(f"unknown attacks {unknown}; choose from {','.join(ATTACKS)}")
    return args


def run_attacks(
    args: argparse.Namespace, model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor
) -> dict[str, Row]:
    """Each attack of ``args.attacks`` in its own process, scored here."""
    rows: dict[str, Row] = {}
    for name in args.attacks:
        samples = args.samples
        if name == "torchattacks" and args.torchattacks_samples:
            samples = min(args.torchattacks_samples, args.samples)
        print(f"{name}: {samples} digits ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        raw = run_worker(
            name,
            args.samples,
            samples,
            threads=args.threads,
            repeats=args.repeats,
            repeat_budget=args.repeat_budget,
            timeout=args.timeout,
        )
        rows[name] = row = Row.from_worker(name, raw)
        if row.status != "ok":
            print(f"{name}: failed: {row.status}", file=sys.stderr)
            continue
        score(row, model, x, target)
        print(
            f"{name}: {row.wall_s:.2f} s per run ({time.perf_counter() - start:.0f} s with "
            "startup)",
            file=sys.stderr,
        )
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    facts = machine_facts(args.threads)  # before the runs: the load average at the start
    torch.set_num_threads(args.threads)
    model, x, y, target, split = load_model_and_digits(args.samples)  # trains once if not cached
    facts.append(model_fact(split.test_accuracy, int(split.test_x.shape[0])))
    rows = run_attacks(args, model, x, target)

    from jsma_fast import JSMA

    budget = JSMA(theta=THETA, gamma=GAMMA).budget(x[0].numel())
    explanations = compare(rows, x, budget)
    text = report(
        rows,
        explanations,
        facts,
        command=command("compare_attacks", args.argv),
        samples=args.samples,
        repeats=args.repeats,
        repeat_budget=args.repeat_budget,
        default_vs_exact=default_vs_exact(rows),
    )
    print(text)
    csv_path = args.csv or BENCH_DIR / "results" / (
        "attacks-quick.csv" if args.quick else "attacks.csv"
    )
    write_csv(csv_path, CSV_FIELDS, [row.csv_record() for row in rows.values()])
    print(f"wrote {csv_path}", file=sys.stderr)
    if args.write_results:
        write_section(RESULTS, SECTION, text)
        print(f"updated the {SECTION} section of {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
