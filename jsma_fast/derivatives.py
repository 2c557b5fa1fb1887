"""Forward derivatives for JSMA in two vector-Jacobian products per step.

The attack needs, per sample with target t, only two combinations of the Jacobian rows:
``alpha = dF_t/dx`` and ``beta = sum_{j != t} dF_j/dx``. Both come from one forward pass and
two backward passes for the whole batch (the per-sample target goes into the cotangent),
instead of the N backward passes of a full Jacobian. ``beta`` is formed as the gradient of
the sum of all outputs minus ``alpha``, as the reference implementations do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

import torch

JACOBIANS = ("logits", "probs")


@dataclass
class ForwardDerivatives:
    """One step's model outputs and derivatives for a batch of n samples with M features."""

    logits: torch.Tensor  #: (n, C) the model's raw outputs
    alpha: torch.Tensor  #: (k, M) float32, derivative of F_t, for the k rows asked for
    beta: torch.Tensor  #: (k, M) float32, summed derivative of the other outputs


def model_outputs(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, sample_shape: Tuple[int, ...]
) -> torch.Tensor:
    """Runs the model on flat inputs ``x`` (n, M) reshaped to (n, *sample_shape); checks that
    it returns (n, C) class scores."""
    logits = model(x.view((x.shape[0],) + sample_shape))
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != x.shape[0]:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"model must return class scores of shape (batch, num_classes) = ({x.shape[0]}, C), "
            f"got {got}"
        )
    return logits


def forward_and_derivatives(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sample_shape: Tuple[int, ...],
    target: torch.Tensor,
    rows: Callable[[torch.Tensor], torch.Tensor],
    jacobian: str = "logits",
) -> ForwardDerivatives:
    """One forward pass on ``x`` (n, M), then alpha and beta for the rows ``rows(logits)``.

    Args:
        model: classifier returning logits (n, C); must treat samples independently.
        x: (n, M) flat inputs in the model's dtype.
        sample_shape: shape of one sample as the model takes it.
        target: (n,) int64 target class per sample.
        rows: given the logits (n, C), returns a (n,) bool mask of the rows that need
            derivatives (the others, e.g. finished samples, get none).
        jacobian: ``"logits"`` (the paper's choice) or ``"probs"`` (softmax outputs).
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model_outputs(model, x, sample_shape)
        outputs = logits if jacobian == "logits" else torch.softmax(logits, dim=1)
    need = rows(logits.detach())
    index = need.nonzero().squeeze(1)
    if index.numel() == 0:
        empty = x.new_zeros((0, x.shape[1]), dtype=torch.float32)
        return ForwardDerivatives(logits.detach(), empty, empty)

    weight = need.to(outputs.dtype)
    target_cotangent = torch.zeros_like(outputs)
    target_cotangent[index, target[index]] = 1.0
    (grad_target,) = torch.autograd.grad(outputs, x, target_cotangent, retain_graph=True)
    (grad_all,) = torch.autograd.grad(outputs, x, weight[:, None].expand_as(outputs).contiguous())
    alpha = grad_target[index]
    beta = grad_all[index] - alpha
    return ForwardDerivatives(
        logits.detach(),
        alpha.to(torch.float32).contiguous(),
        beta.to(torch.float32).contiguous(),
    )
