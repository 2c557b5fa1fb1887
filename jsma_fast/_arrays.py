"""Conversion between the caller's arrays and the buffers the native kernels take.

The kernels read C-contiguous float32 buffers. NumPy arrays pass as they are; torch CPU
tensors pass zero-copy through ``.numpy()``; other CPU arrays with ``__dlpack__`` (JAX, ...)
pass zero-copy through ``numpy.from_dlpack`` and get NumPy results. Anything that would need a
copy or a cast is rejected with an error naming the argument, so no call silently costs a copy
of the inputs.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import numpy as np

_DLPACK_CPU = 1  # kDLCPU


def _is_torch_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _describe(x: Any) -> str:
    if _is_torch_tensor(x):
        return f"torch.Tensor(shape={tuple(x.shape)}, dtype={x.dtype}, device={x.device})"
    if isinstance(x, np.ndarray):
        return f"numpy.ndarray(shape={x.shape}, dtype={x.dtype})"
    return type(x).__name__


@dataclass(frozen=True)
class Converted:
    """Flattened (batch, m) NumPy views of the inputs plus how to hand results back."""

    alpha: np.ndarray
    beta: np.ndarray
    domain: Optional[np.ndarray]
    batch_shape: Tuple[int, ...]
    wrap: Callable[[np.ndarray], Any]


def _as_numpy(x: Any, name: str, float_input: bool) -> np.ndarray:
    expected = "float32" if float_input else "bool or uint8"
    if _is_torch_tensor(x):
        import torch

        if not x.is_cpu:
            raise ValueError(
                f"{name} must be a CPU tensor for the CPU kernels, got {_describe(x)}"
            )
        ok_dtype = x.dtype == torch.float32 if float_input else x.dtype in (torch.bool, torch.uint8)
        if not ok_dtype:
            raise TypeError(f"{name} must be {expected}, got {_describe(x)}")
        if not x.is_contiguous():
            raise ValueError(
                f"{name} must be contiguous, got strides {tuple(x.stride())} for "
                f"{_describe(x)}; call .contiguous() first"
            )
        return (x.detach() if x.requires_grad else x).numpy()
    if isinstance(x, np.ndarray):
        ok_dtype = x.dtype == np.float32 if float_input else x.dtype in (np.bool_, np.uint8)
        if not ok_dtype:
            raise TypeError(f"{name} must be {expected}, got {_describe(x)}")
        if not x.flags.c_contiguous:
            raise ValueError(
                f"{name} must be C-contiguous, got strides {x.strides} for {_describe(x)}; "
                "use numpy.ascontiguousarray first"
            )
        return x
    if callable(getattr(x, "__dlpack__", None)):
        return _as_numpy(_from_cpu_dlpack(x, name), name, float_input)
    raise TypeError(
        f"{name} must be a torch.Tensor or numpy.ndarray, got {_describe(x)}; other arrays "
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
            f"kernels, got DLPack device {tuple(device())} for {_describe(x)}"
        )
    try:
        return np.from_dlpack(x)
    except (TypeError, ValueError, BufferError, RuntimeError) as exc:
        raise TypeError(
            f"{name} could not be read through DLPack ({_describe(x)}): {exc}"
        ) from exc


def convert_inputs(alpha: Any, beta: Any, domain: Any) -> Converted:
    """Checks alpha, beta (..., M) float32 and domain (..., M) bool/uint8 or None.

    Returns (batch, M) views and a function that gives a result array of shape (batch,) or
    (batch, M) back in the caller's kind (torch tensor or NumPy array) and batch shape.
    """
    a = _as_numpy(alpha, "alpha", True)
    kind_is_torch = _is_torch_tensor(alpha)
    if _is_torch_tensor(beta) != kind_is_torch:
        raise TypeError(f"beta must be the same kind of array as alpha ({_describe(alpha)}), "
                        f"got {_describe(beta)}")
    b = _as_numpy(beta, "beta", True)
    if a.ndim < 1:
        raise ValueError(f"alpha must have shape (..., M), got a 0-d array {_describe(alpha)}")
    if b.shape != a.shape:
        raise ValueError(f"beta must have the shape of alpha {a.shape}, got {b.shape}")
    d = None
    if domain is not None:
        if _is_torch_tensor(domain) != kind_is_torch:
            raise TypeError(
                f"domain must be the same kind of array as alpha ({_describe(alpha)}), "
                f"got {_describe(domain)}"
            )
        d = _as_numpy(domain, "domain", False)
        if d.shape != a.shape:
            raise ValueError(f"domain must have the shape of alpha {a.shape}, got {d.shape}")
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
