"""The single-feature saliency map and its arg-max against the naive reference, on the CPU
and on a GPU (``device``)."""

from __future__ import annotations

import numpy as np
import pytest
import reference
import torch
from helpers import (
    DEVICES,
    MODES,
    TIES,
    assert_same,
    draw_search_inputs,
    on_device,
    random_inputs,
    search_cases,
    special_inputs,
    to_host,
)
from hypothesis import given

from jsma_fast import saliency_map, select_features


def check_against_reference(device, alpha, beta, domain, mode):
    inputs = on_device(device, alpha, beta, domain)
    assert_same(
        to_host([saliency_map(*inputs, mode=mode)], device),
        [reference.saliency_map(alpha, beta, domain, mode)],
    )
    assert_same(
        to_host(select_features(*inputs, mode=mode), device),
        reference.select_features(alpha, beta, domain, mode),
    )


@pytest.mark.parametrize("device", DEVICES)
@given(**search_cases(0, 300))
def test_matches_reference_property_based(device, data, batch, m, mode):
    alpha, beta, domain = draw_search_inputs(data, batch, m)
    check_against_reference(device, alpha, beta, domain, mode)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch, m", [(0, 5), (3, 0), (6, 1), (300, 500), (1, 150528), (5, 4097)])
def test_matches_reference_on_ties_and_special_values(device, mode, batch, m, rng):
    for alpha, beta, domain in (
        random_inputs(rng, batch, m, ties=True),
        special_inputs(rng, batch, m),
    ):
        for dom in (domain, None):
            check_against_reference(device, alpha, beta, dom, mode)


@pytest.mark.parametrize("mode", MODES)
def test_random_batches_and_thread_counts(mode, rng):
    alpha = rng.choice(TIES, size=(300, 500))
    beta = rng.choice(TIES, size=(300, 500))
    expected = reference.select_features(alpha, beta, None, mode)
    for threads in (1, 2):
        got = select_features(alpha, beta, mode=mode, num_threads=threads)
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)


def test_torch_round_trip_keeps_batch_shape():
    alpha, beta = torch.randn(2, 3, 10), torch.randn(2, 3, 10)
    smap = saliency_map(alpha, beta)
    assert isinstance(smap, torch.Tensor) and smap.shape == (2, 3, 10)
    sel = select_features(alpha, beta)
    assert sel.index.shape == (2, 3)
    np.testing.assert_array_equal(
        sel.index.reshape(-1).numpy(),
        reference.select_features(alpha.reshape(6, 10).numpy(), beta.reshape(6, 10).numpy())[0],
    )


def test_rejects_bad_input():
    with pytest.raises(TypeError, match=r"alpha must be float32"):
        select_features(np.zeros((1, 3)), np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"mode must be one of"):
        saliency_map(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32), mode="x")
