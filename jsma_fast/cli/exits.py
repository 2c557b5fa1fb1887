"""SIGTERM and the exit status of every command.

:func:`run_command` runs a parsed command with SIGTERM raised as :class:`Interrupted` (like
Ctrl-C), and turns what the command raises into one line on stderr and the exit status:

* 0: done;
* 1: another rank of a distributed run failed (:class:`~jsma_fast.runner.RankFailed`);
* 2: a bad option value (:class:`~jsma_fast.cli.args.UsageError`: argparse's usage and one
  line naming the option), a checkpoint that cannot be resumed
  (:class:`~jsma_fast.runner.ChunkError`), or another error of the run already worded for the
  user (:class:`CommandError`);
* 130: interrupted (SIGINT or SIGTERM); a resumable command says where its completed chunks
  are and how to continue (only when there are some: an interruption before the first chunk,
  e.g. while the model trains, says that nothing can be resumed).

Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

from .args import UsageError


class Interrupted(BaseException):
    """SIGTERM, like Ctrl-C: not an error of the run (the chunk runner does not catch it)."""


class CommandError(Exception):
    """An error of the run (a data set, a model, an attack option) worded for the user: one
    line and exit status 2, without argparse's usage."""


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _library_status(exc: BaseException) -> Optional[int]:
    """The exit status of a library error the commands report in one line, or None."""
    if isinstance(exc, CommandError):
        return 2
    if "jsma_fast.runner" not in sys.modules:  # neither error can have been raised
        return None
    from ..runner import ChunkError, RankFailed

    if isinstance(exc, RankFailed):
        return 1
    if isinstance(exc, ChunkError):
        return 2
    return None


def _resume_hint(args: argparse.Namespace) -> str:
    """What an interrupted resumable command left: its chunks folder, named only when it holds
    completed chunks (an interruption during the model's training leaves none)."""
    chunks = Path(args.out) / "chunks"
    if chunks.is_dir() and any(chunks.glob("*/chunk-*.npz")):
        return (
            f": completed chunks are saved in {chunks}; run the same command with --resume "
            "to continue."
        )
    return ": no chunk was completed, nothing to resume."


def run_command(args: argparse.Namespace) -> int:
    """``args.run(args)``'s exit status (see the module docstring). ``args.fail`` is the
    command's ``parser.error``; ``args.resumable`` says whether ``args.out`` holds chunks that
    ``--resume`` keeps."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # _OneLine shows each distinct warning once
        warnings.showwarning = _OneLine(args.command)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        return args.run(args)
    except UsageError as exc:
        args.fail(str(exc))  # exits with status 2
        raise  # not reached
    except (Interrupted, KeyboardInterrupt) as exc:
        hint = _resume_hint(args) if getattr(args, "resumable", False) else ""
        print(f"\nInterrupted ({str(exc) or 'SIGINT'}){hint}", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:
        status = _library_status(exc)
        if status is None:
            raise
        print(f"jsma-fast {args.command}: error: {exc}", file=sys.stderr, flush=True)
        return status
    finally:
        signal.signal(signal.SIGTERM, previous)


class _OneLine:
    """Shows warnings as the command's own lines (``jsma-fast attack: warning: ...``), each
    distinct one once (not once per batch), without the source line Python adds."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.seen: set = set()

    def __call__(self, message, category, filename, lineno, file=None, line=None) -> None:
        text = f"jsma-fast {self.command}: warning: {message}"
        if text not in self.seen:
            self.seen.add(text)
            print(text, file=sys.stderr, flush=True)
