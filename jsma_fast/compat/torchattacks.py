"""torchattacks' ``JSMA`` call site, computed by :class:`jsma_fast.JSMA` (batched, exact).

Change one import::

    # from torchattacks import JSMA
    from jsma_fast.compat.torchattacks import JSMA

    atk = JSMA(model, theta=1.0, gamma=0.1)
    adv_images = atk(images, labels)          # default: target (label + 1) % C
    atk.set_mode_targeted_random()            # or _by_label, _by_function, _least_likely
    adv_images = atk(images, labels)

The class subclasses ``torchattacks.Attack`` (torchattacks 3.5), so the modes, ``set_device``,
``set_normalization_used``, ``set_model_training_mode``, ``save`` and ``__repr__`` are
torchattacks' own; only ``forward`` differs. It runs
``jsma_fast.JSMA(theta=theta, gamma=gamma, variant=variant, clip_min=0, clip_max=1,
saliency="pair", domain_rule="used", start_domain="unsaturated",
max_iters=ceil(M * gamma / 2))`` on the whole batch; the default ``variant="jsma"``
differentiates the logits, as torchattacks (``variant="tjsma"``: the strongest map).

Where it differs from ``torchattacks.JSMA`` (3.5.1):

========================  ================================  ==================================
aspect                    torchattacks.JSMA                 this adapter
========================  ================================  ==================================
saliency search           all M x M pairs as dense tensors  native exact search, no M^2 memory
                          (M^2 memory per image)            (``method="auto"``: pruned, same
                                                            best score)
batching                  one image at a time, C backward   the whole batch (``batch_size``),
                          passes per step                   one forward and two backward
                                                            passes per step
search domain at start    features < 0.99 (increase) or >   features < 1 (increase) or > 0
                          0.01 (decrease)                   (decrease)
out-of-domain features    penalised by 2 max abs(grad)      excluded exactly
                          (rounding can let them qualify)
no qualifying pair        picks the pair (0, 0) and goes    the sample stops
                          on
decrease mode (theta <    score alpha * abs(beta) < 0 for   the paper's score -(A * B) > 0
0)                        every qualifying pair, so the     for A < 0, B > 0
                          first masked-out pair wins
default target (not       ``(labels + 1) % 10``             ``(labels + 1) % C`` for C classes
targeted)
``labels=None``           AttributeError                    the model's predictions stand in
inputs outside [0, 1]     accepted, clamped at the end      ``ValueError`` naming ``x``
theta = 0, gamma outside  accepted                          ``ValueError`` naming the
(0, 1]                                                      parameter, at construction
========================  ================================  ==================================

The budget ``ceil(M * gamma / 2)`` pair steps, the removal of used features from the domain,
the use of logits and the clamping to [0, 1] are torchattacks'.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional

import torch

try:
    from torchattacks.attack import Attack as _Attack
except ImportError as exc:  # pragma: no cover - exercised only without torchattacks
    raise ImportError(
        "jsma_fast.compat.torchattacks needs torchattacks: pip install torchattacks "
        "(jsma-fast's 'torchattacks' extra)"
    ) from exc

from ..attack import JSMA as _JSMA
from ._reached import attack_unreached

__all__ = ["JSMA"]


def _as_float(value: Any) -> Any:
    """A real number of any type (``np.float32``, ...) as a float; anything else unchanged,
    for :class:`jsma_fast.JSMA` to reject with its message."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


