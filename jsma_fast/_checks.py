"""The argument checks of every entry point, written once.

The searches (``ops``), their CPU and CUDA array paths (``_arrays``, ``_cuda``) and the
``torch.ops.jsma_fast`` operators (``torch_ops``) call these functions, so a rule and its
message exist in one place. Every error names the argument, says what was expected and what
was received. The native module (``csrc/bindings.cpp``) checks its buffers again as the last
guard, for callers of ``_C`` itself.

Scalars accept every integer type (``operator.index``: ``int``, ``np.int64``, ...) and every
real type (``numbers.Real``: ``float``, ``np.float32``, ...); ``bool`` is refused where a
number is expected, so that ``True`` is not taken for 1.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
import sys
from typing import Any, Optional, Sequence, Tuple

import numpy as np

#: Most CPU threads a search may use; mirrors ``kMaxThreads`` in ``csrc/cpu/parallel.h``.
#: More than the cores gains nothing, and the OpenMP runtime crashes when it cannot create
#: a team of the size asked for.
MAX_THREADS = 1024
#: The environment variable that sets the default ``simd`` level.
SIMD_ENV = "JSMA_FAST_SIMD"
SIMD_LEVELS = ("auto", "scalar", "avx2", "avx512")
MODES = ("increase", "decrease")

# Expected dtypes of the search inputs, by argument.
_DTYPES = {"alpha": ("float32",), "beta": ("float32",), "domain": ("bool", "uint8")}


# ----------------------------------------------------------------------------- describing


def _torch() -> Any:
    return sys.modules.get("torch")


def is_torch_tensor(x: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def is_cupy_array(x: Any) -> bool:
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def describe(x: Any) -> str:
    """What was received, for error messages: kind, shape, dtype, device (and layout)."""
    if is_torch_tensor(x):
        layout = "" if x.layout == _torch().strided else f", layout={x.layout}"
        return f"torch.Tensor(shape={tuple(x.shape)}, dtype={x.dtype}, device={x.device}{layout})"
    if isinstance(x, np.ndarray):
        return f"{type(x).__module__}.{type(x).__name__}(shape={x.shape}, dtype={x.dtype})"
    if is_cupy_array(x):
        return f"cupy.ndarray(shape={x.shape}, dtype={x.dtype}, device=cuda:{x.device.id})"
    return type(x).__name__


def dtype_name(x: Any) -> str:
    """The NumPy-style dtype name of a torch tensor or NumPy array (``"float32"``); a
    non-native byte order keeps its marker (``">f4"``), since the kernels cannot read it."""
    if is_torch_tensor(x):
        return str(x.dtype).replace("torch.", "")
    dtype = np.dtype(x.dtype)
    return dtype.name if dtype.isnative else dtype.str


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{type(value).__name__} {text[:60]}..."


# ----------------------------------------------------------------------------- scalars


def check_int(
    value: Any, name: str, *, minimum: Optional[int] = None, maximum: Optional[int] = None
) -> int:
    """``value`` as a Python int: any integer type, not bool, within the bounds given."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got the bool {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer, got {type(value).__name__} {_shown(value)}"
        ) from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be an integer {_bounds(minimum, maximum)}, got {number}")
    return number


def _bounds(minimum: Optional[int], maximum: Optional[int]) -> str:
    if maximum is None:
        return f">= {minimum}"
    if minimum is None:
        return f"<= {maximum}"
    return f"in [{minimum}, {maximum}]"


