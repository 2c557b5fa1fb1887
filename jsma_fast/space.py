"""The attack's input space: where each feature may go, how far one step moves it, which
features may change, and what the model is fed.

- **Bounds.** ``clip_min`` and ``clip_max`` are numbers, or arrays that broadcast (NumPy rules)
  to the inputs' shape (N, ...): one value per channel (shape (C, 1, 1) for images), per
  feature (one sample's shape) or per row (a leading dimension N).
- **Step units.** With ``theta_units="range"`` (the default) theta is a fraction of each
  feature's own range ``clip_max - clip_min``: theta = +1 pushes a feature to its upper bound
  on [0, 1], on [0, 255] and on normalised per-channel bounds alike, as theta = +1 does on the
  paper's [0, 1]. The saliency then ranks features by the derivative per step (dF/dx_i times
  the feature's range), so the attack on any affine rescaling of the inputs chooses what the
  attack on [0, 1] chooses. ``"absolute"``: theta in input units, added and clipped
  (cleverhans, advertorch and ART do this; on [0, 1] both units agree).
- **A search domain from the user** (``mask``): True where a feature may change; the others
  never change, whatever the variant, direction or domain rule.
- **Normalisation.** ``normalization=(mean, std)`` attacks, in the inputs' own space, a model
  that expects ``(x - mean) / std`` (per channel: along dimension 1).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import _checks

THETA_UNITS = ("range", "absolute")


class StepWarning(UserWarning):
    """An absolute step that cannot take a feature to its bound within the budget: the
    attack runs, but weaker than the same theta in range units."""


class FeatureArray:
    """An immutable float64 array used as an option value: equal and hashed by its content,
    with a ``repr`` that identifies it (its values when short, else its shape and a digest), so
    an attack's ``repr`` stays a faithful key of its configuration."""

    __slots__ = ("array", "_digest")

    def __init__(self, values: Any) -> None:
        array = np.array(values, dtype=np.float64)
        array.setflags(write=False)
        self.array = array
        self._digest = hashlib.sha256(
            repr(array.shape).encode() + np.ascontiguousarray(array).tobytes()
        ).hexdigest()

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.array.shape)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureArray) and self._digest == other._digest

    def __hash__(self) -> int:
        return hash(self._digest)

    def __repr__(self) -> str:
        if self.array.size <= 8:
            return f"FeatureArray({self.array.tolist()!r})"
        return f"FeatureArray(shape={self.shape}, sha256={self._digest[:16]!r})"


Bound = Union[float, FeatureArray]


def as_bound(value: Any, name: str) -> Bound:
    """``value`` as a finite float, or a :class:`FeatureArray` of finite values.

    Raises:
        TypeError: neither a number nor an array of numbers.
        ValueError: NaN or infinite values.
    """
    if isinstance(value, FeatureArray):
        return value
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    if isinstance(value, (np.ndarray, list, tuple)):
        array = _numeric_array(value, name)
        if array.ndim == 0:
            return as_bound(float(array), name)
        if not np.isfinite(array).all():
            raise ValueError(f"{name} must hold finite numbers, got NaN or inf values")
        return FeatureArray(array)
    number = _checks.check_number(value, name)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number or array, got {number!r}")
    return number


