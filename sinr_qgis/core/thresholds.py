"""Per-species presence thresholds (numpy only).

LPT-R, the "robust lowest presence threshold" of iNaturalist's range-map tooling: the p-th
percentile (default 5) of a species' predicted probabilities at its own training locations, so
that about 95 % of the locations where it was recorded are at or above the threshold.
"""
from __future__ import annotations

import numpy as np

LPT_R_PERCENTILE = 5.0  # the bundles' stored thresholds; the training CLI records it in words


def lpt_r(values: np.ndarray, percentile: float = LPT_R_PERCENTILE) -> float:
    """The ``percentile``-th percentile of ``values`` (predictions at a species' training
    locations); NaNs are ignored; ``percentile`` 0 is the classic lowest presence threshold.
    Returns NaN when no finite value is given; raises ``ValueError`` for a percentile outside
    0..100. Source: iNaturalist's ``make_thresholds.py`` (reference section on LPT-R)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {percentile}")
    return float(np.percentile(v, percentile)) if v.size else float("nan")


def lpt_r_per_species(probabilities: np.ndarray, species: np.ndarray, n_species: int,
                      percentile: float = LPT_R_PERCENTILE) -> np.ndarray:
    """LPT-R for every species: ``probabilities`` [N] is each record's predicted probability for
    its own species ``species`` [N] (int indices); returns [n_species] (NaN for species without
    records)."""
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    species = np.asarray(species).ravel()
    out = np.full(n_species, np.nan)
    order = np.argsort(species, kind="stable")
    sorted_sp = species[order]
    bounds = np.searchsorted(sorted_sp, np.arange(n_species + 1))
    for j in range(n_species):
        lo, hi = bounds[j], bounds[j + 1]
        if hi > lo:
            out[j] = lpt_r(probabilities[order[lo:hi]], percentile)
    return out
