"""The batched attack against the naive one-sample reference (tests/reference_attack.py)."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from helpers import NUM_CLASSES, SAMPLE_SHAPE, dyadic_inputs, dyadic_model, generic_model
from reference_attack import reference_jsma

from jsma_fast import JSMA, STOP_REASONS


def run_reference(model, x, targets, **config):
    rows = [reference_jsma(model, x[i], int(targets[i]), **config) for i in range(x.shape[0])]
    x_adv = torch.stack([r[0] for r in rows])
    return x_adv, [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]


CASES = list(
    itertools.product(
        [1.0, -1.0, 0.5, -0.5],  # theta: increase / decrease, saturating or not
        ["used", "saturated"],
        ["pair", "single"],
        ["unsaturated", "all"],
    )
)


@pytest.mark.parametrize("theta,domain_rule,saliency,start_domain", CASES)
def test_equals_reference_with_exact_gradients(theta, domain_rule, saliency, start_domain):
    model = dyadic_model(seed=1)
    x = dyadic_inputs(6, seed=2)
    with torch.no_grad():
        y = model(x).argmax(1)
    targets = (y + 1) % NUM_CLASSES
    config = dict(
        theta=theta,
        gamma=0.5,
        clip_min=0.0,
        clip_max=1.0,
        saliency=saliency,
        jacobian="logits",
        domain_rule=domain_rule,
        start_domain=start_domain,
    )
    ref_adv, ref_success, ref_iters, ref_reason = run_reference(model, x, targets, **config)
    for batch_size in (None, 1, 4):  # batching must not change any result
        result = JSMA(**config, method="exact", batch_size=batch_size)(model, x, targets)
        assert torch.equal(result.x_adv, ref_adv)
        assert result.success.tolist() == ref_success
        assert result.iterations.tolist() == ref_iters
        assert result.stop_reason == ref_reason


@pytest.mark.parametrize("jacobian", ["logits", "probs"])
@pytest.mark.parametrize("theta", [1.0, -1.0])
@pytest.mark.parametrize("saliency", ["pair", "single"])
def test_equals_reference_on_generic_model(jacobian, theta, saliency):
    model = generic_model(seed=3)
    x = torch.rand((8,) + SAMPLE_SHAPE, generator=torch.Generator().manual_seed(4))
    targets = torch.arange(8) % NUM_CLASSES
    with torch.no_grad():  # a target the model already outputs is refused: drop those rows
        keep = model(x).argmax(1) != targets
    x, targets = x[keep], targets[keep]
    config = dict(
        theta=theta,
        gamma=0.6,
        clip_min=0.0,
        clip_max=1.0,
        saliency=saliency,
        jacobian=jacobian,
        domain_rule="used",
        start_domain="unsaturated",
    )
    ref_adv, ref_success, ref_iters, ref_reason = run_reference(model, x, targets, **config)
    result = JSMA(**config, method="exact")(model, x, targets)
    assert torch.equal(result.x_adv, ref_adv)
    assert result.success.tolist() == ref_success
    assert result.stop_reason == ref_reason
    single = JSMA(**config, method="exact", batch_size=1)(model, x, targets)
    assert torch.equal(single.x_adv, result.x_adv)


def test_result_fields_are_consistent():
    model = generic_model(seed=5)
    x = torch.rand((10,) + SAMPLE_SHAPE, dtype=torch.float32)
    result = JSMA(theta=1.0, gamma=0.5)(model, x, "next")
    assert result.x_adv.shape == x.shape and result.x_adv.dtype == x.dtype
    assert len(result) == 10
    changed = (result.x_adv != x).flatten(1).sum(1)
    assert torch.equal(result.l0, changed)
    assert torch.allclose(result.l0_fraction, changed.double() / 24)
    assert (result.l0 <= 2 * result.iterations).all()
    assert (result.iterations <= JSMA(gamma=0.5).budget(24)).all()
    with torch.no_grad():
        predicted = model(result.x_adv).argmax(1)
    assert torch.equal(result.predicted, predicted)
    assert torch.equal(result.success, predicted == result.target)
    assert set(result.stop_reason) <= set(STOP_REASONS)
    summary = result.summary()
    assert summary["success_rate"] == pytest.approx(result.success.float().mean().item())


def test_caller_tensors_and_model_are_not_modified():
    model = generic_model(seed=6)
    x = torch.rand((4,) + SAMPLE_SHAPE)
    x_before = x.clone()
    y = torch.tensor([0, 1, 2, 3])
    y_before = y.clone()
    state = copy.deepcopy(model.state_dict())
    JSMA(theta=1.0, gamma=0.5)(model, x, "next", y=y)
    assert torch.equal(x, x_before) and torch.equal(y, y_before)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


@pytest.mark.parametrize("y_target", ["untargeted", "explicit"])
def test_result_does_not_share_memory_with_the_callers_labels(y_target):
    model = generic_model(seed=6)
    x = torch.rand((4,) + SAMPLE_SHAPE)
    y = model(x).argmax(1)
    explicit = (y + 1) % NUM_CLASSES
    result = JSMA(theta=1.0, gamma=0.5)(
        model, x, explicit if y_target == "explicit" else y_target, y=y
    )
    before = y.clone(), explicit.clone()
    result.target.fill_(-1)  # a caller may edit its result in place
    result.true_class.fill_(0)
    assert torch.equal(y, before[0]) and torch.equal(explicit, before[1])


def test_target_strategies():
    model = generic_model(seed=7)
    x = torch.rand((5,) + SAMPLE_SHAPE)
    y = torch.tensor([0, 1, 2, 3, 0])
    attack = JSMA(theta=1.0, gamma=0.3, seed=11)
    everything = attack(model, x, "all", y=y)
    assert len(everything) == 5 * (NUM_CLASSES - 1)
    assert everything.source_index.tolist() == [i for i in range(5) for _ in range(NUM_CLASSES - 1)]
    for i in range(5):
        rows = everything.target[everything.source_index == i].tolist()
        assert rows == [c for c in range(NUM_CLASSES) if c != y[i]]
    assert torch.equal(attack(model, x, "next", y=y).target, (y + 1) % NUM_CLASSES)
    random_a = attack(model, x, "random", y=y).target
    random_b = JSMA(theta=1.0, gamma=0.3, seed=11)(model, x, "random", y=y).target
    assert torch.equal(random_a, random_b) and (random_a != y).all()
    big = torch.rand((400,) + SAMPLE_SHAPE)
    labels = torch.randint(0, NUM_CLASSES, (400,))
    many = JSMA(theta=1.0, gamma=0.05, max_iters=0)(model, big, "random", y=labels).target
    assert (many != labels).all() and set(many.tolist()) == set(range(NUM_CLASSES))
    with torch.no_grad():
        least = model(x).argmin(1)
    assert torch.equal(attack(model, x, "least_likely").target, least)


def test_presets_fix_the_published_semantics():
    paper = JSMA.preset("paper", theta=1.0, gamma=0.2)
    assert (paper.domain_rule, paper.start_domain, paper.jacobian) == (
        "saturated",
        "unsaturated",
        "logits",
    )
    clever = JSMA.preset("cleverhans", theta=1.0, gamma=0.2)
    assert (clever.domain_rule, clever.start_domain, clever.method) == (
        "used",
        "unsaturated",
        "exact",
    )
    adv = JSMA.preset("advertorch", theta=1.0, gamma=0.2)
    assert (adv.domain_rule, adv.start_domain) == ("used", "all")
    # Saturated inputs: cleverhans' domain starts empty, advertorch's does not.
    model = generic_model(seed=8)
    x = torch.ones((3,) + SAMPLE_SHAPE)
    with torch.no_grad():
        y = model(x).argmax(1)
    target = (y + 1) % NUM_CLASSES
    assert clever(model, x, target).stop_reason == ["empty_domain"] * 3
    assert "empty_domain" not in adv(model, x, target).stop_reason
    assert torch.equal(adv(model, x, target).x_adv, x)  # at the bound nothing can change
    with pytest.raises(ValueError, match=r"preset must be one of"):
        JSMA.preset("foolbox")
    with pytest.raises(ValueError, match=r"preset 'paper' fixes \['domain_rule'\]"):
        JSMA.preset("paper", domain_rule="used")


def test_repr_shows_the_configuration():
    text = repr(JSMA(theta=-1.0, gamma=0.1, saliency="single"))
    assert text.startswith("JSMA(") and "theta=-1.0" in text and "saliency='single'" in text


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(gamma=0.0), r"gamma must be a number in \(0, 1\], got 0.0"),
        (dict(gamma=1.5), r"gamma must be a number in \(0, 1\], got 1.5"),
        (dict(theta=0.0), r"theta must be a finite non-zero number, got 0.0"),
        (dict(clip_min=1.0, clip_max=1.0), r"clip_min must be < clip_max"),
        (dict(clip_min=2.0, clip_max=1.0), r"clip_min must be < clip_max"),
        (dict(saliency="triple"), r"saliency must be one of \('pair', 'single'\), got 'triple'"),
        (dict(jacobian="softmax"), r"jacobian must be one of"),
        (dict(domain_rule="never"), r"domain_rule must be one of"),
        (dict(method="fastest"), r"method must be one of"),
        (dict(max_iters=-1), r"max_iters must be None or an int >= 0, got -1"),
        (dict(batch_size=0), r"batch_size must be None or an int >= 1, got 0"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        JSMA(**kwargs)


def test_rejects_unknown_and_positional_arguments():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'epsilon'"):
        JSMA(epsilon=0.1)
    with pytest.raises(TypeError):
        JSMA(1.0)


def test_rejects_bad_call_inputs():
    model = generic_model(seed=9)
    attack = JSMA(theta=1.0, gamma=0.2)
    x = torch.rand((3,) + SAMPLE_SHAPE)
    y = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=r"y_target must differ from the true class y: sample 1"):
        attack(model, x, torch.tensor([1, 1, 0]), y=y)
    with pytest.raises(ValueError, match=r"y_target must have shape \(3,\)"):
        attack(model, x, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"y_target must be class indices in \[0, 4\), got 7"):
        attack(model, x, torch.tensor([1, 7, 0]))
    with pytest.raises(TypeError, match=r"y_target must hold integer class indices"):
        attack(model, x, torch.tensor([1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match=r"y_target must be class indices or one of"):
        attack(model, x, "farthest")
    with pytest.raises(
        ValueError, match=r"x must lie in \[clip_min, clip_max\] = \[0.0, 1.0\], got values in"
    ):
        attack(model, x + 1.0, "next")
    with pytest.raises(ValueError, match=r"x must be finite"):
        attack(model, torch.full((1,) + SAMPLE_SHAPE, float("nan")), "next")
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor"):
        attack(model, torch.zeros((1,) + SAMPLE_SHAPE, dtype=torch.int64), "next")
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        attack(model, np.zeros((1,) + SAMPLE_SHAPE, np.float32), "next")
    with pytest.raises(ValueError, match=r"model must return class scores of shape"):
        attack(lambda z: z.flatten(), x, "next")


def test_rejects_model_in_training_mode_unless_allowed():
    model = generic_model(seed=10).train()
    x = torch.rand((2,) + SAMPLE_SHAPE)
    with pytest.raises(ValueError, match=r"model must be in eval mode \(call model.eval\(\)\)"):
        JSMA()(model, x, "next")
    result = JSMA(require_eval=False)(model, x, "next")
    assert len(result) == 2 and model.training
