"""The CPU kernels in a forked child after a multi-threaded search in the parent.

GNU OpenMP hangs there unless the kernels avoid a multi-threaded team in the child (see
csrc/cpu/parallel.cpp). Each scenario runs in its own interpreter, in its own process group,
under a timeout, so that a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TIMEOUT_S = 60  # generous on a loaded machine: the searches take well under a second

# Inputs on which every kernel takes its multi-threaded path with 2 threads (the thresholds
# are in csrc/cpu/*.cpp), and the reference answers computed in the parent before forking.
PRELUDE = textwrap.dedent(
    """
    import os, re, sys, warnings
    import numpy as np
    from jsma_fast import saliency_map, select_features, select_pairs

    # Python >= 3.12 warns about fork() in a multi-threaded process; that is the point here.
    warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)

    def thread_count():
        with open("/proc/self/status") as fh:
            return int(re.search(r"Threads:\\s*(\\d+)", fh.read()).group(1))

    rng = np.random.default_rng(0)
    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    CASES = {
        "exact": (normal(1, 4096), normal(1, 4096)),   # > 2**22 pairs
        "pruned": (normal(4, 20000), normal(4, 20000)),  # batch > 1, > 2**16 features
        "features": (normal(2, 1 << 20), normal(2, 1 << 20)),  # > 2**21 features
    }

    def search(name):
        a, b = CASES[name]
        if name == "features":
            sel = select_features(a, b, num_threads=2)
            smap = saliency_map(a, b, num_threads=2)
            return [x.tolist() for x in sel] + [float(smap.sum(dtype=np.float64))]
        return [x.tolist() for x in select_pairs(a, b, method=name, num_threads=2)]

    before = thread_count()
    expected = {name: search(name) for name in CASES}
    # The parent really ran a multi-threaded team (its worker threads stay alive, docked).
    assert thread_count() > before, (before, thread_count())
    """
)

FORK_CHILD = PRELUDE + textwrap.dedent(
    """
    pid = os.fork()
    if pid == 0:
        code = 0 if {name: search(name) for name in CASES} == expected else 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)

FORK_POOL = PRELUDE + textwrap.dedent(
    """
    import multiprocessing
    names = sorted(CASES) * 2  # more tasks than workers: each worker searches again
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map_async(search, names).get(timeout=%d)
    sys.exit(0 if got == [expected[n] for n in names] else 3)
    """
    % (TIMEOUT_S // 2)
)

NESTED_FORK = PRELUDE + textwrap.dedent(
    """
    pid = os.fork()
    if pid == 0:  # the child forks again: the grandchild inherits the stale pool too
        grandchild = os.fork()
        if grandchild == 0:
            os._exit(0 if {name: search(name) for name in CASES} == expected else 3)
        _, status = os.waitpid(grandchild, 0)
        os._exit(os.waitstatus_to_exitcode(status))
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def run_isolated(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Runs ``script`` in a fresh interpreter; on timeout kills its whole process group
    (children included) and fails."""
    path = tmp_path / "scenario.py"
    path.write_text(script)
    # cwd outside the source tree, so that the installed package (with _C) is imported.
    proc = subprocess.Popen(
        [sys.executable, str(path)],
        cwd=str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the scenario hung for {TIMEOUT_S} s (killed); output:\n{out}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out)


pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not os.path.exists("/proc/self/status"),
    reason="needs fork() and /proc (Linux)",
)


@pytest.mark.parametrize(
    "script", [FORK_CHILD, FORK_POOL, NESTED_FORK], ids=["os.fork", "fork-pool", "nested-fork"]
)
def test_search_in_forked_child_after_threaded_search(script, tmp_path):
    result = run_isolated(script, tmp_path)
    assert result.returncode == 0, result.stdout
