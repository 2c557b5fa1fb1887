"""What ``jsma-fast attack`` records of a run and prints at its end: the provenance passed to
:func:`~jsma_fast.runner.attack_dataset` (``about``), the summary lines, and the report."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, Optional

from ..runner.summary import summary_lines


def about(
    args: argparse.Namespace, description: str, weights: Optional[Path], data: str
) -> Dict[str, Any]:
    """The run's model, weights file and its SHA-256, data and command line."""
    from ..provenance import file_sha256

    out: Dict[str, Any] = {
        "model": description,
        "data": data,
        "command": shlex.join(["jsma-fast", *sys.argv[1:]]),
    }
    if weights is not None and Path(weights).is_file():
        out["weights"] = str(weights)
        out["weights_sha256"] = file_sha256(weights)
    return out


def finish(result: Any, out: Path) -> None:
    """Prints the summary and writes the report (a near-chance model was warned of by the
    runner, as a line of the command)."""
    s = result.summary
    print()
    for line in summary_lines(s):
        print(line)
    report = _report(result)
    print(f"Results: {(out / 'results.npz').resolve()}, {(out / 'summary.json').resolve()}")
    print(f"Report: {report}")


def _report(result: Any) -> str:
    try:
        return str(result.report().resolve())
    except ImportError:  # no matplotlib: the text without figures
        return str(result.report(draw=False).resolve()) + " (no figures: matplotlib is missing)"
