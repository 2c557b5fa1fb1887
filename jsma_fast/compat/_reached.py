"""Rows whose target is already reached, handled as the imitated libraries do."""

from __future__ import annotations

from typing import Callable

import torch

from ..attack import JSMA


def attack_unreached(
    attack: JSMA,
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    target: torch.Tensor,
) -> torch.Tensor:
    """Adversarial inputs (N, ...) for targets (N,): rows the model already classifies as
    their target come back unchanged, as in ART and torchattacks (``JSMA`` itself refuses
    such targets); the other rows are attacked."""
    with torch.no_grad():
        todo = model(x).argmax(dim=1) != target
    if bool(todo.all()):
        return attack(model, x, target).x_adv
    x_adv = x.detach().clone()
    if bool(todo.any()):
        x_adv[todo] = attack(model, x[todo], target[todo]).x_adv
    return x_adv
