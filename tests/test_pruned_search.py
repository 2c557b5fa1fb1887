"""The pruned pair search against the exhaustive one (docs/pruned-search.md).

The pruned search must return exactly the exhaustive maximal score on every input, and the
same pair whenever that maximal score is reached by one pair only.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference
from helpers import MODES, SIMD_LEVELS, draw_search_inputs, random_inputs, search_cases
from hypothesis import given
from hypothesis import strategies as st

from jsma_fast import _C, select_pairs
from jsma_fast.ops import AUTO_PRUNED_MIN_FEATURES

# The spread of beta relative to alpha in these tests' normal draws.
BETA_SCALE = 3


def unique_maximum(alpha, beta, domain, mode):
    """Per sample, whether exactly one pair reaches the maximal score (or none qualifies)."""
    out = []
    for b in range(alpha.shape[0]):
        if alpha.shape[1] == 0:
            out.append(True)
            continue
        d = np.ones(alpha.shape[1], bool) if domain is None else domain[b].astype(bool)
        scores = reference.pair_scores(alpha[b], beta[b], d, mode)
        best = scores.max()
        out.append(not best > 0 or int((scores == best).sum()) == 1)
    return np.array(out, dtype=bool)


def check_against_exact(alpha, beta, domain, mode, simd="auto", num_threads=None):
    exact = select_pairs(alpha, beta, domain, mode=mode, method="exact", simd=simd)
    pruned, searched = select_pairs(
        alpha,
        beta,
        domain,
        mode=mode,
        method="pruned",
        simd=simd,
        num_threads=num_threads,
        return_candidates=True,
    )
    np.testing.assert_array_equal(pruned.score, exact.score)  # bit-exact, including inf
    np.testing.assert_array_equal(pruned.valid, exact.valid)
    unique = unique_maximum(alpha, beta, domain, mode) if alpha.shape[1] <= 400 else None
    if unique is not None:
        np.testing.assert_array_equal(pruned.p[unique], exact.p[unique])
        np.testing.assert_array_equal(pruned.q[unique], exact.q[unique])
    # Whatever pair it returns must score what it says, with p < q in the domain.
    for b in np.flatnonzero(pruned.valid):
        p, q = int(pruned.p[b]), int(pruned.q[b])
        assert p < q
        if domain is not None:
            assert domain[b, p] and domain[b, q]
        sign = 1 if mode == "increase" else -1
        with np.errstate(all="ignore"):
            a = np.float32(sign * alpha[b, p]) + np.float32(sign * alpha[b, q])
            n = np.float32(-sign * beta[b, p]) + np.float32(-sign * beta[b, q])
            assert a > 0 and n > 0 and a * n == pruned.score[b]
    assert searched.shape == exact.p.shape and (searched >= 0).all()
    assert (searched <= alpha.shape[1]).all()
    return pruned, exact, searched


@pytest.mark.parametrize("simd", SIMD_LEVELS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("m", [0, 1, 2, 3, 5, 17, 23, 24, 25, 31, 64, 100, 257, 784])
def test_matches_exact_on_random_inputs(simd, mode, m, rng):
    for ties in (False, True):
        for density in (1.0, 0.8, 0.1):
            alpha, beta, domain = random_inputs(
                rng, 6, m, ties=ties, domain_density=density, beta_scale=BETA_SCALE
            )
            check_against_exact(alpha, beta, domain, mode, simd)
            check_against_exact(alpha, beta, None, mode, simd)


@given(**search_cases(1, 80, simd=st.sampled_from(SIMD_LEVELS)))
def test_matches_exact_property_based(data, batch, m, mode, simd):
    alpha, beta, domain = draw_search_inputs(data, batch, m, domain_may_be_none=True)
    check_against_exact(alpha, beta, domain, mode, simd)


@pytest.mark.parametrize("mode", MODES)
def test_empty_batch_and_tiny_m(mode):
    for batch, m in [(0, 0), (0, 5), (3, 1), (3, 2), (3, 3)]:
        alpha = np.ones((batch, m), np.float32)
        beta = -np.ones((batch, m), np.float32)
        check_against_exact(alpha, beta, None, mode)


@pytest.mark.parametrize("simd", SIMD_LEVELS)
@pytest.mark.parametrize("m", [30, 784, 5000])
def test_worst_case_one_front(simd, m, rng):
    # alpha and beta perfectly anti-correlated in increase form (n = -beta = -alpha + c):
    # every feature is on one Pareto front, nothing can be pruned.
    alpha = np.sort(rng.standard_normal((2, m)).astype(np.float32), axis=1)
    beta = (alpha - np.float32(0.5)).astype(np.float32)
    _, _, searched = check_against_exact(alpha, beta, None, "increase", simd)
    assert (searched == m).all()  # searched exhaustively
    # Perfectly correlated the other way: one feature dominates all, a tiny front.
    _, _, searched = check_against_exact(alpha, -beta, None, "increase", simd)
    assert (searched <= 2).all()


def test_duplicated_features_keep_the_first_two():
    alpha = np.full((2, 200), 0.5, dtype=np.float32)
    beta = np.full((2, 200), -0.5, dtype=np.float32)
    domain = np.ones((2, 200), dtype=bool)
    domain[1, :7] = False
    pruned, exact, searched = check_against_exact(alpha, beta, domain, "increase")
    assert pruned.p.tolist() == exact.p.tolist() == [0, 7]
    assert pruned.q.tolist() == exact.q.tolist() == [1, 8]
    # Exact duplicates never dominate each other strictly in both coordinates, so the box
    # filter keeps them all and the sample goes to the exhaustive search.
    assert searched.tolist() == [200, 193]


def test_survivors_are_few_on_random_inputs():
    rng = np.random.default_rng(0)
    alpha, beta, _ = random_inputs(rng, 50, 784, beta_scale=BETA_SCALE)
    _, searched = select_pairs(alpha, beta, method="pruned", return_candidates=True)
    assert np.median(searched) < 40


@pytest.mark.parametrize("simd", SIMD_LEVELS)
def test_one_and_two_threads_agree(simd, rng):
    for batch, m in [(1, 20000), (200, 784), (37, 300)]:
        alpha, beta, domain = random_inputs(rng, batch, m, ties=batch == 37, beta_scale=BETA_SCALE)
        one = select_pairs(
            alpha, beta, domain, method="pruned", num_threads=1, simd=simd, return_candidates=True
        )
        two = select_pairs(
            alpha, beta, domain, method="pruned", num_threads=2, simd=simd, return_candidates=True
        )
        for a, b in zip([*one[0], one[1]], [*two[0], two[1]]):
            np.testing.assert_array_equal(a, b)


def test_simd_levels_agree(rng):
    alpha, beta, domain = random_inputs(rng, 20, 3001, ties=True)
    results = [
        select_pairs(alpha, beta, domain, method="pruned", simd=s, return_candidates=True)
        for s in SIMD_LEVELS
    ]
    for other in results[1:]:
        for a, b in zip([*results[0][0], results[0][1]], [*other[0], other[1]]):
            np.testing.assert_array_equal(a, b)


def test_large_samples_match_exact(rng):
    alpha, beta, domain = random_inputs(rng, 2, 20_000, beta_scale=BETA_SCALE)
    check_against_exact(alpha, beta, domain, "increase")
    check_against_exact(alpha, beta, domain, "decrease")


def test_imagenet_size_sample_finds_the_planted_pair(rng):
    m = 150_528
    alpha = rng.standard_normal((1, m)).astype(np.float32)
    beta = rng.standard_normal((1, m)).astype(np.float32)
    alpha[0, [70_001, 150_000]] = 9.0
    beta[0, [70_001, 150_000]] = -9.0
    sel, searched = select_pairs(alpha, beta, method="pruned", return_candidates=True)
    assert (int(sel.p[0]), int(sel.q[0]), float(sel.score[0])) == (70_001, 150_000, 324.0)
    assert searched[0] == 2


def test_auto_picks_by_size_and_keeps_the_result_shape(rng):
    for m in (AUTO_PRUNED_MIN_FEATURES - 1, AUTO_PRUNED_MIN_FEATURES, 784):
        alpha, beta, domain = random_inputs(rng, 4, m, beta_scale=BETA_SCALE)
        p, q, score, valid = select_pairs(alpha, beta, domain)  # 4-field unpacking
        exact = select_pairs(alpha, beta, domain, method="exact")
        np.testing.assert_array_equal(score, exact.score)


def test_candidates_of_exact_are_the_usable_features():
    alpha = np.array([[1.0, np.nan, 2.0, 3.0]], dtype=np.float32)
    beta = np.array([[-1.0, -1.0, np.nan, -3.0]], dtype=np.float32)
    domain = np.array([[True, True, True, False]])
    _, searched = select_pairs(alpha, beta, domain, method="exact", return_candidates=True)
    assert searched.tolist() == [1]


def test_torch_inputs_give_torch_candidates():
    torch = pytest.importorskip("torch")
    alpha, beta = torch.randn(2, 3, 100), torch.randn(2, 3, 100)
    sel, searched = select_pairs(alpha, beta, method="pruned", return_candidates=True)
    assert isinstance(searched, torch.Tensor) and searched.shape == (2, 3)
    assert isinstance(sel.p, torch.Tensor)


def test_native_module_checks_buffers_itself():
    a = np.zeros((2, 5), dtype=np.float32)
    with pytest.raises(TypeError, match=r"alpha must be float32"):
        _C.pair_search_pruned(a.astype(np.float64), a, None, True, 1)
    with pytest.raises(ValueError, match=r"num_threads must be in \[1, 1024\], got 0"):
        _C.pair_search_pruned(a, a, None, True, 0)


def test_attack_trajectories_match_exact():
    # Real gradients of a small trained model along whole attacks: the pruned search must
    # lead to the same adversarial inputs as the exhaustive one.
    torch = pytest.importorskip("torch")
    attack_module = pytest.importorskip("jsma_fast.attack")
    gen = torch.Generator().manual_seed(0)
    m, classes = 144, 4
    centres = torch.rand(classes, m, generator=gen)
    labels = torch.arange(200) % classes
    x = (centres[labels] + 0.2 * torch.randn(200, m, generator=gen)).clamp(0, 1)
    model = torch.nn.Sequential(
        torch.nn.Linear(m, 32), torch.nn.ReLU(), torch.nn.Linear(32, classes)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), labels).backward()
        opt.step()
    model.eval()
    results = {}
    for method in ("exact", "pruned"):
        attack = attack_module.JSMA(theta=1.0, gamma=0.3, method=method, num_threads=1)
        results[method] = attack(model, x[:8], "next", y=labels[:8])
    exact, pruned = results["exact"], results["pruned"]
    assert torch.equal(exact.x_adv, pruned.x_adv)
    assert torch.equal(exact.iterations, pruned.iterations)
    assert torch.equal(exact.success, pruned.success)
