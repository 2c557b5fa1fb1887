"""Short OpenMP waits while an attack call runs on a busy machine (jsma_fast._short_waits,
csrc/cpu/short_waits.h): when they are chosen, that they are released, that they never
change a result, and that they do shorten the runtime's spinning."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from helpers import dyadic_inputs, generic_model

from jsma_fast import _C, JSMA, _openmp, _short_waits, refine, sparsest, swap_search


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _settled(count: int, seconds: float = 5.0) -> int:
    """The thread count once it reaches ``count`` (threads of a freed team end shortly after
    the release), or the last count after ``seconds``."""
    deadline = time.monotonic() + seconds
    while _threads() != count and time.monotonic() < deadline:
        time.sleep(0.01)
    return _threads()


# ---------------------------------------------------------------------------- the choice


@pytest.mark.parametrize(
    "environ, runtimes, others, expected",
    [
        ({}, 1, 2, "short waits"),
        ({"OMP_WAIT_POLICY": "PASSIVE"}, 1, 2, "the wait policy is set in the environment"),
        ({"GOMP_SPINCOUNT": "300000"}, 1, 2, "the wait policy is set in the environment"),
        ({}, 1, 0, "the machine is idle"),
        ({}, 1, None, "the machine's running threads cannot be read"),
        ({}, 0, 2, "not exactly one GNU OpenMP runtime (libgomp.so) in this process"),
        ({}, 2, 2, "not exactly one GNU OpenMP runtime (libgomp.so) in this process"),
    ],
)
def test_short_waits_are_chosen_only_on_a_busy_machine_left_to_jsma_fast(
    environ, runtimes, others, expected
):
    assert _short_waits.wanted(environ, lambda: runtimes, lambda: others) == expected


def test_the_runtimes_are_counted_by_file(tmp_path):
    maps = tmp_path / "maps"
    lines = [
        "7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0",
        "7f01-7f02 r--p 0 08:01 1 /usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0",
        "7f02-7f03 r-xp 0 08:01 2 /usr/lib/libc.so.6",
    ]
    maps.write_text("\n".join(lines) + "\n")
    assert _short_waits._gnu_runtimes(str(maps)) == 1
    # scikit-learn's vendored copy serves scikit-learn only: still one runtime for torch
    lines.append(
        "7f04-7f05 r-xp 0 08:01 3 /site-packages/scikit_learn.libs/libgomp-a34b3233.so.1.0.0"
    )
    maps.write_text("\n".join(lines) + "\n")
    assert _short_waits._gnu_runtimes(str(maps)) == 1
    lines.append("7f06-7f07 r-xp 0 08:01 4 /site-packages/torch/lib/libgomp.so.1")
    maps.write_text("\n".join(lines) + "\n")
    assert _short_waits._gnu_runtimes(str(maps)) == 2
    assert _short_waits._gnu_runtimes(str(tmp_path / "missing")) == 0


def test_this_process_runs_one_gnu_runtime_shared_with_torch():
    import sklearn.ensemble  # noqa: F401  (may load its own vendored copy)

    torch.ones(8).sum()  # torch loaded
    assert _short_waits._gnu_runtimes() == 1


def test_this_processs_own_running_threads_are_not_other_work(monkeypatch):
    monkeypatch.setattr(_openmp, "_procs_running", lambda: 5)
    monkeypatch.setattr(_openmp, "_running_here", lambda: 3)  # this thread and two spinning
    assert _openmp._runnable_besides_this_process() == 3  # this thread and 2 others
    assert _openmp.others_running(_openmp._runnable_besides_this_process, pause=0) == 2
    monkeypatch.setattr(_openmp, "_procs_running", lambda: None)
    assert _openmp._runnable_besides_this_process() is None


def test_running_threads_of_this_process_are_read_from_proc(tmp_path):
    assert 1 <= _openmp._running_here() <= _threads()
    for tid, state in (("10", "R"), ("11", "S"), ("12", "R")):
        (tmp_path / tid).mkdir()
        (tmp_path / tid / "stat").write_text(f"{tid} (py thon) {state} 1 2 3\n")
    assert _openmp._running_here(str(tmp_path)) == 2
    assert _openmp._running_here(str(tmp_path / "missing")) == 1


# ---------------------------------------------------------------------------- the team


def test_the_spare_team_is_held_and_then_freed():
    torch.ones(8).sum()
    before = _settled(_threads())
    hold = _C.ShortWaits(3)
    assert hold.active and hold.threads == 4
    assert _threads() == before + 4  # the parking thread and its three team threads
    hold.release()
    hold.release()  # idempotent
    assert not hold.active
    assert _settled(before) == before


@pytest.mark.parametrize("spare", [0, -1])
def test_no_team_is_started_without_spare_threads(spare):
    hold = _C.ShortWaits(spare)
    assert not hold.active and hold.threads == 0
    hold.release()


# ---------------------------------------------------------------------------- in the calls


@pytest.fixture
def busy(monkeypatch):
    """The choice made as on a busy machine where jsma_fast chooses how threads wait."""
    for name in _openmp.USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_short_waits, "_gnu_runtimes", lambda: 1)
    monkeypatch.setattr(_openmp, "_procs_running", lambda: 64)
    held = []
    real = _C.ShortWaits

    def spy(spare):
        hold = real(spare)
        held.append(hold)
        return hold

    monkeypatch.setattr(_C, "ShortWaits", spy)
    return held


def _inputs():
    return generic_model(0), dyadic_inputs(6, 0)


def test_calls_hold_the_team_while_they_run_and_never_change_a_result(busy, monkeypatch):
    model, x = _inputs()
    attack = JSMA(variant="tjsma", gamma=0.3)
    short = attack(model, x, "next")
    assert len(busy) == 1 and not busy[0].active  # one team for the call, released after it
    assert _short_waits.last_choice["choice"] == "short waits"
    monkeypatch.setenv("GOMP_SPINCOUNT", "300000")  # the user's choice: nothing held
    spun = attack(model, x, "next")
    assert len(busy) == 1
    assert torch.equal(short.x_adv, spun.x_adv) and torch.equal(short.success, spun.success)


def test_calls_inside_a_call_share_its_team(busy):
    model, x = _inputs()
    sparsest(model, x, y=model(x).argmax(1), gamma=0.2)
    assert len(busy) == 1 and not busy[0].active


def test_the_team_is_released_when_a_call_fails(busy):
    model, x = _inputs()
    with pytest.raises(ValueError, match="theta"):
        JSMA(theta=0.0)(model, x)
    with pytest.raises(ValueError):
        refine(model, x, x[:2])
    assert all(not hold.active for hold in busy)
    assert _short_waits._hold is None and _short_waits._depth == 0


def test_a_team_that_cannot_start_leaves_the_call_to_run(busy, monkeypatch):
    def fail(spare):
        raise RuntimeError("Resource temporarily unavailable")

    monkeypatch.setattr(_C, "ShortWaits", fail)
    model, x = _inputs()
    attack = JSMA(variant="tjsma", gamma=0.3)
    assert attack(model, x, "next").x_adv.shape == x.shape
    assert _short_waits.last_choice["choice"].startswith("the spare team did not start")
    assert _short_waits._hold is None and _short_waits._depth == 0


def test_refine_and_swap_search_hold_the_team(busy):
    model, x = _inputs()
    result = JSMA(variant="tjsma", gamma=0.3)(model, x, "untargeted")
    refine(model, x, result.x_adv, true_class=model(x).argmax(1))
    swap_search(model, x, result.x_adv, true_class=model(x).argmax(1))
    assert len(busy) == 3 and not any(hold.active for hold in busy)  # the attack, then these


# ---------------------------------------------------------------------------- the effect

SPIN_PROBE = textwrap.dedent(
    """
    import os, sys, time
    import torch
    from jsma_fast import _C
    torch.set_num_threads(2)
    a = torch.rand(400_000)
    hold = _C.ShortWaits(os.cpu_count()) if sys.argv[1] == "short" else None
    main = str(os.getpid())
    def worker_ticks():
        total = 0
        for tid in os.listdir("/proc/self/task"):
            if tid != main:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total
    (a * 2).sum()
    start = worker_ticks()
    for _ in range(300):
        (a * 2).sum()   # a parallel region; its threads then wait for the next one
        time.sleep(0.003)
    print(worker_ticks() - start)
    """
)


def test_the_spare_team_shortens_the_spinning_of_torchs_threads(tmp_path):
    """CPU time of the threads besides the main one over 300 short regions 3 ms apart: they
    spin through the pauses with the runtime's default and sleep with the team held."""
    env = {k: v for k, v in os.environ.items() if k not in _openmp.USER_VARIABLES}

    def ticks(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", SPIN_PROBE, mode],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return int(done.stdout.split()[-1])

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: the runtime already spins briefly")
    spin, short = ticks("spin"), ticks("short")
    assert spin > 4 * short + 10, (spin, short)
