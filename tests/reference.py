"""Naive references for the saliency searches, written from the formulas for clarity.

They build the full M x M score matrix in float32 (fine for the small M of the tests) and take
NumPy's first arg-max, which is the contract's tie order. Nothing here is shared with the
kernels.
"""

from __future__ import annotations

import numpy as np


def pair_scores(alpha: np.ndarray, beta: np.ndarray, domain: np.ndarray, mode: str) -> np.ndarray:
    """(M, M) float32 matrix: -(A*B) for qualifying pairs p < q, 0 elsewhere."""
    m = alpha.shape[0]
    with np.errstate(all="ignore"):  # inf - inf and overflow are part of the contract
        a_sum = alpha[:, None] + alpha[None, :]  # A, float32
        b_sum = beta[:, None] + beta[None, :]  # B, float32
        score = -(a_sum * b_sum)
        if mode == "increase":
            qualifies = (a_sum > 0) & (b_sum < 0)
        else:
            qualifies = (a_sum < 0) & (b_sum > 0)
    upper = np.triu(np.ones((m, m), dtype=bool), k=1)
    in_domain = domain[:, None] & domain[None, :]
    return np.where(qualifies & upper & in_domain, score, np.float32(0)).astype(np.float32)


def select_pairs(alpha, beta, domain=None, mode="increase"):
    """Returns (p, q, score, valid) arrays of shape (batch,) for (batch, M) inputs."""
    batch, m = alpha.shape
    if domain is None:
        domain = np.ones((batch, m), dtype=bool)
    p = np.full(batch, -1, dtype=np.int64)
    q = np.full(batch, -1, dtype=np.int64)
    score = np.zeros(batch, dtype=np.float32)
    valid = np.zeros(batch, dtype=bool)
    for b in range(batch):
        if m == 0:
            continue
        scores = pair_scores(alpha[b], beta[b], domain[b].astype(bool), mode)
        flat = int(np.argmax(scores))  # first maximum in row-major order
        best = scores.flat[flat]
        if best > 0:
            p[b], q[b] = divmod(flat, m)
            score[b] = best
            valid[b] = True
    return p, q, score, valid


def select_pairs_chunked(alpha: np.ndarray, beta: np.ndarray, mode="increase", rows=256):
    """One sample, full domain, any M: scans the upper triangle a block of rows at a time."""
    m = alpha.shape[0]
    best, best_p, best_q = np.float32(0), -1, -1
    for p0 in range(0, m, rows):
        p1 = min(p0 + rows, m)
        with np.errstate(all="ignore"):
            a_sum = alpha[p0:p1, None] + alpha[None, :]
            b_sum = beta[p0:p1, None] + beta[None, :]
            score = -(a_sum * b_sum)
        ok = (a_sum > 0) & (b_sum < 0) if mode == "increase" else (a_sum < 0) & (b_sum > 0)
        ok &= np.arange(m)[None, :] > np.arange(p0, p1)[:, None]
        score = np.where(ok, score, np.float32(0))
        flat = int(np.argmax(score))
        if score.flat[flat] > best:  # strict: an earlier block keeps ties
            best = score.flat[flat]
            best_p, best_q = p0 + flat // m, flat % m
    return best_p, best_q, best, bool(best > 0)


def saliency_map(alpha, beta, domain=None, mode="increase"):
    """The paper's S(x, t): -(alpha*beta) where alpha > 0 and beta < 0 (increase), else 0."""
    if domain is None:
        domain = np.ones(alpha.shape, dtype=bool)
    with np.errstate(all="ignore"):
        score = -(alpha * beta)
    qualifies = (alpha > 0) & (beta < 0) if mode == "increase" else (alpha < 0) & (beta > 0)
    return np.where(qualifies & domain.astype(bool), score, np.float32(0)).astype(np.float32)


def select_features(alpha, beta, domain=None, mode="increase"):
    smap = saliency_map(alpha, beta, domain, mode)
    batch = alpha.shape[0]
    index = np.full(batch, -1, dtype=np.int64)
    score = np.zeros(batch, dtype=np.float32)
    valid = np.zeros(batch, dtype=bool)
    for b in range(batch):
        if smap.shape[1] == 0:
            continue
        i = int(np.argmax(smap[b]))
        if smap[b, i] > 0:
            index[b], score[b], valid[b] = i, smap[b, i], True
    return index, score, valid


def select_top2(alpha, domain=None, mode="increase"):
    """The top-2 rule, by sorting: per row, the two usable features (in the domain, not NaN)
    with the largest alpha (decrease: smallest), equal values by smaller index. Returns
    (p, q, score, valid) with p < q and score the increase-form sum."""
    batch, m = alpha.shape
    if domain is None:
        domain = np.ones((batch, m), dtype=bool)
    sign = np.float32(1 if mode == "increase" else -1)
    p = np.full(batch, -1, dtype=np.int64)
    q = np.full(batch, -1, dtype=np.int64)
    score = np.zeros(batch, dtype=np.float32)
    valid = np.zeros(batch, dtype=bool)
    for b in range(batch):
        usable = [i for i in range(m) if domain[b, i] and not np.isnan(alpha[b, i])]
        ranked = sorted(usable, key=lambda i: (-(sign * alpha[b, i]), i))
        if len(ranked) >= 2:
            first, second = ranked[0], ranked[1]
            p[b], q[b] = min(first, second), max(first, second)
            with np.errstate(all="ignore"):
                score[b] = sign * alpha[b, first] + sign * alpha[b, second]
            valid[b] = True
    return p, q, score, valid
