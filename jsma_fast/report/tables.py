"""The measures of an attack report, from the columns of ``results.npz``: per class, per
(source, target) pair, the L0 of the successes and the success rate against an L0 budget.

Every measure is over the rows the model classified correctly before the attack
(``clean_predicted == true_class``); the misclassified rows are only counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Mapping, Sequence, Tuple

import numpy as np

#: Columns of ``results.npz`` the report reads (never ``x_adv``).
NEEDED = (
    "success",
    "iterations",
    "l0",
    "l0_fraction",
    "target",
    "true_class",
    "clean_predicted",
    "stop_code",
    "source_index",
)

#: Columns of ``results.npz`` the report reads when a run has them: ``member``, the
#: minimum-L0 mode's member that gave each row its output.
OPTIONAL = ("member",)


@dataclass
class Group:
    """The figures of one class (or one target), over its correctly classified rows.

    Attributes:
        key: the class.
        rows: correctly classified result rows.
        sources: the data set rows they come from (C - 1 result rows each with "all"; the
            rows of one source are not independent samples).
        misclassified: result rows the model already misclassified (not in the figures).
        success_rate: over ``rows`` (NaN without rows).
        mean_l0_fraction, mean_l0: features changed, over the successful rows (NaN: none).
        mean_iterations: over ``rows``.
    """

    key: int
    rows: int
    sources: int
    misclassified: int
    success_rate: float
    mean_l0_fraction: float
    mean_l0: float
    mean_iterations: float


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def correct(cols: Mapping[str, np.ndarray]) -> np.ndarray:
    """(R,) bool: the rows whose source the model classified correctly before the attack."""
    return np.asarray(cols["clean_predicted"]) == np.asarray(cols["true_class"])


def group(cols: Mapping[str, np.ndarray], key: int, where: np.ndarray) -> Group:
    """The :class:`Group` of the rows ``where`` (bool, R)."""
    right = where & correct(cols)
    ok = right & cols["success"].astype(bool)
    return Group(
        key=key,
        rows=int(right.sum()),
        sources=int(np.unique(cols["source_index"][right]).size),
        misclassified=int((where & ~right).sum()),
        success_rate=_mean(cols["success"][right].astype(np.float64)),
        mean_l0_fraction=_mean(cols["l0_fraction"][ok].astype(np.float64)),
        mean_l0=_mean(cols["l0"][ok].astype(np.float64)),
        mean_iterations=_mean(cols["iterations"][right].astype(np.float64)),
    )


def by(cols: Mapping[str, np.ndarray], column: str, classes: int) -> List[Group]:
    """One :class:`Group` per class value of ``column`` (``"true_class"`` or ``"target"``)
    that has rows, in class order."""
    values = np.asarray(cols[column])
    return [group(cols, c, values == c) for c in range(classes) if (values == c).any()]


def pair_success(cols: Mapping[str, np.ndarray], classes: int) -> np.ndarray:
    """(C, C) success rate per (source = true class, target) over the correctly classified
    rows; NaN where a pair has none (the diagonal)."""
    right = correct(cols)
    source = np.asarray(cols["true_class"])[right]
    target = np.asarray(cols["target"])[right]
    ok = cols["success"].astype(bool)[right]
    keep = (target >= 0) & (target < classes) & (source >= 0) & (source < classes)
    count = np.zeros((classes, classes))
    won = np.zeros((classes, classes))
    np.add.at(count, (source[keep], target[keep]), 1)
    np.add.at(won, (source[keep], target[keep]), ok[keep])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, won / np.maximum(count, 1), np.nan)


def successful_l0(cols: Mapping[str, np.ndarray]) -> np.ndarray:
    """The L0 fraction of each successful, correctly classified row."""
    ok = correct(cols) & cols["success"].astype(bool)
    return np.asarray(cols["l0_fraction"], dtype=np.float64)[ok]


def success_within(cols: Mapping[str, np.ndarray], budgets: Sequence[float]) -> np.ndarray:
    """(G,) share of the correctly classified rows whose attack succeeded changing at most
    ``budget`` (a fraction of the features) of them, for each budget; NaN without rows."""
    right = correct(cols)
    if not right.any():
        return np.full(len(budgets), math.nan)
    l0 = np.asarray(cols["l0_fraction"], dtype=np.float64)[right]
    ok = cols["success"].astype(bool)[right]
    return np.array([float((ok & (l0 <= b + 1e-12)).mean()) for b in budgets])


def member_successes(cols: Mapping[str, np.ndarray], members: int) -> List[Tuple[int, float]]:
    """For each member of a minimum-L0 run (index 0 .. ``members`` - 1 of the ``member``
    column): the successful, correctly classified rows whose output it gave, and their mean
    L0 in features (NaN: none)."""
    ok = correct(cols) & cols["success"].astype(bool)
    member = np.asarray(cols["member"])
    l0 = np.asarray(cols["l0"], dtype=np.float64)
    kept = [ok & (member == i) for i in range(members)]
    return [(int(rows.sum()), _mean(l0[rows])) for rows in kept]
