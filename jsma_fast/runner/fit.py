"""Whether a model can classify a data set's rows, checked on one row before any attack, so
that a mismatch (float64 rows for a float32 model, 3 channels for 1, channels-last images)
is one clear error instead of a traceback from deep inside the model."""

from __future__ import annotations

from typing import Any, Optional

import torch


def model_dtype(model: Any) -> Optional[torch.dtype]:
    """The dtype of the model's first floating-point parameter (None without one)."""
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            if p.dtype.is_floating_point:
                return p.dtype
    return None


def check_fits(model: Any, x: torch.Tensor) -> None:
    """Raises ValueError when ``model`` cannot classify ``x`` (a batch of the data set's rows,
    on the model's device) into (n, C) scores.

    The message names the rows' shape and dtype, the model's dtype, and the likely fix.
    """
    dtype = model_dtype(model)
    if dtype is not None and x.dtype.is_floating_point and x.dtype != dtype:
        raise ValueError(
            f"dataset rows are {x.dtype} but the model's parameters are {dtype}: convert the "
            f"rows (e.g. x.to({dtype})) or the model (e.g. model.to({x.dtype}))"
        )
    shape = tuple(x.shape[1:])
    try:
        with torch.no_grad():
            out = model(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ValueError(
            f"model cannot classify the dataset's rows of shape {shape} ({x.dtype}): {first}. "
            "Do the rows have the channels and layout the model expects (e.g. (C, H, W), "
            "channels first, for a torch CNN)?"
        ) from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"model must map rows of shape {shape} to (n, C) class scores, got {got} for "
            f"n = {x.shape[0]}"
        )
