"""The JSMA family on one loop: what each variant differentiates and how it chooses.

Notation per sample: Z the logits, p = softmax(Z), F = Z (``jacobian="logits"``) or p
(``"probs"``), t the target class, y the true class, theta the step. For a pair (p, q):
A = alpha_p + alpha_q, B = beta_p + beta_q; "the pairwise map" is the paper's rule (increase:
A > 0 and B < 0, score -(A * B), the best pair wins; see ``docs/kernel-contract.md``).

===========  ==========================  ===============================  =====================
variant      alpha                       beta                             choice
===========  ==========================  ===============================  =====================
``jsma``     dF_t/dx                     sum_{j != t} dF_j/dx (for        pairwise map
                                         F = p: exactly -alpha)
``wjsma``    dF_t/dx                     sum_{j != t} p_j dF_j/dx, p      pairwise map
                                         held constant
``tjsma``    (clip_max - x) * dF_t/dx    (clip_max - x) *                 pairwise map
                                         sum_{j != t} p_j dF_j/dx
``top2``     dF_t/dx                     not used                         the two largest alpha
``maximal``  as ``jsma``                 as ``jsma``                      best increase pair vs
                                                                          best decrease pair
===========  ==========================  ===============================  =====================

Sources: the paper (Papernot et al., 2016) for ``jsma``; Combey, Loison, Faucher, Hajri,
*Probabilistic Jacobian-based Saliency Maps Attacks* (2020) for ``wjsma`` and ``tjsma``; ART's
``SaliencyMapMethod`` for ``top2``; Wiyatno, Xu, *Maximal Jacobian-based Saliency Map Attack*
(2018) for ``maximal`` and the non-targeted forms.

Decrease (theta < 0): the pairwise map's decrease conditions (A < 0, B > 0); ``top2`` takes
the two smallest alpha; ``tjsma`` weights by ``x - clip_min``, the distance to the bound the
feature moves towards (our choice: the paper defines the increase form only).

Non-targeted (``y_target="untargeted"``): the class c of alpha is the true class y and the
map's conditions are those of the opposite direction (features move by theta, and the pair
must lower Z_y and raise the others: NT-JSMA). ``maximal`` then runs the non-targeted M-JSMA:
every class c and both sign patterns, the best -(A_c * B_c) wins, features move by
sign(A_c) * theta, negated when c = y.
"""

from __future__ import annotations

from dataclasses import dataclass

from .derivatives import Recipe

VARIANTS = ("jsma", "wjsma", "tjsma", "top2", "maximal")

#: Variants that run the paper's pairwise map (or the single-feature map) unchanged.
MAP_VARIANTS = ("jsma", "wjsma", "tjsma", "maximal")


@dataclass(frozen=True)
class Plan:
    """How a variant runs for one attack configuration.

    Attributes:
        recipe: what alpha and beta are (``jsma_fast.derivatives``).
        rule: ``"map"`` (the pairwise or single-feature saliency map) or ``"top2"``.
        both_directions: each step compares a search per direction and moves the winner's
            features its way (``maximal``).
        all_classes: the non-targeted M-JSMA: derivatives and searches for every class.
    """

    recipe: Recipe
    rule: str
    both_directions: bool
    all_classes: bool


def plan(variant: str, jacobian: str, targeted: bool) -> Plan:
    """The :class:`Plan` of ``variant`` with derivatives of ``jacobian`` outputs."""
    probs = jacobian == "probs"
    if variant in ("jsma", "maximal"):
        recipe = Recipe(jacobian, "negated" if probs else "others")
    elif variant == "wjsma":
        recipe = Recipe(jacobian, "weighted")
    elif variant == "tjsma":
        recipe = Recipe(jacobian, "weighted", distance_weighted=True)
    elif variant == "top2":
        recipe = Recipe(jacobian, "none")
    else:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    maximal = variant == "maximal"
    return Plan(
        recipe=recipe,
        rule="top2" if variant == "top2" else "map",
        both_directions=maximal,
        all_classes=maximal and not targeted,
    )
