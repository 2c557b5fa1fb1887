"""The CPU pair search against the naive reference (tests/reference.py); the tests that do
not depend on the CPU kernels' options run on a GPU too (``device``)."""

from __future__ import annotations

import numpy as np
import pytest
import reference
import torch
from helpers import (
    DEVICES,
    MODES,
    SIMD_LEVELS,
    assert_same,
    draw_search_inputs,
    on_device,
    random_inputs,
    search_cases,
    to_host,
)
from hypothesis import given
from hypothesis import strategies as st

import jsma_fast
from jsma_fast import _C, select_pairs


def pairs_on(device, alpha, beta, domain=None, **options):
    """``select_pairs`` on NumPy inputs placed on ``device``; its results as NumPy arrays."""
    return to_host(select_pairs(*on_device(device, alpha, beta, domain), **options), device)


@pytest.mark.parametrize("simd", SIMD_LEVELS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("m", [0, 1, 2, 3, 5, 8, 9, 15, 16, 17, 31, 33, 100, 257])
def test_matches_reference_on_random_inputs(simd, mode, m, rng):
    for ties in (False, True):
        alpha, beta, domain = random_inputs(rng, 6, m, ties=ties)
        got = select_pairs(alpha, beta, domain, mode=mode, method="exact", simd=simd)
        assert_same(got, reference.select_pairs(alpha, beta, domain, mode))


@given(**search_cases(1, 40, simd=st.sampled_from(SIMD_LEVELS)))
def test_matches_reference_property_based(data, batch, m, mode, simd):
    alpha, beta, domain = draw_search_inputs(data, batch, m)
    got = select_pairs(alpha, beta, domain, mode=mode, method="exact", simd=simd)
    assert_same(got, reference.select_pairs(alpha, beta, domain, mode))


@pytest.mark.parametrize("simd", SIMD_LEVELS)
def test_all_equal_scores_pick_the_first_pair(simd):
    alpha = np.full((3, 50), 0.5, dtype=np.float32)
    beta = np.full((3, 50), -0.5, dtype=np.float32)
    domain = np.ones((3, 50), dtype=bool)
    domain[1, :7] = False
    p, q, score, valid = select_pairs(alpha, beta, domain, method="exact", simd=simd)
    assert valid.all()
    assert p.tolist() == [0, 7, 0] and q.tolist() == [1, 8, 1]
    assert score.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("m", [40, 700])
def test_empty_domain_and_no_qualifying_pair_are_invalid(device, mode, m, rng):
    alpha, beta, _ = random_inputs(rng, 2, m)
    empty = np.zeros((2, m), dtype=bool)
    p, q, score, valid = pairs_on(device, alpha, beta, empty, mode=mode)
    assert not valid.any() and (p == -1).all() and (q == -1).all() and (score == 0).all()
    # All derivatives pushing the wrong way: nothing qualifies in increase mode.
    p, q, score, valid = pairs_on(device, -np.abs(alpha), np.abs(beta), None, mode="increase")
    assert not valid.any() and (p == -1).all()


@pytest.mark.parametrize("device", DEVICES)
def test_single_domain_feature_has_no_pair(device):
    alpha = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    beta = np.array([[-1.0, -2.0, -3.0]], dtype=np.float32)
    _, _, _, valid = pairs_on(device, alpha, beta, np.array([[False, True, False]]))
    assert not bool(valid[0])


@pytest.mark.parametrize("device", DEVICES)
def test_underflowing_score_is_not_valid(device):
    # A > 0 and B < 0, but -(A*B) rounds to 0 in float32: no pair may be made up.
    alpha = np.array([[1e-30, 1e-30]], dtype=np.float32)
    beta = np.array([[-1e-30, -1e-30]], dtype=np.float32)
    p, _, score, valid = pairs_on(device, alpha, beta)
    assert not bool(valid[0]) and int(p[0]) == -1 and float(score[0]) == 0.0


@pytest.mark.parametrize("simd", SIMD_LEVELS)
def test_one_and_two_threads_agree(simd, rng):
    for batch, m in [(1, 3000), (37, 300), (3, 1000)]:
        alpha, beta, domain = random_inputs(rng, batch, m, ties=True)
        one = select_pairs(alpha, beta, domain, method="exact", num_threads=1, simd=simd)
        two = select_pairs(alpha, beta, domain, method="exact", num_threads=2, simd=simd)
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("m", [1025, 4000])
def test_simd_levels_agree_on_larger_inputs(m, rng):
    alpha, beta, domain = random_inputs(rng, 2, m, ties=True)
    results = [select_pairs(alpha, beta, domain, method="exact", simd=s) for s in SIMD_LEVELS]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_m_beyond_int32_pair_count_matches_chunked_reference(rng):
    # 46,341^2 overflows int32; the best pair is planted past that index.
    m = 46_500
    alpha = rng.uniform(-1, 1, m).astype(np.float32)
    beta = rng.uniform(-1, 1, m).astype(np.float32)
    alpha[[46_400, 46_499]] = 3.0
    beta[[46_400, 46_499]] = -3.0
    p, q, score, valid = select_pairs(alpha[None], beta[None], method="exact")
    ep, eq, escore, evalid = reference.select_pairs_chunked(alpha, beta, rows=1024)
    assert (int(p[0]), int(q[0]), bool(valid[0])) == (ep, eq, evalid) == (46_400, 46_499, True)
    assert score[0] == escore


@pytest.mark.parametrize("device", DEVICES)
def test_torch_in_torch_out_keeps_the_batch_shape(device, rng):
    alpha, beta, domain = random_inputs(rng, 12, 90)
    shaped = [torch.from_numpy(x.reshape(4, 3, 90)).to(device) for x in (alpha, beta, domain)]
    got = select_pairs(*shaped)
    assert all(isinstance(x, torch.Tensor) and x.device.type == device for x in got)
    assert got.p.shape == (4, 3) and got.p.dtype == torch.int64
    assert got.score.dtype == torch.float32 and got.valid.dtype == torch.bool
    flat = to_host([x.reshape(12) for x in got], device)
    assert_same(flat, reference.select_pairs(alpha, beta, domain))
    single = select_pairs(shaped[0][0, 0], shaped[1][0, 0])  # (M,) in, 0-d out
    assert single.p.shape == ()


@pytest.mark.parametrize("device", DEVICES)
def test_inputs_are_not_modified(device, rng):
    alpha, beta, domain = random_inputs(rng, 3, 64, ties=True)
    alpha[0, 3] = np.nan
    copies = [alpha.copy(), beta.copy(), domain.copy()]
    inputs = on_device(device, alpha, beta, domain)
    select_pairs(*inputs, mode="decrease")
    for before, after in zip(copies, to_host(inputs, device)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("device", DEVICES)
def test_uint8_domain_equals_bool_domain(device, rng):
    alpha, beta, domain = random_inputs(rng, 5, 77)
    as_bool = pairs_on(device, alpha, beta, domain)
    as_uint8 = pairs_on(device, alpha, beta, domain.astype(np.uint8) * 7)  # any nonzero is "in"
    assert_same(as_uint8, as_bool)


# ---------------------------------------------------------------- bad inputs


def test_rejects_wrong_dtype():
    a = np.zeros((2, 5), dtype=np.float64)
    with pytest.raises(TypeError, match=r"alpha must be float32, got .*float64"):
        select_pairs(a, a.astype(np.float32))
    with pytest.raises(TypeError, match=r"beta must be float32, got .*float16"):
        select_pairs(torch.zeros(2, 5), torch.zeros(2, 5, dtype=torch.float16))
    with pytest.raises(TypeError, match=r"domain must be bool or uint8, got .*int32"):
        select_pairs(a.astype(np.float32), a.astype(np.float32), np.ones((2, 5), np.int32))


def test_rejects_shape_mismatch():
    a = np.zeros((2, 5), dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"beta must have the shape of alpha \(2, 5\), got \(2, 6\)"
    ):
        select_pairs(a, np.zeros((2, 6), dtype=np.float32))
    with pytest.raises(ValueError, match=r"domain must have the shape of alpha"):
        select_pairs(a, a, np.ones((5, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"alpha must have shape \(\.\.\., M\)"):
        select_pairs(np.ones((), np.float32), np.ones((), np.float32))


def test_rejects_non_contiguous():
    a = np.zeros((5, 4), dtype=np.float32).T
    with pytest.raises(ValueError, match=r"alpha must be C-contiguous"):
        select_pairs(a, np.zeros((4, 5), dtype=np.float32))
    t = torch.zeros(5, 4).t()
    with pytest.raises(ValueError, match=r"beta must be contiguous, got strides"):
        select_pairs(torch.zeros(4, 5), t)


def test_rejects_mixed_kinds_and_unknown_types():
    a = np.zeros((2, 5), dtype=np.float32)
    with pytest.raises(TypeError, match=r"beta must be the same kind of array as alpha"):
        select_pairs(a, torch.zeros(2, 5))
    with pytest.raises(TypeError, match=r"alpha must be a torch.Tensor or numpy.ndarray, got list"):
        select_pairs([[0.0]], [[0.0]])


def test_rejects_bad_options():
    a = np.zeros((2, 5), dtype=np.float32)
    with pytest.raises(ValueError, match=r"mode must be one of .*, got 'up'"):
        select_pairs(a, a, mode="up")
    with pytest.raises(ValueError, match=r"method must be one of .*, got 'fast'"):
        select_pairs(a, a, method="fast")
    with pytest.raises(ValueError, match=r"num_threads must be an integer in \[1, 1024\], got 0"):
        select_pairs(a, a, num_threads=0)
    with pytest.raises(ValueError, match=r"simd must be one of"):
        select_pairs(a, a, simd="sse9")


def test_rejects_tensor_on_another_device():
    a = torch.zeros(2, 5, device="meta")
    with pytest.raises(ValueError, match=r"alpha must be a CPU tensor .* got .*device=meta"):
        select_pairs(a, a)


def test_native_module_checks_buffers_itself():
    a = np.zeros((2, 5), dtype=np.float32)
    with pytest.raises(TypeError, match=r"alpha must be float32"):
        _C.pair_search(a.astype(np.float64), a, None, True, 1)
    with pytest.raises(ValueError, match=r"beta must have the shape of alpha"):
        _C.pair_search(a, a[:1], None, True, 1)
    with pytest.raises(ValueError, match=r"num_threads must be in \[1, 1024\], got 0"):
        _C.pair_search(a, a, None, True, 0)


def test_build_info_reports_simd_and_cuda():
    info = jsma_fast.build_info()
    assert info["simd_runtime"] in ("scalar", "avx2", "avx512")
    assert info["simd_runtime"] in info["simd_runnable"].split(",")
    assert isinstance(info["cuda_built"], bool)
    if not jsma_fast.cuda_available():
        assert info["cuda_unavailable_reason"]
