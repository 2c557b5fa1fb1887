"""The searches on CUDA arrays: checks, device pointers and outputs for the kernels in
``csrc/cuda``.

Accepted inputs, all without copies:

* torch CUDA tensors: the kernels run on ``torch.cuda.current_stream(device)``, outputs are
  torch tensors;
* CuPy arrays (through ``__cuda_array_interface__``): the kernels run on CuPy's current stream,
  outputs are CuPy arrays;
* any other ``__cuda_array_interface__`` or DLPack producer on a CUDA device: viewed as a torch
  tensor (``torch.as_tensor`` / ``torch.from_dlpack``), so torch's stream and outputs apply.

The pair search runs on the device (the exhaustive kernels) or, for ``method="pruned"`` and
for ``"auto"`` where :func:`auto_picks_pruned`, on the host: the rows are copied
to pinned host memory on the caller's stream, the CPU pruned search runs on them, and the
small results are copied back. A (1, 150528) row is 1.2 MB each way in, a few dozen bytes
out, against about 10^10 pairs for the exhaustive kernel; the pruned search's answer and
contract are the CPU's (``docs/pruned-search.md``). Unlike the kernels, the host route
waits for the caller's stream.

The argument checks are those of every entry point (``_checks.py``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import numpy as np

from . import _C
from ._checks import (
    check_contiguous,
    check_dense,
    check_dtype,
    check_same_device,
    check_same_kind,
    check_shapes,
    dtype_name,
    is_cupy_array,
    is_torch_tensor,
)

# DLPack device types of CUDA memory: kDLCUDA, kDLCUDAHost (pinned, rejected later), kDLCUDAManaged.
_DLPACK_CUDA_DEVICES = (2, 13)
# "auto" sends a call to the pruned search on the host when its rows have at least this many
# features and the exhaustive kernel would score at least this many pairs: the kernel's work
# grows as B * M^2, the round trip's as B * M, and each has a fixed cost of about 0.2 to 0.3
# ms (bench/bench_gpu.py's sweep on an H200; bench/RESULTS.md, "GPU").
AUTO_PRUNED_MIN_FEATURES = 6144
AUTO_PRUNED_MIN_PAIRS = 10**9
_TYPESTRS = {"<f4": "float32", "|b1": "bool", "|u1": "uint8"}


def _torch():
    return sys.modules.get("torch")


def is_cuda_array(x: Any) -> bool:
    """True for arrays in CUDA device memory: torch CUDA tensors, ``__cuda_array_interface__``
    objects, DLPack producers on a CUDA device."""
    if is_torch_tensor(x):
        return x.is_cuda
    if isinstance(x, np.ndarray) or x is None:
        return False
    if hasattr(x, "__cuda_array_interface__"):
        return True
    dlpack_device = getattr(x, "__dlpack_device__", None)
    if callable(dlpack_device):
        try:
            return int(dlpack_device()[0]) in _DLPACK_CUDA_DEVICES
        except Exception:  # a producer that cannot say is not taken for a CUDA array
            return False
    return False


def _where(x: Any) -> str:
    if is_torch_tensor(x):
        return str(x.device)
    if is_cupy_array(x):
        return f"cuda:{x.device.id}"
    return "a CUDA device"


def require_cuda(x: Any, name: str) -> None:
    """Raises RuntimeError when ``x`` is a CUDA array but the kernels cannot run here."""
    if not hasattr(_C, "cuda_pair_search"):
        raise RuntimeError(
            f"{name} is on {_where(x)} but jsma_fast was built without CUDA (nvcc was not found "
            "at build time, or JSMA_FAST_CUDA=OFF); reinstall with nvcc on PATH, or pass CPU "
            "arrays"
        )
    count, why = _C.cuda_device_count()
    if count == 0:
        raise RuntimeError(
            f"{name} is on {_where(x)} but no CUDA device is usable: {why}; pass CPU arrays"
        )


@dataclass(frozen=True)
class _Buffer:
    """A C-contiguous device array as the kernels see it."""

    ptr: int
    shape: Tuple[int, ...]
    dtype: str  # "float32", "bool", "uint8" or another name (rejected by the checks)
    device: int


def _c_strides(shape: Tuple[int, ...], itemsize: int) -> Tuple[int, ...]:
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _is_c_contiguous(shape: Tuple[int, ...], strides: Optional[Tuple[int, ...]], itemsize: int):
    if strides is None or math.prod(shape) <= 1:
        return True
    # Dimensions of size 1 may carry any stride.
    return all(n == 1 or s == c for n, s, c in zip(shape, strides, _c_strides(shape, itemsize)))


def _buffer(x: Any, name: str) -> _Buffer:
    check_dense(x, name)
    if is_torch_tensor(x):
        check_dtype(x, name, dtype_name(x))
        check_contiguous(x, name, x.is_contiguous(), x.stride(), "call .contiguous() first")
        return _Buffer(x.data_ptr(), tuple(x.shape), dtype_name(x), x.device.index or 0)
    interface = x.__cuda_array_interface__
    shape = tuple(int(n) for n in interface["shape"])
    dtype = _TYPESTRS.get(interface["typestr"], interface["typestr"])
    check_dtype(x, name, dtype)
    strides = interface.get("strides")
    itemsize = 4 if dtype == "float32" else 1
    check_contiguous(
        x,
        name,
        _is_c_contiguous(shape, None if strides is None else tuple(strides), itemsize),
        () if strides is None else tuple(strides),
        "make a contiguous copy first",
    )
    device = x.device.id if is_cupy_array(x) else 0
    return _Buffer(int(interface["data"][0]), shape, dtype, device)


def _as_torch(x: Any) -> Any:
    """A zero-copy torch view of a CUDA array that is neither a torch tensor nor CuPy."""
    torch = _torch()
    if torch is None:
        import torch  # noqa: F811  (jsma_fast depends on torch; imported only when needed)
    if hasattr(x, "__dlpack__"):
        return torch.from_dlpack(x)
    return torch.as_tensor(x)


@dataclass(frozen=True)
class _Call:
    """Checked inputs: pointers for _C, and how to allocate and shape the outputs."""

    alpha: _Buffer
    beta: _Buffer
    domain: Optional[_Buffer]
    batch_shape: Tuple[int, ...]
    batch: int
    m: int
    stream: int
    library: str  # "torch" or "cupy"


def _prepare(alpha: Any, beta: Any, domain: Any) -> Tuple[_Call, Any, Any, Any]:
    require_cuda(alpha, "alpha")
    if not (is_torch_tensor(alpha) or is_cupy_array(alpha)):
        alpha = _as_torch(alpha)
        beta = _as_torch(beta) if is_cuda_array(beta) and not is_torch_tensor(beta) else beta
        if domain is not None and is_cuda_array(domain) and not is_torch_tensor(domain):
            domain = _as_torch(domain)
    library = "torch" if is_torch_tensor(alpha) else "cupy"
    same_kind_as = is_torch_tensor if library == "torch" else is_cupy_array

    a = _buffer(alpha, "alpha")
    check_same_kind(beta, "beta", same_kind_as(beta), alpha)
    if library == "torch":
        check_same_device(beta, "beta", beta.device == alpha.device, alpha.device)
    b = _buffer(beta, "beta")
    check_same_device(beta, "beta", b.device == a.device, f"cuda:{a.device}")
    d = None
    if domain is not None:
        check_same_kind(domain, "domain", same_kind_as(domain), alpha)
        if library == "torch":
            check_same_device(domain, "domain", domain.device == alpha.device, alpha.device)
        d = _buffer(domain, "domain")
        check_same_device(domain, "domain", d.device == a.device, f"cuda:{a.device}")
    check_shapes(a.shape, b.shape, None if d is None else d.shape)

    if library == "torch":
        torch = _torch()
        stream = torch.cuda.current_stream(alpha.device).cuda_stream
    else:
        import cupy

        with cupy.cuda.Device(a.device):
            stream = cupy.cuda.get_current_stream().ptr
    batch_shape = a.shape[:-1]
    call = _Call(a, b, d, batch_shape, math.prod(batch_shape), a.shape[-1], int(stream), library)
    return call, alpha, beta, domain


def _empty(call: _Call, like: Any, shape: Tuple[int, ...], dtype: str) -> Any:
    """An output on the inputs' device, allocated for the stream the kernels run on."""
    if call.library == "torch":
        torch = _torch()
        return torch.empty(shape, dtype=getattr(torch, dtype), device=like.device)
    import cupy

    with cupy.cuda.Device(call.alpha.device):
        return cupy.empty(shape, dtype=dtype)


