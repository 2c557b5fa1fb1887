"""Refinement of adversarial inputs: restore changed features while the row stays adversarial.

An attack such as JSMA changes features greedily and usually changes some that the final
input does not need. :func:`refine` takes any adversarial inputs (from this library or another
one) and, row by row, tries to restore each changed feature to its original value, keeping
every restore after which the row is still adversarial (classified as its target, or, for
untargeted rows, outside its true class). It is the one-pass greedy

.. code-block:: python

    for i in order(changed features of the row):
        trial = current.clone(); trial[i] = original[i]
        if adversarial(model(trial)):
            current = trial

computed with forward passes only (``torch.no_grad``), batched over rows and over the next
``lookahead`` candidates of each row: one batch holds, per row, the prefix trials (restore the
next 1, 2, ... candidates together) and the single trials (restore only the k-th). The
leading run of accepted candidates is read off the prefixes, the leading run of rejected ones
off the singles, so every batch settles at least one decision per row and the result is the
one-pass greedy's, decision for decision.

The orders (:data:`ORDERS`; ties are broken by feature index, so every order is
deterministic):

- ``"margin"`` (the default, the sparsest in our measurements, docs/sparsest.md): a batched
  forward pass first restores each changed feature alone; features are then tried from the
  one whose lone restore leaves the largest adversarial margin (target score minus the best
  other score; untargeted: best other score minus the true class's) to the smallest. It costs
  one extra forward per changed feature.
- ``"magnitude"``: the smallest ``|x_adv - x|`` first.
- ``"index"``: the flattened feature index, ascending.

Guarantees (for every row): a row that is not adversarial is returned unchanged; a row that is
adversarial stays adversarial; every feature of the output equals either ``x_adv``'s or
``x``'s (so L0 never increases, features that were not changed stay untouched, and the output
stays inside any bounds both inputs respect); the caller's tensors are not modified and the
model only ever sees fresh copies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import torch

from . import _checks
from ._short_waits import short_waits_when_busy

#: The orders in which the changed features of a row are tried.
ORDERS = ("margin", "magnitude", "index")
#: The default order, chosen by measurement (``bench.compare_l0 --orders``, docs/sparsest.md).
DEFAULT_ORDER = "margin"
#: Candidates of a row decided per batch, by default.
DEFAULT_LOOKAHEAD = 1
#: The most inputs per forward pass of refine and swap_search on the CPU when no batch_size
#: is given (on a GPU: a whole round at once). Larger batches leave the processor's caches:
#: on the LeNets of the benchmarks, one thread, a forward pass costs about 0.3 ms per input in
#: batches of 16 to 512 and twice that in batches of 2,048, the size of the swap search's
#: forward-ranked rounds (docs/sparsest.md).
CPU_BATCH = 128


@short_waits_when_busy()
def refine(  # noqa: PLR0913 (public, keyword options)
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    x_adv: torch.Tensor,
    *,
    target: Optional[Any] = None,
    true_class: Optional[Any] = None,
    order: str = DEFAULT_ORDER,
    batch_size: Optional[int] = None,
    lookahead: int = DEFAULT_LOOKAHEAD,
    require_eval: bool = True,
) -> torch.Tensor:
    """Restores, row by row, the changed features of ``x_adv`` that the row does not need to
    stay adversarial; returns the refined inputs (a new tensor). See the module docstring for
    the algorithm and its guarantees.

    Args:
        model: a torch.nn.Module in eval mode (or any callable) mapping (n, ...) inputs to
            (n, C) class scores; it gets fresh tensors, never ``x`` or ``x_adv``.
        x: (N, ...) original inputs, floating point, finite.
        x_adv: (N, ...) adversarial inputs, same shape, dtype and device as ``x``, finite.
        target: (N,) int target classes, -1 for untargeted rows; None: every row untargeted.
            A row is adversarial when the model's argmax is its target (target >= 0), or is
            not its true class (target == -1).
        true_class: (N,) int true classes, needed by untargeted rows; None: the model's
            prediction on ``x``.
        order: the order in which a row's changed features are tried (:data:`ORDERS`; ties
            by feature index): ``"margin"`` (default, the sparsest in our measurements),
            ``"magnitude"`` or ``"index"``, described in the module docstring.
        batch_size: the most inputs per forward pass; None: a whole round at once on a GPU,
            :data:`CPU_BATCH` on the CPU.
        lookahead: candidates of a row decided by one batch (>= 1), ``2 * lookahead - 1``
            trials per row. It changes the speed, not the result (up to the model's own
            batch-size dependent rounding). The default, 1, needs the fewest forward passes
            (the fastest on the CPU); larger values make fewer, larger batches.
        require_eval: refuse a torch.nn.Module in training mode.

    Returns:
        (N, ...) tensor, same dtype and device as ``x_adv``: each element is ``x_adv``'s or,
        where restored, ``x``'s.

    Raises:
        TypeError, ValueError: naming the argument, what was expected and what was given.
    """
    _check_model(model, require_eval)
    _check_pair(x, x_adv)
    _checks.check_choice(order, "order", ORDERS)
    batch = _positive_int("batch_size", batch_size, allow_none=True)
    ahead = _positive_int("lookahead", lookahead, allow_none=False)
    with torch.no_grad():
        rows = _Rows.of(model, x, x_adv, (target, true_class), batch)
        if x.shape[0]:
            _refine_rows(
                rows.forward, rows.original, rows.current, rows.targets, rows.true, order, ahead
            )
    return rows.current.reshape(x_adv.shape)


def refine_result(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    result: Any,
    **options: Any,
):
    """:func:`refine` applied to an :class:`jsma_fast.AttackResult` of ``model`` on ``x``.

    Args:
        model: the attacked model.
        x: (N, ...) the inputs the attack was given (``result.source_index`` indexes them).
        result: the attack's result (R rows).
        **options: ``order``, ``batch_size``, ``lookahead``, ``require_eval`` of :func:`refine`.

    Returns:
        A new AttackResult: ``x_adv``, ``l0``, ``l0_fraction`` and ``predicted`` refined,
        every other field copied (a successful row stays successful).
    """

    def restore(original: torch.Tensor) -> torch.Tensor:
        return refine(
            model, original, result.x_adv, target=result.target,
            true_class=result.true_class, **options,
        )  # fmt: skip

    return with_x_adv(model, x, result, restore, options.get("batch_size"))


def with_x_adv(model, x: torch.Tensor, result: Any, change: Callable, batch_size=None):
    """A new AttackResult: ``result`` with ``x_adv = change(original rows)`` and ``l0``,
    ``l0_fraction`` and ``predicted`` recomputed, every other field copied; ``x`` are the
    inputs the attack was given (``result.source_index`` indexes them). ``change`` must keep
    successful rows successful (refine, swap_search)."""
    from .result import AttackResult

    if not isinstance(result, AttackResult):
        raise TypeError(f"result must be a jsma_fast.AttackResult, got {type(result).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (N, ...), got {type(x).__name__}")
    index = result.source_index
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= x.shape[0]):
        raise ValueError(
            f"result.source_index must index the {x.shape[0]} rows of x, got values in "
            f"[{int(index.min())}, {int(index.max())}]: pass the x the attack was given"
        )
    if tuple(x.shape[1:]) != tuple(result.x_adv.shape[1:]):
        raise ValueError(
            f"x must have the sample shape of result.x_adv {tuple(result.x_adv.shape[1:])}, "
            f"got {tuple(x.shape[1:])}"
        )
    original = x.detach()[index.to(x.device)]
    changed = change(original)
    rows = changed.shape[0]
    num_features = max(math.prod(changed.shape[1:]), 1)
    l0 = (changed != original).reshape(rows, -1).sum(dim=1)
    forward = _Forward(model, tuple(changed.shape[1:]), batch_size)
    with torch.no_grad():
        predicted = forward(changed.reshape(rows, -1)).argmax(dim=1) if rows else result.predicted
    return AttackResult(
        x_adv=changed,
        success=result.success.clone(),
        iterations=result.iterations.clone(),
        l0=l0,
        l0_fraction=l0.double() / num_features,
        predicted=predicted.to(result.predicted.dtype),
        target=result.target.clone(),
        true_class=result.true_class.clone(),
        source_index=result.source_index.clone(),
        stop_code=result.stop_code.clone(),
    )


# ---------------------------------------------------------------------------- the steps


@dataclass
class _Rows:
    """What refine and swap_search work on: the flat (n, M) original and current rows (a
    copy, changed in place), the batched forward pass, and the (n,) target and true classes."""

    original: torch.Tensor
    current: torch.Tensor
    forward: "_Forward"
    targets: torch.Tensor
    true: torch.Tensor

    @classmethod
    def of(cls, model, x: torch.Tensor, x_adv: torch.Tensor, labels, batch) -> "_Rows":
        """From checked inputs; ``labels`` is the caller's ``(target, true_class)``."""
        original = x.detach().reshape(x.shape[0], math.prod(x.shape[1:])).clone()
        current = x_adv.detach().reshape(original.shape).clone()
        forward = _Forward(model, tuple(x.shape[1:]), batch)
        targets, true = _labels(forward, original, *labels)
        return cls(original, current, forward, targets, true)


