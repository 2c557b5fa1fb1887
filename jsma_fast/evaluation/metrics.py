"""The measures of ``jsma-fast reproduce``, computed from its attacks in one place.

:func:`compute_metrics` turns the columns of :class:`~jsma_fast.evaluation.runs.AttackRuns`
into :class:`EvaluationMetrics`: the success and distortion of every mode, the class-pair
tables, the hardness measure, the adversarial distance and robustness, and the detector. The
number of classes comes from the model's output, the number of features from the digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..runner.columns import Columns, success_and_distortion
from .adversarial_training import AdversarialTrainingReport
from .detector import adjacent_msd
from .distance import adversarial_distance, robustness
from .hardness import hardness
from .pairs import PairTable, class_pairs
from .paper import PAPER
from .roc import auc, roc_curve
from .runs import AttackRuns, ModelInfo


@dataclass(frozen=True)
class ModeSummary:
    """One row of ``summary.csv``: a mode's success and distortion beside the paper's.

    Attributes:
        mode: ``increase``, ``decrease``, ``variant_<name>`` or ``model_<architecture>``.
        rows: attacked rows.
        success_rate: fraction of the rows that reached their target.
        mean_distortion_success: mean ``l0_fraction`` of the successful rows (NaN: none).
        paper_success_rate, paper_mean_distortion: the paper's figures for the mode (NaN:
            not reported).
        detector_auc: AUC of the detector on the mode's successful samples (NaN: not run).
    """

    mode: str
    rows: int
    success_rate: float
    mean_distortion_success: float
    paper_success_rate: float
    paper_mean_distortion: float
    detector_auc: float = math.nan


@dataclass(frozen=True)
class DetectorResult:
    """The detector on one mode: clean digits (negatives) against its successful adversarial
    samples (positives).

    Attributes:
        scores: (K,) detector scores of the K successful samples.
        fpr, tpr: the ROC curve, each (T + 1,).
        auc: area under it.
    """

    scores: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


@dataclass(frozen=True)
class EvaluationMetrics:
    """Everything the report, the figures and the files show, besides the raw columns.

    Attributes:
        model: the attacked model; ``other_model``: the comparison's, or None.
        num_classes: C, from the model's output.
        num_features: M, features per digit (from the digits' shape).
        digits: N, attacked digits.
        attack_seconds: time of the paper's attacks and the variants in this run.
        modes: the rows of ``summary.csv``: increase, decrease, then each variant, then the
            other model.
        tables: per paper mode, the (C, C) class-pair table.
        hardness_gammas: the budgets of the hardness measure.
        hardness: (C, C) H(s, t) of the increase mode, NaN where not measured.
        distances: (N, C) adversarial distance A(x, t), NaN at the source class.
        mean_distance: (C, C) mean A(x, t) over the digits of each source class.
        robustness: R(F), the smallest A(x, t).
        clean_scores: (N,) detector scores of the clean digits.
        detector: per paper mode with successful samples, the detector against them.
        adversarial_training: before / after numbers, or None.
    """

    model: ModelInfo
    num_classes: int
    num_features: int
    digits: int
    attack_seconds: float
    modes: List[ModeSummary]
    tables: Dict[str, PairTable]
    hardness_gammas: Tuple[float, ...]
    hardness: np.ndarray
    distances: np.ndarray
    mean_distance: np.ndarray
    robustness: float
    clean_scores: np.ndarray
    detector: Dict[str, DetectorResult] = field(default_factory=dict)
    other_model: Optional[ModelInfo] = None
    adversarial_training: Optional[AdversarialTrainingReport] = None

    def mode(self, name: str) -> Optional[ModeSummary]:
        """The summary of mode ``name``, or None when it did not run."""
        return next((m for m in self.modes if m.mode == name), None)


def compute_metrics(
    runs: AttackRuns, *, gamma: float, hardness_gammas: Sequence[float]
) -> EvaluationMetrics:
    """The measures of a run.

    Args:
        runs: the attacks (rank 0); ``runs.stages`` holds ``"increase"`` and ``"decrease"``.
        gamma: the budget Upsilon the attacks ran with.
        hardness_gammas: ascending budgets, each <= ``gamma``, of the hardness measure.
    """
    x, c = runs.x, runs.num_classes
    num_features = int(np.prod(x.shape[1:]))
    distances = adversarial_distance(runs.model, x, runs.y, num_classes=c)
    clean_scores = adjacent_msd(x)
    detector = {}
    for stage, cols in runs.stages.items():
        result = detect(clean_scores, cols)
        if result is not None:
            detector[stage] = result
    return EvaluationMetrics(
        model=runs.info,
        num_classes=c,
        num_features=num_features,
        digits=int(x.shape[0]),
        attack_seconds=runs.attack_seconds,
        modes=_mode_summaries(runs, detector),
        tables={stage: class_pairs(cols, c) for stage, cols in runs.stages.items()},
        hardness_gammas=tuple(hardness_gammas),
        hardness=hardness(runs.stages["increase"], hardness_gammas, gamma, num_features, c),
        distances=distances,
        mean_distance=mean_distance_per_pair(distances, runs.y.numpy()),
        robustness=robustness(distances),
        clean_scores=clean_scores,
        detector=detector,
        other_model=runs.other_model,
        adversarial_training=runs.adversarial_training,
    )


def detect(clean_scores: np.ndarray, cols: Columns) -> Optional[DetectorResult]:
    """The detector on the successful samples of ``cols`` against ``clean_scores``; None
    when no sample succeeded."""
    adv_scores = adjacent_msd(cols["x_adv"][cols["success"].astype(bool)])
    if not adv_scores.size:
        return None
    labels = np.r_[np.zeros(clean_scores.size, bool), np.ones(adv_scores.size, bool)]
    fpr, tpr, _ = roc_curve(np.r_[clean_scores, adv_scores], labels)
    return DetectorResult(scores=adv_scores, fpr=fpr, tpr=tpr, auc=auc(fpr, tpr))


def mean_distance_per_pair(distances: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean A(x, t) per (source, target).

    Args:
        distances: (N, C) from :func:`~jsma_fast.evaluation.adversarial_distance`.
        y: (N,) source classes.

    Returns:
        (C, C) float64; NaN on the diagonal and for classes without digits.
    """
    c = distances.shape[1]
    mean = np.full((c, c), np.nan)
    for s in range(c):
        rows = distances[y == s]
        if rows.size:
            mean[s] = np.where(np.isfinite(rows), rows, 0).sum(0) / len(rows)
    mean[np.arange(c), np.arange(c)] = np.nan
    return mean


def _mode_summaries(runs: AttackRuns, detector: Dict[str, DetectorResult]) -> List[ModeSummary]:
    """The paper's modes beside its figures, then the variants and the other model beside
    the paper's increase figures."""
    rows = []
    for stage, cols in runs.stages.items():
        paper_distortion = PAPER.increase_distortion if stage == "increase" else math.nan
        auc_value = detector[stage].auc if stage in detector else math.nan
        rows.append(
            summarize(stage, cols, getattr(PAPER, f"{stage}_success"), paper_distortion, auc_value)
        )
    for name, cols in runs.variants.items():
        rows.append(summarize(f"variant_{name}", cols))
    if runs.other_model is not None:
        rows.append(summarize(f"model_{runs.other_model.architecture}", runs.other_columns))
    return rows


def summarize(
    mode: str,
    cols: Columns,
    paper_success: float = PAPER.increase_success,
    paper_distortion: float = PAPER.increase_distortion,
    detector_auc: float = math.nan,
) -> ModeSummary:
    """The summary of one mode's columns (by default beside the paper's increase figures)."""
    success, distortion = success_and_distortion(cols)
    return ModeSummary(
        mode=mode,
        rows=int(cols["success"].size),
        success_rate=success,
        mean_distortion_success=distortion,
        paper_success_rate=paper_success,
        paper_mean_distortion=paper_distortion,
        detector_auc=detector_auc,
    )
