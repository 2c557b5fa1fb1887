"""The files of a ``jsma-fast reproduce`` report directory: ``results.npz`` (every column and
array), ``summary.csv`` (one row per mode), ``pairs.csv`` (one row per class pair) and
``report.md``."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any, Dict

import numpy as np

from .metrics import EvaluationMetrics
from .runs import AttackRuns

PAIR_COLUMNS = (
    "mode",
    "source",
    "target",
    "rows",
    "success_rate",
    "mean_distortion",
    "hardness",
    "mean_adversarial_distance",
)


def write_files(out: Path, runs: AttackRuns, metrics: EvaluationMetrics, report: str) -> None:
    """Writes ``results.npz``, ``summary.csv``, ``pairs.csv`` and ``report.md`` into ``out``
    (an existing directory)."""
    np.savez_compressed(out / "results.npz", **raw_arrays(runs, metrics))
    with open(out / "summary.csv", "w", newline="") as fh:
        fields = [f.name for f in dataclasses.fields(metrics.modes[0])]
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(dataclasses.asdict(m) for m in metrics.modes)
    with open(out / "pairs.csv", "w", newline="") as fh:
        _write_pairs(csv.writer(fh), metrics)
    (out / "report.md").write_text(report)


def raw_arrays(runs: AttackRuns, metrics: EvaluationMetrics) -> Dict[str, np.ndarray]:
    """The contents of ``results.npz``: ``<mode>/<column>`` for every attack, then the
    adversarial distances, the detector scores, the hardness and the attacked digits."""
    raw: Dict[str, np.ndarray] = {}
    named = [(stage, cols) for stage, cols in runs.stages.items()]
    named += [(f"variant_{name}", cols) for name, cols in runs.variants.items()]
    if runs.other_columns is not None:
        named.append(("other_model_increase", runs.other_columns))
    if runs.adv_after is not None:
        named.append(("adv_after", runs.adv_after))
    for prefix, cols in named:
        raw.update({f"{prefix}/{k}": v for k, v in cols.items()})
    raw.update(
        {
            "adversarial_distance": metrics.distances,
            "detector/clean": metrics.clean_scores,
            "hardness_increase": metrics.hardness,
            "hardness_gammas": np.asarray(metrics.hardness_gammas),
            "digits/x": runs.x.numpy(),
            "digits/y": runs.y.numpy(),
        }
    )
    for stage, d in metrics.detector.items():
        raw[f"detector/{stage}"] = d.scores
    return raw


def _write_pairs(w: Any, metrics: EvaluationMetrics) -> None:
    """One row per (mode, source, target) with attacked rows; hardness for increase only."""
    w.writerow(PAIR_COLUMNS)
    c, hard, mean_a = metrics.num_classes, metrics.hardness, metrics.mean_distance
    for stage, t in metrics.tables.items():
        for s in range(c):
            for tt in range(c):
                if s != tt and t.count[s, tt]:
                    w.writerow(
                        [
                            stage,
                            s,
                            tt,
                            int(t.count[s, tt]),
                            f"{t.success_rate[s, tt]:.6f}",
                            f"{t.mean_distortion[s, tt]:.6f}",
                            f"{hard[s, tt]:.6f}" if stage == "increase" else "",
                            f"{mean_a[s, tt]:.6f}",
                        ]
                    )