class _Forward:
    """The model on flat (n, M) inputs, in chunks of at most ``batch`` rows (None: all rows
    on a GPU, :data:`CPU_BATCH` on the CPU); the model gets the chunk reshaped to the sample
    shape (a fresh tensor)."""

    def __init__(self, model, sample_shape: Tuple[int, ...], batch: Optional[int]) -> None:
        self.model = model
        self.sample_shape = sample_shape
        self.batch = batch

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        n = flat.shape[0]
        chunk = self.batch or (CPU_BATCH if flat.device.type == "cpu" else max(n, 1))
        parts = []
        for start in range(0, n, chunk):
            part = flat[start : start + chunk]
            out = self.model(part.clone().reshape((part.shape[0],) + self.sample_shape))
            if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != part.shape[0]:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(
                    f"model must map ({part.shape[0]}, ...) inputs to ({part.shape[0]}, C) "
                    f"class scores, got {shape}"
                )
            if not torch.isfinite(out).all():
                raise ValueError("model returned NaN or inf class scores; refine needs finite ones")
            parts.append(out)
        if not parts:
            return flat.new_zeros((0, 0))
        return torch.cat(parts)


def _refine_rows(forward, original, current, targets, true, order: str, ahead: int) -> None:
    """Refines the flat rows ``current`` (n, M) in place."""
    adversarial = _adversarial(forward(current), targets, true)
    changed = (current != original) & adversarial[:, None]
    rows = changed.any(dim=1).nonzero().squeeze(1)
    if rows.numel():
        candidates = _ordered_candidates(
            forward, order, original[rows], current[rows], changed[rows], targets[rows],
            true[rows],
        )  # fmt: skip
        current[rows] = _greedy(
            forward, original[rows], current[rows], candidates, targets[rows], true[rows],
            ahead,
        )  # fmt: skip


