"""What the crafting loop did, step by step: for benchmarks and profiling.

Pass an :class:`AttackTrace` to an attack call (``attack(model, x, "next", trace=trace)``) and
the loop records, per step, how many rows it forwarded and how many took derivatives, and the
wall time of the forward passes, the derivatives and the searches. With
``keep_search_inputs=True`` it also keeps a copy of every search's inputs, so that a benchmark
can replay them (e.g. against the exhaustive search) without touching the attack.

On CUDA inputs the sections are timed after a device synchronisation, so that the times are
the device's; that synchronisation is the only cost of tracing.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

import torch


@dataclass
class SearchInputs:
    """A copy of one step's search: what the native kernel was called with."""

    alpha: torch.Tensor  #: (k, M) float32, in increase form when ``mode == "increase"``
    beta: Optional[torch.Tensor]  #: (k, M) float32, None for the top-2 rule
    domain: torch.Tensor  #: (k, M) bool
    mode: str  #: "increase" or "decrease"
    rule: str  #: "map" or "top2"
    pairs: bool


@dataclass
class AttackTrace:
    """Per-step record of one or more attack calls (appended to, never reset)."""

    keep_search_inputs: bool = False
    forward_rows: List[int] = field(default_factory=list)  #: rows forwarded, per step
    derivative_rows: List[int] = field(default_factory=list)  #: rows that took derivatives
    seconds: Dict[str, float] = field(
        default_factory=lambda: {"forward": 0.0, "derivatives": 0.0, "search": 0.0}
    )  #: total wall time per section
    durations: Dict[str, List[float]] = field(
        default_factory=lambda: {"forward": [], "derivatives": [], "search": []}
    )  #: wall time of each call of a section, in order
    searches: List[SearchInputs] = field(default_factory=list)

    @contextmanager
    def section(self, name: str, device: torch.device) -> Iterator[None]:
        """Adds the wall time of the block to ``seconds[name]``."""
        _synchronize(device)
        start = time.perf_counter()
        try:
            yield
        finally:
            _synchronize(device)
            elapsed = time.perf_counter() - start
            self.seconds[name] += elapsed
            self.durations[name].append(elapsed)

    @property
    def steps(self) -> int:
        return len(self.forward_rows)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def maybe_section(trace: Optional[AttackTrace], name: str, device: torch.device) -> Iterator[None]:
    """``trace.section(name)`` when tracing, else nothing."""
    if trace is None:
        yield
        return
    with trace.section(name, device):
        yield
