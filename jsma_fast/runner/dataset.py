"""Attacking a whole data set: :func:`attack_dataset` streams a data set through an attack in
fixed batches, on one process or on every rank of a ``torchrun`` job, and writes (or returns)
one row of results per attacked row.

Determinism: batch ``i`` always holds rows ``[i * batch_size, (i + 1) * batch_size)`` of the
data set, whatever the number of processes, and the ``"random"`` strategy draws each row's
target from ``(seed, row index)`` alone (:func:`~jsma_fast.targets.random_targets`).
One process and N processes therefore attack the same batches with the same targets and give
bit-identical results (given the same torch threads per process, since some CPU kernels may
round differently with another thread count).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Union

import numpy as np
import torch

from ..provenance import environment, now
from ..targets import random_targets
from . import examples
from .checkpoint import ON_BAD
from .columns import COLUMNS, Columns, concat_columns, result_columns
from .distributed import Dist, setup
from .fingerprint import UNVERIFIABLE, ModelUnverifiable
from .fingerprint import model_fingerprint as fingerprint_model
from .fit import check_fits
from .folder import claim_folder, results_dir
from .merge import merge_stage
from .rows import RowMask, Rows
from .shards import Chunk, make_chunks, open_store, run_chunks
from .summary import NearChanceWarning, Summary, near_chance

STAGE = "attack"
RESULTS_FILE = "results.npz"
SUMMARY_FILE = "summary.json"


@dataclass
class DatasetResults:
    """What :func:`attack_dataset` produced.

    Columns (one row per attacked row, N of them, or N * (C - 1) with ``"all"``): those of
    :data:`~jsma_fast.runner.COLUMNS` (``x_adv`` only with ``keep_adv``),
    ``clean_predicted``, the model's class for the source row before the attack, and the
    attack's extra columns (the minimum-L0 mode's ``member``).

    Attributes:
        summary: the figures over the correctly classified rows, the misclassified rows
            counted apart, stop reasons, time (:data:`~jsma_fast.runner.summary.KEYS`), and
            under ``"run"`` what produced them (attack, targets, model and data, versions,
            machine, dates).
        path: the merged ``results.npz`` (None when ``out`` was None).
        columns: the per-row columns in memory (only when ``out`` was None).
    """

    summary: Dict[str, Any]
    path: Optional[Path] = None
    columns: Optional[Columns] = field(default=None, repr=False)

    def load(self) -> Columns:
        """The per-row columns (read from :attr:`path` when they were written)."""
        if self.columns is not None:
            return self.columns
        if self.path is None:
            raise ValueError("these results hold neither columns nor a results file")
        with np.load(self.path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def report(self, **options: Any) -> Path:
        """Writes ``report.md`` and its figures beside :attr:`path`; see
        :func:`jsma_fast.report.write_report` for the options. Returns the report's path."""
        if self.path is None:
            raise ValueError(
                "a report is written beside the results folder: run attack_dataset with out=..."
            )
        from ..report import write_report

        return write_report(self.path.parent, **options)


def iter_attack_dataset(
    model: Callable[[torch.Tensor], torch.Tensor],
    dataset: Any,
    attack: Callable[..., Any],
    targets: Any = "next",
    *,
    batch_size: int = 100,
    keep_adv: bool = False,
    seed: Optional[int] = None,
    mask: Any = None,
) -> Iterator[Columns]:
    """Attacks the data set batch by batch in this process and yields each batch's columns
    (see :func:`attack_dataset` for the arguments and the columns)."""
    _check(batch_size=batch_size, keep_adv=keep_adv)
    rows = Rows(dataset)
    job = _Job(model, rows, attack, targets, batch_size, keep_adv, _seed(seed, attack))
    job.restrict(mask)
    for chunk in make_chunks(len(rows), batch_size):
        yield job(chunk)


