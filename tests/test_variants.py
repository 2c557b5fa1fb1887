"""Every variant of the attack against the naive one-sample reference
(``tests/reference_attack.py: reference_variant``), bit for bit, and its invariants.

Models with dyadic weights on dyadic inputs make logits and gradients exact in float32, so any
summation order gives the same bits. Variants that weight by probabilities (or differentiate
them) cannot be exact: they run in float64, where the reference's and the attack's different
summation orders agree to ~1e-16 and give the same float32 alpha and beta.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import reference
import torch
from helpers import NUM_CLASSES, SAMPLE_SHAPE, dyadic_inputs, dyadic_model
from reference_attack import reference_variant

from jsma_fast import JSMA

M = int(np.prod(SAMPLE_SHAPE))


def _case_dtype(variant: str, jacobian: str) -> torch.dtype:
    return torch.float64 if variant in ("wjsma", "tjsma") or jacobian == "probs" else torch.float32


def _problem(dtype, n=6, seed=1):
    model = dyadic_model(seed=seed).to(dtype)
    x = dyadic_inputs(n, seed=seed + 1).to(dtype)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def _run_reference(model, x, y, targets, config):
    rows = []
    for i in range(x.shape[0]):
        target = None if targets is None else int(targets[i])
        rows.append(reference_variant(model, x[i], target, int(y[i]), **config))
    return (
        torch.stack([r[0] for r in rows]),
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


def _cases():
    for variant, theta, saliency, domain_rule, jacobian, targeted in itertools.product(
        ["jsma", "wjsma", "tjsma", "top2", "maximal"],
        [1.0, -1.0, 0.5],
        ["pair", "single"],
        ["used", "saturated"],
        ["logits", "probs"],
        [True, False],
    ):
        if variant == "top2" and saliency == "single":
            continue
        if variant == "maximal" and theta < 0:
            continue
        yield variant, theta, saliency, domain_rule, jacobian, targeted


@pytest.mark.parametrize("variant,theta,saliency,domain_rule,jacobian,targeted", list(_cases()))
def test_variant_equals_reference(variant, theta, saliency, domain_rule, jacobian, targeted):
    model, x, y = _problem(_case_dtype(variant, jacobian))
    targets = (y + 1) % NUM_CLASSES if targeted else None
    config = dict(
        variant=variant,
        theta=theta,
        gamma=0.5,
        clip_min=0.0,
        clip_max=1.0,
        saliency=saliency,
        jacobian=jacobian,
        domain_rule=domain_rule,
    )
    ref_adv, ref_success, ref_iters, ref_reason = _run_reference(model, x, y, targets, config)
    y_target = "untargeted" if targets is None else targets
    for batch_size in (None, 1, 4):  # batching must not change any result
        result = JSMA(**config, method="exact", batch_size=batch_size)(model, x, y_target, y=y)
        assert torch.equal(result.x_adv, ref_adv)
        assert result.success.tolist() == ref_success
        assert result.iterations.tolist() == ref_iters
        assert result.stop_reason == ref_reason


@pytest.mark.parametrize("variant", ["jsma", "wjsma", "tjsma", "top2", "maximal"])
@pytest.mark.parametrize("start_domain", ["unsaturated", "all"])
def test_start_domain_equals_reference(variant, start_domain):
    model, x, y = _problem(_case_dtype(variant, "logits"), n=5, seed=3)
    config = dict(
        variant=variant,
        theta=1.0,
        gamma=0.5,
        clip_min=0.0,
        clip_max=1.0,
        start_domain=start_domain,
        domain_rule="saturated",
    )
    targets = (y + 2) % NUM_CLASSES
    ref_adv, ref_success, _, ref_reason = _run_reference(model, x, y, targets, config)
    result = JSMA(**config, method="exact")(model, x, targets, y=y)
    assert torch.equal(result.x_adv, ref_adv)
    assert result.stop_reason == ref_reason


@pytest.mark.parametrize("theta", [1.0, -1.0, 0.25])
def test_art_preset_equals_reference(theta):
    """The top-2 rule with removal on saturation and ART's budget on chosen features."""
    model, x, y = _problem(torch.float32, n=6, seed=5)
    config = dict(
        variant="top2",
        theta=theta,
        gamma=0.3,
        clip_min=0.0,
        clip_max=1.0,
        domain_rule="saturated",
        budget_rule="features",
    )
    targets = (y + 1) % NUM_CLASSES
    ref_adv, ref_success, ref_iters, ref_reason = _run_reference(model, x, y, targets, config)
    result = JSMA.preset("art", theta=theta, gamma=0.3)(model, x, targets, y=y)
    assert torch.equal(result.x_adv, ref_adv)
    assert result.iterations.tolist() == ref_iters
    assert result.stop_reason == ref_reason


@pytest.mark.parametrize("variant", ["jsma", "wjsma", "tjsma", "top2", "maximal"])
@pytest.mark.parametrize("y_target", ["all", "untargeted"])
def test_invariants_on_a_generic_model(variant, y_target):
    torch.manual_seed(7)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(M, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, NUM_CLASSES),
    ).eval()
    x = torch.rand((7,) + SAMPLE_SHAPE) * 0.8 + 0.1
    x[0] = 0.0  # every feature at a bound
    y = torch.randint(0, NUM_CLASSES, (7,))
    x_before, y_before = x.clone(), y.clone()
    state = copy.deepcopy(model.state_dict())
    attack = JSMA(variant=variant, theta=1.0, gamma=0.4, clip_min=0.0, clip_max=1.0)
    result = attack(model, x, y_target, y=y)
    assert torch.equal(x, x_before) and torch.equal(y, y_before)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0
    assert (result.l0 <= attack.max_changed_features(M)).all()
    assert (result.iterations <= attack.budget(M)).all()
    with torch.no_grad():
        predicted = model(result.x_adv).argmax(1)
    assert torch.equal(result.predicted, predicted)
    if y_target == "untargeted":
        assert (result.target == -1).all()
        assert torch.equal(result.success, predicted != result.true_class)
    else:
        assert torch.equal(result.success, predicted == result.target)


