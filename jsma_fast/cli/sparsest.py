"""``jsma-fast attack --sparsest``: the minimum-L0 mode (:class:`jsma_fast.minimum_l0.Sparsest`)
instead of one JSMA, on every batch of the data set.

The mode runs its own portfolio of variants and directions, so the options that configure
one JSMA (``--preset``, ``--variant``, ``--theta``, ...) are refused with it, each in one line;
``--gamma`` (each member's budget), the input-space options (bounds per channel or per
feature, ``--normalize``, ``--mask``) and every ``--targets`` strategy apply.
"""

from __future__ import annotations

import argparse
from typing import Any, Dict

import numpy as np
import torch

from . import args as _args
from .exits import CommandError

#: The options of one JSMA that --sparsest does not take: (attribute, flag, why).
_MEMBERS_SET = "the mode runs its own members, each with its variant and direction"
REFUSED = (
    ("preset", "--preset", _MEMBERS_SET),
    ("variant", "--variant", _MEMBERS_SET),
    ("theta", "--theta", _MEMBERS_SET + " (theta +1 or -1)"),
    ("saliency", "--saliency", _MEMBERS_SET),
    ("jacobian", "--jacobian", _MEMBERS_SET),
    ("domain_rule", "--domain-rule", _MEMBERS_SET),
    ("start_domain", "--start-domain", _MEMBERS_SET),
    ("method", "--method", "every member uses the fastest exact pair search"),
    ("max_iters", "--max-iters", "each member's budget is --gamma"),
    (
        "theta_units",
        "--theta-units",
        "each member pushes a feature to its bound (theta is a fraction of each feature's range)",
    ),
)
#: The options of the mode, used only with --sparsest: (attribute, flag).
OWN = (
    ("sparsest_members", "--sparsest-members"),
    ("sparsest_seconds", "--sparsest-seconds"),
    ("sparsest_thorough", "--sparsest-thorough"),
)


def _names(portfolio: Any) -> str:
    return ", ".join(name for name, _ in portfolio)


def add_sparsest_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the mode, as one argument group."""
    from ..minimum_l0 import (
        DEFAULT_GAMMA,
        DEFAULT_SEARCH_WITHIN,
        PORTFOLIO_TARGETED,
        PORTFOLIO_UNTARGETED,
    )

    group = parser.add_argument_group(
        "minimum-L0 mode",
        "the fewest changed features per row, instead of one JSMA (docs/sparsest.md)",
    )
    group.add_argument(
        "--sparsest",
        action="store_true",
        help="run the minimum-L0 mode (jsma_fast.sparsest): per row, the sparsest successful "
        "output of a small portfolio of JSMA variants and directions (untargeted: "
        f"{_names(PORTFOLIO_UNTARGETED)}; targeted: {_names(PORTFOLIO_TARGETED)}), each "
        "swap-searched (long outputs refined first; a later member's only where it is within "
        f"{DEFAULT_SEARCH_WITHIN} features of the row's best). Use it to measure how few "
        "features an attack needs per row (L0 robustness), at several times the time of one "
        "JSMA; for the paper's attack "
        f"or one variant leave it out. Takes --gamma (each member's budget, default "
        f"{DEFAULT_GAMMA}), the input space options and any --targets; refuses the other "
        "attack options",
    )
    group.add_argument(
        "--sparsest-members",
        type=_args.positive_int,
        default=None,
        metavar="K",
        help="run only the first K members of the portfolio, in order: a deterministic effort "
        "budget (K = 1: the first member, searched) (default: every member)",
    )
    group.add_argument(
        "--sparsest-seconds",
        type=_args.non_negative,
        default=None,
        metavar="S",
        help="start no further member after S seconds of each batch (the first always runs); "
        "the results then depend on the machine's speed and load, so two runs may differ "
        "(default: no limit, the same results on every run)",
    )
    group.add_argument(
        "--sparsest-thorough",
        action="store_true",
        default=None,
        help="the thorough setting (jsma_fast.Sparsest.thorough): JSMA +1 added to the "
        "untargeted portfolio and a larger swap search re-ranked by forward passes; sparser "
        "outputs for about 3 times the time of the default",
    )


def check_sparsest_options(args: argparse.Namespace) -> None:
    """Refuses the options that contradict ``--sparsest``, and the mode's own options
    without it.

    Raises:
        CommandError: one line naming the option.
    """
    if not args.sparsest:
        for key, flag in OWN:
            if getattr(args, key) is not None:
                raise CommandError(f"{flag} is used only with --sparsest")
        return
    for key, flag, why in REFUSED:
        if getattr(args, key) is not None:
            raise CommandError(
                f"{flag} is not used with --sparsest: {why}; leave {flag} out, or leave "
                "--sparsest out to run one JSMA"
            )


def build_sparsest(args: argparse.Namespace, space: Dict[str, Any], x: torch.Tensor) -> Any:
    """The :class:`~jsma_fast.minimum_l0.Sparsest` of the command line.

    Args:
        args: the parsed options (checked by :func:`check_sparsest_options`).
        space: the input-space options (:func:`~jsma_fast.cli.input_space.input_space_options`).
        x: (N, ...) the data.

    Raises:
        CommandError: per-row bounds, or an invalid value.
    """
    from ..minimum_l0 import Sparsest

    for key in ("clip_min", "clip_max"):
        shape = np.shape(space.get(key, 0.0))
        if len(shape) == x.dim() and shape[0] != 1:
            raise CommandError(
                f"--{key.replace('_', '-')} gives per-row bounds (shape {shape}), which "
                "--sparsest does not take (its members attack subsets of the rows): give one "
                "number, one per channel, or an array of one sample's shape "
                f"{tuple(x.shape[1:])}"
            )
    options = {k: v for k, v in space.items() if k in ("clip_min", "clip_max", "normalization")}
    if args.gamma is not None:
        options["gamma"] = args.gamma
    build = Sparsest.thorough if args.sparsest_thorough else Sparsest
    try:
        return build(**options, members=args.sparsest_members, max_seconds=args.sparsest_seconds)
    except (TypeError, ValueError) as exc:
        raise CommandError(f"invalid attack option: {exc}") from None
