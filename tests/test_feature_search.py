"""The single-feature saliency map and its arg-max against the naive reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from jsma_fast import saliency_map, select_features

import reference
from inputs import POOL, draw_search_inputs

MODES = ["increase", "decrease"]


@given(
    data=st.data(),
    batch=st.integers(0, 4),
    m=st.integers(0, 60),
    mode=st.sampled_from(MODES),
)
def test_matches_reference_property_based(data, batch, m, mode):
    alpha, beta, domain = draw_search_inputs(data, batch, m)
    np.testing.assert_array_equal(
        saliency_map(alpha, beta, domain, mode=mode),
        reference.saliency_map(alpha, beta, domain, mode),
    )
    got = select_features(alpha, beta, domain, mode=mode)
    for g, e in zip(got, reference.select_features(alpha, beta, domain, mode)):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("mode", MODES)
def test_random_batches_and_thread_counts(mode):
    rng = np.random.default_rng()
    alpha = rng.choice(np.array(POOL[:17], np.float32), size=(300, 500))
    beta = rng.choice(np.array(POOL[:17], np.float32), size=(300, 500))
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
