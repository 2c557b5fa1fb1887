"""The attack under careless or hostile use: immutable configuration, any real or integer
type, empty batches, broken models and targets. Every error names what is wrong."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import NUM_CLASSES, SAMPLE_SHAPE, generic_model

from jsma_fast import JSMA

M = int(np.prod(SAMPLE_SHAPE))


def _inputs(n=4, seed=0):
    return torch.rand((n,) + SAMPLE_SHAPE, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- immutable configuration


def test_configuration_cannot_be_changed_after_checking():
    attack = JSMA(theta=1.0)
    for name, value in (("theta", float("nan")), ("theta", 0.0), ("gamma", 2.0), ("new", 1)):
        with pytest.raises(
            dataclasses.FrozenInstanceError, match=f"cannot assign to field '{name}'"
        ):
            setattr(attack, name, value)
    for name in ("theta", "variant", "batch_size"):
        with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot delete field '{name}'"):
            delattr(attack, name)
    assert attack.theta == 1.0 and attack.variant == "jsma" and hash(attack) == hash(JSMA())


def test_execution_settings_take_no_part_in_equality_hash_or_repr():
    attack = JSMA(theta=1.0, variant="tjsma")
    busy = attack.replace(batch_size=3, num_threads=1, progress=True, require_eval=False)
    assert busy == attack and hash(busy) == hash(attack) and repr(busy) == repr(attack)
    assert attack.replace(seed=1) != attack and attack.replace(method="exact") != attack


def test_a_new_variant_brings_its_own_outputs_unless_they_were_chosen():
    assert JSMA().replace(variant="jsma_f").jacobian == "probs"
    assert JSMA(variant="jsma_f").replace(variant="tjsma").jacobian == "logits"
    assert JSMA(jacobian="probs").replace(variant="wjsma").jacobian == "probs"
    with pytest.raises(ValueError, match=r"variant='jsma_f' differentiates.*jacobian='logits'"):
        JSMA(variant="jsma_f", jacobian="logits")
    with pytest.raises(TypeError, match="takes 1 positional argument"):
        JSMA(1.0)  # keyword-only


def test_replace_checks_like_a_new_attack():
    attack = JSMA(theta=1.0, gamma=0.2, seed=3)
    changed = attack.replace(theta=-0.5)
    assert (changed.theta, changed.gamma, changed.seed, attack.theta) == (-0.5, 0.2, 3, 1.0)
    assert changed == JSMA(theta=-0.5, gamma=0.2, seed=3) and hash(changed) == hash(
        JSMA(theta=-0.5, gamma=0.2, seed=3)
    )
    with pytest.raises(ValueError, match=r"theta must be a finite non-zero number, got nan"):
        attack.replace(theta=float("nan"))
    with pytest.raises(TypeError, match=r"unknown options \['epsilon'\]"):
        attack.replace(epsilon=0.1)


# ---------------------------------------------------------------- number types


def test_numpy_and_tensor_scalars_are_accepted():
    attack = JSMA(
        theta=np.float32(1.0),
        gamma=np.float64(0.25),
        clip_min=np.int64(0),
        clip_max=torch.tensor(1.0),
        max_iters=np.int64(3),
        batch_size=np.int32(2),
        num_threads=np.int64(1),
        seed=np.uint64(7),
    )
    assert attack.config()["max_iters"] == 3 and type(attack.max_iters) is int
    assert type(attack.theta) is float and attack.gamma == 0.25
    model = generic_model(seed=1)
    x = _inputs()
    with torch.no_grad():
        prediction = model(x).argmax(1)
    target = int((prediction[0] + 1) % NUM_CLASSES)
    result = attack(model, x[:1], np.int64(target))
    assert result.target.tolist() == [target]


@pytest.mark.parametrize(
    "kwargs,error,words",
    [
        (dict(theta="1"), TypeError, ["theta must be a real number", "str"]),
        (dict(theta=True), TypeError, ["theta must be a real number", "bool"]),
        (dict(gamma=None), TypeError, ["gamma must be a real number", "NoneType"]),
        (dict(max_iters=2.0), TypeError, ["max_iters must be None or an int", "float"]),
        (dict(num_threads=0), ValueError, ["num_threads must be None or an int >= 1", "got 0"]),
        (dict(num_threads=1025), ValueError, ["num_threads must be an int in [1, 1024]"]),
        (dict(num_threads=2**31), ValueError, ["num_threads must be an int in [1, 1024]"]),
        (dict(seed=-1), ValueError, ["seed must be an int >= 0", "got -1"]),
        (dict(seed=2**64), ValueError, ["seed must be an int in [0, 18446744073709551615]"]),
        (dict(seed=1.5), TypeError, ["seed must be an int", "float"]),
        (dict(progress=1), TypeError, ["progress must be a bool", "int"]),
    ],
)
def test_bad_types_and_ranges_are_named(kwargs, error, words):
    with pytest.raises(error) as info:
        JSMA(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_the_largest_seed_works():
    model = generic_model(seed=2)
    result = JSMA(seed=2**64 - 1, max_iters=0)(model, _inputs(), "random")
    assert len(result) == 4


# ---------------------------------------------------------------- empty batches


@pytest.mark.parametrize("y_target", ["next", "all", "random", "untargeted", "least_likely"])
def test_an_empty_batch_gives_an_empty_result(y_target):
    model = generic_model(seed=3)
    x = torch.zeros((0,) + SAMPLE_SHAPE)
    result = JSMA()(model, x, y_target)
    assert len(result) == 0 and result.x_adv.shape == (0,) + SAMPLE_SHAPE
    assert result.summary()["rows"] == 0.0


def test_explicit_empty_targets():
    model = generic_model(seed=3)
    result = JSMA()(model, torch.zeros((0,) + SAMPLE_SHAPE), torch.zeros(0, dtype=torch.int64))
    assert len(result) == 0


# ---------------------------------------------------------------- broken models and targets


class _Scaled(torch.nn.Module):
    """Wraps a model; `mode` makes it misbehave."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.inner = generic_model(seed=4)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "in_place":
            x.mul_(0.5)  # changes its input
            return self.inner(x)
        logits = self.inner(x)
        if self.mode == "nan":
            return logits * float("nan")
        changed = (x > 0.999).flatten(1).any(1, keepdim=True)  # once a feature was raised
        if self.mode == "nan_later":  # finite on clean inputs, NaN later
            return logits + torch.where(changed, float("nan"), 0.0)
        if self.mode == "nan_gradient":  # finite outputs, NaN derivatives
            never = torch.zeros_like(logits, dtype=torch.bool)
            return torch.where(never, logits / 0.0, logits)  # 0 * inf in the backward
        if self.mode == "detached":
            return logits.detach()
        return logits


