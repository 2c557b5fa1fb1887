"""What this installation of jsma-fast was built with, and which backends can run."""

from __future__ import annotations

import platform
import sys
from typing import Any, Dict

try:
    from . import _C
except ImportError as exc:  # the usual cause: importing the source tree, not the installed package
    raise ImportError(
        "jsma_fast._C (the native extension) could not be imported from "
        f"{__file__.rsplit('/', 1)[0]}: {exc}. Install the package (pip install .) and import it "
        "from outside the source tree; run the tests with the installed 'pytest' script rather "
        "than 'python -m pytest', which puts the source tree first on sys.path."
    ) from exc


def cuda_available() -> bool:
    """True when the CUDA kernels were built and at least one CUDA device is usable."""
    count, _ = _C.cuda_device_count()
    return count > 0


def build_info() -> Dict[str, Any]:
    """Version, compiler, SIMD levels (compiled, and chosen at run time for this CPU), OpenMP,
    CUDA (built or not, architectures, runtime) and why CUDA is unavailable, if it is."""
    info = dict(_C.build_info())
    info["simd_runnable"] = ",".join(_C.simd_levels_runnable())
    count, why = _C.cuda_device_count()
    info["cuda_devices"] = count
    info["cuda_unavailable_reason"] = "" if count > 0 else why
    info["python"] = platform.python_version()
    torch = sys.modules.get("torch")
    info["torch"] = getattr(torch, "__version__", "not imported")
    return info
