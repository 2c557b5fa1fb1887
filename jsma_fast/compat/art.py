"""ART's ``SaliencyMapMethod``, computed by :class:`jsma_fast.JSMA`: by default ART's own
algorithm (its top-2 rule and budget, ``JSMA.preset("art")``), batched and native; ``preset=``
and ``variant=`` select the paper's map or a stronger variant.

Change one import::

    # from art.attacks.evasion import SaliencyMapMethod
    from jsma_fast.compat.art import SaliencyMapMethod

    attack = SaliencyMapMethod(classifier, theta=1.0, gamma=0.1, verbose=False)
    x_adv = attack.generate(x, y=targets)     # targets one-hot (N, C) or indices (N,); None: random

    SaliencyMapMethod(classifier, theta=1.0, gamma=0.1, preset="paper")  # the paper's map
    SaliencyMapMethod(classifier, theta=1.0, gamma=0.1, preset="paper", variant="tjsma")

``classifier`` is an ART ``PyTorchClassifier``: the attack runs its ``.model`` behind the
classifier's own preprocessing (e.g. ``preprocessing=(mean, std)``), on its device, with its
``clip_values`` as the valid range (numbers or per-feature arrays). It runs
``jsma_fast.JSMA.preset(preset, theta=theta, gamma=gamma, clip_min, clip_max =
classifier.clip_values, theta_units="absolute", batch_size=batch_size, progress=verbose)``
(plus ``variant`` and ``method`` when given): theta is in input units, as in ART, with every
preset. With the default
``preset="art"`` that is ART 1.20.1's algorithm: the two largest target derivatives in the
search domain, removal on saturation, and "go on while the distinct chosen features / M <=
gamma"; it gives ART's outputs on the variants benchmark (``bench/RESULTS.md``). ``"logits"``
means the derivative of whatever the model returns, as ART's ``class_gradient``.

Where it differs from ``art.attacks.evasion.SaliencyMapMethod`` (ART 1.20), with the default
``preset="art"``:

========================  ================================  ==================================
aspect                    ART's SaliencyMapMethod           this adapter
========================  ================================  ==================================
speed                     one class-gradient call per step  batched: one forward and one VJP
                          and batch, NumPy selection        per step, native top-2 search
ties of equal             ``argpartition``: unspecified     the smaller feature index
derivatives
one feature left in the   changes it alone                  the sample stops
domain
estimators                any ClassGradientsMixin           ``PyTorchClassifier`` only (else
                                                            ``EstimatorError``)
``clip_values=None``      no clipping, no domain            ``ValueError``: the attack needs a
                                                            valid range
per-feature (array)       ``generate`` fails for arrays of  honoured per feature (arrays
clip_values               the input shape (NumPy broadcast  broadcastable to the input shape,
                          error, ART 1.20.1)                or flat, one value per feature)
inputs outside            accepted                          ``ValueError`` naming ``x``
clip_values
preprocessing defences    applied through class_gradient    framework (PyTorch) preprocessing
                                                            only; NumPy-only defences raise
                                                            ``ValueError``
postprocessing defences   applied to the predictions that   not applied (the model's raw
                          decide success                    outputs decide success)
``batch_size`` default    1                                 128 (results do not depend on it)
theta = 0                 accepted (nothing changes)        ``ValueError`` naming theta
========================  ================================  ==================================

With ``preset="paper"`` the saliency map is the paper's pairwise map (the pair maximising
-(A * B) with A > 0, B < 0; decrease: A < 0, B > 0), a sample with no qualifying pair stops,
and the budget is floor(M * gamma / 2) pair steps.

The parameter checks on gamma, batch_size and verbose raise ART's errors with ART's messages;
targets go through ART's ``check_and_transform_label_format`` and, when ``y`` is None, ART's
``random_targets`` (NumPy's global generator, as ART); the output is float32 of ``x``'s shape.
"""

from __future__ import annotations

import numbers
import operator
import warnings
from typing import Any, Callable, Optional

import numpy as np
import torch

try:
    from art.attacks.attack import EvasionAttack
    from art.estimators.classification.classifier import ClassGradientsMixin
    from art.estimators.classification.pytorch import PyTorchClassifier
    from art.estimators.estimator import BaseEstimator
    from art.utils import check_and_transform_label_format, random_targets
