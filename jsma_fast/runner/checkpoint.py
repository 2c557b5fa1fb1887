"""Chunked, resumable, self-checking storage of attack results.

A run's results are stored as chunks: ``<root>/<stage>/chunk-00000.npz``, one per block of
input rows. Every chunk is written to a temporary name and moved into place with
``os.replace``, so a run killed at any moment (SIGTERM, SIGKILL, power loss) leaves only
complete chunks.

Every chunk identifies itself, so that a resumed run can trust it: besides its columns it holds
an entry ``__chunk__`` (JSON) with the store's format, the hash of the run's configuration, its
stage and index, the input rows it covers (``start``, ``stop``), its row count, the name,
dtype and shape of every column, and a SHA-256 checksum over all of these and the columns'
bytes. Loading a chunk checks each of them; a chunk copied over another, truncated, with a
missing column, rewritten by hand or from another run is never mistaken for a good one.

``manifest.json`` holds the configuration; a resume with a different configuration, or with a
damaged manifest, is refused with a message that says what to do.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from .._atomic import write_atomic
from .columns import Columns

#: Version of the chunk and manifest layout; chunks of another version are not trusted.
FORMAT = 2
_KIND = "jsma-fast chunk store"
_META = "__chunk__"
#: What :meth:`ChunkStore.load` may do with a bad chunk.
ON_BAD = ("rerun", "raise")
_CHUNK_NAME = re.compile(r"^chunk-(\d{5,})\.npz$")

Span = Tuple[int, int]

# What np.load and zipfile raise for files that are not (complete) NPZ archives.
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    zipfile.BadZipFile,
    zlib.error,
    UnicodeDecodeError,
)


class ChunkError(ValueError):
    """A chunk file or manifest that cannot be trusted; the message names the file, what is
    wrong with it and what to do."""


class _Bad(Exception):
    """Internal: why a chunk was rejected."""


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a configuration's canonical JSON (sorted keys)."""
    try:
        text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"config must be JSON-serialisable (str keys, finite numbers, lists, dicts), got {exc}"
        ) from exc
    return hashlib.sha256(f"{_KIND} {FORMAT}\n{text}".encode()).hexdigest()


