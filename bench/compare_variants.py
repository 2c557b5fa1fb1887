"""Every JSMA variant side by side, with ART and torchattacks on the same rows.

The paper's all-targets protocol on the demo's LeNet: the first ``--digits`` (default 100)
correctly classified held-out digits, each towards its 9 other classes, the paper's Upsilon =
14.5%, theta = +1 (increase) and -1 (decrease). For every attack: success, mean and median L0
over the successful rows, wall time and time per successful row; for the jsma-fast variants
also the *gradient floor* of their own derivative recipe (one forward plus the recipe's VJPs
per step, replayed with plain PyTorch calls at the attack's per-step batch sizes, as recorded
by ``jsma_fast.trace.AttackTrace``) and the ratio of wall time to it. A second table runs the
non-targeted attacks on the same digits against ART's and torchattacks' untargeted use (ART:
random targets, torchattacks: the next class), success meaning any class but the true one.
The figure shows success against the L0 budget, one curve per attack: a run with a smaller
budget takes the same steps until it stops, so each curve comes from one run.

    python -m bench.compare_variants --digits 10                 # smoke run
    python -m bench.compare_variants --write-results             # 100 digits, ~15 minutes
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from bench.attacks.floor import replay_floor
from bench.common import (
    BENCH_DIR,
    ROOT,
    art_classifier,
    command,
    correct_digits,
    demo_lenet,
    environment,
    equal_count,
    save_figure,
    write_csv,
)
from bench.results_file import RESULTS, write_section
from jsma_fast.catalogue import FAMILY
from jsma_fast.evaluation.paper import PAPER

SECTION = "variants"
GAMMA = PAPER.gamma
FLOOR_TARGET = 1.3
FIGURE = ROOT / "docs" / "figures" / "variants_success_vs_l0.png"

#: jsma-fast attacks: name -> (label, JSMA keyword arguments without theta): every variant of
#: the catalogue, and the preset that reproduces ART.
JSMA_FAST = {
    **{name: (f'{v.label}, `variant="{name}"`', dict(variant=name)) for name, v in FAMILY.items()},
    "art_preset": ('`JSMA.preset("art")`', dict(preset="art")),
}
#: The peers run beside jsma-fast: ART itself, jsma-fast's ART drop-in with its defaults, and
#: torchattacks (the slowest, about 0.6 s per row).
LIBRARIES = ("art", "art_adapter", "torchattacks")
#: Non-targeted runs: every variant (JSMA-F is the non-targeted map on probabilities too).
NON_TARGETED = tuple(FAMILY)
TORCHATTACKS_DECREASE = (
    "torchattacks is not run with theta = -1: its decrease map scores alpha * |beta| without "
    "the sign conditions, a smoke run of 45 rows succeeded on none of them, and a failing row "
    "takes its whole budget at 10 backward passes per step (about 2 s per row here)."
)


@dataclass
class Row:
    """One attack's outputs and measurements."""

    key: str
    label: str
    library: str
    theta: float
    seconds: list[float]
    x_adv: torch.Tensor
    success: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))
    l0: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    floor_s: Optional[float] = None
    error: str = ""

    @property
    def wall_s(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    def cells(self) -> dict[str, str]:
        ok = self.success
        l0 = self.l0[ok] * 100
        count = int(ok.sum())
        return {
            "success": f"{ok.float().mean().item():.1%}" if len(ok) else "",
            "mean_l0": f"{l0.mean().item():.2f}%" if count else "",
            "median_l0": f"{l0.median().item():.2f}%" if count else "",
            "wall": _time(self.wall_s),
            "per_success": _time(self.wall_s / count) if count else "",
            "floor": "" if self.floor_s is None else f"{self.wall_s / self.floor_s:.2f}x",
        }


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# ---------------------------------------------------------------------------- attacks


def jsma_fast_attack(options: dict[str, Any], theta: float):
    from jsma_fast import JSMA

    options = dict(options)
    preset = options.pop("preset", None)
    if preset is not None:
        return JSMA.preset(preset, theta=theta, gamma=GAMMA, **options)
    return JSMA(theta=theta, gamma=GAMMA, **options)


def art_attack(
    model: torch.nn.Module, theta: float, rows: int, adapter: bool = False
) -> Callable[..., torch.Tensor]:
    """ART 1.20.1's SaliencyMapMethod, or with ``adapter`` jsma-fast's drop-in with its
    default arguments; ``run(x, target)`` with target None for its untargeted use (random
    targets other than the prediction)."""
    if adapter:
        from jsma_fast.compat.art import SaliencyMapMethod
    else:
        from art.attacks.evasion import SaliencyMapMethod

    classifier = art_classifier(model)
    attack = SaliencyMapMethod(
        classifier, theta=theta, gamma=GAMMA, batch_size=max(rows, 1), verbose=False
    )

    def run(x: torch.Tensor, target: Optional[torch.Tensor]) -> torch.Tensor:
        np.random.seed(0)  # ART draws random targets from NumPy's global generator
        labels = None if target is None else np.eye(10, dtype=np.float32)[target.numpy()]
        return torch.from_numpy(attack.generate(x.numpy(), y=labels))

    return run


def torchattacks_attack(model: torch.nn.Module, theta: float) -> Callable[..., torch.Tensor]:
    """torchattacks 3.5.1's JSMA; ``run(x, target, y)``: targeted by label, or its default
    mode (the next class of y) when target is None."""
    import torchattacks

    targeted = torchattacks.JSMA(model, theta=theta, gamma=GAMMA)
    targeted.set_mode_targeted_by_label(quiet=True)
    default = torchattacks.JSMA(model, theta=theta, gamma=GAMMA)

    def run(x: torch.Tensor, target: Optional[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        return default(x, y) if target is None else targeted(x, target)

    return run


def timed(
    run: Callable[[], torch.Tensor], repeat_below_s: float = 10.0
) -> tuple[torch.Tensor, list[float]]:
    """Runs once to warm up on a small call elsewhere; here: once, and twice more when a run
    takes under ``repeat_below_s``. Returns the last output and every wall time."""
    seconds: list[float] = []
    out = None
    while not seconds or (len(seconds) < 3 and sum(seconds) < repeat_below_s):
        start = time.perf_counter()
        out = run()
        seconds.append(time.perf_counter() - start)
    return out, seconds


# ---------------------------------------------------------------------------- measuring


def measure_jsma_fast(key: str, theta: float, model, x, y, target) -> Row:
    """One jsma-fast variant: timed runs, then a traced run whose steps are replayed."""
    from jsma_fast.trace import AttackTrace

    label, options = JSMA_FAST[key]
    try:
        attack = jsma_fast_attack(options, theta)
    except ValueError as exc:  # a combination that makes no sense (maximal with theta < 0)
        return Row(key, label, "jsma-fast", theta, [], x[:0], error=str(exc))
    y_target = "untargeted" if target is None else target
    attack(model, x[:1], y_target if target is None else target[:1], y=y[:1])  # warm-up
    result, seconds = timed(lambda: attack(model, x, y_target, y=y))
    row = Row(key, label, "jsma-fast", theta, seconds, result.x_adv)
    if target is not None:
        trace = AttackTrace()
        attack(model, x, target, y=y, trace=trace)
        recipe = attack.spec.recipe(attack.jacobian)
        args = (
            model,
            x,
            trace.forward_rows,
            trace.derivative_rows,
            target,
            recipe.jacobian,
            recipe.vjps,
        )
        replay_floor(*args)  # warm-up
        row.floor_s = statistics.median(replay_floor(*args) for _ in range(3))
    return row


def measure_library(library: str, theta: float, model, x, y, target) -> Row:
    """ART or torchattacks on the same rows; a missing library gives a row with the reason."""
    label = {
        "art": "ART 1.20.1 `SaliencyMapMethod`",
        "art_adapter": "`jsma_fast.compat.art.SaliencyMapMethod`, default arguments",
        "torchattacks": "torchattacks 3.5.1 `JSMA`",
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if library in ("art", "art_adapter"):
                art = art_attack(model, theta, x.shape[0], adapter=library == "art_adapter")
                run = lambda: art(x, target)  # noqa: E731
                art(x[:1], None if target is None else target[:1])
            else:
                ta = torchattacks_attack(model, theta)
                run = lambda: ta(x, target, y)  # noqa: E731
                ta(x[:1], None if target is None else target[:1], y[:1])
            x_adv, seconds = timed(run)
    except ImportError as exc:
        return Row(library, label[library], library, theta, [], x[:0], error=str(exc))
    return Row(library, label[library], library, theta, seconds, x_adv.to(x.dtype))


def score(row: Row, model, x, y, target) -> None:
    """Success and L0 of the row's outputs, judged by the model itself."""
    if row.error:
        return
    with torch.no_grad():
        predicted = model(row.x_adv).argmax(1)
    row.success = predicted != y if target is None else predicted == target
    row.l0 = (row.x_adv != x).flatten(1).float().mean(1)


# ---------------------------------------------------------------------------- report


def targeted_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| attack | theta | success | mean L0 | median L0 | wall time | per successful row | time "
        "/ own gradient floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.error:
            lines.append(f"| {row.label} | {row.theta:+.0f} | not run: {row.error} | | | | | |")
            continue
        c = row.cells()
        lines.append(
            f"| {row.label} | {row.theta:+.0f} | {c['success']} | {c['mean_l0']} | "
            f"{c['median_l0']} | {c['wall']} | {c['per_success']} | {c['floor']} |"
        )
    return lines


def untargeted_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| attack | success | mean L0 | median L0 | wall time | per successful row |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.error:
            lines.append(f"| {row.label} | not run: {row.error} | | | | |")
            continue
        c = row.cells()
        lines.append(
            f"| {row.label} | {c['success']} | {c['mean_l0']} | {c['median_l0']} | "
            f"{c['wall']} | {c['per_success']} |"
        )
    return lines


def equal_rows(a: Row, b: Row) -> int:
    """Rows where both attacks gave the same output; -1 where they cannot be compared."""
    if a.error or b.error or a.x_adv.shape != b.x_adv.shape:
        return -1
    return equal_count(a.x_adv, b.x_adv)


def success_curves(rows: Sequence[Row], num_features: int, path: Path) -> Path:
    """Success rate against the L0 budget (fraction of features), one curve per attack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = np.arange(0, int(GAMMA * num_features) + 3) / num_features
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for row in rows:
        if row.error:
            continue
        l0 = row.l0.numpy()
        ok = row.success.numpy()
        curve = [(ok & (l0 <= b + 1e-12)).mean() for b in budgets]
        style = "--" if row.library != "jsma-fast" else "-"
        ax.plot(budgets * 100, np.array(curve) * 100, style, label=row.label.replace("`", ""))
    ax.axvline(GAMMA * 100, color="grey", lw=0.8)
    ax.set_xlabel("L0 budget (% of the 784 pixels changed)")
    ax.set_ylabel("success rate (%)")
    ax.set_title("Demo LeNet, 100 digits x 9 targets, theta = +1")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path, dpi=120)


def model_fact(accuracy: float, held_out: int, digits: int) -> str:
    return (
        f"- Model: the demo's LeNet, {accuracy:.1%} on its {held_out} held-out digits; the "
        f"first {digits} it classifies correctly, each towards its 9 other classes "
        f"({digits * 9} rows), gamma = {GAMMA} (56 pair steps for M = 784)"
    )


def report(
    targeted: Sequence[Row],
    untargeted: Sequence[Row],
    facts: Sequence[str],
    figure: Optional[Path],
    command_line: str,
) -> str:
    by_key = {(r.key, r.theta): r for r in targeted}
    lines = [
        "## Variants: the JSMA family side by side (CPU)",
        "",
        f"Command: `{command_line}`",
        "",
        *facts,
        "",
        "Targeted, all 9 other classes per digit:",
        "",
        *targeted_table(targeted),
        "",
    ]
    for theta in (1.0, -1.0):
        art = by_key.get(("art", theta))
        for key, name in (("art_preset", '`JSMA.preset("art")`'), ("art_adapter", "the adapter")):
            ours = by_key.get((key, theta))
            if ours and art and equal_rows(ours, art) >= 0:
                lines.append(
                    f"- theta = {theta:+.0f}: {name} equals ART's output on "
                    f"{equal_rows(ours, art)} / {len(art.x_adv)} rows."
                )
    ratios = [r.wall_s / r.floor_s for r in targeted if r.floor_s]
    if ratios:
        verdict = "met" if max(ratios) <= FLOOR_TARGET else "NOT met"
        lines.append(
            f"- Time over each variant's own gradient floor: at most {max(ratios):.2f}x "
            f"(target <= {FLOOR_TARGET}x): {verdict}."
        )
    if any(r.library == "torchattacks" for r in targeted):
        lines.append(f"- {TORCHATTACKS_DECREASE}")
    lines += [
        "",
        "Non-targeted on the same digits (success: any class but the true one; ART "
        "draws random targets, torchattacks takes the next class):",
        "",
        *untargeted_table(untargeted),
    ]
    if figure is not None:
        lines += ["", f"![success against the L0 budget]({os.path.relpath(figure, ROOT)})"]
    lines += ["", "Timings on a shared machine are provisional; compare ratios within one run."]
    return "\n".join(lines)


CSV_FIELDS = (
    "kind",
    "attack",
    "library",
    "theta",
    "success",
    "mean_l0",
    "median_l0",
    "wall_s",
    "time_over_floor",
    "error",
)


def csv_records(rows: Sequence[Row], kind: str) -> list[dict[str, Any]]:
    records = []
    for row in rows:
        c = row.cells() if not row.error else {}
        records.append(
            {
                "kind": kind,
                "attack": row.key,
                "library": row.library,
                "theta": row.theta,
                "success": c.get("success", ""),
                "mean_l0": c.get("mean_l0", ""),
                "median_l0": c.get("median_l0", ""),
                "wall_s": f"{row.wall_s:.4f}",
                "time_over_floor": c.get("floor", ""),
                "error": row.error,
            }
        )
    return records


# ---------------------------------------------------------------------------- main


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, default=100)
    parser.add_argument("--threads", type=int, default=max(1, len(os.sched_getaffinity(0))))
    parser.add_argument("--skip-libraries", action="store_true", help="jsma-fast only")
    parser.add_argument(
        "--libraries",
        default=",".join(LIBRARIES),
        help=f"comma-separated peers to run, of {','.join(LIBRARIES)} (default: all)",
    )
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="update bench/RESULTS.md, the CSV and the README figure",
    )
    args = parser.parse_args(argv)
    args.libraries = [] if args.skip_libraries else [n for n in args.libraries.split(",") if n]
    unknown = sorted(set(args.libraries) - set(LIBRARIES))
    if unknown:
        parser.error(f"--libraries: unknown {unknown}; known: {','.join(LIBRARIES)}")
    return args


def measure_targeted(libraries: Sequence[str], model, x, y, target) -> list[Row]:
    """Every jsma-fast attack and every peer on the all-targets rows, theta = +1 and -1."""
    rows: list[Row] = []
    for theta in (1.0, -1.0):
        for key in JSMA_FAST:
            rows.append(measure_jsma_fast(key, theta, model, x, y, target))
            print(f"  {key} theta={theta:+.0f}: {rows[-1].wall_s:.2f} s", flush=True)
        for library in libraries:
            if library == "torchattacks" and theta < 0:
                continue  # see TORCHATTACKS_DECREASE
            rows.append(measure_library(library, theta, model, x, y, target))
            print(f"  {library} theta={theta:+.0f}: {rows[-1].wall_s:.2f} s", flush=True)
    return [r for r in rows if not r.error or r.library != "jsma-fast"]


def measure_untargeted(libraries: Sequence[str], model, x, y) -> list[Row]:
    rows = [measure_jsma_fast(k, 1.0, model, x, y, None) for k in NON_TARGETED]
    for row in rows:
        row.label = f"non-targeted {FAMILY[row.key].label}"
    peers = [measure_library(lib, 1.0, model, x, y, None) for lib in libraries]
    for row in peers:
        random = row.key.startswith("art")
        row.label += " (`y=None`: random targets)" if random else " (default mode: the next class)"
    return rows + peers


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    facts = environment(f"{torch.get_num_threads()} PyTorch threads")  # the load at the start
    model, split = demo_lenet()
    x, y = correct_digits(model, split, args.digits)
    x_all = x.repeat_interleave(9, dim=0)
    y_all = y.repeat_interleave(9)
    target = torch.tensor([t for label in y.tolist() for t in range(10) if t != label])
    targeted = measure_targeted(args.libraries, model, x_all, y_all, target)
    untargeted = measure_untargeted(args.libraries, model, x, y)
    for row in targeted:
        score(row, model, x_all, y_all, target)
    for row in untargeted:
        score(row, model, x, y, None)

    increase = [r for r in targeted if r.theta > 0]
    figure = success_curves(increase, x.shape[1:].numel(), FIGURE) if args.write_results else None
    facts.append(model_fact(split.test_accuracy, len(split.test_y), x.shape[0]))
    text = report(targeted, untargeted, facts, figure, command("compare_variants", argv))
    print(text)
    if args.write_results:
        write_section(RESULTS, SECTION, text)
        write_csv(
            BENCH_DIR / "results" / "variants.csv",
            CSV_FIELDS,
            csv_records(targeted, "targeted") + csv_records(untargeted, "untargeted"),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
