"""The figures of ``jsma-fast reproduce`` (matplotlib): class-pair heatmaps, the grid of
adversarial digits, saliency maps, success against the budget, the detector, the toy.

Each is drawn by :mod:`jsma_fast.evaluation.figures` as ``<name>.png`` and ``<name>.pdf``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from ..runner.columns import Columns
from . import figures
from .distance import saliency_maps
from .hardness import success_curve
from .metrics import EvaluationMetrics
from .paper import PAPER
from .report import Figure
from .runs import AttackRuns
from .toy import surface_and_derivative, train_and_mlp

#: Points of the success-against-budget curve.
CURVE_POINTS = 40


def draw_figures(
    metrics: EvaluationMetrics, runs: AttackRuns, *, gamma: float, seed: int, directory: Path
) -> List[Figure]:
    """Draws every figure of the report into ``directory``.

    Args:
        metrics: the run's measures.
        runs: its attacks (the digits, the model, the columns of the paper's modes).
        gamma: the budget Upsilon of the attacks.
        seed: seed of the toy network.
        directory: where the figures go.

    Returns:
        ``(title, png path)`` of each figure, in the report's order.
    """
    figs = _pair_heatmaps(metrics, gamma, directory)
    figs += _class_grids(metrics, runs, gamma, directory)
    figs.append(_saliency_figure(metrics, runs, directory))
    figs.append(_success_curve_figure(metrics, runs, gamma, directory))
    if "increase" in metrics.detector:
        figs.append(_detector_figure(metrics, directory))
    figs.append(_toy_figure(seed, directory))
    return figs


def _class_grids(
    metrics: EvaluationMetrics, runs: AttackRuns, gamma: float, directory: Path
) -> List[Figure]:
    """The source -> target grid of adversarial digits of each paper mode."""
    figs: List[Figure] = []
    for stage, cols in runs.stages.items():
        originals, grid, ok = class_grid(runs.x, runs.y.numpy(), cols, metrics.num_classes)
        figs.append(
            (
                f"Source -> target adversarial digits, {stage}",
                figures.plot_class_grid(
                    originals,
                    grid,
                    f"JSMA adversarial samples, {stage} features (Upsilon = "
                    f"{gamma:.1%}); red frame: attack failed",
                    directory / f"grid_{stage}",
                    ok,
                ),
            )
        )
    return figs


def _saliency_figure(metrics: EvaluationMetrics, runs: AttackRuns, directory: Path) -> Figure:
    """The saliency maps of the first digit towards every class."""
    c = metrics.num_classes
    maps = saliency_maps(runs.model, runs.x[:1].repeat(c, 1, 1, 1), torch.arange(c))
    return (
        "Saliency maps of one digit for each target",
        figures.plot_saliency_maps(
            runs.x[0, 0].numpy(), np.asarray(maps), int(runs.y[0]), directory / "saliency_maps"
        ),
    )


def _success_curve_figure(
    metrics: EvaluationMetrics, runs: AttackRuns, gamma: float, directory: Path
) -> Figure:
    """Success rate against the budget, for each paper mode and the paper's points."""
    fine = np.linspace(gamma / CURVE_POINTS, gamma, CURVE_POINTS)
    curves = {
        f"{stage} (this run)": success_curve(cols, fine, gamma, metrics.num_features)
        for stage, cols in runs.stages.items()
    }
    return (
        "Success rate vs Upsilon",
        figures.plot_success_vs_gamma(
            fine,
            curves,
            directory / "success_vs_gamma",
            {
                "paper, increase": (PAPER.gamma, PAPER.increase_success),
                "paper, decrease": (PAPER.gamma, PAPER.decrease_success),
            },
        ),
    )


def _detector_figure(metrics: EvaluationMetrics, directory: Path) -> Figure:
    """The detector's scores and ROC on the increase samples."""
    d = metrics.detector["increase"]
    return (
        "Detector: scores and ROC (increase samples)",
        figures.plot_detector(
            metrics.clean_scores, d.scores, d.fpr, d.tpr, d.auc, directory / "detector_roc"
        ),
    )


def _toy_figure(seed: int, directory: Path) -> Figure:
    """The toy AND network's output and forward derivative."""
    grid_pts, surf, d1, d2 = surface_and_derivative(train_and_mlp(seed=seed))
    return (
        "Toy: AND network, output and forward derivative",
        figures.plot_toy(grid_pts, surf, d1, d2, directory / "toy_and"),
    )


def _pair_heatmaps(metrics: EvaluationMetrics, gamma: float, directory: Path) -> List[Figure]:
    """Success and distortion per (source, target) of each paper mode, the hardness and the
    mean adversarial distance."""
    figs: List[Figure] = []
    for stage, table in metrics.tables.items():
        figs.append(
            (
                f"Success rate per (source, target), {stage}",
                figures.plot_pair_heatmap(
                    table.success_rate,
                    f"JSMA success rate, {stage} features (Upsilon = {gamma:.1%})",
                    "success rate",
                    directory / f"success_{stage}",
                    "{:.0%}",
                ),
            )
        )
        figs.append(
            (
                f"Mean distortion per (source, target), {stage}",
                figures.plot_pair_heatmap(
                    100 * table.mean_distortion,
                    f"Mean distortion of successful samples, {stage}",
                    "pixels changed (%)",
                    directory / f"distortion_{stage}",
                    "{:.1f}",
                    cmap="magma",
                ),
            )
        )
    figs.append(
        (
            "Hardness H(s, t), increase",
            figures.plot_pair_heatmap(
                100 * metrics.hardness,
                "Hardness H(s, t), increase (area under distortion vs success rate)",
                "H (% pixels x success rate)",
                directory / "hardness_increase",
                "{:.2f}",
                cmap="magma",
            ),
        )
    )
    figs.append(
        (
            "Mean adversarial distance A(x, t)",
            figures.plot_pair_heatmap(
                metrics.mean_distance,
                "Mean adversarial distance A(x, t), increase map",
                "A(x, t)",
                directory / "adversarial_distance",
                "{:.2f}",
                cmap="viridis",
            ),
        )
    )
    return figs


def class_grid(
    x: torch.Tensor, y: np.ndarray, cols: Columns, num_classes: int
) -> Tuple[List[Optional[np.ndarray]], List[List[Optional[np.ndarray]]], np.ndarray]:
    """The cells of the paper's Figure 1: the first digit of each class and its adversarial
    samples towards every target.

    Args:
        x: (N, 1, H, W) the attacked digits; y: (N,) their classes.
        cols: columns of an all-targets run on them.
        num_classes: C.

    Returns:
        ``(originals, grid, success)``: C images (H, W) or None (no digit of the class), C x C
        adversarial images or None indexed [s][t], and (C, C) bool success.
    """
    originals: List[Optional[np.ndarray]] = [None] * num_classes
    grid: List[List[Optional[np.ndarray]]] = [[None] * num_classes for _ in range(num_classes)]
    success = np.zeros((num_classes, num_classes), bool)
    for s in range(num_classes):
        idx = np.nonzero(y == s)[0]
        if not idx.size:
            continue
        d = int(idx[0])
        originals[s] = x[d, 0].numpy()
        for row in np.nonzero(cols["source_index"] == d)[0]:
            t = int(cols["target"][row])
            grid[s][t] = cols["x_adv"][row].reshape(x.shape[-2:])
            success[s, t] = bool(cols["success"][row])
    return originals, grid, success
