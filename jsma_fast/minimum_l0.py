"""The minimum-L0 mode: a small portfolio of JSMA variants and directions on the same rows,
each result refined (:func:`jsma_fast.refine`) and searched
(:func:`jsma_fast.local_search.swap_search`), the sparsest successful one kept per row.

One JSMA run is one greedy path through the input space; another variant or direction often
finds a sparser one for the same row, and refinement removes the changes a path did not need.
:func:`sparsest` runs the members of :data:`PORTFOLIO_UNTARGETED` (or
:data:`PORTFOLIO_TARGETED`) one after the other (each through :class:`jsma_fast.JSMA`, the
native search and the batched loop), refines each member's output, and keeps per row the
successful output with the fewest changed features (the earliest member on ties). A later
member attacks only the rows whose best L0 so far is above ``skip_at``: rows already
adversarial (L0 0) cost one forward pass in the first member and nothing after.

Use it to measure the L0 robustness of a model (how few features an attack needs); for the
paper's algorithm use ``JSMA()``, for a strong attack at a fixed budget ``JSMA(variant=
"tjsma")`` (docs/sparsest.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from . import _checks
from ._short_waits import short_waits_when_busy
from .attack import JSMA
from .local_search import (
    DEFAULT_ADDITIONS,
    DEFAULT_REMOVALS,
    DEFAULT_SINGLES,
    DEFAULT_TIERS,
    RANKINGS,
    _checked_sizes,
    swap_search_result,
)
from .refinement import ORDERS, _positive_int, refine, refine_result, with_x_adv
from .result import AttackResult
from .space import Normalization, as_bound, check_bounds, mask_rows
from .targets import UNTARGETED

#: The members tried on untargeted calls, in order: (name, JSMA options). Chosen by
#: measurement on the demo LeNet (``python -m bench.compare_l0 --portfolio``,
#: docs/sparsest.md): each is the candidate that lowered the mean L0 the most per second of
#: attack, refinement and swap search given the members before it, kept while that gain was
#: at least 0.04 pixel per second on 100 rows (top-2 +1 gained 0.024 and would add half the
#: time).
PORTFOLIO_UNTARGETED: Tuple[Tuple[str, Dict[str, Any]], ...] = (
    ("tjsma+", dict(variant="tjsma", theta=1.0)),
    ("top2-", dict(variant="top2", theta=-1.0)),
)
#: The members tried on targeted calls, chosen the same way. M-JSMA comes first: it is the
#: sparsest single member.
PORTFOLIO_TARGETED: Tuple[Tuple[str, Dict[str, Any]], ...] = (
    ("maximal", dict(variant="maximal", theta=1.0)),
    ("tjsma+", dict(variant="tjsma", theta=1.0)),
    ("tjsma-", dict(variant="tjsma", theta=-1.0)),
)
#: The default fraction of features a member may change (larger than the paper's 14.5%: a
#: row that needs more is not given up by the minimum-L0 mode).
DEFAULT_GAMMA = 0.3
#: Later members skip rows whose best L0 is at most this. Measured with the default
#: portfolio and search (100 untargeted rows, one thread): against 3, the mean L0 stays 8.03
#: on the demo LeNet and 8.93 on the paper-style LeNet and goes 5.14 -> 5.19 on the
#: Fashion-MNIST LeNet, for about 5% less time (docs/sparsest.md).
DEFAULT_SKIP_AT = 4
#: The refinement order of the members' outputs: with the swap search after it, the cheaper
#: ``"magnitude"`` order ends as sparse as ``"margin"`` (docs/sparsest.md).
DEFAULT_REFINE_ORDER = "magnitude"
#: Before the swap search, only the members' outputs with more changed features than this are
#: refined; the shorter ones go to the search as they are. The search ends sparser from an
#: unrefined output (the refinement's greedy restores leave it at the edge of the adversarial
#: region, with few moves left), but a long output costs it a round per feature, where the
#: refinement pays one forward pass. Measured on 100 untargeted rows, one thread, with the
#: default portfolio and search, in multiples of sigma-zero's time at 100 steps: every output
#: refined, mean L0 5.30 on the Fashion-MNIST LeNet (0.90x) and 8.10 on the demo LeNet
#: (0.96x); none, 5.22 (1.13x) and 8.00 (0.96x); above 16, 5.19 (0.98x to 1.04x) and 8.03
#: (0.92x) (docs/sparsest.md).
DEFAULT_REFINE_ABOVE = 16
#: A later member's output is swap-searched only when its (refined) L0 is at most the row's
#: best so far plus this; the others are left as they are (a longer path rarely ends below
#: the best, and costs the search a round per feature). Measured on 100 untargeted rows,
#: one thread, with the default portfolio and search, against searching every output: mean
#: L0 8.93 -> 8.93 on the paper-style LeNet, 8.03 -> 8.06 on the demo LeNet and 5.19 -> 5.25
#: on the Fashion-MNIST LeNet, for 14% to 19% less time (on the next 100 rows: 9.84 -> 9.84,
#: 9.10 -> 9.12, 4.90 -> 4.95, 12% to 23% less; docs/sparsest.md).
DEFAULT_SEARCH_WITHIN = 16
#: Options a member may set; the others are the call's.
MEMBER_OPTIONS = ("variant", "theta", "saliency", "jacobian", "domain_rule", "start_domain")
#: Options of :func:`jsma_fast.local_search.swap_search` that ``search_options`` may set.
SEARCH_OPTIONS = (
    "singles", "removals", "additions", "tiers", "max_rounds", "ranking", "remeasure",
)  # fmt: skip
#: The swap search's options on untargeted calls: its 4 best changed and 8 best unchanged
#: features by the gradient, re-ranked by the measured change of the margin (ranking
#: "forward", each measured once per row until a move touches it), tiers of 4 and 4 moves.
#: Measured on 100 untargeted rows, one thread, against the search's own defaults: mean L0
#: 5.77 -> 5.19 on the Fashion-MNIST LeNet, 8.13 -> 8.03 on the demo LeNet, for about 5% to
#: 10% more time (docs/sparsest.md).
SEARCH_UNTARGETED: Dict[str, Any] = dict(removals=4, additions=8, tiers=(4, 4), ranking="forward")
#: The swap search's options on targeted calls: its 8 best changed and 8 best unchanged
#: features by the gradient, re-ranked by the measured change of the margin (ranking
#: "forward"). Measured on 100 rows towards (y + 1) % 10, in processor time of one thread,
#: each candidate then measured every round: Fashion-MNIST LeNet, mean L0 16.14 with the
#: search's own defaults, 14.50 with tiers (4, 12, 48) (1.45x the time), 12.44 with these
#: (2.3x); demo LeNet 21.62, 21.00 (1.30x), 19.73 (1.9x). Measured once per row (the
#: default since): 12.55 and 20.45, in half the time or less (docs/sparsest.md).
SEARCH_TARGETED: Dict[str, Any] = dict(removals=8, additions=8, ranking="forward")
#: A thorough search, for when time matters less (``search_options=THOROUGH_SEARCH``): 12
#: removal and 12 addition candidates re-ranked by forward passes, tiers up to 48 moves a
#: round.
THOROUGH_SEARCH: Dict[str, Any] = dict(
    tiers=(4, 12, 32), removals=12, additions=12, ranking="forward", remeasure=True
)
#: The untargeted portfolio to go with :data:`THOROUGH_SEARCH`: JSMA +1 added, the sparsest
#: single member on the Fashion-MNIST LeNet. Measured on 100 untargeted rows, against the
#: defaults, in processor time: Fashion-MNIST LeNet 6.27 -> 4.81 (4.7x), demo LeNet 8.19 ->
#: 7.87 (4.8x) (docs/sparsest.md).
PORTFOLIO_THOROUGH: Tuple[Tuple[str, Dict[str, Any]], ...] = (
    *PORTFOLIO_UNTARGETED,
    ("jsma+", dict(variant="jsma", theta=1.0)),
)


@dataclass
class PortfolioRun:
    """What :func:`run_portfolio` did.

    Attributes:
        result: the per-row sparsest successful outputs, an AttackResult of R rows.
        member: (R,) int64, the index in ``names`` of the member whose output each row keeps
            (the first member for rows no member broke).
        names: the members run, in order.
        rows: rows each member attacked.
        seconds: wall time of each member (attack and refinement).
    """

    result: AttackResult
    member: torch.Tensor
    names: List[str] = field(default_factory=list)
    rows: List[int] = field(default_factory=list)
    seconds: List[float] = field(default_factory=list)


def sparsest(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y_target: Any = "untargeted",
    *,
    y: Optional[Any] = None,
    **options: Any,
) -> AttackResult:
    """The sparsest successful adversarial input per row found by the portfolio.

    Args:
        model: a torch.nn.Module in eval mode (or any callable), (N, ...) -> (N, C) scores.
        x: (N, ...) inputs in [clip_min, clip_max]; not modified.
        y_target: ``"untargeted"`` (default: success is any class but the true one), or any
            targets :class:`jsma_fast.JSMA` takes ((N,) classes, ``"next"``, ``"all"``, ...).
        y: (N,) true labels; default: the model's predictions on ``x``.
        **options: see :func:`run_portfolio`.

    Returns:
        An AttackResult (R rows, as ``JSMA(...)(model, x, y_target, y=y)`` would give) whose
        ``x_adv``, ``l0``, ``l0_fraction``, ``predicted``, ``success``, ``iterations`` and
        ``stop_code`` are those of the member kept for each row.
    """
    return run_portfolio(model, x, y_target, y=y, **options).result


@short_waits_when_busy()
def run_portfolio(  # noqa: PLR0913 (public, keyword options)
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y_target: Any = "untargeted",
    *,
    y: Optional[Any] = None,
    portfolio: Optional[Sequence[Tuple[str, Dict[str, Any]]]] = None,
    members: Optional[int] = None,
    max_seconds: Optional[float] = None,
    skip_at: int = DEFAULT_SKIP_AT,
    gamma: float = DEFAULT_GAMMA,
    clip_min: Any = 0.0,
    clip_max: Any = 1.0,
    mask: Optional[Any] = None,
    refine_order: str = DEFAULT_REFINE_ORDER,
    refine_above: int = DEFAULT_REFINE_ABOVE,
    search: bool = True,
    search_options: Optional[Dict[str, Any]] = None,
    search_within: Optional[int] = DEFAULT_SEARCH_WITHIN,
    batch_size: Optional[int] = None,
    num_threads: Optional[int] = None,
) -> PortfolioRun:
    """:func:`sparsest` with its details.

    Args:
        model, x, y_target, y: as :func:`sparsest`.
        portfolio: (name, options) pairs, each options a dict of :data:`MEMBER_OPTIONS`
            (e.g. ``("tjsma-", dict(variant="tjsma", theta=-1.0))``); default
            :data:`PORTFOLIO_UNTARGETED` when ``y_target == "untargeted"``, else
            :data:`PORTFOLIO_TARGETED`.
        members: run only the first ``members`` members (a deterministic effort budget).
        max_seconds: start no member after this many seconds (the first always runs); the
            rows' results then depend on the machine's speed.
        skip_at: a member after the first attacks only the rows whose best L0 so far is above
            this (rows at L0 0 are always skipped).
        gamma, clip_min, clip_max, batch_size, num_threads: :class:`jsma_fast.JSMA`'s, for
            every member (bounds: numbers or arrays broadcastable to x's shape);
            ``batch_size`` also bounds the inputs per forward pass of the refinement and the
            swap search (None: :data:`jsma_fast.refinement.CPU_BATCH` on the CPU, a whole
            round on a GPU).
        mask: the features that may change, bool broadcastable to x's shape (the attack's
            ``mask``); kept by every member and by the swap search.
        refine_order: the ``order`` of :func:`jsma_fast.refine` (default
            :data:`DEFAULT_REFINE_ORDER`).
        refine_above: with ``search``, refine only the members' outputs with more changed
            features than this (>= 0; 0: every one; default :data:`DEFAULT_REFINE_ABOVE`);
            without the search every output is refined.
        search: follow each member's refinement with
            :func:`jsma_fast.local_search.swap_search` (within ``[clip_min, clip_max]``).
        search_options: the swap search's :data:`SEARCH_OPTIONS` (more candidate moves per
            round: sparser and slower; e.g. :data:`THOROUGH_SEARCH`); default
            :data:`SEARCH_UNTARGETED` when ``y_target == "untargeted"``, else
            :data:`SEARCH_TARGETED`.
        search_within: with ``search``, a member after the first searches only the rows
            whose refined output has at most this many more changed features than the row's
            best so far (>= 0; default :data:`DEFAULT_SEARCH_WITHIN`); None: every row (the
            thorough setting). The others keep their unsearched output, never sparser than
            the best.

    Returns a :class:`PortfolioRun`.
    """
    chosen = _checked_portfolio(_default(portfolio, y_target), members)
    max_seconds, skip_at = _checked_budget(max_seconds, skip_at)
    _checks.check_choice(refine_order, "refine_order", ORDERS)
    refine_above = _checks.check_int(refine_above, "refine_above", minimum=0)
    _checks.check_bool(search, "search")
    search_options = _checked_search_options(_default_search(search_options, y_target))
    search_within = _checked_within(search_within)
    shared = dict(gamma=gamma, clip_min=clip_min, clip_max=clip_max)
    shared.update(batch_size=batch_size, num_threads=num_threads)
    attacks = [(name, JSMA(**shared, **options)) for name, options in chosen]  # checks them
    _check_shared_bounds(attacks[0][1], x)
    rows_mask = None if mask is None else mask_rows(mask, x).reshape((-1,) + tuple(x.shape[1:]))
    refined = _Polish(
        order=refine_order, refine_above=refine_above, search=search,
        bounds=(clip_min, clip_max), batch_size=batch_size, options=search_options,
        within=search_within,
    )  # fmt: skip
    start = time.perf_counter()
    run: Optional[PortfolioRun] = None
    for index, (name, attack) in enumerate(attacks):
        if index and max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
        began = time.perf_counter()
        if run is None:
            result = refined(model, x, attack(model, x, y_target, y=y, mask=mask), mask)
            member = torch.zeros(len(result), dtype=torch.int64, device=result.l0.device)
            run = PortfolioRun(result=result, member=member)
            attacked = len(result)
        else:
            attacked = _improve(run, index, (model, x, rows_mask), attack, skip_at, refined)
        run.names.append(name)
        run.rows.append(attacked)
        run.seconds.append(time.perf_counter() - began)
    return run  # type: ignore[return-value]  (the first member always runs)


_NEVER = torch.iinfo(torch.int64).max
#: The swap search's own defaults of the sizes ``search_options`` may set.
SEARCH_DEFAULTS = dict(
    singles=DEFAULT_SINGLES, removals=DEFAULT_REMOVALS, additions=DEFAULT_ADDITIONS,
    tiers=DEFAULT_TIERS,
)  # fmt: skip


@dataclass(frozen=True)
class _Polish:
    """What follows each member's attack: :func:`jsma_fast.refine_result` (with ``search``,
    on the rows with more than ``refine_above`` changed features), then (``search``)
    :func:`jsma_fast.local_search.swap_search_result` with ``options`` within ``bounds``, on
    the rows whose refined L0 is at most their best so far plus ``within`` (None: every
    row)."""

    order: str
    refine_above: int
    search: bool
    bounds: Tuple[Any, Any]
    batch_size: Optional[int]
    options: Dict[str, Any]
    within: Optional[int] = None

    def __call__(
        self, model, x: torch.Tensor, result: AttackResult, mask=None, best=None
    ) -> AttackResult:
        """``result`` refined and searched; ``best`` holds the (R,) best L0 of each row so far
        (:data:`_NEVER` where none), None for the first member."""
        if not self.search:
            return refine_result(model, x, result, order=self.order, batch_size=self.batch_size)
        result = self._refine_long(model, x, result)
        if best is None or self.within is None:
            return self._search(model, x, result, mask)
        within = min(self.within, _NEVER)
        limit = best.clamp(max=_NEVER - within) + within  # no overflow
        near = (result.l0 <= limit).nonzero().squeeze(1)
        if near.numel() == len(result):
            return self._search(model, x, result, mask)
        if near.numel():
            searched = self._search(model, x, _rows_of(result, near), mask)
            _take(result, searched, near, torch.ones_like(near, dtype=torch.bool))
        return result

    def _search(self, model, x: torch.Tensor, result: AttackResult, mask) -> AttackResult:
        low, high = self.bounds
        return swap_search_result(
            model, x, result, clip_min=low, clip_max=high, mask=mask,
            batch_size=self.batch_size, **self.options,
        )  # fmt: skip

    def _refine_long(self, model, x: torch.Tensor, result: AttackResult) -> AttackResult:
        """``result`` with its rows of more than ``refine_above`` changed features refined."""
        long = (result.l0 > self.refine_above).nonzero().squeeze(1)
        if long.numel() == 0:
            return result

        def restore(original: torch.Tensor) -> torch.Tensor:
            out = result.x_adv.clone()
            out[long] = refine(
                model, original[long], result.x_adv[long], target=result.target[long],
                true_class=result.true_class[long], order=self.order,
                batch_size=self.batch_size,
            )  # fmt: skip
            return out

        return with_x_adv(model, x, result, restore, self.batch_size)


def _improve(run: PortfolioRun, index: int, inputs, attack, skip_at: int, refined) -> int:
    """Runs ``attack`` (member ``index``) on the rows of ``run`` whose best L0 is above
    ``skip_at`` (or that no member broke yet), refines it, and keeps its sparser successes;
    ``inputs`` are the model, x and the mask as (1 or N, ...) bool (or None). Returns the
    number of rows attacked."""
    model, x, mask = inputs
    best = run.result
    best_l0 = torch.where(best.success, best.l0, _NEVER)
    rows = (best_l0 > skip_at).nonzero().squeeze(1)
    if rows.numel() == 0:
        return 0
    source = best.source_index[rows]
    target = best.target[rows]
    # JSMA's rows are all targeted or all untargeted (target -1).
    y_target: Any = target if bool((target >= 0).all()) else "untargeted"
    x_rows = x[source.to(x.device)]
    if mask is not None and mask.shape[0] > 1:
        mask = mask[source.to(mask.device)]
    result = attack(model, x_rows, y_target, y=best.true_class[rows], mask=mask)
    result = refined(model, x_rows, result, mask, best=best_l0[rows])
    better = result.success & (result.l0 < best_l0[rows])
    _take(best, result, rows, better)
    run.member[rows[better]] = index
    return rows.numel()


def _rows_of(result: AttackResult, rows: torch.Tensor) -> AttackResult:
    """The rows ``rows`` of ``result`` (new tensors; ``source_index`` still indexes the same
    x)."""
    return AttackResult(**{f.name: getattr(result, f.name)[rows] for f in fields(AttackResult)})


def _take(best: AttackResult, result: AttackResult, rows, better) -> None:
    """Copies the rows ``better`` of ``result`` into the rows ``rows[better]`` of ``best``."""
    where = rows[better]
    for name in ("x_adv", "success", "iterations", "l0", "l0_fraction", "predicted", "stop_code"):
        getattr(best, name)[where] = getattr(result, name)[better]


def _check_shared_bounds(attack: JSMA, x: Any) -> None:
    """Members attack subsets of the rows: bounds must be shared by every row."""
    for name in ("clip_min", "clip_max"):
        shape = getattr(getattr(attack, name), "shape", ())
        if isinstance(x, torch.Tensor) and len(shape) == x.dim() and shape[0] != 1:
            raise ValueError(
                f"{name} must be a number or an array per channel or per feature (broadcastable "
                f"to one sample's shape {tuple(x.shape[1:])}): the portfolio's members attack "
                f"subsets of the rows; got per-row bounds of shape {shape}"
            )


def _untargeted(y_target: Any) -> bool:
    return isinstance(y_target, str) and y_target == UNTARGETED


def _default(portfolio: Any, y_target: Any) -> Any:
    if portfolio is not None:
        return portfolio
    return PORTFOLIO_UNTARGETED if _untargeted(y_target) else PORTFOLIO_TARGETED


def _default_search(options: Any, y_target: Any) -> Any:
    if options is not None:
        return options
    return SEARCH_UNTARGETED if _untargeted(y_target) else SEARCH_TARGETED


def _checked_budget(max_seconds: Any, skip_at: Any) -> Tuple[Optional[float], int]:
    if max_seconds is not None:
        max_seconds = _checks.check_real(max_seconds, "max_seconds")
        if max_seconds < 0:
            raise ValueError(f"max_seconds must be None or a number >= 0, got {max_seconds}")
    skip_at = _checks.check_int(skip_at, "skip_at")
    if skip_at < 0:
        raise ValueError(f"skip_at must be an int >= 0, got {skip_at}")
    return max_seconds, skip_at


def _checked_within(within: Any) -> Optional[int]:
    if within is None:
        return None
    return _checks.check_int(within, "search_within", minimum=0)


def _checked_search_options(options: Any) -> Dict[str, Any]:
    """``search_options`` as a dict, its keys and values checked as swap_search would."""
    if not isinstance(options, dict):
        raise TypeError(
            f"search_options must be None or a dict of {SEARCH_OPTIONS}, got "
            f"{type(options).__name__}"
        )
    unknown = sorted(set(options) - set(SEARCH_OPTIONS))
    if unknown:
        raise ValueError(f"search_options may set only {SEARCH_OPTIONS}, got {unknown}")
    sizes = {name: options.get(name, SEARCH_DEFAULTS[name]) for name in SEARCH_DEFAULTS}
    _checked_sizes(**sizes)
    _positive_int("max_rounds", options.get("max_rounds"), allow_none=True)
    _checks.check_choice(options.get("ranking", "gradient"), "ranking", RANKINGS)
    _checks.check_bool(options.get("remeasure", False), "remeasure")
    return dict(options)


def _checked_portfolio(portfolio: Any, members: Any) -> List[Tuple[str, Dict[str, Any]]]:
    if isinstance(portfolio, (str, bytes)) or not isinstance(portfolio, Sequence):
        raise TypeError(
            f"portfolio must be a sequence of (name, options) pairs, got {type(portfolio).__name__}"
        )
    if not portfolio:
        raise ValueError("portfolio must hold at least one (name, options) pair, got none")
    out = []
    for i, item in enumerate(portfolio):
        if (
            not isinstance(item, (tuple, list))
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], dict)
        ):
            raise TypeError(f"portfolio[{i}] must be a (name, options dict) pair, got {item!r}")
        unknown = sorted(set(item[1]) - set(MEMBER_OPTIONS))
        if unknown:
            raise ValueError(
                f"portfolio[{i}] ({item[0]!r}) sets {unknown}; a member may set only "
                f"{MEMBER_OPTIONS} (the others are sparsest()'s arguments)"
            )
        out.append((item[0], dict(item[1])))
    if members is not None:
        count = _checks.check_int(members, "members")
        if count < 1:
            raise ValueError(f"members must be None or an int >= 1, got {count}")
        out = out[:count]
    return out


# ------------------------------------------------------------------ the mode as an attack value

#: A portfolio member in hashable form: its name and its sorted (option, value) pairs.
Member = Tuple[str, Tuple[Tuple[str, Any], ...]]


@dataclass(repr=False)
class SparsestResult(AttackResult):
    """The AttackResult of :class:`Sparsest`, with the member each row kept.

    Attributes:
        member: (R,) int64, the index in ``names`` of the member whose output each row keeps
            (the first member for rows no member broke).
        names: the members run, in order.
    """

    member: torch.Tensor
    names: Tuple[str, ...] = ()

    def extra_columns(self) -> Dict[str, torch.Tensor]:
        """Per-row columns beyond AttackResult's, for :func:`jsma_fast.runner.attack_dataset`
        (stored in ``results.npz``): ``member``."""
        return {"member": self.member}


@dataclass(frozen=True)
class Sparsest:
    """The minimum-L0 mode as a configured attack: ``Sparsest(...)(model, x, y_target, y=y,
    mask=mask)`` is :func:`sparsest` with these options, returning a :class:`SparsestResult`.

    Like :class:`jsma_fast.JSMA` it is a frozen, hashable value whose ``repr`` names every
    option that changes a result (the key of a resumed :func:`jsma_fast.runner.attack_dataset`
    run, and what ``jsma-fast attack --sparsest`` runs).

    Args:
        gamma: each member's budget, the fraction of features it may change, in (0, 1].
        clip_min, clip_max: the features' bounds: numbers, or arrays per channel or per
            feature (broadcastable to one sample's shape; not per row: members attack subsets
            of the rows).
        normalization: ``(mean, std)``: the model takes ``(x - mean) / std``; the attack, its
            bounds and outputs stay in the inputs' own space (as :class:`jsma_fast.JSMA`).
        untargeted, targeted: the portfolios of untargeted calls and of every other call,
            (name, options) pairs as :func:`run_portfolio`'s ``portfolio`` (default:
            :data:`PORTFOLIO_UNTARGETED` and :data:`PORTFOLIO_TARGETED`).
        members, max_seconds, skip_at, refine_order, refine_above, search, search_options,
            search_within: as :func:`run_portfolio`; ``max_seconds`` counts from the start
            of each call (each batch of a data-set run) and makes the result depend on the
            machine's speed; ``search_options`` (a dict, held as sorted pairs) applies to
            every call, None leaves each call kind its default.
        batch_size, num_threads: execution settings (no part of equality, hashing or repr).

    :meth:`thorough` gives the slower, sparser setting (:data:`PORTFOLIO_THOROUGH`,
    :data:`THOROUGH_SEARCH`).
    """

    gamma: float = DEFAULT_GAMMA
    clip_min: Any = 0.0
    clip_max: Any = 1.0
    normalization: Optional[Any] = None
    untargeted: Tuple[Member, ...] = field(default_factory=lambda: PORTFOLIO_UNTARGETED)
    targeted: Tuple[Member, ...] = field(default_factory=lambda: PORTFOLIO_TARGETED)
    members: Optional[int] = None
    skip_at: int = DEFAULT_SKIP_AT
    refine_order: str = DEFAULT_REFINE_ORDER
    refine_above: int = DEFAULT_REFINE_ABOVE
    search: bool = True
    search_options: Optional[Any] = None
    search_within: Optional[int] = DEFAULT_SEARCH_WITHIN
    max_seconds: Optional[float] = None
    batch_size: Optional[int] = field(default=None, compare=False, repr=False)
    num_threads: Optional[int] = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, value in _checked_sparsest(self).items():
            object.__setattr__(self, name, value)

    @classmethod
    def thorough(cls, **options: Any) -> "Sparsest":
        """The thorough setting: JSMA +1 added to the untargeted portfolio and the larger,
        forward-ranked swap search on every call and every member's output (about 3 times
        the time of the default for the sparsest outputs, docs/sparsest.md); ``options`` as
        the class's."""
        thorough = dict(
            untargeted=PORTFOLIO_THOROUGH, search_options=THOROUGH_SEARCH, search_within=None
        )
        return cls(**{**thorough, **options})

    def _search_options(self) -> Optional[Dict[str, Any]]:
        """The search options held as sorted pairs, as the dict ``run_portfolio`` takes."""
        return None if self.search_options is None else dict(self.search_options)

    def portfolio(self, y_target: Any) -> List[Tuple[str, Dict[str, Any]]]:
        """The members a call with ``y_target`` runs, in order (``members`` of them at most),
        as (name, options) pairs."""
        chosen = self.untargeted if _untargeted(y_target) else self.targeted
        return [(name, dict(options)) for name, options in chosen][: self.members]

    def attacks(self, y_target: Any) -> List[Tuple[str, JSMA]]:
        """The JSMA of each member a call with ``y_target`` runs."""
        shared = dict(gamma=self.gamma, clip_min=self.clip_min, clip_max=self.clip_max)
        shared.update(normalization=self.normalization)
        return [(name, JSMA(**shared, **options)) for name, options in self.portfolio(y_target)]

    def describe(self, targets: Any) -> Dict[str, Any]:
        """What a report says of this mode for a run with ``targets`` (JSON values): its name,
        the members run (names and options) and the portfolio's settings."""
        return {
            "name": "sparsest",
            "members": [
                {"name": name, "options": options} for name, options in self.portfolio(targets)
            ],
            "gamma": self.gamma,
            "skip_at": self.skip_at,
            "refine_order": self.refine_order,
            "refine_above": self.refine_above,
            "search": self.search,
            "search_options": self._search_options(),
            "search_within": self.search_within,
            "max_seconds": self.max_seconds,
        }

    def __call__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        y_target: Any = "untargeted",
        *,
        y: Optional[Any] = None,
        mask: Optional[Any] = None,
    ) -> SparsestResult:
        """:func:`sparsest` with this configuration.

        Args:
            model, x, y_target, y: as :func:`sparsest`.
            mask: the features that may change, bool broadcastable to x's shape (N, ...).

        Returns:
            a :class:`SparsestResult` (R rows, as ``JSMA(...)(model, x, y_target, y=y)``).
        """
        if self.normalization is not None:  # members attack the inputs' own space
            model = self.normalization.module(model)
        run = run_portfolio(
            model,
            x,
            y_target,
            y=y,
            portfolio=self.portfolio(y_target),
            max_seconds=self.max_seconds,
            skip_at=self.skip_at,
            gamma=self.gamma,
            clip_min=self.clip_min,
            clip_max=self.clip_max,
            mask=mask,
            refine_order=self.refine_order,
            refine_above=self.refine_above,
            search=self.search,
            search_options=self._search_options(),
            search_within=self.search_within,
            batch_size=self.batch_size,
            num_threads=self.num_threads,
        )
        kept = {f.name: getattr(run.result, f.name) for f in fields(AttackResult)}
        return SparsestResult(**kept, member=run.member, names=tuple(run.names))


