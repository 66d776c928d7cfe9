"""Reproducible experiments: the paper's table on open data, baselines and speed (see README.md)."""
