"""Worked examples that run as they stand on data a package ships:
``python -m jsma_fast.examples.tabular`` (scikit-learn's breast-cancer set)."""
