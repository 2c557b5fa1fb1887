"""Running the chunks of one stage on every rank of a (possibly one-process) run.

The rows of a stage are cut into chunks of a fixed size, numbered from 0 in data set order;
which rows a chunk holds never depends on the number of processes, so neither do its results.
Rank 0 checks which chunks are already stored (a resumed run) and hands out the others: rank
``r`` of ``W`` takes every ``W``-th pending chunk from the ``r``-th on. Each rank computes its
chunks and stores each one as soon as it is done, so a rank that dies loses only the chunk it
was computing.

Two ways to bring the chunks to rank 0:

* ``gather=False`` (default): the output directory is on a file system that every rank sees;
  each rank writes its chunks there.
* ``gather=True``: no shared file system. Each node keeps the chunks its ranks computed in its
  own copy of the output directory; at the end rank 0 receives the chunks it lacks through the
  process group, checks them, and stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from .checkpoint import ChunkError, ChunkStore, config_hash
from .columns import Columns, concat_columns
from .distributed import Dist

_NOT_SHARED = (
    "the output directory must be on a file system that every rank shares; without "
    "one, pass --gather (gather=True) to send the results to rank 0"
)


@dataclass(frozen=True)
class Chunk:
    """Input rows ``[start, stop)`` of a stage, stored as chunk ``index``."""

    index: int
    start: int
    stop: int

    @property
    def span(self) -> tuple:
        return (self.start, self.stop)

    @property
    def rows(self) -> int:
        return self.stop - self.start


def make_chunks(rows: int, size: int) -> List[Chunk]:
    """Consecutive chunks of ``size`` rows (the last may be shorter) covering ``rows`` rows."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"chunk size must be an int >= 1, got {size!r}")
    return [
        Chunk(i, start, min(start + size, rows)) for i, start in enumerate(range(0, rows, size))
    ]


def open_store(
    ctx: Dist,
    root: Path,
    config: Dict[str, Any],
    *,
    resume: bool,
    gather: bool = False,
    on_bad: str = "rerun",
) -> ChunkStore:
    """The chunk store of a run, prepared once and opened on every rank.

    Every rank first checks that all ranks have the same configuration. Without ``gather``,
    rank 0 prepares the directory and the others check that they see what rank 0 wrote (a
    token in the manifest); with ``gather``, local rank 0 of every node prepares its own copy.

    Raises:
        RankFailed: on the other ranks when one fails.
        ChunkError: (on the failing rank) a manifest that refuses the resume, or an output
            directory that is not shared although ``gather`` is False.
    """
    _agree_on_config(ctx, config)
    if gather:
        return _open_per_node(ctx, root, config, resume, on_bad)
    return _open_shared(ctx, root, config, resume, on_bad)


def _agree_on_config(ctx: Dist, config: Dict[str, Any]) -> None:
    """Fails every rank unless every rank has rank 0's configuration."""
    digest = config_hash(config)
    hashes = ctx.all_gather(digest)
    differ = [r for r, h in enumerate(hashes) if h != hashes[0]]
    ctx.agree(
        None
        if digest == hashes[0]
        else f"its configuration differs from rank 0's (ranks "
        f"{differ} differ): every rank must run the same command on the same data and "
        "model"
    )


def _open_shared(
    ctx: Dist, root: Path, config: Dict[str, Any], resume: bool, on_bad: str
) -> ChunkStore:
    """Rank 0 prepares the store in the shared directory; the others open it and check its
    token."""
    prepared: Dict[str, ChunkStore] = {}

    def prepare() -> str:
        prepared["store"] = ChunkStore(root, config, resume, on_bad=on_bad)
        return prepared["store"].token

    token = ctx.on_main(prepare)

    def join() -> ChunkStore:
        if ctx.is_main:
            return prepared["store"]
        try:
            store: Optional[ChunkStore] = ChunkStore(
                root, config, resume, create=False, on_bad=on_bad
            )
        except ChunkError:
            store = None
        if store is None or store.token != token:
            raise ChunkError(
                f"this rank does not see the chunk store that rank 0 just "
                f"prepared in {str(root)!r} (its manifest is missing or "
                f"another one); {_NOT_SHARED}"
            )
        return store

    return ctx.each(join)


def _open_per_node(
    ctx: Dist, root: Path, config: Dict[str, Any], resume: bool, on_bad: str
) -> ChunkStore:
    """Local rank 0 of every node prepares the node's own copy of the store; the node's other
    ranks open it."""
    prepared: Dict[str, ChunkStore] = {}

    def prepare() -> None:
        prepared["store"] = ChunkStore(root, config, resume, on_bad=on_bad)

    ctx.each(lambda: prepare() if ctx.local_rank == 0 else None)
    return ctx.each(
        lambda: (
            prepared["store"]
            if ctx.local_rank == 0
            else ChunkStore(root, config, resume, create=False, on_bad=on_bad)
        )
    )


