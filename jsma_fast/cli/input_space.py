"""The input-space options of ``jsma-fast attack``: per-feature bounds, theta's units, a
model's normalisation and the search domain (``--mask``).

``--clip-min`` / ``--clip-max`` take one number, one number per channel (dimension 1 of the
data), or an ``.npy`` file broadcastable to the data; ``--normalize MEAN... STD...`` attacks
the raw data through ``(x - mean) / std``; ``--mask FILE.npy`` is a boolean array of one
sample's shape or of the data's (N, ...).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from .exits import CommandError

#: What the range error offers, in the command line's words.
RANGE_FIXES = (
    "give the data's range with --clip-min / --clip-max (one number, one per channel, or "
    "FILE.npy); for a model that takes normalised inputs, pass the raw data (e.g. pixels in "
    "[0, 1]) and --normalize MEAN... STD..."
)


def add_input_space_arguments(parser: argparse.ArgumentParser) -> None:
    """The options, as one argument group."""
    group = parser.add_argument_group(
        "input space", "the range of the features, theta's units, normalisation, fixed features"
    )
    for flag, default in (("--clip-min", 0), ("--clip-max", 1)):
        group.add_argument(
            flag,
            nargs="+",
            default=None,
            metavar="V",
            help=f"{'smallest' if default == 0 else 'largest'} feature value: one number, one "
            f"per channel (dimension 1 of the data), or FILE.npy broadcastable to the data "
            f"(default: {default})",
        )
    group.add_argument(
        "--theta-units",
        choices=("range", "absolute"),
        default=None,
        help="range: theta is a fraction of each feature's range (+1 pushes a feature to its "
        "bound on any scale); absolute: in input units, as cleverhans and ART (default: range, "
        "or the preset's)",
    )
    group.add_argument(
        "--normalize",
        nargs="+",
        type=float,
        default=None,
        metavar="V",
        help="MEAN... STD...: the model takes (x - mean) / std, per channel; attack the raw "
        "data (e.g. --normalize 0.1307 0.3081) (default: none)",
    )
    group.add_argument(
        "--mask",
        type=Path,
        default=None,
        metavar="FILE.npy",
        help="boolean array, one sample's shape or the data's (N, ...): True where a feature "
        "may change (default: every feature)",
    )


def input_space_options(args: argparse.Namespace, x: torch.Tensor) -> Dict[str, Any]:
    """The JSMA options given by the input-space flags, for data ``x`` (N, ...).

    Raises:
        CommandError: a value that does not fit the data, naming the flag.
    """
    options: Dict[str, Any] = {}
    for flag, key in (("--clip-min", "clip_min"), ("--clip-max", "clip_max")):
        values = getattr(args, key)
        if values is not None:
            options[key] = _bound(flag, values, x)
    if args.theta_units is not None:
        options["theta_units"] = args.theta_units
    if args.normalize is not None:
        options["normalization"] = _normalization(args.normalize, x)
    return options


def _bound(flag: str, values: List[str], x: torch.Tensor) -> Any:
    if len(values) == 1 and values[0].endswith(".npy"):
        return _load(flag, Path(values[0]), bool_=False)
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        raise CommandError(
            f"{flag} takes numbers (one, or one per channel) or one FILE.npy, got {values}"
        ) from None
    if len(numbers) == 1:
        return numbers[0]
    channels = x.shape[1] if x.dim() >= 2 else 0
    if len(numbers) != channels:
        raise CommandError(
            f"{flag} got {len(numbers)} values, one per channel, but the data has shape "
            f"{tuple(x.shape)}: dimension 1 has {channels} entries"
        )
    return np.array(numbers).reshape((-1,) + (1,) * (x.dim() - 2))


def _normalization(values: List[float], x: torch.Tensor) -> Any:
    if len(values) % 2:
        raise CommandError(
            f"--normalize takes MEAN... STD..., as many means as stds (one, or one per channel), "
            f"got {len(values)} values"
        )
    half = len(values) // 2
    channels = x.shape[1] if x.dim() >= 2 else 0
    if half not in (1, channels):
        raise CommandError(
            f"--normalize got {half} means and {half} stds, but the data has shape "
            f"{tuple(x.shape)}: give one of each, or one per channel ({channels})"
        )
    return (values[:half], values[half:])


def load_mask(path: Optional[Path], x: torch.Tensor, limit: Optional[int]) -> Any:
    """The ``--mask`` array for the attacked rows of ``x`` (a per-row mask of a longer data
    set is cut like the data by ``--limit``); None without the flag."""
    if path is None:
        return None
    mask = _load("--mask", path, bool_=True)
    if mask.ndim == x.dim() and limit is not None and mask.shape[0] > x.shape[0]:
        mask = mask[: x.shape[0]]
    if mask.shape not in (tuple(x.shape[1:]), tuple(x.shape)):
        raise CommandError(
            f"--mask {path} must have one sample's shape {tuple(x.shape[1:])} or the data's "
            f"{tuple(x.shape)}, got {mask.shape}"
        )
    return mask


def _load(flag: str, path: Path, bool_: bool) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{flag} {path} cannot be read as an .npy array: {exc}") from None
    if bool_ and array.dtype != bool:
        raise CommandError(
            f"{flag} {path} must hold a boolean array (True where a feature may change), got "
            f"dtype {array.dtype}"
        )
    if not bool_ and not np.issubdtype(array.dtype, np.number):
        raise CommandError(f"{flag} {path} must hold numbers, got dtype {array.dtype}")
    return array


def check_range(attack: Any, x: torch.Tensor, mask: Any) -> None:
    """The data lies within the attack's bounds, and the bounds and mask fit it.

    Raises:
        CommandError: naming the range of the data and the flags that fix it.
    """
    from ..space import fit_inside, make_space

    try:
        space = make_space(attack, x, mask)
        fit_inside(attack, space, x.reshape(x.shape[0], -1), x.shape, fixes=RANGE_FIXES)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"--data: {exc}") from None
