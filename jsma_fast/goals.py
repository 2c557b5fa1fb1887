"""What a row of the attack is after: a target class, or any class but its true one.

A goal answers the loop's three questions about its rows: for which class alpha is taken
(:meth:`Goal.alpha_class`), whether a row has arrived (:meth:`Goal.reached`) and which way the
saliency map points (:meth:`Goal.map_increase`); and, for the variants that compare several
searches per step, which classes they search and which of those must be lowered
(:meth:`Goal.candidates`). ``y_target="untargeted"`` builds an :class:`Untargeted` goal, every
other ``y_target`` a :class:`Targeted` one (``jsma_fast.targets``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple, Union

import torch

Index = Union[torch.Tensor, slice]


class Goal:
    """The goal of n rows; ``index`` arguments select some of them ((k,) int64 or a slice)."""

    #: (n,) int64 class of every row for the result's ``target`` column, -1 when untargeted.
    target: torch.Tensor

    def part(self, index: Index) -> "Goal":
        """The goal of the rows ``index``."""
        raise NotImplementedError

    def alpha_class(self, index: Index) -> torch.Tensor:
        """(k,) int64: the class whose derivative is alpha for the rows ``index``."""
        raise NotImplementedError

    def reached(self, index: Index, prediction: torch.Tensor) -> torch.Tensor:
        """(k,) bool: the rows ``index`` whose ``prediction`` (k,) fulfils the goal."""
        raise NotImplementedError

    def map_increase(self, increase: bool) -> bool:
        """Whether the map takes its increase conditions (A > 0, B < 0) for features that move
        up (``increase``) or down."""
        raise NotImplementedError

    def candidates(self, index: Index, num_classes: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """The classes searched per row by the variants that compare searches, and which of
        them the step must lower: (k, S) int64 and (k, S) bool."""
        raise NotImplementedError


@dataclass(frozen=True)
class Targeted(Goal):
    """Reach ``target``: alpha is the target's derivative, the map points with the step."""

    target: torch.Tensor  #: (n,) int64

    def part(self, index: Index) -> "Targeted":
        return Targeted(self.target[index])

    def alpha_class(self, index: Index) -> torch.Tensor:
        return self.target[index]

    def reached(self, index: Index, prediction: torch.Tensor) -> torch.Tensor:
        return prediction == self.target[index]

    def map_increase(self, increase: bool) -> bool:
        return increase

    def candidates(self, index: Index, num_classes: int) -> Tuple[torch.Tensor, torch.Tensor]:
        classes = self.target[index][:, None]
        return classes, torch.zeros_like(classes, dtype=torch.bool)


@dataclass(frozen=True)
class Untargeted(Goal):
    """Leave ``true_class``: alpha is the true class's derivative and the map takes the
    opposite direction's conditions, so that the pair lowers the true class and raises the
    others (NT-JSMA); the searches over classes cover every class, the true one lowered."""

    true_class: torch.Tensor  #: (n,) int64

    @property
    def target(self) -> torch.Tensor:  # type: ignore[override]
        return torch.full_like(self.true_class, -1)

    def part(self, index: Index) -> "Untargeted":
        return Untargeted(self.true_class[index])

    def alpha_class(self, index: Index) -> torch.Tensor:
        return self.true_class[index]

    def reached(self, index: Index, prediction: torch.Tensor) -> torch.Tensor:
        return prediction != self.true_class[index]

    def map_increase(self, increase: bool) -> bool:
        return not increase

    def candidates(self, index: Index, num_classes: int) -> Tuple[torch.Tensor, torch.Tensor]:
        true_class = self.true_class[index]
        labels = torch.arange(num_classes, device=true_class.device)
        classes = labels[None, :].expand(true_class.shape[0], num_classes)
        return classes, classes == true_class[:, None]
