"""The paper's detector (the paper, section 7): mean squared difference between adjacent pixels.

score(x) = (sum of (x[h, w+1] - x[h, w])^2 + sum of (x[h+1, w] - x[h, w])^2) / (number of
horizontal + vertical neighbour pairs), averaged over channels. Adversarial MNIST digits
(isolated saturated pixels) score higher than clean ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def adjacent_msd(images: Any) -> np.ndarray:
    """Detector score of each image.

    Args:
        images: (N, H, W) or (N, C, H, W) array or tensor, H, W >= 1 with H * W >= 2.

    Returns:
        (N,) float64 mean squared difference over all horizontally and vertically adjacent
        pixel pairs.
    """
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    a = np.asarray(images, dtype=np.float64)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W) or (N, C, H, W), got {a.shape}")
    n, c, h, w = a.shape
    pairs = c * (h * (w - 1) + (h - 1) * w)
    if pairs == 0:
        raise ValueError(f"images must have at least two adjacent pixels, got H={h}, W={w}")
    dh = np.diff(a, axis=3) ** 2
    dv = np.diff(a, axis=2) ** 2
    return (dh.reshape(n, -1).sum(1) + dv.reshape(n, -1).sum(1)) / pairs
