"""Figures of adversarial samples (matplotlib, imported lazily: an optional dependency)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import torch


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('figures need matplotlib: pip install "jsma-fast[demo]"') from exc
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_adversarial_examples(
    originals: torch.Tensor,
    adversarial: torch.Tensor,
    true_class: Sequence[int],
    target: Sequence[int],
    predicted: Sequence[int],
    path: Union[str, Path],
) -> Path:
    """Saves a figure like the paper's Figure 1: originals (top), adversarial samples (middle)
    and their difference (bottom, red = increased, blue = decreased).

    Args:
        originals: (K, 1, H, W) or (K, H, W) images in [0, 1].
        adversarial: same shape as ``originals``.
        true_class, target, predicted: (K,) classes shown in the titles.
        path: output file; the format follows the suffix (.png, .pdf).
    """
    plt = _pyplot()
    k = originals.shape[0]
    orig = originals.detach().cpu().reshape(k, *originals.shape[-2:])
    adv = adversarial.detach().cpu().reshape(k, *originals.shape[-2:])
    diff = adv - orig
    fig, axes = plt.subplots(3, k, figsize=(1.25 * k + 0.8, 4.4), squeeze=False)
    for row, (images, label, cmap, limits) in enumerate(
        (
            (orig, "original", "gray_r", (0, 1)),
            (adv, "adversarial", "gray_r", (0, 1)),
            (diff, "difference", "bwr", (-1, 1)),
        )
    ):
        for i in range(k):
            ax = axes[row][i]
            ax.imshow(images[i].numpy(), cmap=cmap, vmin=limits[0], vmax=limits[1])
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{int(true_class[i])}\u2192{int(target[i])}", fontsize=9)
            if row == 1:
                changed = int((diff[i] != 0).sum())
                ax.set_title(f"pred {int(predicted[i])}, {changed} px", fontsize=7)
        axes[row][0].set_ylabel(label, fontsize=9)
    fig.suptitle(
        "JSMA: source \u2192 target, adversarial prediction and pixels changed", fontsize=10
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