def _frozen(portfolio: Any, name: str) -> Tuple[Member, ...]:
    """A portfolio (of options dicts, or already frozen), checked, as hashable (name, sorted
    options) pairs."""
    if isinstance(portfolio, (tuple, list)):
        portfolio = [_thawed(item) for item in portfolio]
    try:
        checked = _checked_portfolio(portfolio, None)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    return tuple((member, tuple(sorted(options.items()))) for member, options in checked)


def _thawed(item: Any) -> Any:
    """A frozen member (name, ((option, value), ...)) as (name, options dict); else ``item``."""
    if (
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[1], tuple)
        and all(isinstance(pair, tuple) and len(pair) == 2 for pair in item[1])
    ):
        return (item[0], dict(item[1]))
    return item


def _checked_sparsest(attack: Sparsest) -> Dict[str, Any]:
    """The options of a :class:`Sparsest`, normalised and checked (errors name the option)."""
    c = {f.name: getattr(attack, f.name) for f in fields(attack)}
    c["gamma"] = _checks.check_number(c["gamma"], "gamma")
    if not 0 < c["gamma"] <= 1:
        raise ValueError(f"gamma must be a number in (0, 1], got {c['gamma']!r}")
    for name in ("clip_min", "clip_max"):
        c[name] = as_bound(c[name], name)
    check_bounds(c["clip_min"], c["clip_max"])
    c["normalization"] = Normalization.of(c["normalization"])
    for name in ("untargeted", "targeted"):
        c[name] = _frozen(c[name], name)
    c["members"] = _checks.check_count(c["members"], "members", 1, 2**62, allow_none=True)
    c["max_seconds"], c["skip_at"] = _checked_budget(c["max_seconds"], c["skip_at"])
    _checks.check_choice(c["refine_order"], "refine_order", ORDERS)
    c["refine_above"] = _checks.check_int(c["refine_above"], "refine_above", minimum=0)
    c["search"] = _checks.check_bool(c["search"], "search")
    if c["search_options"] is not None:
        checked = _checked_search_options(c["search_options"])
        c["search_options"] = tuple(sorted((k, _hashable(v)) for k, v in checked.items()))
    c["search_within"] = _checked_within(c["search_within"])
    c["batch_size"] = _checks.check_count(c["batch_size"], "batch_size", 1, 2**62, allow_none=True)
    c["num_threads"] = _checks.check_count(
        c["num_threads"], "num_threads", 1, _checks.MAX_THREADS, allow_none=True
    )
    for kind in ("untargeted", "targeted"):  # each member a valid JSMA with these options
        for member, options in c[kind]:
            try:
                JSMA(gamma=c["gamma"], **dict(options))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{kind} member {member!r}: {exc}") from None
    return c


def _hashable(value: Any) -> Any:
    """A search option's value as a hashable one (a list of tiers as a tuple)."""
    return tuple(value) if isinstance(value, list) else value
