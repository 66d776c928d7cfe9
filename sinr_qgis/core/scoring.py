"""Model logits at evaluation points and cells: the one place a model meets evaluation data. numpy.

Every evaluation ranks locations by a species' logit (``embedding . head[species]``), not by its
probability: the sigmoid is monotone, so AP is the same, but float32 probabilities saturate to
ties near 0 and 1. The product is taken in float64, once per location and species, then stored
as float32: its value then no longer depends on how BLAS splits a float32 sum (which differs
with the number of species asked), so near-tied locations rank the same in every caller.
``sinr:evaluate_ranges``, ``sinr:evaluate_presence_absence``, the dock's "Compare" and the NA-Trees
benchmark harness all score through here, on :class:`~sinr_qgis.core.runtime.Predictor`.

- :func:`point_logits`: (lon, lat) points (+ their covariate values) -> float32 [N, S];
- :func:`grid_logits`: the valid cells of a grid -> {species code: float32 [H, W]}.

NaN marks a location that cannot be scored (off land on a grid, a coordinate or covariate missing).
The model's data footprint (:mod:`~sinr_qgis.core.footprint`) is not applied: evaluation scores
the model's own values, which maps leave empty outside the footprint by default.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .blas import matmul_t
from .bundle import Species
from .errors import CancelledError
from .evaluation import EVALUATION_CANCELLED
from .grid import Grid
from .runtime import CovariateSpec, Predictor, apply_on_grid

# points embedded per encoder call in point_logits: its [batch, D] float64 copy stays near
# 128 MB at D = 256, and a cancel is checked between batches
POINT_BATCH = 65536


def _head64(predictor: Predictor, species: Sequence[Species]) -> np.ndarray:
    """float64 [S, D]: the head rows of ``species``, in the order given."""
    return np.ascontiguousarray(np.asarray(predictor.bundle.head)[[s.index for s in species]], dtype=np.float64)


def point_logits(predictor: Predictor, lonlat: np.ndarray, species: Sequence[Species],
                 env: np.ndarray | None = None, *, batch: int = POINT_BATCH,
                 progress: Callable[[float], None] | None = None,
                 is_cancelled: Callable[[], bool] | None = None) -> np.ndarray:
    """Logits float32 [N, S] of ``species`` (the bundle's, in head order or not) at (lon, lat)
    degrees [N, 2], with the bundle's raw covariate values ``env`` [N, k] for an environmental
    model; NaN at rows with a missing coordinate or covariate.

    Embeds ``batch`` points at a time; ``progress`` gets 0..100 after each batch and
    ``is_cancelled`` is checked before each (then ``CancelledError``). Raises ``CovariateError``
    when an environmental model gets no or wrongly shaped ``env``."""
    lonlat = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
    head = _head64(predictor, species)
    n = lonlat.shape[0]
    out = np.empty((n, len(species)), dtype=np.float32)
    for start in range(0, n, batch):
        if is_cancelled is not None and is_cancelled():
            raise CancelledError(EVALUATION_CANCELLED)
        stop = min(n, start + batch)
        emb = predictor.embed(lonlat[start:stop], None if env is None else env[start:stop])
        # matmul_t, not numpy's @: numpy's product can be bound to a reference BLAS inside QGIS (core.blas)
        out[start:stop] = matmul_t(emb.astype(np.float64), head)
        if predictor.local_evidence is not None:  # the score the predictor gives (core.local_evidence)
            out[start:stop] += predictor.offsets(lonlat[start:stop], np.array([s.index for s in species]))
        if progress is not None:
            progress(100.0 * stop / n)
    return out


def grid_logits(predictor: Predictor, grid: Grid, species: Sequence[Species], *, mask_ocean: bool = True,
                covariates: CovariateSpec = None, progress: Callable[[float], None] | None = None,
                is_cancelled: Callable[[], bool] | None = None) -> dict[str, np.ndarray]:
    """Logits of ``species`` on ``grid``: species code -> float32 [H, W], NaN off land
    (``mask_ocean``) and where a covariate is missing. ``covariates``, ``progress`` and
    ``is_cancelled`` as :func:`~sinr_qgis.core.runtime.apply_on_grid` takes them (``CancelledError``,
    ``CovariateError``, ``GridError`` from there)."""
    head = _head64(predictor, species)
    # the model's own values everywhere, its data footprint ignored: AP ranks locations, and a score
    # with pixels left out would no longer compare with other models' or the published ones
    idx = np.array([s.index for s in species], dtype=np.int64)

    def score(e: np.ndarray, ll: np.ndarray) -> np.ndarray:
        out = matmul_t(np.asarray(e, dtype=np.float64), head)
        if predictor.local_evidence is not None:  # the score the predictor gives, as point_logits
            out += predictor.offsets(ll, idx)
        return out

    arr = apply_on_grid(predictor, grid, score, len(species),
                        mask_ocean=mask_ocean, covariates=covariates, progress=progress, is_cancelled=is_cancelled,
                        mask_footprint=False)
    return {s.code: arr[k] for k, s in enumerate(species)}
