"""Every named configuration, once: the variants of the family and the presets that reproduce
published implementations. ``JSMA``, the command line, the report's stages, the benchmarks and
the adapters read their choices, labels and help texts from here (without importing torch).

Presets fix the options in which public implementations differ; the numeric hyperparameters
(theta, gamma, clip range) stay the caller's.

| preset         | rule         | F      | leaves the domain           | budget            | theta |
|----------------|--------------|--------|-----------------------------|-------------------|-------|
| ``paper``      | pairwise map | logits | when saturated (Alg. 2)     | M gamma / 2 steps | range |
| ``cleverhans`` | pairwise map | logits | used; starts unsaturated    | M gamma / 2 steps | abs.  |
| ``advertorch`` | pairwise map | logits | used; starts full           | M gamma / 2 steps | abs.  |
| ``art``        | top-2 alpha  | logits | when saturated              | M gamma changed   | abs.  |

Step budgets are rounded down. theta: the paper's theta = +1 on [0, 1] pushes a feature to its
bound, which ``"range"`` units keep on any scale; the three libraries add theta in input units
(abs.: ``theta_units="absolute"``), clipped. On [0, 1] inputs both agree.

F is what is differentiated, and ``art``'s budget (changed features) is checked after each
step. advertorch differentiates whatever the model returns and ART's ``class_gradient`` the
model's output: with a model that returns logits (the usual case) that is ``jacobian="logits"``.

Ties: the pairwise map takes the first pair in row-major order (with ``method="exact"``), the
top-2 rule the smaller index of equal values (ART's ``argpartition`` leaves ties unspecified).
When no pair qualifies, the sample stops.

Not reproduced, on purpose: cleverhans 3.1 falls back to feature 0 (twice) when no pair
qualifies, and its decrease mode masks with the wrong sign; torchattacks scores
``alpha * |beta|`` without the sign conditions in decrease mode. Here a sample with no
qualifying pair stops with ``stop_reason == "no_valid_pair"``, and the decrease mode uses the
paper's conditions (A < 0 and B > 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Dict, Mapping

from .variants import Variant

_COMBEY = "Combey, Loison, Faucher, Hajri, Probabilistic Jacobian-based Saliency Maps (2020)"
_WIYATNO = "Wiyatno, Xu, Maximal Jacobian-based Saliency Map Attack (2018)"

#: The family, in the order of tables and reports; the first is the default.
FAMILY: Mapping[str, Variant] = MappingProxyType(
    {
        v.name: v
        for v in (
            Variant(
                "jsma", "JSMA-Z, the paper's map", "the paper's pairwise map (default)",
                "Papernot et al. 2016",
            ),
            Variant(
                "jsma_f", "JSMA-F (probabilities, beta = -alpha)",
                "the paper's map on the probabilities", "Papernot et al. 2016; Carlini, Wagner "
                "2017 name it", jacobian="probs",
            ),
            Variant(
                "wjsma", "WJSMA", "beta weighted by the probabilities", _COMBEY,
                beta="weighted",
            ),
            Variant(
                "tjsma", "TJSMA", "WJSMA weighted by the distance to the bound (the strongest)",
                _COMBEY, beta="weighted", distance_weighted=True,
            ),
            Variant(
                "top2", "top-2 (ART's rule)", "the two largest target derivatives (ART's rule)",
                "ART's SaliencyMapMethod", beta="none", rule="top2",
            ),
            Variant(
                "maximal", "M-JSMA (both directions)", "the better of both directions each step",
                _WIYATNO, directions="both",
            ),
        )
    }
)  # fmt: skip


@dataclass(frozen=True)
class Preset:
    """Options that reproduce a published implementation's semantics."""

    name: str
    summary: str
    options: Mapping[str, Any]


_PAPER_LOOP: Dict[str, Any] = {"jacobian": "logits", "method": "exact"}
#: The libraries add theta in input units (clipped to the bounds).
_ABSOLUTE: Dict[str, Any] = {"theta_units": "absolute"}

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        p.name: p
        for p in (
            Preset(
                "paper",
                "Algorithms 2 and 3: removal on saturation",
                {**_PAPER_LOOP, "domain_rule": "saturated", "start_domain": "unsaturated"},
            ),
            Preset(
                "cleverhans",
                "version 3.1: removal once used",
                {**_PAPER_LOOP, **_ABSOLUTE, "domain_rule": "used", "start_domain": "unsaturated"},
            ),
            Preset(
                "advertorch",
                "removal once used, the domain starts full",
                {**_PAPER_LOOP, **_ABSOLUTE, "domain_rule": "used", "start_domain": "all"},
            ),
            # ART 1.20.1 SaliencyMapMethod: the two largest target-class gradients in the
            # domain, removal on saturation, "go on while distinct chosen features / M <= gamma".
            Preset(
                "art",
                "ART 1.20.1's SaliencyMapMethod: top-2 rule, budget on chosen features",
                {
                    **_ABSOLUTE,
                    "variant": "top2",
                    "jacobian": "logits",
                    "domain_rule": "saturated",
                    "start_domain": "unsaturated",
                    "budget_rule": "features",
                },
            ),
        )
    }
)


def choices_help(table: Mapping[str, Any]) -> str:
    """``name: summary`` of every entry of :data:`FAMILY` or :data:`PRESETS`, for help texts."""
    return "; ".join(f"{name}: {entry.summary}" for name, entry in table.items())
