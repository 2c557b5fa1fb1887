"""jsma_fast.sparsest: the per-row minimum of its portfolio, each member refined."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import NUM_CLASSES, dyadic_inputs, dyadic_model

from jsma_fast import JSMA
from jsma_fast.local_search import swap_search_result
from jsma_fast.minimum_l0 import (
    DEFAULT_REFINE_ABOVE,
    DEFAULT_REFINE_ORDER,
    DEFAULT_SEARCH_WITHIN,
    PORTFOLIO_TARGETED,
    PORTFOLIO_UNTARGETED,
    SEARCH_TARGETED,
    SEARCH_UNTARGETED,
    run_portfolio,
    sparsest,
)
from jsma_fast.refinement import refine_result, with_x_adv

SMALL = (
    ("tjsma+", dict(variant="tjsma", theta=1.0)),
    ("jsma-", dict(variant="jsma", theta=-1.0)),
    ("top2+", dict(variant="top2", theta=1.0)),
    ("maximal", dict(variant="maximal", theta=0.5)),
)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31))


def _members(model, x, y_target, y, portfolio, gamma, search=True, polish=None):
    """Each member's searched output (:func:`_member_outputs`)."""
    return [
        out[1] for out in _member_outputs(model, x, y_target, y, portfolio, gamma, search, polish)
    ]


def _member_outputs(model, x, y_target, y, portfolio, gamma, search=True, polish=None):
    """Each member run alone on every row: ``(start, searched)``, its output refined
    (magnitude order; with the search only the rows with more than ``polish["refine_above"]``
    changed features), and that searched (with ``polish["search_options"]``, by default those
    of the call's kind; without the search, the refined output again)."""
    polish = polish or {}
    untargeted = y_target == "untargeted"
    default = SEARCH_UNTARGETED if untargeted else SEARCH_TARGETED
    search_options = polish.get("search_options", default)
    refine_above = polish.get("refine_above", DEFAULT_REFINE_ABOVE)
    out = []
    for _, options in portfolio:
        result = JSMA(gamma=gamma, **options)(model, x, y_target, y=y)
        refined = refine_result(model, x, result, order=DEFAULT_REFINE_ORDER)
        if not search:
            out.append((refined, refined))
            continue
        long = (result.l0 > refine_above).reshape((-1,) + (1,) * (x.dim() - 1))
        chosen = torch.where(long, refined.x_adv, result.x_adv)
        start = with_x_adv(model, x, result, lambda original, chosen=chosen: chosen)
        out.append((start, swap_search_result(model, x, start, **search_options)))
    return out


def _kept(outputs, within):
    """The portfolio's choice, member after member: the first member's searched output; a
    later member's searched output where its start has at most ``within`` (None: any number)
    more changed features than the row's best so far (or no member broke the row yet), its
    start elsewhere; per row the earliest of the sparsest successful outputs. Returns the
    (R,) member kept and, per member, the (R,) rows where its searched output stands and the
    (R,) best L0 before it (int64 max where no member broke the row yet)."""
    never = torch.iinfo(torch.int64).max
    first = outputs[0][1]
    best = torch.where(first.success, first.l0, never)
    member = torch.zeros(len(first), dtype=torch.int64)
    searched_rows = [torch.ones(len(first), dtype=torch.bool)]
    before = [torch.full_like(best, never)]
    for k, (start, searched) in enumerate(outputs[1:], 1):
        before.append(best)
        near = torch.ones_like(first.success)
        if within is not None:
            near = (best == never) | (start.l0 <= best + within)
        success = torch.where(near, searched.success, start.success)
        l0 = torch.where(near, searched.l0, start.l0)
        better = success & (l0 < best)
        best = torch.where(better, l0, best)
        member[better] = k
        searched_rows.append(near)
    return member, searched_rows, before