def attack_dataset(  # noqa: PLR0913 (public, keyword options)
    model: Callable[[torch.Tensor], torch.Tensor],
    dataset: Any,
    attack: Callable[..., Any],
    targets: Any = "next",
    *,
    out: Optional[Union[str, Path]] = None,
    resume: bool = False,
    batch_size: int = 100,
    keep_adv: bool = False,
    seed: Optional[int] = None,
    gather: bool = False,
    progress: bool = True,
    fingerprint: Optional[str] = None,
    model_fingerprint: Optional[str] = None,
    on_bad_chunk: str = "rerun",
    mask: Any = None,
    dist: Optional[Dist] = None,
    about: Optional[Mapping[str, Any]] = None,
) -> DatasetResults:
    """Attacks every row of a data set in fixed batches; resumable and distributed.

    Each batch is one call ``attack(model, x, targets, y=y)`` and, with ``out``, one
    checksummed chunk file; under ``torchrun`` (or with an initialised process group) each
    rank attacks its share of the batches and rank 0 merges them (:mod:`.shards`).

    Args:
        model: classifier (eval mode) mapping (n, ...) to (n, C) logits, not modified; the
            inputs go to its first parameter's device (the CPU if it has none).
        dataset: ``(x, y)`` tensors or arrays (x (N, ...) float, y (N,) int or None), or a
            map-style ``torch.utils.data.Dataset`` of ``(x_i, y_i)`` items (or bare x_i).
            Without labels, the model's clean predictions are the true classes.
        attack: a configured attack, e.g. :class:`jsma_fast.JSMA` or the minimum-L0 mode
            :class:`jsma_fast.minimum_l0.Sparsest`; called as ``attack(model, x, y_target,
            y=y)`` and returning an AttackResult (its ``extra_columns()``, if any, are stored
            too). Its ``repr`` is part of the resume check; an attack with a
            ``describe(targets)`` method has what it returns (JSON values) recorded under
            ``summary["run"]["mode"]``.
        targets: a strategy name passed to the attack (``"next"``, ``"least_likely"``,
            ``"all"``, ``"untargeted"``, ...) but ``"random"``, drawn here per row
            (:func:`~jsma_fast.targets.random_targets`); one int class; or (N,) classes.
        out: results directory: ``chunks/`` (resumable), ``results.npz`` (every column,
            rows in data set order), ``summary.json``. None: keep the columns in memory
            (one process only).
        resume: keep the chunks a previous run with the same configuration stored (each
            chunk's checksum and identity are checked; bad chunks are recomputed). False
            (the default) refuses an ``out`` that holds an earlier run's results
            (:class:`~jsma_fast.runner.ResultsExist`) rather than replacing them: pass
            ``resume=True`` to continue them, or another ``out`` (or delete the folder).
        batch_size: rows per attack call and per chunk; part of the configuration.
        keep_adv: also store the adversarial inputs (``x_adv``, N x sample size floats).
        seed: seed of ``"random"`` targets; default the attack's ``seed`` attribute, else 0.
        gather: no shared file system: send the results to rank 0 through the process group.
        progress: show a progress bar (rank 0), in data set rows, with rows per second.
        fingerprint: identifies the data in the resume check instead of the default (all
            bytes of tensors; type, length and 8 items of a Dataset).
        model_fingerprint: identifies the model in the resume check instead of the default:
            a hash of its outputs on a fixed probe batch and of the parameters,
            buffers and tensors it holds (:mod:`~jsma_fast.runner.fingerprint`). Needed to
            resume with a model whose outputs differ between two calls (random layers);
            pass the same string in every run into ``out``.
        on_bad_chunk: ``"rerun"`` (warn and recompute) or ``"raise"``.
        mask: the features the attack may change, bool: one sample's shape (shared) or the
            data set's (N, ...) (per row); passed to each call as ``attack(..., mask=...)``
            and part of the resume check. None: every feature.
        dist: the process context; default :func:`~jsma_fast.runner.distributed.setup`.
        about: what the caller knows of the run (e.g. ``{"model": "...", "data": "..."}``,
            JSON values), recorded under ``summary["run"]`` and in the report.

    Returns:
        :class:`DatasetResults` (columns: see there) on every rank; the summary is rank 0's.

    Raises:
        ValueError, TypeError: bad arguments (the message names the argument), or a model
            that cannot classify the rows (another dtype, channel count or layout).
        ChunkError: a resume that the stored manifest refuses (another configuration, data
            or model), or, as :class:`~jsma_fast.runner.fingerprint.ModelUnverifiable`, of a
            model that cannot be fingerprinted without ``model_fingerprint``.
        ResultsExist: ``out`` holds results and ``resume`` is False.
        FolderInUse: another run (any process) is writing into ``out``; its lock file
            ``out/.lock`` names it (only one run at a time may use a folder).
        RankFailed: another rank failed (its message is included).
    """
    _check(
        batch_size=batch_size, keep_adv=keep_adv, resume=resume, gather=gather, progress=progress
    )
    if on_bad_chunk not in ON_BAD:
        raise ValueError(f"on_bad_chunk must be one of {ON_BAD}, got {on_bad_chunk!r}")
    if model_fingerprint is not None and (
        not isinstance(model_fingerprint, str) or not model_fingerprint
    ):
        raise TypeError(
            f"model_fingerprint must be None or a non-empty string, got {model_fingerprint!r}"
        )
    job = _Job(model, _rows(dataset), attack, targets, batch_size, keep_adv, _seed(seed, attack))
    job.restrict(mask)
    check_fits(job.view, job.rows.batch(0, 1)[0].to(job.device))
    job.about = dict(about or {})
    ctx = dist if dist is not None else setup()
    chunks = make_chunks(len(job.rows), job.batch_size)
    if out is None:
        return _attack_in_memory(ctx, job, chunks, progress)
    out = results_dir(out)
    lock = claim_folder(ctx, out, resume, gather)
    try:
        model_id = ctx.on_main(lambda: _model_id(job, out, resume, model_fingerprint))
        manifest = _manifest(job, fingerprint, model_id)
        job.ids = {"model_fingerprint": manifest["model"], "data_fingerprint": manifest["data"]}
        store = open_store(
            ctx,
            out / "chunks",
            manifest,
            resume=resume,
            gather=gather,
            on_bad=on_bad_chunk,
        )
        return _attack_to_folder(ctx, store, job, chunks, out, gather, progress)
    finally:
        if lock is not None:
            lock.release()


