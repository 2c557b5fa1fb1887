"""The attack in the user's input space: per-feature bounds, steps in range units, a search
domain from the user (``mask``) and normalised models.

Every variant is checked against the naive one-sample reference extended to per-feature
bounds and a user domain (``reference_attack.reference_variant``); the bounds are dyadic, so
per-step derivatives (dF/dx times a power-of-two range) stay exact in float32.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from helpers import NUM_CLASSES, SAMPLE_SHAPE, dyadic_model, generic_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_attack import reference_variant

from jsma_fast import JSMA
from jsma_fast.space import FeatureArray, StepWarning

VARIANTS = ["jsma", "jsma_f", "wjsma", "tjsma", "top2", "maximal"]


def _dyadic_space(n: int, seed: int):
    """Per-feature bounds with ranges 1/2, 1 or 2 and inputs on a 1/16 grid inside them,
    and a random user domain (True on about 3 features in 4)."""
    g = np.random.default_rng(seed)
    lo = g.choice([-1.0, -0.5, 0.0], size=SAMPLE_SHAPE)
    hi = lo + g.choice([0.5, 1.0, 2.0], size=SAMPLE_SHAPE)
    steps = g.integers(0, 9, size=(n,) + SAMPLE_SHAPE) / 8  # fractions of the range
    x = torch.tensor(lo + steps * (hi - lo), dtype=torch.float32)
    mask = g.random(SAMPLE_SHAPE) < 0.75
    return lo, hi, x, mask


def _cases():
    for variant, theta, units, domain_rule, targeted in itertools.product(
        VARIANTS, [1.0, -1.0, 0.5], ["range", "absolute"], ["used", "saturated"], [True, False]
    ):
        if variant == "maximal" and theta < 0:
            continue
        yield variant, theta, units, domain_rule, targeted


@pytest.mark.parametrize("variant,theta,units,domain_rule,targeted", list(_cases()))
def test_per_feature_bounds_and_mask_equal_reference(variant, theta, units, domain_rule, targeted):
    dtype = torch.float32 if variant in ("jsma", "top2", "maximal") else torch.float64
    model = dyadic_model(seed=11).to(dtype)
    lo, hi, x, mask = _dyadic_space(5, seed=12)
    x = x.to(dtype)
    with torch.no_grad():
        y = model(x).argmax(1)
    targets = (y + 1) % NUM_CLASSES if targeted else None
    config = dict(
        variant=variant,
        theta=theta,
        gamma=0.5,
        clip_min=lo,
        clip_max=hi,
        domain_rule=domain_rule,
        theta_units=units,
    )
    rows = [
        reference_variant(
            model,
            x[i],
            None if targets is None else int(targets[i]),
            int(y[i]),
            **config,
            mask=mask,
        )
        for i in range(x.shape[0])
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StepWarning)  # absolute steps of 1/2 on ranges of 2
        result = JSMA(**config, method="exact")(
            model, x, "untargeted" if targets is None else targets, y=y, mask=torch.tensor(mask)
        )
    assert torch.equal(result.x_adv, torch.stack([r[0] for r in rows]))
    assert result.success.tolist() == [r[1] for r in rows]
    assert result.iterations.tolist() == [r[2] for r in rows]
    assert result.stop_reason == [r[3] for r in rows]


# ----------------------------------------------------------------------------- properties


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    variant=st.sampled_from(VARIANTS),
    theta=st.sampled_from([1.0, -1.0, 0.3, -0.7, 2.5]),
    units=st.sampled_from(["range", "absolute"]),
    domain_rule=st.sampled_from(["used", "saturated"]),
    per_row=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_outputs_stay_in_bounds_and_in_the_mask(variant, theta, units, domain_rule, per_row, seed):
    if variant == "maximal" and theta < 0:
        theta = -theta
    g = np.random.default_rng(seed)
    n = 4
    shape = ((n,) if per_row else ()) + SAMPLE_SHAPE
    lo = g.uniform(-3, 1, size=shape)
    hi = lo + g.uniform(0.01, 4, size=shape)
    x = torch.tensor(lo + g.random((n,) + SAMPLE_SHAPE) * (hi - lo), dtype=torch.float32)
    x = torch.maximum(
        torch.minimum(x, torch.tensor(hi, dtype=torch.float32)),
        torch.tensor(lo, dtype=torch.float32),
    )
    mask = torch.tensor(g.random(shape) < 0.5)
    model = generic_model(seed=seed % 7)
    attack = JSMA(
        variant=variant,
        theta=theta,
        gamma=0.6,
        clip_min=lo,
        clip_max=hi,
        domain_rule=domain_rule,
        theta_units=units,
    )
    x_before, mask_before = x.clone(), mask.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StepWarning)
        result = attack(model, x, "untargeted", mask=mask)
    assert torch.equal(x, x_before) and torch.equal(mask, mask_before)  # the caller's tensors
    changed = result.x_adv != x
    assert not (changed & ~mask.expand_as(x)).any()
    lo32 = torch.tensor(lo, dtype=torch.float32).expand_as(x)
    hi32 = torch.tensor(hi, dtype=torch.float32).expand_as(x)
    assert ((result.x_adv >= lo32) & (result.x_adv <= hi32)).all()
    if units == "range" and abs(theta) >= 1:  # every changed feature lands on a bound
        on_bound = (result.x_adv == lo32) | (result.x_adv == hi32)
        assert on_bound[changed].all()


def test_per_row_bounds_with_all_targets_equal_one_row_at_a_time():
    model = generic_model(seed=3)
    g = np.random.default_rng(4)
    lo = g.uniform(-1, 0, size=(3,) + SAMPLE_SHAPE)
    hi = lo + g.uniform(0.5, 2, size=lo.shape)
    x = torch.tensor((lo + hi) / 2, dtype=torch.float32)
    together = JSMA(variant="tjsma", clip_min=lo, clip_max=hi)(model, x, "all")
    for i in range(3):
        alone = JSMA(variant="tjsma", clip_min=lo[i], clip_max=hi[i])(model, x[i : i + 1], "all")
        rows = together.source_index == i
        assert torch.equal(together.x_adv[rows], alone.x_adv)
        assert torch.equal(together.target[rows], alone.target)


# ----------------------------------------------------------------------------- the same attack in
# three input spaces


class _Net(torch.nn.Module):
    """A small CNN on (2, 3, 4) inputs; with ``mean``/``std`` it normalises its input first."""

    def __init__(self, seed: int, mean=None, std=None) -> None:
        super().__init__()
        self.body = generic_model(seed)
        shape = (1, -1, 1, 1)
        self.mean = None if mean is None else torch.tensor(mean).view(shape)
        self.std = None if std is None else torch.tensor(std).view(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return self.body(x)


MEAN, STD = (0.3, 0.6), (0.25, 0.5)


def _pixels(n: int = 12, seed: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n,) + SAMPLE_SHAPE, generator=g).float() / 255


@pytest.mark.parametrize("variant", ["jsma", "tjsma"])
@pytest.mark.parametrize("targets", ["next", "untargeted"])
def test_normalization_option_equals_the_model_that_normalises(variant, targets):
    x = _pixels()
    inside = _Net(seed=7, mean=MEAN, std=STD).eval()
    outside = _Net(seed=7).eval()
    by_option = JSMA(variant=variant, normalization=(MEAN, STD))(outside, x, targets)
    by_model = JSMA(variant=variant)(inside, x, targets)
    assert torch.equal(by_option.x_adv, by_model.x_adv)
    assert torch.equal(by_option.iterations, by_model.iterations)


@pytest.mark.parametrize("variant", ["jsma", "tjsma"])
@pytest.mark.parametrize("targets", ["next", "untargeted"])
def test_normalised_data_with_per_channel_bounds_equals_pixel_space(variant, targets):
    """The attack on normalised data, bounds (0 - mean) / std and (1 - mean) / std per
    channel, chooses what the attack on pixels chooses: the same rows succeed, with the same
    features changed. Outputs differ from the pixel attack's by float rounding only (the
    normalised bounds are rounded)."""
    x = _pixels()
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    z = (x - mean) / std
    lo, hi = ((0 - mean) / std)[0], ((1 - mean) / std)[0]
    net = _Net(seed=7).eval()
    on_z = JSMA(variant=variant, clip_min=lo, clip_max=hi)(net, z, targets)
    on_x = JSMA(variant=variant, normalization=(MEAN, STD))(net, x, targets)
    assert torch.equal(on_z.success, on_x.success)
    assert torch.equal(on_z.l0, on_x.l0)
    assert torch.equal(on_z.x_adv != z, on_x.x_adv != x)
    assert torch.allclose(on_z.x_adv * std + mean, on_x.x_adv, atol=1e-6)


@pytest.mark.parametrize("variant", ["jsma", "tjsma", "maximal"])
def test_the_same_images_on_0_255_give_the_0_1_results(variant):
    x255 = (_pixels() * 255).round()
    x01 = x255 / 255
    net = _Net(seed=8).eval()

    def net255(x: torch.Tensor) -> torch.Tensor:
        return net(x / 255)

    on_01 = JSMA(variant=variant)(net, x01, "untargeted")
    on_255 = JSMA(variant=variant, clip_max=255.0)(net255, x255, "untargeted")
    assert torch.equal(on_255.x_adv / 255, on_01.x_adv)
    assert torch.equal(on_255.success, on_01.success)


# ----------------------------------------------------------------------------- steps and presets


def test_absolute_steps_that_cannot_reach_the_bounds_warn():
    x = _pixels(4) * 255
    net = _Net(seed=9).eval()
    with pytest.warns(StepWarning, match=r"theta=1.0 is an absolute step .* span up to 255"):
        JSMA(theta_units="absolute", clip_max=255.0)(lambda z: net(z / 255), x, "next")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        JSMA(clip_max=255.0)(lambda z: net(z / 255), x, "next")  # range units: no warning
        JSMA.preset("cleverhans")(net, x / 255, "next")  # absolute, but 1 spans [0, 1]


@pytest.mark.parametrize("name", ["cleverhans", "advertorch", "art"])
def test_library_presets_keep_absolute_steps(name):
    assert JSMA.preset(name).theta_units == "absolute"
    assert JSMA.preset("paper").theta_units == "range" == JSMA().theta_units


def test_array_bounds_are_values():
    a = JSMA(clip_min=np.zeros(SAMPLE_SHAPE), clip_max=torch.ones(SAMPLE_SHAPE))
    b = JSMA(clip_min=torch.zeros(SAMPLE_SHAPE), clip_max=np.ones(SAMPLE_SHAPE))
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
    assert isinstance(a.clip_min, FeatureArray) and "sha256=" in repr(a)
    assert a != JSMA(clip_min=np.full(SAMPLE_SHAPE, -1.0), clip_max=np.ones(SAMPLE_SHAPE))
    assert "FeatureArray([0.0, 0.5])" in repr(JSMA(clip_min=[0.0, 0.5], clip_max=2.0))
    assert JSMA(clip_min=np.float32(0.0)).clip_min == 0.0  # a 0-d array is a number


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "options,error,words",
    [
        (dict(clip_min=[0.0, 2.0], clip_max=1.0), ValueError, "clip_min must be < clip_max"),
        (dict(clip_min=np.zeros(3), clip_max=np.ones(4)), ValueError, "shapes (3,) and (4,)"),
        (dict(clip_min=[0.0, np.nan]), ValueError, "clip_min must hold finite numbers"),
        (dict(clip_max=["a", "b"]), TypeError, "clip_max must be a number or an array"),
        (dict(clip_max=[True, True]), TypeError, "clip_max must be a number or an array"),
        (dict(theta_units="percent"), ValueError, "theta_units"),
        (dict(normalization=(0.5,)), TypeError, "normalization must be a pair (mean, std)"),
        (dict(normalization=(0.5, 0.0)), ValueError, "normalization's std must be > 0"),
        (dict(normalization=([0.1, 0.2], [0.3, 0.4, 0.5])), ValueError, "same length"),
    ],
)
def test_bad_options_are_named(options, error, words):
    with pytest.raises(error) as info:
        JSMA(**options)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "options,call,error,words",
    [
        (dict(clip_min=np.zeros(5)), {}, ValueError, "clip_min must broadcast to x's shape"),
        ({}, dict(mask=torch.ones(5, dtype=torch.bool)), ValueError, "mask must broadcast"),
        ({}, dict(mask=torch.ones(SAMPLE_SHAPE)), TypeError, "mask must be a boolean tensor"),
        (dict(normalization=([0.1] * 3, [0.2] * 3)), {}, ValueError, "dimension 1 must have 3"),
    ],
)
def test_bad_call_inputs_are_named(options, call, error, words):
    net = _Net(seed=1).eval()
    with pytest.raises(error) as info:
        JSMA(**options)(net, _pixels(2), "next", **call)
    assert words in str(info.value)


def test_inputs_outside_their_bounds_name_the_fix():
    net = _Net(seed=1).eval()
    z = (_pixels(2) - 0.5) / 0.25
    with pytest.raises(ValueError, match=r"x must lie in .* normalization=\(mean, std\)"):
        JSMA()(net, z, "next")


# ----------------------------------------------------------------------------- the data-set runner


def test_runner_predicts_through_the_attacks_normalization(tmp_path):
    from jsma_fast import Normalized
    from jsma_fast.runner import attack_dataset

    net, x = _Net(seed=7).eval(), _pixels()
    attack = JSMA(normalization=(MEAN, STD))
    got = attack_dataset(net, (x, None), attack, "untargeted", batch_size=5, progress=False)
    with torch.no_grad():
        want = Normalized(net, MEAN, STD)(x).argmax(1)
    assert got.load()["clean_predicted"].tolist() == want.tolist()


def test_runner_resume_refuses_another_mask(tmp_path):
    from jsma_fast.runner import ChunkError, attack_dataset

    net, x = _Net(seed=7).eval(), _pixels()
    mask = torch.zeros(SAMPLE_SHAPE, dtype=torch.bool)
    mask[0] = True
    run = dict(batch_size=5, progress=False, out=tmp_path / "out")
    attack_dataset(net, (x, None), JSMA(), "next", mask=mask, **run)
    with pytest.raises(ChunkError, match="mask"):
        attack_dataset(net, (x, None), JSMA(), "next", mask=~mask, resume=True, **run)
    again = attack_dataset(net, (x, None), JSMA(), "next", mask=mask, resume=True, **run)
    changed = torch.from_numpy(again.load()["l0"])
    assert (changed > 0).any()


def test_the_module_form_equals_the_option():
    from jsma_fast import Normalized

    net, x = _Net(seed=7).eval(), _pixels()
    wrapped = Normalized(net, MEAN, STD)
    assert not wrapped.training  # in its model's mode: the attack takes it as it is
    by_module = JSMA(variant="tjsma")(wrapped, x, "next")
    by_option = JSMA(variant="tjsma", normalization=(MEAN, STD))(net, x, "next")
    assert torch.equal(by_module.x_adv, by_option.x_adv)
    assert by_option.success.any()


# ----------------------------------------------------------------------------- the fewest changes


@pytest.mark.parametrize("per_row", [False, True])
def test_sparsest_and_swap_search_keep_bounds_and_mask(per_row):
    from jsma_fast import sparsest
    from jsma_fast.local_search import swap_search_result

    model = generic_model(seed=2)
    g = np.random.default_rng(9)
    n = 6
    lo = g.uniform(-1, 0, size=SAMPLE_SHAPE)  # per feature: members attack subsets of rows
    hi = lo + g.uniform(0.5, 2, size=SAMPLE_SHAPE)
    x = torch.tensor(lo + g.random((n,) + SAMPLE_SHAPE) * (hi - lo), dtype=torch.float32)
    mask = torch.tensor(g.random(((n,) if per_row else ()) + SAMPLE_SHAPE) < 0.6)
    lo32, hi32 = (torch.tensor(v, dtype=torch.float32).expand_as(x) for v in (lo, hi))
    allowed = mask.expand_as(x)
    best = sparsest(model, x, "untargeted", clip_min=lo, clip_max=hi, mask=mask, gamma=0.8)
    attack = JSMA(variant="tjsma", gamma=0.8, clip_min=lo, clip_max=hi)
    result = attack(model, x, "untargeted", mask=mask)
    searched = swap_search_result(model, x, result, clip_min=lo, clip_max=hi, mask=mask)
    for out in (best, searched):
        changed = out.x_adv != x
        assert not (changed & ~allowed).any()
        assert ((out.x_adv >= lo32) & (out.x_adv <= hi32)).all()
        assert out.success.any()
    assert (searched.l0 <= result.l0).all() and torch.equal(searched.success, result.success)
    rows = np.broadcast_to(lo, (n,) + SAMPLE_SHAPE)
    with pytest.raises(ValueError, match="per-row bounds of shape"):
        sparsest(model, x, "untargeted", clip_min=rows, clip_max=rows + 2)


def test_bounds_off_by_float_rounding_take_the_data_in():
    """Data normalised in float32 and bounds computed in float64 disagree by an ulp: the
    bound moves to the data (a feature at it is at its bound); anything further is refused."""
    mean, std = 0.2860, 0.3530
    x = _pixels()
    x[:, :, 0, 0] = 0.0  # the darkest pixel in every row
    z = (x - mean) / std  # float32
    lo, hi = (0 - mean) / std, (1 - mean) / std  # float64: one ulp above the data's minimum
    assert (z < torch.tensor(lo, dtype=torch.float32)).any()
    net = _Net(seed=7).eval()
    result = JSMA(theta=-1.0, clip_min=lo, clip_max=hi)(net, z, "untargeted")
    assert (result.x_adv >= z.min()).all()
    assert torch.equal(result.x_adv[:, :, 0, 0], z[:, :, 0, 0])  # already at the bound
    with pytest.raises(ValueError, match="x must lie in"):
        JSMA(clip_min=lo + 1e-4, clip_max=hi)(net, z, "untargeted")
