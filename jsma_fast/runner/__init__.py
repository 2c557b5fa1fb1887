"""The data-set runner: :func:`attack_dataset` attacks a whole data set in checksummed,
resumable chunks, on one process or under ``torchrun`` (see ``docs/scaling.md``).

* :mod:`~jsma_fast.runner.dataset`: :func:`attack_dataset`, :func:`iter_attack_dataset`,
  :class:`DatasetResults`.
* :mod:`~jsma_fast.runner.rows`: the rows of a data set, their targets and labels.
* :mod:`~jsma_fast.runner.columns`: per-row results as NumPy columns (:data:`COLUMNS`).
* :mod:`~jsma_fast.runner.checkpoint`: :class:`ChunkStore`, the checksummed chunk files.
* :mod:`~jsma_fast.runner.shards`: chunks of a stage, which rank computes which, resuming.
* :mod:`~jsma_fast.runner.merge`: the chunks of a stage gathered into one file.
* :mod:`~jsma_fast.runner.folder`: the results folder's lock, and the refusal to replace
  earlier results.
* :mod:`~jsma_fast.runner.distributed`: the process context (one process or ``torchrun``).

It knows of the attack only what an attack call returns (:class:`~jsma_fast.AttackResult`).
"""

from .checkpoint import ChunkError, ChunkStore
from .columns import COLUMNS, concat_columns, result_columns
from .dataset import DatasetResults, attack_dataset, iter_attack_dataset
from .distributed import RankFailed
from .folder import FolderInUse, ResultsExist

__all__ = [
    "COLUMNS",
    "ChunkError",
    "ChunkStore",
    "DatasetResults",
    "FolderInUse",
    "RankFailed",
    "ResultsExist",
    "attack_dataset",
    "concat_columns",
    "iter_attack_dataset",
    "result_columns",
]