def _rows(dataset: Any) -> Rows:
    rows = Rows(dataset)
    if len(rows) == 0:
        raise ValueError("dataset must hold at least one row, got an empty data set")
    return rows


def _model_id(job: "_Job", out: Path, resume: bool, given: Optional[str]) -> str:
    """The manifest's model entry: the caller's ``model_fingerprint``, else the model's
    fingerprint; a resume of stored chunks refuses a model that has none."""
    if given is not None:
        return f"given: {given}"
    found = fingerprint_model(job.model, job.probe())
    if found is not None:
        return found
    if resume and any((out / "chunks").glob("*/chunk-*.npz")):
        raise ModelUnverifiable(out)
    return UNVERIFIABLE


def _manifest(job: "_Job", fingerprint: Optional[str], model_id: Optional[str]) -> Dict[str, Any]:
    """What a resumed :func:`attack_dataset` must share with the run that wrote the chunks."""
    mask = {} if job.mask is None else {"mask": job.mask.fingerprint()}
    return {
        **mask,
        "kind": "attack_dataset",
        "attack": repr(job.attack),
        "targets": job.targets_id,
        "seed": job.seed,
        "batch_size": job.batch_size,
        "keep_adv": job.keep_adv,
        "rows": len(job.rows),
        "data": fingerprint if fingerprint is not None else job.rows.fingerprint(),
        "model": model_id,
    }


def _attack_in_memory(
    ctx: Dist, job: "_Job", chunks: List[Chunk], progress: bool
) -> DatasetResults:
    """One process, no files: every chunk in order, the columns kept in memory."""
    if ctx.distributed:
        raise ValueError(
            "out must be a directory in a distributed run (the chunks are "
            "how the ranks' results reach rank 0), got None"
        )
    rows = len(job.rows)
    summary = job.summary()
    parts = []
    started = now()
    start = time.perf_counter()
    with _bar(progress, rows) as bar:
        for chunk in chunks:
            parts.append(job(chunk))
            summary.add(parts[-1])
            bar.update(chunk.rows)
    result = summary.finish(time.perf_counter() - start, rows, 1)
    _finish(result, job, started, {})
    return DatasetResults(result, columns=concat_columns(parts))


def _attack_to_folder(
    ctx: Dist, store: Any, job: "_Job", chunks: List[Chunk], out: Path, gather: bool, progress: bool
) -> DatasetResults:
    """The chunks on every rank into ``store``; rank 0 merges them into ``results.npz`` and
    writes ``summary.json`` and ``examples.npz``."""
    rows = len(job.rows)
    started = now()
    start = time.perf_counter()
    job.keep_examples = lambda cols: store.save(examples.STAGE, 0, cols, span=chunks[0].span)
    with _bar(progress and ctx.is_main, rows) as bar:
        computed = run_chunks(
            ctx, store, STAGE, chunks, job, gather=gather, bar=bar, required=job.columns
        )
    seconds = time.perf_counter() - start
    computed_rows = sum(ctx.all_gather(computed))

    def merge() -> Dict[str, Any]:
        summary = job.summary()
        merge_stage(
            store, STAGE, chunks, out / RESULTS_FILE, visit=summary.add, required=job.columns
        )
        result = summary.finish(seconds, computed_rows, ctx.world_size)
        kept = examples.write(store, chunks[0], job.rows, out)
        _finish(result, job, started, {"examples": kept.name if kept else None, **job.ids})
        plain = {
            k: None if isinstance(v, float) and math.isnan(v) else v  # JSON has no NaN
            for k, v in result.items()
        }
        (out / SUMMARY_FILE).write_text(json.dumps(plain, indent=1) + "\n")
        return result

    return DatasetResults(ctx.on_main(merge), path=out / RESULTS_FILE)


