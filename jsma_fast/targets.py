"""Target classes for the attack: explicit, or chosen by a strategy.

Strategies (``y`` is the true class; when not given, the model's clean prediction):

* ``"random"``: uniform over the classes other than ``y``, a function of the seed and the
  row's index only (:func:`random_targets`; the data-set runner draws the same targets);
* ``"next"``: ``(y + 1) % C``;
* ``"least_likely"``: the class with the lowest clean logit other than ``y`` (when ``y`` is
  itself the least likely class, the next lowest);
* ``"all"``: every sample against every other class (the paper's protocol: C - 1 rows per
  sample, in the order of the classes);
* ``"untargeted"``: no target class; a row succeeds once the model's class differs from
  ``y``. Its rows carry ``target == -1``.

Explicit targets must differ from ``y``, or, when ``y`` is not given, from the model's clean
prediction: a target the model already outputs is not an attack.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from .goals import Goal, Targeted, Untargeted

UNTARGETED = "untargeted"
STRATEGIES = ("random", "next", "least_likely", "all", UNTARGETED)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class TargetPlan:
    """Which input row each attacked row comes from, its true class and its goal."""

    source_index: torch.Tensor  #: (R,) int64, row of x that each attacked row copies
    true_class: torch.Tensor  #: (R,) int64, the label (or clean prediction) of the source
    goal: Goal  #: a target per row, or leaving the true class

    @property
    def target(self) -> torch.Tensor:
        """(R,) int64 target class of every row, -1 for non-targeted rows."""
        return self.goal.target


def _as_index(value: Any) -> Optional[int]:
    """One integer class (int, NumPy integer, 0-d integer array or tensor), else None."""
    if isinstance(value, bool) or getattr(value, "ndim", 0) != 0:
        return None
    if isinstance(value, torch.Tensor) and (
        value.dtype.is_floating_point or value.dtype == torch.bool
    ):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _as_labels(
    value: Any, name: str, n: int, num_classes: int, device: torch.device
) -> torch.Tensor:
    scalar = _as_index(value)
    if scalar is not None:
        value = torch.full((n,), scalar, dtype=torch.int64)
    elif not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(
                f"{name} must be an int, a sequence of ints or an int tensor of shape ({n},), "
                f"got {type(value).__name__}"
            ) from exc
    if value.dtype.is_floating_point or value.dtype == torch.bool or value.dtype.is_complex:
        raise TypeError(f"{name} must hold integer class indices, got dtype {value.dtype}")
    if value.shape != (n,):
        raise ValueError(
            f"{name} must have shape ({n},) (one class per sample), got {tuple(value.shape)}"
        )
    # A copy: the result's labels must not share memory with the caller's.
    value = value.to(device=device, dtype=torch.int64, copy=True)
    if n and (value.min() < 0 or value.max() >= num_classes):
        bad = value[(value < 0) | (value >= num_classes)][0].item()
        raise ValueError(f"{name} must be class indices in [0, {num_classes}), got {bad}")
    return value


def plan_targets(
    y_target: Any,
    *,
    y: Optional[Any],
    clean_logits: torch.Tensor,
    seed: int,
) -> TargetPlan:
    """Resolves explicit targets or a strategy into a :class:`TargetPlan`.

    Args:
        y_target: (N,) ints, one int for all, or a strategy name from :data:`STRATEGIES`.
        y: (N,) true labels, or None to use the model's clean predictions.
        clean_logits: (N, C) the model's outputs on the clean inputs.
        seed: seed of the generator for ``"random"``.
    """
    n, num_classes = clean_logits.shape
    device = clean_logits.device
    prediction = clean_logits.argmax(dim=1)
    true_class = prediction if y is None else _as_labels(y, "y", n, num_classes, device)

    if y_target is None:
        raise ValueError(
            f"y_target must be class indices or one of {STRATEGIES}, got None; pass "
            f"{UNTARGETED!r} for a non-targeted attack or 'random' for random targets"
        )
    if isinstance(y_target, str):
        return _strategy_plan(y_target, true_class, clean_logits, seed)
    return _explicit_plan(y_target, y, true_class, num_classes)


def _strategy_plan(
    strategy: str, true_class: torch.Tensor, clean_logits: torch.Tensor, seed: int
) -> TargetPlan:
    """The plan of a strategy name; ``true_class`` is (N,), ``clean_logits`` (N, C)."""
    n, num_classes = clean_logits.shape
    device = clean_logits.device
    rows = torch.arange(n, device=device)
    if strategy not in STRATEGIES:
        raise ValueError(f"y_target must be class indices or one of {STRATEGIES}, got {strategy!r}")
    if num_classes < 2:
        raise ValueError(f"a target strategy needs at least 2 classes, the model has {num_classes}")
    if strategy == UNTARGETED:
        return TargetPlan(rows, true_class, Untargeted(true_class))
    if strategy == "next":
        target = (true_class + 1) % num_classes
    elif strategy == "least_likely":  # never the true class, which is no target
        others = clean_logits.clone()
        others[rows, true_class] = math.inf
        target = others.argmin(dim=1)
    elif strategy == "random":
        target = random_targets(rows, true_class, num_classes, seed)
    else:  # "all": row-major over (sample, other class)
        classes = torch.arange(num_classes, device=device)
        others = classes[None, :].expand(n, num_classes)
        keep = others != true_class[:, None]
        source = rows[:, None].expand(n, num_classes)[keep]
        return TargetPlan(source, true_class[source], Targeted(others[keep]))
    return TargetPlan(rows, true_class, Targeted(target))


def _explicit_plan(
    y_target: Any, y: Optional[Any], true_class: torch.Tensor, num_classes: int
) -> TargetPlan:
    """The plan of explicit targets (one int or (N,) ints), each differing from ``true_class``
    (N,)."""
    n = true_class.shape[0]
    device = true_class.device
    target = _as_labels(y_target, "y_target", n, num_classes, device)
    same = (target == true_class).nonzero()
    if same.numel():
        i = same[0].item()
        against = "the true class y" if y is not None else "the model's prediction (y not given)"
        raise ValueError(
            f"y_target must differ from {against}: sample {i} has y_target = "
            f"{target[i].item()}, and {same.numel()} of {n} samples are like it"
        )
    return TargetPlan(torch.arange(n, device=device), true_class, Targeted(target))


def random_targets(
    rows: torch.Tensor, true_class: torch.Tensor, num_classes: int, seed: int
) -> torch.Tensor:
    """Targets uniform over the classes other than ``true_class``, one per row, each a
    function of ``(seed, row index)`` only (so they do not depend on the batch or on which
    process attacks the row).

    ``target = (true_class + 1 + h % (C - 1)) % C`` with ``h`` the SplitMix64 hash of
    ``seed * 2**64 / golden ratio`` plus the row index (modulo bias below ``C / 2**64``).

    Args:
        rows: (n,) int64 row indices (in the data set, for the runner).
        true_class: (n,) int64 source classes.
        num_classes: C >= 2.
        seed: int in [0, 2**64).
    """
    if num_classes < 2:
        raise ValueError(f"random targets need at least 2 classes, the model has {num_classes}")
    with np.errstate(over="ignore"):
        z = np.asarray(rows.cpu().numpy(), dtype=np.uint64) + np.array([seed], np.uint64) * _GOLDEN
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    offset = torch.from_numpy((z % np.uint64(num_classes - 1)).astype(np.int64)) + 1
    return (true_class + offset.to(true_class.device)) % num_classes
