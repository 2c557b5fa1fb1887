"""Shared pieces of the kernel benchmarks: seeded inputs, timing, and peak-memory readings."""

from __future__ import annotations

import platform
import re
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

MIB = 1024**2
GIB = 1024**3


def make_inputs(batch: int, features: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Seeded benchmark inputs, identical in every process for the same arguments.

    Returns:
        ``alpha``, ``beta``: ``(batch, features)`` float32 CPU tensors, standard normal (finite,
        so that the broadcast selection's multiply-by-mask idiom is exact on them);
        ``domain``: ``(batch, features)`` bool, all True (the search domain at the start of an
        attack), passed explicitly so both implementations pay for the masking.
    """
    rng = np.random.default_rng(seed)
    alpha = torch.from_numpy(rng.standard_normal((batch, features), dtype=np.float32))
    beta = torch.from_numpy(rng.standard_normal((batch, features), dtype=np.float32))
    domain = torch.ones((batch, features), dtype=torch.bool)
    return alpha, beta, domain


def num_pairs(batch: int, features: int) -> int:
    """Pair evaluations of one exhaustive search: ``batch * M * (M - 1) / 2``."""
    return batch * features * (features - 1) // 2


@dataclass
class Timing:
    """Wall times of the timed calls (warm-up excluded), in seconds."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)


def time_calls(fn: Callable[[], object], repeats: int, budget_s: float) -> Timing:
    """Calls ``fn`` once to warm up, then up to ``repeats`` times (at least 3, or fewer than
    ``repeats`` when the timed calls have used ``budget_s`` seconds), timing each call."""
    fn()
    times: list[float] = []
    while len(times) < repeats and (len(times) < 3 or sum(times) < budget_s):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return Timing(times)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field} field")
    return int(match.group(1))


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS counter (VmHWM) to the current RSS, so that a later
    :func:`peak_rss_bytes` sees only what happens from now on. False where Linux refuses
    (the peak then also covers imports and input creation)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def rss_bytes() -> int:
    """Resident set size of this process now."""
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since start or the last :func:`reset_peak_rss`."""
    return _status_kib("VmHWM") * 1024


def format_bytes(n: float) -> str:
    """``n`` bytes as GiB (one decimal) from 1 GiB up, else MiB."""
    if n >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / MIB:.0f} MiB"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def correct_digits(model: torch.nn.Module, split: object, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` held-out digits of ``split`` (a ``HoldoutSplit``) that ``model``
    classifies correctly, and their labels: ``(n, 1, 28, 28)`` float32 and ``(n,)`` int64."""
    with torch.no_grad():
        correct = model(split.test_x).argmax(dim=1) == split.test_y
    x = split.test_x[correct][:n].contiguous()
    y = split.test_y[correct][:n].contiguous()
    if x.shape[0] < n:
        raise ValueError(f"only {x.shape[0]} held-out digits are classified correctly, asked for {n}")
    return x, y