def check_real(value: Any, name: str, *, finite: bool = True) -> float:
    """``value`` as a Python float: any real type (``numbers.Real``), not bool; finite unless
    ``finite=False``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {_shown(value)}")
    number = float(value)
    if finite and not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {number!r}")
    return number


def check_number(value: Any, name: str) -> float:
    """``check_real`` that also takes a one-element floating-point tensor; not checked finite
    (the caller's rule names what it needs)."""
    if is_torch_tensor(value) and value.numel() == 1 and value.dtype.is_floating_point:
        value = float(value)
    return check_real(value, name, finite=False)


def check_count(value: Any, name: str, low: int, high: int, *, allow_none: bool) -> Optional[int]:
    """An integer option in ``[low, high]``, or None where ``allow_none``."""
    if value is None and allow_none:
        return None
    expected = "None or an int" if allow_none else "an int"
    try:
        number = check_int(value, name)
    except TypeError:
        raise TypeError(
            f"{name} must be {expected} >= {low}, got {type(value).__name__} {_shown(value)}"
        ) from None
    if number < low:
        raise ValueError(f"{name} must be {expected} >= {low}, got {number}")
    if number > high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {number}")
    return number


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a Python bool: ``bool`` or ``numpy.bool_`` only (not 0/1 or strings)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {_shown(value)}")
    return bool(value)


def check_choice(value: Any, name: str, allowed: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {_shown(value)}")
    return str(value)


def check_mode(mode: Any) -> bool:
    """``mode`` of a search: True for ``"increase"``, False for ``"decrease"``."""
    return check_choice(mode, "mode", MODES) == "increase"


def check_threads(num_threads: Any) -> Optional[int]:
    """``num_threads``: None (the default) or an integer in ``[1, MAX_THREADS]``."""
    if num_threads is None:
        return None
    return check_int(num_threads, "num_threads", minimum=1, maximum=MAX_THREADS)


def check_simd(simd: Any, runnable: Sequence[str]) -> str:
    """``simd``: a level this build and CPU can run (``runnable``) or ``"auto"``; None reads
    ``$JSMA_FAST_SIMD``, and errors then name the variable."""
    name = "simd"
    if simd is None:
        simd = os.environ.get(SIMD_ENV, "auto")
        name = f"the {SIMD_ENV} environment variable"
    if not isinstance(simd, str) or simd not in SIMD_LEVELS:
        raise ValueError(f"{name} must be one of {SIMD_LEVELS}, got {_shown(simd)}")
    if simd != "auto" and simd not in runnable:
        raise ValueError(
            f"{name} must be a level this build and CPU can run "
            f"({', '.join(('auto',) + tuple(runnable))}), got {simd!r}"
        )
    return simd


# ----------------------------------------------------------------------------- arrays


def check_dense(x: Any, name: str) -> None:
    """Refuses arrays whose elements are not what the buffer holds: torch tensors of a sparse
    or other non-strided layout, NumPy masked arrays, SciPy sparse matrices."""
    if is_torch_tensor(x) and x.layout != _torch().strided:
        raise TypeError(
            f"{name} must be a dense (strided) tensor, got {describe(x)}; "
            f"convert it with {name}.to_dense() first"
        )
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{name} must be a plain numpy.ndarray, got {describe(x)}, whose mask "
            "would be ignored; pass numpy.ma.getdata(...) and exclude the masked "
            "features with domain"
        )
    if hasattr(x, "toarray") and hasattr(x, "nnz"):
        raise TypeError(
            f"{name} must be a dense array, got the sparse matrix "
            f"{type(x).__name__}; convert it with {name}.toarray() first"
        )


def check_dtype(x: Any, name: str, dtype: str) -> None:
    """``dtype`` (a NumPy-style name such as ``"float32"``) is what ``name`` must have."""
    expected = _DTYPES[name]
    if dtype not in expected:
        detail = describe(x)
        if dtype not in detail:  # e.g. an array interface object: say the dtype too
            detail += f" with dtype {dtype}"
        raise TypeError(f"{name} must be {' or '.join(expected)}, got {detail}")


def check_contiguous(
    x: Any, name: str, contiguous: bool, strides: Tuple[int, ...], advice: str
) -> None:
    if not contiguous:
        raise ValueError(
            f"{name} must be {'contiguous' if is_torch_tensor(x) else 'C-contiguous'}"
            f", got strides {tuple(strides)} for {describe(x)}; {advice}"
        )


def check_same_kind(x: Any, name: str, same: bool, alpha: Any) -> None:
    if not same:
        raise TypeError(
            f"{name} must be the same kind of array as alpha ({describe(alpha)}), got {describe(x)}"
        )


def check_shapes(
    alpha: Tuple[int, ...], beta: Tuple[int, ...], domain: Optional[Tuple[int, ...]]
) -> None:
    """alpha ``(..., M)``; beta and domain (when given) of alpha's shape."""
    if len(alpha) < 1:
        raise ValueError(f"alpha must have shape (..., M), got a 0-d array of shape {alpha}")
    if beta != alpha:
        raise ValueError(f"beta must have the shape of alpha {alpha}, got {beta}")
    if domain is not None and domain != alpha:
        raise ValueError(f"domain must have the shape of alpha {alpha}, got {domain}")


def check_same_device(x: Any, name: str, same: bool, alpha_device: Any) -> None:
    if not same:
        raise ValueError(
            f"{name} must be on the device of alpha ({alpha_device}), got {describe(x)}"
        )


def check_tensors(alpha: Any, beta: Any, domain: Any) -> None:
    """All rules for torch tensors (real or fake) of any device: the operators' checks."""
    for name, x in (("alpha", alpha), ("beta", beta), ("domain", domain)):
        if x is None:
            continue
        check_same_kind(x, name, is_torch_tensor(x), alpha)
        check_dense(x, name)
        check_dtype(x, name, dtype_name(x))
    check_shapes(
        tuple(alpha.shape), tuple(beta.shape), None if domain is None else tuple(domain.shape)
    )
    for name, x in (("beta", beta), ("domain", domain)):
        if x is not None:
            check_same_device(x, name, x.device == alpha.device, alpha.device)
