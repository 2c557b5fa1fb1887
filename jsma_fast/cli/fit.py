"""``jsma-fast attack``'s data made to fit the model: rows of another floating-point dtype
(NumPy's float64 by default) are cast to the model's dtype, with a note."""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..runner.fit import model_dtype


def cast_to_model(x: torch.Tensor, model: Any, say: Callable[..., None]) -> torch.Tensor:
    """``x`` in the model's floating-point dtype; says so when it casts."""
    dtype = model_dtype(model)
    if dtype is None or not x.dtype.is_floating_point or x.dtype == dtype:
        return x
    say(f"note: --data rows are {x.dtype}; cast to {dtype}, the model's dtype", flush=True)
    return x.to(dtype)
