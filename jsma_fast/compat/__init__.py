"""Drop-in adapters that give users of other attack libraries the paper's pairwise JSMA,
computed by :class:`jsma_fast.JSMA`, behind the call site they already know.

Each adapter lives in its own module and imports its library only when that module is imported,
so ``import jsma_fast`` never needs them:

* :mod:`jsma_fast.compat.torchattacks`: ``JSMA(model, theta=1.0, gamma=0.1)``, a
  ``torchattacks.Attack`` (needs ``torchattacks``);
* :mod:`jsma_fast.compat.art`: ``SaliencyMapMethod(classifier, theta, gamma, batch_size,
  verbose)``, an ART ``EvasionAttack`` for a ``PyTorchClassifier`` (needs
  ``adversarial-robustness-toolbox``).

Every module documents, in a table, where it behaves differently from the library it imitates.
There is no foolbox-3 adapter; ``docs/using-from-other-libraries.md`` says why.
"""

from __future__ import annotations

__all__: list = []
