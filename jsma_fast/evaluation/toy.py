"""The paper's toy example (its section 2): a small MLP learns AND on [0, 1]^2, and its
forward derivative is large exactly where the output flips."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from torch import nn


def train_and_mlp(hidden: int = 8, steps: int = 2000, seed: int = 0) -> nn.Module:
    """A 2-``hidden``-1 sigmoid MLP trained (full batch, Adam) on AND over [0, 1]^2.

    Training points: a seeded 21 x 21 grid labelled 1 where both inputs are > 0.5.

    Returns:
        the model in eval mode, mapping (n, 2) to (n, 1) probabilities.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Linear(2, hidden), nn.Sigmoid(), nn.Linear(hidden, 1), nn.Sigmoid()
        )
        g = torch.linspace(0, 1, 21)
        x = torch.cartesian_prod(g, g)
        y = ((x[:, 0] > 0.5) & (x[:, 1] > 0.5)).float()[:, None]
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(steps):
            loss = nn.functional.binary_cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def surface_and_derivative(
    model: nn.Module, resolution: int = 101
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Output and forward derivative over the input square.

    Returns:
        ``(grid, output, d_dx1, d_dx2)``: grid (R,) coordinates in [0, 1]; the others
        (R, R) indexed [i2, i1] (rows = x2), output F(x) and dF/dx1, dF/dx2.
    """
    g = torch.linspace(0, 1, resolution)
    x2, x1 = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([x1.reshape(-1), x2.reshape(-1)], dim=1).requires_grad_(True)
    out = model(pts)[:, 0]
    (grad,) = torch.autograd.grad(out.sum(), pts)
    shape = (resolution, resolution)
    return (
        g.numpy(),
        out.detach().numpy().reshape(shape),
        grad[:, 0].numpy().reshape(shape),
        grad[:, 1].numpy().reshape(shape),
    )
