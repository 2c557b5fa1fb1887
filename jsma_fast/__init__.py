"""jsma-fast: the Jacobian-based Saliency Map Attack (Papernot et al., 2016) with native
CPU and CUDA kernels for its pairwise saliency search.

Layers, each calling only those below it: ``cli -> evaluation -> runner -> attack -> ops ->
_C``. ``cli`` (the command line) is the only one that knows option names and exit statuses;
``evaluation`` (the paper's study) runs its attacks through ``runner`` (the resumable,
distributed data-set runner, :func:`jsma_fast.runner.attack_dataset`), which calls any attack
and knows of it only the :class:`AttackResult` it returns; ``ops`` (the searches) calls the
native kernels ``_C``, directly on CPU arrays and through ``_cuda`` on CUDA arrays.

The searches (``select_pairs`` and the others) need only NumPy: ``import jsma_fast`` does not
import torch. The attack (``JSMA``, ``AttackResult``, ``STOP_REASONS``, and from its input
space ``StepWarning``, ``FeatureArray`` and ``Normalized``), the refinement (``refine``,
``refine_result``), the swap search (``swap_search``) and the minimum-L0 mode (``sparsest``;
``Sparsest``, the same as a configured attack) are imported, with torch, the first time they
are used.
"""

from importlib import import_module
from typing import Any

# First: the command line's OpenMP wait policy must be in the environment before _C (below)
# loads the OpenMP runtime, which reads it once (see _openmp; a library import changes nothing).
from . import _openmp

_openmp.apply()

from ._build import build_info, cuda_available  # noqa: E402
from .ops import (  # noqa: E402
    FeatureSelection,
    PairSelection,
    saliency_map,
    select_features,
    select_pairs,
    select_top2,
)

__version__ = build_info()["version"]

#: Names whose modules need torch, imported on first access.
_LAZY = {
    "JSMA": ".attack",
    "AttackResult": ".result",
    "STOP_REASONS": ".result",
    "refine": ".refinement",
    "refine_result": ".refinement",
    "swap_search": ".local_search",
    "sparsest": ".minimum_l0",
    "Sparsest": ".minimum_l0",
    "StepWarning": ".space",
    "FeatureArray": ".space",
    "Normalized": ".space",
}

__all__ = [
    "JSMA",
    "AttackResult",
    "STOP_REASONS",
    "refine",
    "refine_result",
    "swap_search",
    "sparsest",
    "Sparsest",
    "StepWarning",
    "FeatureArray",
    "Normalized",
    "FeatureSelection",
    "PairSelection",
    "build_info",
    "cuda_available",
    "saliency_map",
    "select_features",
    "select_pairs",
    "select_top2",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later accesses skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))
