"""The Jacobian-based Saliency Map Attack (Papernot et al., 2016, Algorithms 2 and 3) and its
family of variants (``jsma_fast.variants``).

The attack is configured once and called with a model: ``JSMA(theta=1.0, gamma=0.145)(model,
x, y_target)``. The configuration does not depend on the model, so one attack object serves
several models (e.g. before and after adversarial training), and adapters for other libraries
can bind their own model. It is immutable: :meth:`JSMA.replace` returns a changed copy, so a
configuration that was checked once stays valid.

Every step runs, for the samples still active only: one forward pass (which also tells which
samples are done), one or two vector-Jacobian products (``jsma_fast.derivatives``) for the
samples that go on, and one native search call (``jsma_fast.choice``). Samples leave the
active set as soon as they succeed, run out of budget or of features, or have no qualifying
pair.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch

from . import _checks, ops
from ._short_waits import short_waits_when_busy
from .catalogue import FAMILY, PRESETS
from .choice import POLICIES, SearchSettings, Step
from .derivatives import JACOBIANS, Derivatives, ForwardPass, model_outputs
from .goals import Goal
from .result import BUDGET, EMPTY_DOMAIN, NO_VALID_PAIR, SUCCESS, AttackResult
from .space import (
    THETA_UNITS,
    Bound,
    Normalization,
    Space,
    as_bound,
    check_bounds,
    fit_inside,
    make_space,
    warn_short_steps,
)
from .targets import TargetPlan, plan_targets
from .trace import AttackTrace, maybe_section
from .variants import Variant

SALIENCIES = ("pair", "single")
DOMAIN_RULES = ("used", "saturated")
START_DOMAINS = ("unsaturated", "all")
BUDGET_RULES = ("steps", "features")
_MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed's range


@dataclass(frozen=True, kw_only=True)
class JSMA:
    """Targeted or non-targeted JSMA: changes the features with the largest adversarial
    saliency by ``theta`` until the model outputs the target class (or, non-targeted, any
    class other than the true one).

    Args:
        theta: change applied to each chosen feature per iteration (+1 / -1 in the paper; any
            non-zero magnitude), in ``theta_units``. Its sign selects the increase or decrease
            saliency map; the ``maximal`` variant chooses the direction per step and takes
            theta > 0.
        gamma: maximum fraction of features changed, the paper's Upsilon, in (0, 1].
        variant: a name of :data:`jsma_fast.catalogue.FAMILY` (formulas and sources in
            :mod:`jsma_fast.variants`): ``"jsma"`` (the paper's map, default), ``"jsma_f"``
            (the paper's map on the probabilities), ``"wjsma"`` and ``"tjsma"``
            (probability-weighted maps, the strongest on MNIST), ``"top2"`` (ART's rule: the
            two largest target derivatives), ``"maximal"`` (M-JSMA: both directions per step).
        clip_min, clip_max: valid range of the features: numbers, or arrays broadcastable to
            the inputs' shape (N, ...): per channel (e.g. (C, 1, 1)), per feature (one
            sample's shape) or per row. Every variant, direction, domain rule, TJSMA's distance
            and the outputs use each feature's own bounds.
        theta_units: ``"range"``: theta is a fraction of each feature's range
            ``clip_max - clip_min``, so theta = +1 pushes a feature to its bound on any scale
            ([0, 1], [0, 255], normalised per-channel bounds) and the saliency ranks features
            by the derivative per step; on [0, 1] it equals ``"absolute"``: theta in input
            units (cleverhans, advertorch, ART; their presets keep it). An absolute step that
            cannot reach the bounds within the budget warns (:class:`StepWarning`).
        normalization: ``(mean, std)``: the model expects ``(x - mean) / std`` (per channel,
            along dimension 1) while the attack, its bounds and its outputs stay in the
            inputs' own space, e.g. pixels in [0, 1]; None: the model takes x as it is.
        saliency: ``"pair"`` (the paper's Algorithm 3) or ``"single"`` (one feature per step).
        jacobian: ``"logits"`` (the paper's choice) or ``"probs"`` (softmax outputs; the
            paper's map then uses beta = -alpha exactly, since the probabilities sum to 1);
            None (the default): the variant's own (``"probs"`` for ``jsma_f``, else logits).
        domain_rule: ``"used"``: a feature leaves the search domain once changed (cleverhans,
            advertorch); ``"saturated"``: only once it reaches the bound it is pushed to
            (the paper's Algorithm 2).
        start_domain: ``"unsaturated"``: features already at the bound they would be pushed
            to start outside the domain; ``"all"``: every feature starts inside (advertorch).
            The ``maximal`` variant moves a feature up only below clip_max and down only above
            clip_min, whatever the start domain.
        budget_rule: ``"steps"``: at most ``max_iters`` iterations (the paper's rule);
            ``"features"``: go on while at most ``gamma * M`` distinct features were chosen,
            so the last step may overshoot by one pair (ART's rule).
        method: pair search, ``"auto"`` (fastest exact), ``"exact"`` (exhaustive, bit-for-bit
            ties) or ``"pruned"``; see :func:`jsma_fast.select_pairs`.
        max_iters: iteration budget per sample for ``budget_rule="steps"``; default
            ``floor(M * gamma / 2)`` for pairs and ``floor(M * gamma)`` for single features.
        seed: seed of the ``"random"`` target strategy, in [0, 2**64).
        batch_size: rows attacked together; None for all at once.
        num_threads: CPU threads of the saliency search (default: torch's setting).
        progress: show a progress bar.
        require_eval: refuse a model in training mode (BatchNorm, Dropout make samples
            depend on each other and the attack would be wrong); False skips the check.

    The last four are execution settings: they never change a result, so they take no part
    in equality, hashing or ``repr`` (the key of a resumed run). The configuration is a frozen
    dataclass: assigning or deleting an attribute raises; use :meth:`replace`.

    Shape:
        - x: (N, ...) with every element a feature, inside [clip_min, clip_max].
        - mask (optional, at the call): bool, broadcastable to (N, ...): True where a feature
          may change.
        - y_target: (N,) int class indices, one int, or a strategy: ``"random"``, ``"next"``,
          ``"least_likely"``, ``"all"``, ``"untargeted"`` (see :mod:`jsma_fast.targets`).
        - result.x_adv: (R, ...) with R = N, or N * (C - 1) for ``"all"``.

    Examples:
        >>> attack = JSMA(theta=1.0, gamma=0.145)                # doctest: +SKIP
        >>> result = attack(model, images, "next", y=labels)      # doctest: +SKIP
        >>> result.success.float().mean(), result.l0_fraction.mean()  # doctest: +SKIP
        >>> JSMA(variant="tjsma")(model, images, "all", y=labels)   # the strongest; doctest: +SKIP
        >>> JSMA()(model, images, "untargeted", y=labels)         # NT-JSMA; doctest: +SKIP
        >>> JSMA.preset("art", theta=1.0, gamma=0.1)              # doctest: +SKIP
    """

    theta: float = 1.0
    gamma: float = 0.145
    variant: str = "jsma"
    clip_min: Bound = 0.0
    clip_max: Bound = 1.0
    theta_units: str = "range"
    normalization: Optional[Normalization] = None
    saliency: str = "pair"
    jacobian: Optional[str] = None
    domain_rule: str = "used"
    start_domain: str = "unsaturated"
    budget_rule: str = "steps"
    method: str = "auto"
    max_iters: Optional[int] = None
    seed: int = 0
    batch_size: Optional[int] = field(default=None, compare=False, repr=False)
    num_threads: Optional[int] = field(default=None, compare=False, repr=False)
    progress: bool = field(default=False, compare=False, repr=False)
    require_eval: bool = field(default=True, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, value in _checked(self).items():
            object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> "JSMA":
        """A copy with ``changes`` applied, checked like a new attack. A new ``variant``
        brings its own ``jacobian`` unless one is given or this attack's was not its
        variant's default."""
        unknown = set(changes) - set(self.config())
        if unknown:
            raise TypeError(
                f"replace() got unknown options {sorted(unknown)}; known: {tuple(self.config())}"
            )
        if "variant" in changes and "jacobian" not in changes:
            if self.jacobian == self.spec.default_jacobian():
                changes["jacobian"] = None
        return dataclasses.replace(self, **changes)

    def config(self) -> Dict[str, Any]:
        """The configuration as keyword arguments of :class:`JSMA`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def preset(cls, name: str, **kwargs: Any) -> "JSMA":
        """An attack with the semantics of a published implementation (see
        :data:`jsma_fast.catalogue.PRESETS`): ``"paper"``, ``"cleverhans"``, ``"advertorch"``
        or ``"art"``. Keyword arguments set the other hyperparameters (theta, gamma, ...)."""
        _checks.check_choice(name, "preset", tuple(PRESETS))
        options = PRESETS[name].options
        fixed = set(options) & set(kwargs)
        if fixed:
            raise ValueError(f"preset {name!r} fixes {sorted(fixed)}; use JSMA(...) to set them")
        return cls(**options, **kwargs)

    @property
    def spec(self) -> Variant:
        """The :class:`jsma_fast.variants.Variant` named by ``variant``."""
        return FAMILY[self.variant]

    @property
    def increase(self) -> bool:
        return self.theta > 0

    def budget(self, num_features: int) -> int:
        """Iteration budget for samples of ``num_features`` features (``budget_rule="steps"``;
        for ``"features"`` see :meth:`max_changed_features`)."""
        if self.max_iters is not None:
            return self.max_iters
        per_step = 2 if self.saliency == "pair" else 1
        return int(math.floor(num_features * self.gamma / per_step))

    def max_changed_features(self, num_features: int) -> int:
        """The most features a row can differ in from its original (its largest L0)."""
        per_step = 2 if self.saliency == "pair" else 1
        if self.budget_rule == "features":
            return min(num_features, int(math.floor(num_features * self.gamma)) + per_step)
        return min(num_features, per_step * self.budget(num_features))

    # ------------------------------------------------------------------ the call

    @short_waits_when_busy()
    def __call__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        y_target: Any = "random",
        *,
        y: Optional[Any] = None,
        mask: Optional[Any] = None,
        trace: Optional[AttackTrace] = None,
    ) -> AttackResult:
        """Crafts adversarial samples of ``x`` classified as ``y_target`` by ``model``.

        Args:
            model: a torch.nn.Module in eval mode (or any callable) mapping (N, ...) inputs to
                (N, C) logits; it gets copies, never ``x`` itself.
            x: (N, ...) inputs in [clip_min, clip_max]; not modified.
            y_target: targets, a strategy name, or ``"untargeted"`` (success: any class but
                the true one; rows then have ``target == -1``). See the class docstring.
            y: (N,) true labels, for the strategies and to reject targets equal to them;
                default: the model's predictions on ``x``.
            mask: the search domain the attack may use, bool broadcastable to x's shape
                (N, ...): one sample's shape (shared) or per row. False features never
                change; the domain rules apply inside it. None: every feature.
            trace: an :class:`jsma_fast.trace.AttackTrace` that records each step (rows,
                time per section, optionally the search inputs); None records nothing.
        """
        self._check_model(model)
        self._check_inputs(x)
        space = make_space(self, x, mask)
        sample_shape = tuple(x.shape[1:])
        flat = x.detach().reshape(x.shape[0], math.prod(sample_shape))
        space = fit_inside(self, space, flat, x.shape)
        warn_short_steps(self, space, self.budget(flat.shape[1]))
        with _model_state_kept(model):
            if self.normalization is not None:
                self.normalization.check_channels(x)
                model = self.normalization.module(model)
            return self._attack(model, flat, sample_shape, space, y_target, y, trace)

    def _attack(  # noqa: PLR0913 (the checked arguments of __call__)
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        flat: torch.Tensor,
        sample_shape: Tuple[int, ...],
        space: Space,
        y_target: Any,
        y: Optional[Any],
        trace: Optional[AttackTrace],
    ) -> AttackResult:
        """:meth:`__call__` on checked arguments: ``flat`` (N, M) inputs."""
        num_features = flat.shape[1]
        with torch.no_grad():
            clean_logits = self._batched_logits(model, flat, sample_shape, space)
        targets = plan_targets(y_target, y=y, clean_logits=clean_logits, seed=self.seed)

        original = flat[targets.source_index]
        x_adv, iterations, predicted, stop_code = self._attack_rows(
            model, original, targets, space.rows(targets.source_index), sample_shape, trace
        )
        l0 = (x_adv != original).sum(dim=1)
        rows = original.shape[0]
        return AttackResult(
            x_adv=x_adv.reshape((rows,) + sample_shape),
            success=stop_code == SUCCESS,
            iterations=iterations,
            l0=l0,
            l0_fraction=l0.double() / max(num_features, 1),
            predicted=predicted,
            target=targets.target,
            true_class=targets.true_class,
            source_index=targets.source_index,
            stop_code=stop_code,
        )

    def _attack_rows(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        original: torch.Tensor,
        targets: TargetPlan,
        space: Space,
        sample_shape: Tuple[int, ...],
        trace: Optional[AttackTrace],
    ) -> Tuple[torch.Tensor, ...]:
        """Runs the loop over ``original`` ((rows, M), one row per target, in ``space``) in
        chunks of ``batch_size`` rows; returns ``(x_adv, iterations, predicted, stop_code)``."""
        rows = original.shape[0]
        x_adv = original.clone()
        iterations = torch.zeros(rows, dtype=torch.int64, device=original.device)
        predicted = torch.zeros(rows, dtype=torch.int64, device=original.device)
        stop_code = torch.zeros(rows, dtype=torch.int8, device=original.device)
        chunk = self.batch_size or max(rows, 1)
        bar = self._progress_bar(rows)
        try:
            for start in range(0, rows, chunk):
                part = slice(start, min(start + chunk, rows))
                part_space = space.rows(torch.arange(part.start, part.stop, device=x_adv.device))
                domain = POLICIES[self.spec.directions].start_domain(x_adv[part], self, part_space)
                if part_space.mask is not None:
                    domain &= part_space.mask
                state = _Rows(
                    x=x_adv[part],
                    space=part_space,
                    goal=targets.goal.part(part),
                    domain=domain,
                    used=torch.zeros_like(domain) if self.budget_rule == "features" else None,
                    iterations=iterations[part],
                    predicted=predicted[part],
                    stop_code=stop_code[part],
                )
                _Loop(self, model, sample_shape, bar, trace).run(state)
        finally:
            if bar is not None:
                bar.close()
        return x_adv, iterations, predicted, stop_code

    # ------------------------------------------------------------------ checks

    def _check_model(self, model: Any) -> None:
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                "the attack needs gradients of the model, which torch.inference_mode() "
                "forbids: call it outside that context (torch.no_grad() around it is fine)"
            )
        if not callable(model):
            raise TypeError(f"model must be a callable torch.nn.Module, got {type(model).__name__}")
        if self.require_eval and isinstance(model, torch.nn.Module):
            training = [
                name or type(model).__name__ for name, m in model.named_modules() if m.training
            ]
            if training:
                raise ValueError(
                    "model must be in eval mode (call model.eval()): in training mode layers "
                    "such as BatchNorm and Dropout make samples depend on each other; got "
                    f"modules in training mode: {training[:3]}. require_eval=False attacks the "
                    "model in its training mode (e.g. to keep Dropout on; BatchNorm in training "
                    "mode cannot be attacked), and restores its buffers afterwards"
                )

    def _check_inputs(self, x: Any) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape (N, ...), got {type(x).__name__}")
        if x.layout != torch.strided:
            raise TypeError(
                f"x must be a dense (strided) tensor, got layout {x.layout}; call x.to_dense()"
            )
        if x.device.type == "meta":
            raise TypeError(
                "x must hold data, got a tensor on the meta device (shapes only); create it on "
                "the CPU or a GPU"
            )
        if x.dim() < 2:
            raise ValueError(
                f"x must have shape (N, ...) with at least one feature dim, got {tuple(x.shape)}"
            )
        if not x.dtype.is_floating_point:
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        if x.numel() == 0:
            return
        if not torch.isfinite(x).all():
            raise ValueError("x must be finite, got NaN or inf values")

    # ------------------------------------------------------------------ helpers

    def _batched_logits(self, model, flat: torch.Tensor, sample_shape, space: Space):
        """The model's outputs (N, C) on copies of the clean inputs (the model never sees
        ``x``)."""
        chunk = self.batch_size or max(flat.shape[0], 1)
        if flat.shape[0] == 0:  # no samples: ask the model for its class count on one dummy
            lower = space.lo[:1] if space.lo.shape[0] else flat.new_zeros((1, flat.shape[1]))
            dummy = lower.expand(1, flat.shape[1]).clone()
            return _finite(
                model_outputs(model, dummy, sample_shape)[:0], lambda: "on the clean inputs"
            )
        parts = [
            model_outputs(model, flat[i : i + chunk].clone(), sample_shape)
            for i in range(0, flat.shape[0], chunk)
        ]
        return _finite(torch.cat(parts), lambda: "on the clean inputs")

    def _progress_bar(self, rows: int):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=rows, desc="JSMA", unit="row", dynamic_ncols=True)


def _checked(attack: JSMA) -> Dict[str, Any]:
    """The attack's options, normalised and checked: every error names the option(s)."""
    c = attack.config()
    c["theta"] = _checks.check_number(c["theta"], "theta")
    if c["theta"] == 0 or not math.isfinite(c["theta"]):
        raise ValueError(f"theta must be a finite non-zero number, got {c['theta']!r}")
    c["gamma"] = _checks.check_number(c["gamma"], "gamma")
    if not 0 < c["gamma"] <= 1:
        raise ValueError(f"gamma must be a number in (0, 1], got {c['gamma']!r}")
    for name in ("clip_min", "clip_max"):
        c[name] = as_bound(c[name], name)
    check_bounds(c["clip_min"], c["clip_max"])
    c["normalization"] = Normalization.of(c["normalization"])
    variant = FAMILY[_checks.check_choice(c["variant"], "variant", tuple(FAMILY))]
    if c["jacobian"] is None:
        c["jacobian"] = variant.default_jacobian()
    for name, allowed in (
        ("saliency", SALIENCIES),
        ("jacobian", JACOBIANS),
        ("domain_rule", DOMAIN_RULES),
        ("start_domain", START_DOMAINS),
        ("budget_rule", BUDGET_RULES),
        ("method", ops.PAIR_METHODS),
        ("theta_units", THETA_UNITS),
    ):
        _checks.check_choice(c[name], name, allowed)
    variant.check(theta=c["theta"], saliency=c["saliency"], jacobian=c["jacobian"])
    c["max_iters"] = _checks.check_count(c["max_iters"], "max_iters", 0, 2**62, allow_none=True)
    c["batch_size"] = _checks.check_count(c["batch_size"], "batch_size", 1, 2**62, allow_none=True)
    c["num_threads"] = _checks.check_count(
        c["num_threads"], "num_threads", 1, _checks.MAX_THREADS, allow_none=True
    )
    c["seed"] = _checks.check_count(c["seed"], "seed", 0, _MAX_SEED, allow_none=False)
    for name in ("progress", "require_eval"):
        c[name] = _checks.check_bool(c[name], name)
    if c["budget_rule"] == "features" and c["max_iters"] is not None:
        raise ValueError(
            "budget_rule='features' bounds the distinct features chosen (gamma * M), not the "
            f"iterations: leave max_iters=None, got max_iters={c['max_iters']!r}"
        )
    return c


@contextlib.contextmanager
def _model_state_kept(model: Any) -> Iterator[None]:
    """Runs the attack and gives the caller its model back as it was: a model left in
    training mode (``require_eval=False``) updates BatchNorm's running statistics on every
    forward pass, so its buffers are restored afterwards. A BatchNorm in training mode cannot
    take the single row that an attack ends with: that error says to call ``model.eval()``."""
    training = isinstance(model, torch.nn.Module) and any(m.training for m in model.modules())
    saved = [(b, b.detach().clone()) for b in model.buffers()] if training else []
    try:
        yield
    except ValueError as exc:
        if training and "more than 1 value per channel" in str(exc):
            raise ValueError(
                "model must be in eval mode for this attack: a BatchNorm layer in training "
                "mode normalises over the batch and fails once a single row is left, and its "
                "statistics would change with every step; call model.eval() (its buffers were "
                "restored)"
            ) from exc
        raise
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def _finite(logits: torch.Tensor, where: Callable[[], str]) -> torch.Tensor:
    """``logits``, checked finite; ``where`` (e.g. "at iteration 3") is worked out only for the
    error, so the per-step check costs one reduction."""
    if not torch.isfinite(logits).all():
        rows = (~torch.isfinite(logits)).any(dim=1).nonzero().squeeze(1)
        raise ValueError(
            f"model returned NaN or inf class scores {where()} for {rows.numel()} of "
            f"{logits.shape[0]} rows (first: row {rows[0].item()}); the attack needs finite "
            "outputs to tell success"
        )
    return logits


def _no_nan(derivs: Derivatives) -> Derivatives:
    """NaN derivatives mean a broken model; ranking around them would report a failed attack
    (a robust model) where there is none."""
    for name, value in (("alpha", derivs.alpha), ("beta", derivs.beta)):
        if value is not None and torch.isnan(value).any():
            rows = torch.isnan(value).flatten(1).any(dim=1).nonzero().squeeze(1)
            raise ValueError(
                f"the derivatives of the model are NaN ({name}) for {rows.numel()} of "
                f"{value.shape[0]} rows; the model's backward pass is broken (e.g. torch.where "
                "or division whose unused branch is inf or NaN)"
            )
    return derivs


@dataclass
class _Rows:
    """The rows of one chunk while they are crafted; every tensor has n rows, and the
    per-row outputs are views into the attack's result tensors."""

    x: torch.Tensor  #: (n, M) adversarial inputs, updated in place
    space: Space  #: the rows' bounds, steps and user domain
    goal: Goal  #: what each row is after
    domain: torch.Tensor  #: (n, M) bool, features still in the search domain
    used: Optional[torch.Tensor]  #: (n, M) bool, features ever chosen (budget="features")
    iterations: torch.Tensor  #: (n,) int64
    predicted: torch.Tensor  #: (n,) int64
    stop_code: torch.Tensor  #: (n,) int8


class _Loop:
    """The crafting loop of one attack call, run chunk by chunk. It reads the variant's
    recipe, rule and direction policy, never its name."""

    def __init__(
        self,
        attack: JSMA,
        model,
        sample_shape: Tuple[int, ...],
        bar,
        trace: Optional[AttackTrace],
    ) -> None:
        self.attack = attack
        self.model = model
        self.sample_shape = sample_shape
        self.bar = bar
        self.trace = trace
        variant = attack.spec
        self.recipe = variant.recipe(attack.jacobian)
        self.directions = POLICIES[variant.directions]
        self.per_step = 2 if attack.saliency == "pair" else 1
        self.settings = SearchSettings(
            rule=variant.rule,
            pairs=self.per_step == 2,
            searcher=ops.Searcher.resolve(method=attack.method, num_threads=attack.num_threads),
        )

    def run(self, rows: _Rows) -> None:
        """Crafts every row of ``rows`` in place and fills its per-row outputs."""
        attack, trace, device = self.attack, self.trace, rows.x.device
        budget = attack.budget(rows.x.shape[1])
        active = torch.arange(rows.x.shape[0], device=device)
        while active.numel():
            with maybe_section(trace, "forward", device):
                forward = ForwardPass(
                    self.model, rows.x[active], self.sample_shape, attack.jacobian
                )
            logits = _finite(
                forward.logits, lambda a=active: f"at iteration {int(rows.iterations[a].max())}"
            )
            prediction = logits.argmax(dim=1)
            rows.predicted[active] = prediction
            reason = self._stop_reasons(rows, active, prediction, budget)
            finished = reason >= 0
            rows.stop_code[active[finished]] = reason[finished]
            going = (~finished).nonzero().squeeze(1)  # positions in this pass
            if trace is not None:
                trace.forward_rows.append(active.numel())
                trace.derivative_rows.append(going.numel())
            if going.numel() == 0:
                self._advance(int(finished.sum()))
                break
            rows_going = active[going]
            x_going, space = rows.x[rows_going], rows.space.rows(rows_going)
            classes, lowered = self.directions.classes(rows.goal, rows_going, logits.shape[1])
            with maybe_section(trace, "derivatives", device):
                derivs = self._derivatives(forward, going, x_going, space, classes)
            with maybe_section(trace, "search", device):
                step = Step(
                    derivs,
                    rows.domain[rows_going],
                    x_going,
                    lowered,
                    rows.goal.part(rows_going),
                    attack.increase,
                    space,
                )
                choice = self.directions.choose(step, self.settings, self._recorder())
            stopped = rows_going[~choice.valid]
            rows.stop_code[stopped] = NO_VALID_PAIR
            self._advance(int(finished.sum()) + stopped.numel())
            active = rows_going[choice.valid]
            self._move(rows, active, choice.features[choice.valid], choice.direction[choice.valid])
            rows.iterations[active] += 1

    def _advance(self, count: int) -> None:
        if self.bar is not None and count:
            self.bar.update(count)

    def _recorder(self):
        if self.trace is not None and self.trace.keep_search_inputs:
            return self.trace.searches.append
        return None

    def _stop_reasons(self, rows: _Rows, active, prediction, budget: int) -> torch.Tensor:
        """(a,) int8 stop code per active row, -1 for the rows that go on. Later assignments
        take precedence: success over budget over empty domain."""
        reason = torch.full((active.numel(),), -1, dtype=torch.int8, device=active.device)
        reason[rows.domain[active].sum(dim=1) < self.per_step] = EMPTY_DOMAIN
        if rows.used is None:
            reason[rows.iterations[active] >= budget] = BUDGET
        else:  # ART: go on while the chosen fraction is <= gamma
            fraction = rows.used[active].sum(dim=1).double() / rows.x.shape[1]
            reason[fraction > self.attack.gamma] = BUDGET
        reason[rows.goal.reached(active, prediction)] = SUCCESS
        return reason

    def _derivatives(
        self, forward: ForwardPass, going, x: torch.Tensor, space: Space, classes
    ) -> Derivatives:
        """alpha, beta (k, S, M) of the classes (k, S) searched for the rows at positions
        ``going`` of the forward pass (inputs ``x`` (k, M), bounds in ``space``), per step:
        weighted by the distance to the bound (TJSMA) or by each feature's range (steps in
        range units, per-feature bounds)."""
        weight = space.weight
        if self.recipe.distance_weighted:
            weight = space.hi - x if self.attack.increase else x - space.lo
        return _no_nan(forward.derivatives(going, classes, self.recipe, weight))

    def _move(self, rows: _Rows, active, features: torch.Tensor, direction: torch.Tensor) -> None:
        """Moves the chosen features of the rows ``active`` one step in ``direction`` within
        their bounds and updates the search domain."""
        space, up = rows.space, direction > 0
        for j in range(features.shape[1]):
            feature = features[:, j]
            changed = space.moved(rows.x, active, feature, up)
            rows.x[active, feature] = changed
            if rows.used is not None:
                rows.used[active, feature] = True
            if self.attack.domain_rule == "used":
                rows.domain[active, feature] = False
            else:
                hi, lo = space.at(space.hi, active, feature), space.at(space.lo, active, feature)
                rows.domain[active, feature] = torch.where(up, changed < hi, changed > lo)