def test_art_budget_overshoots_by_at_most_one_step():
    torch.manual_seed(8)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(M, NUM_CLASSES)).eval()
    x = torch.rand((20,) + SAMPLE_SHAPE) * 0.5
    attack = JSMA.preset("art", theta=1.0, gamma=0.1)
    result = attack(model, x, "least_likely")
    budget_rows = torch.tensor([r == "budget" for r in result.stop_reason])
    # ART goes on while chosen / M <= gamma = 2.4 / 24: a second pair is taken after the
    # first (2 <= 2.4), none after it: 4 features, where floor(M * gamma / 2) = 1 pair.
    assert budget_rows.any()
    assert (result.l0[budget_rows] == 4).all() and (result.iterations[budget_rows] == 2).all()
    assert (result.l0 <= attack.max_changed_features(M)).all()


def test_untargeted_jsma_lowers_the_true_class_first():
    """NT-JSMA's first pair is the best pair of the decrease map of the true class."""
    model, x, y = _problem(torch.float32, n=4, seed=9)
    one_step = JSMA(theta=1.0, gamma=0.5, max_iters=1, method="exact")
    result = one_step(model, x, "untargeted", y=y)
    for i in range(x.shape[0]):
        _, _, _, reason = reference_variant(
            model,
            x[i],
            None,
            int(y[i]),
            variant="jsma",
            theta=1.0,
            gamma=2 / M,
            clip_min=0.0,
            clip_max=1.0,
        )
        assert result.stop_reason[i] == reason


@pytest.mark.parametrize(
    "kwargs,words",
    [
        (dict(variant="top2", saliency="single"), ["variant='top2'", "saliency='single'"]),
        (dict(variant="maximal", theta=-1.0), ["variant='maximal'", "theta=-1.0"]),
        (dict(budget_rule="features", max_iters=3), ["budget_rule='features'", "max_iters=3"]),
        (dict(variant="fgsm"), ["variant must be one of", "'fgsm'"]),
        (dict(budget_rule="pixels"), ["budget_rule must be one of", "'pixels'"]),
    ],
)
def test_combinations_that_make_no_sense_name_both_parameters(kwargs, words):
    with pytest.raises(ValueError) as info:
        JSMA(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_none_target_is_refused_with_the_two_ways_to_say_it():
    model, x, y = _problem(torch.float32, n=2)
    with pytest.raises(ValueError, match=r"got None; pass 'untargeted'.*'random'"):
        JSMA()(model, x, None, y=y)


def _unlikely_target_model(dtype):
    """A tanh network whose class 2 has probability ~1e-9 on every input."""
    torch.manual_seed(11)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(M, 12),
        torch.nn.Tanh(),
        torch.nn.Linear(12, 4),
    )
    with torch.no_grad():
        model[3].bias[2] = -21.0
    return model.to(dtype).eval()


def test_jsma_f_ranks_the_target_derivative_not_rounding_noise():
    model = _unlikely_target_model(torch.float32)
    x = torch.rand((32,) + SAMPLE_SHAPE, generator=torch.Generator().manual_seed(12)) * 0.9
    target = torch.full((32,), 2)
    with torch.no_grad():
        p_target = torch.softmax(model(x), dim=1)[:, 2]
    assert p_target.max() < 1e-8
    # alpha from a float64 copy of the model: dp_t/dx, accurate to float32 rounding.
    model64 = _unlikely_target_model(torch.float64)
    flat = x.reshape(32, -1).double().requires_grad_(True)
    probabilities = torch.softmax(model64(flat.view((32,) + SAMPLE_SHAPE)), dim=1)
    (alpha64,) = torch.autograd.grad(probabilities[:, 2].sum(), flat)
    alpha = alpha64.float().numpy()
    expected = reference.select_pairs(alpha, -alpha, None, "increase")
    one_step = JSMA(jacobian="probs", max_iters=1, method="exact", start_domain="all")
    result = one_step(model, x, target)
    changed = (result.x_adv != x).reshape(32, -1)
    for i in range(32):
        assert changed[i].nonzero().squeeze(1).tolist() == [expected[0][i], expected[1][i]]
    # The subtraction d(sum p)/dx - alpha is rounding noise here: ranking it picks other pairs.
    flat32 = x.reshape(32, -1).clone().requires_grad_(True)
    p32 = torch.softmax(model(flat32.view((32,) + SAMPLE_SHAPE)), dim=1)
    (a32,) = torch.autograd.grad(p32[:, 2].sum(), flat32, retain_graph=True)
    (all32,) = torch.autograd.grad(p32.sum(), flat32)
    noisy = reference.select_pairs(a32.numpy(), (all32 - a32).numpy(), None, "increase")
    assert (noisy[0] != expected[0]).any() or (noisy[1] != expected[1]).any()
