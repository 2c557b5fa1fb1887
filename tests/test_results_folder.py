"""The results folder: one run at a time (a lock naming the run that holds it, taken over from
a dead process), and no silent replacement of an earlier run's results, in the words of each
caller (``resume=True`` in Python, ``--resume`` on the command line)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jsma_fast import JSMA
from jsma_fast.cli import main
from jsma_fast.runner import FolderInUse, ResultsExist, attack_dataset

NET = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4))


def must_not_be_built():
    raise RuntimeError("the model was built (or trained) before --out was checked")
"""

HOLD = """
import sys, time
from pathlib import Path
from jsma_fast.runner.folder import FolderLock
FolderLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results_folder")
    (root / "net.py").write_text(NET)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(8, 1, 4, 4, generator=g), torch.randint(0, 4, (8,), generator=g)
    np.savez(root / "data.npz", x=x.numpy(), y=y.numpy())
    return root


def _cli(work: Path, out: Path, *extra: str):
    return [
        "attack",
        "--model",
        f"{work / 'net.py'}:build",
        "--data",
        str(work / "data.npz"),
        "--batch-size",
        "4",
        "--gamma",
        "0.3",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def _problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4)).eval()
    g = torch.Generator().manual_seed(1)
    return model, torch.rand(8, 1, 4, 4, generator=g), torch.randint(0, 4, (8,), generator=g)


def _exit_and_error(args, capsys):
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(args))
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return info.value.code, err.splitlines()[-1]


def _snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


# ----------------------------------------------------------------------------- earlier results


def test_python_refuses_to_replace_results_and_names_resume_true(tmp_path):
    model, x, y = _problem()
    kwargs = dict(batch_size=4, out=tmp_path, progress=False)
    attack_dataset(model, (x, y), JSMA(gamma=0.3), "next", **kwargs)
    before = _snapshot(tmp_path)
    with pytest.raises(ResultsExist) as info:
        attack_dataset(model, (x, y), JSMA(gamma=0.3), "next", **kwargs)
    message = str(info.value)
    assert isinstance(info.value, FileExistsError)
    assert "holds the results of an earlier run" in message
    # 2 chunks of the attack, 1 of its kept examples
    assert "results.npz and 3 chunk files, last written 20" in message
    assert "resume=True" in message and "--" not in message, message
    assert info.value.path == tmp_path and info.value.files == "results.npz and 3 chunk files"
    assert _snapshot(tmp_path) == before  # nothing replaced or deleted
    again = attack_dataset(model, (x, y), JSMA(gamma=0.3), "next", resume=True, **kwargs)
    assert again.summary["data_set_rows_computed"] == 0


def test_a_folder_without_results_is_used_without_resume(tmp_path):
    model, x, y = _problem()
    (tmp_path / "notes.txt").write_text("mine")  # nothing of an earlier run
    result = attack_dataset(model, (x, y), JSMA(gamma=0.3), out=tmp_path, progress=False)
    assert result.summary["data_set_rows_computed"] == 8
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_refuses_to_replace_results_and_names_resume(work, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(_cli(work, out)) == 0
    capsys.readouterr()
    before = _snapshot(out)
    status, line = _exit_and_error(_cli(work, out), capsys)
    assert status == 2
    assert f"--out {out} holds the results of an earlier run (results.npz and 3 chunk" in line
    assert "--resume to continue them" in line and "new --out" in line, line
    assert "resume=True" not in line
    assert _snapshot(out) == before
    assert main(_cli(work, out, "--resume")) == 0
    assert "this run: 0 data set rows" in capsys.readouterr().out


# ----------------------------------------------------------------------------- one run at a time


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path / "busy"``."""
    folder = tmp_path / "busy"
    # Outside the source tree, where the installed package (with its _C) is the one imported.
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        lines = iter(proc.stdout.readline, "")  # (an editable install may print first)
        assert any(line.strip() == "locked" for line in lines)
        yield folder, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_second_run_fails_at_once_naming_the_first(work, holder, capsys):
    folder, proc = holder
    # fails before the model is built (or trained, for --model lenet)
    status, line = _exit_and_error(
        _cli(work, folder, "--model", f"{work / 'net.py'}:must_not_be_built"), capsys
    )
    assert status == 2, line
    assert f"--out {folder} is in use by another run (pid {proc.pid} on host" in line, line
    assert socket.gethostname() in line and ", started 20" in line
    assert "wait for it to end" in line and "another --out" in line
    model, x, y = _problem()
    with pytest.raises(FolderInUse) as info:
        attack_dataset(model, (x, y), JSMA(gamma=0.3), out=folder, progress=False)
    assert info.value.pid == proc.pid and "pass another out" in str(info.value)
    assert not (folder / "chunks").exists()


def test_the_lock_of_a_killed_run_is_taken_over_and_released_at_exit(work, holder, capsys):
    folder, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = json.loads((folder / ".lock").read_text())
    assert left["pid"] == proc.pid and left["host"] == socket.gethostname()
    assert main(_cli(work, folder)) == 0
    assert (folder / "results.npz").exists() and not (folder / ".lock").exists()


def test_a_lock_file_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp_path.joinpath(".lock").write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "earlier"})
    )
    model, x, y = _problem()
    result = attack_dataset(model, (x, y), JSMA(gamma=0.3), out=tmp_path, progress=False)
    assert result.summary["data_set_rows_computed"] == 8 and not (tmp_path / ".lock").exists()


def test_the_lock_is_released_when_the_run_fails(tmp_path):
    model, x, y = _problem()

    calls = []

    def broken(z):  # fits the data (the first call checks it), then fails inside the folder
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("broken model")
        return model(z)

    with pytest.raises(RuntimeError, match="broken model"):
        attack_dataset(broken, (x, y), JSMA(gamma=0.3), out=tmp_path, progress=False)
    assert not (tmp_path / ".lock").exists()
    result = attack_dataset(model, (x, y), JSMA(gamma=0.3), out=tmp_path, progress=False)
    assert result.summary["data_set_rows_computed"] == 8
