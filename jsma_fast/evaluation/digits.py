"""Which held-out digits ``jsma-fast reproduce`` attacks: the first ``limit`` correctly
classified ones, stratified by class when ``limit`` allows every class to appear, so that a
small run still fills every row of the per-class heatmaps and of the class grid."""

from __future__ import annotations

from typing import List, Optional

import torch


def stratified_first(
    candidates: torch.Tensor, labels: torch.Tensor, limit: Optional[int], classes: int
) -> List[int]:
    """``limit`` of ``candidates`` (indices into ``labels``, in data order), taken round-robin
    over the classes (the first of each class, then the second of each, ...) when
    ``limit >= classes``, else the first ``limit``; all of them for ``limit=None``. Returned
    in data order.

    Args:
        candidates: (K,) int indices, ascending.
        labels: (N,) int classes of the indexed rows.
        limit: how many to keep (None: every candidate).
        classes: C.
    """
    index = candidates.tolist()
    if limit is None or limit >= len(index):
        return index
    if limit < classes:
        return index[:limit]
    per_class: List[List[int]] = [[] for _ in range(classes)]
    for i in index:
        c = int(labels[i])
        if 0 <= c < classes:
            per_class[c].append(i)
    chosen: List[int] = []
    rank = 0
    while len(chosen) < limit:
        for group in per_class:
            if rank < len(group) and len(chosen) < limit:
                chosen.append(group[rank])
        rank += 1
    return sorted(chosen)
