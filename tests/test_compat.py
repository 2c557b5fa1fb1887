"""The drop-in adapters (jsma_fast.compat.*) return what jsma_fast.JSMA returns for the same
configuration, and reject bad inputs as the libraries they imitate do. Skipped when the
library is not installed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import jsma_fast
from jsma_fast.catalogue import PRESETS

SHAPE = (1, 6, 6)
M = 36
CLASSES = 10


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(M, 24),
        torch.nn.Tanh(),
        torch.nn.Linear(24, CLASSES),
    )
    return model.eval()


def _images(n: int = 8, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    # Values in [0, 0.9]: inside both libraries' search domains at the start.
    return torch.rand((n,) + SHAPE, generator=gen) * 0.9


def _changed(adv, x) -> bool:
    return bool((torch.as_tensor(adv) != torch.as_tensor(x)).any())


# ---------------------------------------------------------------------------- torchattacks


@pytest.fixture(scope="module")
def ta():
    pytest.importorskip("torchattacks")
    from jsma_fast.compat import torchattacks as adapter

    return adapter


def _torchattacks_reference(theta, gamma, **kwargs) -> jsma_fast.JSMA:
    return jsma_fast.JSMA(
        theta=theta,
        gamma=gamma,
        clip_min=0.0,
        clip_max=1.0,
        domain_rule="used",
        start_domain="unsaturated",
        max_iters=math.ceil(M * gamma / 2),
        **kwargs,
    )


def test_torchattacks_default_mode_equals_jsma(ta):
    model, x = _model(), _images()
    labels = model(x).argmax(1)
    before = x.clone()
    atk = ta.JSMA(model, theta=1.0, gamma=0.5)
    adv = atk(x, labels)
    want = _torchattacks_reference(1.0, 0.5)(model, x, "next", y=labels)
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert torch.equal(adv, want.x_adv)
    assert torch.equal(x, before) and _changed(adv, x)
    assert want.target.tolist() == ((labels + 1) % CLASSES).tolist()


@pytest.mark.parametrize("theta", [1.0, -0.5])
def test_torchattacks_targeted_modes_equal_jsma(ta, theta):
    model, x = _model(), _images()
    if theta < 0:
        x = x + 0.1  # in (0, 1]: room to decrease
    labels = model(x).argmax(1)
    reference = _torchattacks_reference(theta, 0.5)
    atk = ta.JSMA(model, theta=theta, gamma=0.5)

    atk.set_mode_targeted_by_function(lambda images, y: (y + 3) % CLASSES, quiet=True)
    adv = atk(x, labels)
    assert torch.equal(adv, reference(model, x, (labels + 3) % CLASSES).x_adv)

    targets = (labels + 5) % CLASSES
    atk.set_mode_targeted_by_label(quiet=True)
    assert torch.equal(atk(x, targets), reference(model, x, targets).x_adv)

    atk.set_mode_targeted_least_likely(quiet=True)
    least = model(x).argmin(1)
    assert torch.equal(atk(x, labels), reference(model, x, least).x_adv)

    atk.set_mode_targeted_random(quiet=True)
    torch.manual_seed(7)
    random_targets = atk.get_random_target_label(x, labels)
    torch.manual_seed(7)
    adv = atk(x, labels)
    assert torch.equal(adv, reference(model, x, random_targets).x_adv)


def test_torchattacks_batch_size_and_method_do_not_change_results(ta):
    model, x = _model(), _images(9)
    labels = model(x).argmax(1)
    full = ta.JSMA(model, theta=1.0, gamma=0.5, method="exact")(x, labels)
    chunked = ta.JSMA(model, theta=1.0, gamma=0.5, batch_size=4, method="exact")(x, labels)
    assert torch.equal(chunked, full)


@pytest.mark.parametrize("variant", ["jsma", "jsma_f", "wjsma", "tjsma", "top2", "maximal"])
def test_torchattacks_normalization_is_applied(ta, variant):
    mean, std = [0.3], [0.2]
    inner = _model()

    class Normalised(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, images):
            return self.inner((images - mean[0]) / std[0])

    x = _images()
    labels = Normalised()(x).argmax(1)
    atk = ta.JSMA(inner, theta=1.0, gamma=0.5, variant=variant)
    atk.set_normalization_used(mean=mean, std=std)
    adv = atk((x - mean[0]) / std[0], labels)  # torchattacks takes normalised inputs then
    reference = _torchattacks_reference(1.0, 0.5, variant=variant)
    want = reference(Normalised().eval(), x, "next", y=labels)
    torch.testing.assert_close(adv, (want.x_adv - mean[0]) / std[0])


def test_torchattacks_rejects_bad_inputs_like_torchattacks(ta):
    import torchattacks

    model, x = _model(), _images(2)
    labels = model(x).argmax(1)
    for cls in (torchattacks.JSMA, ta.JSMA):
        atk = cls(model, theta=1.0, gamma=0.1)
        atk.set_mode_targeted_by_function(None, quiet=True)
        with pytest.raises(ValueError, match="target_map_function is not initialized"):
            atk(x, labels)
    # Stricter than torchattacks, which accepts these silently:
    with pytest.raises(ValueError, match="theta must be a finite non-zero number"):
        ta.JSMA(model, theta=0.0)
    with pytest.raises(ValueError, match=r"gamma must be a number in \(0, 1\]"):
        ta.JSMA(model, gamma=1.5)
    with pytest.raises(ValueError, match=r"x must lie in \[clip_min, clip_max\]"):
        ta.JSMA(model)(x * 4, labels)
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        ta.JSMA(model)(x.numpy(), labels)
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        ta.JSMA(model)(x, labels[:1])


# ---------------------------------------------------------------------------- ART


@pytest.fixture(scope="module")
def art_adapter():
    pytest.importorskip("art")
    from jsma_fast.compat import art as adapter

    return adapter


def _classifier(model, **kwargs):
    from art.estimators.classification import PyTorchClassifier

    kwargs.setdefault("clip_values", (0.0, 1.0))
    return PyTorchClassifier(
        model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=SHAPE,
        nb_classes=CLASSES,
        device_type="cpu",
        **kwargs,
    )


def _art_reference(theta, gamma, clip=(0.0, 1.0), preset="art", **kwargs) -> jsma_fast.JSMA:
    """The attack the adapter documents: ``JSMA.preset(preset)`` on the classifier's range,
    theta in input units."""
    if "theta_units" not in PRESETS[preset].options:
        kwargs.setdefault("theta_units", "absolute")
    return jsma_fast.JSMA.preset(
        preset, theta=theta, gamma=gamma, clip_min=clip[0], clip_max=clip[1], **kwargs
    )


@pytest.mark.parametrize("theta", [1.0, -1.0])
def test_art_adapter_defaults_give_arts_own_outputs(art_adapter, theta):
    """With default arguments the drop-in computes ART's algorithm: the same outputs as
    ``art.attacks.evasion.SaliencyMapMethod`` on a float model (no ties)."""
    from art.attacks.evasion import SaliencyMapMethod as ArtSaliencyMapMethod

    model = _model()
    x = _images().numpy() * 0.8 + (0.2 if theta < 0 else 0.0)
    preds = model(torch.from_numpy(x)).argmax(1)
    targets = ((preds + 1) % CLASSES).numpy()
    classifier = _classifier(model)
    options = dict(theta=theta, gamma=0.3, verbose=False)
    art_out = ArtSaliencyMapMethod(classifier, batch_size=1, **options).generate(x, targets)
    ours = art_adapter.SaliencyMapMethod(classifier, **options).generate(x, targets)
    assert _changed(art_out, x)
    np.testing.assert_array_equal(ours, art_out)


@pytest.mark.parametrize("variant", [None, "tjsma"])
def test_art_adapter_runs_the_papers_map_or_a_variant_on_request(art_adapter, variant):
    model = _model()
    x = _images().numpy()
    targets = ((model(torch.from_numpy(x)).argmax(1) + 1) % CLASSES).numpy()
    attack = art_adapter.SaliencyMapMethod(
        _classifier(model), theta=1.0, gamma=0.5, verbose=False, preset="paper", variant=variant
    )
    extra = {} if variant is None else {"variant": variant}
    want = _art_reference(1.0, 0.5, preset="paper", **extra)
    assert attack.jsma() == want
    np.testing.assert_array_equal(
        attack.generate(x, targets),
        want(model, torch.from_numpy(x), torch.from_numpy(targets)).x_adv.numpy(),
    )
    with pytest.raises(ValueError, match=r"preset='art' fixes variant='top2'.*preset='paper'"):
        art_adapter.SaliencyMapMethod(_classifier(model), variant="tjsma")
    with pytest.raises(ValueError, match=r"preset must be one of .*'fast'"):
        art_adapter.SaliencyMapMethod(_classifier(model), preset="fast")


@pytest.mark.parametrize("theta", [1.0, 0.3, -1.0])
def test_art_generate_equals_jsma(art_adapter, theta):
    model = _model()
    x = _images().numpy()
    if theta < 0:
        x = x + 0.1
    before = x.copy()
    preds = model(torch.from_numpy(x)).argmax(1)
    targets = ((preds + 1 + torch.arange(len(x)) % 3) % CLASSES).numpy()
    classifier = _classifier(model)
    attack = art_adapter.SaliencyMapMethod(classifier, theta=theta, gamma=0.5, verbose=False)
    adv = attack.generate(x, targets)
    want = _art_reference(theta, 0.5)(model, torch.from_numpy(x), torch.from_numpy(targets))
    assert isinstance(adv, np.ndarray) and adv.dtype == np.float32 and adv.shape == x.shape
    np.testing.assert_array_equal(adv, want.x_adv.numpy())
    np.testing.assert_array_equal(x, before)
    assert _changed(adv, x) and not model.training
    one_hot = np.eye(CLASSES, dtype=np.float32)[targets]
    np.testing.assert_array_equal(attack.generate(x, one_hot), adv)


def test_art_random_targets_as_art(art_adapter):
    from art.utils import random_targets

    model = _model()
    x = _images().numpy()
    classifier = _classifier(model)
    np.random.seed(3)
    targets = np.argmax(random_targets(classifier.predict(x).argmax(1), CLASSES), axis=1)
    np.random.seed(3)
    attack = art_adapter.SaliencyMapMethod(classifier, theta=1.0, gamma=0.5, verbose=False)
    adv = attack.generate(x)
    want = _art_reference(1.0, 0.5)(model, torch.from_numpy(x), torch.from_numpy(targets))
    np.testing.assert_array_equal(adv, want.x_adv.numpy())


def test_art_preprocessing_clip_values_and_batch_size(art_adapter):
    model = _model()
    x = _images().numpy() * 2  # in [0, 1.8]
    classifier = _classifier(model, clip_values=(0.0, 2.0), preprocessing=(0.3, 0.2))

    def normalised(images):
        return model((images - 0.3) / 0.2)

    targets = (normalised(torch.from_numpy(x)).argmax(1) + 1) % CLASSES
    want = _art_reference(1.0, 0.5, clip=(0.0, 2.0))(normalised, torch.from_numpy(x), targets)
    for batch_size in (3, 128):
        attack = art_adapter.SaliencyMapMethod(
            classifier, theta=1.0, gamma=0.5, batch_size=batch_size, verbose=False
        )
        np.testing.assert_array_equal(attack.generate(x, targets.numpy()), want.x_adv.numpy())


def test_art_per_feature_clip_values_are_honoured(art_adapter):
    """Array clip_values (ART 1.20.1's own attack fails on them) are each feature's bounds,
    with theta in input units as in ART, for every preset."""
    from art.attacks.evasion import SaliencyMapMethod as ArtSaliencyMapMethod

    model = _model()
    g = np.random.default_rng(3)
    lo = g.uniform(-0.5, 0.0, size=SHAPE).astype(np.float32)
    hi = g.uniform(0.5, 2.0, size=SHAPE).astype(np.float32)
    x = (lo + g.random((6,) + SHAPE) * (hi - lo)).astype(np.float32)
    targets = (model(torch.from_numpy(x)).argmax(1) + 1) % CLASSES
    for clip_values in ((lo, hi), (lo.ravel(), hi.ravel())):
        classifier = _classifier(model, clip_values=clip_values)
        for preset in ("art", "paper"):
            attack = art_adapter.SaliencyMapMethod(
                classifier, theta=0.5, gamma=0.5, preset=preset, verbose=False
            )
            adv = attack.generate(x, targets.numpy())
            want = _art_reference(0.5, 0.5, clip=(lo, hi), preset=preset)
            want = want(model, torch.from_numpy(x), targets)
            np.testing.assert_array_equal(adv, want.x_adv.numpy())
            assert (adv >= lo).all() and (adv <= hi).all() and (adv != x).any()
    with pytest.raises(ValueError, match="could not be broadcast"):
        ArtSaliencyMapMethod(_classifier(model, clip_values=(lo, hi)), verbose=False).generate(
            x, targets.numpy()
        )


def test_art_rejects_bad_inputs_like_art(art_adapter):
    from art.attacks.evasion import SaliencyMapMethod as ArtSaliencyMapMethod
    from art.exceptions import EstimatorError

    classifier = _classifier(_model())
    x = _images(2).numpy()
    for cls in (ArtSaliencyMapMethod, art_adapter.SaliencyMapMethod):
        for bad, message in (
            ({"gamma": 0.0}, "`gamma` must be between 0 and 1"),
            ({"gamma": 1.5}, "`gamma` must be between 0 and 1"),
            ({"batch_size": 0}, "`batch_size` has to be positive"),
            ({"verbose": 1}, "`verbose` has to be of type bool"),
        ):
            with pytest.raises(ValueError, match=message):
                cls(classifier, **bad)
        with pytest.raises(EstimatorError):
            cls(object())
        with pytest.raises(IndexError):  # ART's check_and_transform_label_format
            cls(classifier, verbose=False).generate(x, np.array([1, CLASSES + 1]))
    # Stricter than ART, which accepts these:
    with pytest.raises(ValueError, match="theta must be a finite non-zero number"):
        art_adapter.SaliencyMapMethod(classifier, theta=0.0)
    with pytest.raises(ValueError, match="clip_values must be set"):
        art_adapter.SaliencyMapMethod(_classifier(_model(), clip_values=None))
    with pytest.raises(ValueError, match=r"x must lie in \[clip_min, clip_max\]"):
        art_adapter.SaliencyMapMethod(classifier, verbose=False).generate(x + 2, np.array([1, 2]))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        art_adapter.SaliencyMapMethod(classifier, verbose=False).generate(torch.from_numpy(x))


# ---------------------------------------------------------------------------- reached targets


def test_targets_already_reached_come_back_unchanged_as_in_the_libraries(ta, art_adapter):
    """ART and torchattacks leave a row alone when the model already outputs its target;
    the adapters do the same, and attack the other rows exactly as JSMA does."""
    model = _model()
    x = _images()
    with torch.no_grad():
        prediction = model(x).argmax(1)
    targets = (prediction + 1) % CLASSES
    targets[::3] = prediction[::3]  # reached already
    todo = targets != prediction
    want = _art_reference(1.0, 0.5)(model, x[todo], targets[todo]).x_adv
    adv = art_adapter.SaliencyMapMethod(
        _classifier(model), theta=1.0, gamma=0.5, verbose=False
    ).generate(x.numpy(), targets.numpy())
    np.testing.assert_array_equal(adv[~todo.numpy()], x[~todo].numpy())
    np.testing.assert_array_equal(adv[todo.numpy()], want.numpy())
    atk = ta.JSMA(model, theta=1.0, gamma=0.5)
    atk.set_mode_targeted_by_label(quiet=True)
    out = atk(x, targets)
    assert torch.equal(out[~todo], x[~todo])
    ta_want = _torchattacks_reference(1.0, 0.5)(model, x[todo], targets[todo]).x_adv
    assert torch.equal(out[todo], ta_want)
