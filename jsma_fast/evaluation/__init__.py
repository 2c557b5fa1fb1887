"""The paper's evaluation (its sections 5-7): class-pair study, hardness, adversarial
distance and robustness, the adjacent-pixel detector with its ROC, adversarial training, and
the figures and report of ``jsma-fast reproduce``. Its attacks run through the data-set runner
(:mod:`jsma_fast.runner`).

Matplotlib is only needed by :mod:`jsma_fast.evaluation.figures`.
"""

from .adversarial_training import (
    AdversarialTrainingReport,
    compare_attack,
    fine_tune_on_adversarial,
)
from .detector import adjacent_msd
from .distance import adversarial_distance, robustness, saliency_maps
from .hardness import hardness, success_curve, trapezoid_hardness
from .pairs import PairTable, class_pairs, success_at_gamma
from .roc import auc, roc_auc, roc_curve
from .toy import surface_and_derivative, train_and_mlp

__all__ = [
    "AdversarialTrainingReport",
    "PairTable",
    "adjacent_msd",
    "adversarial_distance",
    "auc",
    "class_pairs",
    "compare_attack",
    "fine_tune_on_adversarial",
    "hardness",
    "robustness",
    "roc_auc",
    "roc_curve",
    "saliency_maps",
    "success_at_gamma",
    "success_curve",
    "surface_and_derivative",
    "train_and_mlp",
    "trapezoid_hardness",
]
