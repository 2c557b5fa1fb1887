"""ROC curve and AUC in NumPy (higher score = more likely positive), ties handled exactly."""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np


def _reals(values: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be an array of real numbers, got {type(values).__name__} ({exc})"
        ) from None


def roc_curve(scores: Any, labels: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve of a score.

    Thresholds are the distinct scores, from high to low; at threshold s everything with
    score >= s is called positive. Tied scores enter together (one diagonal segment), so the
    area equals the Mann-Whitney probability P(pos > neg) + 0.5 P(pos == neg).

    Args:
        scores: (N,) real scores.
        labels: (N,) bool or 0/1, True = positive (adversarial); both classes present.

    Returns:
        ``(fpr, tpr, thresholds)``: (K + 1,) each, starting at (0, 0) with threshold +inf.
    """
    s = _reals(scores, "scores").ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"labels must have the shape of scores {s.shape}, got {y.shape}")
    if np.isnan(s).any():
        raise ValueError(
            f"scores must not contain NaN, got {int(np.isnan(s).sum())} NaN among {s.size} scores"
        )
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"labels must contain both classes, got {pos} positive and {neg} negative")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # end of each group of equal scores
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    fpr = np.r_[0.0, fp / neg]
    tpr = np.r_[0.0, tp / pos]
    return fpr, tpr, np.r_[np.inf, s[last]]


def auc(fpr: Any, tpr: Any) -> float:
    """Area under a curve given by increasing ``fpr`` (trapezoidal rule)."""
    x = _reals(fpr, "fpr")
    y = _reals(tpr, "tpr")
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(
            f"fpr and tpr must be 1-D of the same length >= 2, got {x.shape}, {y.shape}"
        )
    if (np.diff(x) < 0).any():
        k = int(np.argmax(np.diff(x) < 0))
        raise ValueError(
            f"fpr must be non-decreasing, got fpr[{k}] = {float(x[k])!r} > "
            f"fpr[{k + 1}] = {float(x[k + 1])!r}"
        )
    return float((np.diff(x) * (y[1:] + y[:-1]) / 2.0).sum())


def roc_auc(scores: Any, labels: Any) -> float:
    """AUC of :func:`roc_curve`."""
    fpr, tpr, _ = roc_curve(scores, labels)
    return auc(fpr, tpr)
