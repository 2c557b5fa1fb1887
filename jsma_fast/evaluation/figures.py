"""Figures of the evaluation (matplotlib, Agg). Every function writes ``<stem>.png`` and
``<stem>.pdf`` and returns the PNG path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..mnist.plots import _pyplot

PathLike = Union[str, Path]


def _save(fig: Any, stem: PathLike) -> Path:
    plt = _pyplot()
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".png"), dpi=150, bbox_inches="tight")
    fig.savefig(stem.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)
    return stem.with_suffix(".png")


def plot_pair_heatmap(
    matrix: np.ndarray,
    title: str,
    colorbar_label: str,
    stem: PathLike,
    fmt: str = "{:.0%}",
    cmap: str = "viridis",
) -> Path:
    """Heatmap of a (C, C) per-(source, target) statistic; NaN cells (diagonal) are grey."""
    plt = _pyplot()
    m = np.asarray(matrix, dtype=np.float64)
    c = m.shape[0]
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    cm = plt.get_cmap(cmap).with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(m), cmap=cm)
    finite = m[np.isfinite(m)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    for s in range(c):
        for t in range(c):
            if np.isfinite(m[s, t]):
                light = (m[s, t] - lo) / (hi - lo + 1e-12) < 0.55
                ax.text(
                    t,
                    s,
                    fmt.format(m[s, t]),
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if light else "black",
                )
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xlabel("target class t (grey: no samples)")
    ax.set_ylabel("source class s")
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label(colorbar_label)
    return _save(fig, stem)


def plot_class_grid(
    originals: Sequence[Optional[np.ndarray]],
    adversarial: Sequence[Sequence[Optional[np.ndarray]]],
    title: str,
    stem: PathLike,
    success: Optional[np.ndarray] = None,
) -> Path:
    """C x C grid (paper's Figure 1): row s = a digit of class s, column t = its adversarial
    sample for target t; the diagonal shows the original. ``None`` cells stay blank.

    Args:
        originals: C images (H, W) or None.
        adversarial: C x C images or None; [s][t]; reshaped to the originals' (H, W) (kept
            as they are when every original is None).
        success: optional (C, C) bool; failed attacks get a red frame.
    """
    plt = _pyplot()
    c = len(originals)
    shape = originals_shape(originals)
    fig, axes = plt.subplots(c, c, figsize=(0.75 * c + 0.8, 0.75 * c + 0.9), squeeze=False)
    for s in range(c):
        for t in range(c):
            ax = axes[s][t]
            img = originals[s] if s == t else adversarial[s][t]
            if img is not None:
                img = np.asarray(img)
                ax.imshow(
                    img if shape is None else img.reshape(shape), cmap="gray_r", vmin=0, vmax=1
                )
            ax.set_xticks([])
            ax.set_yticks([])
            failed = success is not None and s != t and img is not None and not success[s][t]
            for side in ax.spines.values():
                side.set_edgecolor("tab:blue" if s == t else ("red" if failed else "#bbbbbb"))
                side.set_linewidth(1.5 if failed else 0.8)
            if s == 0:
                ax.set_title(str(t), fontsize=9)
            if t == 0:
                ax.set_ylabel(str(s), fontsize=9, rotation=0, labelpad=8, va="center")
    fig.supxlabel("target class (diagonal: original)", fontsize=9)
    fig.supylabel("source class", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, stem)


def originals_shape(originals: Sequence[Optional[np.ndarray]]) -> Optional[tuple]:
    """(H, W) of the first image that is not None, or None when every one is."""
    for img in originals:
        if img is not None:
            return np.asarray(img).shape[-2:]
    return None


def plot_saliency_maps(
    image: np.ndarray, maps: np.ndarray, source: int, stem: PathLike, mode: str = "increase"
) -> Path:
    """The input and its single-feature saliency map S(x, t) for each target t.

    Args:
        image: (H, W) input.
        maps: (C, H * W) or (C, H, W) maps.
    """
    plt = _pyplot()
    img = np.asarray(image)
    h, w = img.shape[-2:]
    maps = np.asarray(maps).reshape(-1, h, w)
    c = maps.shape[0]
    cols = (c + 2) // 2
    fig, axes = plt.subplots(2, cols, figsize=(1.9 * cols + 1.0, 4.4), squeeze=False)
    axes[0][0].imshow(img.reshape(h, w), cmap="gray_r", vmin=0, vmax=1)
    axes[0][0].set_title(f"input (class {source})", fontsize=9)
    vmax = float(maps.max()) if maps.size and maps.max() > 0 else 1.0
    im = None
    cells = [ax for row in axes for ax in row][1:]
    for t, ax in enumerate(cells):
        if t < c:
            im = ax.imshow(maps[t], cmap="magma", vmin=0, vmax=vmax)
            count = int((maps[t] > 0).sum())
            ax.set_title(
                f"t={t}" + (" (source)" if t == source else "") + f"\n{count} px > 0", fontsize=8
            )
        else:
            ax.axis("off")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if im is not None:
        bar = fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.025, pad=0.02)
        bar.set_label("S(x, t) = alpha * |beta| (0: not salient)")
    fig.suptitle(f"Single-feature saliency maps, {mode} mode", fontsize=10)
    return _save(fig, stem)


def plot_success_vs_gamma(
    gammas: Sequence[float], curves: dict, stem: PathLike, reference: Optional[dict] = None
) -> Path:
    """Success rate against the budget Upsilon; ``curves`` maps a label to (G,) rates;
    ``reference`` maps a label to (gamma, rate) points (e.g. the paper's)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    g = 100 * np.asarray(gammas)
    for label, rates in curves.items():
        ax.plot(g, 100 * np.asarray(rates), marker="", lw=2, label=label)
    for label, (rg, rr) in (reference or {}).items():
        ax.scatter([100 * rg], [100 * rr], marker="*", s=120, zorder=3, label=label)
    ax.set_xlabel("maximum distortion Upsilon (% of pixels)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 101)
    ref_g = [100 * rg for rg, _ in (reference or {}).values()]
    ax.set_xlim(0, max([g.max()] + ref_g) * 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title("JSMA success rate vs budget", fontsize=10)
    return _save(fig, stem)


def plot_detector(
    clean_scores: np.ndarray,
    adv_scores: np.ndarray,
    fpr: np.ndarray,
    tpr: np.ndarray,
    auc_value: float,
    stem: PathLike,
) -> Path:
    """Score histograms (clean vs adversarial) beside the ROC curve."""
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.5, 3.8))
    both = np.r_[clean_scores, adv_scores]
    bins = np.linspace(both.min(), both.max(), 40)
    a1.hist(
        clean_scores, bins=bins, alpha=0.6, density=True, label=f"clean (n={len(clean_scores)})"
    )
    a1.hist(
        adv_scores, bins=bins, alpha=0.6, density=True, label=f"adversarial (n={len(adv_scores)})"
    )
    a1.set_xlabel("mean squared difference of adjacent pixels")
    a1.set_ylabel("density")
    a1.legend(fontsize=8)
    a1.set_title("detector score", fontsize=10)
    a2.plot(fpr, tpr, lw=2, label=f"AUC = {auc_value:.3f}")
    a2.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    a2.set_xlabel("false positive rate (clean flagged)")
    a2.set_ylabel("true positive rate (adversarial flagged)")
    a2.set_xlim(0, 1)
    a2.set_ylim(0, 1.01)
    a2.grid(alpha=0.3)
    a2.legend(fontsize=8, loc="lower right")
    a2.set_title("ROC of the detector", fontsize=10)
    fig.tight_layout()
    return _save(fig, stem)


def plot_toy(
    grid: np.ndarray, output: np.ndarray, d1: np.ndarray, d2: np.ndarray, stem: PathLike
) -> Path:
    """The AND toy: output F(x) and forward derivatives dF/dx1, dF/dx2 over [0, 1]^2."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.7))
    panels = (
        (output, "output F(x1, x2)", "viridis", (0, 1)),
        (d1, "forward derivative dF/dx1", "magma", None),
        (d2, "forward derivative dF/dx2", "magma", None),
    )
    for ax, (z, title, cmap, lim) in zip(axes, panels):
        kw = {"vmin": lim[0], "vmax": lim[1]} if lim else {}
        im = ax.imshow(z, origin="lower", extent=(0, 1, 0, 1), cmap=cmap, aspect="equal", **kw)
        ax.contour(grid, grid, output, levels=[0.5], colors="white", linewidths=1, linestyles="--")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle("Toy MLP learning AND; dashed: decision boundary F = 0.5", fontsize=10)
    fig.tight_layout()
    return _save(fig, stem)
