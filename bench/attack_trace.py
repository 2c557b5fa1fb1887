"""Records what the attack's pair searches do, without changing the attack.

``JSMA`` calls ``jsma_fast.ops.select_pairs`` once per step; :class:`PairSearchTrace` swaps
that function for a wrapper that times each call, counts the survivors of the pruned search
(``return_candidates=True``) and, optionally, checks the answer against the exhaustive
search on the same inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, List

import numpy as np
import torch

from jsma_fast import ops


@dataclass
class PairSearchTrace:
    compare_exact: bool = False
    seconds: List[float] = field(default_factory=list)
    survivors: List[np.ndarray] = field(default_factory=list)
    rows: int = 0
    same_pair: int = 0
    same_score: int = 0

    def __enter__(self) -> "PairSearchTrace":
        self._original = ops.select_pairs

        def traced(alpha: Any, beta: Any, domain: Any = None, **kwargs: Any) -> Any:
            kwargs.pop("return_candidates", None)
            start = time.perf_counter()
            selection, candidates = self._original(alpha, beta, domain, return_candidates=True, **kwargs)
            self.seconds.append(time.perf_counter() - start)
            self.survivors.append(np.asarray(candidates).reshape(-1))
            if self.compare_exact:
                exact = self._original(alpha, beta, domain, **{**kwargs, "method": "exact"})
                self.rows += int(np.asarray(selection.valid).size)
                self.same_score += int(torch.as_tensor(selection.score).eq(torch.as_tensor(exact.score)).sum())
                same = (torch.as_tensor(selection.p) == torch.as_tensor(exact.p)) & (
                    torch.as_tensor(selection.q) == torch.as_tensor(exact.q))
                self.same_pair += int(same.sum())
            return selection

        ops.select_pairs = traced
        return self

    def __exit__(self, *exc: Any) -> None:
        ops.select_pairs = self._original

    def survivor_counts(self) -> np.ndarray:
        return np.concatenate(self.survivors) if self.survivors else np.zeros(0, dtype=np.int64)
