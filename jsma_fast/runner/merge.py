"""Merging a stage's chunks into one NPZ file without holding the whole stage in memory.

The chunks are checked one at a time (checksums, identity); then every column is written
into the archive chunk by chunk, so memory holds one chunk's column at a time, whatever the
number of rows. The result is an ordinary ``.npz`` (``numpy.load`` reads it), written to a
temporary name and renamed into place.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._atomic import write_atomic
from .checkpoint import ChunkError, ChunkStore
from .columns import Columns
from .shards import Chunk, missing_chunk

#: Each column's dtype and per-row shape.
_Layout = Dict[str, Tuple[np.dtype, Tuple[int, ...]]]


def merge_stage(
    store: ChunkStore,
    stage: str,
    chunks: Sequence[Chunk],
    path: Path,
    *,
    visit: Optional[Callable[[Columns], None]] = None,
    required: Optional[List[str]] = None,
) -> int:
    """Writes the chunks of ``stage`` as one NPZ of row-wise concatenated columns.

    Args:
        store: the run's chunk store (on rank 0, with every chunk present).
        chunks: in the order of their rows.
        path: the ``.npz`` file to write.
        visit: called with each chunk's columns during the checking pass (e.g. to accumulate
            a summary).
        required: columns every chunk must hold.

    Returns:
        the number of rows written.

    Raises:
        ChunkError: a chunk is missing, bad, or its columns disagree with the first chunk's
            in dtype or per-row shape.
    """
    layout, rows = _check_chunks(store, stage, chunks, visit, required)

    def write(fh) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, (dtype, tail) in layout.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    header = {
                        "descr": np.lib.format.dtype_to_descr(dtype),
                        "fortran_order": False,
                        "shape": (rows,) + tuple(tail),
                    }
                    np.lib.format.write_array_header_2_0(member, header)
                    for chunk in chunks:
                        with np.load(store.path(stage, chunk.index), allow_pickle=False) as data:
                            member.write(np.ascontiguousarray(data[name], dtype=dtype).data)

    write_atomic(Path(path), write)
    return rows


def _check_chunks(
    store: ChunkStore,
    stage: str,
    chunks: Sequence[Chunk],
    visit: Optional[Callable[[Columns], None]],
    required: Optional[List[str]],
) -> Tuple[_Layout, int]:
    """Loads and checks every chunk of ``stage`` in turn (see :func:`merge_stage`).

    Returns:
        ``(layout, rows)``: each column's dtype and per-row shape, and the number of rows.
    """
    layout: _Layout = {}
    rows = 0
    for chunk in chunks:
        cols = store.load(stage, chunk.index, span=chunk.span, columns=required)
        if cols is None:
            raise missing_chunk(store, stage, chunk)
        this = {k: (a.dtype, a.shape[1:]) for k, a in cols.items()}
        if not layout:
            layout = this
        elif this != layout:
            raise ChunkError(
                f"chunk file {str(store.path(stage, chunk.index))!r} has other columns than "
                f"chunk file {str(store.path(stage, chunks[0].index))!r}: {sorted(this)} vs "
                f"{sorted(layout)}; run without --resume to start afresh"
            )
        rows += next(iter(cols.values())).shape[0]
        if visit is not None:
            visit(cols)
    return layout, rows
