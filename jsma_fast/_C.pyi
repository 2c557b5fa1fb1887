"""Type stub of the native module ``jsma_fast._C`` (``csrc/bindings.cpp``,
``csrc/bindings_cuda.cpp``). Its Python callers are ``jsma_fast.ops`` (CPU arrays),
``jsma_fast._cuda`` (device pointers) and ``jsma_fast._build`` (build facts).

CPU searches take C-contiguous float32 ``alpha``, ``beta`` of shape (batch, m) and a bool or
uint8 ``domain`` of the same shape (or None for every feature); ``num_threads`` 0 means the
OpenMP default. The ``cuda_*`` functions take raw device pointers (``Ptr``), sizes, the device
index and the caller's stream, launch on that stream and write into the given outputs.
"""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from numpy.typing import NDArray

Ptr = int
F32 = NDArray[np.float32]
I64 = NDArray[np.int64]
Valid = NDArray[np.bool_]
Domain = Optional[NDArray[Any]]
#: (p, q, score, valid), each (batch,).
Pairs = Tuple[I64, I64, F32, Valid]

def pair_search(
    alpha: F32, beta: F32, domain: Domain, increase: bool, num_threads: int, simd: str = "auto"
) -> Pairs:
    """Exhaustive pair search."""

def pair_search_pruned(
    alpha: F32, beta: F32, domain: Domain, increase: bool, num_threads: int, simd: str = "auto"
) -> Tuple[I64, I64, F32, Valid, I64]:
    """Pruned exact pair search: the pairs and, per sample, the features searched."""

def top2_search(alpha: F32, domain: Domain, increase: bool, num_threads: int) -> Pairs:
    """The two largest (decrease: smallest) alpha in the domain."""

def feature_search(
    alpha: F32, beta: F32, domain: Domain, increase: bool, num_threads: int
) -> Tuple[I64, F32, Valid]:
    """Single-feature arg-max: (index, score, valid), each (batch,)."""

def saliency_map(alpha: F32, beta: F32, domain: Domain, increase: bool, num_threads: int) -> F32:
    """Single-feature saliency map, (batch, m)."""

def _cuda_emulate_pair_search(alpha: F32, beta: F32, domain: Domain, increase: bool) -> Pairs:
    """The CUDA pair search's decomposition run on the host (every build, for tests)."""

class ShortWaits:
    """Holds a parked OpenMP team of ``spare`` threads in a thread of its own, so that the
    runtime's threads spin briefly before they sleep, until :meth:`release`
    (``jsma_fast._short_waits``)."""

    def __init__(self, spare: int) -> None: ...
    def release(self) -> None: ...
    @property
    def active(self) -> bool: ...
    @property
    def threads(self) -> int: ...

def build_info() -> Dict[str, Any]:
    """How this module was built (compiler, SIMD, OpenMP, CUDA)."""

def cuda_device_count() -> Tuple[int, str]:
    """(count, reason): usable CUDA devices, and why there are none."""

def simd_levels_runnable() -> List[str]:
    """SIMD levels this build can run on this CPU, narrowest first."""

# Present in CUDA builds only: device pointers in, outputs written on the caller's stream.
def cuda_pair_search(
    alpha: Ptr,
    beta: Ptr,
    domain: Ptr,
    batch: int,
    m: int,
    increase: bool,
    p: Ptr,
    q: Ptr,
    score: Ptr,
    valid: Ptr,
    device: int,
    stream: Ptr,
) -> None: ...
def cuda_feature_search(
    alpha: Ptr,
    beta: Ptr,
    domain: Ptr,
    batch: int,
    m: int,
    increase: bool,
    index: Ptr,
    score: Ptr,
    valid: Ptr,
    device: int,
    stream: Ptr,
) -> None: ...
def cuda_saliency_map(
    alpha: Ptr,
    beta: Ptr,
    domain: Ptr,
    batch: int,
    m: int,
    increase: bool,
    map: Ptr,
    device: int,
    stream: Ptr,
) -> None: ...
def cuda_pair_search_workspace_bytes(batch: int, m: int) -> int: ...
def cuda_driver_version() -> int: ...
