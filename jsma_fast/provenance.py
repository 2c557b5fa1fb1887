"""What produced a run, as recorded in ``summary.json`` and ``report.md``: versions, machine,
date, and a file's SHA-256 (the weights a model was loaded from)."""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
from pathlib import Path
from typing import Dict, Union


def now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _load() -> str:
    """The 1, 5 and 15 minute load averages (other work shares the machine), or "n/a"."""
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except (OSError, AttributeError):
        return "n/a"


def environment() -> Dict[str, Union[str, int]]:
    """Versions of jsma_fast, torch, NumPy and Python, the machine (CPU model, cores, load
    average, GPU when one is in use) and the date."""
    import numpy as np
    import torch

    from . import __version__

    env: Dict[str, Union[str, int]] = {
        "jsma_fast": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "load_average": _load(),
        "date": now(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    return env


def file_sha256(path: Union[str, Path]) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
