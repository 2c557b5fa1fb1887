"""Hardness measure H(s, t) (the paper, section 5), integrated with the trapezoidal rule.

How eps(s, t, tau) is formed: for each Upsilon (``gamma``) value g in the list, tau_g(s, t) is
the success rate of the pair (s, t) under budget g, and eps_g(s, t) the mean distortion
(``l0_fraction``) of its successful rows. The points (tau_g, eps_g) are sorted by tau (ties:
by eps), the point (0, 0) is prepended (reaching a success rate of 0 needs no distortion;
points with tau = 0 have no successful rows and are taken as (0, 0) too), and

    H(s, t) = sum_k (tau_{k+1} - tau_k) * (eps_k + eps_{k+1}) / 2.

A pair with no success under any gamma gets H = NaN (its hardness is not measured).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .pairs import class_pairs, success_at_gamma


def trapezoid_hardness(tau: Any, eps: Any) -> np.ndarray:
    """H from a table of points.

    Args:
        tau: (G, ...) success rates in [0, 1], one slice per gamma value (NaN = no rows).
        eps: (G, ...) mean distortion of the successful rows (NaN where there are none).

    Returns:
        (...) float64 hardness; NaN where no gamma has a success.
    """
    tau = np.asarray(tau, dtype=np.float64)
    eps = np.asarray(eps, dtype=np.float64)
    if tau.shape != eps.shape or tau.ndim < 1:
        raise ValueError(
            f"tau and eps must have the same shape (G, ...), got {tau.shape} and {eps.shape}"
        )
    t = np.nan_to_num(tau, nan=0.0)
    e = np.where(t > 0, np.nan_to_num(eps, nan=0.0), 0.0)
    zero = np.zeros((1,) + t.shape[1:])
    t = np.concatenate([zero, t])
    e = np.concatenate([zero, e])
    order = np.lexsort((e, t), axis=0)  # by tau, ties by eps
    t = np.take_along_axis(t, order, axis=0)
    e = np.take_along_axis(e, order, axis=0)
    h = (np.diff(t, axis=0) * (e[1:] + e[:-1]) / 2.0).sum(axis=0)
    return np.where((t > 0).any(axis=0), h, np.nan)


def hardness(
    result: Any,
    gammas: Sequence[float],
    run_gamma: float,
    num_features: int,
    num_classes: int = 10,
    per_step: int = 2,
) -> np.ndarray:
    """H(s, t) for every pair from one run, using :func:`success_at_gamma` for each gamma.

    Args:
        result: AttackResult or columns of a run with ``gamma=run_gamma`` (all-targets).
        gammas: budgets, each in (0, run_gamma].
        run_gamma, num_features, per_step: see :func:`success_at_gamma`.

    Returns:
        (C, C) float64, NaN on the diagonal and for pairs that never succeed.
    """
    if len(gammas) < 1:
        raise ValueError(f"gammas must hold at least one value, got {list(gammas)!r}")
    taus, epss = [], []
    for g in gammas:
        ok = success_at_gamma(result, g, run_gamma, num_features, per_step)
        table = class_pairs(result, num_classes, success=ok)
        taus.append(table.success_rate)
        epss.append(table.mean_distortion)
    return trapezoid_hardness(np.stack(taus), np.stack(epss))


def success_curve(
    result: Any, gammas: Sequence[float], run_gamma: float, num_features: int, per_step: int = 2
) -> np.ndarray:
    """Overall success rate for each gamma (from one run); (G,) float64."""
    return np.array(
        [success_at_gamma(result, g, run_gamma, num_features, per_step).mean() for g in gammas],
        dtype=np.float64,
    )
