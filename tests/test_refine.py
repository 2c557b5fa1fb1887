"""jsma_fast.refine against a plain one-row reference, its guarantees and its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import NUM_CLASSES, SAMPLE_SHAPE, dyadic_inputs, dyadic_model, generic_model

from jsma_fast import JSMA
from jsma_fast.refinement import ORDERS, refine, refine_result

M = math.prod(SAMPLE_SHAPE)


# ---------------------------------------------------------------------------- the reference


def _prediction(model, row: torch.Tensor) -> tuple[int, list]:
    """The model's class for one flat row (first of equal maxima) and its scores."""
    with torch.no_grad():
        scores = model(row.reshape((1,) + SAMPLE_SHAPE))[0].tolist()
    best = 0
    for c in range(len(scores)):
        if scores[c] > scores[best]:
            best = c
    return best, scores


def _is_adversarial(model, row, target: int, true: int) -> bool:
    predicted, _ = _prediction(model, row)
    return predicted == target if target >= 0 else predicted != true


def _margin(model, row, target: int, true: int) -> float:
    _, scores = _prediction(model, row)
    cls = target if target >= 0 else true
    others = max(s for c, s in enumerate(scores) if c != cls)
    return scores[cls] - others if target >= 0 else others - scores[cls]


def reference_refine(model, x, x_adv, target, true, order: str) -> torch.Tensor:
    """One row at a time, one forward per trial: try each changed feature in ``order`` and
    keep its restore when the row stays adversarial."""
    out = []
    for r in range(x.shape[0]):
        original = x[r].reshape(-1)
        current = x_adv[r].reshape(-1).clone()
        t, c = int(target[r]), int(true[r])
        if not _is_adversarial(model, current, t, c):
            out.append(current)
            continue
        changed = [i for i in range(M) if current[i] != original[i]]
        if order == "index":
            keys = {i: 0.0 for i in changed}
        elif order == "magnitude":
            keys = {i: abs(float(current[i]) - float(original[i])) for i in changed}
        else:
            keys = {}
            for i in changed:
                trial = current.clone()
                trial[i] = original[i]
                keys[i] = -_margin(model, trial, t, c)
        for i in sorted(changed, key=lambda i: (keys[i], i)):
            trial = current.clone()
            trial[i] = original[i]
            if _is_adversarial(model, trial, t, c):
                current = trial
        out.append(current)
    return torch.stack(out).reshape(x_adv.shape)


# ---------------------------------------------------------------------------- inputs


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31))


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
    # Half the rows aim at their current class (adversarial when it is not the true one),
    # the others at a random class (often not reached: those rows must stay as they are).
    random = torch.from_numpy(rng.integers(0, NUM_CLASSES, size=x.shape[0]))
    pick = torch.from_numpy(rng.random(x.shape[0]) < 0.5)
    return torch.where(pick, now, random), true


# ---------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("targeted", [False, True])
def test_equals_the_one_row_reference(rng, order, targeted):
    for _ in range(4):
        model = dyadic_model(_seed(rng))
        x = dyadic_inputs(12, _seed(rng))
        x_adv = _perturbed(rng, x, max_changed=M)
        target, true = _labels(model, x, x_adv, rng, targeted)
        want = reference_refine(model, x, x_adv, target, true, order)
        got = refine(model, x, x_adv, target=target, true_class=true, order=order)
        assert torch.equal(got, want)
        # The window size and the forward batch size change nothing.
        for lookahead, batch_size in ((1, None), (3, 5), (64, 1)):
            again = refine(
                model, x, x_adv, target=target, true_class=true, order=order,
                lookahead=lookahead, batch_size=batch_size,
            )  # fmt: skip
            assert torch.equal(again, want), (lookahead, batch_size)


@pytest.mark.parametrize("search", [False, True])
def test_cpu_forward_passes_come_in_chunks_of_cpu_batch(rng, monkeypatch, search):
    """Without batch_size, no forward pass on the CPU holds more than CPU_BATCH inputs, and
    the result is the one of a whole round at once."""
    from jsma_fast import refinement
    from jsma_fast.local_search import swap_search

    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(12, _seed(rng))
    x_adv = _perturbed(rng, x, max_changed=M)
    target, true = _labels(model, x, x_adv, rng, targeted=False)
    sizes = []

    def counted(inputs):
        sizes.append(inputs.shape[0])
        return model(inputs)

    run = swap_search if search else refine
    whole = run(model, x, x_adv, target=target, true_class=true, batch_size=10**6)
    monkeypatch.setattr(refinement, "CPU_BATCH", 5)
    got = run(counted, x, x_adv, target=target, true_class=true, require_eval=False)
    assert torch.equal(got, whole)
    assert max(sizes) == 5 and len(sizes) > 2


