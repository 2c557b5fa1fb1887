"""``report.md`` and its figures beside the results of :func:`~jsma_fast.runner.attack_dataset`
(``jsma-fast attack``): read the results folder, measure, draw, render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import figures, tables
from .markdown import (
    QUOTED_BUDGETS,
    QUOTED_FEATURES,
    Figure,
    Measures,
    SparsestMeasures,
    render,
)

REPORT_FILE = "report.md"
FIGURES_DIR = "figures"
#: Points of the success-against-budget curve.
CURVE_POINTS = 60


def write_report(
    results_dir: Union[str, Path],
    *,
    class_names: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
    draw: bool = True,
) -> Path:
    """Writes ``report.md`` (and ``figures/``) into a results folder of
    :func:`~jsma_fast.runner.attack_dataset`; reads only that folder. A run of the minimum-L0
    mode (:class:`~jsma_fast.minimum_l0.Sparsest`, named in ``summary["run"]["mode"]``) gets
    its own section and figures that count features.

    Args:
        results_dir: the folder holding ``results.npz`` and ``summary.json`` (and
            ``examples.npz`` for the grid of adversarial examples).
        class_names: C names shown beside the class indices (e.g. Fashion-MNIST's).
        title: the report's title (default: model and targets).
        draw: draw the figures (needs matplotlib); False: the text only.

    Returns:
        the path of ``report.md``.

    Raises:
        FileNotFoundError: ``results_dir`` lacks ``results.npz`` or ``summary.json``.
    """
    folder = Path(results_dir)
    summary = _read_summary(folder)
    cols = _read_columns(folder / "results.npz")
    classes = int(summary.get("num_classes") or int(cols["true_class"].max()) + 1)
    name = _namer(class_names, classes)
    run = summary.get("run", {})
    features = int(np.prod(run.get("sample_shape") or [1]))
    m = _measures(cols, classes, features, run)
    if draw:
        m.figures = _draw(folder, cols, m, run, classes)
    path = folder / REPORT_FILE
    path.write_text(render(summary, m, name, title))
    return path


def _read_summary(folder: Path) -> Dict[str, Any]:
    for needed in ("results.npz", "summary.json"):
        if not (folder / needed).is_file():
            raise FileNotFoundError(
                f"results_dir must hold the {needed} of an attack_dataset run, "
                f"got {str(folder)!r} without it"
            )
    return json.loads((folder / "summary.json").read_text())


def _read_columns(path: Path) -> Dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in (*tables.NEEDED, *tables.OPTIONAL) if k in data.files}


def _namer(class_names: Optional[Sequence[str]], classes: int) -> Callable[[int], str]:
    if class_names is not None and len(class_names) != classes:
        raise ValueError(
            f"class_names must hold {classes} names (one per class), got {len(class_names)}"
        )

    def name(c: int) -> str:
        return f"{c} ({class_names[c]})" if class_names is not None else str(c)

    return name


def _budget(run: Dict[str, Any]) -> Optional[float]:
    gamma = run.get("gamma")
    return float(gamma) if isinstance(gamma, (int, float)) and 0 < gamma <= 1 else None


def _measures(
    cols: Dict[str, np.ndarray], classes: int, features: int, run: Dict[str, Any]
) -> Measures:
    targeted = bool((cols["target"] >= 0).any())
    m = Measures(
        by_class=tables.by(cols, "true_class", classes),
        by_target=tables.by(cols, "target", classes) if targeted else [],
        pairs=tables.pair_success(cols, classes) if run.get("targets") == "all" else None,
        l0=tables.successful_l0(cols),
        quoted=list(tables.success_within(cols, QUOTED_BUDGETS)),
        sources=int(np.unique(cols["source_index"][tables.correct(cols)]).size),
        features=features,
    )
    mode = _sparsest_mode(run)
    if mode is not None:
        m.sparsest = _sparsest_measures(cols, features, mode)
    return m


def _sparsest_mode(run: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The minimum-L0 mode's description in the summary (its members), or None."""
    mode = run.get("mode")
    return mode if isinstance(mode, dict) and mode.get("name") == "sparsest" else None


def _sparsest_measures(
    cols: Dict[str, np.ndarray], features: int, mode: Dict[str, Any]
) -> SparsestMeasures:
    members = len(mode.get("members") or ())
    return SparsestMeasures(
        mode=mode,
        within=list(tables.success_within(cols, np.array(QUOTED_FEATURES) / features)),
        members=tables.member_successes(cols, members) if "member" in cols else None,
    )


def _draw(
    folder: Path, cols: Dict[str, np.ndarray], m: Measures, run: Dict[str, Any], classes: int
) -> List[Figure]:
    out = folder / FIGURES_DIR
    # The minimum-L0 mode's gamma only caps its members: its figures count features, up to
    # the largest L0 found.
    budget, step = (None, 1) if m.sparsest is not None else (_budget(run), 2)
    grid, features = _curve_grid(m, budget)
    made: List[Figure] = []
    if m.pairs is not None:
        made.append(("Success per (source, target)", figures.pair_heatmap(m.pairs, out / "pairs")))
    made.append(
        (
            "L0 of the successful attacks",
            figures.l0_histogram(m.l0, m.features, budget, out / "l0", step=step),
        )
    )
    rates = tables.success_within(cols, grid)
    made.append(
        (
            "Success against the L0 budget",
            figures.success_curve(grid, rates, out / "success_vs_l0", features=features),
        )
    )
    made += _examples_figure(folder, run, classes)
    return [(title, str(path.relative_to(folder))) for title, path in made]


def _curve_grid(m: Measures, budget: Optional[float]) -> Tuple[np.ndarray, Optional[int]]:
    """The L0 budgets (fractions of the features) of the success curve, and the features per
    sample when the curve counts features (the minimum-L0 mode: every count from 0 to the
    largest L0 found, at least to the largest quoted count)."""
    largest = float(m.l0.max()) if m.l0.size else 0.0
    if m.sparsest is not None:
        top = min(max(int(round(largest * m.features)), max(QUOTED_FEATURES)), m.features)
        return np.arange(0, top + 1) / m.features, m.features
    top = max(budget or 0.0, largest) or 0.01
    return np.linspace(0, top, CURVE_POINTS + 1)[1:], None


def _examples_figure(folder: Path, run: Dict[str, Any], classes: int) -> List[tuple]:
    """The grid of adversarial examples, for greyscale image data whose examples were kept."""
    shape = figures.image_shape(run.get("sample_shape") or ())
    path = folder / (run.get("examples") or "examples.npz")
    if shape is None or not path.is_file():
        return []
    with np.load(path, allow_pickle=False) as data:
        ex = {k: data[k] for k in data.files}
    if not len(ex["success"]):
        return []
    stem = folder / FIGURES_DIR / "examples"
    if run.get("targets") == "all":
        return [
            ("Adversarial examples, every target", figures.class_grid(ex, shape, classes, stem))
        ]
    return [("Adversarial examples", figures.example_grid(ex, shape, str, stem))]
