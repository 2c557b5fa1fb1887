"""The result of a JSMA run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import torch

# Why a sample stopped; stored as int8 codes in AttackResult.stop_code.
STOP_REASONS = ("success", "budget", "empty_domain", "no_valid_pair")
SUCCESS, BUDGET, EMPTY_DOMAIN, NO_VALID_PAIR = range(4)


@dataclass
class AttackResult:
    """Per attacked row (R rows: one per sample, or C - 1 per sample with ``"all"``).

    Attributes:
        x_adv: (R, ...) adversarial inputs, same dtype, device and sample shape as ``x``.
        success: (R,) bool, the model classifies ``x_adv`` as the target.
        iterations: (R,) int64, crafting iterations spent.
        l0: (R,) int64, number of features that differ from the original.
        l0_fraction: (R,) float64, ``l0 / M``: the paper's distortion.
        predicted: (R,) int64, the model's class for ``x_adv``.
        target: (R,) int64, the target class.
        true_class: (R,) int64, the label given (or the clean prediction).
        source_index: (R,) int64, which row of ``x`` each row attacks.
        stop_code: (R,) int8, index into :data:`STOP_REASONS`.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    iterations: torch.Tensor
    l0: torch.Tensor
    l0_fraction: torch.Tensor
    predicted: torch.Tensor
    target: torch.Tensor
    true_class: torch.Tensor
    source_index: torch.Tensor
    stop_code: torch.Tensor

    @property
    def stop_reason(self) -> List[str]:
        """Why each row stopped: ``"success"``, ``"budget"`` (max_iters reached),
        ``"empty_domain"`` (too few features left to change) or ``"no_valid_pair"`` (no
        feature or pair satisfies the saliency conditions)."""
        return [STOP_REASONS[c] for c in self.stop_code.tolist()]

    def __len__(self) -> int:
        return int(self.success.shape[0])

    def summary(self) -> Dict[str, float]:
        """Success rate, mean distortion (over successful rows, as the paper reports it, and
        over all rows), mean iterations, and the count of each stop reason."""
        n = len(self)
        ok = self.success
        out: Dict[str, float] = {
            "rows": float(n),
            "success_rate": ok.float().mean().item() if n else float("nan"),
            "mean_l0_fraction_success": (
                self.l0_fraction[ok].mean().item() if ok.any() else float("nan")
            ),
            "mean_l0_fraction_all": self.l0_fraction.mean().item() if n else float("nan"),
            "mean_iterations": self.iterations.double().mean().item() if n else float("nan"),
        }
        for code, name in enumerate(STOP_REASONS):
            out[f"stopped_{name}"] = float((self.stop_code == code).sum().item())
        return out

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"AttackResult(rows={len(self)}, success_rate={s['success_rate']:.4f}, "
            f"mean_l0_fraction_success={s['mean_l0_fraction_success']:.4f})"
        )
