"""How the OpenMP threads of the command line wait: set before the runtime loads.

PyTorch's CPU wheels and the extension ``_C`` share one GNU OpenMP runtime (libgomp, one
``libgomp.so.1`` per process). After each parallel region its threads spin for a while
(300,000 iterations by default) before they sleep, and at its end the calling thread waits
for all of them. Beside other busy processes a spinning thread takes a core from a thread
with work, and a region ends only when its last, preempted, thread is scheduled again: the
attack ran 5 to 25 times slower on a busy 2-core machine (``bench/contention.py``,
``docs/scaling.md``). The runtime reads ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` once, when
it loads, which in ``jsma-fast`` is the first import of this package (``_C`` links it).

So, when this process runs the command line (``jsma-fast ...``, ``python -m jsma_fast.cli``,
``torchrun -m jsma_fast.cli``), the user set neither variable and other threads are running
on the machine as it starts, :func:`apply` sets :data:`COMMAND_LINE_SETTING` in the environment
before the runtime loads; the package runs it first thing. On a machine found idle it leaves
the runtime's spinning default, which is faster there (passive waiting cost 1.17x idle). The
reading is immediate (``procs_running`` of ``/proc/stat``, the least of a few readings), not
the load average, which lags; where it cannot be read the policy is passive. The choice never
changes a result, only the time. A user's own setting of either variable is never changed.
Importing jsma_fast as a library changes no setting: the wait policy of a process is its
owner's choice, and it is fixed before jsma_fast is imported anyway when torch was imported
first. Attack calls that start on a busy machine, in any process, shorten the waits for their
own duration instead (``jsma_fast._short_waits``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, MutableMapping, Optional, Sequence

#: Variables through which a user chooses how the runtime's threads wait; any one of them set
#: leaves the choice to the user.
USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
#: What the command line sets when the user set none of them.
COMMAND_LINE_SETTING = {"OMP_WAIT_POLICY": "PASSIVE"}
#: What :func:`apply` set in this process (empty when it set nothing).
applied: Dict[str, str] = {}
#: [True] when :func:`apply` left the default because the machine was idle at start-up.
idle_at_start: List[bool] = []

_MODULE = "jsma_fast.cli"
_SCRIPT = "jsma-fast"
# Interpreter options followed by a value: ``python -X importtime -m jsma_fast.cli``.
_OPTIONS_WITH_VALUE = ("-X", "-W", "--check-hash-based-pycs")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; all CPUs off Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def runs_command_line(orig_argv: Sequence[str]) -> bool:
    """Whether the interpreter's command line ``orig_argv`` (``sys.orig_argv``) runs
    jsma-fast's command line: ``python [options] -m jsma_fast.cli ...`` (torchrun starts its
    workers so) or ``python .../jsma-fast ...`` (the console script, also under ``torchrun
    --no-python``)."""
    args = list(orig_argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-m":
            return i + 1 < len(args) and args[i + 1] == _MODULE
        if arg.startswith("-m"):
            return arg[2:] == _MODULE
        if arg in _OPTIONS_WITH_VALUE:
            i += 2
            continue
        if arg == "-c" or arg == "-":
            return False
        if not arg.startswith("-"):
            return Path(arg).name == _SCRIPT
        i += 1
    return False


def others_running(
    read: Callable[[], Optional[int]] = lambda: _runnable_besides_this_process(),
    samples: int = 3,
    pause: float = 0.002,
) -> Optional[int]:
    """Threads running on the machine now besides this one: the least of ``samples``
    readings of ``read`` (runnable threads, this one included) ``pause`` seconds apart, so
    that a passing burst does not count; None when it cannot be read. A reading of this
    thread alone ends it at once: the least cannot be lower (an idle machine pays no pause)."""
    readings = []
    for i in range(samples):
        value = read()
        if value is None:
            return None
        readings.append(value)
        if value <= 1:
            break
        if i + 1 < samples:
            time.sleep(pause)
    return max(0, min(readings) - 1)


def _runnable_besides_this_process() -> Optional[int]:
    """Runnable threads on the machine, counting this process as one (its calling thread):
    this process's own threads that spin after a parallel region are not other work."""
    total = _procs_running()
    if total is None:
        return None
    return max(1, total - _running_here() + 1)


def _running_here(tasks: str = "/proc/self/task") -> int:
    """Threads of this process that are running or runnable now (Linux; 1 where unknown)."""
    count = 0
    try:
        names = os.listdir(tasks)
    except OSError:
        return 1
    for name in names:
        try:
            with open(os.path.join(tasks, name, "stat")) as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # a thread that ended meanwhile
        count += state == "R"
    return max(count, 1)


def _procs_running(path: str = "/proc/stat") -> Optional[int]:
    """Runnable threads on the machine (Linux), or None."""
    try:
        with open(path) as stat:
            for line in stat:
                if line.startswith("procs_running "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def apply(
    environ: Optional[MutableMapping[str, str]] = None,
    orig_argv: Optional[Sequence[str]] = None,
    others: Callable[[], Optional[int]] = others_running,
) -> Dict[str, str]:
    """Sets :data:`COMMAND_LINE_SETTING` in ``environ`` (default ``os.environ``) when
    ``orig_argv`` (default ``sys.orig_argv``) runs the command line, ``environ`` holds none
    of :data:`USER_VARIABLES` and ``others()`` finds other threads running (or cannot tell);
    returns what it set (recorded in :data:`applied`)."""
    env = os.environ if environ is None else environ
    argv = getattr(sys, "orig_argv", sys.argv) if orig_argv is None else orig_argv
    if not runs_command_line(argv) or any(name in env for name in USER_VARIABLES):
        return {}
    found = others()
    if found == 0:  # an idle machine: spinning is faster there
        if environ is None:
            idle_at_start.append(True)
        return {}
    env.update(COMMAND_LINE_SETTING)
    if environ is None:
        applied.update(COMMAND_LINE_SETTING)
    return dict(COMMAND_LINE_SETTING)


def describe(environ: Optional[MutableMapping[str, str]] = None) -> str:
    """One line for ``jsma-fast info``: the wait variables in effect and who set them."""
    env = os.environ if environ is None else environ
    found = [f"{name}={env[name]}" for name in USER_VARIABLES if name in env]
    if not found:
        why = ", chosen by jsma-fast's command line on an idle machine" if idle_at_start else ""
        return f"runtime default (threads spin before they sleep{why})"
    who = "set by jsma-fast's command line" if applied else "from the environment"
    return f"{', '.join(found)} ({who})"
