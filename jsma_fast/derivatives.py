"""Forward derivatives for JSMA: one forward pass, then one or two vector-Jacobian products.

The attack needs, per sample and for one class c (the target, or the true class of a
non-targeted attack), two combinations of the Jacobian rows of the outputs F (logits Z or
probabilities p), never the whole Jacobian. A :class:`Recipe` says which:

========================  ============================  =========================================
``beta``                  beta                          VJPs (with alpha)
========================  ============================  =========================================
``"others"``              sum_{j != c} dF_j/dx          2: formed as d(sum_j F_j)/dx - alpha, as
                                                        the reference implementations do
``"weighted"``            sum_{j != c} p_j dF_j/dx      2: the cotangent holds p, detached
``"negated"``             -alpha, exactly               1: for F = p, sum_j p_j is the constant 1
``"none"``                not computed                  1: rules that read alpha only
========================  ============================  =========================================

With ``distance_weighted`` both are multiplied by the distance from each feature to the bound
it moves towards (TJSMA). The work is split in two phases, so that the loop can look at the
outputs before it pays for derivatives: :class:`ForwardPass` runs the model once and keeps the
graph; :meth:`ForwardPass.derivatives` takes the VJPs for the rows that go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch

JACOBIANS = ("logits", "probs")
BETA_FORMS = ("others", "weighted", "negated", "none")


@dataclass(frozen=True)
class Recipe:
    """What alpha and beta are, for a class c per row.

    Attributes:
        jacobian: ``"logits"`` (F = Z) or ``"probs"`` (F = softmax(Z)).
        beta: one of :data:`BETA_FORMS` (see the module docstring).
        distance_weighted: multiply alpha and beta by the distance to the bound each feature
            moves towards: ``clip_max - x`` when increased, ``x - clip_min`` when decreased.
    """

    jacobian: str = "logits"
    beta: str = "others"
    distance_weighted: bool = False

    @property
    def vjps(self) -> int:
        """Vector-Jacobian products per step."""
        return 2 if self.beta in ("others", "weighted") else 1


@dataclass
class Derivatives:
    """alpha and beta for k rows of M features, float32, C-contiguous."""

    alpha: torch.Tensor  #: (k, M)
    beta: Optional[torch.Tensor]  #: (k, M), None for ``beta="none"``


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


class ForwardPass:
    """One forward pass of ``model`` on flat inputs (n, M), with its graph kept for VJPs.

    Args:
        model: classifier returning logits (n, C); must treat samples independently.
        x: (n, M) flat inputs in the model's dtype.
        sample_shape: shape of one sample as the model takes it.
        jacobian: ``"logits"`` or ``"probs"``: the outputs that get differentiated.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        sample_shape: Tuple[int, ...],
        jacobian: str,
    ) -> None:
        self.x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            # The model gets a differentiable copy: one that changes its input in place
            # (e.g. x.sub_(mean)) neither fails nor touches the attack's state.
            logits = model_outputs(model, self.x.clone(), sample_shape)
            if not logits.requires_grad:
                raise ValueError(
                    "model output does not require grad: the model detaches its output, runs "
                    "under torch.no_grad(), or converts it outside torch; the attack needs "
                    "outputs differentiable with respect to the input"
                )
            self._outputs = logits if jacobian == "logits" else torch.softmax(logits, dim=1)
        self.logits = logits.detach()  #: (n, C)

    def _vjp(self, cotangent: torch.Tensor, retain: bool) -> torch.Tensor:
        (grad,) = torch.autograd.grad(self._outputs, self.x, cotangent, retain_graph=retain)
        return grad

    def _probabilities(self) -> torch.Tensor:
        return torch.softmax(self.logits.to(self._outputs.dtype), dim=1)

    def derivatives(
        self,
        index: torch.Tensor,
        classes: torch.Tensor,
        recipe: Recipe,
        distance: Optional[torch.Tensor] = None,
    ) -> Derivatives:
        """alpha and beta of class ``classes[i]`` for the rows ``index[i]``.

        Args:
            index: (k,) int64 rows of this pass that need derivatives.
            classes: (k,) int64 class of each of those rows.
            recipe: what alpha and beta are.
            distance: (k, M) distance of each feature of the rows ``index`` to the bound it
                moves towards, in the inputs' dtype; required when
                ``recipe.distance_weighted``.
        """
        outputs = self._outputs
        if index.numel() == 0:
            empty = self.x.new_zeros((0, self.x.shape[1]), dtype=torch.float32)
            return Derivatives(empty, None if recipe.beta == "none" else empty)
        one_hot = torch.zeros_like(outputs)
        one_hot[index, classes] = 1.0
        grad_class = self._vjp(one_hot, retain=recipe.vjps == 2)
        alpha = grad_class[index]
        beta: Optional[torch.Tensor] = None
        if recipe.beta == "others":
            rows = torch.zeros(outputs.shape[0], dtype=outputs.dtype, device=outputs.device)
            rows[index] = 1.0
            grad_all = self._vjp(rows[:, None].expand_as(outputs).contiguous(), retain=False)
            beta = grad_all[index] - alpha
        elif recipe.beta == "weighted":
            weights = torch.zeros_like(outputs)
            weights[index] = self._probabilities()[index]
            weights[index, classes] = 0.0
            beta = self._vjp(weights, retain=False)[index]
        if recipe.distance_weighted:
            if distance is None:
                raise ValueError("distance is required for a distance-weighted recipe")
            alpha = alpha * distance
            beta = None if beta is None else beta * distance
        alpha = alpha.to(torch.float32).contiguous()
        if recipe.beta == "negated":
            beta = -alpha  # exact: for F = p, sum_j dp_j/dx = 0
        elif beta is not None:
            beta = beta.to(torch.float32).contiguous()
        return Derivatives(alpha, beta)

    def all_class_derivatives(self, index: torch.Tensor, recipe: Recipe) -> Derivatives:
        """alpha and beta of every class for the rows ``index``: (k, C, M) each.

        alpha[:, c] = dF_c/dx; beta[:, c] = d(sum_j F_j)/dx - alpha[:, c] (``"others"``) or
        -alpha[:, c] (``"negated"``). C (+1) VJPs on the kept graph: on a LeNet on the CPU
        they take 0.7x the time of one batched backward (``is_grads_batched``) of the same
        cotangents, with identical results (bench/RESULTS.md, "Variants").
        """
        outputs = self._outputs
        num_classes = outputs.shape[1]
        rows = torch.zeros(outputs.shape[0], dtype=outputs.dtype, device=outputs.device)
        rows[index] = 1.0
        cotangents = [torch.zeros_like(outputs) for _ in range(num_classes)]
        for c, cotangent in enumerate(cotangents):
            cotangent[:, c] = rows
        if recipe.beta == "others":
            cotangents.append(rows[:, None].expand_as(outputs).contiguous())
        grads = [
            self._vjp(cotangent, retain=i + 1 < len(cotangents))[index]
            for i, cotangent in enumerate(cotangents)
        ]
        alpha = torch.stack(grads[:num_classes], dim=1)  # (k, C, M)
        if recipe.beta == "others":
            beta = grads[num_classes][:, None, :] - alpha
            return Derivatives(
                alpha.to(torch.float32).contiguous(), beta.to(torch.float32).contiguous()
            )
        alpha = alpha.to(torch.float32).contiguous()
        return Derivatives(alpha, -alpha)


def derivatives_of(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sample_shape: Tuple[int, ...],
    classes: torch.Tensor,
    recipe: Recipe,
) -> Derivatives:
    """alpha and beta (n, M) of class ``classes[i]`` for every row of flat inputs ``x`` (n, M):
    one forward pass and the recipe's VJPs."""
    forward = ForwardPass(model, x, sample_shape, recipe.jacobian)
    index = torch.arange(x.shape[0], device=x.device)
    return forward.derivatives(index, classes, recipe)
