"""Data that does not fit the model: one line and exit status 2 from ``jsma-fast attack``, a
clear ValueError from attack_dataset; float64 rows are cast to the model's dtype by the
command line, with a note."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from jsma_fast import JSMA
from jsma_fast.cli import main
from jsma_fast.mnist.models import LeNet
from jsma_fast.runner import attack_dataset

LENET = "jsma_fast.mnist.models:LeNet"


def _npz(path, x, y):
    np.savez(path, x=x, y=y)
    return str(path)


def _attack(tmp_path, data, *extra):
    return main(
        [
            "attack",
            "--model",
            LENET,
            "--data",
            data,
            "--gamma",
            "0.01",
            "--no-progress",
            "--out",
            str(tmp_path / "out"),
            *extra,
        ]
    )


@pytest.mark.parametrize(
    "shape, hint",
    [((4, 28, 28, 1), "(28, 28, 1)"), ((4, 3, 28, 28), "(3, 28, 28)")],
    ids=["channels-last", "three-channels"],
)
def test_cli_shape_mismatch_is_one_line(tmp_path, capsys, shape, hint):
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    data = _npz(tmp_path / "d.npz", x, np.zeros(4, dtype=np.int64))
    assert _attack(tmp_path, data) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("jsma-fast attack: error: model cannot classify the dataset's rows")
    assert hint in err and "channels first" in err


def test_cli_casts_float64_rows_with_a_note(tmp_path, capsys):
    x = np.random.default_rng(0).random((3, 1, 28, 28))  # NumPy's default: float64
    data = _npz(tmp_path / "d.npz", x, np.array([0, 1, 2]))
    assert _attack(tmp_path, data) == 0
    out = capsys.readouterr()
    assert "note: --data rows are torch.float64; cast to torch.float32" in out.out
    # an untrained model: its clean accuracy is near chance, and the command says so
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["result_rows"] == 3


def test_untrained_model_warns_near_chance(tmp_path, capsys):
    # an untrained LeNet predicts (nearly) one class for every row: labels spread over the
    # ten classes leave it near chance
    x = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    data = _npz(tmp_path / "d.npz", x.numpy(), np.arange(20) % 10)
    assert _attack(tmp_path, data) == 0
    err = capsys.readouterr().err
    assert "jsma-fast attack: warning: the model classifies only" in err
    assert "near chance for 10 classes" in err


def test_python_refuses_float64_rows_naming_the_fix():
    model = LeNet().eval()
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"torch.float64 .* torch.float32: convert the rows"):
        attack_dataset(model, (x, torch.zeros(2, dtype=torch.int64)), JSMA(), progress=False)


def test_python_shape_mismatch_is_a_value_error():
    model = LeNet().eval()
    x = torch.rand(2, 28, 28, 1)
    with pytest.raises(ValueError, match=r"rows of shape \(28, 28, 1\)"):
        attack_dataset(model, (x, None), JSMA(), progress=False)
