"""Rows of a data set for the chunked attack: batches by row range from ``(x, y)`` tensors or
a map-style ``torch.utils.data.Dataset``, a fingerprint that identifies the data on resume,
and random targets that depend only on a row's index."""

from __future__ import annotations

import hashlib
from typing import Any, Optional, Tuple

import numpy as np
import torch


class Rows:
    """Row access to a data set.

    Args:
        dataset: ``(x, y)`` with x of shape (N, ...) float and y of shape (N,) int (tensors
            or NumPy arrays; ``y`` may be None), or a map-style Dataset whose items are
            ``(x_i, y_i, ...)`` tuples or bare ``x_i``.

    Raises:
        TypeError, ValueError: anything else, with what was received.
    """

    def __init__(self, dataset: Any) -> None:
        self._x: Optional[torch.Tensor] = None
        self._y: Optional[torch.Tensor] = None
        self._dataset: Any = None
        if isinstance(dataset, (tuple, list)) and len(dataset) == 2 and not _is_dataset(dataset):
            self._x = _tensor(dataset[0], "dataset x")
            self._y = None if dataset[1] is None else _tensor(dataset[1], "dataset y")
            if self._x.dim() < 2 or not self._x.dtype.is_floating_point:
                raise ValueError(
                    f"dataset x must be a floating-point tensor of shape (N, ...), "
                    f"got dtype {self._x.dtype}, shape {tuple(self._x.shape)}"
                )
            if self._y is not None and (
                self._y.shape != (self._x.shape[0],)
                or self._y.dtype.is_floating_point
                or self._y.dtype == torch.bool
            ):
                raise ValueError(
                    f"dataset y must be an integer tensor of shape "
                    f"({self._x.shape[0]},), got dtype {self._y.dtype}, shape "
                    f"{tuple(self._y.shape)}"
                )
            self.has_labels = self._y is not None
            self._n = int(self._x.shape[0])
        elif _is_dataset(dataset):
            if isinstance(dataset, torch.utils.data.IterableDataset):
                raise TypeError(
                    "dataset must be map-style (indexable, with a length), got an "
                    f"IterableDataset ({type(dataset).__name__})"
                )
            self._dataset = dataset
            self._n = len(dataset)
            first = dataset[0] if self._n else None
            self.has_labels = isinstance(first, (tuple, list)) and len(first) >= 2
        else:
            raise TypeError(
                "dataset must be a tuple (x, y) of tensors or a map-style "
                "torch.utils.data.Dataset (with __len__ and __getitem__), got "
                f"{type(dataset).__name__}"
            )

    def __len__(self) -> int:
        return self._n

    def batch(self, start: int, stop: int) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Rows ``[start, stop)``: x of shape (n, ...) and y of shape (n,) int64 (or None)."""
        if self._x is not None:
            y = None if self._y is None else self._y[start:stop].to(torch.int64)
            return self._x[start:stop], y
        items = [self._dataset[i] for i in range(start, stop)]
        try:
            if self.has_labels:
                x = torch.stack([_tensor(it[0], "dataset item x") for it in items])
                y = torch.stack([_tensor(it[1], "dataset item y").reshape(()) for it in items])
                return x, y.to(torch.int64)
            return torch.stack([_tensor(it, "dataset item") for it in items]), None
        except (RuntimeError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(
                f"dataset rows {start}..{stop - 1} do not form a batch: every item "
                "must be (x, y) with x of one shape and y an int class, as item 0 "
                f"is ({type(exc).__name__}: {exc})"
            ) from None

    def fingerprint(self) -> str:
        """SHA-256 identifying the data: all bytes for tensors; for a Dataset its type,
        length and up to 8 evenly spaced items (first and last included)."""
        digest = hashlib.sha256()
        if self._x is not None:
            for t in (self._x, self._y):
                _hash_tensor(digest, t)
            return digest.hexdigest()
        digest.update(f"{type(self._dataset).__qualname__} {self._n}".encode())
        for i in sorted({int(v) for v in np.linspace(0, self._n - 1, min(self._n, 8))}):
            x, y = self.batch(i, i + 1)
            _hash_tensor(digest, x)
            _hash_tensor(digest, y)
        return digest.hexdigest()


def _is_dataset(obj: Any) -> bool:
    return isinstance(obj, torch.utils.data.Dataset) or (
        hasattr(obj, "__getitem__")
        and hasattr(obj, "__len__")
        and not isinstance(obj, (tuple, list, torch.Tensor, np.ndarray))
    )


def _tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return torch.as_tensor(value)
    raise TypeError(f"{name} must be a tensor or NumPy array, got {type(value).__name__}")


def _hash_tensor(digest: Any, t: Optional[torch.Tensor]) -> None:
    if t is None:
        digest.update(b"none")
        return
    t = t.detach().cpu().contiguous()
    digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
    digest.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")


class RowMask:
    """The features an attack may change, for the rows of a data set: one boolean array of
    one sample's shape (shared by every row) or of the data set's shape (N, ...), one per row.

    Raises:
        TypeError: not a boolean tensor or array.
        ValueError: a shape that is neither.
    """

    def __init__(self, mask: Any, rows: Rows) -> None:
        if isinstance(mask, np.ndarray):
            mask = torch.from_numpy(np.array(mask))
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, (torch.Tensor, np.ndarray)) else type(mask)
            raise TypeError(
                "mask must be a boolean tensor or array (True where a feature may change), "
                f"got {got}"
            )
        sample = tuple(rows.batch(0, 1)[0].shape[1:])
        shape = tuple(mask.shape)
        self.per_row = shape == (len(rows),) + sample
        if shape != sample and not self.per_row:
            raise ValueError(
                f"mask must have one sample's shape {sample} or the data set's "
                f"{(len(rows),) + sample}, got {shape}"
            )
        self.mask = mask.detach().clone()

    def rows(self, chunk: Any, kept: torch.Tensor) -> torch.Tensor:
        """The mask of the chunk's rows ``kept`` (positions in the chunk), on their device."""
        if not self.per_row:
            return self.mask.to(kept.device)
        return self.mask[chunk.start : chunk.stop].to(kept.device)[kept]

    def fingerprint(self) -> str:
        data = self.mask.cpu().numpy()
        digest = hashlib.sha256(repr(data.shape).encode() + np.packbits(data).tobytes())
        return "sha256:" + digest.hexdigest()