@pytest.mark.parametrize("mode", ["nan", "nan_later"])
def test_nan_logits_are_an_error_not_a_success(mode):
    x = _inputs(seed=5) * 0.9
    with pytest.raises(ValueError, match=r"model returned NaN or inf class scores"):
        JSMA(variant="top2")(_Scaled(mode).eval(), x, "untargeted")  # top-2 always moves


def test_nan_derivatives_are_an_error_not_a_failed_attack():
    with pytest.raises(ValueError, match=r"derivatives of the model are NaN"):
        JSMA()(_Scaled("nan_gradient").eval(), _inputs(seed=5) * 0.9, "next")


def test_a_model_that_changes_its_input_in_place_leaves_the_callers_x_alone():
    model = _Scaled("in_place").eval()
    x = _inputs(seed=6)
    before = x.clone()
    result = JSMA(gamma=0.3)(model, x, "next")
    assert torch.equal(x, before)
    # The attack sees the model's function of a copy, so its results are a plain model's.
    plain = JSMA(gamma=0.3)(lambda z: model.inner(z * 0.5), x, "next")
    assert torch.equal(result.x_adv, plain.x_adv)


def test_a_model_without_gradients_is_named():
    with pytest.raises(ValueError, match=r"model output does not require grad.*torch.no_grad"):
        JSMA()(_Scaled("detached").eval(), _inputs(seed=7), "next")


def test_targets_equal_to_the_prediction_are_refused_without_y():
    model = generic_model(seed=8)
    x = _inputs(seed=8)
    with torch.no_grad():
        prediction = model(x).argmax(1)
    with pytest.raises(ValueError, match=r"y_target must differ from the model's prediction"):
        JSMA()(model, x, prediction)


def test_sparse_inputs_get_advice_that_works():
    x = _inputs(seed=9)
    with pytest.raises(TypeError, match=r"x must be a dense \(strided\) tensor.*to_dense"):
        JSMA()(generic_model(seed=9), x.to_sparse(), "next")
    result = JSMA(max_iters=0)(generic_model(seed=9), x.to_sparse().to_dense(), "next")
    assert len(result) == 4


def test_an_attack_survives_copy_and_pickle():
    import copy
    import pickle

    attack = JSMA(variant="tjsma", theta=0.5, seed=4)
    assert copy.deepcopy(attack) == attack == pickle.loads(pickle.dumps(attack))


# ---------------------------------------------------------------- models users bring


def _mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = int(np.prod(SAMPLE_SHAPE))
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(m, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4)
    ).eval()


# torch.compile's tracer warns about its own internals; a warning turned into an error would
# make it fall back to running the model uncompiled.
@pytest.mark.filterwarnings("ignore")
def test_a_compiled_model_gives_the_uncompiled_results():
    from torch._dynamo.utils import counters

    model = _mlp()
    x = _inputs(6)
    want = JSMA(gamma=0.5)(model, x, "next")
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(_mlp(), backend="aot_eager")  # AOTAutograd: donated buffers
    got = JSMA(gamma=0.5)(compiled, x, "next")
    assert counters["stats"]["unique_graphs"] > 0  # it did run compiled
    assert torch.equal(got.x_adv, want.x_adv) and torch.equal(got.success, want.success)


def test_least_likely_never_picks_the_true_class():
    model = _mlp(1)
    x = _inputs(40, seed=2)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmin(1)  # the least likely class is the label of every row
    target = JSMA(max_iters=0)(model, x, "least_likely", y=y).target
    expected = logits.clone()
    expected[torch.arange(40), y] = float("inf")
    assert (target != y).all() and torch.equal(target, expected.argmin(1))


def test_a_batchnorm_model_in_training_mode_is_explained_and_left_unchanged():
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(int(np.prod(SAMPLE_SHAPE)), 8),
        torch.nn.BatchNorm1d(8),
        torch.nn.Linear(8, 4),
    ).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"call model.eval\(\)"):
        JSMA()(model, _inputs(4), "next")
    with pytest.raises(ValueError, match=r"BatchNorm layer in training mode.*model.eval\(\)"):
        JSMA(gamma=0.5, require_eval=False)(model, _inputs(5), "next")
    assert model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_inference_mode_and_meta_tensors_get_errors_that_say_what_to_do():
    model = _mlp()
    with torch.inference_mode(), pytest.raises(RuntimeError, match="outside that context"):
        JSMA()(model, _inputs(2), "next")
    with pytest.raises(TypeError, match="x must hold data.*meta device"):
        JSMA()(model, torch.empty((2,) + SAMPLE_SHAPE, device="meta"), "next")
