"""What a resumed run checks about its model: a fingerprint of what the model computes.

A model's name says nothing about what it computes (``lambda z: net(normalize(z))`` keeps its
name when ``normalize`` or ``net`` changes), so :func:`model_fingerprint` hashes

* the model's outputs on a small probe batch (two rows of the data's sample shape and dtype,
  drawn with a fixed seed; called twice: a model whose outputs differ between the two calls
  cannot be fingerprinted), and
* the parameters and buffers of the modules it holds, and the tensors: the model itself when
  it is an ``nn.Module``; for other callables, the modules and tensors found in their
  closures, default arguments, ``__self__``, ``functools.partial`` arguments and the globals
  their code names (functions found there are looked into too, a few levels deep).

The probe does not change the model: it runs without gradients, on copies of the rows, on one
CPU thread (so that the thread count does not change its rounding), leaves the modules'
train/eval state alone and restores their buffers afterwards (a training-mode BatchNorm
would update its running statistics).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch

from .checkpoint import ChunkError

#: The manifest's model entry for a model that cannot be fingerprinted.
UNVERIFIABLE = "unverifiable: its outputs differ between two calls"
_DEPTH = 3  # how far into functions that call functions the search for modules goes


class ModelUnverifiable(ChunkError):
    """A resume with a model that cannot be fingerprinted (its outputs differ between two
    calls on the same rows) and no fingerprint given by the caller.

    Attributes:
        path: the results folder.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"cannot resume in {str(path)!r}: the model gives different outputs in two calls "
            "on the same rows (a random layer, such as dropout in training mode?), so whether "
            "the stored chunks come from this model cannot be checked; pass "
            "model_fingerprint=<a string naming the model>, the same in every run into this "
            "folder, to vouch for it, or start afresh in another out"
        )


def model_fingerprint(model: Any, probe: torch.Tensor) -> Optional[str]:
    """SHA-256 (hex) of ``model``'s outputs on ``probe`` and of the parameters, buffers and
    tensors it holds; None when two calls on ``probe`` give different outputs."""
    parts = list(_held(model, "model", _DEPTH, set()))
    modules = [value for _, value in parts if isinstance(value, torch.nn.Module)]
    outputs = _probe(model, probe, modules)
    if outputs is None:
        return None
    digest = hashlib.sha256(type(model).__qualname__.encode())
    _hash_tensor(digest, "outputs", outputs)
    for name, value in parts:
        if isinstance(value, torch.nn.Module):
            digest.update(f"{name} {type(value).__qualname__}".encode())
            for key, t in value.state_dict().items():
                _hash_tensor(digest, f"{name}.{key}", t)
        else:
            _hash_tensor(digest, name, value)
    return digest.hexdigest()


def _probe(model: Any, probe: torch.Tensor, modules: List[torch.nn.Module]) -> Any:
    """The model's outputs on ``probe`` (on the CPU), or None when two calls differ."""
    buffers = {id(b): b for m in modules for b in m.buffers()}
    saved = [(b, b.detach().clone()) for b in buffers.values()]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            first = _output(model, probe)
            second = _output(model, probe)
    finally:
        torch.set_num_threads(threads)
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
    if first is None or second is None:
        return None
    same = first.shape == second.shape and first.dtype == second.dtype
    return first if same and torch.equal(first, second) else None


def _output(model: Any, probe: torch.Tensor) -> Optional[torch.Tensor]:
    out = model(probe.clone())
    if not isinstance(out, torch.Tensor):
        return None
    return out.detach().cpu().contiguous()


def _held(obj: Any, name: str, depth: int, seen: set) -> Iterator[Tuple[str, Any]]:
    """``(path, module or tensor)`` for everything ``obj`` holds that decides its outputs."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, (torch.nn.Module, torch.Tensor)):
        yield name, obj
        return
    if depth == 0:
        return
    for child_name, child in _children(obj):
        yield from _held(child, f"{name}.{child_name}", depth - 1, seen)


def _children(obj: Any) -> List[Tuple[str, Any]]:
    """The objects a function, bound method, partial or callable object refers to."""
    if isinstance(obj, functools.partial):
        kids = [("func", obj.func)] + [(f"args[{i}]", a) for i, a in enumerate(obj.args)]
        return kids + [(f"keywords[{k}]", v) for k, v in sorted(obj.keywords.items())]
    kids: List[Tuple[str, Any]] = []
    if hasattr(obj, "__self__") and hasattr(obj, "__func__"):  # a bound method
        kids += [("__self__", obj.__self__), ("__func__", obj.__func__)]
    code = getattr(obj, "__code__", None)
    if code is None:
        return kids + _attributes(obj)
    cells = getattr(obj, "__closure__", None) or ()
    for var, cell in zip(code.co_freevars, cells):
        try:
            kids.append((var, cell.cell_contents))
        except ValueError:  # an empty cell
            pass
    kids += [(f"defaults[{i}]", d) for i, d in enumerate(getattr(obj, "__defaults__", None) or ())]
    kwdefaults: Dict[str, Any] = getattr(obj, "__kwdefaults__", None) or {}
    kids += [(k, v) for k, v in sorted(kwdefaults.items())]
    found = getattr(obj, "__globals__", {})
    kids += [(n, found[n]) for n in code.co_names if n in found]
    return kids


def _attributes(obj: Any) -> List[Tuple[str, Any]]:
    """A callable object's attributes that are modules or tensors (and its ``__call__``)."""
    if isinstance(obj, type) or not callable(obj):
        return []
    kids = [
        (k, v)
        for k, v in sorted(getattr(obj, "__dict__", {}).items())
        if isinstance(v, (torch.nn.Module, torch.Tensor))
    ]
    call = type(obj).__dict__.get("__call__")  # defined in Python: look into it
    return kids + ([("__call__", call)] if hasattr(call, "__code__") else [])


def _hash_tensor(digest: Any, name: str, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    digest.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
    digest.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")
