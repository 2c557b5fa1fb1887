"""A model about to be trained is announced first, in one line: what, roughly how long on this
machine, where it is cached; a cached model is loaded without it."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from jsma_fast.mnist.announce import duration, seconds_per_step, training_line
from jsma_fast.mnist.data import IDX_FILES
from jsma_fast.mnist.models import LeNet
from jsma_fast.mnist.training import load_or_train_lenet


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = struct.pack(">i", magic) + b"".join(struct.pack(">i", s) for s in array.shape)
    with gzip.open(path.with_name(path.name + ".gz"), "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture()
def idx_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mnist"
    directory.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 20)):
        images_name, labels_name = IDX_FILES[split]
        _write_idx(directory / images_name, rng.integers(0, 256, (n, 28, 28)), 2051)
        _write_idx(directory / labels_name, np.arange(n) % 10, 2049)
    return directory


def test_training_is_announced_once_and_the_cache_is_not(idx_dir, tmp_path):
    lines = []
    kwargs = dict(source=idx_dir, n_test=20, epochs=1, cache_dir=tmp_path / "c", progress=False)
    first = torch.get_rng_state()
    _, split = load_or_train_lenet(**kwargs, announce=lines.append)
    assert len(lines) == 1, lines
    assert lines[0].startswith("Training LeNet (1 epochs on 40 images): about ")
    assert "on this machine" in lines[0] and str(split.cache_path) in lines[0]
    assert not split.from_cache
    torch.set_rng_state(first)
    _, again = load_or_train_lenet(**kwargs, announce=lines.append)
    assert again.from_cache and len(lines) == 1


def test_the_estimate_leaves_the_random_state_and_reads_as_a_duration():
    sample = torch.rand(1, 28, 28)
    state = torch.get_rng_state()
    assert seconds_per_step(LeNet, sample, 8) > 0
    assert torch.equal(torch.get_rng_state(), state)
    assert duration(12.2) == "about 13 s" and duration(600) == "about 10 min"
    assert duration(2 * 3600) == "about 2.0 h"
    line = training_line(LeNet, torch.rand(10, 1, 28, 28), 3, 4, Path("/c/x.pt"))
    assert line.startswith("Training LeNet (3 epochs on 10 images)") and "/c/x.pt" in line
