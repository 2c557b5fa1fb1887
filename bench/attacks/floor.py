"""The gradient floor: the time of an attack's unavoidable gradient work alone, replayed with
plain PyTorch calls at the attack's per-step batch sizes; and a profile of one attack run."""

from __future__ import annotations

import time
from typing import Sequence

import torch


def active_batch_sizes(iterations: torch.Tensor, stop_code: torch.Tensor) -> list[tuple[int, bool]]:
    """The attack's passes as ``(rows forwarded, derivatives taken)``, one per step.

    At step k the loop forwards the rows with ``iterations >= k``; it takes the two VJPs (on
    that whole batch) when at least one of them goes on: a row with ``iterations > k``, or one
    that stops at k for lack of a qualifying pair (its derivatives were needed to know that).
    The last pass is usually the final forward only.
    """
    from jsma_fast.result import NO_VALID_PAIR

    passes = []
    for k in range(int(iterations.max().item()) + 1 if iterations.numel() else 0):
        rows = int((iterations >= k).sum())
        steps = int((iterations > k).sum()) + int(
            ((iterations == k) & (stop_code == NO_VALID_PAIR)).sum()
        )
        passes.append((rows, steps > 0))
    return passes


def replay_floor(
    model: torch.nn.Module,
    x: torch.Tensor,
    forward_rows: Sequence[int],
    derivative_rows: Sequence[int],
    classes: torch.Tensor,
    jacobian: str = "logits",
    vjps: int = 2,
) -> float:
    """Seconds of the gradient work alone: per step, a forward of the rows the attack
    forwarded and, where any row took derivatives, ``vjps`` vector-Jacobian products on that
    batch (class-``classes`` cotangent, then all-ones) of the logits or, with ``jacobian=
    "probs"``, of the softmax."""
    start = time.perf_counter()
    for rows, derivatives in zip(forward_rows, derivative_rows):
        batch = x[:rows]
        if not derivatives:
            with torch.no_grad():
                model(batch)
            continue
        inputs = batch.detach().requires_grad_(True)
        outputs = model(inputs)
        if jacobian == "probs":
            outputs = torch.softmax(outputs, dim=1)
        one_hot = torch.nn.functional.one_hot(classes[:rows], outputs.shape[1]).to(outputs.dtype)
        torch.autograd.grad(outputs, inputs, one_hot, retain_graph=vjps == 2)
        if vjps == 2:
            torch.autograd.grad(outputs, inputs, torch.ones_like(outputs))
    return time.perf_counter() - start


def profile_attack(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor,
    theta: float,
    gamma: float,
) -> dict[str, float]:
    """One run of the default attack with its loop traced (``jsma_fast.trace.AttackTrace``):
    seconds in the forward passes, in the derivatives (the VJPs and their tensor work), in
    the saliency searches, and in everything else (clean forward, target planning, domain and
    stop bookkeeping, updates)."""
    from jsma_fast import JSMA
    from jsma_fast.trace import AttackTrace

    trace = AttackTrace()
    start = time.perf_counter()
    JSMA(theta=theta, gamma=gamma)(model, x, target, y=y, trace=trace)
    total = time.perf_counter() - start
    spent = {
        "derivatives_s": trace.seconds["forward"] + trace.seconds["derivatives"],
        "pair_search_s": trace.seconds["search"],
        "total_s": total,
    }
    spent["other_s"] = total - spent["derivatives_s"] - spent["pair_search_s"]
    return spent
