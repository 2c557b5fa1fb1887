"""One step's choice of features: runs the native searches for a batch of rows.

A fixed-direction attack runs one search per row (the pairwise map, the single-feature map or
the top-2 rule). The ``maximal`` variant runs several per row and keeps the best: one per
direction (targeted), or one per class and sign pattern (non-targeted). Those searches are
stacked as rows of one kernel call in increase form (a decrease search on (alpha, beta) is an
increase search on (-alpha, -beta), exactly), so a step costs one native call whatever the
variant. Of equal scores, the earlier search wins: increase before decrease, then class order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple, Union

import torch

from . import ops
from .derivatives import Derivatives
from .goals import Goal
from .space import Space
from .trace import SearchInputs

Recorder = Optional[Callable[[SearchInputs], None]]
#: The classes searched per row (k, S) int64, and which of them to lower (k, S) bool.
Searched = Tuple[torch.Tensor, torch.Tensor]


@dataclass
class Choice:
    """Per row: whether a choice exists, the chosen features and the direction they move."""

    valid: torch.Tensor  #: (k,) bool
    features: torch.Tensor  #: (k, F) int64, F = 2 for pairs, 1 for single features
    direction: torch.Tensor  #: (k,) int8, +1 (increase) or -1 (decrease)


@dataclass(frozen=True)
class SearchSettings:
    """How the searches run (shared by every step of an attack)."""

    rule: str  #: ``"map"`` or ``"top2"``
    pairs: bool  #: pairs of features, or single features
    searcher: ops.Searcher  #: method, threads and instruction set, resolved once


def choose_fixed(
    derivs: Derivatives,
    domain: torch.Tensor,
    increase_map: bool,
    direction: int,
    settings: SearchSettings,
    record: Recorder = None,
) -> Choice:
    """One search per row: the map in increase or decrease form, features move ``direction``.

    Args:
        derivs: alpha, beta (k, M).
        domain: (k, M) bool search domain.
        increase_map: the map's increase conditions (else decrease; top-2: largest alpha,
            else smallest).
        direction: +1 or -1, where the chosen features move.
        record: called with a copy of the search's inputs (tracing), or None.
    """
    mode = "increase" if increase_map else "decrease"
    if record is not None:
        record(_copy(derivs.alpha, derivs.beta, domain, mode, settings))
    device = derivs.alpha.device
    if settings.rule == "top2":
        sel = settings.searcher.top2(derivs.alpha, domain, increase_map)
        features = torch.stack([sel.p, sel.q], dim=1)
    else:
        sel, features = _map_search(derivs.alpha, derivs.beta, domain, mode, settings)
    valid = sel.valid.to(device)
    steps = torch.full(valid.shape, direction, dtype=torch.int8, device=device)
    return Choice(valid, features.to(device), steps)


def choose_best(
    derivs: Derivatives,
    available: torch.Tensor,
    x: torch.Tensor,
    negate_class: torch.Tensor,
    bounds: Tuple[torch.Tensor, torch.Tensor],
    settings: SearchSettings,
    record: Recorder = None,
) -> Choice:
    """The best of an increase and a decrease search per class, over every class given.

    Args:
        derivs: alpha, beta (k, C, M): one alpha and beta per class (C = 1 for the targeted
            ``maximal`` variant, every class for the non-targeted one).
        available: (k, M) bool, features still in the search domain.
        x: (k, M) current inputs: a feature moves up only below its upper bound, down only
            above its lower bound.
        negate_class: (k, C) bool, classes to lower rather than raise (the true class of a
            non-targeted attack): their features move against the sign of A.
        record: called with a copy of the stacked search's inputs (tracing), or None.
    """
    k, classes, _ = derivs.alpha.shape
    device = derivs.alpha.device
    alpha, beta, domain, direction = _stack_searches(derivs, available, x, negate_class, bounds)
    if record is not None:
        record(_copy(alpha, beta, domain, "increase", settings))
    sel, features = _map_search(alpha, beta, domain, "increase", settings)
    searches = classes * 2
    score = torch.where(sel.valid, sel.score, torch.zeros_like(sel.score)).to(device)
    winner = score.view(k, searches).argmax(dim=1)  # the first maximum: earlier search wins
    pick = torch.arange(k, device=device) * searches + winner
    valid = sel.valid.to(device).view(k, searches).any(dim=1)
    return Choice(
        valid,
        features.to(device)[pick],
        direction.reshape(k, searches)[torch.arange(k, device=device), winner],
    )


def _stack_searches(
    derivs: Derivatives,
    available: torch.Tensor,
    x: torch.Tensor,
    negate_class: torch.Tensor,
    bounds: Tuple[torch.Tensor, torch.Tensor],
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The searches of :func:`choose_best` as rows of one increase search.

    Returns:
        alpha, beta and the bool domain, each (k * C * 2, M), and the direction (k, C, 2)
        int8 in which each search's features move.
    """
    k, classes, m = derivs.alpha.shape
    device = derivs.alpha.device
    # Search s = 2 * c + pattern, pattern 0: increase conditions (A > 0), 1: decrease.
    pattern_sign = torch.tensor([1.0, -1.0], device=device)
    alpha = (derivs.alpha[:, :, None, :] * pattern_sign[:, None]).reshape(k * classes * 2, m)
    beta = (derivs.beta[:, :, None, :] * pattern_sign[:, None]).reshape(k * classes * 2, m)
    pattern_direction = torch.tensor([1, -1], dtype=torch.int8, device=device)
    class_sign = 1 - 2 * negate_class.to(torch.int8)  # (k, C): -1 for the classes to lower
    direction = pattern_direction[None, None, :] * class_sign[:, :, None]  # (k, C, 2)
    lower, upper = bounds
    movable_up = available & (x < upper)
    movable_down = available & (x > lower)
    domain = torch.where(
        (direction > 0)[..., None], movable_up[:, None, None, :], movable_down[:, None, None, :]
    ).reshape(k * classes * 2, m)
    return alpha, beta, domain, direction


