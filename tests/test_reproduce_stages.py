"""The stages of ``jsma-fast reproduce`` on a model that is not MNIST's: 3 classes and 4 x 4
inputs, so that nothing may assume 10 classes or 784 pixels; and the adversarial training
report built from columns."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from jsma_fast import JSMA
from jsma_fast.evaluation import AdversarialTrainingReport, compare_attack
from jsma_fast.evaluation.config import ReproduceConfig
from jsma_fast.evaluation.metrics import compute_metrics, mean_distance_per_pair
from jsma_fast.evaluation.paper import PAPER
from jsma_fast.evaluation.report import pct, render_report
from jsma_fast.evaluation.report_files import write_files
from jsma_fast.evaluation.runs import AttackRuns, ModelInfo
from jsma_fast.runner import result_columns

C, H, W = 3, 4, 4
GAMMA = 0.5


@pytest.fixture(scope="module")
def runs() -> AttackRuns:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(H * W, C)).eval()
    x = torch.rand(8, 1, H, W)
    with torch.no_grad():
        y = model(x).argmax(1)  # every digit is classified correctly
    stages = {
        name: result_columns(JSMA(theta=theta, gamma=GAMMA)(model, x, "all", y=y))
        for name, theta in (("increase", 1.0), ("decrease", -1.0))
    }
    tjsma = result_columns(JSMA(theta=1.0, gamma=GAMMA, variant="tjsma")(model, x, "all", y=y))
    info = ModelInfo(architecture="lenet", train_digits=40, test_digits=8, test_accuracy=1.0)
    adv = AdversarialTrainingReport(
        clean_accuracy_before=0.9,
        clean_accuracy_after=0.85,
        success_before=0.5,
        success_after=0.4,
        distortion_before=0.1,
        distortion_after=0.15,
        adversarial_samples=7,
        crafted=12,
        compared_digits=5,
    )
    return AttackRuns(
        model=model,
        info=info,
        x=x,
        y=y,
        num_classes=C,
        stages=stages,
        variants={"tjsma": tjsma},
        adversarial_training=adv,
        attack_seconds=1.0,
    )


@pytest.fixture(scope="module")
def metrics(runs):
    return compute_metrics(runs, gamma=GAMMA, hardness_gammas=(0.25, GAMMA))


def test_metrics_take_classes_from_the_model_and_features_from_the_digits(runs, metrics):
    assert (metrics.num_classes, metrics.num_features, metrics.digits) == (C, H * W, 8)
    assert metrics.tables["increase"].count.shape == (C, C)
    assert metrics.hardness.shape == (C, C) and metrics.mean_distance.shape == (C, C)
    assert metrics.distances.shape == (8, C)
    assert [m.mode for m in metrics.modes] == ["increase", "decrease", "variant_tjsma"]
    inc = metrics.mode("increase")
    ok = runs.stages["increase"]["success"].astype(bool)
    assert inc.rows == 8 * (C - 1)
    assert inc.success_rate == pytest.approx(ok.mean())
    assert inc.paper_success_rate == PAPER.increase_success
    assert math.isnan(metrics.mode("decrease").paper_mean_distortion)
    assert metrics.mode("variant_tjsma").paper_success_rate == PAPER.increase_success
    assert metrics.mode("model_paper") is None


def test_mean_distance_per_pair_by_hand():
    d = np.array([[np.nan, 0.2, 0.4], [np.nan, 0.6, 0.8], [0.5, np.nan, 0.1]])
    mean = mean_distance_per_pair(d, np.array([0, 0, 1]))
    np.testing.assert_allclose(mean[0], [np.nan, 0.4, 0.6])
    np.testing.assert_allclose(mean[1], [0.5, np.nan, 0.1])
    assert np.isnan(mean[2]).all()  # no digit of class 2


def test_report_reads_its_numbers_from_the_metrics_and_the_paper(metrics):
    config = ReproduceConfig(gamma=GAMMA, hardness_gammas=(0.25, GAMMA), adv_epochs=3)
    text = render_report(metrics, config, [("A figure", Path("a.png"))])
    assert f"fraction of the {H * W} pixels" in text
    assert f"each towards the {C - 1} other classes ({8 * (C - 1)} rows per mode)" in text
    assert f"all {C - 1} targets per digit" in text
    assert f"x {C - 1} targets" in text
    assert "784" not in text and "9 other" not in text
    for figure in ("97.10%", "4.02%", "64.70%", "270,000", "60,000", "30,000", "-7.2%", "+37.5%"):
        assert figure in text, figure
    assert f"| increase (theta = +1) | {pct(metrics.modes[0].success_rate)} | 97.10% |" in text
    assert "plus 7 successful JSMA samples (from 12 training digits" in text
    assert "on the same 5 held-out digits" in text
    assert "| mean distortion | 10.00% | 15.00% | +50.0% (relative) | +37.5% |" in text
    assert "| TJSMA |" in text and "![A figure](figures/a.png)" in text


def test_files_hold_every_mode_and_pair(tmp_path, runs, metrics):
    write_files(tmp_path, runs, metrics, "the report")
    assert (tmp_path / "report.md").read_text() == "the report"
    with np.load(tmp_path / "results.npz") as data:
        assert data["increase/success"].shape == (8 * (C - 1),)
        assert "variant_tjsma/success" in data.files and "adv_after/success" not in data.files
        assert data["adversarial_distance"].shape == (8, C)
        np.testing.assert_array_equal(data["digits/y"], runs.y.numpy())
    with open(tmp_path / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["mode"] for r in rows] == ["increase", "decrease", "variant_tjsma"]
    assert float(rows[0]["paper_success_rate"]) == PAPER.increase_success
    with open(tmp_path / "pairs.csv") as fh:
        pairs = list(csv.DictReader(fh))
    attacked = sum(int((t.count > 0).sum()) for t in metrics.tables.values())
    assert len(pairs) == attacked
    assert {int(p["source"]) for p in pairs} | {int(p["target"]) for p in pairs} <= set(range(C))


def test_figures_for_three_classes(tmp_path, runs, metrics):
    pytest.importorskip("matplotlib")
    from jsma_fast.evaluation.report_figures import class_grid, draw_figures

    figures = draw_figures(metrics, runs, gamma=GAMMA, seed=0, directory=tmp_path)
    names = [path.stem for _, path in figures]
    assert names[:4] == [
        "success_increase",
        "distortion_increase",
        "success_decrease",
        "distortion_decrease",
    ]
    assert {"grid_increase", "saliency_maps", "success_vs_gamma", "toy_and"} <= set(names)
    assert all(path.stat().st_size > 0 for _, path in figures)
    originals, grid, ok = class_grid(runs.x, runs.y.numpy(), runs.stages["increase"], C)
    assert len(originals) == C and len(grid) == C and ok.shape == (C, C)
    for s in range(C):
        if originals[s] is not None:
            assert originals[s].shape == (H, W)
            assert all(grid[s][t].shape == (H, W) for t in range(C) if t != s)


def test_compare_attack_from_columns():
    before = {
        "success": np.array([True, True, False, False]),
        "l0_fraction": np.array([0.1, 0.3, 0.5, 0.5]),
    }
    after = {
        "success": np.array([True, False, False, False]),
        "l0_fraction": np.array([0.4, 0.1, 0.1, 0.1]),
    }
    for cols in (before, after):
        cols.update(
            {
                k: np.zeros(4, int)
                for k in (
                    "iterations",
                    "l0",
                    "predicted",
                    "target",
                    "true_class",
                    "source_index",
                    "stop_code",
                )
            }
        )
    report = compare_attack(
        before, after, 0.9, 0.8, adversarial_samples=3, crafted=4, compared_digits=2
    )
    assert (report.success_before, report.success_after) == (0.5, 0.25)
    assert report.distortion_before == pytest.approx(0.2)
    assert report.distortion_after == pytest.approx(0.4)
    assert report.success_change == -0.25
    assert report.distortion_change == pytest.approx(1.0)
    assert report.as_dict()["compared_digits"] == 2
