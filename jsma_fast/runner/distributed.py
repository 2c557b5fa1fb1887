"""torch.distributed for the evaluation: one object that knows this process's rank, device
and process group, with the few collectives the chunked runs need.

* :func:`setup` joins the process group that ``torchrun`` describes in the environment (or
  uses one the caller initialised), picks the backend from the device (NCCL with
  ``cuda:LOCAL_RANK`` on GPUs, gloo on CPUs) and gives each rank its share of the CPU cores.
  Outside ``torchrun`` it returns a world of one process, on which every collective is a
  no-op, so callers have one code path.
* Errors stop every rank. A rank that fails marks the failure in the process group's
  key-value store; the others look at that mark after each chunk and stop too. At the next
  collective every rank learns which rank failed and why, and raises :class:`RankFailed`
  with that rank's message (the failing rank re-raises its own exception).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, List, Optional, TypeVar

import torch

from .._openmp import usable_cpus

T = TypeVar("T")

#: Collective timeout of the groups :func:`setup` creates. Long, because rank 0 may train a
#: model while the others wait; failures do not rely on it (see the module docstring).
DEFAULT_TIMEOUT = datetime.timedelta(hours=2)
_DEVICES = ("auto", "cpu", "cuda")


class RankFailed(RuntimeError):
    """Raised on every rank of a distributed run when one rank failed.

    Attributes:
        rank: the failing rank (None when it is not known, see :class:`RankLost`).
        message: its error, as ``"ExceptionType: message"``.
    """

    def __init__(self, rank: Optional[int], message: str) -> None:
        super().__init__(message if rank is None else f"rank {rank} failed: {message}")
        self.rank = rank
        self.message = message


class RankLost(RankFailed):
    """A collective failed because another rank is gone (killed, or its node lost)."""

    def __init__(self, operation: str, exc: BaseException) -> None:
        super().__init__(
            None,
            f"lost the connection to another rank during {operation} (a rank "
            f"was killed or its node lost: {describe(exc).splitlines()[0]}); "
            "completed chunks are kept: run the same command with --resume",
        )


@contextlib.contextmanager
def _collective(operation: str) -> Iterator[None]:
    """Turns the backend's error for a vanished peer into :class:`RankLost`."""
    try:
        yield
    except RuntimeError as exc:  # gloo, NCCL and the store raise RuntimeError subclasses
        raise RankLost(operation, exc) from exc


