"""Adversarial training (the paper, section 7): fine-tune a copy of the model on clean plus JSMA
samples labelled with their source class, then compare the attack before and after."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
from torch import nn

from ..mnist.training import accuracy, train_classifier
from ..runner.columns import success_and_distortion


@dataclass(frozen=True)
class AdversarialTrainingReport:
    """Before / after numbers; success and distortion are the attack's (distortion: mean
    ``l0_fraction`` of successful rows), on the same inputs before and after.

    Attributes:
        adversarial_samples: successful adversarial samples the model was fine-tuned on.
        crafted: inputs attacked to craft them (None: not recorded).
        compared_digits: inputs both models were attacked on (None: not recorded).
    """

    clean_accuracy_before: float
    clean_accuracy_after: float
    success_before: float
    success_after: float
    distortion_before: float
    distortion_after: float
    adversarial_samples: int
    crafted: Optional[int] = None
    compared_digits: Optional[int] = None

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)

    @property
    def distortion_change(self) -> float:
        """Relative change of the distortion, e.g. +0.375 for the paper's +37.5%."""
        return self.distortion_after / self.distortion_before - 1.0

    @property
    def success_change(self) -> float:
        """Absolute change of the success rate (after - before)."""
        return self.success_after - self.success_before


def fine_tune_on_adversarial(  # noqa: PLR0913 (public, keyword options)
    model: nn.Module,
    clean_x: torch.Tensor,
    clean_y: torch.Tensor,
    adv_x: torch.Tensor,
    adv_y: torch.Tensor,
    *,
    epochs: int = 2,
    batch_size: int = 64,
    lr: float = 5e-4,
    seed: int = 0,
    progress: bool = False,
) -> nn.Module:
    """A fine-tuned deep copy of ``model`` (the original is untouched).

    Args:
        clean_x: (N, ...) clean training inputs; clean_y: (N,) labels.
        adv_x: (K, ...) adversarial inputs; adv_y: (K,) their source (true) classes.

    Returns:
        the copy, trained on the union and in eval mode.
    """
    if adv_x.shape[1:] != clean_x.shape[1:]:
        raise ValueError(
            f"adv_x must have samples of shape {tuple(clean_x.shape[1:])}, "
            f"got {tuple(adv_x.shape[1:])}"
        )
    tuned = copy.deepcopy(model)
    x = torch.cat([clean_x, adv_x.to(clean_x.dtype)])
    y = torch.cat([clean_y, adv_y.to(clean_y.dtype)])
    return train_classifier(
        tuned, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress
    )


def compare_attack(
    before: Any,
    after: Any,
    clean_accuracy_before: float,
    clean_accuracy_after: float,
    adversarial_samples: int,
    *,
    crafted: Optional[int] = None,
    compared_digits: Optional[int] = None,
) -> AdversarialTrainingReport:
    """Builds the report from the attack on the same inputs before and after fine-tuning.

    Args:
        before, after: AttackResults, or their columns (see
            :func:`~jsma_fast.runner.result_columns`).
        clean_accuracy_before, clean_accuracy_after: the models' held-out accuracies.
        adversarial_samples, crafted, compared_digits: see :class:`AdversarialTrainingReport`.
    """
    success_before, distortion_before = success_and_distortion(before)
    success_after, distortion_after = success_and_distortion(after)
    return AdversarialTrainingReport(
        clean_accuracy_before=clean_accuracy_before,
        clean_accuracy_after=clean_accuracy_after,
        success_before=success_before,
        success_after=success_after,
        distortion_before=distortion_before,
        distortion_after=distortion_after,
        adversarial_samples=adversarial_samples,
        crafted=crafted,
        compared_digits=compared_digits,
    )


__all__ = ["AdversarialTrainingReport", "accuracy", "compare_attack", "fine_tune_on_adversarial"]
