"""Imports of advertorch 0.2.3 on current PyTorch: a removed torch helper put back, and a
stand-in for a torchvision that cannot be imported. Its JSMA code runs unchanged."""

from __future__ import annotations

import sys
import types
from typing import Any


def import_advertorch_jsma() -> Any:
    """advertorch 0.2.3's JSMA class, importable on modern PyTorch.

    advertorch's package ``__init__`` imports every attack, and ``fast_adaptive_boundary``
    does ``from torch.autograd.gradcheck import zero_gradients``, a helper that PyTorch
    removed in 1.9, so ``import advertorch`` fails. The shim below defines that helper (as it
    was: zero the ``.grad`` of a tensor, or of each tensor in an iterable) before the import.
    Only the FAB attack calls it; the JSMA code is untouched.
    """
    import torch.autograd.gradcheck  # noqa: F401  (loads the module)

    # The module, not the function of the same name that torch.autograd exports.
    gradcheck = sys.modules["torch.autograd.gradcheck"]
    if not hasattr(gradcheck, "zero_gradients"):

        def zero_gradients(x: Any) -> None:
            if isinstance(x, torch.Tensor):
                if x.grad is not None:
                    x.grad.detach_()
                    x.grad.zero_()
            else:
                for element in x:
                    zero_gradients(element)

        gradcheck.zero_gradients = zero_gradients  # type: ignore[attr-defined]
    _stub_broken_torchvision()
    from advertorch.attacks import JacobianSaliencyMapAttack

    return JacobianSaliencyMapAttack


def _stub_broken_torchvision() -> None:
    """Lets advertorch import where torchvision is installed but cannot be imported.

    ``advertorch.functional`` (used by its JPEG defence only) does ``from torchvision import
    transforms`` at import time. A torchvision wheel whose compiled operators do not match
    the installed torch fails on import (``operator torchvision::nms does not exist``); the
    JSMA attack needs nothing from it, so a ``torchvision.transforms`` module stands in whose
    transforms (``ToPILImage()``, ``ToTensor()``, built at import) raise if ever applied.
    """
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 (any failure of the import itself)
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        stub = types.ModuleType("torchvision")
        stub.transforms = types.ModuleType("torchvision.transforms")  # type: ignore[attr-defined]

        class Unavailable:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("torchvision cannot be imported in this environment")

        stub.transforms.__getattr__ = lambda name: Unavailable  # type: ignore[attr-defined]
        sys.modules["torchvision"] = stub
        sys.modules["torchvision.transforms"] = stub.transforms  # type: ignore[attr-defined]