@pytest.mark.parametrize(
    "refine_above, within",
    [(0, None), (3, 0), (3, 2), (DEFAULT_REFINE_ABOVE, DEFAULT_SEARCH_WITHIN), (0, 1)],
)
@pytest.mark.parametrize("y_target", ["untargeted", "next"])
def test_the_per_row_minimum_of_the_portfolio(rng, y_target, refine_above, within):
    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(24, _seed(rng))
    gamma = float(rng.choice([0.2, 0.5, 1.0]))
    polish = dict(refine_above=refine_above)
    outputs = _member_outputs(model, x, y_target, None, SMALL, gamma, polish=polish)
    got = run_portfolio(
        model, x, y_target, portfolio=SMALL, gamma=gamma, skip_at=0, refine_above=refine_above,
        search_within=within,
    )  # fmt: skip
    result = got.result
    member, searched_rows, _ = _kept(outputs, within)
    assert torch.equal(got.member, member)
    for r in range(len(result)):
        k = int(member[r])
        kept = outputs[k][1] if searched_rows[k][r] else outputs[k][0]
        assert torch.equal(result.x_adv[r], kept.x_adv[r])
        assert result.success[r] == kept.success[r] and result.l0[r] == kept.l0[r]
        assert result.predicted[r] == kept.predicted[r]
        assert result.stop_code[r] == kept.stop_code[r]
    runs = [searched for _, searched in outputs]
    never = torch.iinfo(torch.int64).max
    l0 = torch.stack([torch.where(r.success, r.l0, never) for r in runs])  # (members, R)
    success = torch.stack([r.success for r in runs]).any(dim=0)
    if within is None:  # every output searched: the per-row minimum over the members
        assert torch.equal(result.success, success)
        assert torch.equal(result.l0[success], l0.min(dim=0).values[success])
    assert torch.equal(result.target, runs[0].target)
    assert torch.equal(result.l0, (result.x_adv != x[result.source_index]).flatten(1).sum(1))
    assert got.names == [name for name, _ in SMALL]
    # Rows the first member broke with L0 0 are not attacked again.
    assert got.rows[0] == len(result)
    assert all(
        rows <= int((runs[0].l0 > 0).sum() + (~runs[0].success).sum()) for rows in got.rows[1:]
    )
    # The portfolio never hurts.
    assert (result.l0[runs[0].success] <= runs[0].l0[runs[0].success]).all()


def test_later_members_search_only_the_rows_near_the_best(monkeypatch, rng):
    """The rows each member's search gets: every row for the first member; for a later one
    the attacked rows whose start is within ``search_within`` of the best so far."""
    import jsma_fast.minimum_l0 as minimum_l0

    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(24, _seed(rng))
    outputs = _member_outputs(model, x, "untargeted", None, SMALL, 1.0, polish=dict(refine_above=0))
    searched = []

    def recording(model, x, result, **options):
        searched.append(result.source_index.clone())
        return swap_search_result(model, x, result, **options)

    monkeypatch.setattr(minimum_l0, "swap_search_result", recording)
    run = run_portfolio(
        model, x, portfolio=SMALL, gamma=1.0, skip_at=0, refine_above=0, search_within=0
    )
    _, searched_rows, before = _kept(outputs, 0)
    calls = iter(searched)
    assert torch.equal(next(calls), torch.arange(24))
    for k in range(1, len(SMALL)):
        attacked = before[k] > 0  # skip_at 0: rows at L0 0 are not attacked again
        want = (searched_rows[k] & attacked).nonzero().squeeze(1)
        if want.numel():
            # source_index of the member's rows (the attacked ones, in order)
            attacked_rows = attacked.nonzero().squeeze(1)
            assert torch.equal(attacked_rows[next(calls)], want)
    assert next(calls, None) is None
    assert run.names == [name for name, _ in SMALL]


def test_all_targets_and_skipping(rng):
    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(6, _seed(rng))
    runs = _members(model, x, "all", None, SMALL[:2], 1.0)
    got = run_portfolio(model, x, "all", portfolio=SMALL[:2], gamma=1.0, skip_at=3)
    assert len(got.result) == 6 * (NUM_CLASSES - 1)
    first = runs[0]
    skipped = first.success & (first.l0 <= 3)
    assert got.rows[1] == int((~skipped).sum())
    # Skipped rows keep the first member's output; the others take the sparser one.
    assert torch.equal(got.result.x_adv[skipped], first.x_adv[skipped])
    never = torch.iinfo(torch.int64).max
    l0 = torch.stack([torch.where(r.success, r.l0, never) for r in runs]).min(dim=0).values
    rest = ~skipped & got.result.success
    assert torch.equal(got.result.l0[rest], l0[rest])