class ChunkStore:
    """Directory of completed, self-identifying chunks: ``<root>/<stage>/chunk-00000.npz``.

    Args:
        root: directory (created).
        config: JSON-serialisable configuration of the run; its hash is stored in every chunk.
        resume: keep completed chunks when the stored configuration equals ``config``;
            otherwise (False) every stored chunk is deleted and the run starts afresh.
        create: True for the one process that prepares the directory (writes the manifest,
            deletes stale chunks and temporary files). False for the other processes of a
            distributed run: they only check that the manifest exists and matches ``config``.
        on_bad: what :meth:`load` does with a chunk that fails a check: ``"rerun"`` (warn
            with the file and the reason, delete it, report it as missing so it is computed
            again) or ``"raise"`` (:class:`ChunkError`).

    Raises:
        ChunkError: on resume (or with ``create=False``) the manifest is damaged, is not a
            manifest of this format, or holds another configuration; ``root`` is a file.
    """

    MANIFEST = "manifest.json"

    def __init__(
        self,
        root: Union[str, Path],
        config: Dict[str, Any],
        resume: bool,
        *,
        create: bool = True,
        on_bad: str = "rerun",
    ) -> None:
        if on_bad not in ON_BAD:
            raise ValueError(f"on_bad must be one of {ON_BAD}, got {on_bad!r}")
        self.root = Path(root)
        self.on_bad = on_bad
        self.config = json.loads(json.dumps(config, sort_keys=True))
        self.config_hash = config_hash(self.config)
        if self.root.exists() and not self.root.is_dir():
            raise ChunkError(
                f"chunk directory {str(self.root)!r} is a file, not a directory; "
                "choose another output directory or remove the file"
            )
        manifest = self.root / self.MANIFEST
        if not create:
            self.token = self._read_manifest(manifest, must_exist=True)
            return
        self.root.mkdir(parents=True, exist_ok=True)
        if resume and manifest.exists():
            self._read_manifest(manifest, must_exist=True)
        elif not resume:
            for old in self.root.glob("*/chunk-*.npz"):
                _unlink(old)
        for tmp in self.root.glob("*/.*.tmp"):  # left by a hard kill (SIGKILL)
            _unlink(tmp)
        # A fresh token on every preparation: other processes compare it to tell whether they
        # see this directory or a stale copy (a file system that is not shared).
        self.token = uuid.uuid4().hex
        body = {
            "kind": _KIND,
            "format": FORMAT,
            "config_hash": self.config_hash,
            "token": self.token,
            "config": self.config,
        }
        write_atomic(
            manifest, lambda fh: fh.write(json.dumps(body, sort_keys=True, indent=1).encode())
        )

    # ------------------------------------------------------------------ manifest

    def _read_manifest(self, path: Path, must_exist: bool) -> str:
        """Checks the manifest against this store's configuration; returns its token."""
        fresh = "run without --resume to start afresh"
        if not path.exists():
            raise ChunkError(f"chunk manifest {str(path)!r} does not exist; {fresh}")
        try:
            stored = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ChunkError(
                f"chunk manifest {str(path)!r} is damaged ({type(exc).__name__}: {exc}); delete "
                "it to resume with the chunks that match this configuration (each chunk carries "
                f"its configuration's hash), or {fresh}"
            ) from None
        if not isinstance(stored, dict) or stored.get("kind") != _KIND:
            got = (
                type(stored).__name__
                if not isinstance(stored, dict)
                else f"an object with keys {sorted(stored)[:6]}"
            )
            raise ChunkError(
                f"chunk manifest {str(path)!r} is not a manifest of this jsma-fast chunk store "
                f"(expected an object with kind {_KIND!r}, got {got}); it may have been written "
                f"by an older version, whose chunks carry no checksums; {fresh}"
            )
        if stored.get("format") != FORMAT:
            raise ChunkError(
                f"chunk manifest {str(path)!r} has format {stored.get('format')!r}, "
                f"this version reads format {FORMAT}; {fresh}"
            )
        cfg, digest, token = stored.get("config"), stored.get("config_hash"), stored.get("token")
        if not isinstance(cfg, dict) or not isinstance(digest, str) or not isinstance(token, str):
            raise ChunkError(
                f"chunk manifest {str(path)!r} is damaged: 'config' must be an object and "
                f"'config_hash', 'token' strings, got {type(cfg).__name__}, "
                f"{type(digest).__name__}, {type(token).__name__}; {fresh}"
            )
        if config_hash(cfg) != digest:
            raise ChunkError(
                f"chunk manifest {str(path)!r} is damaged: its configuration does "
                f"not match its stored hash; {fresh}"
            )
        if cfg != self.config:
            diff = sorted(
                k for k in set(cfg) | set(self.config) if cfg.get(k) != self.config.get(k)
            )
            raise ChunkError(
                f"cannot resume in {str(self.root)!r}: the stored run used a different "
                f"configuration (differs in {diff}); {fresh}"
            )
        return token

    # ------------------------------------------------------------------ chunks

    def path(self, stage: str, index: int) -> Path:
        """File of chunk ``index`` of ``stage``."""
        return self.root / stage / f"chunk-{index:05d}.npz"

    def indices(self, stage: str) -> List[int]:
        """Indices of the chunk files of ``stage`` on disk (not checked), in order."""
        found = []
        for p in (self.root / stage).glob("chunk-*.npz"):
            m = _CHUNK_NAME.match(p.name)
            if m:
                found.append(int(m.group(1)))
        return sorted(found)

    def save(
        self, stage: str, index: int, columns: Mapping[str, Any], *, span: Optional[Span] = None
    ) -> None:
        """Stores a completed chunk atomically.

        Args:
            stage: e.g. ``"increase"`` (a directory name).
            index: chunk number, >= 0.
            columns: name -> array, all with the same leading dimension R (the chunk's rows);
                no object arrays.
            span: ``(start, stop)``, the input rows this chunk attacked; checked on load.
        """
        data = self._encode(stage, index, columns, span)
        write_atomic(self.path(stage, index), lambda fh: fh.write(data))

    def load(
        self,
        stage: str,
        index: int,
        *,
        span: Optional[Span] = None,
        columns: Optional[List[str]] = None,
    ) -> Optional[Columns]:
        """The stored chunk after every check, or None when it has not been completed (or was
        bad and ``on_bad="rerun"``: it is then deleted with a ``RuntimeWarning``).

        Args:
            span: the ``(start, stop)`` input rows the caller expects this chunk to cover.
            columns: names the chunk must hold (beyond those it declares itself).

        Raises:
            ChunkError: a bad chunk with ``on_bad="raise"``.
        """
        p = self.path(stage, index)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._reject(p, f"it cannot be read ({exc})")
        try:
            return self._decode(io.BytesIO(data), stage, index, span, columns)
        except _Bad as bad:
            return self._reject(p, str(bad))

    def read_raw(self, stage: str, index: int) -> bytes:
        """The chunk file's bytes (to send it to another process)."""
        return self.path(stage, index).read_bytes()

    def write_raw(
        self, stage: str, index: int, data: bytes, *, span: Optional[Span] = None
    ) -> None:
        """Stores a chunk given as the bytes of its file, after checking them.

        Raises:
            ChunkError: the bytes do not hold a good chunk ``index`` of ``stage`` here.
        """
        p = self.path(stage, index)
        try:
            self._decode(io.BytesIO(data), stage, index, span, None)
        except _Bad as bad:
            raise ChunkError(
                f"chunk {index} of {stage!r} received for {str(p)!r} is bad: "
                f"{bad}; run the same command again with --resume"
            ) from None
        write_atomic(p, lambda fh: fh.write(data))

    # ------------------------------------------------------------------ encoding

    def _encode(
        self, stage: str, index: int, columns: Mapping[str, Any], span: Optional[Span]
    ) -> bytes:
        if not isinstance(columns, Mapping) or not columns:
            raise ValueError(
                f"columns must be a non-empty mapping of name -> array, "
                f"got {type(columns).__name__}"
            )
        arrays = {}
        for name, value in columns.items():
            if not isinstance(name, str) or not name or name.startswith("__"):
                raise ValueError(
                    f"column names must be non-empty strings not starting with '__', got {name!r}"
                )
            a = np.ascontiguousarray(value)
            if a.dtype.hasobject or a.ndim == 0:
                raise ValueError(
                    f"column {name!r} must be an array of numbers with a leading "
                    f"row dimension, got dtype {a.dtype}, shape {a.shape}"
                )
            arrays[name] = a
        rows = {a.shape[0] for a in arrays.values()}
        if len(rows) != 1:
            raise ValueError(
                f"columns must have the same number of rows, got "
                f"{ {k: a.shape[0] for k, a in arrays.items()} }"
            )
        meta = self._identity(stage, index, span, rows.pop(), arrays)
        meta["checksum"] = _checksum(meta, arrays)
        buf = io.BytesIO()
        np.savez(buf, **{_META: np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}, **arrays)
        return buf.getvalue()

    def _identity(
        self,
        stage: str,
        index: int,
        span: Optional[Span],
        rows: int,
        arrays: Mapping[str, np.ndarray],
    ) -> Dict[str, Any]:
        return {
            "format": FORMAT,
            "config_hash": self.config_hash,
            "stage": stage,
            "index": int(index),
            "span": None if span is None else [int(span[0]), int(span[1])],
            "rows": int(rows),
            "columns": {k: [a.dtype.str, list(a.shape)] for k, a in sorted(arrays.items())},
        }

    def _decode(
        self,
        source: BinaryIO,
        stage: str,
        index: int,
        span: Optional[Span],
        required: Optional[List[str]],
    ) -> Columns:
        """The columns of a chunk file, after every check (the first failing one raises
        :class:`_Bad`)."""
        meta, arrays = _read_chunk(source)
        want_span = None if span is None else [int(span[0]), int(span[1])]
        self._check_identity(meta, stage, index, want_span)
        rows, stored_span = _check_columns(meta, arrays, required)
        ident = self._identity(stage, index, stored_span, rows, arrays)
        if meta.get("checksum") != _checksum(ident, arrays):
            raise _Bad("its content does not match its checksum")
        if want_span is not None and "source_index" in arrays and rows:
            src = arrays["source_index"]
            if src.min() < want_span[0] or src.max() >= want_span[1]:
                raise _Bad(f"its source_index leaves its input rows {want_span}")
        return arrays

    def _check_identity(
        self, meta: Dict[str, Any], stage: str, index: int, want_span: Optional[List[int]]
    ) -> None:
        """The chunk belongs to this run, stage, index and input rows."""
        if meta.get("format") != FORMAT:
            raise _Bad(f"it has format {meta.get('format')!r}, expected {FORMAT}")
        if meta.get("config_hash") != self.config_hash:
            raise _Bad("it belongs to a run with another configuration")
        if meta.get("stage") != stage or meta.get("index") != index:
            raise _Bad(
                f"it is chunk {meta.get('index')!r} of stage {meta.get('stage')!r}, not "
                f"chunk {index} of {stage!r} (a file copied or renamed over another)"
            )
        if want_span is not None and meta.get("span") != want_span:
            raise _Bad(f"it covers input rows {meta.get('span')!r}, expected {want_span}")

    def _reject(self, path: Path, reason: str) -> None:
        if self.on_bad == "raise":
            raise ChunkError(
                f"chunk file {str(path)!r} is bad: {reason}. Delete it (it will be "
                "computed again by a run with --resume), or run without --resume "
                "to start afresh"
            )
        warnings.warn(
            f"chunk file {str(path)!r} is bad: {reason}; deleting it, it will be computed again",
            RuntimeWarning,
            stacklevel=3,
        )
        _unlink(path)
        return None


