"""jsma_fast.local_search.swap_search against a plain one-row reference, its guarantees and
its errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from helpers import NUM_CLASSES, SAMPLE_SHAPE, dyadic_inputs, dyadic_model, generic_model

from jsma_fast import JSMA
from jsma_fast.local_search import swap_search, swap_search_result
from jsma_fast.refinement import refine_result

M = math.prod(SAMPLE_SHAPE)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31))


# ---------------------------------------------------------------------------- the reference


def _scores(model, row: torch.Tensor, target: int, true: int):
    """The one row's class scores, its adversarial margin and the margin's gradient."""
    point = row.clone().requires_grad_(True)
    scores = model(point.reshape((1,) + SAMPLE_SHAPE))[0]
    cls = target if target >= 0 else true
    others = torch.cat([scores[:cls], scores[cls + 1 :]]).amax()
    margin = scores[cls] - others if target >= 0 else others - scores[cls]
    (gradient,) = torch.autograd.grad(margin, point)
    values = scores.detach().tolist()
    predicted = max(range(len(values)), key=lambda c: (values[c], -c))  # first of the maxima
    adversarial = predicted == target if target >= 0 else predicted != true
    return adversarial, float(margin.detach()), gradient


def _ranked(scores: dict, count: int) -> list:
    return sorted(scores, key=lambda i: (-scores[i], i))[:count]


def _row_moves(original, current, gradient, options, margin_of, record) -> list:
    """(restored features, (added feature, value) or None) in the documented order;
    ``margin_of(trial)`` is the margin at one trial (ranking "forward"); ``record`` (a dict,
    or None to measure every round) holds the changes measured for unchanged features in
    earlier rounds, and gets the new ones."""
    singles, removals, additions, tiers, low, high, ranking = options
    g = gradient.tolist()
    changed = [i for i in range(M) if current[i] != original[i]]
    restore = {i: g[i] * (float(original[i]) - float(current[i])) for i in changed}
    gain, value = {}, {}
    for j in range(M):
        if j in restore:
            continue
        up, down = g[j] * (high - float(original[j])), g[j] * (low - float(original[j]))
        value[j] = high if up >= down else low
        if value[j] != float(original[j]):
            gain[j] = max(up, down)
    removed = _ranked(restore, max(singles, removals))
    added = _ranked(gain, additions)
    if ranking == "forward":  # the same candidates, scored by the measured change
        now = margin_of(current)
        measured = {}
        trials = [(i, ((i,), None)) for i in removed] + [(j, ((), (j, value[j]))) for j in added]
        for feature, move in trials:
            if record is None or feature not in record:
                measured[feature] = margin_of(_apply(original, current, move)) - now
                if record is not None:
                    record[feature] = measured[feature]
            else:  # measured in an earlier round
                measured[feature] = record[feature]
        restore = {i: measured[i] for i in removed}
        gain = {j: measured[j] for j in added}
        removed, added = _ranked(restore, len(removed)), _ranked(gain, len(added))
    moves = [((i,), None) for i in removed[:singles]]
    pairs = []
    for (p, i), (q, k) in itertools.combinations(enumerate(removed[:removals]), 2):
        for a, j in enumerate(added):
            score = restore[i] + restore[k] + gain[j]
            pairs.append((-score, p, q, a, (i, k), (j, value[j])))
    moves += [(m[4], m[5]) for m in sorted(pairs, key=lambda m: m[:4])]
    return moves[: sum(tiers)]


def _apply(original, current, move) -> torch.Tensor:
    trial = current.clone()
    restored, added = move
    for i in restored:
        trial[i] = original[i]
    if added is not None:
        trial[added[0]] = added[1]
    return trial


def reference_search(
    model, x, x_adv, target, true, options, max_rounds=None, remeasure=False
) -> torch.Tensor:
    """One row at a time, one forward per trial."""
    out = []
    for r in range(x.shape[0]):
        original = x[r].reshape(-1)
        current = x_adv[r].reshape(-1).clone()
        t, c = int(target[r]), int(true[r])
        adversarial, _, gradient = _scores(model, current, t, c)
        record = None if remeasure else {}
        rounds = 0
        while adversarial and bool((current != original).any()):
            if max_rounds is not None and rounds == max_rounds:
                break
            moves = _row_moves(
                original, current, gradient, options,
                lambda p, t=t, c=c: _scores(model, p, t, c)[1], record,
            )  # fmt: skip
            best, start = None, 0
            for size in options[3]:
                tier = [_apply(original, current, m) for m in moves[start : start + size]]
                start += size
                results = [(_scores(model, trial, t, c), trial) for trial in tier]
                good = [(s[1], -k, trial) for k, (s, trial) in enumerate(results) if s[0]]
                if good:
                    best = max(good, key=lambda g: g[:2])[2]
                    break
            if best is None:
                break
            for i in (best != current).nonzero().flatten().tolist():
                if record is not None:  # a move's features are measured afresh
                    record.pop(i, None)
            current = best
            rounds += 1
            adversarial, _, gradient = _scores(model, current, t, c)
        out.append(current)
    return torch.stack(out).reshape(x_adv.shape)


# ---------------------------------------------------------------------------- inputs


def _perturbed(rng, x: torch.Tensor, max_changed: int) -> torch.Tensor:
    """``x`` with up to ``max_changed`` features per row set to other multiples of 1/8."""
    flat = x.reshape(x.shape[0], -1).clone()
    for r in range(flat.shape[0]):
        k = int(rng.integers(0, max_changed + 1))
        for i in rng.choice(M, size=k, replace=False):
            flat[r, i] = float(rng.integers(0, 9)) / 8
    return flat.reshape(x.shape)


def _labels(model, x, x_adv, rng, targeted: bool):
    with torch.no_grad():
        true = model(x).argmax(1)
        now = model(x_adv).argmax(1)
    if not targeted:
        return torch.full_like(true, -1), true
    random = torch.from_numpy(rng.integers(0, NUM_CLASSES, size=x.shape[0]))
    pick = torch.from_numpy(rng.random(x.shape[0]) < 0.5)
    return torch.where(pick, now, random), true


OPTIONS = (
    dict(),
    dict(singles=0, removals=3, additions=2, tiers=(1, 2)),
    dict(singles=3, removals=0, additions=0, tiers=(2,)),
    dict(singles=1, removals=5, additions=7, tiers=(3, 1, 50)),
    dict(ranking="forward"),
    dict(singles=0, removals=3, additions=2, tiers=(1, 2), ranking="forward"),
    dict(singles=1, removals=5, additions=7, tiers=(3, 1, 50), ranking="forward"),
    dict(singles=3, removals=0, additions=0, tiers=(2,), ranking="forward"),
    dict(ranking="forward", remeasure=True),
    dict(singles=1, removals=5, additions=7, tiers=(3, 1, 50), ranking="forward", remeasure=True),
)


def _options(options: dict) -> tuple:
    return (
        options.get("singles", 2),
        options.get("removals", 12),
        options.get("additions", 6),
        options.get("tiers", (4, 12)),
        options.get("clip_min", 0.0),
        options.get("clip_max", 1.0),
        options.get("ranking", "gradient"),
    )


# ---------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("targeted", [False, True])
def test_equals_the_one_row_reference(rng, options, targeted):
    for _ in range(2):
        model = dyadic_model(_seed(rng))
        x = dyadic_inputs(10, _seed(rng))
        x_adv = _perturbed(rng, x, max_changed=M)
        target, true = _labels(model, x, x_adv, rng, targeted)
        want = reference_search(
            model, x, x_adv, target, true, _options(options),
            remeasure=options.get("remeasure", False),
        )  # fmt: skip
        got = swap_search(model, x, x_adv, target=target, true_class=true, **options)
        assert torch.equal(got, want)
        # The forward batch size changes nothing.
        again = swap_search(
            model, x, x_adv, target=target, true_class=true, batch_size=3, **options
        )
        assert torch.equal(again, want)


def test_max_rounds_equals_the_reference(rng):
    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(10, _seed(rng))
    x_adv = _perturbed(rng, x, max_changed=M)
    target, true = _labels(model, x, x_adv, rng, False)
    for rounds in (1, 2):
        want = reference_search(model, x, x_adv, target, true, _options({}), max_rounds=rounds)
        got = swap_search(model, x, x_adv, target=target, true_class=true, max_rounds=rounds)
        assert torch.equal(got, want)


def test_two_for_one_moves_go_below_refine(rng):
    """On JSMA outputs brought to a one-removal minimum (refine, then single removals until
    none is left), the two-for-one moves still find sparser adversarial inputs."""
    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(40, _seed(rng))
    result = refine_result(model, x, JSMA(gamma=1.0)(model, x, "untargeted"))
    refined = swap_search(model, x, result.x_adv, singles=M, removals=0)
    alone = swap_search(model, x, refined, singles=M, removals=0)
    assert torch.equal(alone, refined)
    got = swap_search(model, x, refined)
    l0 = lambda t: (t != x).reshape(40, -1).sum(1)  # noqa: E731
    assert (l0(got) <= l0(refined)).all()
    assert l0(got).sum() < l0(refined).sum()


# ---------------------------------------------------------------------------- guarantees


@pytest.mark.parametrize("targeted", [False, True])
def test_guarantees_on_a_float_model(rng, targeted):
    n = 40
    while True:  # a model whose class changes on some rows (most seeds)
        model = generic_model(_seed(rng))
        x = torch.from_numpy(rng.random((n,) + SAMPLE_SHAPE, dtype=np.float32))
        flat = x.reshape(n, -1).clone()
        mask = torch.from_numpy(rng.random((n, M)) < 0.6)
        flat[mask] = torch.from_numpy(rng.random(int(mask.sum()), dtype=np.float32))
        x_adv = flat.reshape(x.shape)
        with torch.no_grad():
            if (model(x).argmax(1) != model(x_adv).argmax(1)).sum() >= 3:
                break
    target, true = _labels(model, x, x_adv, rng, targeted)
    x_copy, x_adv_copy = x.clone(), x_adv.clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    low, high = -0.5, 1.5

    got = swap_search(model, x, x_adv, target=target, true_class=true, clip_min=low, clip_max=high)

    assert torch.equal(x, x_copy) and torch.equal(x_adv, x_adv_copy)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert got.shape == x_adv.shape and got.dtype == x_adv.dtype
    flat_got, flat_x, flat_adv = (t.reshape(n, -1) for t in (got, x, x_adv))
    # Each feature is the adversarial one, the original one or a bound.
    kinds = (flat_got == flat_adv) | (flat_got == flat_x) | (flat_got == low) | (flat_got == high)
    assert kinds.all()
    assert ((flat_got != flat_x).sum(1) <= (flat_adv != flat_x).sum(1)).all()
    with torch.no_grad():
        before, after = model(x_adv).argmax(1), model(got).argmax(1)

    def adversarial(p):
        return torch.where(target >= 0, p == target, p != true)

    was, now = adversarial(before), adversarial(after)
    assert was.any() and bool(now[was].all())
    assert torch.equal(flat_got[~was], flat_adv[~was])
    assert torch.equal(swap_search(model, x, x_adv, target=target, true_class=true,
                                   clip_min=low, clip_max=high), got)  # fmt: skip


def test_bounds_are_kept_on_a_jsma_result(rng):
    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(20, _seed(rng))
    result = JSMA(gamma=1.0, theta=-1.0)(model, x, "next")
    got = swap_search_result(model, x, refine_result(model, x, result))
    assert ((got.x_adv >= 0) & (got.x_adv <= 1)).all()
    assert torch.equal(got.success, result.success)
    assert (got.l0 <= result.l0).all()
    assert torch.equal(got.l0, (got.x_adv != x).reshape(20, -1).sum(1))
    with torch.no_grad():
        assert torch.equal(got.predicted, model(got.x_adv).argmax(1))
    assert bool((got.predicted == got.target)[got.success].all())


def test_empty_and_unchanged_rows():
    model = dyadic_model(0)
    x = dyadic_inputs(3, 1)
    assert torch.equal(swap_search(model, x, x.clone()), x)
    empty = x[:0]
    assert swap_search(model, empty, empty.clone()).shape == empty.shape


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "change, error, words",
    [
        (dict(clip_min=1.0, clip_max=0.0), ValueError, "clip_min must be < clip_max"),
        (dict(clip_max=float("nan")), ValueError, "clip_max"),
        (dict(singles=-1), ValueError, "singles"),
        (dict(removals=1.5), TypeError, "removals"),
        (dict(additions=True), TypeError, "additions"),
        (dict(tiers=()), TypeError, "tiers"),
        (dict(tiers=(4, 0)), ValueError, "tiers[1]"),
        (dict(tiers="4"), TypeError, "tiers"),
        (dict(max_rounds=0), ValueError, "max_rounds"),
        (dict(ranking="exact"), ValueError, "ranking"),
        (dict(remeasure="no"), TypeError, "remeasure"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(target=[0, 1]), ValueError, "target"),
    ],
)
def test_bad_inputs(change, error, words):
    model = dyadic_model(0)
    x = dyadic_inputs(3, 1)
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        swap_search(model, x, x.clone(), **change)


def test_a_model_without_gradients_is_refused():
    model = dyadic_model(0)
    x = dyadic_inputs(4, 1)
    x_adv = x.clone()
    x_adv.reshape(4, -1)[:, 0] = 1 - x.reshape(4, -1)[:, 0]
    with torch.no_grad():
        other = (model(x_adv).argmax(1) + 1) % NUM_CLASSES  # every row adversarial

    def frozen(inputs):
        with torch.no_grad():
            return model(inputs)

    with pytest.raises(ValueError, match="differentiable"):
        swap_search(frozen, x, x_adv, true_class=other)