def _ptr(x: Any) -> int:
    return x.data_ptr() if is_torch_tensor(x) else int(x.data.ptr)


def _launch(kernel: Callable[..., None], call: _Call, increase: bool, *outputs: Any) -> None:
    """Runs a search binding on ``call``'s inputs, writing into ``outputs`` (CUDA arrays of
    ``call``'s device), on ``call``'s stream."""
    kernel(
        call.alpha.ptr,
        call.beta.ptr,
        _domain_ptr(call),
        call.batch,
        call.m,
        increase,
        *(_ptr(out) for out in outputs),
        call.alpha.device,
        call.stream,
    )


def _domain_ptr(call: _Call) -> int:
    return 0 if call.domain is None else call.domain.ptr


# The pruned search on host arrays: (alpha, beta, domain) (B, M) NumPy, domain None or
# bool/uint8, to (p, q, score, valid, candidates) (B,) NumPy arrays.
HostSearch = Callable[[np.ndarray, np.ndarray, Optional[np.ndarray]], Tuple[np.ndarray, ...]]


def select_pairs(
    alpha: Any,
    beta: Any,
    domain: Any,
    increase: bool,
    return_candidates: bool = False,
    *,
    method: str = "exact",
    host_search: Optional[HostSearch] = None,
) -> Tuple[Tuple[Any, ...], Any]:
    """The pair search of CUDA arrays: ``((p, q, score, valid), candidates)`` with the batch
    shape, on the inputs' device; ``candidates`` (features searched per sample) only when
    asked for, else None. ``"exact"`` runs the exhaustive kernels; ``"pruned"``, and
    ``"auto"`` where :func:`auto_picks_pruned`, run ``host_search`` on host copies of the
    rows (:func:`search_on_host`)."""
    call, alpha, beta, domain = _prepare(alpha, beta, domain)
    if method == "pruned" or (method == "auto" and auto_picks_pruned(call.batch, call.m)):
        if host_search is None:
            raise ValueError(f"method={method!r} on CUDA arrays needs the host search")
        return _host_route(call, alpha, beta, domain, host_search, return_candidates)
    n = (call.batch,)
    p, q = _empty(call, alpha, n, "int64"), _empty(call, alpha, n, "int64")
    score, valid = _empty(call, alpha, n, "float32"), _empty(call, alpha, n, "bool")
    _launch(_C.cuda_pair_search, call, increase, p, q, score, valid)
    shaped = tuple(x.reshape(call.batch_shape) for x in (p, q, score, valid))
    candidates = _usable_features(call, alpha, beta, domain) if return_candidates else None
    return shaped, candidates


