"""Local search for sparser adversarial inputs: moves that lower L0 by one, guided by the
gradient at the current input.

:func:`jsma_fast.refine` stops at an input from which no changed feature can be restored on
its own. Often one can still reach a sparser adversarial input by restoring *two* changed
features and changing *one* new feature instead. :func:`swap_search` tries such moves, round
after round, for every row at once:

1. one forward and backward pass per active row gives the gradient ``g`` of the adversarial
   margin (target score minus the best other score; untargeted: the best other score minus
   the true class's) at the current input ``c``;
2. each changed feature ``i`` gets the first-order change of the margin when it is restored,
   ``g[i] * (x[i] - c[i])``; each unchanged feature ``j`` the larger of ``g[j] * (clip_max -
   x[j])`` and ``g[j] * (clip_min - x[j])``, the value it would be set to being the bound that
   gives it (``clip_max`` on ties);
3. the moves of a row, in order: restore one of the ``singles`` best changed features; then
   restore two of the ``removals`` best and set one of the ``additions`` best unchanged
   features, by the sum of the three first-order changes, largest first (ties: the earlier
   removal pair, then the earlier addition; features rank by their scores, ties by index);
4. the moves are evaluated in tiers (``tiers``: the first ``tiers[0]`` moves, then the next
   ``tiers[1]`` for the rows none of the first made adversarial, ...), one batched forward
   pass per tier; a row takes the adversarial move of its first successful tier with the
   largest margin (the earlier move on ties), and leaves the search when no tier has one.

Every accepted move lowers the row's L0 by exactly one, so the search ends after at most L0
rounds per row. Guarantees, for every row: a row that is not adversarial is returned
unchanged; an adversarial row stays adversarial and its L0 never increases; each feature of
the output is ``x_adv``'s, ``x``'s, ``clip_min`` or ``clip_max`` (so the output stays inside
``[clip_min, clip_max]`` when ``x_adv`` does); the caller's tensors are not modified and the
model only sees fresh copies.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple

import torch

from . import _checks
from ._short_waits import short_waits_when_busy
from .refinement import (
    _adversarial,
    _check_model,
    _check_pair,
    _margin,
    _positive_int,
    _Rows,
    with_x_adv,
)
from .space import as_bound, bound_rows, check_bounds, mask_rows, select_rows

#: Changed features tried alone per round, by default.
DEFAULT_SINGLES = 2
#: Changed features paired for the two-for-one moves, by default.
DEFAULT_REMOVALS = 12
#: Unchanged features a two-for-one move may set, by default.
DEFAULT_ADDITIONS = 6
#: Moves evaluated per tier, by default: on the demo LeNet nearly every accepted move is
#: among the first four (``bench.compare_l0``, docs/sparsest.md).
DEFAULT_TIERS = (4, 12)
#: How the candidate features are scored: ``"gradient"`` (first-order changes of the margin)
#: or ``"forward"`` (the candidates the gradient picked, scored by the margin's measured
#: change, one forward pass per candidate).
RANKINGS = ("gradient", "forward")


@short_waits_when_busy()
def swap_search(  # noqa: PLR0913 (public, keyword options)
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    x_adv: torch.Tensor,
    *,
    target: Optional[Any] = None,
    true_class: Optional[Any] = None,
    clip_min: Any = 0.0,
    clip_max: Any = 1.0,
    mask: Optional[Any] = None,
    singles: int = DEFAULT_SINGLES,
    removals: int = DEFAULT_REMOVALS,
    additions: int = DEFAULT_ADDITIONS,
    tiers: Sequence[int] = DEFAULT_TIERS,
    max_rounds: Optional[int] = None,
    batch_size: Optional[int] = None,
    require_eval: bool = True,
    ranking: str = "gradient",
    remeasure: bool = False,
) -> torch.Tensor:
    """Lowers the L0 of the adversarial rows of ``x_adv`` by one-for-none and two-for-one
    moves (module docstring); returns the new inputs (a new tensor).

    Args:
        model: a torch.nn.Module in eval mode (or any differentiable callable) mapping
            (n, ...) inputs to (n, C) class scores; it gets fresh tensors.
        x: (N, ...) original inputs, floating point, finite.
        x_adv: (N, ...) adversarial inputs, same shape, dtype and device as ``x``, finite.
        target: (N,) int target classes, -1 for untargeted rows; None: every row untargeted.
        true_class: (N,) int true classes; None: the model's prediction on ``x``.
        clip_min, clip_max: the bounds a newly changed feature is set to (clip_min <
            clip_max): numbers, or arrays broadcastable to x's shape (per channel, per
            feature, per row).
        mask: bool, broadcastable to x's shape: the features a move may newly change (the
            attack's search domain); None: every feature. Restoring is always allowed.
        singles: changed features tried alone per round (>= 0).
        removals: changed features paired in the two-for-one moves (>= 0; fewer than 2: none).
        additions: unchanged features a two-for-one move may set (>= 0).
        tiers: moves evaluated per tier, each >= 1 (a non-empty sequence).
        max_rounds: the most rounds (>= 1); None: until no row finds a move.
        batch_size: the most inputs per forward pass; None: a whole tier at once on a GPU,
            :data:`jsma_fast.refinement.CPU_BATCH` on the CPU.
        require_eval: refuse a torch.nn.Module in training mode.
        ranking: ``"gradient"`` (the module docstring's scores) or ``"forward"``: the
            ``max(singles, removals)`` changed and ``additions`` unchanged features the
            gradient ranks first are each tried alone (one batched forward pass a round) and
            re-ranked by the measured change of the margin (ties by index); the moves are
            then built from those scores as in step 3.
        remeasure: ranking ``"forward"``: try every candidate alone again in every round.
            False (default): a row keeps the change it measured for a feature in its later
            rounds, until a move changes or restores that feature, and tries alone only the
            candidates it has not measured yet (the changes move little from one round to
            the next; about half the forward passes of the ranking on the LeNets of the
            benchmarks).

    Returns:
        (N, ...) tensor, same dtype and device as ``x_adv``.

    Raises:
        TypeError, ValueError: naming the argument, what was expected and what was given.
    """
    _check_model(model, require_eval)
    _check_pair(x, x_adv)
    bounds = _checked_bounds(clip_min, clip_max, mask, x)
    _checks.check_choice(ranking, "ranking", RANKINGS)
    _checks.check_bool(remeasure, "remeasure")
    sizes = (*_checked_sizes(singles, removals, additions, tiers), ranking, remeasure)
    rounds = _positive_int("max_rounds", max_rounds, allow_none=True)
    batch = _positive_int("batch_size", batch_size, allow_none=True)
    with torch.no_grad():
        rows = _Rows.of(model, x, x_adv, (target, true_class), batch)
        if x.shape[0]:
            labels = (rows.targets, rows.true)
            active = _adversarial(rows.forward(rows.current), *labels)
            _search(
                rows.forward, rows.original, rows.current, labels, active, bounds, sizes, rounds
            )
    return rows.current.reshape(x_adv.shape)


def swap_search_result(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    result: Any,
    **options: Any,
):
    """:func:`swap_search` applied to an :class:`jsma_fast.AttackResult` of ``model`` on ``x``
    (as :func:`jsma_fast.refine_result`); ``options`` are :func:`swap_search`'s keywords.
    Returns a new AttackResult with ``x_adv``, ``l0``, ``l0_fraction`` and ``predicted``
    updated."""

    def search(original: torch.Tensor) -> torch.Tensor:
        per_source = {  # per-row arrays of x's rows, as the result's rows
            name: _result_rows(options[name], name, x, result.source_index)
            for name in ("clip_min", "clip_max", "mask")
            if options.get(name) is not None
        }
        return swap_search(
            model, original, result.x_adv, target=result.target,
            true_class=result.true_class, **{**options, **per_source},
        )  # fmt: skip

    return with_x_adv(model, x, result, search, options.get("batch_size"))


# ---------------------------------------------------------------------------- the rounds


def _result_rows(values: Any, name: str, x: torch.Tensor, source: torch.Tensor) -> Any:
    """A bound or mask given for x's rows, as the result's rows (``x[source]``)."""
    if name == "mask":
        flat = mask_rows(values, x)
    else:
        flat = bound_rows(values, name, x)
    if flat.shape[0] > 1:
        flat = flat[source.to(flat.device)]
    return flat.reshape((flat.shape[0],) + tuple(x.shape[1:]))


def _search(forward, original, current, labels, active, bounds, sizes, rounds) -> None:
    """Runs the rounds on the flat rows ``current`` (n, M) in place; ``bounds`` holds the
    (1 or n, M) lower and upper bounds and the mask of features that may be set (or None)."""
    # Ranking "forward" without remeasure: the change each row measured for each feature
    # (NaN: not measured since a move last touched it).
    record = None
    if sizes[4] == "forward" and not sizes[5]:
        record = torch.full_like(current, float("nan"))
    rows = (active & (current != original).any(dim=1)).nonzero().squeeze(1)
    done = 0
    while rows.numel() and (rounds is None or done < rounds):
        row_labels = tuple(t[rows] for t in labels)
        row_bounds = tuple(None if t is None else select_rows(t, rows) for t in bounds)
        row_record = None if record is None else record[rows]
        moved, took = _round(
            forward, original[rows], current[rows], row_labels, row_bounds, sizes, row_record
        )
        if record is not None:  # a move's features are measured afresh
            record[rows] = row_record.masked_fill(moved != current[rows], float("nan"))
        kept = rows[took]
        current[kept] = moved[took]
        # A row at L0 0 has nothing left to restore.
        rows = kept[(current[kept] != original[kept]).any(dim=1)]
        done += 1


def _round(forward, original, current, labels, bounds, sizes, record):
    """One round for the rows given (n of them): returns ``(new, took)``, the (n, M) rows
    after their move (``current``'s where none) and the (n,) rows that took one. ``record``
    is the rows' (n, M) record of measured changes (or None), updated in place."""
    with torch.enable_grad():
        gradient, now = _margin_gradient(forward, current, labels)
    measure = None
    if sizes[4] == "forward":
        measure = lambda trials, k: _margins(  # noqa: E731
            forward(trials), *(t.repeat_interleave(k) for t in labels)
        )
    moves = _moves(gradient, original, current, bounds, sizes, (measure, now, record))
    new = current.clone()
    took = torch.zeros(current.shape[0], dtype=torch.bool, device=current.device)
    start = 0
    for size in sizes[3]:
        pending = ~took & moves.valid[:, start : start + size].any(dim=1)
        rows = pending.nonzero().squeeze(1)
        if rows.numel():
            picked, found = _tier(forward, original, current, labels, moves, rows, start, size)
            new[rows[found]] = picked[found]
            took[rows[found]] = True
        start += size
    return new, took


def _margin_gradient(forward, flat: torch.Tensor, labels) -> Tuple[torch.Tensor, torch.Tensor]:
    """(n, M) gradient of each row's adversarial margin (:func:`_margin`) at ``flat``, and
    the (n,) margins."""
    point = flat.clone().requires_grad_(True)
    margin = _margin(forward(point), *labels)
    if not margin.requires_grad:
        raise ValueError(
            "model must be differentiable for swap_search (its class scores must depend on "
            "the input through autograd), got scores that do not require grad"
        )
    (gradient,) = torch.autograd.grad(margin.sum(), point)
    return gradient.detach(), margin.detach()


def _margins(logits: torch.Tensor, target: torch.Tensor, true: torch.Tensor):
    """(n,) margins of the rows and (n,) the margins a tier compares: the margin where the
    row is adversarial, -inf elsewhere."""
    margin = _margin(logits, target, true)
    adversarial = _adversarial(logits, target, true)
    return margin, torch.where(adversarial, margin, torch.full_like(margin, float("-inf")))


class _Moves:
    """The candidate moves of n rows, (n, K) each: the features restored (``first``,
    ``second``; -1: none), the feature set (``added``; -1: none) and its ``value``,
    ``valid`` (False pads rows with fewer moves) and ``known``, the margin a tier compares
    (:func:`_margins`) where a forward pass of the ranking measured it already (NaN: not
    measured)."""

    def __init__(self, first, second, added, value, valid, known) -> None:
        self.first, self.second, self.added, self.value, self.valid, self.known = (
            first, second, added, value, valid, known,
        )  # fmt: skip


def _ranked(score: torch.Tensor, allowed: torch.Tensor, count: int):
    """The ``count`` best features per row by ``score`` (largest first, ties by index):
    (n, count) indices, their scores and whether each is ``allowed`` (padding is not)."""
    key = torch.where(allowed, -score, torch.full_like(score, float("inf")))
    order = key.sort(dim=1, stable=True).indices[:, :count]
    return order, score.gather(1, order), allowed.gather(1, order)


def _moves(gradient, original, current, bounds, sizes, measured) -> _Moves:
    """The moves of each row in the order of the module docstring, the valid ones first, at
    most sum(tiers) of them. ``measured`` is ``(measure, now, record)``: ``measure`` (ranking
    ``"forward"``, else None) maps trials (k[i] of row i, (sum(k), M)) to their
    :func:`_margins`, ``now`` holds the (n,) margins at ``current``, ``record`` the (n, M)
    changes measured in earlier rounds (or None)."""
    singles, removals, additions, tiers = sizes[:4]
    low, high, settable = bounds
    changed = current != original
    width = changed.shape[1]
    removed, removed_score, removed_ok = _ranked(
        gradient * (original - current), changed, min(max(singles, removals), width)
    )
    up, down = gradient * (high - original), gradient * (low - original)
    value = torch.where(up >= down, high.expand_as(up), low.expand_as(up))
    addable = ~changed & (value != original)
    if settable is not None:
        addable &= settable
    added, added_score, added_ok = _ranked(torch.maximum(up, down), addable, min(additions, width))
    alone = torch.full_like(removed_score, float("nan"))  # lone restores: not measured
    if measured[0] is not None:
        removed, removed_score, removed_ok, alone, added, added_score, added_ok = _measured(
            measured, original, current, (removed, removed_ok), (added, added_ok), value
        )
    s = min(singles, removed.shape[1])
    minus = torch.full_like(removed[:, :s], -1)
    zero = torch.zeros_like(removed_score[:, :s])
    parts = [(removed[:, :s], minus, minus, zero, removed_ok[:, :s], alone[:, :s])]
    pairs = _pairs(
        removed[:, :removals],
        removed_score[:, :removals],
        removed_ok[:, :removals],
        (added, added_score, added_ok, value.gather(1, added)),
        sum(tiers) - s,
    )
    if pairs is not None:
        parts.append(pairs)
    columns = (torch.cat(column, dim=1) for column in zip(*parts))
    first, second, add, val, valid, known = columns
    front = (~valid).to(torch.int8).sort(dim=1, stable=True).indices[:, : sum(tiers)]
    return _Moves(*(t.gather(1, front) for t in (first, second, add, val, valid, known)))


def _measured(measured, original, current, removals, additions, value):
    """The candidates re-ranked by the measured change of the margin (from ``now``) when
    each is tried alone (restored, or set to ``value``): (removed, score, ok, alone, added,
    score, ok), ``alone`` what a tier would compare for each lone restore (:func:`_margins`).
    With a ``record``, a candidate measured in an earlier round keeps that change (and its
    lone restore is left to the tiers), and the new ones are recorded."""
    measure, now, record = measured
    (removed, removed_ok), (added, added_ok) = removals, additions
    r = removed.shape[1]
    columns = torch.cat([removed, added], dim=1)
    values = torch.cat([original.gather(1, removed), value.gather(1, added)], dim=1)
    tried = torch.cat([removed_ok, added_ok], dim=1)  # padding is never tried
    if record is not None:
        tried &= torch.isnan(record.gather(1, columns))
    row, slot = tried.nonzero(as_tuple=True)
    trials = current[row].clone()
    trials[torch.arange(row.numel(), device=row.device), columns[row, slot]] = values[row, slot]
    margin = torch.full(columns.shape, float("nan"), dtype=now.dtype, device=now.device)
    compared = torch.full_like(margin, float("-inf"))
    if row.numel():
        margin[row, slot], compared[row, slot] = measure(trials, tried.sum(dim=1))
    change = margin - now[:, None]
    if record is not None:
        earlier = record.gather(1, columns)
        # Only the tried ones: a padding column may repeat a real candidate's feature.
        record[row, columns[row, slot]] = change[row, slot]
        change = torch.where(tried, change, earlier)
        # A lone restore not tried this round is evaluated by the tiers.
        compared = torch.where(tried, compared, torch.full_like(compared, float("nan")))
    return (
        *_reranked(removed, change[:, :r], removed_ok, compared[:, :r]),
        *_reranked(added, change[:, r:], added_ok),
    )


def _reranked(features, score, ok, *aligned):
    """``features`` (n, c) sorted by ``score``, largest first, ties by index, the ``ok`` ones
    first: (features, score, ok, *aligned), the ``aligned`` (n, c) columns moved with them."""
    columns = (features, score, ok, *aligned)
    by_index = features.sort(dim=1, stable=True).indices
    features, score, ok, *aligned = (t.gather(1, by_index) for t in columns)
    key = torch.where(ok, -score, torch.full_like(score, float("inf")))
    order = key.sort(dim=1, stable=True).indices
    return tuple(t.gather(1, order) for t in (features, score, ok, *aligned))


def _pairs(removed, removed_score, removed_ok, adds, count: int):
    """The two-for-one moves, best first (ties: the earlier pair, then the earlier
    addition), at most ``count``: (first, second, added, value, valid), each (n, K); None
    when there are none."""
    added, added_score, added_ok, value = adds
    size = removed.shape[1]
    if size < 2 or added.shape[1] == 0 or count <= 0:
        return None
    p, q = torch.triu_indices(size, size, 1, device=removed.device)
    n, a = removed.shape[0], added.shape[1]
    shape = (n, p.numel(), a)
    total = (removed_score[:, p] + removed_score[:, q])[:, :, None] + added_score[:, None, :]
    valid = (removed_ok[:, p] & removed_ok[:, q])[:, :, None] & added_ok[:, None, :]
    key = torch.where(valid, -total, torch.full_like(total, float("inf"))).reshape(n, -1)
    order = key.sort(dim=1, stable=True).indices[:, :count]
    columns = (
        removed[:, p][:, :, None].expand(shape),
        removed[:, q][:, :, None].expand(shape),
        added[:, None, :].expand(shape),
        value[:, None, :].expand(shape),
        valid,
    )
    picked = tuple(c.reshape(n, -1).gather(1, order) for c in columns)
    return (*picked, torch.full_like(picked[3], float("nan")))


def _tier(forward, original, current, labels, moves: _Moves, rows, start: int, size: int):
    """Evaluates the moves ``start .. start + size`` of ``rows`` (those not measured yet, in
    one forward pass): returns the (r, M) rows after their best adversarial move and the (r,)
    rows that have one."""
    cols = slice(start, start + size)
    valid, known = moves.valid[rows, cols], moves.known[rows, cols]
    unknown = valid & torch.isnan(known)
    table = torch.where(valid & ~unknown, known, torch.full_like(known, float("-inf")))
    at, column = unknown.nonzero(as_tuple=True)
    if at.numel():
        row = rows[at]
        trials = _applied(original, current, moves, row, column + start)
        table[at, column] = _margins(forward(trials), *(t[row] for t in labels))[1]
    best = table.argmax(dim=1)  # the first of equal maxima
    found = torch.isfinite(table.max(dim=1).values)
    picked = current[rows].clone()
    hit = found.nonzero().squeeze(1)
    picked[hit] = _applied(original, current, moves, rows[hit], best[hit] + start)
    return picked, found


def _applied(original, current, moves: _Moves, row, col) -> torch.Tensor:
    """(t, M) the rows ``row`` of ``current`` after their moves ``col`` ((t,) each)."""
    trials = current[row].clone()
    index = torch.arange(row.numel(), device=row.device)
    for feature in (moves.first[row, col], moves.second[row, col]):
        use = feature >= 0
        trials[index[use], feature[use]] = original[row[use], feature[use]]
    feature = moves.added[row, col]
    use = feature >= 0
    trials[index[use], feature[use]] = moves.value[row, col][use]
    return trials


# ---------------------------------------------------------------------------- checks


def _checked_bounds(clip_min: Any, clip_max: Any, mask: Any, x: torch.Tensor) -> Tuple:
    """The bounds as (1 or N, M) tensors like x, and the mask (or None)."""
    check_bounds(as_bound(clip_min, "clip_min"), as_bound(clip_max, "clip_max"))
    low = bound_rows(clip_min, "clip_min", x)
    high = bound_rows(clip_max, "clip_max", x)
    return low, high, None if mask is None else mask_rows(mask, x)


def _checked_sizes(singles: Any, removals: Any, additions: Any, tiers: Any):
    counts = tuple(
        _checks.check_int(value, name, minimum=0)
        for name, value in (("singles", singles), ("removals", removals), ("additions", additions))
    )
    if isinstance(tiers, (str, bytes)) or not isinstance(tiers, Sequence) or not tiers:
        raise TypeError(f"tiers must be a non-empty sequence of ints >= 1, got {tiers!r}")
    sizes = tuple(
        _checks.check_int(value, f"tiers[{i}]", minimum=1) for i, value in enumerate(tiers)
    )
    return (*counts, sizes)