def test_restores_what_is_not_needed(rng):
    """A feature the model ignores is restored in every adversarial row, whatever the order."""
    while True:  # a model whose class changes on some rows (most seeds)
        model = dyadic_model(_seed(rng))
        with torch.no_grad():
            model[1].weight[:, 0] = 0  # feature 0 is ignored
        x = dyadic_inputs(16, _seed(rng))
        x_adv = _perturbed(rng, x, max_changed=M)
        flat_x, flat_adv = x.reshape(16, -1), x_adv.reshape(16, -1)
        flat_adv[:, 0] = torch.where(flat_x[:, 0] == 0.5, 0.0, 1 - flat_x[:, 0])
        with torch.no_grad():
            adversarial = model(x_adv).argmax(1) != model(x).argmax(1)
        if adversarial.any():
            break
    for order in ORDERS:
        got = refine(model, x, x_adv, order=order).reshape(16, -1)
        assert torch.equal(got[adversarial, 0], flat_x[adversarial, 0])
        assert torch.equal(got[~adversarial], flat_adv[~adversarial])


def test_the_default_order_is_documented():
    from jsma_fast import refinement as module

    assert module.DEFAULT_ORDER in ORDERS
    assert f'``"{module.DEFAULT_ORDER}"`` (default' in refine.__doc__


# ---------------------------------------------------------------------------- guarantees


@pytest.mark.parametrize("targeted", [False, True])
def test_guarantees_on_a_float_model(rng, targeted):
    n = 40
    while True:  # a model whose class changes on some rows (most seeds)
        model = generic_model(_seed(rng))
        x = torch.from_numpy(4 * rng.random((n,) + SAMPLE_SHAPE, dtype=np.float32))
        flat = x.reshape(n, -1).clone()
        mask = torch.from_numpy(rng.random((n, M)) < 0.6)
        flat[mask] = torch.from_numpy(4 * rng.random(int(mask.sum()), dtype=np.float32))
        x_adv = flat.reshape(x.shape)
        with torch.no_grad():
            if (model(x).argmax(1) != model(x_adv).argmax(1)).sum() >= 3:
                break
    target, true = _labels(model, x, x_adv, rng, targeted)
    x_copy, x_adv_copy = x.clone(), x_adv.clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}

    got = refine(model, x, x_adv, target=target, true_class=true)

    assert torch.equal(x, x_copy) and torch.equal(x_adv, x_adv_copy)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert got.shape == x_adv.shape and got.dtype == x_adv.dtype
    flat_got, flat_x, flat_adv = (t.reshape(n, -1) for t in (got, x, x_adv))
    # Each feature is the adversarial one or the original one.
    assert ((flat_got == flat_adv) | (flat_got == flat_x)).all()
    # Features not changed by the attack are untouched; L0 never goes up.
    assert torch.equal(flat_got[flat_adv == flat_x], flat_x[flat_adv == flat_x])
    assert ((flat_got != flat_x).sum(1) <= (flat_adv != flat_x).sum(1)).all()
    with torch.no_grad():
        before, after = model(x_adv).argmax(1), model(got).argmax(1)

    def adversarial(p):
        return torch.where(target >= 0, p == target, p != true)

    was, now = adversarial(before), adversarial(after)
    assert torch.equal(now[was], was[was])
    # Rows that were not adversarial are returned unchanged.
    assert torch.equal(flat_got[~was], flat_adv[~was])
    assert was.any()
    # Deterministic.
    assert torch.equal(refine(model, x, x_adv, target=target, true_class=true), got)


def test_bounds_are_kept_on_a_jsma_result(rng):
    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(10, _seed(rng))
    result = JSMA(variant="tjsma", gamma=1.0)(model, x, "untargeted")
    got = refine_result(model, x, result)
    assert got.x_adv.min() >= 0 and got.x_adv.max() <= 1
    assert torch.equal(got.success, result.success)
    assert (got.l0 <= result.l0).all()
    assert torch.equal(got.l0, (got.x_adv != x).reshape(10, -1).sum(1))
    assert torch.equal(got.l0_fraction, got.l0.double() / M)
    with torch.no_grad():
        assert torch.equal(got.predicted, model(got.x_adv).argmax(1))
    assert (got.predicted[got.success] != got.true_class[got.success]).all()
    want = refine(model, x, result.x_adv, target=result.target, true_class=result.true_class)
    assert torch.equal(got.x_adv, want)


