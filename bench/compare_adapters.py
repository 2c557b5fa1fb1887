"""The drop-in adapters against the libraries they imitate, on the demo's LeNet.

    python -m bench.compare_adapters [--samples 100] [--original-samples 20] [--write-results]

For each adapter (``jsma_fast.compat.torchattacks.JSMA``, ``jsma_fast.compat.art.
SaliencyMapMethod``): the wall time of the adapter and of the original library on the same
held-out digits (target (y + 1) % 10), and how many of the adapter's adversarial outputs equal
``jsma_fast.JSMA``'s with the configuration the adapter documents. The originals are slow (one
image at a time), so they may run on the first ``--original-samples`` digits only; the time
per digit is reported for both. ``--write-results`` replaces the ``adapters`` section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Callable, List, Optional

import torch

from bench.common import (
    art_classifier,
    command,
    correct_digits,
    demo_lenet,
    environment,
    equal_count,
)
from bench.results_file import RESULTS, write_section
from jsma_fast import JSMA
from jsma_fast.evaluation.paper import PAPER

THETA, GAMMA = 1.0, PAPER.gamma


def timed(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def torchattacks_rows(model, x, y, original_n: int) -> dict:
    import torchattacks

    from jsma_fast.compat.torchattacks import JSMA as AdapterJSMA

    target = (y + 1) % 10
    adapter = AdapterJSMA(model, theta=THETA, gamma=GAMMA)  # untargeted: (y + 1) % C
    adv, seconds = timed(lambda: adapter(x, y))
    m = x[0].numel()
    reference = JSMA(
        theta=THETA,
        gamma=GAMMA,
        domain_rule="used",
        start_domain="unsaturated",
        max_iters=math.ceil(m * GAMMA / 2),
    )(model, x, target, y=y).x_adv
    original = torchattacks.JSMA(model, theta=THETA, gamma=GAMMA)
    _, original_seconds = timed(lambda: original(x[:original_n], y[:original_n]))
    return {
        "name": "torchattacks 3.5.1 `JSMA`",
        "adapter": "`jsma_fast.compat.torchattacks.JSMA`",
        "n": len(x),
        "seconds": seconds,
        "equal": equal_count(adv, reference),
        "original_n": original_n,
        "original_seconds": original_seconds,
    }


def art_rows(model, x, y, original_n: int) -> dict:
    from art.attacks.evasion import SaliencyMapMethod

    from jsma_fast.compat.art import SaliencyMapMethod as AdapterSMM

    classifier = art_classifier(model)
    target = ((y + 1) % 10).numpy()
    x_np = x.numpy()
    adapter = AdapterSMM(classifier, theta=THETA, gamma=GAMMA, batch_size=len(x), verbose=False)
    adv, seconds = timed(lambda: adapter.generate(x_np, y=target))
    reference = JSMA.preset("art", theta=THETA, gamma=GAMMA)(
        model, x, torch.from_numpy(target)
    ).x_adv
    original = SaliencyMapMethod(classifier, theta=THETA, gamma=GAMMA, batch_size=1, verbose=False)
    _, original_seconds = timed(lambda: original.generate(x_np[:original_n], y=target[:original_n]))
    return {
        "name": "ART 1.20.1 `SaliencyMapMethod`",
        "adapter": "`jsma_fast.compat.art.SaliencyMapMethod`",
        "n": len(x),
        "seconds": seconds,
        "equal": equal_count(torch.from_numpy(adv), reference),
        "original_n": original_n,
        "original_seconds": original_seconds,
    }


def markdown(env: List[str], rows: List[dict], command: str) -> str:
    lines = [
        "## Drop-in adapters against the libraries they imitate",
        "",
        f"Command: `{command}`",
        "",
        *env,
        "",
        f"Demo LeNet, held-out digits, target (y + 1) % 10, theta = {THETA}, gamma = {GAMMA}. "
        "'equal' counts the adapter's adversarial outputs that equal `jsma_fast.JSMA`'s with "
        "the configuration the adapter documents (torch.equal per digit): the torchattacks "
        "adapter's batched paper's map, and the ART adapter's default `JSMA.preset(\"art\")`, "
        "ART's own algorithm (its equality with ART itself, 900/900 rows, is in the variants "
        "section). torchattacks computes other semantics (see the adapter's table); only its "
        "time is compared.",
        "",
        "| adapter | digits | time | per digit | equal to `jsma_fast.JSMA` | original | digits | "
        "time | per digit | speed-up per digit |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        per = r["seconds"] / r["n"]
        per_original = r["original_seconds"] / r["original_n"]
        lines.append(
            f"| {r['adapter']} | {r['n']} | {r['seconds']:.2f} s | {per * 1e3:.1f} ms | "
            f"{r['equal']}/{r['n']} | {r['name']} | {r['original_n']} | "
            f"{r['original_seconds']:.2f} s | {per_original * 1e3:.1f} ms | "
            f"**{per_original / per:.1f}x** |"
        )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--original-samples", type=int, default=20)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    env = environment(f"{torch.get_num_threads()} threads used")  # the load at the start
    model, split = demo_lenet()
    x, y = correct_digits(model, split, args.samples)
    original_n = min(args.original_samples, len(x))
    rows = [torchattacks_rows(model, x, y, original_n), art_rows(model, x, y, original_n)]
    text = markdown(env, rows, command("compare_adapters", argv))
    print(text)
    if args.write_results:
        write_section(RESULTS, "adapters", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
