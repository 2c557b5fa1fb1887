"""The JSMA family as values: what each variant differentiates, how it chooses and which way
its features move.

Notation per sample: Z the logits, p = softmax(Z), F = Z (``jacobian="logits"``) or p
(``"probs"``), t the class of alpha (the target; the true class y when untargeted), theta the
step. For a pair (p, q): A = alpha_p + alpha_q, B = beta_p + beta_q; "the pairwise map" is the
paper's rule (increase: A > 0 and B < 0, score -(A * B), the best pair wins; see
``docs/kernel-contract.md``).

===========  ==========================  ===============================  =====================
variant      alpha                       beta                             choice
===========  ==========================  ===============================  =====================
``jsma``     dF_t/dx                     sum_{j != t} dF_j/dx (for        pairwise map
                                         F = p: exactly -alpha)
``jsma_f``   dp_t/dx                     -alpha, exactly                  pairwise map
``wjsma``    dF_t/dx                     sum_{j != t} p_j dF_j/dx, p      pairwise map
                                         held constant
``tjsma``    (clip_max - x) * dF_t/dx    (clip_max - x) *                 pairwise map
                                         sum_{j != t} p_j dF_j/dx
``top2``     dF_t/dx                     not used                         the two largest alpha
``maximal``  as ``jsma``                 as ``jsma``                      best increase pair vs
                                                                          best decrease pair
===========  ==========================  ===============================  =====================

Decrease (theta < 0): the pairwise map's decrease conditions (A < 0, B > 0); ``top2`` takes
the two smallest alpha; ``tjsma`` weights by ``x - clip_min``, the distance to the bound the
feature moves towards (our choice: the paper defines the increase form only).

Non-targeted (``y_target="untargeted"``, :class:`jsma_fast.goals.Untargeted`): alpha is the
true class's and the map takes the opposite direction's conditions (NT-JSMA). ``maximal``
then runs the non-targeted M-JSMA: every class c and both sign patterns, the best
-(A_c * B_c) wins, features move by sign(A_c) * theta, negated when c = y.

A new variant is one :class:`Variant` in :data:`FAMILY` (``jsma_fast.catalogue``) and its
naive reference in the tests: the loop reads the variant's recipe, rule and direction policy,
never its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # the table is read without torch (the command line's choices and help)
    from .derivatives import Recipe

#: The direction policies (``jsma_fast.choice.POLICIES``): theta's sign, or the better of
#: both directions at each step.
DIRECTIONS = ("fixed", "both")


@dataclass(frozen=True)
class Variant:
    """One member of the family.

    Attributes:
        name: the value of ``JSMA(variant=...)``.
        label: its name in tables and reports.
        summary: one line for help texts.
        source: where it was published.
        beta: the beta form on logits (``"others"``, ``"weighted"`` or ``"none"``); on
            probabilities ``"others"`` becomes the exact ``"negated"`` (sum_j p_j = 1).
        distance_weighted: alpha and beta weighted by the distance to the bound (TJSMA).
        rule: ``"map"`` (the pairwise or single-feature saliency map) or ``"top2"``.
        directions: the direction policy, one of :data:`DIRECTIONS`: ``"fixed"`` (theta's
            sign) or ``"both"`` (the better of both per step); ``jsma_fast.choice.POLICIES``
            holds their code.
        jacobian: the outputs it differentiates whatever the attack's default, or None for
            the attack's ``jacobian`` option.
    """

    name: str
    label: str
    summary: str
    source: str
    beta: str = "others"
    distance_weighted: bool = False
    rule: str = "map"
    directions: str = "fixed"
    jacobian: Optional[str] = None

    @property
    def both_directions(self) -> bool:
        return self.directions == "both"

    def default_jacobian(self) -> str:
        """The ``jacobian`` an attack of this variant takes when none is given."""
        return self.jacobian or "logits"

    def recipe(self, jacobian: str) -> "Recipe":
        """What alpha and beta are with derivatives of ``jacobian`` outputs."""
        from .derivatives import Recipe

        beta = "negated" if self.beta == "others" and jacobian == "probs" else self.beta
        return Recipe(jacobian, beta, self.distance_weighted)

    def check(self, *, theta: float, saliency: str, jacobian: str) -> None:
        """Refuses the options this variant cannot run with, naming both sides."""
        if self.rule == "top2" and saliency == "single":
            raise ValueError(
                f"variant={self.name!r} chooses two features per step; it cannot run with "
                "saliency='single' (use variant='jsma' with saliency='single')"
            )
        if self.both_directions and theta < 0:
            raise ValueError(
                f"variant={self.name!r} chooses the direction of every step itself: theta is "
                f"its step size and must be > 0, got theta={theta!r}"
            )
        if self.jacobian is not None and jacobian != self.jacobian:
            raise ValueError(
                f"variant={self.name!r} differentiates jacobian={self.jacobian!r}; leave "
                f"jacobian unset or use variant='jsma' with it, got jacobian={jacobian!r}"
            )
