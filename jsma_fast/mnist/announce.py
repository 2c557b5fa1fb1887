"""The line printed before a model is trained: what, roughly how long on this machine, where
it is cached. The time is estimated from a few training steps of a throwaway copy, timed
here, so that it fits the machine at hand."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn

#: Timed training steps (after one untimed warm-up step).
STEPS = 3


def seconds_per_step(model_class: type, sample: torch.Tensor, batch_size: int) -> float:
    """Seconds of one training step (forward, backward, SGD update) of a fresh
    ``model_class`` on a batch of ``batch_size`` copies of ``sample`` (C, H, W); the caller's
    random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        model = model_class().train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        x = sample.unsqueeze(0).expand(batch_size, *sample.shape).contiguous()
        y = torch.zeros(batch_size, dtype=torch.int64)
        elapsed = 0.0
        for step in range(STEPS + 1):
            start = time.perf_counter()
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            if step:  # the first step pays for allocations
                elapsed += time.perf_counter() - start
    return elapsed / STEPS


def duration(seconds: float) -> str:
    """``seconds`` as a rough duration: "about 40 s", "about 12 min", "about 1.5 h"."""
    if seconds < 90:
        return f"about {max(1, math.ceil(seconds))} s"
    if seconds < 90 * 60:
        return f"about {math.ceil(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def training_line(
    model_class: type, images: torch.Tensor, epochs: int, batch_size: int, path: Path
) -> str:
    """The announcement of training ``model_class`` on ``images`` (N, C, H, W)."""
    steps = epochs * math.ceil(images.shape[0] / batch_size)
    estimate = steps * seconds_per_step(model_class, images[0].float(), batch_size)
    return (
        f"Training {model_class.__name__} ({epochs} epochs on {images.shape[0]} images): "
        f"{duration(estimate)} on this machine (estimated from {STEPS} timed steps); not in "
        f"the cache yet, saved to {path} for later runs"
    )
