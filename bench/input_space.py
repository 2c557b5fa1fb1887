"""One model, one set of images, five input spaces: a CNN trained on mean/std-normalised
Fashion-MNIST, attacked in pixel space (``normalization=``), on the normalised data (per-channel
bounds), through a model with the normalisation inside, on [0, 255] images, and, as before
range units existed, on the normalised data with absolute steps.

    python -m bench.input_space [--rows 200] [--write-results]

Needs Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) or
``--data``. The CNN is trained here once (3 epochs on the 60,000 training images,
normalised) and cached beside the project's other models. Strength is measured on the test
rows the CNN classifies correctly (the others are counted apart), targets ``(y + 1) mod 10``
and untargeted, for ``jsma`` and ``tjsma``; "same outputs" counts the rows whose adversarial
image, mapped back to pixels, equals the pixel-space attack's, bit for bit.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import torch
from torch import nn

from bench.common import FASHION, command, environment, fashion_missing
from bench.results_file import RESULTS, write_section
from jsma_fast import JSMA, StepWarning

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's training images


def build_cnn() -> nn.Module:
    """The CNN under attack: two conv blocks and a linear layer, on normalised inputs."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def trained_cnn(data: Path, cache: Path) -> nn.Module:
    """The CNN trained on the normalised training images (cached in ``cache``)."""
    from jsma_fast.mnist.data import load_mnist

    model = build_cnn()
    if cache.exists():
        model.load_state_dict(torch.load(cache, weights_only=True))
        return model.eval()
    x, y = load_mnist(data, "train")
    z = (x - MEAN) / STD
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    print("training the CNN: 3 epochs on 60,000 normalised images ...", flush=True)
    start = time.perf_counter()
    for epoch in range(3):
        order = torch.randperm(z.shape[0])
        for i in range(0, z.shape[0], 128):
            batch = order[i : i + 128]
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(z[batch]), y[batch]).backward()
            optimiser.step()
        print(f"  epoch {epoch + 1} done ({time.perf_counter() - start:.0f} s)", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), cache)
    return model.eval()


class Inside(nn.Module):
    """The same CNN with the normalisation (and a scale) as its first layer."""

    def __init__(self, cnn: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        self.cnn, self.scale = cnn, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale != 1.0:
            x = x / self.scale
        return self.cnn((x - MEAN) / STD)


def spaces(cnn: nn.Module, variant: str):
    """(name, model, inputs from pixels, attack, back to pixels) of each input space."""
    per_channel = (torch.tensor([(0 - MEAN) / STD]).view(1, 1, 1),) + (
        torch.tensor([(1 - MEAN) / STD]).view(1, 1, 1),
    )
    return [
        (
            "pixels, normalization=",
            cnn,
            lambda x: x,
            JSMA(variant=variant, normalization=((MEAN,), (STD,))),
            lambda a: a,
        ),
        (
            "pixels, normalisation inside the model",
            Inside(cnn).eval(),
            lambda x: x,
            JSMA(variant=variant),
            lambda a: a,
        ),
        (
            "normalised data, per-channel bounds",
            cnn,
            lambda x: (x - MEAN) / STD,
            JSMA(variant=variant, clip_min=per_channel[0], clip_max=per_channel[1]),
            lambda a: a * STD + MEAN,
        ),
        (
            "[0, 255] images, clip_max=255",
            Inside(cnn, 255.0).eval(),
            lambda x: x * 255,
            JSMA(variant=variant, clip_max=255.0),
            lambda a: a / 255,
        ),
        (
            "normalised data, absolute theta = 1",
            cnn,
            lambda x: (x - MEAN) / STD,
            JSMA(
                variant=variant,
                clip_min=per_channel[0],
                clip_max=per_channel[1],
                theta_units="absolute",
            ),
            lambda a: a * STD + MEAN,
        ),
    ]


def measure(
    cnn: nn.Module, x: torch.Tensor, y: torch.Tensor, variant: str, targets: str
) -> List[Dict]:
    """One record per input space: success and L0 over the correctly classified rows."""
    records, reference, reference_changed = [], None, None
    for name, model, to_space, attack, to_pixels in spaces(cnn, variant):
        y_target = (y + 1) % 10 if targets == "next" else "untargeted"
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StepWarning)
            result = attack(model, to_space(x), y_target, y=y)
        seconds = time.perf_counter() - start
        pixels = to_pixels(result.x_adv)
        changed = result.x_adv != to_space(x)
        if reference is None:
            reference, reference_changed = pixels, changed
        ok = result.success
        records.append(
            {
                "space": name,
                "success": ok.float().mean().item(),
                "l0": result.l0[ok].float().mean().item() if ok.any() else float("nan"),
                "same": int((pixels == reference).flatten(1).all(1).sum()),
                "pixels": int((changed == reference_changed).flatten(1).all(1).sum()),
                "close": int(torch.isclose(pixels, reference, atol=1e-6).flatten(1).all(1).sum()),
                "seconds": seconds,
                "warned": any(issubclass(w.category, StepWarning) for w in caught),
            }
        )
        print(
            f"  {variant:6s} {targets:10s} {name:40s} {records[-1]['success']:.1%} "
            f"{records[-1]['l0']:.1f} px",
            flush=True,
        )
    return records


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=FASHION)
    parser.add_argument("--rows", type=int, default=200, help="test images (default: 200)")
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache/jsma-fast/bench-fashion-cnn.pt"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    if fashion_missing(args.data):
        return 2
    from jsma_fast.mnist.data import load_mnist

    torch.set_num_threads(args.threads)
    cnn = trained_cnn(args.data, args.cache)
    x, y = load_mnist(args.data, "test")
    x, y = x[: args.rows], y[: args.rows]
    with torch.no_grad():
        correct = cnn((x - MEAN) / STD).argmax(1) == y
    accuracy = correct.float().mean().item()
    env = environment(f"{args.threads} threads used")
    x, y = x[correct], y[correct]
    lines = [
        "## Input spaces: one normalised Fashion-MNIST CNN, five ways to attack it",
        "",
        f"Command: `{command('input_space', argv)}`",
        "",
        *env,
        f"- Model: a CNN (2 conv blocks, {sum(p.numel() for p in cnn.parameters()):,} "
        f"parameters) trained 3 epochs on the 60,000 training images normalised with mean "
        f"{MEAN}, std {STD}; clean accuracy {accuracy:.1%} on the first {args.rows} test "
        f"images. The {int((~correct).sum())} misclassified rows are left out; the "
        f"{x.shape[0]} others are attacked (gamma 0.145, theta +1).",
        "",
        "Success and mean L0 (changed pixels, successful rows); *same pixels* counts the rows "
        "that change the same pixels as the first line; *same* the rows whose output, mapped "
        "back to pixels, is bit-identical to the first line's; *close* within 1e-6.",
        "",
        "| variant | targets | input space | success | mean L0 | same pixels | same | close "
        "| time (s) | warned |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for variant in ("jsma", "tjsma"):
        for targets in ("next", "untargeted"):
            for r in measure(cnn, x, y, variant, targets):
                lines.append(
                    f"| {variant} | {targets} | {r['space']} | {r['success']:.1%} | "
                    f"{r['l0']:.1f} | {r['pixels']}/{x.shape[0]} | {r['same']}/{x.shape[0]} | "
                    f"{r['close']}/{x.shape[0]} | "
                    f"{r['seconds']:.1f} | {'StepWarning' if r['warned'] else ''} |"
                )
    body = "\n".join(lines) + "\n"
    print(body)
    if args.write_results:
        write_section(RESULTS, "input-space", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