def _numeric_array(value: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nested sequences
        array = None
    if array is None or array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise TypeError(
            f"{name} must be a number or an array of numbers, got {type(value).__name__}"
            + ("" if array is None else f" of dtype {array.dtype}")
        )
    return array.astype(np.float64)


def values_of(bound: Bound) -> np.ndarray:
    """The bound as a float64 array (0-d for a number)."""
    return bound.array if isinstance(bound, FeatureArray) else np.asarray(bound, np.float64)


def check_bounds(clip_min: Bound, clip_max: Bound) -> None:
    """``clip_min < clip_max`` wherever they meet.

    Raises:
        ValueError: shapes that do not broadcast together, or a feature whose range is empty.
    """
    lo, hi = values_of(clip_min), values_of(clip_max)
    try:
        np.broadcast_shapes(lo.shape, hi.shape)
    except ValueError:
        raise ValueError(
            f"clip_min and clip_max must broadcast together, got shapes {lo.shape} and {hi.shape}"
        ) from None
    empty = ~(lo < hi)
    if empty.any():
        where = np.argwhere(np.broadcast_to(empty, np.broadcast_shapes(lo.shape, hi.shape)))
        first = tuple(int(i) for i in where[0]) if where.size else ()
        a, b = np.broadcast_arrays(lo, hi)
        raise ValueError(
            f"clip_min must be < clip_max for every feature, got clip_min={float(a[first])!r}, "
            f"clip_max={float(b[first])!r}" + (f" at index {first}" if first else "")
        )


@dataclass(frozen=True)
class Normalization:
    """``model((x - mean) / std)``: the model expects normalised inputs, the attack works in
    the inputs' own space. mean and std have one value, or one per index of dimension 1
    (the channels of images, the features of (N, F) tables)."""

    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    @classmethod
    def of(cls, value: Any) -> Optional["Normalization"]:
        """``None``, a :class:`Normalization`, or a pair ``(mean, std)`` of numbers or 1-D
        sequences, checked."""
        if value is None or isinstance(value, Normalization):
            return value
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise TypeError(
                "normalization must be a pair (mean, std) of numbers or per-channel sequences, "
                f"got {type(value).__name__}"
            )
        mean, std = (_per_channel(v, name) for v, name in zip(value, ("mean", "std")))
        if len(mean) != len(std) and 1 not in (len(mean), len(std)):
            raise ValueError(
                f"normalization's mean and std must have the same length (or one of them one "
                f"value), got {len(mean)} and {len(std)}"
            )
        if not all(s > 0 for s in std):
            raise ValueError(f"normalization's std must be > 0, got {std}")
        return cls(mean, std)

    def channels(self) -> int:
        return max(len(self.mean), len(self.std))

    def module(self, model: Callable[[torch.Tensor], torch.Tensor]) -> "Normalized":
        """``model`` behind this normalisation."""
        return Normalized(model, self.mean, self.std)

    def check_channels(self, like: torch.Tensor) -> None:
        """Raises ValueError when per-channel values do not match ``like``'s dimension 1."""
        channels = self.channels()
        if channels > 1 and (like.dim() < 2 or like.shape[1] != channels):
            raise ValueError(
                f"normalization has {channels} values per channel, but x has shape "
                f"{tuple(like.shape)}: its dimension 1 must have {channels} entries"
            )

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` for x (N, C, ...), computed in x's dtype."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return (x - mean) / std


class Normalized(torch.nn.Module):
    """A model that takes normalised inputs, seen from the inputs' own space:
    ``Normalized(model, mean, std)(x) == model((x - mean) / std)``, mean and std one value or
    one per index of dimension 1. ``JSMA(normalization=(mean, std))`` attacks through it; the
    module form serves any other caller (a data-set run, another library)."""

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], mean: Any, std: Any):
        super().__init__()
        self.model = model
        self.normalization = Normalization.of((mean, std))
        self.training = bool(getattr(model, "training", False))  # in the model's mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.normalization.check_channels(x)
        return self.model(self.normalization.apply(x))


def _per_channel(value: Any, name: str) -> Tuple[float, ...]:
    array = np.atleast_1d(_numeric_array(value, f"normalization's {name}"))
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        raise ValueError(
            f"normalization's {name} must be a finite number or a 1-D sequence of them (one "
            f"per channel), got shape {array.shape}"
        )
    return tuple(float(v) for v in array)


# ----------------------------------------------------------------------------- one call's space


@dataclass
class Space:
    """The bounds, step and user domain of the rows of one attack call, as (1, M) tensors
    shared by every row or (R, M) tensors with a row each (M features a row, in the inputs'
    dtype and device). Index rows with :meth:`rows`."""

    lo: torch.Tensor  #: (1 or R, M) lower bounds
    hi: torch.Tensor  #: (1 or R, M) upper bounds
    step: torch.Tensor  #: (1 or R, M) |theta| in input units
    to_bound: bool  #: every step reaches the bound (|theta| >= 1 in range units)
    weight: Optional[torch.Tensor]  #: (1 or R, M) derivative scale per step, None for 1
    mask: Optional[torch.Tensor]  #: (1 or R, M) bool, features that may change; None: all

    def rows(self, index: torch.Tensor) -> "Space":
        """The space of the rows ``index`` (k,)."""
        return Space(
            select_rows(self.lo, index),
            select_rows(self.hi, index),
            select_rows(self.step, index),
            self.to_bound,
            None if self.weight is None else select_rows(self.weight, index),
            None if self.mask is None else select_rows(self.mask, index),
        )

    def at(self, values: torch.Tensor, rows: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """``values[rows[i], feature[i]]`` for a (1 or R, M) tensor of this space: (k,)."""
        return values[0, feature] if values.shape[0] == 1 else values[rows, feature]

    def moved(
        self, x: torch.Tensor, rows: torch.Tensor, feature: torch.Tensor, up: torch.Tensor
    ) -> torch.Tensor:
        """The values of ``x[rows, feature]`` (k,) after one step up (``up`` (k,) bool) or
        down, clipped to the feature's bounds."""
        lo, hi = self.at(self.lo, rows, feature), self.at(self.hi, rows, feature)
        if self.to_bound:  # exact: x +- range could round to a hair short of the bound
            return torch.where(up, hi, lo)
        step = self.at(self.step, rows, feature)
        current = x[rows, feature]
        return torch.where(up, current + step, current - step).clamp(lo, hi)


def select_rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The rows ``index`` of a (1 or R, M) tensor: a shared (1, M) one as it is."""
    return values if values.shape[0] == 1 else values[index]


def make_space(
    attack: Any, x: torch.Tensor, mask: Any, source_index: Optional[torch.Tensor] = None
) -> Space:
    """The :class:`Space` of ``attack`` for inputs ``x`` (N, ...), with rows expanded by
    ``source_index`` (R,) (every row once when None).

    Raises:
        ValueError: bounds or mask that do not broadcast to ``x``'s shape.
        TypeError: a mask that is not boolean.
    """
    lo = _broadcast(attack.clip_min, "clip_min", x)
    hi = _broadcast(attack.clip_max, "clip_max", x)
    theta = abs(attack.theta)
    relative = attack.theta_units == "range"
    uniform = not isinstance(attack.clip_min, FeatureArray) and not isinstance(
        attack.clip_max, FeatureArray
    )
    width = values_of(attack.clip_max) - values_of(attack.clip_min)
    step = _broadcast(theta * width if relative else theta, "theta", x)
    # A common factor per row leaves every choice as it is: scale only per-feature ranges.
    weight = None if (not relative or uniform) else _broadcast(width, "clip range", x)
    user = None if mask is None else _mask(mask, x)
    space = Space(lo, hi, step, relative and theta >= 1, weight, user)
    return space if source_index is None else space.rows(source_index)


def bound_rows(values: Any, name: str, x: torch.Tensor) -> torch.Tensor:
    """A bound (a number or an array broadcastable to x's shape (N, ...)), checked, as (1, M)
    or (N, M) in x's dtype and device.

    Raises:
        TypeError, ValueError: naming ``name``.
    """
    return _broadcast(as_bound(values, name), name, x)


def mask_rows(mask: Any, x: torch.Tensor) -> torch.Tensor:
    """A boolean mask broadcastable to x's shape (N, ...), checked, as (1, M) or (N, M).

    Raises:
        TypeError: not boolean. ValueError: a shape that does not broadcast.
    """
    return _mask(mask, x)


def _broadcast(values: Any, name: str, x: torch.Tensor) -> torch.Tensor:
    """``values`` (a number or an array broadcastable to x's shape (N, ...)) as (1, M) or
    (N, M) in x's dtype and device."""
    array = values_of(values)
    _check_broadcast(array.shape, name, x)
    tensor = torch.tensor(array, dtype=x.dtype, device=x.device)  # a copy: the array is frozen
    return _flat(tensor, x)


def _check_broadcast(shape: Tuple[int, ...], name: str, x: torch.Tensor) -> None:
    try:
        fits = np.broadcast_shapes(shape, tuple(x.shape)) == tuple(x.shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name} must broadcast to x's shape {tuple(x.shape)} (a number, one value per "
            f"channel, per feature {tuple(x.shape[1:])} or per row), got shape {shape}"
        )


def _flat(tensor: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A tensor broadcastable to x (N, ...) as (1, M), or (N, M) when it varies by row."""
    per_row = tensor.dim() == x.dim() and tensor.shape[0] != 1
    if per_row:
        return tensor.expand(x.shape).reshape(x.shape[0], -1)
    if tensor.dim() == x.dim():
        tensor = tensor[0]
    return tensor.expand(x.shape[1:]).reshape(1, -1)


def _mask(mask: Any, x: torch.Tensor) -> torch.Tensor:
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(mask)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, (torch.Tensor, np.ndarray)) else type(mask).__name__
        raise TypeError(
            f"mask must be a boolean tensor or array (True where a feature may change), got {got}"
        )
    _check_broadcast(tuple(mask.shape), "mask", x)
    return _flat(mask.to(x.device), x)


#: What the range error offers, in the library's words.
FIXES = (
    "give the range of your data (clip_min / clip_max take a number, or an array per channel "
    "or per feature); for a model that takes normalised inputs, attack the raw inputs with "
    "normalization=(mean, std)"
)


def fit_inside(
    attack: Any, space: Space, flat: torch.Tensor, x_shape: Sequence[int], fixes: str = FIXES
) -> Space:
    """``space`` with every input (N, M) inside its feature's bounds (those of ``attack``):
    an input beyond a bound by float rounding only (a few units in the last place of the
    bound, as when data and bounds are normalised in different precisions) moves that bound
    to it; ``fixes`` ends the error for anything further out.

    Raises:
        ValueError: naming the range of x, how many values lie outside, the first of them and
            the fixes.
    """
    below, above = flat < space.lo, flat > space.hi
    if not (below.any() or above.any()):
        return space
    slack = _ROUNDING * torch.finfo(flat.dtype).eps * torch.maximum(space.lo.abs(), space.hi.abs())
    outside = (below & (space.lo - flat > slack)) | (above & (flat - space.hi > slack))
    if outside.any():
        _raise_outside(attack, space, flat, outside, x_shape, fixes)
    shared = space.lo.shape[0] == 1
    low = flat.min(dim=0, keepdim=True).values if shared else flat
    high = flat.max(dim=0, keepdim=True).values if shared else flat
    return dataclasses.replace(
        space, lo=torch.minimum(space.lo, low), hi=torch.maximum(space.hi, high)
    )


#: How many units in the last place an input may lie beyond a bound (float rounding).
_ROUNDING = 8


def _raise_outside(attack, space: Space, flat, outside, x_shape, fixes: str) -> None:
    row, feature = (int(i) for i in outside.nonzero()[0])
    lo = space.lo[0 if space.lo.shape[0] == 1 else row, feature].item()
    hi = space.hi[0 if space.hi.shape[0] == 1 else row, feature].item()
    scalars = not isinstance(attack.clip_min, FeatureArray) and not isinstance(
        attack.clip_max, FeatureArray
    )
    bounds = f" = [{attack.clip_min}, {attack.clip_max}]" if scalars else " (per feature)"
    raise ValueError(
        f"x must lie in [clip_min, clip_max]{bounds}, got values in [{flat.min().item()}, "
        f"{flat.max().item()}]: {int(outside.sum())} values of x (shape {tuple(x_shape)}) lie "
        f"outside, the first at row {row}, feature {feature}: {flat[row, feature].item()!r} "
        f"outside [{lo!r}, {hi!r}]; {fixes}"
    )


def warn_short_steps(attack: Any, space: Space, steps: int) -> None:
    """Warns (:class:`StepWarning`) when absolute steps cannot take some feature to its bound
    while the same theta in range units would take it further (a range wider than 1).
    Once chosen, a feature leaves the domain (``domain_rule="used"``); otherwise it can move
    once a step, within ``steps`` steps (a budget of changed features does not count
    repeated moves, so it bounds none)."""
    if attack.theta_units != "absolute" or space.lo.numel() == 0:
        return
    if attack.domain_rule == "saturated" and attack.budget_rule == "features":
        return
    moves = 1 if attack.domain_rule == "used" else max(steps, 1)
    reach = abs(attack.theta) * moves
    widest = float((space.hi - space.lo).max())
    if reach < widest and widest > 1:  # ranges up to 1: range units would not go further
        warnings.warn(
            f"theta={attack.theta!r} is an absolute step (theta_units='absolute'): a feature "
            f"moves at most {reach:g} within the budget, while the features span up to "
            f"{widest:g}, so the attack cannot reach their bounds and is weaker than it could "
            "be; theta_units='range' makes theta a fraction of each feature's range",
            StepWarning,
            stacklevel=4,
        )