@pytest.mark.parametrize("search", [True, False])
def test_one_member_is_the_refined_attack(rng, search):
    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(10, _seed(rng))
    y = torch.from_numpy(rng.integers(0, NUM_CLASSES, size=10))
    want = _members(model, x, "untargeted", y, PORTFOLIO_UNTARGETED[:1], 0.3, search)[0]
    got = sparsest(model, x, y=y, members=1, search=search)
    for name in ("x_adv", "success", "l0", "predicted", "target", "true_class", "stop_code"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name


def test_search_options_reach_every_members_search(rng):
    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(10, _seed(rng))
    options = dict(singles=1, removals=5, additions=9, tiers=(2, 6, 30), ranking="forward")
    polish = dict(search_options=options)
    want = _members(model, x, "untargeted", None, SMALL[:1], 0.5, polish=polish)[0]
    got = sparsest(model, x, portfolio=SMALL[:1], gamma=0.5, search_options=options)
    for name in ("x_adv", "success", "l0", "predicted", "stop_code"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name


@pytest.mark.parametrize(
    "y_target, options", [("untargeted", SEARCH_UNTARGETED), ("next", SEARCH_TARGETED)]
)
def test_the_default_search_options(monkeypatch, y_target, options):
    import jsma_fast.minimum_l0 as minimum_l0

    seen = []

    def recording(model, x, result, **given):
        seen.append({k: v for k, v in given.items() if k in minimum_l0.SEARCH_OPTIONS})
        return swap_search_result(model, x, result, **given)

    monkeypatch.setattr(minimum_l0, "swap_search_result", recording)
    run_portfolio(dyadic_model(0), dyadic_inputs(4, 1), y_target, portfolio=SMALL[:2], skip_at=0)
    assert seen == [options, options]


def test_deterministic_and_inputs_untouched(rng):
    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(12, _seed(rng))
    copy = x.clone()
    a = sparsest(model, x, portfolio=SMALL)
    b = sparsest(model, x, portfolio=SMALL)
    assert torch.equal(x, copy)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.l0, b.l0)
    assert a.x_adv.min() >= 0 and a.x_adv.max() <= 1


def test_the_default_portfolios():
    model = dyadic_model(0)
    x = dyadic_inputs(4, 1)
    names = [name for name, _ in PORTFOLIO_UNTARGETED]
    assert run_portfolio(model, x, skip_at=0).names == names
    names = [name for name, _ in PORTFOLIO_TARGETED]
    assert run_portfolio(model, x, "next", members=2).names == names[:2]


def test_max_seconds_zero_runs_only_the_first_member():
    model = dyadic_model(0)
    x = dyadic_inputs(4, 1)
    run = run_portfolio(model, x, portfolio=SMALL, max_seconds=0)
    assert run.names == ["tjsma+"]


@pytest.mark.parametrize(
    "options, error, words",
    [
        (dict(portfolio="tjsma"), TypeError, ["portfolio", "sequence", "str"]),
        (dict(portfolio=()), ValueError, ["portfolio", "at least one"]),
        (dict(portfolio=[("a", 1)]), TypeError, ["portfolio[0]", "pair", "('a', 1)"]),
        (dict(portfolio=[("a", dict(gamma=0.5))]), ValueError, ["portfolio[0]", "gamma"]),
        (dict(portfolio=[("a", dict(variant="nope"))]), ValueError, ["variant", "nope"]),
        (dict(members=0), ValueError, ["members", ">= 1", "0"]),
        (dict(skip_at=-1), ValueError, ["skip_at", ">= 0", "-1"]),
        (dict(max_seconds=-1.0), ValueError, ["max_seconds", ">= 0"]),
        (dict(refine_order="best"), ValueError, ["refine_order", "best"]),
        (dict(refine_above=-1), ValueError, ["refine_above", ">= 0", "-1"]),
        (dict(search_within=-1), ValueError, ["search_within", ">= 0", "-1"]),
        (dict(search_within=2.5), TypeError, ["search_within", "integer", "2.5"]),
        (dict(search_options=dict(remeasure=1)), TypeError, ["remeasure"]),
        (dict(search=1), TypeError, ["search"]),
        (dict(search_options=[("tiers", (4,))]), TypeError, ["search_options", "dict", "list"]),
        (dict(search_options=dict(clip_min=0.0)), ValueError, ["search_options", "clip_min"]),
        (dict(search_options=dict(tiers=())), TypeError, ["tiers", "()"]),
        (dict(search_options=dict(additions=-1)), ValueError, ["additions", "-1"]),
        (dict(search_options=dict(max_rounds=0)), ValueError, ["max_rounds", "0"]),
        (dict(search_options=dict(ranking="exact")), ValueError, ["ranking", "exact"]),
        (dict(gamma=2.0), ValueError, ["gamma", "(0, 1]"]),
    ],
)
def test_bad_options(options, error, words):
    with pytest.raises(error) as info:
        run_portfolio(dyadic_model(0), dyadic_inputs(2, 1), **options)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
