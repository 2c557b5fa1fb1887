"""The summary of an :func:`~jsma_fast.runner.attack_dataset` run: its headline figures over
the rows the model classified correctly before the attack, the other rows counted apart.

A row the model already gets wrong is no evidence of the attack's strength: untargeted, it is
a "success" at 0 features and 0 iterations. Success rate, L0 and iterations are therefore
given over the correctly classified rows only (``*_clean_correct``); the misclassified rows
are counted (``result_rows_misclassified_before_attack``) and left out of those figures.
``success_rate_all_rows`` keeps the figure over every row, for comparison with tools that
count them.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import numpy as np

from ..result import STOP_REASONS
from .columns import Columns

#: What each key of the summary means (also written beside ``summary.json`` users read).
KEYS = {
    "data_set_rows": "data set rows attacked (skipped rows excluded)",
    "result_rows": "rows of results.npz: one per attacked data set row, C - 1 with 'all'",
    "result_rows_clean_correct": "result rows whose source the model classified correctly "
    "before the attack: the rows of the *_clean_correct figures",
    "result_rows_misclassified_before_attack": "result rows whose source the model already "
    "misclassified: excluded from the *_clean_correct figures",
    "clean_accuracy": "share of result rows whose source the model classified correctly",
    "success_rate_clean_correct": "success rate over result_rows_clean_correct",
    "mean_l0_fraction_success_clean_correct": "mean fraction of features changed, over the "
    "successful correctly classified rows",
    "mean_l0_success_clean_correct": "mean number of features changed, over the same rows",
    "mean_iterations_clean_correct": "mean iterations over result_rows_clean_correct",
    "success_rate_all_rows": "success rate over every result row, misclassified ones included "
    "(their untargeted successes cost nothing)",
    "rows_skipped_target_is_true_class": "data set rows not attacked because their true class "
    "is the explicit target given for them",
    "seconds": "attack time of this run",
    "data_set_rows_computed": "data set rows attacked by this run (resumed chunks excluded)",
    "data_set_rows_per_second": "data_set_rows_computed / seconds",
    "processes": "processes of this run",
}


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


class Summary:
    """Running totals over chunks of columns (constant memory).

    Args:
        skippable: data set rows when the targets are explicit (rows whose true class is
            their target are then not attacked, and counted as the rows no chunk holds);
            None otherwise.
    """

    def __init__(self, skippable: Optional[int] = None) -> None:
        self.skippable = skippable
        self.sources = self.rows = self.success = self.correct = 0
        self.success_correct = self.iterations_correct = 0
        self.l0_fraction_correct = 0.0
        self.l0_correct = 0
        self.stops = np.zeros(len(STOP_REASONS), dtype=np.int64)

    def add(self, cols: Columns) -> None:
        """Adds one chunk's columns (those of :data:`~jsma_fast.runner.COLUMNS` and
        ``clean_predicted``)."""
        ok = cols["success"].astype(bool)
        correct = cols["clean_predicted"] == cols["true_class"]
        won = ok & correct
        self.rows += int(ok.size)
        self.sources += int(np.unique(cols["source_index"]).size)
        self.success += int(ok.sum())
        self.correct += int(correct.sum())
        self.success_correct += int(won.sum())
        self.l0_fraction_correct += float(cols["l0_fraction"][won].sum())
        self.l0_correct += int(cols["l0"][won].sum())
        self.iterations_correct += int(cols["iterations"][correct].sum())
        codes = cols["stop_code"].astype(np.int64)
        self.stops += np.bincount(
            codes[(codes >= 0) & (codes < len(STOP_REASONS))], minlength=len(STOP_REASONS)
        )[: len(STOP_REASONS)]

    def finish(self, seconds: float, computed_rows: int, processes: int) -> Dict[str, Any]:
        """The summary: the keys of :data:`KEYS` (in that order, NaN where a figure has no
        row), then ``stopped_<reason>`` counts over every result row."""
        out: Dict[str, Any] = {
            "data_set_rows": self.sources,
            "result_rows": self.rows,
            "result_rows_clean_correct": self.correct,
            "result_rows_misclassified_before_attack": self.rows - self.correct,
            "clean_accuracy": _ratio(self.correct, self.rows),
            "success_rate_clean_correct": _ratio(self.success_correct, self.correct),
            "mean_l0_fraction_success_clean_correct": _ratio(
                self.l0_fraction_correct, self.success_correct
            ),
            "mean_l0_success_clean_correct": _ratio(self.l0_correct, self.success_correct),
            "mean_iterations_clean_correct": _ratio(self.iterations_correct, self.correct),
            "success_rate_all_rows": _ratio(self.success, self.rows),
            "rows_skipped_target_is_true_class": (
                0 if self.skippable is None else self.skippable - self.sources
            ),
            "seconds": seconds,
            "data_set_rows_computed": computed_rows,
            "data_set_rows_per_second": _ratio(computed_rows, seconds),
            "processes": processes,
        }
        out.update({f"stopped_{name}": int(n) for name, n in zip(STOP_REASONS, self.stops)})
        return out


def summary_lines(s: Dict[str, Any]) -> list:
    """The summary as the few lines a command prints."""

    def pct(v: Any) -> str:
        return "n/a" if v is None or v != v else f"{v:.2%}"

    def num(v: Any, digits: int = 1) -> str:
        return "n/a" if v is None or v != v else f"{v:.{digits}f}"

    wrong = s["result_rows_misclassified_before_attack"]
    lines = [
        f"{s['result_rows_clean_correct']} of {s['result_rows']} result rows classified "
        f"correctly before the attack (clean accuracy {pct(s['clean_accuracy'])}); over "
        f"those: success {pct(s['success_rate_clean_correct'])}, mean L0 of successes "
        f"{pct(s['mean_l0_fraction_success_clean_correct'])} "
        f"({num(s['mean_l0_success_clean_correct'])} features), mean iterations "
        f"{num(s['mean_iterations_clean_correct'])}",
        f"{wrong} result rows already misclassified before the attack: excluded from these "
        f"figures (success over every row, them included: {pct(s['success_rate_all_rows'])})",
    ]
    skipped = s.get("rows_skipped_target_is_true_class", 0)
    if skipped:
        lines.append(f"rows skipped: {skipped} whose true class is the target (not attacked)")
    lines.append(
        "stop reasons: "
        + ", ".join(f"{k[len('stopped_') :]} {s[k]}" for k in s if k.startswith("stopped_"))
    )
    lines.append(
        f"this run: {s['data_set_rows_computed']} data set rows in {s['seconds']:.1f} s "
        f"({num(s['data_set_rows_per_second'])} row/s, data set rows) on {s['processes']} "
        f"process(es); results.npz holds {s['result_rows']} result rows"
    )
    return lines


class NearChanceWarning(RuntimeWarning):
    """The model's clean accuracy on the attacked rows is near chance (:func:`near_chance`)."""


#: Clean accuracy below this many times chance (1 / classes) is "near chance".
NEAR_CHANCE = 1.5


def near_chance(s: Dict[str, Any], classes: int) -> Optional[str]:
    """A warning when the model's clean accuracy on the attacked rows is near chance (below
    :data:`NEAR_CHANCE` / ``classes``): an untrained model, weights that were not loaded, or
    data the model was not made for (another scaling, another channel order). None otherwise.
    """
    accuracy = s.get("clean_accuracy")
    if classes < 2 or accuracy is None or accuracy != accuracy:
        return None
    if accuracy >= NEAR_CHANCE / classes:
        return None
    return (
        f"the model classifies only {accuracy:.1%} of the attacked rows correctly, near chance "
        f"for {classes} classes ({1 / classes:.1%}): is it trained, were its weights loaded, "
        "and is the data scaled as in its training? Its figures say little about the attack"
    )
