"""Class-pair study (the paper, section 5): success rate and mean distortion per (source, target).

Distortion is the paper's: the fraction of features changed (``l0_fraction``), averaged over
the *successful* rows of a pair. Rows come from an ``"all"``-targets run, but any run works:
every (true_class, target) combination present is tabulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_int, check_real
from ..runner.columns import result_columns


@dataclass(frozen=True)
class PairTable:
    """Per (source s, target t) statistics; every array is (C, C), indexed [s, t].

    Attributes:
        count: rows attacked for the pair.
        successes: rows that reached the target.
        success_rate: ``successes / count``; NaN where ``count == 0`` (e.g. the diagonal).
        mean_distortion: mean ``l0_fraction`` of the successful rows; NaN without success.
    """

    count: np.ndarray
    successes: np.ndarray
    success_rate: np.ndarray
    mean_distortion: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.count.shape[0])

    def overall_success_rate(self) -> float:
        """Success rate over all rows."""
        total = self.count.sum()
        return float(self.successes.sum() / total) if total else math.nan


def success_at_gamma(
    result: Any, gamma: float, run_gamma: float, num_features: int, per_step: int = 2
) -> np.ndarray:
    """Which rows of a run with ``run_gamma`` would have succeeded with a smaller ``gamma``.

    Exact for the default iteration budget: the attack is deterministic and its trajectory
    does not depend on the budget, so a run with budget ``floor(M * gamma / per_step)`` is a
    prefix of the run with the larger budget. A row succeeds under ``gamma`` iff it succeeded
    within that many iterations, with the same distortion.

    Args:
        result: AttackResult or columns (R rows), made with ``gamma=run_gamma``.
        gamma: the smaller budget, ``0 < gamma <= run_gamma``.
        run_gamma: the gamma the run used.
        num_features: M.
        per_step: features changed per iteration (2 for the pair saliency map, 1 for single).

    Returns:
        (R,) bool.
    """
    gamma = check_real(gamma, "gamma")
    run_gamma = check_real(run_gamma, "run_gamma")
    num_features = check_int(num_features, "num_features", minimum=1)
    per_step = check_int(per_step, "per_step", minimum=1)
    if not 0 < gamma <= run_gamma + 1e-12:
        raise ValueError(f"gamma must be in (0, run_gamma={run_gamma}], got {gamma!r}")
    cols = result_columns(result)
    budget = int(math.floor(num_features * gamma / per_step))
    return cols["success"].astype(bool) & (cols["iterations"] <= budget)


def class_pairs(result: Any, num_classes: int = 10, success: Any = None) -> PairTable:
    """Tabulates a run per (source, target).

    Args:
        result: AttackResult or columns with R rows (``true_class``, ``target``, ``success``,
            ``l0_fraction``).
        num_classes: C.
        success: optional (R,) bool overriding ``result.success`` (e.g. from
            :func:`success_at_gamma`).

    Returns:
        :class:`PairTable` of (C, C) arrays.
    """
    num_classes = check_int(num_classes, "num_classes", minimum=1)
    cols = result_columns(result)
    src = cols["true_class"].astype(np.int64)
    tgt = cols["target"].astype(np.int64)
    ok = cols["success"].astype(bool) if success is None else np.asarray(success, dtype=bool)
    if ok.shape != src.shape:
        raise ValueError(f"success must have shape {src.shape}, got {ok.shape}")
    if src.size and min(src.min(), tgt.min()) < 0:
        raise ValueError(
            f"result's true_class and target must be >= 0, got {int(min(src.min(), tgt.min()))}"
        )
    if src.size and max(src.max(), tgt.max()) >= num_classes:
        raise ValueError(
            f"num_classes must be > {int(max(src.max(), tgt.max()))} (the largest "
            f"class in result), got {num_classes}"
        )
    dist = cols["l0_fraction"].astype(np.float64)
    flat = src * num_classes + tgt
    size = num_classes * num_classes
    count = np.bincount(flat, minlength=size).reshape(num_classes, num_classes)
    succ = np.bincount(flat[ok], minlength=size).reshape(num_classes, num_classes)
    dsum = np.bincount(flat[ok], weights=dist[ok], minlength=size).reshape(num_classes, num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(count > 0, succ / np.maximum(count, 1), np.nan)
        mean = np.where(succ > 0, dsum / np.maximum(succ, 1), np.nan)
    return PairTable(count=count, successes=succ, success_rate=rate, mean_distortion=mean)
