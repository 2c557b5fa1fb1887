"""Hyperparameter presets that reproduce published JSMA semantics.

Each preset fixes the options in which public implementations differ; the numeric
hyperparameters (theta, gamma, clip range) stay the caller's.

| preset         | rule         | F      | leaves the search domain     | budget                   |
|----------------|--------------|--------|------------------------------|--------------------------|
| ``paper``      | pairwise map | logits | when saturated (Algorithm 2) | floor(M gamma / 2) steps |
| ``cleverhans`` | pairwise map | logits | once used; starts unsaturated| floor(M gamma / 2) steps |
| ``advertorch`` | pairwise map | logits | once used; starts full       | floor(M gamma / 2) steps |
| ``art``        | top-2 alpha  | logits | when saturated               | changed <= gamma M       |

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

from typing import Any, Dict

PRESETS: Dict[str, Dict[str, Any]] = {
    "paper": {
        "jacobian": "logits",
        "domain_rule": "saturated",
        "start_domain": "unsaturated",
        "method": "exact",
    },
    "cleverhans": {
        "jacobian": "logits",
        "domain_rule": "used",
        "start_domain": "unsaturated",
        "method": "exact",
    },
    "advertorch": {
        "jacobian": "logits",
        "domain_rule": "used",
        "start_domain": "all",
        "method": "exact",
    },
    # ART 1.20.1 SaliencyMapMethod: the two largest target-class gradients in the domain,
    # removal on saturation, and "go on while distinct chosen features / M <= gamma".
    "art": {
        "variant": "top2",
        "jacobian": "logits",
        "domain_rule": "saturated",
        "start_domain": "unsaturated",
        "budget_rule": "features",
    },
}
