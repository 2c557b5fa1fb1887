"""``jsma-fast reproduce``: the paper's MNIST evaluation in one command.

Trains (or loads) the LeNet, attacks N correctly classified held-out digits towards each of
the other classes with increasing (theta = +1) and decreasing (theta = -1) features at
Upsilon = 14.5%, derives the class-pair tables, the hardness measure, the adversarial
distance, the detector's ROC and optionally adversarial training, and writes a report
directory (report.md, figures/, results.npz, summary.csv, pairs.csv).

The run is a sequence of stages, each in its own module:

1. :func:`~jsma_fast.evaluation.runs.run_attacks` (every rank): the attacks, in chunks;
2. :func:`~jsma_fast.evaluation.metrics.compute_metrics`: the measures;
3. :func:`~jsma_fast.evaluation.report_figures.draw_figures`: the figures;
4. :func:`~jsma_fast.evaluation.report.render_report`: the text of report.md;
5. :func:`~jsma_fast.evaluation.report_files.write_files`: the files.

Results are saved per chunk of digits and per stage under ``<out>/chunks`` (atomic writes);
``--resume`` skips completed chunks. The attack is deterministic and a resumed run attacks
the same chunks with the same settings, so its results equal an uninterrupted run's.
The command line (options, SIGTERM, exit status) is :mod:`jsma_fast.cli`.
"""

from __future__ import annotations

from pathlib import Path

from ..runner.distributed import Dist
from .config import ReproduceConfig
from .metrics import EvaluationMetrics, compute_metrics
from .paper import PAPER
from .report import pct, render_report
from .report_figures import draw_figures
from .report_files import write_files
from .runs import run_attacks


def reproduce(config: ReproduceConfig, ctx: Dist) -> int:
    """Runs the evaluation on every rank of ``ctx``; rank 0 writes the report directory.

    Returns:
        the exit status, 0.

    Raises:
        ConfigError: ``config.source`` cannot be loaded (field ``source``).
        ChunkError: a checkpoint that cannot be resumed.
        RankFailed: another rank of a distributed run failed.
    """
    config.out.mkdir(parents=True, exist_ok=True)
    runs = run_attacks(config, ctx)
    if runs is None:  # not rank 0
        return 0
    metrics = compute_metrics(runs, gamma=config.gamma, hardness_gammas=config.hardness_gammas)
    figures = draw_figures(
        metrics, runs, gamma=config.gamma, seed=config.seed, directory=config.out / "figures"
    )
    write_files(config.out, runs, metrics, render_report(metrics, config, figures))
    print_summary(metrics, config.out)
    return 0


def print_summary(metrics: EvaluationMetrics, out: Path) -> None:
    """The headline numbers beside the paper's, and where the report is."""
    inc, dec = metrics.modes[0], metrics.modes[1]
    print(
        f"\nincrease: success {pct(inc.success_rate)} (paper {pct(PAPER.increase_success)}), "
        f"mean distortion {pct(inc.mean_distortion_success)} (paper "
        f"{pct(PAPER.increase_distortion)}); decrease: success {pct(dec.success_rate)} "
        f"(paper {pct(PAPER.decrease_success)})"
    )
    print(f"Report: {(out / 'report.md').resolve()}")
