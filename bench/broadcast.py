"""The pair selection the way public JSMA implementations compute it: dense B x M x M tensors.

This is the baseline of the kernel benchmarks, written in the style of the advertorch and
cleverhans attacks: broadcast every pair sum into a ``(B, M, M)`` tensor, build boolean masks for
the search domain, ``p != q`` and the sign conditions, multiply the scores by the mask and take
the flat arg-max. It returns the kernel contract's result (p < q, score, valid), so the
benchmark can assert that both give the same answer on the inputs it times.

Valid for finite inputs only (the benchmark's): with NaN or inf, ``0 * score`` in the
multiply-by-mask idiom is NaN and the arg-max picks it, as in the public implementations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: float32 ``(B, M, M)`` tensors alive at once at the peak of :func:`broadcast_select_pairs`:
#: A, B, the product A * B and its negation (``-(A * B)`` keeps both until it returns).
FLOAT_TENSORS_AT_PEAK = 4
#: bool ``(B, M, M)`` tensors alive at that peak: the combined mask.
BOOL_TENSORS_AT_PEAK = 1


@dataclass(frozen=True)
class BroadcastMemory:
    """Memory of the broadcast selection at one ``(B, M)``, in bytes."""

    per_tensor: int  #: one float32 (B, M, M) tensor: B * M * M * 4
    float_tensors: int  #: float32 (B, M, M) tensors held at the peak
    bool_tensors: int  #: bool (B, M, M) tensors held at the peak (1 byte per element)

    @property
    def peak(self) -> int:
        """Bytes held at the peak (the (M, M) off-diagonal mask and the outputs not counted)."""
        return (self.float_tensors + self.bool_tensors / 4) * self.per_tensor


def broadcast_memory(batch: int, features: int) -> BroadcastMemory:
    """What :func:`broadcast_select_pairs` needs at ``(batch, features)``."""
    return BroadcastMemory(
        per_tensor=batch * features * features * 4,
        float_tensors=FLOAT_TENSORS_AT_PEAK,
        bool_tensors=BOOL_TENSORS_AT_PEAK,
    )


def broadcast_select_pairs(
    alpha: torch.Tensor,
    beta: torch.Tensor,
    domain: torch.Tensor,
    increase: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best pair per sample through dense ``(B, M, M)`` tensors.

    Args:
        alpha: ``(B, M)`` float32, derivative of the target class per feature.
        beta: ``(B, M)`` float32, summed derivative of the other classes.
        domain: ``(B, M)`` bool, features that may be chosen.
        increase: ``True`` for the increase mode (A > 0, B < 0), ``False`` for decrease.

    Returns:
        ``p``, ``q`` (int64, p < q, -1 when not valid), ``score`` (float32, 0 when not valid),
        ``valid`` (bool), each ``(B,)``.
    """
    batch, m = alpha.shape
    # Row p, column q holds the pair (p, q): the first arg-max in row-major order is the
    # contract's tie rule, and since the matrices are symmetric it always has p < q.
    pair_alpha = alpha[:, :, None] + alpha[:, None, :]
    pair_beta = beta[:, :, None] + beta[:, None, :]

    if increase:
        mask = (pair_alpha > 0) & (pair_beta < 0)
    else:
        mask = (pair_alpha < 0) & (pair_beta > 0)
    off_diagonal = ~torch.eye(m, dtype=torch.bool, device=alpha.device)
    mask &= off_diagonal
    mask &= domain[:, :, None] & domain[:, None, :]

    score = -(pair_alpha * pair_beta)
    del pair_alpha, pair_beta
    score *= mask
    del mask

    best = score.view(batch, m * m).argmax(dim=1)
    best_score = score.view(batch, m * m).gather(1, best[:, None])[:, 0]
    valid = best_score > 0
    p = torch.where(valid, best // m, -1)
    q = torch.where(valid, best % m, -1)
    return p, q, torch.where(valid, best_score, 0.0), valid
