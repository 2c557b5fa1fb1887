"""``jsma-fast attack`` under torchrun (gloo, CPU): results bit-identical to
one process, resumable after a rank is SIGKILLed, across two "nodes" on localhost, without a
shared file system, and a failing rank stopping every rank with its message (``reproduce``
under torchrun: test_reproduce_resume.py).

Every subprocess has a timeout: a hang fails the test instead of blocking CI.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from helpers import assert_same_arrays, load_npz

pytest.importorskip("torch.distributed.run")

ROWS, BATCH = 48, 4  # 12 chunks

# The model of these tests: tiny, deterministic, and told by the environment to record its
# pid, to sleep per call (so that a run can be killed half-way), or to fail on one rank.
NET = """
import os, time
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 5))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        rank = os.environ.get("RANK", "0")
        if os.environ.get("TEST_FAIL_RANK") == rank and self.calls > 3:
            raise RuntimeError("the model failed on purpose")
        time.sleep(float(os.environ.get("TEST_SLOW", "0")))
        return self.body(x)


def build():
    pids = os.environ.get("TEST_PIDS")
    if pids:
        with open(os.path.join(pids, "rank" + os.environ.get("RANK", "0")), "w") as fh:
            fh.write(str(os.getpid()))
    return Net()
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("distributed")
    (root / "net.py").write_text(NET)
    g = torch.Generator().manual_seed(1)
    np.savez(
        root / "data.npz",
        x=torch.rand(ROWS, 1, 8, 8, generator=g).numpy(),
        y=torch.randint(0, 5, (ROWS,), generator=g).numpy(),
    )
    return root


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def _attack_args(work: Path, out: Path, *extra: str) -> List[str]:
    # One thread per process: two "nodes" on this machine share its cores.
    return [
        "attack",
        "--threads",
        "1",
        "--model",
        f"{work / 'net.py'}:build",
        "--data",
        str(work / "data.npz"),
        "--batch-size",
        str(BATCH),
        "--targets",
        "random",
        "--gamma",
        "0.3",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def _torchrun(*launcher: str) -> List[str]:
    return [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "jsma_fast.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nodes(rdzv_id: str) -> List[List[str]]:
    port = _free_port()
    return [
        _torchrun(
            "--nnodes",
            "2",
            "--node-rank",
            str(rank),
            "--nproc-per-node",
            "1",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            f"127.0.0.1:{port}",
            "--rdzv-id",
            rdzv_id,
        )
        for rank in (0, 1)
    ]


def _run(cmd: List[str], env: dict, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        env=env,
        cwd=str(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
    )


def _run_together(cmds: List[List[str]], env: dict, cwds: List[Path], timeout: float = 180):
    procs = [
        subprocess.Popen(c, env=env, cwd=str(d), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for c, d in zip(cmds, cwds)
    ]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=timeout)[0].decode())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.returncode for p in procs], outs


def _results(out: Path) -> dict:
    return load_npz(out / "results.npz")


def _assert_same(got: dict, want: dict) -> None:
    assert_same_arrays(got, want)
    assert got["source_index"].tolist() == list(range(ROWS))  # nothing duplicated or lost


@pytest.fixture(scope="module")
def reference(work) -> dict:
    """One process, one thread."""
    done = _run(
        [sys.executable, "-m", "jsma_fast.cli", *_attack_args(work, work / "one")], _env(), work
    )
    assert done.returncode == 0, done.stdout.decode()
    return _results(work / "one")


def test_two_processes_equal_one_process(work, reference):
    out = work / "two"
    done = _run(_torchrun("--nproc-per-node", "2") + _attack_args(work, out), _env(), work)
    assert done.returncode == 0, done.stdout.decode()
    _assert_same(_results(out), reference)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["data_set_rows_computed"] == ROWS


def test_sigkill_one_rank_then_resume(work, reference):
    out, pids = work / "killed", work / "pids"
    pids.mkdir()
    cmd = _torchrun("--nproc-per-node", "2") + _attack_args(work, out)
    proc = subprocess.Popen(
        cmd,
        env=_env(TEST_SLOW="0.05", TEST_PIDS=str(pids)),
        cwd=str(work),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    chunks = out / "chunks" / "attack"
    try:
        deadline = time.monotonic() + 120
        while len(list(chunks.glob("chunk-*.npz"))) < 2 or not (pids / "rank1").exists():
            assert proc.poll() is None, proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "no chunks written in time"
            time.sleep(0.02)
        os.kill(int((pids / "rank1").read_text()), signal.SIGKILL)
        log = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, log
    kept = {p.name: p.stat().st_mtime_ns for p in chunks.glob("chunk-*.npz")}
    assert 2 <= len(kept) < ROWS // BATCH, "the run was not interrupted half-way"
    assert not (out / "results.npz").exists()

    done = _run(cmd + ["--resume"], _env(), work)
    assert done.returncode == 0, done.stdout.decode()
    _assert_same(_results(out), reference)
    for name, mtime in kept.items():  # completed chunks were kept, not computed again
        assert (chunks / name).stat().st_mtime_ns == mtime, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data_set_rows_computed"] == ROWS - BATCH * len(kept)


def test_two_nodes_without_a_shared_file_system(work, reference):
    # Each "node" runs in its own directory with a relative --out: two copies of the output
    # directory, as on two machines without a shared file system.
    homes = [work / "node0", work / "node1"]
    for home in homes:
        home.mkdir()
    out = Path("res")
    codes, logs = _run_together(
        [c + _attack_args(work, out, "--gather") for c in _nodes("g")], _env(), homes
    )
    assert codes == [0, 0], logs
    # The rendezvous decides which launcher's process becomes rank 0: its home has the results.
    main = [h for h in homes if (h / out / "results.npz").exists()]
    assert len(main) == 1, logs
    _assert_same(_results(main[0] / out), reference)
    other = homes[1 - homes.index(main[0])]
    assert not (other / out / "results.npz").exists()
    on_other = list((other / out / "chunks" / "attack").glob("*.npz"))
    assert len(on_other) == ROWS // BATCH // 2  # rank 1 computed half; rank 0 received them

    # Without --gather the ranks refuse to start, saying why.
    codes, logs = _run_together(
        [c + _attack_args(work, Path("again")) for c in _nodes("s")], _env(), homes
    )
    assert all(code != 0 for code in codes), logs
    refused = [log for log in logs if "error: rank 1 (host" in log]  # rank 1's own line
    assert len(refused) == 1, logs
    assert "does not see the chunk store" in refused[0] and "--gather" in refused[0], logs
    told = logs[1 - logs.index(refused[0])]
    assert "rank 1 failed: ChunkError: this rank does not see the chunk store" in told, logs


def test_two_nodes_on_localhost_equal_one_process(work, reference):
    out = work / "nodes"
    codes, logs = _run_together(
        [c + _attack_args(work, out) for c in _nodes("n")], _env(), [work, work]
    )
    assert codes == [0, 0], logs
    _assert_same(_results(out), reference)


def test_a_failing_rank_stops_every_rank_with_its_message(work):
    # Two nodes: rank 0's launcher does not watch rank 1's process, so rank 0 must stop on its
    # own; it has 6 slow chunks to do and would otherwise run on.
    out = work / "failing"
    codes, logs = _run_together(
        [c + _attack_args(work, out) for c in _nodes("f")],
        _env(TEST_FAIL_RANK="1", TEST_SLOW="0.05"),
        [work, work],
        timeout=90,
    )
    assert codes[0] != 0 and codes[1] != 0, logs
    # Which launcher's process is rank 0 is the rendezvous' choice: one log each.
    told = [
        log for log in logs if "rank 1 failed: RuntimeError: the model failed on purpose" in log
    ]
    assert len(told) == 1, logs
    assert "the model failed on purpose" in logs[1 - logs.index(told[0])], logs
    assert len(list((out / "chunks" / "attack").glob("chunk-*.npz"))) < ROWS // BATCH // 2
    assert not (out / "results.npz").exists()


# ----------------------------------------------------------------------------- the primitives
# Two processes started with multiprocessing (gloo through a file store), each running the
# scenarios below in order; what each rank saw is compared in the parent.


def _scenarios(rank: int, init: str, root: str, queue) -> None:
    import torch.distributed as dist
    from torch import nn

    from jsma_fast.runner.distributed import RankFailed, setup
    from jsma_fast.runner.shards import open_store

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2", WORLD_SIZE="2")
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    ctx = setup()
    seen = {"threads": torch.get_num_threads()}

    def record(name, fn):
        try:
            seen[name] = ("ok", fn())
        except RankFailed as exc:
            seen[name] = ("RankFailed", exc.rank, str(exc))
        except Exception as exc:  # the failing rank's own error
            seen[name] = (type(exc).__name__, str(exc))

    def fail_on_main():
        raise ValueError("rank 0 cannot do it")

    record("on_main", lambda: ctx.on_main(fail_on_main if rank == 0 else None))

    def fail_on_one():
        if rank == 1:
            raise KeyError("only rank 1 fails")
        return rank

    record("each", lambda: ctx.each(fail_on_one))
    torch.manual_seed(rank)
    net = nn.Linear(3, 2)
    ctx.sync_module(net)
    seen["weights"] = net.weight.detach().numpy().tolist()
    record("architecture", lambda: ctx.sync_module(nn.Linear(3, 2 + rank)))
    record("config", lambda: open_store(ctx, Path(root) / "store", {"n": rank}, resume=False))
    if rank == 1:
        ctx.send_bytes(b"chunk bytes", 0)
    else:
        seen["bytes"] = ctx.recv_bytes(1)
    ctx.close()
    queue.put((rank, seen))


def test_collectives_carry_one_ranks_error_to_every_rank(tmp_path):
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    queue = mp.Queue()
    init = f"file://{tmp_path / 'rendezvous'}"
    procs = [mp.Process(target=_scenarios, args=(r, init, str(tmp_path), queue)) for r in (0, 1)]
    for p in procs:
        p.start()
    try:
        seen = dict(queue.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    zero, one = seen[0], seen[1]
    assert zero["threads"] == one["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
    # on_main: rank 0's error on rank 0, named and passed on to rank 1
    assert zero["on_main"] == ("ValueError", "rank 0 cannot do it")
    assert one["on_main"][:2] == ("RankFailed", 0)
    assert "rank 0 failed: ValueError: rank 0 cannot do it" in one["on_main"][2]
    # each: rank 1's error on rank 1, named on rank 0
    assert one["each"][0] == "KeyError"
    assert zero["each"][:2] == ("RankFailed", 1) and "only rank 1 fails" in zero["each"][2]
    # sync_module: rank 0's weights everywhere; another architecture is refused everywhere
    assert zero["weights"] == one["weights"]
    for s in (zero, one):
        assert s["architecture"][:2] == ("RankFailed", 1)
        assert "same architecture" in s["architecture"][2]
        assert s["config"][0] == "RankFailed" and "configuration differs" in s["config"][2]
    assert zero["bytes"] == b"chunk bytes"