class JSMA(_Attack):
    r"""Jacobian-based Saliency Map Attack (Papernot et al., 2016) with torchattacks' interface,
    computed by :class:`jsma_fast.JSMA`.

    Distance Measure : L0

    Arguments:
        model (nn.Module): model to attack; returns logits.
        theta (float): change of each chosen feature per step; > 0 increases, < 0 decreases.
            (Default: 1.0)
        gamma (float): highest fraction of features that can be modified, in (0, 1].
            (Default: 0.1)
        batch_size (int or None): images attacked together; None for the whole batch.
        method (str): pair search of :class:`jsma_fast.JSMA`: ``"auto"``, ``"exact"`` or
            ``"pruned"``. (Default: ``"auto"``)
        variant (str): a variant of :data:`jsma_fast.catalogue.FAMILY` on torchattacks' loop:
            ``"jsma"`` (the paper's map, torchattacks' own rule), ``"tjsma"`` (the strongest),
            ... (Default: ``"jsma"``)
        num_threads (int or None): CPU threads of the search (default: torch's setting).

    Shape:
        - images: :math:`(N, C, H, W)` (any ``(N, ...)``), in the range [0, 1].
        - labels: :math:`(N)` true class indices (the targets in
          ``set_mode_targeted_by_label``).
        - output: :math:`(N, C, H, W)`.

    Examples::
        >>> attack = JSMA(model, theta=1.0, gamma=0.1)  # doctest: +SKIP
        >>> adv_images = attack(images, labels)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: torch.nn.Module,
        theta: float = 1.0,
        gamma: float = 0.1,
        *,
        batch_size: Optional[int] = None,
        method: str = "auto",
        num_threads: Optional[int] = None,
        variant: str = "jsma",
    ) -> None:
        super().__init__("JSMA", model)
        self.theta = theta
        self.gamma = gamma
        self.batch_size = batch_size
        self.method = method
        self.variant = variant
        self.num_threads = num_threads
        self.supported_mode = ["default", "targeted"]
        self.jsma(1)  # checks the hyperparameters now, with errors naming them

    def jsma(self, num_features: int) -> _JSMA:
        """The :class:`jsma_fast.JSMA` this adapter runs on samples of ``num_features``
        features: torchattacks' budget ``ceil(M * gamma / 2)``, clip range [0, 1], used
        features leave the search domain."""
        theta, gamma = _as_float(self.theta), _as_float(self.gamma)
        budget = None
        if isinstance(gamma, float):  # any real type (np.float32 too), as torchattacks
            budget = int(math.ceil(num_features * gamma / 2.0))
        return _JSMA(
            theta=theta,
            gamma=gamma,
            variant=self.variant,
            clip_min=0.0,
            clip_max=1.0,
            theta_units="absolute",  # torchattacks adds theta (on [0, 1] the same as "range")
            saliency="pair",
            domain_rule="used",
            start_domain="unsaturated",
            method=self.method,
            max_iters=budget,
            batch_size=self.batch_size,
            num_threads=self.num_threads,
            require_eval=False,  # torchattacks' __call__ sets the model's mode
        )

    def forward(self, images: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        r"""
        Overridden.
        """
        if not isinstance(images, torch.Tensor):
            raise TypeError(
                f"images must be a torch.Tensor of shape (N, C, H, W), got {type(images).__name__}"
            )
        if labels is not None and not isinstance(labels, torch.Tensor):
            raise TypeError(
                f"labels must be a torch.Tensor of shape (N,), got {type(labels).__name__}"
            )
        device = self.device if self.device is not None else images.device
        images = images.clone().detach().to(device)
        if labels is not None:
            labels = labels.clone().detach().to(device)
            if labels.shape != images.shape[:1]:
                raise ValueError(
                    f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}"
                )

        if self.targeted:
            target: Any = self.get_target_label(images, labels)
            if target is None:
                raise ValueError(
                    f"labels must be given in mode {self.attack_mode!r}: they are the targets"
                )
            truth = None
        else:
            # JSMA is a targeted attack; torchattacks' default is the next class.
            target, truth = "next", labels
        num_features = int(images[0].numel()) if images.shape[0] else 0
        attack = self.jsma(num_features)
        if isinstance(target, torch.Tensor):
            return attack_unreached(attack, self.get_logits, images, target)
        return attack(self.get_logits, images, target, y=truth).x_adv
