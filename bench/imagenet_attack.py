"""JSMA at ImageNet size on the CPU, and the pruned search along real LeNet attacks.

    python -m bench.imagenet_attack [--steps 10] [--lenet-digits 100] [--write-results]

1. A 224x224x3 input (M = 150,528 features) attacked on a ResNet-18-shaped CNN defined in the
   project (random weights, seeded; nothing is downloaded), for ``--steps`` crafting steps:
   time per step, the share of the pair search in it, and the process's peak memory, beside
   the memory the broadcast selection (B x M x M tensors) would need.
2. The demo's LeNet attacked on held-out digits (target (y+1) % 10, theta = +1, the paper's
   gamma = 14.5%): the distribution of the pruned search's survivors at every step, and how
   often its pair and score equal the exhaustive search's on the same gradients.
``--write-results`` replaces the ``imagenet`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import List, Optional

import numpy as np
import torch

from bench.attack_trace import replay_pair_searches
from bench.common import GIB, command, correct_digits, demo_lenet, environment, equal_count
from bench.results_file import RESULTS, write_section
from jsma_fast import JSMA
from jsma_fast.derivatives import Recipe, derivatives_of
from jsma_fast.evaluation.paper import PAPER
from jsma_fast.mnist.models import resnet18_like
from jsma_fast.trace import AttackTrace

GAMMA = PAPER.gamma


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def imagenet_case(steps: int) -> dict:
    torch.manual_seed(0)
    model = resnet18_like(num_classes=1000).eval()
    x = torch.rand((1, 3, 224, 224), generator=torch.Generator().manual_seed(1))
    m = x[0].numel()
    with torch.no_grad():
        target = model(x).argmin(dim=1)
    # Gradient floor of one step: one forward and two VJPs, timed on their own.
    flat = x.reshape(1, -1)
    derivatives_of(model, flat, tuple(x.shape[1:]), target, Recipe())
    start = time.perf_counter()
    for _ in range(3):
        derivatives_of(model, flat, tuple(x.shape[1:]), target, Recipe())
    gradient_s = (time.perf_counter() - start) / 3

    attack = JSMA(theta=1.0, gamma=GAMMA, max_iters=steps)
    trace = AttackTrace()  # timing only: copying the search inputs would add to the search
    start = time.perf_counter()
    result = attack(model, x, target, trace=trace)
    total = time.perf_counter() - start
    inputs = AttackTrace(keep_search_inputs=True)
    attack(model, x, target, trace=inputs)
    iterations = int(result.iterations[0])
    # The attack runs `iterations` full steps plus one final forward (and one forward on the
    # clean input for the target strategies).
    step_s = total / max(iterations, 1)
    searches = trace.durations["search"]
    search_s = float(np.median(searches)) if searches else float("nan")
    return {
        "m": m,
        "iterations": iterations,
        "total_s": total,
        "step_s": step_s,
        "gradient_s": gradient_s,
        "search_s": search_s,
        "search_share": search_s / step_s,
        "survivors": replay_pair_searches(inputs).survivors,
        "peak_rss": peak_rss_bytes(),
        "broadcast_tensor_bytes": m * m * 4,
        "changed": int(result.l0[0]),
    }


def lenet_case(digits: int) -> dict:
    model, split = demo_lenet()
    x, y = correct_digits(model, split, digits)
    trace = AttackTrace(keep_search_inputs=True)
    result = JSMA(theta=1.0, gamma=GAMMA, method="pruned")(model, x, (y + 1) % 10, y=y, trace=trace)
    replay = replay_pair_searches(trace, compare_exact=True)
    exact = JSMA(theta=1.0, gamma=GAMMA, method="exact")(model, x, (y + 1) % 10, y=y)
    return {
        "digits": len(x),
        "steps": len(replay.survivors),
        "survivors": replay.survivors,
        "same_pair": replay.same_pair,
        "same_score": replay.same_score,
        "rows": replay.rows,
        "same_outputs": equal_count(result.x_adv, exact.x_adv),
        "success": float(result.success.float().mean()),
    }


def distribution(values: np.ndarray) -> str:
    if values.size == 0:
        return "n/a"
    q = np.percentile(values, [0, 50, 90, 100])
    return " / ".join(f"{v:.0f}" for v in q)


def markdown(env: List[str], image: dict, lenet: Optional[dict], command: str) -> str:
    lines = [
        "## ImageNet-size JSMA on the CPU, and pruning along real attacks",
        "",
        f"Command: `{command}`",
        "",
        *env,
        "",
        f"ResNet-18-shaped CNN (random weights), one 3x224x224 input, M = {image['m']:,} features, "
        f"target: least likely class, {image['iterations']} crafting steps (`max_iters`), "
        f'pair search `method="auto"` (pruned):',
        "",
        "| per step | time | share of the step |",
        "|---|---:|---:|",
        f"| whole step (attack wall time / steps) | {image['step_s'] * 1e3:.1f} ms | 100% |",
        f"| forward + 2 VJPs (measured alone) | {image['gradient_s'] * 1e3:.1f} ms | "
        f"{image['gradient_s'] / image['step_s']:.1%} |",
        f"| pair search over all {image['m']:,} features (median) | {image['search_s'] * 1e3:.2f} "
        "ms | "
        f"**{image['search_share']:.2%}** |",
        "",
        f"- Peak memory of the whole process (model, autograd, search): "
        f"**{image['peak_rss'] / GIB:.2f} GiB** (ru_maxrss).",
        f"- The broadcast selection would need {image['broadcast_tensor_bytes'] / GIB:.1f} GiB for "
        f"*each* B x M x M float32 tensor (several at once).",
        f"- Survivors of the pruned search per step (min / median / p90 / max): "
        f"{distribution(image['survivors'])} of {image['m']:,} features; "
        f"{image['changed']} features changed after {image['iterations']} steps.",
    ]
    if lenet is not None:
        lines += [
            "",
            f"Demo LeNet, {lenet['digits']} held-out digits, target (y+1) % 10, theta = +1, "
            f'gamma = {GAMMA:.1%}, `method="pruned"` (success {lenet["success"]:.1%}):',
            "",
            f"- Survivors per sample-step over {lenet['steps']} sample-steps "
            f"(min / median / p90 / max): **{distribution(lenet['survivors'])}** of 784 features.",
            f"- Same score as the exhaustive search on the same gradients: "
            f"{lenet['same_score']} / {lenet['rows']}; same pair: {lenet['same_pair']} / "
            f"{lenet['rows']}.",
            f'- Adversarial outputs identical to `method="exact"`: '
            f"{lenet['same_outputs']} / {lenet['digits']}.",
        ]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="crafting steps at ImageNet size")
    parser.add_argument("--lenet-digits", type=int, default=100, help="0 skips the LeNet part")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    env = environment(f"{threads} threads used")
    image = imagenet_case(args.steps)
    lenet = lenet_case(args.lenet_digits) if args.lenet_digits > 0 else None
    text = markdown(env, image, lenet, command("imagenet_attack", argv))
    print(text)
    if args.write_results:
        write_section(RESULTS, "imagenet", text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
