"""``jsma-fast reproduce`` on few digits: every class attacked when the digits allow it, and the
report's noise wording sized by the samples per cell."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from jsma_fast.evaluation.digits import stratified_first
from jsma_fast.evaluation.report import _pair_noise


def test_twenty_digits_hold_every_class_twice_even_when_one_class_comes_late():
    labels = torch.tensor([c for c in range(10) if c != 6] * 5 + [6] * 5)  # the 6s come last
    chosen = stratified_first(torch.arange(len(labels)), labels, 20, 10)
    assert chosen == sorted(chosen) and len(chosen) == 20
    assert np.bincount(labels[chosen].numpy(), minlength=10).tolist() == [2] * 10


def test_few_digits_or_every_digit_keep_the_data_order():
    labels = torch.arange(30) % 3
    candidates = torch.arange(0, 30, 2)
    assert stratified_first(candidates, labels, 2, 3) == [0, 2]  # fewer than the classes
    assert stratified_first(candidates, labels, None, 3) == candidates.tolist()
    # a class short of digits: the others fill the quota
    labels = torch.tensor([0] * 8 + [1] * 2)
    assert (
        sorted(labels[stratified_first(torch.arange(10), labels, 6, 2)].tolist())
        == [0] * 4 + [1] * 2
    )


def test_noise_wording_names_the_samples_per_cell():
    count = np.full((3, 3), 4)
    count[0, 1] = 0
    np.fill_diagonal(count, 0)
    text = _pair_noise(SimpleNamespace(tables={"increase": SimpleNamespace(count=count)}))
    assert "holds 4 to 4 samples" in text and "\u00b150 percentage points" in text
    assert "1 cells hold none (grey in the heatmaps)" in text


def test_a_resume_may_add_variants_or_drop_the_model_comparison():
    from jsma_fast.evaluation.config import ReproduceConfig

    base = ReproduceConfig().manifest("lenet-x.pt", 20)
    fewer = ReproduceConfig(model_comparison=False, variants=("tjsma",)).manifest("lenet-x.pt", 20)
    assert fewer == base
    assert ReproduceConfig(gamma=0.1).manifest("lenet-x.pt", 20) != base  # changes the attacks