def _read_chunk(source: BinaryIO) -> Tuple[Dict[str, Any], Columns]:
    """The identification entry (parsed) and the columns of an NPZ chunk file."""
    try:
        with np.load(source, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise _Bad("it is not an NPZ archive")
            names = list(data.files)
            if _META not in names:
                raise _Bad(
                    "it carries no identification (no __chunk__ entry): it was not "
                    "written by this version"
                )
            meta_raw = bytes(data[_META])
            arrays = {k: data[k] for k in names if k != _META}
    except _Bad:
        raise
    except _READ_ERRORS as exc:
        raise _Bad(f"it is not a readable NPZ archive ({type(exc).__name__}: {exc})") from None
    except AttributeError:  # np.load returned a plain array: a .npy file
        raise _Bad("it is not an NPZ archive") from None
    try:
        meta = json.loads(meta_raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Bad("its identification entry is not valid JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("columns"), dict):
        raise _Bad("its identification entry is not an object with a 'columns' object")
    return meta, arrays


def _check_columns(
    meta: Dict[str, Any], arrays: Columns, required: Optional[List[str]]
) -> Tuple[int, Any]:
    """The columns are the declared ones (and hold ``required``), each with the declared
    dtype, shape and row count.

    Returns:
        ``(rows, span)`` as the chunk declares them.
    """
    declared = meta["columns"]
    missing = sorted(set(declared) - set(arrays)) + sorted(set(required or ()) - set(declared))
    if missing:
        raise _Bad(f"it is missing the column(s) {sorted(set(missing))}")
    extra = sorted(set(arrays) - set(declared))
    if extra:
        raise _Bad(f"it holds undeclared column(s) {extra}")
    rows, stored_span = meta.get("rows"), meta.get("span")
    if isinstance(rows, bool) or not isinstance(rows, int):
        raise _Bad(f"its declared row count is {rows!r}, not an int")
    if stored_span is not None and not (
        isinstance(stored_span, list)
        and len(stored_span) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in stored_span)
    ):
        raise _Bad(f"its declared input rows are {stored_span!r}, not [start, stop]")
    for name, a in arrays.items():
        if a.ndim == 0 or a.shape[0] != rows:
            raise _Bad(
                f"column {name!r} has {a.shape[0] if a.ndim else 'no'} rows, the chunk "
                f"declares {rows}"
            )
        if [a.dtype.str, list(a.shape)] != declared[name]:
            raise _Bad(
                f"column {name!r} has dtype {a.dtype.str} and shape {list(a.shape)}, "
                f"declared {declared[name]}"
            )
    return rows, stored_span


def _checksum(identity: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the identity (without the checksum) and each column's bytes, by name."""
    digest = hashlib.sha256(
        json.dumps({k: v for k, v in identity.items() if k != "checksum"}, sort_keys=True).encode()
    )
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(name.encode() + b"\0")
        digest.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
    return digest.hexdigest()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:  # another process removed it first
        pass
