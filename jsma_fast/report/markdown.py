"""The text of an attack report (``report.md``): what ran, how strong the attack was on the
rows the model classified correctly, and where the model is weak, per class and per pair.

:func:`render` only formats: the numbers come from ``summary.json`` and
:mod:`~jsma_fast.report.tables`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .tables import Group

#: A figure: its title and its PNG's path relative to the report.
Figure = Tuple[str, str]
#: L0 budgets (fractions of the features) quoted in the text.
QUOTED_BUDGETS = (0.01, 0.02, 0.05)
#: L0 budgets (features) quoted for the minimum-L0 mode, as in docs/sparsest.md.
QUOTED_FEATURES = (5, 10, 20)


@dataclass
class SparsestMeasures:
    """What the report adds for a run of the minimum-L0 mode.

    Attributes:
        mode: the mode's description in the summary (``run["mode"]``: members, settings).
        within: success within each of :data:`QUOTED_FEATURES` changed features.
        members: per member, the successful rows whose output it gave and their mean L0
            (None when the results lack the ``member`` column).
    """

    mode: Dict[str, Any]
    within: Sequence[float]
    members: Optional[List[Tuple[int, float]]]


@dataclass
class Measures:
    """What :func:`render` shows besides the summary.

    Attributes:
        by_class: one group per true class; by_target: per target (targeted runs), else [].
        pairs: (C, C) success per (source, target) (targets "all"), else None.
        l0: the L0 fractions of the successful, correctly classified rows.
        quoted: success within each of :data:`QUOTED_BUDGETS`.
        sources: data set rows behind the correctly classified result rows.
        features: features per sample.
        figures: the figures shown.
        sparsest: the minimum-L0 mode's measures (None for other attacks).
    """

    by_class: List[Group]
    by_target: List[Group]
    pairs: Optional[np.ndarray]
    l0: np.ndarray
    quoted: Sequence[float]
    sources: int
    features: int
    figures: List[Figure] = field(default_factory=list)
    sparsest: Optional[SparsestMeasures] = None


def pct(v: Any, digits: int = 1) -> str:
    """``v`` as a percentage; ``n/a`` for None or NaN."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{100 * v:.{digits}f}%"


