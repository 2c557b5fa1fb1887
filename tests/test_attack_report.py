"""What an attack_dataset run reports: figures over the rows the model classified correctly
with the misclassified rows counted apart, the run's provenance in summary.json, the kept
adversarial examples, the near-chance warning, and report.md with its figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from jsma_fast import JSMA
from jsma_fast.report import write_report
from jsma_fast.runner import attack_dataset
from jsma_fast.runner.summary import NearChanceWarning

N, CLASSES = 12, 4


@pytest.fixture(scope="module")
def problem():
    """A model, and labels that it predicts for the even rows and misses for the odd ones."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, CLASSES)).eval()
    x = 0.5 * torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        predicted = model(x).argmax(1)
    y = predicted.clone()
    y[1::2] = (predicted[1::2] + 1) % CLASSES
    return model, x, y


def _run(problem, targets, tmp_path, **kwargs):
    model, x, y = problem
    return attack_dataset(
        model,
        (x, y),
        JSMA(gamma=0.1),
        targets,
        batch_size=5,
        progress=False,
        out=tmp_path,
        **kwargs,
    )


def test_untargeted_figures_leave_out_the_rows_already_misclassified(problem, tmp_path):
    result = _run(problem, "untargeted", tmp_path / "u")
    s, cols = result.summary, result.load()
    right = cols["clean_predicted"] == cols["true_class"]
    ok = cols["success"].astype(bool)
    assert right.sum() == N // 2  # the even rows
    # the odd rows are untargeted "successes" at no cost: they must not dilute the figures
    assert ok[~right].all() and (cols["l0"][~right] == 0).all()
    assert s["result_rows_clean_correct"] == N // 2
    assert s["result_rows_misclassified_before_attack"] == N // 2
    assert s["success_rate_clean_correct"] == pytest.approx(ok[right].mean())
    assert s["mean_l0_fraction_success_clean_correct"] == pytest.approx(
        cols["l0_fraction"][right & ok].mean()
    )
    assert s["mean_l0_success_clean_correct"] == pytest.approx(cols["l0"][right & ok].mean())
    assert s["mean_iterations_clean_correct"] == pytest.approx(cols["iterations"][right].mean())
    assert s["success_rate_all_rows"] == pytest.approx(ok.mean())
    # the ambiguous keys of the figures over every row are gone
    for old in ("rows", "success_rate", "mean_l0_fraction_success", "mean_iterations"):
        assert old not in s
    assert json.loads((tmp_path / "u" / "summary.json").read_text())["result_rows"] == N


def test_targets_all_counts_data_set_rows_and_result_rows_apart(problem, tmp_path):
    s = _run(problem, "all", tmp_path / "a").summary
    assert s["data_set_rows"] == N and s["result_rows"] == N * (CLASSES - 1)
    assert s["data_set_rows_computed"] == N
    assert s["data_set_rows_per_second"] == pytest.approx(N / s["seconds"])


def test_summary_records_what_ran(problem, tmp_path):
    model, x, y = problem
    about = {"model": "a test net", "data": "random rows"}
    s = _run(problem, "next", tmp_path / "p", about=about).summary
    run = json.loads((tmp_path / "p" / "summary.json").read_text())["run"]
    assert run["attack"] == repr(JSMA(gamma=0.1)) and run["targets"] == "next"
    assert run["model"] == "a test net" and run["data"] == "random rows"
    assert run["sample_shape"] == [1, 8, 8] and run["gamma"] == 0.1
    assert run["environment"]["torch"] == torch.__version__
    assert run["environment"]["cpu_cores"] >= 1 and run["environment"]["date"].startswith("20")
    assert len(run["model_fingerprint"]) == 64 and len(run["data_fingerprint"]) == 64
    assert s["run"]["started"] == run["started"] and s["num_classes"] == CLASSES


def test_examples_are_kept_without_keep_adv(problem, tmp_path):
    _, x, _ = problem
    full = _run(problem, "all", tmp_path / "k", keep_adv=True).load()
    _run(problem, "all", tmp_path / "e")
    assert "x_adv" not in np.load(tmp_path / "e" / "results.npz").files
    with np.load(tmp_path / "e" / "examples.npz") as ex:
        sources = np.unique(ex["source_index"])
        assert 1 <= sources.size <= CLASSES and (sources < 5).all()  # from the first chunk
        # one row per true class: the first of its class that the model classifies correctly
        chosen = np.isin(full["source_index"], sources)
        classes = full["true_class"][chosen]
        assert np.unique(classes).size == sources.size
        right = full["clean_predicted"] == full["true_class"]
        for c in np.unique(classes):  # a correctly classified row whenever the class has one
            has_right = (right & (full["true_class"] == c) & (full["source_index"] < 5)).any()
            assert right[chosen & (full["true_class"] == c)].all() == has_right
        for i, (s, t) in enumerate(zip(ex["source_index"], ex["target"])):
            row = np.nonzero((full["source_index"] == s) & (full["target"] == t))[0][0]
            np.testing.assert_array_equal(ex["x_adv"][i], full["x_adv"][row])
            np.testing.assert_array_equal(ex["x"][i], x[s].numpy())
            assert ex["l0"][i] == full["l0"][row]


def test_near_chance_accuracy_warns(problem, tmp_path):
    model, x, _ = problem
    with torch.no_grad():
        wrong = (model(x).argmax(1) + 1) % CLASSES  # no row right: accuracy 0
    with pytest.warns(NearChanceWarning, match="near chance for 4 classes"):
        result = attack_dataset(model, (x, wrong), JSMA(gamma=0.1), progress=False)
    assert "near chance" in result.summary["warning"]


def test_report_of_targets_all(problem, tmp_path):
    result = _run(problem, "all", tmp_path / "r", about={"model": "a test net"})
    path = result.report(class_names=["a", "b", "c", "d"])
    text = path.read_text()
    s = result.summary
    assert path == tmp_path / "r" / "report.md"
    assert "result rows the model classified correctly** before the attack" in text
    assert f"{s['result_rows_misclassified_before_attack']} result rows whose source" in text
    assert repr(JSMA(gamma=0.1)) in text and "a test net" in text
    assert f"torch {torch.__version__}" in text
    assert "### Per true class" in text and "### Per target" in text and "0 (a)" in text
    for name in ("pairs", "l0", "success_vs_l0", "examples"):
        assert (tmp_path / "r" / "figures" / f"{name}.png").stat().st_size > 1000
        assert f"(figures/{name}.png)" in text


def test_report_untargeted_has_no_pair_figure(problem, tmp_path):
    _run(problem, "untargeted", tmp_path / "u")
    text = write_report(tmp_path / "u", draw=False).read_text()
    assert "### Per target" not in text and "pairs.png" not in text
    assert "Counted apart:** 6 result rows" in text


def test_report_needs_a_results_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="results_dir must hold the results.npz"):
        write_report(tmp_path)
