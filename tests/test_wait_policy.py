"""The command line's OpenMP wait policy (``jsma_fast._openmp``): set before the runtime loads
when the user set none, a user's setting kept, a library import unchanged.

The subprocess tests read what the OpenMP runtime itself loaded with (``OMP_DISPLAY_ENV``:
libgomp prints its settings to stderr when it loads), not only the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from jsma_fast import _openmp


@pytest.mark.parametrize(
    "argv",
    [
        ["python", "-m", "jsma_fast.cli", "attack", "--out", "x"],
        ["/usr/bin/python3", "-u", "-m", "jsma_fast.cli", "reproduce"],  # torchrun's workers
        ["python", "-X", "importtime", "-mjsma_fast.cli", "info"],
        ["/venv/bin/python", "/venv/bin/jsma-fast", "attack"],  # the console script
        ["python", "-I", "jsma-fast"],
    ],
)
def test_the_command_line_is_recognised(argv):
    assert _openmp.runs_command_line(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["python"],
        ["python", "-c", "import jsma_fast"],
        ["python", "-m", "pytest", "-m", "jsma_fast.cli"],
        ["python", "-m", "jsma_fast.info"],
        ["python", "-m", "jsma_fast.cli.attack"],
        ["python", "train.py", "jsma-fast"],
        ["python", "-X", "jsma-fast", "script.py"],
        ["/venv/bin/jsma-fast-other"],
        ["python", "-"],
    ],
)
def test_other_programs_are_not_the_command_line(argv):
    assert not _openmp.runs_command_line(argv)


COMMAND = ["python", "-m", "jsma_fast.cli", "attack"]


@pytest.mark.parametrize("others", [1, 7, None])  # None: the machine cannot be read
def test_apply_sets_the_passive_policy_on_a_busy_machine(others):
    env = {"PATH": "/bin"}
    assert _openmp.apply(env, COMMAND, lambda: others) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert env == {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}


def test_apply_leaves_the_spinning_default_on_an_idle_machine():
    env = {"PATH": "/bin"}
    assert _openmp.apply(env, COMMAND, lambda: 0) == {}
    assert env == {"PATH": "/bin"}


@pytest.mark.parametrize(
    "readings, expected", [([3, 1, 2], 0), ([5, 5, 4], 3), ([1], 0), ([2, None], None)]
)
def test_others_running_takes_the_least_reading_less_this_thread(readings, expected):
    values = iter(readings)
    assert _openmp.others_running(lambda: next(values), samples=len(readings), pause=0) == (
        expected
    )


def test_a_reading_of_this_thread_alone_ends_the_readings():
    calls = []

    def read():
        calls.append(1)
        return 1

    assert _openmp.others_running(read, samples=3, pause=10.0) == 0  # no pause taken
    assert len(calls) == 1


def test_procs_running_reads_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nprocs_running 4\nprocs_blocked 0\n")
    assert _openmp._procs_running(str(stat)) == 4
    assert _openmp._procs_running(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(
    "user", [{"OMP_WAIT_POLICY": "active"}, {"GOMP_SPINCOUNT": "10000"}, {"OMP_WAIT_POLICY": ""}]
)
def test_apply_keeps_the_users_setting(user):
    env = dict(user)
    assert _openmp.apply(env, COMMAND) == {}
    assert env == user


def test_apply_changes_nothing_outside_the_command_line():
    env: dict = {}
    assert _openmp.apply(env, ["python", "script.py"]) == {}
    assert env == {}


def _runtime_settings(argv, tmp_path, **env):
    """The wait policy and spin count libgomp loaded with in a process running ``argv``, and
    the process's stdout."""
    clean = {k: v for k, v in os.environ.items() if k not in _openmp.USER_VARIABLES}
    clean.update(env, OMP_DISPLAY_ENV="VERBOSE")
    done = subprocess.run(
        argv, env=clean, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    policy = re.search(r"OMP_WAIT_POLICY = '(\w+)'", done.stderr)
    spin = re.search(r"GOMP_SPINCOUNT = '(\d+)'", done.stderr)
    if policy is None or spin is None:
        pytest.skip("the OpenMP runtime is not GNU OpenMP (no OMP_DISPLAY_ENV report)")
    return policy.group(1), int(spin.group(1)), done.stdout


def _console_script(tmp_path):
    """A file named like the installed console script, with its content."""
    script = tmp_path / "jsma-fast"
    script.write_text("import sys\nfrom jsma_fast.cli import main\nsys.exit(main())\n")
    return [sys.executable, str(script)]


COMMANDS = {
    "python -m": lambda tmp: [sys.executable, "-m", "jsma_fast.cli", "info"],
    "console script": lambda tmp: [*_console_script(tmp), "info"],
}


@pytest.fixture
def busy_machine():
    """Two processes that keep a core busy each while the test runs."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    time.sleep(0.5)  # running before the command starts
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


@pytest.mark.parametrize("how", sorted(COMMANDS))
def test_the_command_lines_threads_do_not_spin_beside_busy_processes(how, tmp_path, busy_machine):
    policy, spin, stdout = _runtime_settings(COMMANDS[how](tmp_path), tmp_path)
    assert (policy, spin) == ("PASSIVE", 0)
    assert "OMP_WAIT_POLICY=PASSIVE (set by jsma-fast's command line)" in stdout


@pytest.mark.parametrize(
    "user, expected",
    [
        ({"OMP_WAIT_POLICY": "ACTIVE"}, ("ACTIVE", None)),
        ({"GOMP_SPINCOUNT": "5000"}, (None, 5000)),
    ],
)
def test_the_command_line_keeps_the_users_setting(user, expected, tmp_path):
    argv = [sys.executable, "-m", "jsma_fast.cli", "info"]
    policy, spin, stdout = _runtime_settings(argv, tmp_path, **user)
    want_policy, want_spin = expected
    assert want_policy is None or policy == want_policy
    assert want_spin is None or spin == want_spin
    assert "(from the environment)" in stdout


def test_a_library_import_leaves_the_runtime_default(tmp_path):
    argv = [sys.executable, "-c", "import jsma_fast, torch; print(torch.get_num_threads())"]
    policy, spin, _ = _runtime_settings(argv, tmp_path)
    assert spin == 300000  # libgomp's own default: nothing was set