def run_chunks(
    ctx: Dist,
    store: ChunkStore,
    stage: str,
    chunks: Sequence[Chunk],
    compute: Callable[[Chunk], Columns],
    *,
    gather: bool = False,
    bar: Any = None,
    required: Optional[List[str]] = None,
) -> int:
    """Computes and stores every chunk of ``stage`` that is not stored yet.

    Args:
        ctx: this process's place in the run.
        store: from :func:`open_store`.
        chunks: the stage's chunks (the same on every rank).
        compute: the columns of one chunk; called only for the chunks of this rank.
        gather: see the module docstring; after the call rank 0 holds every chunk.
        bar: a tqdm bar (on rank 0), advanced in input rows of the whole run.
        required: columns a stored chunk must hold to be kept on resume.

    Returns:
        the number of input rows this rank computed (resumed chunks excluded).

    Raises:
        RankFailed: on every rank but the failing one when a rank fails; that rank re-raises
            its own exception.
    """
    run = ctx.next_run()
    local, done = _stored_chunks(ctx, store, stage, chunks, gather, required)
    pending = [c for c in chunks if c.index not in done]
    mine = pending[ctx.rank :: ctx.world_size]
    shown = 0
    if ctx.is_main:
        shown = ctx.add_rows(run, sum(c.rows for c in chunks if c.index in done))
        if bar is not None:
            bar.update(shown)
    computed, shown = _compute(ctx, store, stage, run, mine, compute, bar, shown)
    if gather:
        _gather_to_main(ctx, store, stage, chunks, sorted(set(local) | set(computed)))
    if ctx.is_main and bar is not None:
        bar.update(sum(c.rows for c in chunks) - shown)
    return sum(c.rows for c in mine if c.index in set(computed))


def _stored_chunks(
    ctx: Dist,
    store: ChunkStore,
    stage: str,
    chunks: Sequence[Chunk],
    gather: bool,
    required: Optional[List[str]],
) -> Tuple[List[int], Set[int]]:
    """Which chunks are stored already (a resumed run).

    Returns:
        ``(local, done)``: the chunks this node's copy holds (with ``gather``; else []),
        and those stored anywhere, the same on every rank.
    """

    def stored() -> List[int]:
        return [
            c.index
            for c in chunks
            if store.load(stage, c.index, span=c.span, columns=required) is not None
        ]

    if gather:
        local = ctx.each(lambda: stored() if ctx.local_rank == 0 else [])
        return local, set().union(*ctx.all_gather(local))
    return [], set(ctx.on_main(stored) or ())


def _compute(
    ctx: Dist,
    store: ChunkStore,
    stage: str,
    run: str,
    mine: Sequence[Chunk],
    compute: Callable[[Chunk], Columns],
    bar: Any,
    shown: int,
) -> Tuple[List[int], int]:
    """Computes and stores this rank's chunks, stopping when a rank fails; then every rank
    agrees on the outcome (raising :class:`RankFailed` when another rank failed).

    Returns:
        ``(computed, shown)``: the chunks this rank stored, and the rows the bar shows.
    """
    error: Optional[str] = None
    failure: Optional[BaseException] = None
    computed: List[int] = []
    for chunk in mine:
        if ctx.distributed and ctx.failure_marked(run):
            break  # another rank failed; agree() below reports it
        try:
            store.save(stage, chunk.index, compute(chunk), span=chunk.span)
        except Exception as exc:
            error, failure = ctx.failure(exc), exc
            ctx.mark_failed(run, error)
            break
        except BaseException as exc:  # SIGTERM, Ctrl-C: tell the others, and leave now
            ctx.mark_failed(run, f"interrupted ({type(exc).__name__})")
            raise
        computed.append(chunk.index)
        total = ctx.add_rows(run, chunk.rows)
        if ctx.is_main and bar is not None:
            bar.update(total - shown)
            shown = total
    ctx.agree(error, failure)
    return computed, shown


def _gather_to_main(
    ctx: Dist, store: ChunkStore, stage: str, chunks: Sequence[Chunk], held: List[int]
) -> None:
    """Sends every chunk that rank 0 lacks from the lowest rank that holds it."""
    holders = ctx.all_gather(held)
    lacking = (
        ctx.on_main(lambda: [c.index for c in chunks if not store.path(stage, c.index).exists()])
        or []
    )
    by_index = {c.index: c for c in chunks}
    for index in lacking:
        owners = [r for r, h in enumerate(holders) if index in h]
        if not owners:
            ctx.agree(f"no rank holds chunk {index} of {stage!r}" if ctx.is_main else None)
            continue
        if ctx.rank == owners[0]:
            ctx.send_bytes(store.read_raw(stage, index), 0)
        elif ctx.is_main:
            store.write_raw(stage, index, ctx.recv_bytes(owners[0]), span=by_index[index].span)


def load_stage(
    store: ChunkStore, stage: str, chunks: Sequence[Chunk], required: Optional[List[str]] = None
) -> Columns:
    """Every chunk of ``stage``, checked and concatenated in chunk order (call on rank 0
    after :func:`run_chunks`).

    Raises:
        ChunkError: a chunk is missing or bad.
    """
    parts = []
    for chunk in chunks:
        cols = store.load(stage, chunk.index, span=chunk.span, columns=required)
        if cols is None:
            raise missing_chunk(store, stage, chunk)
        parts.append(cols)
    return concat_columns(parts)


def missing_chunk(store: ChunkStore, stage: str, chunk: Chunk) -> ChunkError:
    """The error for a chunk that is absent after every rank finished."""
    return ChunkError(
        f"chunk file {str(store.path(stage, chunk.index))!r} is missing or bad "
        f"after every rank finished; if several machines ran this, "
        f"{_NOT_SHARED}; run the same command with --resume to compute it"
    )