def _finish(result: Dict[str, Any], job: "_Job", started: str, more: Dict[str, Any]) -> None:
    """Adds ``num_classes`` and the run's provenance (``run``) to the summary, and warns when
    the model's clean accuracy is near chance."""
    classes = job.classes()
    result["num_classes"] = classes
    result["run"] = {
        "attack": repr(job.attack),
        "targets": job.targets_id,
        "seed": job.seed,
        "batch_size": job.batch_size,
        "keep_adv": job.keep_adv,
        "sample_shape": list(job.rows.batch(0, 1)[0].shape[1:]),
        "gamma": _gamma(job.attack),
        **_mode(job.attack, job.targets_id),
        **job.about,
        **more,
        "started": started,
        "environment": environment(),
    }
    warning = near_chance(result, classes)
    if warning is not None:
        result["warning"] = warning
        warnings.warn(warning, NearChanceWarning, stacklevel=3)


class _Job:
    """Attacks one chunk of rows: the clean prediction, the targets, the attack, the columns."""

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        rows: Rows,
        attack: Callable[..., Any],
        targets: Any,
        batch_size: int,
        keep_adv: bool,
        seed: int,
    ) -> None:
        if not callable(model):
            raise TypeError(
                f"model must be callable (a torch.nn.Module), got {type(model).__name__}"
            )
        if not callable(attack):
            raise TypeError(
                f"attack must be callable as attack(model, x, y_target, y=y) "
                f"(e.g. jsma_fast.JSMA(...)), got {type(attack).__name__}"
            )
        self.model, self.rows, self.attack, self.seed = model, rows, attack, seed
        self.batch_size, self.keep_adv = batch_size, keep_adv
        self.device = _device_of(model)
        #: the model as the attack sees it (behind the attack's normalisation, if any)
        self.view = _model_view(model, attack)
        self.mask: Optional[RowMask] = None
        self.per_row: Optional[torch.Tensor] = None
        #: what the caller said of the run, and the fingerprints of its model and data
        self.about: Dict[str, Any] = {}
        self.ids: Dict[str, Any] = {}
        #: stores the adversarial examples of the first rows (see :mod:`.examples`)
        self.keep_examples: Optional[Callable[[Columns], None]] = None
        self._classes: Optional[int] = None
        if isinstance(targets, str):
            self.targets: Any = targets
            self.targets_id = targets
        elif isinstance(targets, (int, np.integer)) and not isinstance(targets, bool):
            self.targets = int(targets)
            self.targets_id = int(targets)
        else:
            try:
                per_row = torch.as_tensor(targets)
            except (TypeError, ValueError, RuntimeError):
                per_row = None
            if (
                per_row is None
                or per_row.shape != (len(rows),)
                or per_row.dtype.is_floating_point
                or per_row.dtype == torch.bool
            ):
                got = (
                    f"shape {tuple(per_row.shape)}, dtype {per_row.dtype}"
                    if per_row is not None
                    else type(targets).__name__
                )
                raise ValueError(
                    f"targets must be a strategy name, one int class, or "
                    f"({len(rows)},) int classes (one per data set row), got {got}"
                )
            self.per_row = per_row.to(torch.int64)
            self.targets = None
            self.targets_id = "sha256:" + hashlib.sha256(self.per_row.numpy().tobytes()).hexdigest()
        #: columns every chunk holds
        self.columns: List[str] = [c for c in COLUMNS if keep_adv or c != "x_adv"] + [
            "clean_predicted"
        ]

    def restrict(self, mask: Any) -> None:
        """Passes ``mask`` (see :func:`attack_dataset`) to every attack call."""
        if mask is not None:
            self.mask = RowMask(mask, self.rows)

    def probe(self) -> torch.Tensor:
        """What the model's fingerprint is computed on: two rows of the data's sample shape
        and dtype, drawn uniformly from [0, 1) with a fixed seed (not the data's values, so
        that another data set is reported as such, not as another model too)."""
        x, _ = self.rows.batch(0, 1)
        dtype = x.dtype if x.dtype.is_floating_point else torch.float32
        g = torch.Generator().manual_seed(0x6A736D61)
        return torch.rand((2, *x.shape[1:]), generator=g, dtype=dtype).to(self.device)

    def classes(self) -> int:
        """C, the number of the model's classes (its output width on :meth:`probe`)."""
        if self._classes is None:
            with torch.no_grad():
                self._classes = int(self.model(self.probe()).shape[-1])
        return self._classes

    def summary(self) -> "Summary":
        """An empty :class:`Summary` of this job's rows."""
        return Summary(len(self.rows) if self.explicit else None)

    @property
    def explicit(self) -> bool:
        """True when the caller gave the target classes (one int, or one per row)."""
        return self.per_row is not None or isinstance(self.targets, int)

    def __call__(self, chunk: Chunk) -> Columns:
        """The chunk's columns. Rows whose true class is their explicit target (which the
        attack refuses) are not attacked: they are absent from the columns, and
        :class:`Summary` counts them."""
        x, y = self.rows.batch(chunk.start, chunk.stop)
        x = x.to(self.device)
        y = None if y is None else y.to(self.device)
        with torch.no_grad():
            clean = self.view(x)
        predicted = clean.argmax(dim=1)
        true = predicted if y is None else y
        y_target = self._targets(chunk, true, int(clean.shape[1]))
        rows = torch.arange(x.shape[0], device=x.device)
        if self.explicit:
            rows = rows[torch.as_tensor(y_target, device=x.device) != true]
            if rows.numel() < x.shape[0]:
                x, y = x[rows], None if y is None else y[rows]
                if isinstance(y_target, torch.Tensor):
                    y_target = y_target[rows]
        mask = {} if self.mask is None else {"mask": self.mask.rows(chunk, rows)}
        result = self.attack(self.model, x, y_target, y=y, **mask)
        cols = result_columns(result)
        source = rows.cpu().numpy()[cols["source_index"]]
        cols["source_index"] = source + chunk.start
        cols["clean_predicted"] = predicted.cpu().numpy()[source]
        kept = examples.select(cols) if chunk.index == 0 else None
        if kept is not None and self.keep_examples is not None:
            self.keep_examples(kept)
        if not self.keep_adv:
            cols.pop("x_adv")
        return cols

    def _targets(self, chunk: Chunk, true: torch.Tensor, classes: int) -> Any:
        """What the attack gets as ``y_target`` for the chunk's rows."""
        if self.per_row is not None:
            return self.per_row[chunk.start : chunk.stop].to(true.device)
        if self.targets == "random":
            index = torch.arange(chunk.start, chunk.stop, dtype=torch.int64)
            return random_targets(index, true, classes, self.seed)
        return self.targets