def test_refine_result_on_rows_with_several_targets(rng):
    model = dyadic_model(_seed(rng))
    x = dyadic_inputs(3, _seed(rng))
    result = JSMA(variant="tjsma", gamma=1.0)(model, x, "all")
    got = refine_result(model, x, result)
    assert len(got) == 3 * (NUM_CLASSES - 1)
    original = x[result.source_index]
    want = refine(model, original, result.x_adv, target=result.target, true_class=result.true_class)
    assert torch.equal(got.x_adv, want)
    assert (got.predicted[got.success] == got.target[got.success]).all()


def test_empty_and_unchanged_rows():
    model = dyadic_model(0)
    x = dyadic_inputs(4, 1)
    assert refine(model, x[:0], x[:0]).shape == (0,) + SAMPLE_SHAPE
    assert torch.equal(refine(model, x, x.clone()), x)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "change, error, words",
    [
        (dict(x_adv="no"), TypeError, ["x_adv", "torch.Tensor", "str"]),
        (dict(x=np.zeros((4,) + SAMPLE_SHAPE)), TypeError, ["x must", "ndarray"]),
        (dict(x_adv=torch.zeros((3,) + SAMPLE_SHAPE)), ValueError, ["x_adv", "shape", "(3,"]),
        (dict(x_adv=torch.zeros((4,) + SAMPLE_SHAPE, dtype=torch.float64)), TypeError,
         ["x_adv", "dtype", "float64"]),
        (dict(x_adv=torch.zeros((4,) + SAMPLE_SHAPE, dtype=torch.int64)), TypeError,
         ["x_adv", "floating", "int64"]),
        (dict(x_adv=torch.full((4,) + SAMPLE_SHAPE, float("nan"))), ValueError,
         ["x_adv", "finite"]),
        (dict(x=torch.zeros(4)), ValueError, ["x must have shape (N, ...)", "(4,)"]),
        (dict(order="random"), ValueError, ["order", "random", "margin"]),
        (dict(batch_size=0), ValueError, ["batch_size", ">= 1", "0"]),
        (dict(lookahead=1.5), TypeError, ["lookahead", "1.5"]),
        (dict(target=torch.zeros(3, dtype=torch.int64)), ValueError, ["target", "(4,)", "(3,)"]),
        (dict(target=torch.full((4,), -2)), ValueError, ["target", "-1", "-2"]),
        (dict(target=torch.zeros(4)), TypeError, ["target", "int", "float32"]),
        (dict(true_class=torch.full((4,), -1)), ValueError, ["true_class", ">= 0", "-1"]),
        (dict(true_class="cat"), TypeError, ["true_class", "str"]),
        (dict(model=3), TypeError, ["model", "callable", "int"]),
    ],
)  # fmt: skip
def test_bad_inputs(change, error, words):
    args = dict(model=dyadic_model(0), x=dyadic_inputs(4, 1), x_adv=dyadic_inputs(4, 2))
    args.update(change)
    with pytest.raises(error) as info:
        refine(args.pop("model"), args.pop("x"), args.pop("x_adv"), **args)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_a_model_in_training_mode_is_refused():
    model = dyadic_model(0).train()
    x = dyadic_inputs(2, 1)
    with pytest.raises(ValueError, match="eval mode"):
        refine(model, x, x)
    refine(model, x, x, require_eval=False)


def test_a_model_with_bad_outputs_is_refused():
    x = dyadic_inputs(2, 1)
    with pytest.raises(ValueError, match=r"\(2, C\) class scores, got \(2,\)"):
        refine(lambda t: t.sum(dim=(1, 2, 3)), x, x)
    with pytest.raises(ValueError, match="NaN or inf"):
        refine(lambda t: torch.full((t.shape[0], 3), float("nan")), x, x)


def test_refine_result_errors():
    model = dyadic_model(0)
    x = dyadic_inputs(4, 1)
    result = JSMA()(model, x, "untargeted")
    with pytest.raises(TypeError, match="result must be a jsma_fast.AttackResult, got dict"):
        refine_result(model, x, {})
    with pytest.raises(ValueError, match="source_index must index the 2 rows of x"):
        refine_result(model, x[:2], result)
