"""jsma-fast: the Jacobian-based Saliency Map Attack with native pair-search kernels."""
