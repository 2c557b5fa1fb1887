"""Conversion between the caller's arrays and the buffers the native kernels take.

The kernels read C-contiguous float32 buffers. NumPy arrays pass as they are; torch CPU
tensors pass zero-copy through ``.numpy()``; other CPU arrays with ``__dlpack__`` (JAX, ...)
pass zero-copy through ``numpy.from_dlpack`` and get NumPy results. Anything that would need a
copy or a cast is rejected with an error naming the argument, so no call silently costs a copy
of the inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import numpy as np

from ._checks import (
    check_contiguous,
    check_dense,
    check_dtype,
    check_same_kind,
    check_shapes,
    describe,
    dtype_name,
    is_torch_tensor,
)

_DLPACK_CPU = 1  # kDLCPU


@dataclass(frozen=True)
class Converted:
    """Flattened (batch, m) NumPy views of the inputs plus how to hand results back."""

    alpha: np.ndarray
    beta: np.ndarray
    domain: Optional[np.ndarray]
    batch_shape: Tuple[int, ...]
    wrap: Callable[[np.ndarray], Any]


def _as_numpy(x: Any, name: str) -> np.ndarray:
    if is_torch_tensor(x):
        check_dense(x, name)
        if not x.is_cpu:
            raise ValueError(f"{name} must be a CPU tensor for the CPU kernels, got {describe(x)}")
        check_dtype(x, name, dtype_name(x))
        check_contiguous(x, name, x.is_contiguous(), x.stride(), "call .contiguous() first")
        return (x.detach() if x.requires_grad else x).numpy()
    if isinstance(x, np.ndarray):
        check_dense(x, name)
        check_dtype(x, name, dtype_name(x))
        check_contiguous(
            x, name, x.flags.c_contiguous, x.strides, "use numpy.ascontiguousarray first"
        )
        return x
    check_dense(x, name)
    if callable(getattr(x, "__dlpack__", None)):
        return _as_numpy(_from_cpu_dlpack(x, name), name)
    raise TypeError(
        f"{name} must be a torch.Tensor or numpy.ndarray, got {describe(x)}; other arrays "
        "are accepted through DLPack (an object with __dlpack__, e.g. a JAX CPU array)"
    )


def _from_cpu_dlpack(x: Any, name: str) -> np.ndarray:
    """A zero-copy NumPy view of a CPU DLPack producer (JAX, TensorFlow, ... arrays); results
    for such inputs come back as NumPy arrays. CUDA producers never get here: ``ops`` routes
    them to ``_cuda`` first."""
    device = getattr(x, "__dlpack_device__", None)
    if callable(device) and int(device()[0]) != _DLPACK_CPU:
        raise ValueError(
            f"{name} must be in CPU memory (DLPack device type {_DLPACK_CPU}) for the CPU "
            f"kernels, got DLPack device {tuple(device())} for {describe(x)}"
        )
    try:
        return np.from_dlpack(x)
    except (TypeError, ValueError, BufferError, RuntimeError) as exc:
        raise TypeError(f"{name} could not be read through DLPack ({describe(x)}): {exc}") from exc


def convert_inputs(alpha: Any, beta: Any, domain: Any) -> Converted:
    """Checks alpha, beta (..., M) float32 and domain (..., M) bool/uint8 or None.

    Returns (batch, M) views and a function that gives a result array of shape (batch,) or
    (batch, M) back in the caller's kind (torch tensor or NumPy array) and batch shape.
    """
    kind_is_torch = is_torch_tensor(alpha)
    a = _as_numpy(alpha, "alpha")
    check_same_kind(beta, "beta", is_torch_tensor(beta) == kind_is_torch, alpha)
    b = _as_numpy(beta, "beta")
    d = None
    if domain is not None:
        check_same_kind(domain, "domain", is_torch_tensor(domain) == kind_is_torch, alpha)
        d = _as_numpy(domain, "domain")
    check_shapes(a.shape, b.shape, None if d is None else d.shape)
    batch_shape = a.shape[:-1]
    m = a.shape[-1]
    batch = math.prod(batch_shape)

    def wrap(result: np.ndarray) -> Any:
        shaped = result.reshape(batch_shape + result.shape[1:])
        if kind_is_torch:
            import torch

            return torch.from_numpy(shaped)
        return shaped

    return Converted(
        alpha=a.reshape(batch, m),
        beta=b.reshape(batch, m),
        domain=None if d is None else d.reshape(batch, m),
        batch_shape=batch_shape,
        wrap=wrap,
    )