def auto_picks_pruned(batch: int, m: int) -> bool:
    """Whether ``method="auto"`` takes the pruned route for a (batch, m) call on CUDA arrays:
    at least ``AUTO_PRUNED_MIN_FEATURES`` features and ``AUTO_PRUNED_MIN_PAIRS`` pairs."""
    return m >= AUTO_PRUNED_MIN_FEATURES and batch * (m * (m - 1) // 2) >= AUTO_PRUNED_MIN_PAIRS


def _host_route(
    call: _Call, alpha: Any, beta: Any, domain: Any, search: HostSearch, return_candidates: bool
) -> Tuple[Tuple[Any, ...], Any]:
    """:func:`search_on_host` on checked CUDA arrays; CuPy arrays go through torch views and
    get CuPy results."""
    views = [x if x is None or is_torch_tensor(x) else _as_torch(x) for x in (alpha, beta, domain)]
    p, q, score, valid, candidates = search_on_host(*views, search)
    results = [x.reshape(call.batch_shape) for x in (p, q, score, valid, candidates)]
    if call.library == "cupy":
        import cupy

        results = [cupy.from_dlpack(x) for x in results]
    return tuple(results[:4]), (results[4] if return_candidates else None)


def search_on_host(alpha: Any, beta: Any, domain: Any, search: HostSearch) -> Tuple[Any, ...]:
    """Runs ``search`` on host copies of torch tensors and returns its five (B,) results as
    tensors on the inputs' device.

    alpha, beta: (..., M) float32 tensors of one device; domain: (..., M) bool/uint8 or None.
    CUDA rows are copied into pinned host memory on the current stream, which is then waited
    for; the results (a few bytes per row) go back in one asynchronous copy on that stream.
    CPU tensors take the same path without the copies, which is how the CPU tests hold this
    route, packing included, to the CPU search.
    """
    torch = _torch()
    device = alpha.device
    on_gpu = device.type == "cuda"
    rows_shape = (math.prod(alpha.shape[:-1]), alpha.shape[-1])

    def host(x: Any) -> Optional[np.ndarray]:
        if x is None:
            return None
        x = x.detach()
        if on_gpu:
            copy = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
            x = copy.copy_(x, non_blocking=True)
        return x.reshape(rows_shape).numpy()

    rows = [host(x) for x in (alpha, beta, domain)]
    if on_gpu:
        torch.cuda.current_stream(device).synchronize()
    return _to_device(search(*rows), device)


def _to_device(results: Tuple[np.ndarray, ...], device: Any) -> Tuple[Any, ...]:
    """(p, q, score, valid, candidates) host arrays on ``device``, in one asynchronous copy:
    packed as the rows of one pinned int64 array (the score by its bits), unpacked there."""
    torch = _torch()
    p, q, score, valid, candidates = results
    pinned = device.type == "cuda"
    packed = torch.empty((5, p.shape[0]), dtype=torch.int64, pin_memory=pinned)
    rows = packed.numpy()
    rows[0], rows[1], rows[3], rows[4] = p, q, valid, candidates
    rows[2] = score.view(np.int32)
    on_device = packed.to(device, non_blocking=pinned)
    score_bits = on_device[2].to(torch.int32)
    return (
        on_device[0],
        on_device[1],
        score_bits.view(torch.float32),
        on_device[3].to(torch.bool),
        on_device[4],
    )


def _usable_features(call: _Call, alpha: Any, beta: Any, domain: Any) -> Any:
    """Per sample, the features the exhaustive search runs over: in the domain, not NaN."""
    xp = _torch() if call.library == "torch" else sys.modules["cupy"]
    usable = ~(xp.isnan(alpha) | xp.isnan(beta))
    if domain is not None:
        usable &= domain.astype(bool) if call.library == "cupy" else domain.bool()
    return usable.sum(-1) if call.library == "torch" else usable.sum(axis=-1, dtype="int64")


def select_features(alpha: Any, beta: Any, domain: Any, increase: bool) -> Tuple[Any, ...]:
    """The single-feature arg-max on the GPU: ``(index, score, valid)`` with the batch shape."""
    call, alpha, beta, domain = _prepare(alpha, beta, domain)
    n = (call.batch,)
    index = _empty(call, alpha, n, "int64")
    score, valid = _empty(call, alpha, n, "float32"), _empty(call, alpha, n, "bool")
    _launch(_C.cuda_feature_search, call, increase, index, score, valid)
    return tuple(x.reshape(call.batch_shape) for x in (index, score, valid))


def saliency_map(alpha: Any, beta: Any, domain: Any, increase: bool) -> Any:
    """The single-feature saliency map on the GPU, shaped like ``alpha``."""
    call, alpha, beta, domain = _prepare(alpha, beta, domain)
    result = _empty(call, alpha, (call.batch, call.m), "float32")
    _launch(_C.cuda_saliency_map, call, increase, result)
    return result.reshape(call.batch_shape + (call.m,))


def select_top2(alpha: Any, domain: Any, increase: bool) -> Tuple[Any, ...]:
    """The top-2 rule on the GPU: ``(p, q, score, valid)`` with the batch shape.

    Written with torch reductions (linear in M, no M x M memory), so it runs on the device of
    any torch tensor and is tested on the CPU against the native kernel. CuPy and other CUDA
    arrays are viewed as torch tensors through DLPack and get CuPy results back.
    """
    call, alpha, _, domain = _prepare(alpha, alpha, domain)
    if call.library == "cupy":
        import cupy

        as_torch = _as_torch(alpha), None if domain is None else _as_torch(domain)
        return tuple(cupy.from_dlpack(r) for r in top2_reduction(*as_torch, increase))
    return top2_reduction(alpha, domain, increase)


def top2_reduction(alpha: Any, domain: Any, increase: bool) -> Tuple[Any, ...]:
    """The top-2 rule on torch tensors of any device: alpha (..., M) float32, domain (..., M)
    bool/uint8 or None. Two first-maximum reductions, the second without the first feature."""
    torch = _torch()
    value = alpha if increase else -alpha  # exact: increase form
    if value.shape[-1] == 0:
        none = torch.full(value.shape[:-1], -1, dtype=torch.int64, device=value.device)
        return none, none.clone(), value.new_zeros(value.shape[:-1]), none >= 0
    usable = ~torch.isnan(value)
    if domain is not None:
        usable &= domain.bool()
    positions = torch.arange(value.shape[-1], device=value.device)
    first, first_found = _first_maximum(value, usable)
    second, second_found = _first_maximum(value, usable & (positions != first[..., None]))
    found = first_found & second_found
    minus_one = torch.full_like(first, -1)
    p = torch.where(found, torch.minimum(first, second), minus_one)
    q = torch.where(found, torch.maximum(first, second), minus_one)
    pick = lambda index: value.gather(-1, index.clamp(min=0)[..., None])[..., 0]  # noqa: E731
    score = torch.where(found, pick(first) + pick(second), torch.zeros_like(value[..., 0]))
    return p, q, score, found


def _first_maximum(value: Any, usable: Any) -> Tuple[Any, Any]:
    """The first position of the largest usable value per row, and whether there is one.
    Compares values, not a -inf-filled copy, so that a usable -inf is told from padding."""
    torch = _torch()
    best = torch.where(usable, value, torch.full_like(value, -math.inf)).amax(-1, keepdim=True)
    hits = usable & (value == best)
    return hits.to(torch.uint8).argmax(-1), hits.any(-1)
