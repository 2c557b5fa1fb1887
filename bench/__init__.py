"""Benchmarks of jsma-fast: run each script from the repository root as
``python -m bench.<script>`` (bench/README.md)."""
