"""Adversarial distance A(x, t) and robustness R(F) (the paper, section 5).

A(x, t) = 1 - (1/M) * #{i : S(x, t)[i] > 0}, with S the single-feature saliency map computed
by the native kernel (:func:`jsma_fast.saliency_map`) from the forward derivatives of every
target. R(F) = min over (x, t) of A(x, t), over targets t different from the source class.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import torch

from .._checks import check_int, check_mode, describe
from ..derivatives import Recipe, derivatives_of
from ..ops import saliency_map


def _check_tensor(x: Any, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {describe(x)}")


def saliency_maps(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    targets: torch.Tensor,
    mode: str = "increase",
    jacobian: str = "logits",
) -> torch.Tensor:
    """S(x_k, targets_k) for each row.

    Args:
        model: classifier (eval mode) mapping (n, ...) to (n, C) logits.
        x: (n, ...) inputs.
        targets: (n,) int64 target classes.
        mode: ``"increase"`` or ``"decrease"``.
        jacobian: ``"logits"`` or ``"probs"``.

    Returns:
        (n, M) float32 map, 0 where a feature does not qualify.
    """
    _check_tensor(x, "x")
    _check_tensor(targets, "targets")
    check_mode(mode)  # before the derivatives are computed
    if tuple(targets.shape) != (x.shape[0],):
        raise ValueError(f"targets must have shape ({x.shape[0]},), got {tuple(targets.shape)}")
    flat = x.detach().reshape(x.shape[0], -1)
    # The paper's map: for probabilities, beta is exactly -alpha (they sum to 1).
    recipe = Recipe(jacobian, "negated" if jacobian == "probs" else "others")
    d = derivatives_of(model, flat, tuple(x.shape[1:]), targets.to(torch.int64), recipe)
    return saliency_map(d.alpha.cpu().contiguous(), d.beta.cpu().contiguous(), mode=mode)


def adversarial_distance(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: Optional[torch.Tensor] = None,
    num_classes: Optional[int] = None,
    mode: str = "increase",
    batch_size: int = 256,
    jacobian: str = "logits",
) -> np.ndarray:
    """A(x, t) for every sample and every class.

    Args:
        model: classifier in eval mode.
        x: (N, ...) inputs.
        y: (N,) source classes; A is NaN at t == y[n] (not a target). None: no masking.
        num_classes: C; default from the model's output.
        mode: saliency map, ``"increase"`` or ``"decrease"``.
        batch_size: samples per forward pass (each pass computes C maps per sample).
        jacobian: ``"logits"`` or ``"probs"``.

    Returns:
        (N, C) float64 in [0, 1]; close to 1 means few features help reach t (hard).
    """
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    _check_tensor(x, "x")
    check_mode(mode)
    if num_classes is not None:
        num_classes = check_int(num_classes, "num_classes", minimum=1)
    n = x.shape[0]
    if num_classes is None:
        with torch.no_grad():
            num_classes = int(model(x[:1]).shape[1])
    out = np.empty((n, num_classes), dtype=np.float64)
    for start in range(0, n, batch_size):
        xb = x[start : start + batch_size]
        k = xb.shape[0]
        rep = xb.repeat_interleave(num_classes, dim=0)
        targets = torch.arange(num_classes, device=x.device).repeat(k)
        s = saliency_maps(model, rep, targets, mode=mode, jacobian=jacobian)
        s = s.numpy() if isinstance(s, torch.Tensor) else np.asarray(s)
        m = s.shape[-1]
        out[start : start + k] = 1.0 - (s > 0).sum(axis=1).reshape(k, num_classes) / m
    if y is not None:
        yy = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y, dtype=np.int64)
        if yy.shape != (n,):
            raise ValueError(f"y must have shape ({n},), got {yy.shape}")
        out[np.arange(n), yy] = np.nan
    return out


def robustness(distances: np.ndarray) -> float:
    """R(F) = min over (x, t) of A(x, t), ignoring NaN (the source classes).

    Args:
        distances: (N, C) from :func:`adversarial_distance`.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.size == 0 or np.isnan(d).all():
        raise ValueError(
            f"distances must hold at least one value that is not NaN, got an array "
            f"of shape {d.shape} without one"
        )
    return float(np.nanmin(d))
