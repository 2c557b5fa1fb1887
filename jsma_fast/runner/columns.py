"""Per-row attack results as plain NumPy columns (what the evaluation and the chunk files use)."""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Mapping, Tuple

import numpy as np

#: Columns of one attacked row, as stored in chunk files and ``results.npz``.
COLUMNS = (
    "x_adv",
    "success",
    "iterations",
    "l0",
    "l0_fraction",
    "predicted",
    "target",
    "true_class",
    "source_index",
    "stop_code",
)

Columns = Dict[str, np.ndarray]


def result_columns(result: Any, index_offset: int = 0) -> Columns:
    """NumPy copies of an :class:`~jsma_fast.AttackResult`'s per-row fields.

    Args:
        result: an AttackResult with R rows, or a mapping already holding :data:`COLUMNS`.
            An AttackResult with an ``extra_columns()`` method (e.g. the minimum-L0 mode's,
            whose ``member`` says which member each row kept) adds the (R,) tensors it
            returns.
        index_offset: added to ``source_index`` (the position of the attacked chunk in the
            whole set of digits).

    Returns:
        dict of arrays, each of leading dimension R (``x_adv`` keeps its sample shape).
    """
    if isinstance(result, Mapping):
        missing = [c for c in COLUMNS if c not in result and c != "x_adv"]
        if missing:
            raise ValueError(f"result is missing the columns {missing}")
        out = {k: np.asarray(v) for k, v in result.items()}
    else:
        out = {}
        for name in COLUMNS:
            value = getattr(result, name, None)
            if value is None:
                raise TypeError(
                    f"result must be an AttackResult or a mapping of columns, "
                    f"got {type(result).__name__}"
                )
            out[name] = value.detach().cpu().numpy()
        out.update(_extra_columns(result))
    if index_offset:
        out["source_index"] = out["source_index"] + index_offset
    return out


def _extra_columns(result: Any) -> Columns:
    """The columns an AttackResult adds through ``extra_columns()``, as NumPy copies."""
    extra = getattr(result, "extra_columns", None)
    if not callable(extra):
        return {}
    out = {}
    for name, value in extra().items():
        if name in COLUMNS or name == "clean_predicted":
            raise ValueError(f"result's extra_columns() must not replace the column {name!r}")
        out[name] = value.detach().cpu().numpy()
    return out


def concat_columns(parts: Iterable[Columns]) -> Columns:
    """Concatenates column dicts row-wise (in the given order)."""
    parts = list(parts)
    if not parts:
        raise ValueError("parts must hold at least one column dict, got none")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def success_and_distortion(result: Any) -> Tuple[float, float]:
    """The paper's two numbers of a run: its success rate, and the mean distortion
    (``l0_fraction``) of its successful rows (NaN without success).

    Args:
        result: an AttackResult or columns (see :func:`result_columns`).
    """
    cols = result_columns(result)
    ok = cols["success"].astype(bool)
    return float(ok.mean()), float(cols["l0_fraction"][ok].mean()) if ok.any() else math.nan
