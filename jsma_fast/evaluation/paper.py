"""The paper's MNIST results (Papernot et al., 2016, Sections V-VII): one object for the
command line, the evaluation report and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperResults:
    """Figures reported by the paper for its LeNet trained on the 60,000 MNIST digits.

    Attributes:
        gamma: the maximum distortion Upsilon of the headline attack (14.5%).
        increase_success: success rate, increasing features, theta = +1.
        increase_distortion: mean L0 (fraction of the pixels) of those successes.
        decrease_success: success rate, decreasing features, theta = -1.
        samples: adversarial samples crafted (10,000 digits each from the training,
            validation and test sets, each towards its 9 other classes).
        training_digits: digits the paper's LeNet was trained on.
        adv_distortion_change: relative change of the mean distortion after adversarial
            training (+37.5%).
        adv_success_change: change of the success rate after adversarial training (-7.2
            points).
        digits: the digits the samples were crafted from.
    """

    gamma: float = 0.145
    increase_success: float = 0.9710
    increase_distortion: float = 0.0402
    decrease_success: float = 0.647
    samples: int = 270_000
    training_digits: int = 60_000
    adv_distortion_change: float = 0.375
    adv_success_change: float = -0.072
    digits: int = 30_000


#: The paper's figures.
PAPER = PaperResults()
