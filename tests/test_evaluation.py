"""The paper's evaluation (jsma_fast.evaluation): metrics on hand-computed cases, and
``jsma-fast reproduce`` end to end, killed with SIGTERM and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jsma_fast import JSMA
from jsma_fast.evaluation import (
    adjacent_msd,
    adversarial_distance,
    auc,
    class_pairs,
    hardness,
    robustness,
    roc_auc,
    roc_curve,
    success_at_gamma,
    trapezoid_hardness,
)

# ----------------------------------------------------------------------------- hardness


def test_trapezoid_hardness_on_a_small_table():
    # One pair, two budgets: (tau, eps) = (0.5, 0.02), (1.0, 0.04), given out of order.
    # With the (0, 0) anchor: 0.5 * (0 + 0.02) / 2 + 0.5 * (0.02 + 0.04) / 2 = 0.02.
    h = trapezoid_hardness([[1.0], [0.5]], [[0.04], [0.02]])
    assert h.shape == (1,)
    assert h[0] == pytest.approx(0.02)
    # Never successful: NaN; zero-success points count as (0, 0).
    assert np.isnan(trapezoid_hardness([[0.0], [0.0]], [[np.nan], [np.nan]])[0])
    assert trapezoid_hardness([[0.0], [0.4]], [[np.nan], [0.05]])[0] == pytest.approx(
        0.4 * 0.05 / 2
    )


def test_hardness_from_rows_and_success_at_gamma():
    # Two rows of pair (0, 1): succeed after 2 and 5 iterations with distortions 4/100, 10/100.
    cols = {
        "true_class": np.array([0, 0]),
        "target": np.array([1, 1]),
        "success": np.array([True, True]),
        "iterations": np.array([2, 5]),
        "l0_fraction": np.array([0.04, 0.10]),
        "l0": np.array([4, 10]),
        "predicted": np.array([1, 1]),
        "source_index": np.array([0, 1]),
        "stop_code": np.array([0, 0]),
    }
    # M = 100, pair saliency: budget(g) = floor(100 g / 2) -> g = 0.04: 2, g = 0.1: 5.
    assert success_at_gamma(cols, 0.04, 0.1, 100).tolist() == [True, False]
    h = hardness(cols, [0.04, 0.1], 0.1, 100, num_classes=2)
    # points (0, 0), (0.5, 0.04), (1, 0.07): 0.5 * 0.02 + 0.5 * 0.055 = 0.0375
    assert h[0, 1] == pytest.approx(0.0375)
    assert np.isnan(h[0, 0]) and np.isnan(h[1, 0])
    with pytest.raises(ValueError, match="gamma"):
        success_at_gamma(cols, 0.2, 0.1, 100)


def test_success_at_gamma_matches_separate_runs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3)).eval()
    x = torch.rand(12, 16)
    big = JSMA(theta=1.0, gamma=1.0)(model, x, "all")
    for g in (0.25, 0.5, 0.75):
        small = JSMA(theta=1.0, gamma=g)(model, x, "all")
        assert success_at_gamma(big, g, 1.0, 16).tolist() == small.success.tolist()


def test_class_pairs():
    cols = {
        "true_class": np.array([0, 0, 0, 1]),
        "target": np.array([1, 1, 2, 0]),
        "success": np.array([True, False, True, False]),
        "l0_fraction": np.array([0.1, 0.5, 0.3, 0.2]),
        "iterations": np.zeros(4, int),
        "l0": np.zeros(4, int),
        "predicted": np.zeros(4, int),
        "source_index": np.arange(4),
        "stop_code": np.zeros(4, int),
    }
    t = class_pairs(cols, num_classes=3)
    assert t.success_rate[0, 1] == 0.5 and t.success_rate[0, 2] == 1.0 and t.success_rate[1, 0] == 0
    assert t.mean_distortion[0, 1] == pytest.approx(0.1)  # successful rows only
    assert np.isnan(t.mean_distortion[1, 0]) and np.isnan(t.success_rate[2, 2])
    assert t.overall_success_rate() == 0.5


# ----------------------------------------------------------------------------- distance


def test_adversarial_distance_on_a_linear_model():
    # F(x) = W x: alpha = W[t], beta = sum_{j != t} W[j], independent of x.
    model = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -1.0, 2.0, 0.5], [-1.0, 1.0, 1.0, -3.0]]))
    model.eval()
    # t = 0: alpha = [1, -1, 2, .5], beta = [-1, 1, 1, -3] -> features 0 and 3 qualify: A = 0.5
    # t = 1: alpha = [-1, 1, 1, -3], beta = [1, -1, 2, .5] -> feature 1 only: A = 0.75
    x = torch.rand(3, 4)
    a = adversarial_distance(model, x, batch_size=2)
    np.testing.assert_allclose(a, [[0.5, 0.75]] * 3)
    a = adversarial_distance(model, x, y=torch.tensor([0, 0, 1]))
    assert np.isnan(a[0, 0]) and np.isnan(a[2, 1])
    assert robustness(a) == 0.5
    assert robustness(adversarial_distance(model, x, y=torch.tensor([0, 0, 0]))) == 0.75


# ----------------------------------------------------------------------------- detector, ROC


def test_detector_on_known_differences():
    imgs = np.array(
        [
            [[0.0, 1.0], [0.0, 1.0]],  # horizontal diffs 1, 1; vertical 0, 0 -> 2 / 4
            [[0.3, 0.3], [0.3, 0.3]],  # constant -> 0
        ]
    )
    np.testing.assert_allclose(adjacent_msd(imgs), [0.5, 0.0])
    checker = (np.indices((3, 3)).sum(0) % 2).astype(float)[None, None]  # every diff is 1
    np.testing.assert_allclose(adjacent_msd(torch.tensor(checker)), [1.0])
    with pytest.raises(ValueError, match="images"):
        adjacent_msd(np.zeros((2, 5)))


def test_roc_and_auc_with_ties():
    scores = np.array([0.9, 0.8, 0.4, 0.7, 0.3, 0.4])
    labels = np.array([1, 1, 1, 0, 0, 0])
    fpr, tpr, thr = roc_curve(scores, labels)
    np.testing.assert_allclose(fpr, [0, 0, 0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert thr[0] == np.inf
    # Mann-Whitney: 7 wins + 0.5 tie out of 9 pairs.
    assert auc(fpr, tpr) == pytest.approx(7.5 / 9)
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 60).astype(float)
    y = rng.random(60) < 0.5
    p, n = s[y], s[~y]
    mw = ((p[:, None] > n[None]).sum() + 0.5 * (p[:, None] == n[None]).sum()) / (p.size * n.size)
    assert roc_auc(s, y) == pytest.approx(mw)
    with pytest.raises(ValueError, match="both classes"):
        roc_curve([1.0, 2.0], [1, 1])


# ----------------------------------------------------------------------------- reproduce

TINY = "--n-test 4900 --epochs 1 --gamma 0.05 --hardness-gammas 0.02,0.05 --threads 1".split()
TINY += ["--no-progress", "--chunk-size", "1"]


def _run(args, env, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "jsma_fast.cli", "reproduce", *TINY, *args],
        env=env,
        cwd=str(Path(env["JSMA_FAST_CACHE"]).parent),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kw,
    )


def _stage_arrays(path: Path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files if k.split("/")[0] in ("increase", "decrease")}


def test_reproduce_report_and_resume_after_sigterm(tmp_path):
    env = dict(os.environ, JSMA_FAST_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    pytest.importorskip("mlxtend")
    pytest.importorskip("matplotlib")

    # Uninterrupted run, end to end with adversarial training.
    full = tmp_path / "full"
    proc = _run(
        [
            "--digits",
            "4",
            "--out",
            str(full),
            "--adv-training",
            "--adv-samples",
            "4",
            "--adv-epochs",
            "1",
        ],
        env,
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode()
    report = (full / "report.md").read_text()
    assert "97.10%" in report and "4.02%" in report and "64.70%" in report
    assert "## The paper's algorithm on two models, and the variants" in report
    assert "the paper-style LeNet (Caffe)" in report and "| TJSMA |" in report
    modes = [line.split(",")[0] for line in (full / "summary.csv").read_text().splitlines()]
    assert modes[1:] == [
        "increase",
        "decrease",
        "variant_jsma_f",
        "variant_wjsma",
        "variant_tjsma",
        "variant_top2",
        "variant_maximal",
        "model_paper",
    ]
    for name in (
        "success_increase",
        "distortion_increase",
        "hardness_increase",
        "grid_increase",
        "grid_decrease",
        "saliency_maps",
        "success_vs_gamma",
        "detector_roc",
        "toy_and",
    ):
        assert (full / "figures" / f"{name}.png").stat().st_size > 0
        assert (full / "figures" / f"{name}.pdf").exists()
    assert (full / "summary.csv").read_text().startswith("mode,rows,success_rate")
    reference = _stage_arrays(full / "results.npz")
    assert reference["increase/success"].shape == (36,)

    # Killed with a real SIGTERM once the first chunk is on disk, then resumed.
    part = tmp_path / "part"
    proc = _run(["--digits", "4", "--out", str(part)], env)
    deadline = time.monotonic() + 240
    while not list((part / "chunks").glob("*/chunk-*.npz")):
        assert proc.poll() is None, proc.communicate()[0].decode()
        assert time.monotonic() < deadline, "no chunk written in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out.decode()
    assert b"--resume" in out
    done = list((part / "chunks").glob("*/chunk-*.npz"))
    assert 1 <= len(done) < 8, "the run was not interrupted mid-way"
    assert not (part / "results.npz").exists()

    proc = _run(["--digits", "4", "--out", str(part), "--resume"], env)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode()
    resumed = _stage_arrays(part / "results.npz")
    assert resumed.keys() == reference.keys()
    for key in reference:
        np.testing.assert_array_equal(resumed[key], reference[key], err_msg=key)


def test_chunk_store_refuses_to_resume_other_settings(tmp_path):
    from jsma_fast.runner import ChunkStore

    store = ChunkStore(tmp_path, {"digits": 6}, resume=False)
    store.save("increase", 0, {"success": np.array([True, False])})
    again = ChunkStore(tmp_path, {"digits": 6}, resume=True)
    assert again.load("increase", 0)["success"].tolist() == [True, False]
    assert again.load("increase", 1) is None
    with pytest.raises(ValueError, match="different configuration"):
        ChunkStore(tmp_path, {"digits": 5}, resume=True)
    ChunkStore(tmp_path, {"digits": 5}, resume=False)  # a fresh run drops old chunks
    assert not list(tmp_path.glob("*/chunk-*.npz"))
