"""The figures of an attack report (matplotlib, Agg): success per (source, target), the L0 of
the successes, success against the L0 budget, and adversarial examples of image data. Each
writes ``<stem>.png`` and ``<stem>.pdf`` and returns the PNG's path."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..evaluation.figures import _save, plot_class_grid, plot_pair_heatmap
from ..mnist.plots import _pyplot

Images = Mapping[str, np.ndarray]


def pair_heatmap(matrix: np.ndarray, stem: Path) -> Path:
    """Success rate per (source, target); grey cells: no attacked row (the diagonal)."""
    return plot_pair_heatmap(
        matrix,
        "Success rate per (source, target), correctly classified rows\n"
        "(grey: no row, e.g. source = target)",
        "success rate",
        stem,
        "{:.0%}",
    )


def l0_histogram(
    l0_fraction: np.ndarray, features: int, budget: Optional[float], stem: Path, step: int = 2
):
    """Histogram of the features changed by each successful attack; bins of ``step`` features
    (2: JSMA's pairs change features two at a time; 1: refined outputs, whose L0 may be odd)
    or a multiple of it for large L0."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    counts = np.rint(np.asarray(l0_fraction) * features)
    top = max(float(counts.max()) if counts.size else 1.0, 1.0)
    if budget is not None:
        top = max(top, budget * features)
    width = step * max(1, int(np.ceil(top / 80)))
    ax.hist(counts, bins=np.arange(-0.5, top + width, width), color="tab:blue", alpha=0.85)
    if budget is not None:
        ax.axvline(budget * features, color="tab:red", ls="--", lw=1, label="budget")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"features changed (L0, of {features})")
    ax.set_ylabel("successful rows")
    ax.set_title(f"L0 of the {counts.size} successful attacks (correctly classified rows)")
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    return _save(fig, stem)


def success_curve(
    budgets: np.ndarray, rates: np.ndarray, stem: Path, features: Optional[int] = None
) -> Path:
    """Success rate against the L0 budget: percent of the features, or with ``features``
    (the features per sample) the number of features changed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    scale, unit = (100, "% of the features") if features is None else (features, "features")
    steps = "default" if features is None else "steps-post"  # whole features
    ax.plot(scale * np.asarray(budgets), 100 * np.asarray(rates), lw=2, drawstyle=steps)
    ax.set_xlabel(f"L0 budget ({unit} changed, at most)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 101)
    ax.set_xlim(0, scale * float(np.max(budgets)))
    ax.grid(alpha=0.3)
    ax.set_title("Success within an L0 budget (correctly classified rows)", fontsize=10)
    return _save(fig, stem)


def image_shape(sample_shape: Sequence[int]) -> Optional[Tuple[int, int]]:
    """(H, W) when the samples are greyscale images ((H, W) or (1, H, W)), else None."""
    shape = tuple(int(s) for s in sample_shape)
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 2 and min(shape) >= 4:
        return shape  # type: ignore[return-value]
    return None


def example_grid(
    ex: Images, shape: Tuple[int, int], name: Callable[[int], str], stem: Path, limit: int = 10
) -> Path:
    """Originals (top), adversarial examples (middle) and their difference (bottom) of the
    first ``limit`` example rows (``x``, ``x_adv`` and the result columns of each); a failed
    attack's column is framed in red."""
    plt = _pyplot()
    k = min(limit, len(ex["success"]))
    fig, axes = plt.subplots(3, k, figsize=(1.3 * k + 0.9, 4.6), squeeze=False)
    for i in range(k):
        orig = ex["x"][i].reshape(shape)
        adv = ex["x_adv"][i].reshape(shape)
        target = int(ex["target"][i])
        wanted = "any" if target < 0 else name(target)
        titles = (
            f"{name(int(ex['true_class'][i]))}\n\u2192 {wanted}",
            f"pred {name(int(ex['predicted'][i]))}\n{int(ex['l0'][i])} changed",
            "",
        )
        panels = ((orig, "gray_r", 0, 1), (adv, "gray_r", 0, 1), (adv - orig, "bwr", -1, 1))
        for row, (img, cmap, lo, hi) in enumerate(panels):
            ax = axes[row][i]
            ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(titles[row], fontsize=7)
            if not ex["success"][i]:
                for side in ax.spines.values():
                    side.set_edgecolor("red")
                    side.set_linewidth(1.5)
    for row, label in enumerate(("original", "adversarial", "difference")):
        axes[row][0].set_ylabel(label, fontsize=9)
    fig.suptitle(
        "Adversarial examples: the first row of each class (red frame: attack failed; "
        "difference: red = increased, blue = decreased)",
        fontsize=9,
    )
    fig.tight_layout()
    return _save(fig, stem)


def class_grid(ex: Images, shape: Tuple[int, int], classes: int, stem: Path) -> Path:
    """For targets ``"all"``: the first example row of each class (diagonal) and its
    adversarial example towards every other class."""
    originals: List[Optional[np.ndarray]] = [None] * classes
    grid: List[List[Optional[np.ndarray]]] = [[None] * classes for _ in range(classes)]
    success = np.zeros((classes, classes), bool)
    for s in range(classes):
        rows = np.nonzero(ex["true_class"] == s)[0]
        if not rows.size:
            continue
        source = int(ex["source_index"][rows[0]])
        originals[s] = ex["x"][rows[0]].reshape(shape)
        for r in np.nonzero(ex["source_index"] == source)[0]:
            t = int(ex["target"][r])
            grid[s][t] = ex["x_adv"][r].reshape(shape)
            success[s, t] = bool(ex["success"][r])
    return plot_class_grid(
        originals,
        grid,
        "Adversarial examples: row = source class (its first correctly classified row), column = "
        "target;\nred frame: attack failed; blank row: no row of the class in the first batch",
        stem,
        success,
    )