def _map_search(
    alpha: torch.Tensor,
    beta: torch.Tensor,
    domain: torch.Tensor,
    mode: str,
    settings: SearchSettings,
) -> Tuple[Union[ops.PairSelection, ops.FeatureSelection], torch.Tensor]:
    """One native search of the pairwise or single-feature map over rows of alpha, beta,
    domain (S, M).

    Returns:
        The native selection (``valid`` and ``score`` (S,)) and the chosen features (S, F).
    """
    alpha, beta, domain = alpha.contiguous(), beta.contiguous(), domain.contiguous()
    increase = mode == "increase"
    if settings.pairs:
        sel = settings.searcher.pairs(alpha, beta, domain, increase)
        return sel, torch.stack([sel.p, sel.q], dim=1)
    sel = settings.searcher.features(alpha, beta, domain, increase)
    return sel, sel.index[:, None]


def _copy(alpha, beta, domain, mode: str, settings: SearchSettings) -> SearchInputs:
    return SearchInputs(
        alpha.detach().clone(),
        None if beta is None else beta.detach().clone(),
        domain.detach().clone(),
        mode,
        settings.rule,
        settings.pairs,
    )


# ----------------------------------------------------------------------------- direction policies


class Directions:
    """How a variant's steps choose the way features move: the start of the search domain,
    the classes searched per row and the step's choice."""

    def start_domain(self, x: torch.Tensor, attack: Any, space: Space) -> torch.Tensor:
        """(n, M) bool: the features of ``x`` (n, M), with bounds in ``space``, in the search
        domain at the start (before the user's mask)."""
        raise NotImplementedError

    def classes(self, goal: Goal, index: torch.Tensor, num_classes: int) -> Searched:
        """The classes (k, S) searched for the rows ``index`` and which to lower (k, S)."""
        raise NotImplementedError

    def choose(self, step: "Step", settings: SearchSettings, record: Recorder) -> Choice:
        """This step's features for the rows of ``step``."""
        raise NotImplementedError


@dataclass
class Step:
    """What a step's choice reads, for k rows."""

    derivs: Derivatives  #: alpha, beta (k, S, M) of the classes searched
    domain: torch.Tensor  #: (k, M) bool search domain
    x: torch.Tensor  #: (k, M) current inputs
    lowered: torch.Tensor  #: (k, S) bool, classes to lower rather than raise
    goal: Goal
    increase: bool  #: the attack's step points up (theta > 0)
    space: Space  #: the rows' bounds


class FixedDirection(Directions):
    """Every feature moves by theta's sign; one search a row, for the goal's alpha class, in
    the form of the goal's map."""

    def start_domain(self, x: torch.Tensor, attack: Any, space: Space) -> torch.Tensor:
        if attack.start_domain == "all":
            return torch.ones_like(x, dtype=torch.bool)
        return x < space.hi if attack.increase else x > space.lo

    def classes(self, goal: Goal, index: torch.Tensor, num_classes: int) -> Searched:
        classes = goal.alpha_class(index)[:, None]
        return classes, torch.zeros_like(classes, dtype=torch.bool)

    def choose(self, step: Step, settings: SearchSettings, record: Recorder) -> Choice:
        alpha, beta = step.derivs.alpha, step.derivs.beta
        one = Derivatives(alpha[:, 0], None if beta is None else beta[:, 0])
        increase_map = step.goal.map_increase(step.increase)
        direction = 1 if step.increase else -1
        return choose_fixed(one, step.domain, increase_map, direction, settings, record)


class BothDirections(Directions):
    """Each step compares an increase and a decrease search for every class the goal names
    and moves the winner's features its way (M-JSMA). The domain starts full: a feature moves
    up only below its upper bound and down only above its lower bound."""

    def start_domain(self, x: torch.Tensor, attack: Any, space: Space) -> torch.Tensor:
        return torch.ones_like(x, dtype=torch.bool)

    def classes(self, goal: Goal, index: torch.Tensor, num_classes: int) -> Searched:
        return goal.candidates(index, num_classes)

    def choose(self, step: Step, settings: SearchSettings, record: Recorder) -> Choice:
        return choose_best(
            step.derivs,
            step.domain,
            step.x,
            step.lowered,
            (step.space.lo, step.space.hi),
            settings,
            record,
        )


#: The direction policies by the name a :class:`jsma_fast.variants.Variant` gives.
POLICIES = {"fixed": FixedDirection(), "both": BothDirections()}
