"""jsma-fast: the Jacobian-based Saliency Map Attack (Papernot et al., 2016) with native
CPU and CUDA kernels for its pairwise saliency search.

Layers: ``cli -> attack / evaluation -> ops -> _C``.
"""

from ._build import build_info, cuda_available
from .attack import JSMA
from .result import STOP_REASONS, AttackResult
from .ops import (
    FeatureSelection,
    PairSelection,
    saliency_map,
    select_features,
    select_pairs,
)

__version__ = build_info()["version"]

__all__ = [
    "JSMA",
    "AttackResult",
    "STOP_REASONS",
    "FeatureSelection",
    "PairSelection",
    "build_info",
    "cuda_available",
    "saliency_map",
    "select_features",
    "select_pairs",
    "__version__",
]
