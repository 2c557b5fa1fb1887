"""The report of an attack on a data set: ``report.md`` and figures beside the results of
:func:`~jsma_fast.runner.attack_dataset` (what ``jsma-fast attack`` writes).

* :func:`write_report`: reads a results folder, writes ``report.md`` and ``figures/``;
* :mod:`~jsma_fast.report.tables`: the measures (per class, per pair, L0, budget);
* :mod:`~jsma_fast.report.figures`: the figures (matplotlib);
* :mod:`~jsma_fast.report.markdown`: the text.

Every figure is over the rows the model classified correctly before the attack; the rows it
already misclassified are counted apart.
"""

from .write import write_report

__all__ = ["write_report"]
