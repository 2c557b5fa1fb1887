"""Short OpenMP waits while an attack runs on a busy machine, in any process.

PyTorch's CPU wheels and the extension share one GNU OpenMP runtime (libgomp), whose threads
spin for 300,000 iterations after each parallel region before they sleep. Beside other busy
processes that spinning takes cores from threads with work, and each region waits for its
last, preempted, thread: the attack ran 5 to 25 times slower (``docs/scaling.md``). The
runtime reads its wait policy once, when it loads, so a program that imported torch first
cannot choose it; but the runtime spins only 100 iterations while it manages more threads
than the process has CPUs (libgomp manual, ``GOMP_SPINCOUNT``). So, for the duration of an
attack call that starts on a busy machine, :func:`short_waits_when_busy` holds a parked team
of spare threads (``_C.ShortWaits``, ``csrc/cpu/short_waits.h``) and lets it go afterwards:
every team of the process then waits briefly, as with ``OMP_WAIT_POLICY=PASSIVE``, and the
runtime's default returns when the call ends. It changes only how threads wait, never a
result. It does nothing when:

- the user chose how threads wait (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` in the
  environment; the command line sets the passive policy itself on a busy machine);
- no other thread runs on the machine as the call starts (spinning is faster there), or the
  machine's threads cannot be read;
- the process does not run exactly one GNU OpenMP runtime under its standard name (the one
  torch and the extension share; another runtime would not see the spare team).

Calls inside a call (``sparsest`` running ``JSMA``, say) share the outer call's choice;
concurrent calls from several Python threads share one parked team.
"""

from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

from . import _openmp

#: What the last outermost call chose ("short waits", or why not), for ``jsma-fast info``
#: and the tests.
last_choice: Dict[str, str] = {}

_STANDARD_NAME = re.compile(r"libgomp\.so(\.|$)")
_lock = threading.Lock()
_depth = 0
_hold: Optional[Any] = None


def wanted(
    environ: Mapping[str, str],
    runtimes: Callable[[], int] = lambda: _gnu_runtimes(),
    others: Callable[[], Optional[int]] = _openmp.others_running,
) -> str:
    """Whether a call starting now should hold the spare team: ``"short waits"``, or the
    reason it should not."""
    if any(name in environ for name in _openmp.USER_VARIABLES):
        return "the wait policy is set in the environment"
    if runtimes() != 1:
        return "not exactly one GNU OpenMP runtime (libgomp.so) in this process"
    found = others()
    if found is None:
        return "the machine's running threads cannot be read"
    if found == 0:
        return "the machine is idle"
    return "short waits"


def _gnu_runtimes(maps: str = "/proc/self/maps") -> int:
    """GNU OpenMP runtimes loaded in this process under the name torch and ``_C`` link
    (distinct ``libgomp.so*`` files). Copies vendored under names of their own (scikit-learn's
    ``libgomp-<hash>.so``) serve only the libraries that ship them and are not counted."""
    try:
        with open(maps) as lines:
            paths = {line.split()[-1] for line in lines if "/libgomp" in line}
    except OSError:
        return 0
    return len({path for path in paths if _STANDARD_NAME.match(os.path.basename(path))})


def _start() -> Optional[Any]:
    """The spare team when :func:`wanted` says so, else None (also when it cannot start:
    the waits only change the time, never whether a call runs)."""
    choice = wanted(os.environ)
    last_choice["choice"] = choice
    if choice != "short waits":
        return None
    from . import _C

    try:
        # One per usable CPU: the runtime then counts more threads than CPUs whatever else
        # it runs (it counts at least the process's first thread).
        return _C.ShortWaits(_openmp.usable_cpus())
    except (RuntimeError, OSError) as exc:
        last_choice["choice"] = f"the spare team did not start ({exc})"
        return None


@contextmanager
def short_waits_when_busy() -> Iterator[None]:
    """Holds the spare team while the block runs, when :func:`wanted` says so as the
    outermost such block starts. Usable as a decorator."""
    global _depth, _hold
    with _lock:
        _depth += 1
        if _depth == 1:
            _hold = _start()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _hold is not None:
                _hold.release()
                _hold = None


def describe() -> str:
    """One line for ``jsma-fast info``: what an attack call starting now would choose."""
    choice = wanted(os.environ)
    if choice == "short waits":
        return "short waits while a call runs (other threads are running on the machine)"
    return f"unchanged ({choice})"