def num(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def interval(p: Any, n: int) -> str:
    """The Wilson 95% interval of a rate ``p`` over ``n`` independent samples (sound at 0%
    and 100% too, unlike the normal approximation)."""
    if not n or p is None or p != p:
        return "n/a"
    z2 = 1.96**2
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = 1.96 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return f"{100 * max(0.0, center - half):.1f}\u2013{100 * min(1.0, center + half):.1f}%"


def render(
    summary: Dict[str, Any], m: Measures, name: Callable[[int], str], title: Optional[str] = None
) -> str:
    """The text of ``report.md``.

    Args:
        summary: the run's ``summary.json``.
        m: the report's measures.
        name: a class's name (its index, or "3 (dress)").
        title: the report's title (default: what was attacked).
    """
    run = summary.get("run", {})
    lines = [f"# {title or _title(run, m.sparsest is not None)}", ""]
    if summary.get("warning"):
        lines += [f"> **Warning:** {summary['warning']}.", ""]
    lines += _strength(summary, m)
    lines += _sparsest(summary, m)
    lines += _weak(summary, m, name)
    lines += _tables(m, name)
    lines += _what_ran(summary, run)
    lines += _figures(m.figures)
    lines += _files(run)
    return "\n".join(lines) + "\n"


def _title(run: Dict[str, Any], sparsest: bool) -> str:
    model = run.get("model", "a model")
    kind = "Minimum-L0 (sparsest)" if sparsest else "JSMA"
    return f"{kind} attack report: {model}, targets {run.get('targets', '?')!r}"


def _member(member: Dict[str, Any]) -> str:
    options = ", ".join(f"{k} {v}" for k, v in (member.get("options") or {}).items())
    return f"{member.get('name', '?')} ({options})" if options else str(member.get("name", "?"))


def _sparsest(s: Dict[str, Any], m: Measures) -> List[str]:
    """The minimum-L0 mode: what it ran, the L0 in features as docs/sparsest.md quotes it,
    and which member gave the rows their outputs."""
    if m.sparsest is None:
        return []
    mode, n = m.sparsest.mode, s["result_rows_clean_correct"]
    members = mode.get("members") or []
    median = float(np.median(m.l0)) * m.features if m.l0.size else math.nan
    within = " | ".join(pct(r) for r in m.sparsest.within)
    lines = [
        "## Minimum-L0 mode",
        "",
        "This run is the minimum-L0 mode (`jsma-fast attack --sparsest`, `jsma_fast.sparsest`): "
        "for each row, the successful output with the fewest changed features among its "
        f"members, run in order: {'; '.join(_member(x) for x in members)}. Each member may "
        f"change at most a fraction gamma = {mode.get('gamma')} of the {m.features} features"
        + _polish(mode)
        + f"; a member after the first attacks only the rows whose best L0 is above "
        f"{mode.get('skip_at')}."
        + (
            f" No member was started after {mode['max_seconds']} s of a batch: these results "
            "depend on the machine's speed."
            if mode.get("max_seconds") is not None
            else ""
        ),
        "",
        "L0 in features over the correctly classified rows (as in docs/sparsest.md; a row "
        "counts within k features when the attack succeeded changing at most k):",
        "",
        "| rows | success | median L0 | mean L0 | "
        + " | ".join(f"<= {k} features" for k in QUOTED_FEATURES)
        + " |",
        "|---:|---:|---:|---:|" + "---:|" * len(QUOTED_FEATURES),
        f"| {n} | {pct(s['success_rate_clean_correct'])} | {num(median, 1)} | "
        f"{num(s['mean_l0_success_clean_correct'], 2)} | {within} |",
        "",
    ]
    return lines + _member_table(members, m.sparsest.members)


def _member_table(members: List[Dict[str, Any]], counts: Optional[List[Tuple[int, float]]]):
    if counts is None:
        return []
    lines = [
        "Which member gave the successful rows their outputs (column `member` of "
        "`results.npz`, the index in this table; the earliest member on ties):",
        "",
        "| index | member | successful rows | mean L0 of those |",
        "|---:|---|---:|---:|",
    ]
    for i, (member, (rows, mean)) in enumerate(zip(members, counts)):
        lines.append(f"| {i} | {_member(member)} | {rows} | {num(mean, 2)} |")
    return lines + [""]


def _strength(s: Dict[str, Any], m: Measures) -> List[str]:
    n, wrong = s["result_rows_clean_correct"], s["result_rows_misclassified_before_attack"]
    rate = s["success_rate_clean_correct"]
    median = float(np.median(m.l0)) if m.l0.size else math.nan
    budgets = ", ".join(f"{pct(r)} within {pct(b, 0)}" for b, r in zip(QUOTED_BUDGETS, m.quoted))
    return [
        "## How strong",
        "",
        f"Over the **{n} result rows the model classified correctly** before the attack, the "
        f"attack succeeded on **{pct(rate)}** (95% interval {interval(rate, m.sources)} over "
        f"the {m.sources} data set rows they come from), changing on "
        f"average **{pct(s['mean_l0_fraction_success_clean_correct'], 2)}** of the "
        f"{m.features} features ({num(s['mean_l0_success_clean_correct'])} features) when it "
        "succeeded. "
        f"Success within an L0 budget: {budgets}.",
        "",
        "| measure (correctly classified rows) | value |",
        "|---|---:|",
        f"| result rows | {n} |",
        f"| success rate | {pct(rate)} |",
        f"| mean L0 of successes | {pct(s['mean_l0_fraction_success_clean_correct'], 2)} "
        f"({num(s['mean_l0_success_clean_correct'])} features) |",
        f"| median L0 of successes | {pct(median, 2)} ({num(median * m.features, 0)} features) |",
        f"| mean iterations | {num(s['mean_iterations_clean_correct'])} |",
        "",
        f"**Counted apart:** {wrong} result rows whose source the model already misclassified "
        f"(clean accuracy {pct(s['clean_accuracy'], 2)} on the attacked rows) are excluded from "
        f"every figure of this report; over every row, them included, success would read "
        f"{pct(s['success_rate_all_rows'])}."
        + (
            f" {s['rows_skipped_target_is_true_class']} data set rows were not attacked: their "
            "true class is the target given for them."
            if s.get("rows_skipped_target_is_true_class")
            else ""
        ),
        "",
        "Stop reasons (every result row): "
        + ", ".join(f"{k[len('stopped_') :]} {s[k]}" for k in s if k.startswith("stopped_"))
        + ".",
        "",
    ]


def _extremes(groups: List[Group], name: Callable[[int], str], what: str) -> List[str]:
    rated = [g for g in groups if g.rows and g.success_rate == g.success_rate]
    if len(rated) < 2:
        return []
    low = min(rated, key=lambda g: (g.success_rate, -g.mean_l0_fraction))
    high = max(rated, key=lambda g: (g.success_rate, -g.mean_l0_fraction))
    if low.success_rate == high.success_rate:  # e.g. every row succeeds: compare the effort
        return [
            f"- By {what}: the same success everywhere ({pct(low.success_rate)}); the most "
            f"features needed for {name(low.key)} (mean L0 {pct(low.mean_l0_fraction, 2)}, "
            f"{low.rows} rows), the fewest for {name(high.key)} "
            f"({pct(high.mean_l0_fraction, 2)}, {high.rows} rows)."
        ]
    return [
        f"- By {what}: weakest attack on {name(low.key)} ({pct(low.success_rate)} success, "
        f"{low.rows} rows, mean L0 {pct(low.mean_l0_fraction, 2)}); strongest on "
        f"{name(high.key)} ({pct(high.success_rate)}, {high.rows} rows, mean L0 "
        f"{pct(high.mean_l0_fraction, 2)})."
    ]


def _pair_extremes(pairs: Optional[np.ndarray], name: Callable[[int], str]) -> List[str]:
    if pairs is None or not np.isfinite(pairs).any():
        return []
    flat = [(v, s, t) for (s, t), v in np.ndenumerate(pairs) if np.isfinite(v)]
    flat.sort()
    hard = ", ".join(f"{name(s)} \u2192 {name(t)} ({pct(v, 0)})" for v, s, t in flat[:3])
    easy = ", ".join(f"{name(s)} \u2192 {name(t)} ({pct(v, 0)})" for v, s, t in flat[-3:])
    return [f"- Hardest (source \u2192 target) pairs: {hard}; easiest: {easy}."]


def _weak(s: Dict[str, Any], m: Measures, name: Callable[[int], str]) -> List[str]:
    smallest = min((g.sources for g in m.by_class if g.rows), default=0)
    lines = ["## Where the model is weak, where it resists", ""]
    lines += _extremes(m.by_class, name, "true class")
    lines += _extremes(m.by_target, name, "target")
    lines += _pair_extremes(m.pairs, name)
    lines += [
        "",
        f"Per-class figures rest on as few as {smallest} data set rows (a data set row's "
        "result rows towards several targets are not independent samples): a rate over n data "
        "set rows is uncertain by up to \u00b1100/sqrt(n) points (95%), so small differences "
        "between classes are noise.",
        "",
    ]
    return lines


def _group_table(groups: List[Group], name: Callable[[int], str], what: str) -> List[str]:
    lines = [
        f"| {what} | rows | misclassified (excluded) | success | mean L0 of successes "
        "| mean iterations |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for g in groups:
        lines.append(
            f"| {name(g.key)} | {g.rows} | {g.misclassified} | {pct(g.success_rate)} | "
            f"{pct(g.mean_l0_fraction, 2)} ({num(g.mean_l0)}) | {num(g.mean_iterations)} |"
        )
    return lines + [""]


def _tables(m: Measures, name: Callable[[int], str]) -> List[str]:
    lines = ["### Per true class", ""] + _group_table(m.by_class, name, "true class")
    if m.by_target:
        lines += ["### Per target", ""] + _group_table(m.by_target, name, "target")
    return lines


def _what_ran(s: Dict[str, Any], run: Dict[str, Any]) -> List[str]:
    env = run.get("environment", {})
    gpu = f", GPU {env['gpu']}" if env.get("gpu") else ""
    lines = [
        "## What ran",
        "",
        f"- Command: `{run.get('command', 'not recorded')}`",
        f"- Attack: `{run.get('attack', '?')}`",
        f"- Targets: `{run.get('targets', '?')}` (seed {run.get('seed', '?')}); "
        f"{s['data_set_rows']} data set rows attacked, {s['result_rows']} result rows.",
        f"- Model: {run.get('model', 'not recorded')}; fingerprint "
        f"`{run.get('model_fingerprint', 'n/a')}`",
    ]
    if run.get("weights"):
        lines.append(f"- Weights: `{run['weights']}`, SHA-256 `{run.get('weights_sha256', '?')}`")
    lines += [
        f"- Data: {run.get('data', 'not recorded')}; sample shape "
        f"{tuple(run.get('sample_shape', ()))}; fingerprint `{run.get('data_fingerprint', 'n/a')}`",
        f"- Software: jsma_fast {env.get('jsma_fast', '?')}, torch {env.get('torch', '?')}, "
        f"NumPy {env.get('numpy', '?')}, Python {env.get('python', '?')}",
        f"- Machine: {env.get('cpu', '?')}, {env.get('cpu_cores', '?')} cores, "
        f"{env.get('torch_threads', '?')} torch threads{gpu}; {s['processes']} process(es); "
        f"load average {env.get('load_average', '?')} at the end (other work shares the "
        f"machine); {env.get('platform', '?')}",
        f"- Date: started {run.get('started', '?')}, finished {env.get('date', '?')}; attack time "
        f"of this run {num(s['seconds'])} s for {s['data_set_rows_computed']} data set rows "
        f"({num(s['data_set_rows_per_second'], 2)} row/s; resumed rows excluded)",
        "",
    ]
    return lines


def _figures(figures: List[Figure]) -> List[str]:
    if not figures:
        return []
    lines = ["## Figures", ""]
    for title, path in figures:
        lines += [f"### {title}", "", f"![{title}]({path})", ""]
    return lines


def _files(run: Dict[str, Any]) -> List[str]:
    examples = (
        f"`{run['examples']}` (adversarial examples of one row per class), "
        if run.get("examples")
        else ""
    )
    return [
        "## Files",
        "",
        f"`results.npz` (one row per result row), `summary.json` (these figures and what ran), "
        f"{examples}`figures/` (PNG and PDF), `chunks/` (resumable).",
    ]


def _polish(mode: dict) -> str:
    """What the mode does to each member's outputs, as a clause of the report's sentence."""
    order = f"(order `{mode.get('refine_order')}`)"
    if not mode.get("search"):
        return f"; its outputs are refined {order}, without the swap search"
    above = mode.get("refine_above")
    if above is None:  # a report of a run made before refine_above existed
        return f"; its outputs are refined {order} and swap-searched"
    clause = (
        f"; its outputs are swap-searched, those with more than {above} changed features "
        f"refined first {order}"
    )
    within = mode.get("search_within")
    if within is not None:
        clause += (
            f"; a later member searches only the rows where its refined output has at most "
            f"{within} more changed features than the row's best so far"
        )
    return clause
