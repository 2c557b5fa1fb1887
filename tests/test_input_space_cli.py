"""``jsma-fast attack``'s input-space options: per-channel bounds, ``--theta-units``,
``--normalize`` and ``--mask`` give what the library call with the same options gives, and
bad values get one line and exit status 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jsma_fast import JSMA
from jsma_fast.cli import main
from jsma_fast.runner import attack_dataset

NET = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(32, 12), nn.Tanh(), nn.Linear(12, 4))
"""
MEAN, STD = [0.4, 0.6], [0.2, 0.3]


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(32, 12), nn.Tanh(), nn.Linear(12, 4)).eval()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("input_space_cli")
    (root / "net.py").write_text(NET)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (12, 2, 4, 4), generator=g).float() / 255
    y = torch.randint(0, 4, (12,), generator=g)
    np.savez(root / "pixels.npz", x=x.numpy(), y=y.numpy())
    mean, std = torch.tensor(MEAN).view(1, 2, 1, 1), torch.tensor(STD).view(1, 2, 1, 1)
    np.savez(root / "normalised.npz", x=((x - mean) / std).numpy(), y=y.numpy())
    mask = np.zeros((2, 4, 4), dtype=bool)
    mask[0, 1:3] = True
    mask[1, :, 2:] = True
    np.save(root / "mask.npy", mask)
    np.save(root / "mask_rows.npy", np.random.default_rng(0).random((12, 2, 4, 4)) < 0.4)
    np.save(root / "floats.npy", mask.astype(np.float32))
    return root


def _run(work: Path, out: Path, data: str, *extra: str) -> int:
    return main(_run_args(work, out, data, *extra))


def _run_args(work: Path, out: Path, data: str, *extra: str) -> list:
    return [
        "attack",
        "--model",
        f"{work / 'net.py'}:build",
        "--data",
        str(work / data),
        "--targets",
        "next",
        "--batch-size",
        "5",
        "--no-progress",
        "--keep-adv",
        "--out",
        str(out),
        *extra,
    ]


def _load(out: Path):
    with np.load(out / "results.npz") as data:
        return {k: data[k] for k in data.files}


def _library(work: Path, data: str, attack: JSMA, **kwargs):
    with np.load(work / data) as stored:
        x, y = torch.from_numpy(stored["x"]), torch.from_numpy(stored["y"])
    return attack_dataset(
        _net(),
        (x, y),
        attack,
        "next",
        batch_size=5,
        keep_adv=True,
        progress=False,
        **kwargs,
    ).load()


def test_normalised_data_is_refused_with_the_fixes(work, tmp_path, capsys):
    assert _run(work, tmp_path / "out", "normalised.npz") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--clip-min / --clip-max" in err and "--normalize MEAN... STD..." in err
    assert "x must lie in [clip_min, clip_max] = [0.0, 1.0], got values in" in err


def test_normalize_attacks_the_raw_data_as_the_library_does(work, tmp_path):
    out = tmp_path / "out"
    assert _run(work, out, "pixels.npz", "--normalize", *map(str, MEAN + STD)) == 0
    want = _library(work, "pixels.npz", JSMA(normalization=(MEAN, STD), seed=0))
    got = _load(out)
    np.testing.assert_array_equal(got["x_adv"], want["x_adv"])
    np.testing.assert_array_equal(got["clean_predicted"], want["clean_predicted"])
    assert got["success"].any() and (got["l0"] > 0).any()


def test_per_channel_bounds_on_normalised_data(work, tmp_path):
    lo = [(0 - m) / s for m, s in zip(MEAN, STD)]
    hi = [(1 - m) / s for m, s in zip(MEAN, STD)]
    out = tmp_path / "out"
    args = ["--clip-min", *map(str, lo), "--clip-max", *map(str, hi)]
    assert _run(work, out, "normalised.npz", *args) == 0
    attack = JSMA(clip_min=np.reshape(lo, (2, 1, 1)), clip_max=np.reshape(hi, (2, 1, 1)))
    want = _library(work, "normalised.npz", attack)
    got = _load(out)
    np.testing.assert_array_equal(got["x_adv"], want["x_adv"])
    assert got["success"].any() and (got["l0"] > 0).any()


@pytest.mark.parametrize("name", ["mask.npy", "mask_rows.npy"])
def test_mask_keeps_the_other_features(work, tmp_path, name):
    out = tmp_path / "out"
    assert _run(work, out, "pixels.npz", "--mask", str(work / name)) == 0
    x = np.load(work / "pixels.npz")["x"]
    mask = np.load(work / name)
    got = _load(out)
    changed = got["x_adv"] != x[got["source_index"]]
    assert changed.any() and not (changed & ~np.broadcast_to(mask, x.shape)).any()
    want = _library(work, "pixels.npz", JSMA(seed=0), mask=torch.from_numpy(mask))
    np.testing.assert_array_equal(got["x_adv"], want["x_adv"])


def test_absolute_steps_on_a_wide_range_warn(work, tmp_path, capsys):
    scaled = tmp_path / "scaled.npz"
    with np.load(work / "pixels.npz") as data:
        np.savez(scaled, x=data["x"] * 255, y=data["y"])
    extra = ["--clip-max", "255", "--theta-units", "absolute"]
    assert _run(work, tmp_path / "out", str(scaled), *extra) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "absolute step" in line]
    assert len(lines) == 1 and lines[0].startswith("jsma-fast attack: warning: theta=1.0")
    assert _run(work, tmp_path / "out2", str(scaled), "--clip-max", "255") == 0
    assert "absolute step" not in capsys.readouterr().err  # range units reach the bounds


def test_the_warning_is_one_line_of_the_command(work, tmp_path):
    """Outside pytest (which records warnings itself) the command prints its own line."""
    import subprocess
    import sys

    scaled = tmp_path / "scaled.npz"
    with np.load(work / "pixels.npz") as data:
        np.savez(scaled, x=data["x"] * 255, y=data["y"])
    args = _run_args(work, tmp_path / "out", str(scaled))
    args += ["--clip-max", "255", "--theta-units", "absolute"]
    done = subprocess.run(
        [sys.executable, "-m", "jsma_fast.cli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "absolute step" in line]
    assert len(lines) == 1 and lines[0].startswith("jsma-fast attack: warning: theta=1.0")
    assert "StepWarning" not in done.stderr


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--normalize", "0.1", "0.2", "0.3"], "--normalize takes MEAN... STD..."),
        (["--normalize", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6"], "one per channel (2)"),
        (["--clip-min", "0", "0", "0"], "--clip-min got 3 values, one per channel"),
        (["--clip-max", "one"], "--clip-max takes numbers"),
        (["--clip-max", "missing.npy"], "--clip-max missing.npy cannot be read"),
        (["--mask", "{work}/floats.npy"], "must hold a boolean array"),
        (["--mask", "{work}/mask_rows.npy", "--limit", "20"], None),
        (["--theta-units", "percent"], "invalid choice: 'percent'"),
    ],
)
def test_bad_values_get_one_line_and_status_2(work, tmp_path, capsys, extra, words):
    extra = [e.format(work=work) for e in extra]
    try:
        code = _run(work, tmp_path / "out", "pixels.npz", *extra)
    except SystemExit as exc:  # argparse's own checks
        code = exc.code
    err = capsys.readouterr().err.strip()
    if words is None:  # a per-row mask longer than the data is cut by --limit like the data
        assert code == 0
        return
    assert code == 2 and words in err, err
    assert "Traceback" not in err
