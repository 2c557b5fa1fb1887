"""The top-2 rule (native kernel and the torch reduction of the GPU path) against the naive
reference that sorts, on the CPU and on a GPU (``device``)."""

from __future__ import annotations

import numpy as np
import pytest
import reference
import torch
from helpers import DEVICES, MODES, TIES, assert_same, draw_search_inputs, to_host
from hypothesis import given
from hypothesis import strategies as st

from jsma_fast import _cuda, ops


@given(data=st.data(), batch=st.integers(0, 4), m=st.integers(0, 40), mode=st.sampled_from(MODES))
def test_matches_reference_property_based(data, batch, m, mode):
    alpha, _, domain = draw_search_inputs(data, batch, m, domain_may_be_none=True)
    expected = reference.select_top2(alpha, domain, mode)
    assert_same(ops.select_top2(alpha, domain, mode=mode), expected)
    torch_domain = None if domain is None else torch.from_numpy(domain)
    assert_same(
        _cuda.top2_reduction(torch.from_numpy(alpha), torch_domain, mode == "increase"), expected
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("threads", [1, 2])
def test_large_batches_with_ties(mode, threads, rng):
    alpha = rng.choice(TIES, size=(64, 40_000))  # ties everywhere
    domain = rng.random((64, 40_000)) < 0.9
    expected = reference.select_top2(alpha, domain, mode)
    assert_same(ops.select_top2(alpha, domain, mode=mode, num_threads=threads), expected)


@pytest.mark.parametrize("m", [0, 1, 2, 3])
def test_edge_sizes(m):
    alpha = np.arange(m, dtype=np.float32)[None].repeat(3, axis=0)
    domain = np.ones((3, m), dtype=bool)
    domain[1, :1] = False  # one feature fewer
    domain[2] = False  # none
    got = ops.select_top2(alpha, domain)
    assert_same(got, reference.select_top2(alpha, domain))
    assert got.valid.tolist() == [m >= 2, m >= 3, False]


def test_no_sign_condition_and_first_index_of_ties():
    alpha = np.array([[-3.0, -1.0, -2.0, -1.0]], dtype=np.float32)
    sel = ops.select_top2(alpha)
    assert (int(sel.p[0]), int(sel.q[0]), float(sel.score[0]), bool(sel.valid[0])) == (
        1,
        3,
        -2.0,
        True,
    )
    dec = ops.select_top2(alpha, mode="decrease")
    assert (int(dec.p[0]), int(dec.q[0]), float(dec.score[0])) == (0, 2, 5.0)


def test_nan_never_and_inf_always_take_part():
    alpha = np.array([[np.nan, -np.inf, np.nan, -np.inf, 1.0]], dtype=np.float32)
    sel = ops.select_top2(alpha)
    assert (int(sel.p[0]), int(sel.q[0]), float(sel.score[0])) == (1, 4, -np.inf)
    assert not ops.select_top2(np.full((1, 5), np.nan, np.float32)).valid[0]


@pytest.mark.parametrize("device", DEVICES)
def test_torch_inputs_keep_batch_shape_kind_and_device(device, rng):
    alpha = rng.standard_normal((100, 784)).astype(np.float32)
    alpha[:, ::7] = alpha[:, :1]  # ties
    domain = rng.random((100, 784)) < 0.8
    shaped = [torch.from_numpy(x).reshape(10, 10, 784).to(device) for x in (alpha, domain)]
    for mode in MODES:
        sel = ops.select_top2(*shaped, mode=mode)
        assert isinstance(sel.p, torch.Tensor) and sel.p.shape == (10, 10)
        flat = to_host([x.reshape(100) for x in sel], device)
        assert_same(flat, reference.select_top2(alpha, domain, mode))


def test_rejects_bad_input():
    with pytest.raises(TypeError, match=r"alpha must be float32"):
        ops.select_top2(np.zeros((2, 3), np.float64))
    with pytest.raises(ValueError, match=r"domain must have the shape of alpha"):
        ops.select_top2(np.zeros((2, 3), np.float32), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match=r"mode must be one of"):
        ops.select_top2(np.zeros((2, 3), np.float32), mode="up")
