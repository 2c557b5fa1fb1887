"""The saliency searches as PyTorch operators: ``torch.ops.jsma_fast.*``.

Importing this module registers, with :mod:`torch.library` (``torch.library.custom_op``,
PyTorch >= 2.4):

* ``jsma_fast::select_pairs(Tensor alpha, Tensor beta, Tensor? domain, bool increase,
  str method="auto") -> (Tensor, Tensor, Tensor, Tensor)``: ``(p, q, score, valid)``;
* ``jsma_fast::select_features(Tensor alpha, Tensor beta, Tensor? domain, bool increase)
  -> (Tensor, Tensor, Tensor)``: ``(index, score, valid)``;
* ``jsma_fast::saliency_map(Tensor alpha, Tensor beta, Tensor? domain, bool increase)
  -> Tensor``: the map.

Inputs are ``(..., M)``: ``alpha`` and ``beta`` float32, ``domain`` bool or uint8 (or None
for every feature). Outputs have the batch shape ``(...)``: ``p``, ``q``, ``index`` int64,
``score`` float32, ``valid`` bool (``saliency_map`` returns ``(..., M)`` float32). The
semantics, ties and "no qualifying pair" answers are those of :func:`jsma_fast.select_pairs`
and :func:`jsma_fast.select_features` (the kernel contract); ``increase=True`` is
``mode="increase"``.

One implementation serves every device: it calls :mod:`jsma_fast.ops`, which runs the native
CPU kernels for CPU tensors and the CUDA kernels (``jsma_fast._cuda``) for CUDA tensors, on
the current stream. Non-contiguous inputs are made contiguous first (the operators, unlike
:mod:`jsma_fast.ops`, accept any strides). A fake (meta) implementation gives the output
shapes, so the operators trace under ``torch.compile`` (``fullgraph=True``) and
``torch.export`` without graph breaks, and pass :func:`torch.library.opcheck`.

The outputs are not differentiable (indices, masks and an arg-max score): no autograd formula
is registered; call the operators on detached derivatives, as the attack does.

Registration happens once, on the first ``import jsma_fast.torch_ops``.

Example:
    >>> import torch, jsma_fast.torch_ops  # registers torch.ops.jsma_fast.*
    >>> a = torch.tensor([[0.5, -0.1, 0.3]])
    >>> b = torch.tensor([[-0.2, 0.4, -0.6]])
    >>> p, q, score, valid = torch.ops.jsma_fast.select_pairs(a, b, None, True)
    >>> p.tolist(), q.tolist(), valid.tolist()
    ([0], [2], [True])
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from . import _checks, ops

__all__ = ["select_pairs", "select_features", "saliency_map", "MIN_TORCH"]

#: Oldest PyTorch whose ``torch.library.custom_op`` and ``register_fake`` these operators use.
MIN_TORCH = (2, 4)


def _torch_version() -> Tuple[int, int]:
    parts = torch.__version__.split("+")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):  # unusual version strings: trust the feature check below
        return MIN_TORCH


if _torch_version() < MIN_TORCH or not hasattr(torch.library, "custom_op"):
    raise ImportError(
        "jsma_fast.torch_ops needs torch>=2.4 (torch.library.custom_op and register_fake), got "
        f"torch {torch.__version__}; upgrade torch, or call jsma_fast.select_pairs / "
        "select_features directly (they work with torch>=2.1)"
    )


def _check_inputs(alpha: Tensor, beta: Tensor, domain: Optional[Tensor]) -> None:
    """The searches' rules (``jsma_fast._checks``), shared by the real and the fake
    implementations so that errors surface at trace time too."""
    _checks.check_tensors(alpha, beta, domain)


def _check_method(method: str) -> None:
    _checks.check_choice(method, "method", ops.PAIR_METHODS)


def _contiguous(
    alpha: Tensor, beta: Tensor, domain: Optional[Tensor]
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    return (
        alpha.contiguous(),
        beta.contiguous(),
        None if domain is None else domain.contiguous(),
    )


def _per_sample(alpha: Tensor, *dtypes: torch.dtype) -> Tuple[Tensor, ...]:
    """Empty outputs with ``alpha``'s batch shape ``(...)``, one per dtype (the fake kernels)."""
    return tuple(alpha.new_empty(alpha.shape[:-1], dtype=dtype) for dtype in dtypes)


