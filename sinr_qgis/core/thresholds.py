"""Per-species presence thresholds (numpy only): LPT-R, the threshold of each 0/1 band, logit cuts.

LPT-R, the "robust lowest presence threshold" of iNaturalist's range-map tooling: the p-th
percentile (default 5) of a species' predicted probabilities at its own training locations, so
that about 95 % of the locations where it was recorded are at or above the threshold.

A map's ``threshold`` is None (probabilities only), a probability in (0, 1] for every species, or
``THRESHOLD_LPT_R`` (each species' stored LPT-R, a fixed fallback where the bundle has none):
:func:`resolve_thresholds`. The Processing algorithms offer these as the threshold modes
``THRESHOLD_NONE``, ``THRESHOLD_FIXED`` and ``THRESHOLD_LPTR`` (their labels live in ``processing``).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .bundle import Species
from .errors import OutputError, SinrError
from .metrics import sigmoid

LPT_R_PERCENTILE = 5.0  # the bundles' stored thresholds; the training CLI records it in words
THRESHOLD_LPT_R = "lpt_r"
THRESHOLD_NONE, THRESHOLD_FIXED, THRESHOLD_LPTR = 0, 1, 2


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


def resolve_thresholds(species: Sequence[Species], threshold: float | str | None,
                       fallback_threshold: float | None = 0.5) -> tuple[dict[str, tuple[float, str]], list[str]]:
    """Per species code: (threshold, source) with source "fixed" | "lpt_r" | "fallback"; and warnings.

    ``threshold`` None -> {} (no binary band); a number in (0, 1] -> that value for all;
    ``"lpt_r"`` -> each species' ``Species.threshold``, else ``fallback_threshold`` with a warning.
    """
    if threshold is None:
        return {}, []
    if isinstance(threshold, str) and threshold.strip().lower().replace("-", "_") in (THRESHOLD_LPT_R, "lpt"):
        out: dict[str, tuple[float, str]] = {}
        missing = []
        for s in species:
            if s.threshold is not None and np.isfinite(s.threshold):
                out[s.code] = (float(s.threshold), THRESHOLD_LPT_R)
            else:
                missing.append(s)
        warnings = []
        if missing:
            if fallback_threshold is None:
                raise OutputError(f"The model has no LPT-R threshold for {', '.join(s.label for s in missing)}. "
                                  "Give a fixed threshold instead.")
            fb = _check_threshold(fallback_threshold)
            for s in missing:
                out[s.code] = (fb, "fallback")
            warnings.append(f"No LPT-R threshold stored for {len(missing)} species "
                            f"({', '.join(s.label for s in missing[:5])}{', ...' if len(missing) > 5 else ''}); "
                            f"used the fixed threshold {fb:g} instead. Re-export the model with thresholds.")
        return out, warnings
    if isinstance(threshold, str):
        try:
            threshold = float(threshold)
        except ValueError:
            raise OutputError(f"Unknown threshold {threshold!r}: give a probability between 0 and 1 or "
                              f"{THRESHOLD_LPT_R!r}.") from None
    t = _check_threshold(threshold)
    return {s.code: (t, "fixed") for s in species}, []


def _check_threshold(t: float) -> float:
    t = float(t)
    if not (0.0 < t <= 1.0):
        raise OutputError(f"The threshold must be a probability in (0, 1], got {t:g}.")
    return t


def threshold_argument(mode: int, value: float) -> float | str | None:
    """The ``threshold`` of :func:`resolve_thresholds` for a ``THRESHOLD_*`` mode (LPT-R falls back
    to ``value``). Raises ``SinrError`` for another mode."""
    if mode == THRESHOLD_NONE:
        return None
    if mode == THRESHOLD_FIXED:
        return float(value)
    if mode == THRESHOLD_LPTR:
        return THRESHOLD_LPT_R
    raise SinrError(f"Unknown threshold option {mode}; expected 0 (none), 1 (fixed) or 2 (LPT-R).")


def species_thresholds(species: Sequence[Species], mode: int, value: float) -> tuple[np.ndarray, list[str]]:
    """One presence threshold per species (float32 [S], in ``species`` order) for ``THRESHOLD_FIXED`` /
    ``THRESHOLD_LPTR``, and warnings. Raises ``SinrError`` for ``THRESHOLD_NONE``."""
    arg = threshold_argument(mode, value)
    if arg is None:
        raise SinrError("Species richness needs a threshold: choose LPT-R or a fixed value.")
    per_code, warnings = resolve_thresholds(list(species), arg, fallback_threshold=float(value))
    return np.array([per_code[s.code][0] for s in species], dtype=np.float32), warnings


def _float32_keys(x: np.ndarray) -> np.ndarray:
    """int64 keys ordered as the float32 values ``x`` (-0 and +0 share 0; no NaN)."""
    bits = np.asarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
    mag = bits & 0x7FFFFFFF
    return np.where(bits < 0, -mag, mag)


def _from_float32_keys(keys: np.ndarray) -> np.ndarray:
    bits = np.where(keys < 0, (-keys) | 0x80000000, keys).astype(np.uint32)
    return bits.view(np.float32)


def logit_thresholds(thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """The logit cut of each probability threshold: float32 [S] ``L`` with, for every float32
    logit ``x``, ``x >= L[i]`` exactly when the runtime's float32 sigmoid of ``x`` is ``>= t[i]``.

    So a count of species above their thresholds compares logits (no sigmoid of a whole block)
    and agrees value for value with the 0/1 bands of ``products.predict_to_geotiff``, including ``t = 1``
    (logits from about 17 give a float32 probability of exactly 1) and ``t = 0`` (an LPT-R
    threshold of a species whose training records all score 0 in float32: every logit counts,
    ``L = -inf``). ``thresholds`` [S] must be probabilities in [0, 1]; found by bisection over
    the float32 values (32 steps)."""
    t = np.asarray(thresholds, dtype=np.float32).ravel()
    if t.size and not (np.all(t >= 0) and np.all(t <= 1)):
        raise ValueError("thresholds must be probabilities in [0, 1]")
    inf = np.float32(np.inf)
    lo = np.full(t.shape, _float32_keys(-inf), dtype=np.int64)  # sigmoid(-inf) = 0 < t (t > 0)
    hi = np.full(t.shape, _float32_keys(inf), dtype=np.int64)   # sigmoid(+inf) = 1 >= t
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        above = sigmoid(_from_float32_keys(mid), np.float32) >= t
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    cut = _from_float32_keys(hi)
    cut[t <= 0] = -inf
    return cut
