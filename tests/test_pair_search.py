"""The CPU pair search against the naive reference (tests/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import jsma_fast
from jsma_fast import _C, select_pairs

import reference
from inputs import POOL, draw_search_inputs

SIMD_LEVELS = list(_C.simd_levels_runnable())
MODES = ["increase", "decrease"]



def assert_same(got, expected):
    p, q, score, valid = (np.asarray(x) for x in got)
    ep, eq, escore, evalid = expected
    np.testing.assert_array_equal(valid, evalid)
    np.testing.assert_array_equal(p, ep)
    np.testing.assert_array_equal(q, eq)
    np.testing.assert_array_equal(score, escore)  # bit-exact, including inf


def random_inputs(rng, batch, m, *, ties=False, domain_density=0.8):
    if ties:
        alpha = rng.choice(np.array(POOL[:17], dtype=np.float32), size=(batch, m))
        beta = rng.choice(np.array(POOL[:17], dtype=np.float32), size=(batch, m))
    else:
        alpha = rng.standard_normal((batch, m)).astype(np.float32)
        beta = rng.standard_normal((batch, m)).astype(np.float32)
    domain = rng.random((batch, m)) < domain_density
    return alpha, beta, domain


@pytest.mark.parametrize("simd", SIMD_LEVELS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("m", [0, 1, 2, 3, 5, 8, 9, 15, 16, 17, 31, 33, 100, 257])
def test_matches_reference_on_random_inputs(simd, mode, m):
    rng = np.random.default_rng()
    for ties in (False, True):
        alpha, beta, domain = random_inputs(rng, 6, m, ties=ties)
        got = select_pairs(alpha, beta, domain, mode=mode, method="exact", simd=simd)
        assert_same(got, reference.select_pairs(alpha, beta, domain, mode))


@given(
    data=st.data(),
    batch=st.integers(0, 4),
    m=st.integers(1, 40),
    mode=st.sampled_from(MODES),
    simd=st.sampled_from(SIMD_LEVELS),
)
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


@pytest.mark.parametrize("mode", MODES)
def test_empty_domain_and_no_qualifying_pair_are_invalid(mode):
    rng = np.random.default_rng()
    alpha, beta, _ = random_inputs(rng, 2, 40)
    empty = np.zeros((2, 40), dtype=bool)
    p, q, score, valid = select_pairs(alpha, beta, empty, mode=mode)
    assert not valid.any() and (p == -1).all() and (q == -1).all() and (score == 0).all()
    # All derivatives pushing the wrong way: nothing qualifies in increase mode.
    p, q, score, valid = select_pairs(-np.abs(alpha), np.abs(beta), None, mode="increase")
    assert not valid.any() and (p == -1).all()


def test_single_domain_feature_has_no_pair():
    alpha = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    beta = np.array([[-1.0, -2.0, -3.0]], dtype=np.float32)
    got = select_pairs(alpha, beta, np.array([[False, True, False]]))
    assert not bool(got.valid[0])


def test_underflowing_score_is_not_valid():
    # A > 0 and B < 0, but -(A*B) rounds to 0 in float32: no pair may be made up.
    alpha = np.array([[1e-30, 1e-30]], dtype=np.float32)
    beta = np.array([[-1e-30, -1e-30]], dtype=np.float32)
    assert not bool(select_pairs(alpha, beta).valid[0])


@pytest.mark.parametrize("simd", SIMD_LEVELS)
def test_one_and_two_threads_agree(simd):
    rng = np.random.default_rng()
    for batch, m in [(1, 3000), (37, 300), (3, 1000)]:
        alpha, beta, domain = random_inputs(rng, batch, m, ties=True)
        one = select_pairs(alpha, beta, domain, method="exact", num_threads=1, simd=simd)
        two = select_pairs(alpha, beta, domain, method="exact", num_threads=2, simd=simd)
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("m", [1025, 4000])
def test_simd_levels_agree_on_larger_inputs(m):
    rng = np.random.default_rng()
    alpha, beta, domain = random_inputs(rng, 2, m, ties=True)
    results = [select_pairs(alpha, beta, domain, method="exact", simd=s) for s in SIMD_LEVELS]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_m_beyond_int32_pair_count_matches_chunked_reference():
    # 46,341^2 overflows int32; the best pair is planted past that index.
    m = 46_500
    rng = np.random.default_rng()
    alpha = rng.uniform(-1, 1, m).astype(np.float32)
    beta = rng.uniform(-1, 1, m).astype(np.float32)
    alpha[[46_400, 46_499]] = 3.0
    beta[[46_400, 46_499]] = -3.0
    p, q, score, valid = select_pairs(alpha[None], beta[None], method="exact")
    ep, eq, escore, evalid = reference.select_pairs_chunked(alpha, beta, rows=1024)
    assert (int(p[0]), int(q[0]), bool(valid[0])) == (ep, eq, evalid) == (46_400, 46_499, True)
    assert score[0] == escore


def test_torch_in_torch_out_zero_copy():
    alpha = torch.randn(4, 3, 20)
    beta = torch.randn(4, 3, 20)
    domain = torch.rand(4, 3, 20) > 0.3
    got = select_pairs(alpha, beta, domain)
    assert all(isinstance(x, torch.Tensor) for x in got)
    assert got.p.shape == (4, 3) and got.p.dtype == torch.int64 and got.valid.dtype == torch.bool
    expected = reference.select_pairs(
        alpha.reshape(12, 20).numpy(), beta.reshape(12, 20).numpy(), domain.reshape(12, 20).numpy()
    )
    assert_same([x.reshape(12).numpy() for x in got], expected)


def test_inputs_are_not_modified():
    rng = np.random.default_rng()
    alpha, beta, domain = random_inputs(rng, 3, 64, ties=True)
    alpha[0, 3] = np.nan
    copies = [alpha.copy(), beta.copy(), domain.copy()]
    select_pairs(alpha, beta, domain, mode="decrease")
    for before, after in zip(copies, [alpha, beta, domain]):
        np.testing.assert_array_equal(before, after)


def test_uint8_domain_equals_bool_domain():
    rng = np.random.default_rng()
    alpha, beta, domain = random_inputs(rng, 5, 77)
    as_bool = select_pairs(alpha, beta, domain)
    as_uint8 = select_pairs(alpha, beta, domain.astype(np.uint8) * 7)  # any nonzero is "in"
    for a, b in zip(as_bool, as_uint8):
        np.testing.assert_array_equal(a, b)


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
    with pytest.raises(ValueError, match=r"beta must have the shape of alpha \(2, 5\), got \(2, 6\)"):
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