except ImportError as exc:  # pragma: no cover - exercised only without ART
    raise ImportError(
        "jsma_fast.compat.art needs the Adversarial Robustness Toolbox: pip install "
        "adversarial-robustness-toolbox (jsma-fast's 'art' extra)"
    ) from exc

from .._checks import check_choice
from ..attack import JSMA
from ..catalogue import PRESETS
from ._reached import attack_unreached

__all__ = ["SaliencyMapMethod"]


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _as_int(value: Any, otherwise: Any = None) -> Any:
    """``value`` as a Python int when it is of an integer type (``np.int64``, ...), else
    ``otherwise``."""
    if isinstance(value, (bool, np.bool_)):
        return otherwise
    try:
        return operator.index(value)
    except TypeError:
        return otherwise


class SaliencyMapMethod(EvasionAttack):
    """Jacobian-based Saliency Map Attack (Papernot et al., 2016) with ART's
    ``SaliencyMapMethod`` parameters and, by default, ART's algorithm, computed by
    :class:`jsma_fast.JSMA`.

    | Paper link: https://arxiv.org/abs/1511.07528
    """

    attack_params = EvasionAttack.attack_params + [
        "theta",
        "gamma",
        "batch_size",
        "verbose",
        "preset",
        "variant",
        "method",
    ]
    _estimator_requirements = (BaseEstimator, ClassGradientsMixin, PyTorchClassifier)

    def __init__(
        self,
        classifier: PyTorchClassifier,
        theta: float = 0.1,
        gamma: float = 1.0,
        batch_size: int = 128,
        verbose: bool = True,
        *,
        preset: str = "art",
        variant: Optional[str] = None,
        method: Optional[str] = None,
    ) -> None:
        """
        Create a SaliencyMapMethod instance.

        :param classifier: A trained ``PyTorchClassifier`` with ``clip_values``.
        :param theta: Amount of perturbation introduced to each modified feature per step
                      (positive: increase, negative: decrease).
        :param gamma: Maximum fraction of features being perturbed (between 0 and 1).
        :param batch_size: Size of the batch on which adversarial samples are generated together.
        :param verbose: Show a progress bar.
        :param preset: A preset of :data:`jsma_fast.catalogue.PRESETS`: ``"art"`` (ART's
                       algorithm, the default), ``"paper"``, ``"cleverhans"``, ``"advertorch"``.
        :param variant: A variant of :data:`jsma_fast.catalogue.FAMILY` (e.g. ``"tjsma"``), for
                        a preset that does not fix one (not ``"art"``); None: the preset's.
        :param method: Pair search of :class:`jsma_fast.JSMA` (``"auto"``, ``"exact"``,
                       ``"pruned"``) where the preset does not fix it; None: the preset's.
        """
        super().__init__(estimator=classifier)
        self.theta = theta
        self.gamma = gamma
        self.batch_size = batch_size
        self.verbose = verbose
        self.preset = preset
        self.variant = variant
        self.method = method
        self._check_params()

    # ------------------------------------------------------------------ configuration

    def _clip_range(self) -> tuple:
        """The classifier's ``clip_values`` as the attack's bounds: numbers, or per-feature
        arrays (broadcastable to the input shape, or flat with one value per feature)."""
        clip_values = self.estimator.clip_values
        if clip_values is None:
            raise ValueError(
                "classifier.clip_values must be set (min, max): the saliency map attack changes "
                "features up to a bound, got clip_values=None"
            )
        input_shape = tuple(self.estimator.input_shape)
        bounds = []
        for value in clip_values:
            value = np.asarray(value, dtype=np.float64)
            if value.ndim == 0:
                bounds.append(float(value))
            elif value.size == int(np.prod(input_shape)) and value.shape != input_shape:
                bounds.append(value.reshape(input_shape))  # one value per feature, flat
            else:
                bounds.append(value)
        return bounds[0], bounds[1]

    def jsma(self) -> JSMA:
        """The :class:`jsma_fast.JSMA` that :meth:`generate` runs."""
        check_choice(self.preset, "preset", tuple(PRESETS))
        fixed = PRESETS[self.preset].options
        chosen = {"variant": self.variant, "method": self.method}
        for name, value in chosen.items():
            if value is not None and name in fixed:
                raise ValueError(
                    f"preset={self.preset!r} fixes {name}={fixed[name]!r}; leave {name}=None, "
                    f"or pass preset='paper' to run {name}={value!r} on the paper's loop"
                )
        clip_min, clip_max = self._clip_range()
        units = {} if "theta_units" in fixed else {"theta_units": "absolute"}  # ART's theta
        return JSMA.preset(
            self.preset,
            **units,
            theta=float(self.theta) if _is_real(self.theta) else self.theta,
            gamma=float(self.gamma) if _is_real(self.gamma) else self.gamma,
            clip_min=clip_min,
            clip_max=clip_max,
            batch_size=_as_int(self.batch_size, self.batch_size),
            progress=self.verbose,
            require_eval=False,  # the model is put in eval mode for the run, as ART does
            **{name: value for name, value in chosen.items() if value is not None},
        )

    def _check_params(self) -> None:
        # ART's messages, with the value received added; any real or integer type, as ART.
        if not _is_real(self.gamma) or self.gamma <= 0 or self.gamma > 1:
            raise ValueError(
                "The total perturbation percentage `gamma` must be between 0 and 1, "
                f"got {self.gamma!r}."
            )

        if _as_int(self.batch_size) is None or self.batch_size <= 0:
            raise ValueError(
                f"The batch size `batch_size` has to be positive, got {self.batch_size!r}."
            )

        if not isinstance(self.verbose, bool):
            raise ValueError(
                f"The argument `verbose` has to be of type bool, got "
                f"{type(self.verbose).__name__} {self.verbose!r}."
            )

        self.jsma()  # theta, preset, variant, method, clip_values: errors naming them

    # ------------------------------------------------------------------ the attack

    def _model(self) -> Callable[[torch.Tensor], torch.Tensor]:
        estimator = self.estimator
        if not estimator.all_framework_preprocessing:
            raise ValueError(
                "classifier preprocessing must be PyTorch-native (e.g. preprocessing=(mean, std)); "
                "NumPy-only preprocessing_defences are not supported, got "
                f"{estimator.preprocessing_operations!r}"
            )

        def model(x: torch.Tensor) -> torch.Tensor:
            x_input, _ = estimator._apply_preprocessing(x, y=None, fit=False, no_grad=False)
            return estimator._model(x_input)[-1]

        return model

    def generate(self, x: np.ndarray, y: Optional[np.ndarray] = None, **kwargs: Any) -> np.ndarray:
        """
        Generate adversarial samples and return them in an array.

        :param x: An array with the original inputs to be attacked, inside `clip_values`.
        :param y: Target values (class labels) one-hot-encoded of shape `(nb_samples, nb_classes)`
                  or indices of shape `(nb_samples,)`. None: random targets other than the
                  predicted classes.
        :param kwargs: Accepted and ignored, as ART's ``SaliencyMapMethod.generate`` ignores
                       them (e.g. ``mask=None`` passed by generic ART code); a keyword with a
                       value other than None gets a ``UserWarning`` saying it is ignored.
        :return: An array holding the adversarial examples, float32 of the shape of `x`.
        """
        ignored = sorted(name for name, value in kwargs.items() if value is not None)
        if ignored:
            warnings.warn(
                f"SaliencyMapMethod.generate ignores the keyword arguments {ignored}, as ART's "
                "SaliencyMapMethod does",
                UserWarning,
                stacklevel=2,
            )
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
        nb_classes = self.estimator.nb_classes
        if y is not None:
            y = check_and_transform_label_format(y, nb_classes=nb_classes)
            if nb_classes == 2 and y.shape[1] == 1:
                raise ValueError(
                    "This attack has not yet been tested for binary classification with a single "
                    "output classifier."
                )
            if y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"y must have {x.shape[0]} rows (one per sample), got {y.shape[0]}"
                )
            targets = np.argmax(y, axis=1)
        else:
            preds = np.argmax(self.estimator.predict(x, batch_size=self.batch_size), axis=1)
            targets = np.argmax(random_targets(preds, nb_classes), axis=1)

        attack = self.jsma()
        inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        inputs = inputs.to(self.estimator.device)
        target = torch.from_numpy(targets.astype(np.int64)).to(self.estimator.device)
        # Eval mode for the run, as ART's class_gradient; every module's mode is restored after.
        modes = [(module, module.training) for module in self.estimator._model.modules()]
        self.estimator._model.eval()
        try:
            x_adv = attack_unreached(attack, self._model(), inputs, target)
        finally:
            for module, training in modes:
                module.training = training
        return x_adv.detach().cpu().numpy().reshape(x.shape)
