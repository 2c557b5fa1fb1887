"""Each attack's outputs scored with the same model, compared sample by sample with the
references' (torchattacks, advertorch, ART), and the differences sorted by their cause."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from bench.attacks.registry import ATTACKS, JSMA_FAST, REFERENCES
from bench.common import equal_count

CSV_FIELDS = (
    "attack",
    "library",
    "status",
    "samples",
    "threads",
    "runs",
    "wall_s",
    "samples_per_s",
    "peak_rss_increase_bytes",
    "success_rate",
    "mean_l0_fraction_success",
    "equal_torchattacks",
    "equal_advertorch",
    "equal_art",
    "floor_s",
    "time_over_floor",
)


@dataclass
class Row:
    """One attack's measurements and scores."""

    attack: str
    status: str = "ok"
    samples: int = 0
    threads: int = 0
    times: list[float] = field(default_factory=list)
    peak_rss_increase_bytes: int = 0
    success_rate: float = float("nan")
    mean_l0_fraction: float = float("nan")
    equal: dict[str, Optional[int]] = field(default_factory=dict)  # reference -> equal outputs
    floor_s: Optional[float] = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_worker(cls, name: str, raw: dict[str, Any]) -> "Row":
        """The row of what a worker saved (or of its error)."""
        if "error" in raw:
            return cls(name, status=raw["error"])
        return cls(
            name,
            samples=raw["samples"],
            threads=raw["threads"],
            times=raw["times"],
            peak_rss_increase_bytes=raw["peak_rss_increase_bytes"],
            floor_s=raw.get("floor_s"),
            raw=raw,
        )

    @property
    def wall_s(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.wall_s if self.times else float("nan")

    @property
    def library(self) -> str:
        return ATTACKS[self.attack][0]

    def csv_record(self) -> dict[str, Any]:
        ok = self.status == "ok"
        return {
            "attack": self.attack,
            "library": self.library,
            "status": self.status,
            "samples": self.samples,
            "threads": self.threads,
            "runs": len(self.times),
            "wall_s": f"{self.wall_s:.4f}" if ok else "",
            "samples_per_s": f"{self.samples_per_s:.3f}" if ok else "",
            "peak_rss_increase_bytes": self.peak_rss_increase_bytes if ok else "",
            "success_rate": f"{self.success_rate:.4f}" if ok else "",
            "mean_l0_fraction_success": f"{self.mean_l0_fraction:.5f}" if ok else "",
            "equal_torchattacks": _opt(self.equal.get("torchattacks")),
            "equal_advertorch": _opt(self.equal.get("advertorch")),
            "equal_art": _opt(self.equal.get("art")),
            "floor_s": "" if self.floor_s is None else f"{self.floor_s:.4f}",
            "time_over_floor": "" if self.floor_s is None else f"{self.wall_s / self.floor_s:.3f}",
        }


def _opt(value: Optional[int]) -> str:
    return "" if value is None else str(value)


def score(row: Row, model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> None:
    """Success rate and mean L0 fraction (over successful samples) of ``row``'s outputs,
    computed here with the same model for every library."""
    x_adv = row.raw["x_adv"]
    n = x_adv.shape[0]
    with torch.no_grad():
        success = model(x_adv).argmax(dim=1) == target[:n]
    l0 = (x_adv != x[:n]).flatten(1).sum(dim=1).double() / x[0].numel()
    row.success_rate = success.double().mean().item()
    row.mean_l0_fraction = l0[success].mean().item() if success.any() else float("nan")
    row.raw["success"] = success
    row.raw["l0"] = (x_adv != x[:n]).flatten(1).sum(dim=1)


Explanations = dict[tuple[str, str], dict[str, int]]


def compare(rows: dict[str, Row], x: torch.Tensor, budget: int) -> Explanations:
    """Counts each completed row's outputs equal to each reference's (into ``row.equal`` and
    ``row.raw["compared"]``); returns, per (jsma-fast configuration, reference), the causes
    of the differences."""
    explanations: Explanations = {}
    for row in rows.values():
        if row.status != "ok":
            continue
        row.raw["compared"] = {}
        for ref in REFERENCES:
            other = rows.get(ref)
            if other is None or other.status != "ok" or ref == row.attack:
                continue
            row.equal[ref] = equal_count(row.raw["x_adv"], other.raw["x_adv"])
            row.raw["compared"][ref] = min(row.samples, other.samples)
            if row.attack in JSMA_FAST:
                if ref == "torchattacks":
                    explanations[(row.attack, ref)] = explain_torchattacks(row, other, x, budget)
                elif ref == "advertorch":
                    explanations[(row.attack, ref)] = explain_advertorch(
                        row, other, rows.get("jsma_fast_advertorch")
                    )
    return explanations


def default_vs_exact(rows: dict[str, Row]) -> Optional[tuple[int, int]]:
    """(equal, compared) outputs of the default configuration (the pruned search) and the
    cleverhans preset (the exhaustive search; otherwise the same options), when both ran."""
    default, exact = rows.get("jsma_fast"), rows.get("jsma_fast_cleverhans")
    if not (default and exact and default.status == exact.status == "ok"):
        return None
    return (
        equal_count(default.raw["x_adv"], exact.raw["x_adv"]),
        min(default.samples, exact.samples),
    )


def explain_torchattacks(mine: Row, ref: Row, x: torch.Tensor, budget: int) -> dict[str, int]:
    """Sorts the samples where a jsma-fast output differs from torchattacks' by the first
    semantic difference visible in the outputs:

    * ``ceil budget``: torchattacks changed 2 * ceil(M * gamma / 2) pixels, one iteration more
      than floor(M * gamma / 2) allows;
    * ``x in [0.99, 1)``: jsma-fast changed a pixel torchattacks' domain (x < 0.99) excludes;
    * ``no pair``: jsma-fast stopped without a qualifying pair (torchattacks then changes
      feature 0 and goes on);
    * ``other pair at some step``: none of these; the two picked a different pair at some
      step: alpha and beta differ in the last bits (torchattacks sums ten separate backward
      passes, jsma-fast takes one VJP of the summed outputs), a tie, or, for the advertorch
      preset, an iteration spent on a pixel already at 1.0.
    """
    flat = x.flatten(1)

    def cause(i: int, a: torch.Tensor) -> str:
        near_one = (flat[i] >= 0.99) & (flat[i] < 1.0)
        if int(ref.raw["l0"][i]) > 2 * budget:
            return "ceil budget"
        if bool(((a.flatten() != flat[i]) & near_one).any()):
            return "x in [0.99, 1)"
        return _no_pair_or_other(mine, i)

    return _tally(mine, ref, cause)


def explain_advertorch(mine: Row, ref: Row, preset: Optional[Row]) -> dict[str, int]:
    """Sorts the samples where a jsma-fast output differs from advertorch's:

    * ``start domain``: ``JSMA.preset("advertorch")`` (``preset``), whose only semantic
      difference from the other configurations is a search domain that starts full, equals
      advertorch on this sample: advertorch spent an iteration on a pixel already at 1.0 (a
      no-op the output cannot show), so it picked differently from then on;
    * ``no pair``: jsma-fast stopped without a qualifying pair;
    * ``other pair at some step``: otherwise (float rounding of beta, which advertorch sums
      from ten per-class gradients of the whole batch, or a tie).
    """

    def cause(i: int, a: torch.Tensor) -> str:
        if (
            preset is not None
            and preset is not mine
            and torch.equal(preset.raw["x_adv"][i], ref.raw["x_adv"][i])
        ):
            return "start domain"
        return _no_pair_or_other(mine, i)

    return _tally(mine, ref, cause)


def _no_pair_or_other(mine: Row, i: int) -> str:
    from jsma_fast.result import NO_VALID_PAIR

    return (
        "no pair" if int(mine.raw["stop_code"][i]) == NO_VALID_PAIR else "other pair at some step"
    )


def _tally(mine: Row, ref: Row, cause: Callable[[int, torch.Tensor], str]) -> dict[str, int]:
    """How many samples of the common prefix differ by each ``cause(i, mine's output)``."""
    n = min(mine.raw["x_adv"].shape[0], ref.raw["x_adv"].shape[0])
    counts: dict[str, int] = {}
    for i in range(n):
        a = mine.raw["x_adv"][i]
        if torch.equal(a, ref.raw["x_adv"][i]):
            continue
        reason = cause(i, a)
        counts[reason] = counts.get(reason, 0) + 1
    return counts
