"""Hyperparameter presets that reproduce published JSMA semantics.

Each preset fixes the options in which public implementations differ; the numeric
hyperparameters (theta, gamma, clip range) stay the caller's.

| preset       | derivative of | search domain                        | ties / no pair            |
|--------------|---------------|--------------------------------------|---------------------------|
| ``paper``    | logits        | leaves on saturation (Algorithm 2)   | first pair / stop         |
| ``cleverhans``| logits       | leaves after use; starts unsaturated | first row-major / stop    |
| ``advertorch``| model output | leaves after use; starts full        | first row-major / stop    |

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
        # advertorch differentiates whatever the model returns; with a model that returns
        # logits (the usual case, and the benchmark's) that is "logits".
        "jacobian": "logits",
        "domain_rule": "used",
        "start_domain": "all",
        "method": "exact",
    },
}
