"""Command line: ``jsma-fast demo | reproduce | attack | info`` (also ``python -m jsma_fast.cli``
and ``torchrun -m jsma_fast.cli``).

* :mod:`~jsma_fast.cli.demo`, :mod:`~jsma_fast.cli.reproduce`, :mod:`~jsma_fast.cli.attack`:
  each command's options and entry point;
* :mod:`~jsma_fast.cli.args`: the checked option types shared by the commands;
* :mod:`~jsma_fast.cli.loaders`: the data sets and models named by ``attack --data / --model``;
* :mod:`~jsma_fast.cli.input_space`, :mod:`~jsma_fast.cli.sparsest`: ``attack``'s input-space
  options and its minimum-L0 mode (``--sparsest``);
* :mod:`~jsma_fast.cli.exits`: SIGTERM and the exit status of every command.

Only this package knows option names and exit statuses: the library raises its own errors,
which :func:`main` reports as one line naming the option, never a traceback.
"""

from __future__ import annotations

import argparse
from typing import List, Optional

from .attack import add_attack_arguments, run_attack
from .demo import add_demo_arguments, run_demo
from .exits import run_command
from .reproduce import add_reproduce_arguments, run_reproduce

__all__ = ["build_parser", "main"]


def run_info(_: argparse.Namespace) -> int:
    """Entry point of ``jsma-fast info``."""
    from ..info import main as info

    info()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets ``run`` (its entry point), ``fail`` (its
    ``parser.error``) and ``resumable`` (whether ``--out`` holds chunks ``--resume`` keeps)."""
    parser = argparse.ArgumentParser(
        prog="jsma-fast",
        description="Fast, exact Jacobian-based Saliency Map Attack (Papernot et al., 2016).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, add, run, resumable, text in (
        (
            "demo",
            add_demo_arguments,
            run_demo,
            False,
            "train/load a LeNet on real MNIST digits and attack it",
        ),
        (
            "reproduce",
            add_reproduce_arguments,
            run_reproduce,
            True,
            "the paper's MNIST evaluation (sections 5-7) as a report directory",
        ),
        (
            "attack",
            add_attack_arguments,
            run_attack,
            True,
            "attack a whole data set (one process or torchrun) into a results folder",
        ),
        ("info", None, run_info, False, "what this installation was built with"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        if add is not None:
            add(command)
        command.set_defaults(run=run, fail=command.error, resumable=resumable)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Runs a command and returns its exit status; bad option values exit with status 2 and
    one line naming the option (argparse's usage error), never a traceback."""
    return run_command(build_parser().parse_args(argv))
