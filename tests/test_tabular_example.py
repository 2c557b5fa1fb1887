"""The tabular example on its real data (scikit-learn's breast-cancer set): every output
stays within its feature's bounds, immutable columns never change, changed features land on
a bound, and the successes are real."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("sklearn")

from jsma_fast.examples import tabular  # noqa: E402


@pytest.fixture(scope="module")
def figures():
    return tabular.run(seed=0)


def test_outputs_respect_bounds_mask_and_grid(figures):
    table, correct = figures["table"], figures["correct"]
    x = table.x_test[correct]
    assert 0 < int(correct.sum()) < correct.numel() + 1
    for (name, masked), result in figures["results"].items():
        adv = result.x_adv
        assert ((adv >= table.lower) & (adv <= table.upper)).all(), name
        changed = adv != x
        on_bound = (adv == table.lower) | (adv == table.upper)
        assert on_bound[changed].all(), name  # theta = +-1 in range units: onto a bound
        if masked:
            assert not changed[:, ~table.mutable].any(), name
        assert (result.l0 <= 6 + 2).all()  # gamma * 30 features, the last pair may overshoot


def test_successes_are_real_and_the_report_counts_the_left_out_rows(figures):
    mean, std = (torch.tensor(v) for v in figures["normalization"])
    y = figures["table"].y_test[figures["correct"]]
    for result in figures["results"].values():
        with torch.no_grad():
            predicted = figures["model"]((result.x_adv - mean) / std).argmax(1)
        assert torch.equal(result.success, predicted != y)
        assert result.success.any()
    text = tabular.report(figures)
    left_out = int((~figures["correct"]).sum())
    assert f"the {left_out} others are left out" in text
    assert text.count("\n| ") == 2 * len(tabular.ATTACKS) + 1


def test_main_writes_the_figure(tmp_path, capsys):
    path = tmp_path / "features.png"
    assert tabular.main(["--figure", str(path)]) == 0
    assert path.stat().st_size > 10_000
    assert "| maximal | yes |" in capsys.readouterr().out