def _model_view(model: Callable[[torch.Tensor], torch.Tensor], attack: Any):
    """The model as ``attack`` sees it: behind its ``normalization`` (a
    :class:`jsma_fast.JSMA` option), so that clean predictions match the attack's."""
    normalization = getattr(attack, "normalization", None)
    return model if normalization is None else normalization.module(model)


def _mode(attack: Any, targets: Any) -> Dict[str, Any]:
    """``{"mode": ...}``: what an attack that is more than one JSMA says of itself for a run
    with ``targets`` (its ``describe(targets)``, e.g. the minimum-L0 mode's members), for the
    summary and the report; empty for other attacks."""
    describe = getattr(attack, "describe", None)
    return {"mode": describe(targets)} if callable(describe) else {}


def _gamma(attack: Any) -> Optional[float]:
    """The attack's budget (fraction of the features), when it has a number ``gamma``."""
    gamma = getattr(attack, "gamma", None)
    return float(gamma) if isinstance(gamma, (int, float)) and not isinstance(gamma, bool) else None


def _check(**flags: Any) -> None:
    batch_size = flags.pop("batch_size")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")


def _seed(seed: Optional[int], attack: Any) -> int:
    if seed is None:
        seed = getattr(attack, "seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            seed = 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    return int(seed)


def _device_of(model: Any) -> torch.device:
    if isinstance(model, torch.nn.Module):
        param = next(iter(model.parameters()), None)
        if param is not None:
            return param.device
    return torch.device("cpu")


def _bar(enabled: bool, total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc="attacking",
        unit="row",
        disable=not enabled,
        dynamic_ncols=True,
        smoothing=0.1,
    )
