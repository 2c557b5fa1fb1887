"""The results folder of a run: one run at a time, and no silent replacement of earlier results.

* :class:`FolderLock`: an exclusive lock on ``<out>/.lock`` (``fcntl.flock``), which holds
  the pid, host and start time of the run that owns the folder. The kernel releases the lock
  when its process ends, however it ends, so a lock file left by a dead process is simply
  taken over. A second run into the same folder fails at once with :class:`FolderInUse`,
  naming the first.
* :func:`check_no_results`: a run that does not resume refuses a folder that holds an earlier
  run's results (:class:`ResultsExist`) instead of deleting them.
* :func:`claim_folder`: both, on the process that owns the folder (rank 0, or local rank 0 of
  every node with ``gather``), with the outcome agreed by every rank.

The errors carry what they report as attributes, so that a command line can word them with
its own option names; their messages speak of the Python arguments.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import socket
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .distributed import Dist

LOCK_FILE = ".lock"
_HELD: Dict[str, "FolderLock"] = {}  # by real path: one lock per folder and process


class FolderInUse(RuntimeError):
    """Another process holds the results folder's lock.

    Attributes:
        path: the folder. pid, host, started: the holder's, as its lock file says (``"?"``
            where it could not be read, e.g. while the holder is still writing it).
    """

    def __init__(self, path: Path, holder: Dict[str, Any]) -> None:
        self.path = path
        self.pid = holder.get("pid", "?")
        self.host = holder.get("host", "?")
        self.started = holder.get("started", "?")
        super().__init__(
            f"out {str(path)!r} is in use by another run ({self.holder}); wait for that run to "
            "end (or stop it), or pass another out"
        )

    @property
    def holder(self) -> str:
        """``"pid P on host H, started T"``."""
        return f"pid {self.pid} on host {self.host}, started {self.started}"


class ResultsExist(FileExistsError):
    """The results folder holds an earlier run's results and the run was not asked to resume.

    Attributes:
        path: the folder. files: what it holds (e.g. ``"results.npz and 6 chunk files"``).
        written: local time at which they were last written (``YYYY-MM-DD HH:MM:SS``).
    """

    def __init__(self, path: Path, files: str, written: str) -> None:
        self.path, self.files, self.written = path, files, written
        super().__init__(
            f"out {str(path)!r} holds the results of an earlier run ({files}, last written "
            f"{written}); pass resume=True to continue them, or another out (or delete the "
            "folder) to start afresh"
        )


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _read_holder(path: Path) -> Dict[str, Any]:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _alive(pid: Any) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


class FolderLock:
    """The exclusive lock on ``<folder>/.lock`` (see the module docstring).

    Reentrant within a process: acquiring a folder this process already holds counts, and
    the lock is released by the last :meth:`release`.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: Optional[int] = None
        self._count = 0

    def acquire(self) -> "FolderLock":
        """Takes the lock (creating the folder), or raises :class:`FolderInUse`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(self.folder)
        held = _HELD.get(key)
        if held is not None:
            held._count += 1
            return held
        for _ in range(10):  # retried only when a releasing holder removed the file meanwhile
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not self._lock(fd):
                continue
            self._fd, self._count = fd, 1
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            _HELD[key] = self
            return self
        raise FolderInUse(self.folder, _read_holder(self.path))

    def _lock(self, fd: int) -> bool:
        """Locks ``fd``; False (closed) when the file was replaced meanwhile; raises
        :class:`FolderInUse` when another process holds it."""
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return self._without_flock(fd)
            os.close(fd)
            raise FolderInUse(self.folder, _read_holder(self.path)) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
        return same

    def _without_flock(self, fd: int) -> bool:
        """A file system without ``flock``: the lock file's pid decides (on this host)."""
        holder = _read_holder(self.path)
        mine = holder.get("host") == socket.gethostname()
        if holder and holder.get("pid") != os.getpid() and (not mine or _alive(holder["pid"])):
            os.close(fd)
            raise FolderInUse(self.folder, holder)
        return True

    def release(self) -> None:
        """Gives the lock back (the last release of this process removes the lock file)."""
        if self._fd is None:
            return
        self._count -= 1
        if self._count > 0:
            return
        _HELD.pop(os.path.realpath(self.folder), None)
        try:
            if os.fstat(self._fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing releases the flock
        self._fd = None


def check_no_results(folder: Path) -> None:
    """Raises :class:`ResultsExist` when ``folder`` holds an earlier run's merged results or
    chunk files (a folder left by a run interrupted before its first chunk holds neither)."""
    found: List[Path] = [p for p in (folder / "results.npz",) if p.is_file()]
    chunks = sorted((folder / "chunks").glob("*/chunk-*.npz"))
    if not found and not chunks:
        return
    parts = [p.name for p in found] + ([f"{len(chunks)} chunk files"] if chunks else [])
    written = max(p.stat().st_mtime for p in found + chunks)
    stamp = datetime.datetime.fromtimestamp(written).strftime("%Y-%m-%d %H:%M:%S")
    raise ResultsExist(folder, " and ".join(parts), stamp)


def results_dir(out: Any) -> Path:
    """``out`` as a Path; ValueError when it is a file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a directory, got the file {str(out)!r}")
    return out


def claim(out: Path, resume: bool) -> FolderLock:
    """Locks ``out``, then (without ``resume``) checks that it holds no earlier results."""
    lock = FolderLock(results_dir(out)).acquire()
    try:
        if not resume:
            check_no_results(lock.folder)
    except BaseException:
        lock.release()
        raise
    return lock


def claim_folder(
    ctx: Dist,
    out: Path,
    resume: bool,
    gather: bool,
    reword: Optional[Callable[[Exception], Exception]] = None,
) -> Optional[FolderLock]:
    """:func:`claim` on the process that owns ``out`` (rank 0, or with ``gather`` local rank 0
    of every node, which keeps its own copy); every rank raises when one fails.

    Args:
        reword: turns :class:`FolderInUse` and :class:`ResultsExist` into the caller's error
            (e.g. one naming command-line options) before the other ranks learn of it.

    Returns:
        the lock on the owner (release it when the run ends), None on the other ranks.
    """
    owner = ctx.local_rank == 0 if gather else ctx.is_main
    held: List[FolderLock] = []

    def take() -> None:
        if not owner:
            return
        try:
            held.append(claim(out, resume))
        except (FolderInUse, ResultsExist) as exc:
            if reword is None:
                raise
            raise reword(exc) from exc

    try:
        ctx.each(take)
    except BaseException:
        for lock in held:
            lock.release()
        raise
    return held[0] if held else None