def launched_by_torchrun() -> bool:
    """True when the environment describes a process group of more than one process
    (``WORLD_SIZE`` > 1, as ``torchrun`` sets it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def describe(exc: BaseException) -> str:
    """``"ExceptionType: message"``: how an error of one rank is reported on the others."""
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Dist:
    """This process's place in a (possibly one-process) run.

    Attributes:
        rank, world_size: global rank and number of processes.
        local_rank, local_world_size: the same within this node.
        device: where this rank computes and where collectives put their tensors
            (``cuda:LOCAL_RANK`` with NCCL, else the CPU).
        backend: ``"nccl"``, ``"gloo"`` (or another torch backend), None for one process.
        owns_group: True when :func:`setup` created the process group (and :meth:`close`
            destroys it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: Optional[str] = None
    owns_group: bool = False
    _runs: int = 0
    _rows: int = 0
    _store: Any = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, which plans, merges and writes the outputs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def where(self) -> str:
        """``"rank R (host H)"``, for messages."""
        return f"rank {self.rank} (host {socket.gethostname()})"

    def failure(self, exc: BaseException) -> str:
        """How this rank's error is reported to the others: ``"Type: message (host H)"``."""
        return f"{describe(exc)} (host {socket.gethostname()})"

    # ------------------------------------------------------------------ objects

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """``obj`` of rank ``src`` on every rank (picklable)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        with _collective("a broadcast"):
            dist.broadcast_object_list(box, src=src)
        return box[0]

    def all_gather(self, obj: Any) -> List[Any]:
        """Every rank's ``obj``, by rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: List[Any] = [None] * self.world_size
        with _collective("an all-gather"):
            dist.all_gather_object(out, obj)
        return out

    def agree(self, error: Optional[str], exc: Optional[BaseException] = None) -> None:
        """Collective error check: every rank passes its error (None when it is fine); when
        any rank has one, every rank raises. The lowest failing rank is reported; a rank that
        failed itself re-raises ``exc``.

        Raises:
            RankFailed: on the ranks that did not fail.
        """
        try:
            errors = self.all_gather(error)
        except RankLost:
            if exc is not None:
                raise exc from None  # this rank's own error comes first
            raise
        failed = [(r, e) for r, e in enumerate(errors) if e is not None]
        if not failed:
            return
        if exc is not None:
            raise exc
        raise RankFailed(*failed[0])

    def each(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` on every rank; if it fails anywhere, every rank raises."""
        try:
            value = fn()
        except Exception as exc:
            self.agree(self.failure(exc), exc)
            raise
        self.agree(None)
        return value

    def on_main(self, fn: Callable[[], T], share: bool = True) -> Optional[T]:
        """Runs ``fn`` on rank 0 while the others wait; returns its value on every rank
        (``share=True``) or on rank 0 only (None elsewhere). An error on rank 0 is raised
        on every rank."""
        if not self.distributed:
            return fn()
        if self.is_main:
            try:
                value = fn()
            except Exception as exc:
                self.broadcast(("error", self.failure(exc)))
                raise
            self.broadcast(("ok", value if share else None))
            return value
        status, value = self.broadcast(None)
        if status == "error":
            raise RankFailed(0, value)
        return value

    # ------------------------------------------------------------------ tensors and bytes

    def sync_module(self, module: torch.nn.Module) -> None:
        """Copies rank 0's parameters and buffers into ``module`` on every other rank (in
        place; the module must already be on :attr:`device`), after checking that every rank
        has the same architecture."""
        if not self.distributed:
            return
        import torch.distributed as dist

        state = module.state_dict()
        spec = [(k, tuple(v.shape), str(v.dtype)) for k, v in state.items()]
        reference = self.broadcast(spec)
        self.agree(
            None
            if spec == reference
            else "its model's parameters differ in name, shape or dtype from "
            "rank 0's: every rank must build the same architecture"
        )
        with torch.no_grad(), _collective("the broadcast of the model"):
            for tensor in state.values():
                buf = tensor.detach().to(self.device).contiguous()
                dist.broadcast(buf, src=0)
                if not self.is_main:
                    tensor.copy_(buf)

    def send_bytes(self, data: bytes, dst: int) -> None:
        """Sends ``data`` to rank ``dst`` (which calls :meth:`recv_bytes`)."""
        import torch.distributed as dist

        with _collective(f"a send to rank {dst}"):
            dist.send(torch.tensor([len(data)], dtype=torch.int64, device=self.device), dst)
            if data:
                payload = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(self.device)
                dist.send(payload, dst)

    def recv_bytes(self, src: int) -> bytes:
        """Bytes sent by rank ``src`` with :meth:`send_bytes`."""
        import torch.distributed as dist

        with _collective(f"a receive from rank {src}"):
            size = torch.zeros(1, dtype=torch.int64, device=self.device)
            dist.recv(size, src)
            if int(size) == 0:
                return b""
            payload = torch.empty(int(size), dtype=torch.uint8, device=self.device)
            dist.recv(payload, src)
        return payload.cpu().numpy().tobytes()

    # ------------------------------------------------------------------ failure marks

    def next_run(self) -> str:
        """A key prefix for one chunked run (every rank starts runs in the same order)."""
        self._runs += 1
        self._rows = 0
        return f"jsma_fast/run{self._runs}"

    def mark_failed(self, run: str, message: str) -> None:
        """Tells the other ranks, through the store, that this rank failed."""
        if self._store is not None:
            try:
                self._store.set(f"{run}/failed/{self.rank}", message)
                self._store.add(f"{run}/failures", 1)
            except RuntimeError:  # the store is gone: the others learn it at the next collective
                pass

    def failure_marked(self, run: str) -> bool:
        """True once any rank marked a failure in ``run`` (or the store is gone: the job is
        ending, and the next collective says why)."""
        if self._store is None:
            return False
        try:
            return bool(self._store.check([f"{run}/failures"]))
        except RuntimeError:
            return True

    def add_rows(self, run: str, rows: int) -> int:
        """Adds ``rows`` to the run's shared progress counter; returns the new total (this
        rank's own count where there is no store)."""
        self._rows += rows
        if self._store is None:
            return self._rows
        try:
            return int(self._store.add(f"{run}/rows", rows))
        except RuntimeError:  # the store is gone; the next collective reports it
            return self._rows

    def close(self) -> None:
        """Destroys the process group if :func:`setup` created it."""
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_group = False


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name} must be an integer (torchrun sets it), got {value!r}"
        ) from None


def setup(
    threads: Optional[int] = None,
    device: str = "auto",
    timeout: datetime.timedelta = DEFAULT_TIMEOUT,
) -> Dist:
    """This process's :class:`Dist`: joins ``torchrun``'s process group when the environment
    describes one, uses an already initialised group, or returns a world of one.

    Args:
        threads: torch CPU threads of this process. Default: in a distributed run, this
            rank's share of the cores (usable cores // processes on this node, at least 1);
            otherwise torch's own default is kept.
        device: ``"auto"`` (CUDA when available, else the CPU), ``"cpu"`` or ``"cuda"``.
            Distributed: ``cuda`` means ``cuda:LOCAL_RANK`` with NCCL, the CPU means gloo.
            One process: ``cuda`` means the current CUDA device.
        timeout: collective timeout of a group created here.

    Raises:
        ValueError: bad ``threads`` or ``device``, or ``cuda`` without a CUDA device.
    """
    use_cuda = _wants_cuda(threads, device)

    import torch.distributed as dist

    initialised = dist.is_available() and dist.is_initialized()
    if not initialised and not launched_by_torchrun():
        if threads is not None:
            torch.set_num_threads(threads)
        return Dist(
            device=torch.device("cuda", torch.cuda.current_device())
            if use_cuda
            else torch.device("cpu")
        )
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed; run one process")

    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", 1)
    if initialised:
        backend, owns = str(dist.get_backend()), False
        use_cuda = backend == "nccl"
    else:
        backend, owns = _init_group(use_cuda, local_rank, timeout), True
    if use_cuda:
        torch.cuda.set_device(local_rank)
    share = max(1, usable_cpus() // max(local_world, 1))
    torch.set_num_threads(threads if threads is not None else share)
    return Dist(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        local_world_size=local_world,
        device=torch.device("cuda", local_rank) if use_cuda else torch.device("cpu"),
        backend=backend,
        owns_group=owns,
        _store=_default_store(),
    )


def _wants_cuda(threads: Optional[int], device: str) -> bool:
    """Checks the arguments of :func:`setup`; whether the run computes on CUDA."""
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads must be None or an int >= 1, got {threads!r}")
    if device not in _DEVICES:
        raise ValueError(f"device must be one of {_DEVICES}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested, but torch sees no CUDA device")
    return device == "cuda" or (device == "auto" and torch.cuda.is_available())


def _init_group(use_cuda: bool, local_rank: int, timeout: datetime.timedelta) -> str:
    """Joins the process group torchrun describes; returns its backend (NCCL on
    ``cuda:LOCAL_RANK``, else gloo)."""
    import torch.distributed as dist

    if use_cuda and local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"this rank has LOCAL_RANK {local_rank}, but torch sees "
            f"{torch.cuda.device_count()} CUDA device(s): start at most that "
            "many processes per node, or pass --device cpu"
        )
    backend = "nccl" if use_cuda else "gloo"
    kwargs: dict = {"backend": backend, "timeout": timeout}
    if use_cuda:
        torch.cuda.set_device(local_rank)
        kwargs["device_id"] = torch.device("cuda", local_rank)
    dist.init_process_group(**kwargs)
    return backend


def _default_store() -> Any:
    """The default group's key-value store, or None where torch does not expose it."""
    try:
        from torch.distributed import distributed_c10d

        return distributed_c10d._get_default_store()
    except (AttributeError, RuntimeError, ValueError):  # without it, failures surface at the end
        return None