def _mode(increase: bool) -> str:
    return "increase" if increase else "decrease"


# ---------------------------------------------------------------------------- select_pairs


@torch.library.custom_op("jsma_fast::select_pairs", mutates_args=())
def select_pairs(
    alpha: Tensor, beta: Tensor, domain: Optional[Tensor], increase: bool, method: str = "auto"
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The pair of features with the largest pairwise saliency, per sample.

    Args:
        alpha: ``(..., M)`` float32, derivative of the target-class output.
        beta: ``(..., M)`` float32, summed derivative of the other classes' outputs.
        domain: ``(..., M)`` bool or uint8 search domain, or None for all features.
        increase: True for the increase map (A > 0, B < 0), False for decrease.
        method: ``"exact"``, ``"pruned"`` or ``"auto"``, as in :func:`jsma_fast.select_pairs`.

    Returns:
        ``(p, q, score, valid)`` of shape ``(...)``: int64, int64, float32, bool.
    """
    _check_inputs(alpha, beta, domain)
    _check_method(method)
    alpha, beta, domain = _contiguous(alpha, beta, domain)
    sel = ops.select_pairs(alpha, beta, domain, mode=_mode(increase), method=method)
    return sel.p, sel.q, sel.score, sel.valid


@select_pairs.register_fake
def _select_pairs_fake(
    alpha: Tensor, beta: Tensor, domain: Optional[Tensor], increase: bool, method: str = "auto"
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    _check_inputs(alpha, beta, domain)
    _check_method(method)
    return _per_sample(alpha, torch.int64, torch.int64, torch.float32, torch.bool)


# ---------------------------------------------------------------------------- select_features


@torch.library.custom_op("jsma_fast::select_features", mutates_args=())
def select_features(
    alpha: Tensor, beta: Tensor, domain: Optional[Tensor], increase: bool
) -> Tuple[Tensor, Tensor, Tensor]:
    """The feature with the largest single-feature saliency S(x, t)[i], per sample.

    Args: as :func:`select_pairs` (no ``method``).

    Returns:
        ``(index, score, valid)`` of shape ``(...)``: int64, float32, bool.
    """
    _check_inputs(alpha, beta, domain)
    alpha, beta, domain = _contiguous(alpha, beta, domain)
    sel = ops.select_features(alpha, beta, domain, mode=_mode(increase))
    return sel.index, sel.score, sel.valid


@select_features.register_fake
def _select_features_fake(
    alpha: Tensor, beta: Tensor, domain: Optional[Tensor], increase: bool
) -> Tuple[Tensor, Tensor, Tensor]:
    _check_inputs(alpha, beta, domain)
    return _per_sample(alpha, torch.int64, torch.float32, torch.bool)


# ---------------------------------------------------------------------------- saliency_map


@torch.library.custom_op("jsma_fast::saliency_map", mutates_args=())
def saliency_map(alpha: Tensor, beta: Tensor, domain: Optional[Tensor], increase: bool) -> Tensor:
    """The paper's single-feature saliency map: ``(..., M)`` float32, ``-(alpha * beta)`` for
    qualifying features in the domain and 0 elsewhere. Args as :func:`select_features`."""
    _check_inputs(alpha, beta, domain)
    alpha, beta, domain = _contiguous(alpha, beta, domain)
    return ops.saliency_map(alpha, beta, domain, mode=_mode(increase))


@saliency_map.register_fake
def _saliency_map_fake(
    alpha: Tensor, beta: Tensor, domain: Optional[Tensor], increase: bool
) -> Tensor:
    _check_inputs(alpha, beta, domain)
    return torch.empty_like(alpha, memory_format=torch.contiguous_format)
