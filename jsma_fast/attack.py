"""The Jacobian-based Saliency Map Attack (Papernot et al., 2016, Algorithms 2 and 3).

The attack is configured once and called with a model: ``JSMA(theta=1.0, gamma=0.145)(model,
x, y_target)``. The configuration does not depend on the model, so one attack object serves
several models (e.g. before and after adversarial training), and adapters for other libraries
can bind their own model.

Every step runs, for the samples still active only: one forward pass (which also tells which
samples are done), two vector-Jacobian products (``jsma_fast.derivatives``) and the native
saliency search (``jsma_fast.ops``). Samples leave the active set as soon as they succeed, run
out of budget or of features, or have no qualifying pair.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch

from . import ops
from .derivatives import JACOBIANS, forward_and_derivatives, model_outputs
from .presets import PRESETS
from .result import BUDGET, EMPTY_DOMAIN, NO_VALID_PAIR, SUCCESS, AttackResult
from .targets import plan_targets

SALIENCIES = ("pair", "single")
DOMAIN_RULES = ("used", "saturated")
START_DOMAINS = ("unsaturated", "all")
METHODS = ("auto", "exact", "pruned")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class JSMA:
    """Targeted JSMA: increases (theta > 0) or decreases (theta < 0) the features with the
    largest adversarial saliency until the model outputs the target class.

    Args:
        theta: change applied to each chosen feature per iteration (+1 / -1 in the paper; any
            non-zero magnitude). Its sign selects the increase or decrease saliency map.
        gamma: maximum fraction of features changed, the paper's Upsilon, in (0, 1].
        clip_min, clip_max: valid range of every feature.
        saliency: ``"pair"`` (the paper's Algorithm 3) or ``"single"`` (one feature per step).
        jacobian: ``"logits"`` (the paper's choice) or ``"probs"`` (softmax outputs).
        domain_rule: ``"used"``: a feature leaves the search domain once changed (cleverhans,
            advertorch); ``"saturated"``: only once it reaches the bound it is pushed to
            (the paper's Algorithm 2).
        start_domain: ``"unsaturated"``: features already at the bound they would be pushed
            to start outside the domain; ``"all"``: every feature starts inside (advertorch).
        method: pair search, ``"auto"`` (fastest exact), ``"exact"`` (exhaustive, bit-for-bit
            ties) or ``"pruned"``; see :func:`jsma_fast.select_pairs`.
        max_iters: iteration budget per sample; default ``floor(M * gamma / 2)`` for pairs
            and ``floor(M * gamma)`` for single features (M features per sample).
        batch_size: rows attacked together; None for all at once.
        seed: seed of the ``"random"`` target strategy.
        num_threads: CPU threads of the saliency search (default: torch's setting).
        progress: show a progress bar.
        require_eval: refuse a model in training mode (BatchNorm, Dropout make samples
            depend on each other and the attack would be wrong); False skips the check.

    Shape:
        - x: (N, ...) with every element a feature, inside [clip_min, clip_max].
        - y_target: (N,) int class indices, one int, or a strategy: ``"random"``, ``"next"``,
          ``"least_likely"``, ``"all"`` (see :mod:`jsma_fast.targets`).
        - result.x_adv: (R, ...) with R = N, or N * (C - 1) for ``"all"``.

    Examples:
        >>> attack = JSMA(theta=1.0, gamma=0.145)          # doctest: +SKIP
        >>> result = attack(model, images, "next", y=labels)  # doctest: +SKIP
        >>> result.success.float().mean(), result.l0_fraction.mean()  # doctest: +SKIP
        >>> JSMA.preset("cleverhans", theta=1.0, gamma=0.1)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        theta: float = 1.0,
        gamma: float = 0.145,
        clip_min: float = 0.0,
        clip_max: float = 1.0,
        saliency: str = "pair",
        jacobian: str = "logits",
        domain_rule: str = "used",
        start_domain: str = "unsaturated",
        method: str = "auto",
        max_iters: Optional[int] = None,
        batch_size: Optional[int] = None,
        seed: int = 0,
        num_threads: Optional[int] = None,
        progress: bool = False,
        require_eval: bool = True,
    ) -> None:
        self.theta = theta
        self.gamma = gamma
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.saliency = saliency
        self.jacobian = jacobian
        self.domain_rule = domain_rule
        self.start_domain = start_domain
        self.method = method
        self.max_iters = max_iters
        self.batch_size = batch_size
        self.seed = seed
        self.num_threads = num_threads
        self.progress = progress
        self.require_eval = require_eval
        self._check_params()

    @classmethod
    def preset(cls, name: str, **kwargs: Any) -> "JSMA":
        """An attack with the semantics of a published implementation (see
        :mod:`jsma_fast.presets`): ``"paper"``, ``"cleverhans"`` or ``"advertorch"``.
        Keyword arguments set the other hyperparameters (theta, gamma, ...)."""
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
        fixed = set(PRESETS[name]) & set(kwargs)
        if fixed:
            raise ValueError(f"preset {name!r} fixes {sorted(fixed)}; use JSMA(...) to set them")
        return cls(**PRESETS[name], **kwargs)

    # ------------------------------------------------------------------ configuration

    def _check_params(self) -> None:
        if not _is_number(self.theta) or self.theta == 0 or not math.isfinite(self.theta):
            raise ValueError(f"theta must be a finite non-zero number, got {self.theta!r}")
        if not _is_number(self.gamma) or not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be a number in (0, 1], got {self.gamma!r}")
        for name in ("clip_min", "clip_max"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not self.clip_min < self.clip_max:
            raise ValueError(
                f"clip_min must be < clip_max, got clip_min={self.clip_min!r}, "
                f"clip_max={self.clip_max!r}"
            )
        for name, allowed in (
            ("saliency", SALIENCIES),
            ("jacobian", JACOBIANS),
            ("domain_rule", DOMAIN_RULES),
            ("start_domain", START_DOMAINS),
            ("method", METHODS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("max_iters", "batch_size", "num_threads"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "max_iters" else 1)
            ):
                bound = ">= 0" if name == "max_iters" else ">= 1"
                raise ValueError(f"{name} must be None or an int {bound}, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")

    def __repr__(self) -> str:
        fields = (
            "theta", "gamma", "clip_min", "clip_max", "saliency", "jacobian", "domain_rule",
            "start_domain", "method", "max_iters", "batch_size", "seed",
        )
        return f"JSMA({', '.join(f'{f}={getattr(self, f)!r}' for f in fields)})"

    @property
    def increase(self) -> bool:
        return self.theta > 0

    def budget(self, num_features: int) -> int:
        """Iteration budget for samples of ``num_features`` features."""
        if self.max_iters is not None:
            return self.max_iters
        per_step = 2 if self.saliency == "pair" else 1
        return int(math.floor(num_features * self.gamma / per_step))

    # ------------------------------------------------------------------ the call

    def __call__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        y_target: Any = "random",
        *,
        y: Optional[Any] = None,
    ) -> AttackResult:
        """Crafts adversarial samples of ``x`` classified as ``y_target`` by ``model``.

        Args:
            model: a torch.nn.Module in eval mode (or any callable) mapping (N, ...) inputs to
                (N, C) logits.
            x: (N, ...) inputs in [clip_min, clip_max]; not modified.
            y_target: targets, or a strategy name (see the class docstring).
            y: (N,) true labels, for the strategies and to reject targets equal to them;
                default: the model's predictions on ``x``.
        """
        self._check_model(model)
        self._check_inputs(x)
        sample_shape = tuple(x.shape[1:])
        flat = x.detach().reshape(x.shape[0], -1)
        with torch.no_grad():
            clean_logits = self._batched_logits(model, flat, sample_shape)
        plan = plan_targets(y_target, y=y, clean_logits=clean_logits, seed=self.seed)

        rows = plan.source_index.numel()
        x_adv = flat[plan.source_index].clone()
        success = torch.zeros(rows, dtype=torch.bool, device=x.device)
        iterations = torch.zeros(rows, dtype=torch.int64, device=x.device)
        predicted = torch.zeros(rows, dtype=torch.int64, device=x.device)
        stop_code = torch.zeros(rows, dtype=torch.int8, device=x.device)
        chunk = self.batch_size or max(rows, 1)
        bar = self._progress_bar(rows)
        for start in range(0, rows, chunk):
            part = slice(start, min(start + chunk, rows))
            self._run(model, x_adv[part], plan.target[part], sample_shape,
                      iterations[part], predicted[part], stop_code[part], bar)
        if bar is not None:
            bar.close()
        success = stop_code == SUCCESS
        l0 = (x_adv != flat[plan.source_index]).sum(dim=1)
        num_features = flat.shape[1]
        return AttackResult(
            x_adv=x_adv.reshape((rows,) + sample_shape),
            success=success,
            iterations=iterations,
            l0=l0,
            l0_fraction=l0.double() / max(num_features, 1),
            predicted=predicted,
            target=plan.target,
            true_class=plan.true_class,
            source_index=plan.source_index,
            stop_code=stop_code,
        )

    # ------------------------------------------------------------------ checks

    def _check_model(self, model: Any) -> None:
        if not callable(model):
            raise TypeError(f"model must be a callable torch.nn.Module, got {type(model).__name__}")
        if self.require_eval and isinstance(model, torch.nn.Module):
            training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
            if training:
                raise ValueError(
                    "model must be in eval mode (call model.eval()): in training mode layers "
                    "such as BatchNorm and Dropout make samples depend on each other; got "
                    f"modules in training mode: {training[:3]}. Pass require_eval=False to "
                    "attack anyway"
                )

    def _check_inputs(self, x: Any) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape (N, ...), got {type(x).__name__}")
        if x.dim() < 2:
            raise ValueError(f"x must have shape (N, ...) with at least one feature dim, got {tuple(x.shape)}")
        if not x.dtype.is_floating_point:
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        if x.numel() == 0:
            return
        lo, hi = x.min().item(), x.max().item()
        if not (math.isfinite(lo) and math.isfinite(hi)) or torch.isnan(x).any():
            raise ValueError("x must be finite, got NaN or inf values")
        if lo < self.clip_min or hi > self.clip_max:
            raise ValueError(
                f"x must lie in [clip_min, clip_max] = [{self.clip_min}, {self.clip_max}], got "
                f"values in [{lo}, {hi}]"
            )

    # ------------------------------------------------------------------ the loop

    def _batched_logits(self, model, flat: torch.Tensor, sample_shape) -> torch.Tensor:
        chunk = self.batch_size or max(flat.shape[0], 1)
        parts = [model_outputs(model, flat[i:i + chunk], sample_shape) for i in range(0, flat.shape[0], chunk)]
        if not parts:  # no samples: ask the model for its class count on one dummy input
            dummy = flat.new_full((1, flat.shape[1]), self.clip_min)
            return model_outputs(model, dummy, sample_shape)[:0]
        return torch.cat(parts)

    def _progress_bar(self, rows: int):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=rows, desc="JSMA", unit="sample", dynamic_ncols=True)

    def _run(
        self,
        model,
        x_adv: torch.Tensor,
        target: torch.Tensor,
        sample_shape,
        iterations: torch.Tensor,
        predicted: torch.Tensor,
        stop_code: torch.Tensor,
        bar,
    ) -> None:
        """Crafts the rows of ``x_adv`` (n, M) in place; fills the per-row outputs."""
        n, m = x_adv.shape
        budget = self.budget(m)
        pair = self.saliency == "pair"
        min_domain = 2 if pair else 1
        bound = self.clip_max if self.increase else self.clip_min
        if self.start_domain == "all":
            domain = torch.ones_like(x_adv, dtype=torch.bool)
        else:
            domain = x_adv < bound if self.increase else x_adv > bound
        mode = "increase" if self.increase else "decrease"
        active = torch.arange(n, device=x_adv.device)

        while active.numel():
            t = target[active]
            reason = torch.full((active.numel(),), -1, dtype=torch.int8, device=x_adv.device)

            def needs_step(logits: torch.Tensor) -> torch.Tensor:
                # Later assignments take precedence: success over budget over empty domain.
                reason[domain[active].sum(dim=1) < min_domain] = EMPTY_DOMAIN
                reason[iterations[active] >= budget] = BUDGET
                reason[logits.argmax(dim=1) == t] = SUCCESS
                return reason < 0

            step = forward_and_derivatives(
                model, x_adv[active], sample_shape, t, needs_step, self.jacobian
            )
            predicted[active] = step.logits.argmax(dim=1)
            finished = reason >= 0
            stop_code[active[finished]] = reason[finished]
            active = active[~finished]
            if active.numel() == 0:
                if bar is not None:
                    bar.update(int(finished.sum()))
                break

            if pair:
                sel = ops.select_pairs(step.alpha, step.beta, domain[active],
                                       mode=mode, method=self.method, num_threads=self.num_threads)
                valid = sel.valid.to(x_adv.device)
                chosen = [sel.p.to(x_adv.device)[valid], sel.q.to(x_adv.device)[valid]]
            else:
                sel = ops.select_features(step.alpha, step.beta, domain[active],
                                          mode=mode, num_threads=self.num_threads)
                valid = sel.valid.to(x_adv.device)
                chosen = [sel.index.to(x_adv.device)[valid]]
            stop_code[active[~valid]] = NO_VALID_PAIR
            if bar is not None:
                bar.update(int(finished.sum()) + int((~valid).sum()))
            active = active[valid]

            for feature in chosen:
                changed = (x_adv[active, feature] + self.theta).clamp(self.clip_min, self.clip_max)
                x_adv[active, feature] = changed
                if self.domain_rule == "used":
                    domain[active, feature] = False
                else:
                    domain[active, feature] = changed < bound if self.increase else changed > bound
            iterations[active] += 1
