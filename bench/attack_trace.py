"""Replays the pair searches an attack recorded (``AttackTrace(keep_search_inputs=True)``):
how many features the pruned search kept, and whether the exhaustive search on the same
inputs gives the same score and pair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from jsma_fast import ops
from jsma_fast.trace import AttackTrace


@dataclass
class SearchReplay:
    survivors: np.ndarray  #: features the pruned search ran over, per searched row
    rows: int = 0  #: rows compared with the exhaustive search
    same_score: int = 0
    same_pair: int = 0


def replay_pair_searches(trace: AttackTrace, compare_exact: bool = False) -> SearchReplay:
    """Runs every recorded pair search again with ``method="pruned"`` (counting survivors)
    and, optionally, ``method="exact"`` on the same inputs."""
    survivors = []
    replay = SearchReplay(np.zeros(0, dtype=np.int64))
    for search in trace.searches:
        if search.rule != "map" or not search.pairs:
            continue
        args = (search.alpha, search.beta, search.domain)
        pruned, kept = ops.select_pairs(
            *args, mode=search.mode, method="pruned", return_candidates=True
        )
        survivors.append(np.asarray(kept).reshape(-1))
        if compare_exact:
            exact = ops.select_pairs(*args, mode=search.mode, method="exact")
            replay.rows += int(pruned.valid.numel())
            replay.same_score += int(torch.as_tensor(pruned.score).eq(exact.score).sum())
            same = (pruned.p == exact.p) & (pruned.q == exact.q)
            replay.same_pair += int(same.sum())
    if survivors:
        replay.survivors = np.concatenate(survivors)
    return replay
