"""The attacks compared, how each is built, and the rows they attack.

Every attack is a function ``(x, y, target) -> (x_adv, extra)`` on the demo's LeNet with
theta = 1 and the paper's gamma, towards ``(y + 1) % 10``; ``extra`` is the jsma-fast
``AttackResult`` (None for the other libraries).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from bench.attacks.shims import import_advertorch_jsma
from bench.common import correct_digits, demo_lenet
from jsma_fast.evaluation.paper import PAPER

THETA = 1.0
GAMMA = PAPER.gamma
NUM_CLASSES = 10

#: Attack name -> (library, configuration) as printed in the tables.
ATTACKS: dict[str, tuple[str, str]] = {
    "jsma_fast": ("jsma-fast", "default (`JSMA(theta=1, gamma=0.145)`)"),
    "jsma_fast_cleverhans": ("jsma-fast", '`JSMA.preset("cleverhans")`'),
    "jsma_fast_advertorch": ("jsma-fast", '`JSMA.preset("advertorch")`'),
    "jsma_fast_art": ("jsma-fast", '`JSMA.preset("art")`'),
    "torchattacks": ("torchattacks", "`torchattacks.JSMA`"),
    "advertorch": ("advertorch", "`JacobianSaliencyMapAttack`"),
    "art": ("ART", "`SaliencyMapMethod(batch_size=N)`"),
}
JSMA_FAST = ("jsma_fast", "jsma_fast_cleverhans", "jsma_fast_advertorch", "jsma_fast_art")
REFERENCES = ("torchattacks", "advertorch", "art")  # outputs compared sample by sample

Attack = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, Any]]


def load_model_and_digits(
    samples: int,
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, Any]:
    """The demo's LeNet (trained once, then loaded from its cache) and the first ``samples``
    held-out digits it classifies correctly, with their labels and the targets (y + 1) % 10.

    Returns:
        ``(model, x, y, target, split)``: x is (samples, 1, 28, 28) float32 in [0, 1].
    """
    model, split = demo_lenet()
    x, y = correct_digits(model, split, samples)
    return model, x, y, (y + 1) % NUM_CLASSES, split


def make_attack(name: str, model: torch.nn.Module, samples: int) -> Attack:
    """Attack ``name`` on ``model``, for batches of up to ``samples`` rows.

    Imports the library here, so that a worker pays (and its memory baseline includes) only
    its own.
    """
    if name in JSMA_FAST:
        return _jsma_fast(name, model)
    if name == "torchattacks":
        return _torchattacks(model)
    if name == "advertorch":
        return _advertorch(model)
    if name == "art":
        return _art(model, samples)
    raise ValueError(f"unknown attack {name!r}; choose from {sorted(ATTACKS)}")


def _jsma_fast(name: str, model: torch.nn.Module) -> Attack:
    from jsma_fast import JSMA

    if name == "jsma_fast":
        attack = JSMA(theta=THETA, gamma=GAMMA)
    else:
        attack = JSMA.preset(name.removeprefix("jsma_fast_"), theta=THETA, gamma=GAMMA)

    def run(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, Any]:
        result = attack(model, x, target, y=y)
        return result.x_adv, result

    return run


def _torchattacks(model: torch.nn.Module) -> Attack:
    import torchattacks

    ta = torchattacks.JSMA(model, theta=THETA, gamma=GAMMA)
    ta.set_mode_targeted_by_function(lambda images, labels: (labels + 1) % NUM_CLASSES)

    def run(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return ta(x, y), None  # targets (y + 1) % 10, from the labels

    return run


def _advertorch(model: torch.nn.Module) -> Attack:
    jsma_class = import_advertorch_jsma()
    at = jsma_class(
        model, num_classes=NUM_CLASSES, clip_min=0.0, clip_max=1.0, theta=THETA, gamma=GAMMA
    )

    def run(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return at.perturb(x, target), None

    return run


def _art(model: torch.nn.Module, samples: int) -> Attack:
    from art.attacks.evasion import SaliencyMapMethod
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=NUM_CLASSES,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    art_attack = SaliencyMapMethod(
        classifier, theta=THETA, gamma=GAMMA, batch_size=samples, verbose=False
    )

    def run(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, Any]:
        x_adv = art_attack.generate(x.numpy(), y=target.numpy())
        return torch.from_numpy(x_adv).to(x.dtype), None

    return run
