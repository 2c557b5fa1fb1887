"""A short fuzz of the searches against the naive reference (tests/reference.py).

Random sizes (on both sides of the ``"auto"`` switch to the pruned search), values drawn from
a pool rich in ties, NaN, infinities and subnormals, random domains, every method, every SIMD
level this machine runs, one or two threads. Budget: well under a minute on a 2-core machine
(``JSMA_FAST_FUZZ_EXAMPLES`` raises it for a longer local run). Hypothesis prints the failing
draw; the larger random cases report their seed (conftest.py's ``rng``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import reference
from helpers import POOL, SIMD_LEVELS
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jsma_fast import saliency_map, select_features, select_pairs
from jsma_fast.ops import AUTO_PRUNED_MIN_FEATURES

EXAMPLES = int(os.environ.get("JSMA_FAST_FUZZ_EXAMPLES", "2000"))

# The shared pool plus the float32 subnormal range's ends and the smallest normal.
SUBNORMALS = [1.4e-45, -1.4e-45, 5.9e-39, -5.9e-39, 1.1754944e-38, -1.1754944e-38]
VALUES = st.sampled_from(POOL + SUBNORMALS) | st.floats(width=32)


@st.composite
def search_inputs(draw):
    """(alpha, beta, domain-or-None) of shape (batch, m), m across the auto threshold."""
    batch = draw(st.integers(0, 3))
    m = draw(
        st.one_of(
            st.integers(0, 12),
            st.integers(AUTO_PRUNED_MIN_FEATURES - 4, AUTO_PRUNED_MIN_FEATURES + 60),
        )
    )
    alpha = draw(hnp.arrays(np.float32, (batch, m), elements=VALUES))
    beta = draw(hnp.arrays(np.float32, (batch, m), elements=VALUES))
    domain = draw(st.none() | hnp.arrays(np.bool_, (batch, m)))
    return alpha, beta, domain


def check_pairs(got, alpha, beta, domain, mode, method):
    """The contract: ``exact`` (and ``auto`` below the switch) equal the reference in every
    field; ``pruned`` has the reference's score and validity, and a pair that scores it."""
    p, q, score, valid = (np.asarray(x) for x in got)
    ep, eq, escore, evalid = reference.select_pairs(alpha, beta, domain, mode)
    np.testing.assert_array_equal(valid, evalid)
    np.testing.assert_array_equal(score, escore)  # bit-exact, inf included
    m = alpha.shape[1]
    if method == "exact" or (method == "auto" and m < AUTO_PRUNED_MIN_FEATURES):
        np.testing.assert_array_equal(p, ep)
        np.testing.assert_array_equal(q, eq)
        return
    np.testing.assert_array_equal(p[~valid], -1)
    for b in np.flatnonzero(valid):
        d = np.ones(m, bool) if domain is None else domain[b]
        assert p[b] < q[b]
        assert reference.pair_scores(alpha[b], beta[b], d, mode)[p[b], q[b]] == score[b]


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    inputs=search_inputs(),
    mode=st.sampled_from(["increase", "decrease"]),
    method=st.sampled_from(["exact", "pruned", "auto"]),
    simd=st.sampled_from(SIMD_LEVELS),
    threads=st.sampled_from([1, 2]),
)
def test_pair_search_fuzz(inputs, mode, method, simd, threads):
    alpha, beta, domain = inputs
    got = select_pairs(
        alpha, beta, domain, mode=mode, method=method, simd=simd, num_threads=threads
    )
    check_pairs(got, alpha, beta, domain, mode, method)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(
    inputs=search_inputs(),
    mode=st.sampled_from(["increase", "decrease"]),
    threads=st.sampled_from([1, 2]),
)
def test_feature_search_and_map_fuzz(inputs, mode, threads):
    alpha, beta, domain = inputs
    got = select_features(alpha, beta, domain, mode=mode, num_threads=threads)
    for g, e in zip(got, reference.select_features(alpha, beta, domain, mode)):
        np.testing.assert_array_equal(np.asarray(g), e)
    np.testing.assert_array_equal(
        saliency_map(alpha, beta, domain, mode=mode, num_threads=threads),
        reference.saliency_map(alpha, beta, domain, mode),
    )


# Sizes at which two threads really split the work (thresholds in csrc/cpu/*.cpp), checked
# sample by sample against the chunked reference (no M x M matrix in memory).
LARGE = [("exact", 10, 1000), ("pruned", 100, 700), ("auto", 200, 330)]


@pytest.mark.parametrize("method,batch,m", LARGE)
@pytest.mark.parametrize("simd", SIMD_LEVELS)
def test_multithreaded_sizes_match_the_chunked_reference(method, batch, m, simd, rng):
    # Few distinct values: ties between many pairs; NaN and inf scattered in.
    alpha = rng.choice(np.array(POOL[:17] + SUBNORMALS, np.float32), (batch, m))
    beta = rng.choice(np.array(POOL[:17] + SUBNORMALS, np.float32), (batch, m))
    for arr in (alpha, beta):
        arr[rng.random((batch, m)) < 0.01] = np.nan
        arr[rng.random((batch, m)) < 0.001] = np.inf
    sel = select_pairs(alpha, beta, method=method, simd=simd, num_threads=2)
    for b in range(batch):
        ep, eq, escore, evalid = reference.select_pairs_chunked(alpha[b], beta[b], rows=512)
        assert bool(sel.valid[b]) == evalid
        assert sel.score[b] == escore
        if method == "exact":
            assert (int(sel.p[b]), int(sel.q[b])) == (ep, eq)
        elif evalid:
            p, q = int(sel.p[b]), int(sel.q[b])
            with np.errstate(all="ignore"):
                a = alpha[b, p] + alpha[b, q]
                n = beta[b, p] + beta[b, q]
            assert p < q and a > 0 and n < 0 and -(a * n) == sel.score[b]
