"""A few adversarial examples kept by every :func:`~jsma_fast.runner.attack_dataset` run into
a folder, with or without ``keep_adv``, so that a report can show what the attack did without
storing every adversarial input: in the first chunk, the first data set row of each true
class that the model classifies correctly (at most :data:`EXAMPLE_ROWS` rows), with all their
targets.

The first chunk also saves them as chunk 0 of the stage :data:`STAGE` (a checksummed chunk
like any other, kept on resume); rank 0 then writes ``examples.npz``: per result row of
those, the original ``x``, ``x_adv`` and the columns of ``results.npz``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .checkpoint import ChunkStore
from .columns import Columns
from .rows import Rows
from .shards import Chunk

#: Data set rows whose adversarial examples are kept.
EXAMPLE_ROWS = 10
#: The chunk stage that holds them.
STAGE = "examples"
EXAMPLES_FILE = "examples.npz"


def select(cols: Columns) -> Optional[Columns]:
    """The result rows of ``cols`` (the first chunk's columns, ``x_adv`` and
    ``clean_predicted`` included) whose source is the first row of its true class that the
    model classifies correctly (the first row of the class when none is), for the first
    :data:`EXAMPLE_ROWS` classes met; None when there are none."""
    if "x_adv" not in cols or not len(cols["source_index"]):
        return None
    wrong = cols["clean_predicted"] != cols["true_class"]
    order = np.lexsort((cols["source_index"], wrong))  # correct rows first, in data order
    _, first = np.unique(cols["true_class"][order], return_index=True)
    sources = np.sort(cols["source_index"][order][first])[:EXAMPLE_ROWS]
    keep = np.isin(cols["source_index"], sources)
    return {k: np.ascontiguousarray(v[keep]) for k, v in cols.items()}


def write(store: ChunkStore, first: Chunk, rows: Rows, out: Path) -> Optional[Path]:
    """Writes ``out/examples.npz`` from the stored examples (on rank 0, after the attack);
    None when the run kept none (e.g. resumed from chunks of a run that predates them)."""
    cols = store.load(STAGE, 0, span=first.span)
    if cols is None:
        return None
    x = [rows.batch(int(i), int(i) + 1)[0][0].cpu().numpy() for i in cols["source_index"]]
    path = out / EXAMPLES_FILE
    np.savez_compressed(path, x=np.stack(x), **cols)
    return path
