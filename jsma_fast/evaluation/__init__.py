"""The paper's evaluation (PAPER.md sections 5-7): class-pair study, hardness, adversarial
distance and robustness, the adjacent-pixel detector with its ROC, adversarial training, and
the figures and report of ``jsma-fast reproduce``; and :func:`attack_dataset`, which attacks a
whole data set in checksummed, resumable chunks on one process or under ``torchrun``.

Matplotlib is only needed by :mod:`jsma_fast.evaluation.figures`.
"""

from .adversarial_training import (
    AdversarialTrainingReport,
    compare_attack,
    fine_tune_on_adversarial,
)
from .checkpoint import ChunkError, ChunkStore
from .columns import COLUMNS, concat_columns, result_columns
from .dataset import DatasetResults, attack_dataset, iter_attack_dataset
from .detector import adjacent_msd
from .distance import adversarial_distance, robustness, saliency_maps
from .distributed import RankFailed
from .hardness import hardness, success_curve, trapezoid_hardness
from .pairs import PairTable, class_pairs, success_at_gamma
from .roc import auc, roc_auc, roc_curve
from .toy import surface_and_derivative, train_and_mlp

__all__ = [
    "AdversarialTrainingReport",
    "COLUMNS",
    "ChunkError",
    "ChunkStore",
    "DatasetResults",
    "PairTable",
    "RankFailed",
    "adjacent_msd",
    "adversarial_distance",
    "attack_dataset",
    "auc",
    "class_pairs",
    "compare_attack",
    "concat_columns",
    "fine_tune_on_adversarial",
    "hardness",
    "iter_attack_dataset",
    "result_columns",
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