def _adversarial(logits: torch.Tensor, target: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    prediction = logits.argmax(dim=1)
    return torch.where(target >= 0, prediction == target, prediction != true)


def _margin(logits: torch.Tensor, target: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Target score minus the best other score (untargeted: best other minus the true
    class's): larger is more adversarial."""
    cls = torch.where(target >= 0, target, true)
    own = logits.gather(1, cls[:, None]).squeeze(1)
    others = logits.scatter(1, cls[:, None], float("-inf")).amax(dim=1)
    return torch.where(target >= 0, own - others, others - own)


def _ordered_candidates(forward, order, original, current, changed, target, true):
    """(n, L) feature indices per row in the order they are tried, padded with -1."""
    n, num_features = changed.shape
    index = torch.arange(num_features, device=changed.device).expand(n, num_features)
    big = torch.iinfo(torch.int64).max
    # Sort by index first, then stably by the key: ties keep the index order.
    counts = changed.sum(dim=1)
    length = int(counts.max())
    by_index = torch.where(changed, index, big).sort(dim=1).values[:, :length]
    valid = by_index != big
    by_index = torch.where(valid, by_index, 0)
    if order == "index":
        return torch.where(valid, by_index, -1)
    if order == "magnitude":
        key = (current - original).abs().gather(1, by_index)
    else:  # margin of each lone restore, larger first
        rows, cols = valid.nonzero(as_tuple=True)
        feats = by_index[rows, cols]
        trials = current[rows].clone()
        trials[torch.arange(rows.numel(), device=rows.device), feats] = original[rows, feats]
        margin = _margin(forward(trials), target[rows], true[rows])
        key = torch.zeros(valid.shape, dtype=margin.dtype, device=valid.device)
        key[rows, cols] = -margin
    key = torch.where(valid, key, torch.full_like(key, float("inf")))
    perm = key.sort(dim=1, stable=True).indices
    ordered = by_index.gather(1, perm)
    return torch.where(valid.gather(1, perm), ordered, -1)


def _greedy(forward, original, current, candidates, target, true, ahead: int) -> torch.Tensor:
    """The one-pass greedy of the module docstring for every row; returns the new rows."""
    current = current.clone()
    n, length = candidates.shape
    counts = (candidates >= 0).sum(dim=1)
    position = torch.zeros(n, dtype=torch.int64, device=current.device)
    active = (position < counts).nonzero().squeeze(1)
    steps = torch.arange(ahead, device=current.device)
    while active.numel():
        a = active.numel()
        cols = position[active, None] + steps[None, :]  # (a, K)
        in_window = cols < counts[active, None]
        window = candidates[active[:, None], cols.clamp(max=length - 1)]
        k = int(in_window.sum(dim=1).max())
        window, in_window = window[:, :k], in_window[:, :k]
        feats = torch.where(in_window, window, 0)
        base = current[active]  # (a, M)
        # one_hot[i, j] marks candidate j of row i; prefix trial j restores candidates 0..j,
        # single trial j (j >= 1) restores candidate j only.
        one_hot = torch.zeros((a, k, base.shape[1]), dtype=torch.bool, device=base.device)
        one_hot.scatter_(2, feats[:, :, None], in_window[:, :, None])
        keep_orig = original[active][:, None, :]
        prefix = torch.where(one_hot.cumsum(dim=1) > 0, keep_orig, base[:, None, :])
        single = torch.where(one_hot[:, 1:], keep_orig, base[:, None, :])
        width = base.shape[1]
        trials = torch.cat([prefix.reshape(a * k, width), single.reshape(a * (k - 1), width)])
        repeat = lambda t, m: t.repeat_interleave(m)  # noqa: E731
        trial_target = torch.cat([repeat(target[active], k), repeat(target[active], k - 1)])
        trial_true = torch.cat([repeat(true[active], k), repeat(true[active], k - 1)])
        adv = _adversarial(forward(trials), trial_target, trial_true)
        prefix_ok = adv[: a * k].reshape(a, k) & in_window
        single_ok = adv[a * k :].reshape(a, k - 1) & in_window[:, 1:]
        window_len = in_window.sum(dim=1)
        # First candidate accepted: the leading run of accepted prefixes (length >= 1) and
        # then one rejection (when the window goes on). State: the longest accepted prefix.
        first = prefix_ok[:, 0]
        accepted_run = prefix_ok.long().cumprod(dim=1).sum(dim=1)
        # First candidate rejected: the leading run of rejected singles, then the first
        # accepted single s (column 0 stands for candidate 0, rejected). State: that single.
        single_ok = torch.cat([in_window[:, :1] & False, single_ok], dim=1)
        any_single = single_ok.any(dim=1)
        s = single_ok.long().argmax(dim=1)
        advance = torch.where(
            first,
            torch.minimum(accepted_run + 1, window_len),
            torch.where(any_single, s + 1, window_len),
        )
        new = base.clone()
        acc_rows = first.nonzero().squeeze(1)
        if acc_rows.numel():
            new[acc_rows] = prefix[acc_rows, accepted_run[acc_rows] - 1]
        rej_rows = (~first & any_single).nonzero().squeeze(1)
        if rej_rows.numel():
            new[rej_rows] = single[rej_rows, s[rej_rows] - 1]
        current[active] = new
        position[active] += advance
        active = active[position[active] < counts[active]]
    return current


# ---------------------------------------------------------------------------- checks


def _labels(forward, original, target, true_class):
    n = original.shape[0]
    device = original.device
    target_t = _class_vector("target", target, n, device, allow_minus_one=True)
    true_t = _class_vector("true_class", true_class, n, device, allow_minus_one=False)
    if target_t is None:
        target_t = torch.full((n,), -1, dtype=torch.int64, device=device)
    if true_t is None:
        true_t = (
            forward(original).argmax(dim=1)
            if n
            else torch.zeros(0, dtype=torch.int64, device=device)
        )
    return target_t, true_t


def _class_vector(name, value, n, device, allow_minus_one) -> Optional[torch.Tensor]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (torch.Tensor, list, tuple, int)):
        if not hasattr(value, "__array__"):
            raise TypeError(
                f"{name} must be None or (N,) int class indices (tensor, array or list), got "
                f"{type(value).__name__}"
            )
    tensor = torch.as_tensor(value)
    if tensor.dtype == torch.bool or tensor.dtype.is_floating_point or tensor.is_complex():
        raise TypeError(f"{name} must hold int class indices, got dtype {tensor.dtype}")
    if tensor.dim() == 0:
        tensor = tensor.expand(n)
    if tuple(tensor.shape) != (n,):
        raise ValueError(
            f"{name} must have shape ({n},) (one per row of x), got {tuple(tensor.shape)}"
        )
    low = -1 if allow_minus_one else 0
    if n and int(tensor.min()) < low:
        expected = ">= 0, or -1 for untargeted rows" if allow_minus_one else ">= 0"
        raise ValueError(f"{name} must be {expected}, got {int(tensor.min())}")
    return tensor.to(device=device, dtype=torch.int64)


def _check_model(model, require_eval: bool) -> None:
    if not callable(model):
        raise TypeError(f"model must be a callable torch.nn.Module, got {type(model).__name__}")
    _checks.check_bool(require_eval, "require_eval")
    if require_eval and isinstance(model, torch.nn.Module):
        training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
        if training:
            raise ValueError(
                "model must be in eval mode (call model.eval()): in training mode layers such "
                f"as BatchNorm and Dropout make rows depend on each other; got modules in "
                f"training mode: {training[:3]}. Pass require_eval=False to refine anyway"
            )


def _check_pair(x, x_adv) -> None:
    for name, value in (("x", x), ("x_adv", x_adv)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{name} must be a torch.Tensor of shape (N, ...), got {type(value).__name__}"
            )
        if value.layout != torch.strided:
            raise TypeError(f"{name} must be a dense (strided) tensor, got layout {value.layout}")
        if value.dim() < 2:
            raise ValueError(
                f"{name} must have shape (N, ...) with at least one feature dim, got "
                f"{tuple(value.shape)}"
            )
        if not value.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if x_adv.shape != x.shape:
        raise ValueError(
            f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}"
        )
    if x_adv.dtype != x.dtype or x_adv.device != x.device:
        raise TypeError(
            f"x_adv must have the dtype and device of x ({x.dtype}, {x.device}), got "
            f"({x_adv.dtype}, {x_adv.device})"
        )
    for name, value in (("x", x), ("x_adv", x_adv)):
        if value.numel() and not torch.isfinite(value).all():
            raise ValueError(f"{name} must be finite, got NaN or inf values")


def _positive_int(name: str, value: Any, allow_none: bool) -> Optional[int]:
    if value is None and allow_none:
        return None
    expected = "None or an int >= 1" if allow_none else "an int >= 1"
    try:
        number = _checks.check_int(value, name)
    except TypeError:
        raise TypeError(
            f"{name} must be {expected}, got {type(value).__name__} {value!r}"
        ) from None
    if number < 1:
        raise ValueError(f"{name} must be {expected}, got {number}")
    return number
