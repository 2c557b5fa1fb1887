"""Forward derivatives for JSMA: one forward pass, then one or two vector-Jacobian products.

The attack needs, per sample and for each class c it searches (the target, the true class of
a non-targeted attack, or every class), two combinations of the Jacobian rows of the outputs
F (logits Z or probabilities p), never the whole Jacobian. A :class:`Recipe` says which:

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
it moves towards (TJSMA); steps in range units on per-feature bounds multiply them by each
feature's range (the derivative per step). The work is split in two phases, so that the loop
can look at the outputs before it pays for derivatives: :class:`ForwardPass` runs the model
once and keeps the graph; :meth:`ForwardPass.derivatives` takes the VJPs for the rows that go
on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch

JACOBIANS = ("logits", "probs")


@dataclass(frozen=True)
class Recipe:
    """What alpha and beta are, for a class c per row.

    Attributes:
        jacobian: ``"logits"`` (F = Z) or ``"probs"`` (F = softmax(Z)).
        beta: ``"others"``, ``"weighted"``, ``"negated"`` or ``"none"`` (see the module
            docstring).
        distance_weighted: multiply alpha and beta by the distance to the bound each feature
            moves towards: ``clip_max - x`` when increased, ``x - clip_min`` when decreased.
    """

    jacobian: str = "logits"
    beta: str = "others"
    distance_weighted: bool = False

    def __post_init__(self) -> None:
        if self.jacobian not in JACOBIANS or self.beta not in _BETA_VJPS:
            raise ValueError(f"no recipe for jacobian={self.jacobian!r}, beta={self.beta!r}")

    @property
    def vjps(self) -> int:
        """Vector-Jacobian products per step."""
        return 1 + _BETA_VJPS[self.beta]


#: VJPs of each beta form per class, beside alpha's.
_BETA_VJPS = {"others": 1, "weighted": 1, "negated": 0, "none": 0}


@dataclass
class Derivatives:
    """alpha and beta for k rows of M features, float32, C-contiguous: (k, S, M) for S
    classes a row (:meth:`ForwardPass.derivatives`), (k, M) for one (:func:`derivatives_of`)."""

    alpha: torch.Tensor
    beta: Optional[torch.Tensor]  #: None for ``beta="none"``


def _reusable_backward():
    """A context in which torch.compile builds backward graphs that may run several times
    (no donated buffers): the attack takes two VJPs of one forward pass. Other models and
    torch builds without the option are unaffected."""
    try:
        import torch._functorch.config as functorch_config

        if hasattr(functorch_config, "donated_buffer"):
            return functorch_config.patch(donated_buffer=False)
    except ImportError:  # pragma: no cover - torch builds without functorch
        pass
    return contextlib.nullcontext()


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
        with torch.enable_grad(), _reusable_backward():
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
        try:
            (grad,) = torch.autograd.grad(self._outputs, self.x, cotangent, retain_graph=retain)
        except RuntimeError as exc:
            if "donated buffer" not in str(exc):
                raise
            raise ValueError(
                "model was compiled by torch.compile with donated buffers, whose backward runs "
                "once per forward; the attack takes two VJPs per forward. Compile it afresh "
                "(torch._dynamo.reset()) and let the attack run its first gradient pass, or set "
                "torch._functorch.config.donated_buffer = False before compiling, or pass the "
                "uncompiled module"
            ) from exc
        return grad

    def _probabilities(self) -> torch.Tensor:
        return torch.softmax(self.logits.to(self._outputs.dtype), dim=1)

    def derivatives(
        self,
        index: torch.Tensor,
        classes: torch.Tensor,
        recipe: Recipe,
        weight: Optional[torch.Tensor] = None,
    ) -> Derivatives:
        """alpha and beta of class ``classes[i, s]`` for the row ``index[i]``: (k, S, M) each.

        One VJP per class column for alpha, then the beta form's: one shared VJP for
        ``"others"``, one per column for ``"weighted"``, none for ``"negated"`` and ``"none"``.

        Args:
            index: (k,) int64 rows of this pass that need derivatives.
            classes: (k, S) int64 classes of each of those rows (S = 1 for one class a row).
            recipe: what alpha and beta are.
            weight: (k, M) or (1, M) factor of alpha and beta per feature of the rows
                ``index``, in the inputs' dtype: the distance to the bound each feature moves
                towards (required when ``recipe.distance_weighted``), or the feature's range;
                None: 1.
        """
        if recipe.distance_weighted and weight is None:
            raise ValueError("the distance weight is required for a distance-weighted recipe")
        outputs = self._outputs
        columns = classes.shape[1]
        if index.numel() == 0:
            empty = self.x.new_zeros((0, columns, self.x.shape[1]), dtype=torch.float32)
            return Derivatives(empty, None if recipe.beta == "none" else empty)
        cotangents = [self._one_hot(index, classes[:, s]) for s in range(columns)]
        if recipe.beta == "others":
            rows = torch.zeros(outputs.shape[0], dtype=outputs.dtype, device=outputs.device)
            rows[index] = 1.0
            cotangents.append(rows[:, None].expand_as(outputs).contiguous())
        elif recipe.beta == "weighted":
            cotangents += [self._weights(index, classes[:, s]) for s in range(columns)]
        last = len(cotangents) - 1
        grads = [self._vjp(c, retain=i < last)[index] for i, c in enumerate(cotangents)]
        alpha = torch.stack(grads[:columns], dim=1)
        beta: Optional[torch.Tensor] = None
        if recipe.beta == "others":
            beta = grads[columns][:, None, :] - alpha
        elif recipe.beta == "weighted":
            beta = torch.stack(grads[columns:], dim=1)
        if weight is not None:
            alpha = alpha * weight[:, None, :]
            beta = None if beta is None else beta * weight[:, None, :]
        alpha = alpha.to(torch.float32).contiguous()
        if recipe.beta == "negated":
            beta = -alpha  # exact: for F = p, sum_j dp_j/dx = 0
        elif beta is not None:
            beta = beta.to(torch.float32).contiguous()
        return Derivatives(alpha, beta)

    def _one_hot(self, index: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """The cotangent that picks output ``classes[i]`` of row ``index[i]``."""
        one_hot = torch.zeros_like(self._outputs)
        one_hot[index, classes] = 1.0
        return one_hot

    def _weights(self, index: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """The cotangent p_j (held constant) for every class j but ``classes[i]``."""
        weights = torch.zeros_like(self._outputs)
        weights[index] = self._probabilities()[index]
        weights[index, classes] = 0.0
        return weights


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
    derivs = forward.derivatives(index, classes[:, None], recipe)
    return Derivatives(derivs.alpha[:, 0], None if derivs.beta is None else derivs.beta[:, 0])
