"""The prediction steps the dock, its task and the Processing algorithms share (logic lives once).

Thin glue over ``core.runtime``: everything here takes core values (a ``ModelBundle``, a
``Grid``, numpy arrays, paths) and returns core values; the QGIS-facing callers convert their
objects with the other bridge modules. ``progress`` callbacks receive a percentage (0-100).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import runtime
from ..core.blas import matmul_t
from ..core.bundle import ModelBundle, Species
from ..core.covariate_match import SourceSpec, covariate_samplers
from ..core.errors import SinrError
from ..core.grid import Grid
from ..core.reliability import RICHNESS_CAVEAT
from ..core.species_names import format_species_list

THRESHOLD_NONE, THRESHOLD_FIXED, THRESHOLD_LPTR = 0, 1, 2
THRESHOLD_OPTIONS = ["None (probabilities only)", "Fixed value", "LPT-R per species (from the model)"]

Progress = Callable[[float], None] | None
IsCancelled = Callable[[], bool] | None
Covariates = SourceSpec | None  # bands matched by name, or the user's {covariate: (path, band)}


def make_predictor(bundle: ModelBundle, backend: str = "auto") -> runtime.Predictor:
    """An inference engine for ``bundle`` (onnxruntime when installed, else numpy).

    A predictor is not thread-safe and caches the last grid's embeddings: make one per thread.
    """
    return runtime.Predictor(bundle, backend=backend)


def threshold_argument(mode: int, value: float) -> float | str | None:
    """The runtime's ``threshold`` for a ``THRESHOLD_*`` choice (LPT-R falls back to ``value``)."""
    if mode == THRESHOLD_NONE:
        return None
    if mode == THRESHOLD_FIXED:
        return float(value)
    if mode == THRESHOLD_LPTR:
        return runtime.THRESHOLD_LPT_R
    raise SinrError(f"Unknown threshold option {mode}; expected 0 (none), 1 (fixed) or 2 (LPT-R).")


def species_thresholds(species: Sequence[Species], mode: int, value: float) -> tuple[np.ndarray, list[str]]:
    """One presence threshold per species for ``THRESHOLD_FIXED`` / ``THRESHOLD_LPTR``, and warnings."""
    arg = threshold_argument(mode, value)
    if arg is None:
        raise SinrError("Species richness needs a threshold: choose LPT-R or a fixed value.")
    per_code, warnings = runtime.resolve_thresholds(list(species), arg, fallback_threshold=float(value))
    return np.array([per_code[s.code][0] for s in species], dtype=np.float32), warnings


def predict_range_raster(predictor: runtime.Predictor, grid: Grid, species: Sequence[Species],
                         path: str | Path, *, mask_ocean: bool = True, covariates: Covariates = None,
                         threshold_mode: int = THRESHOLD_NONE, threshold_value: float = 0.5,
                         one_file_per_species: bool = False, progress: Progress = None,
                         is_cancelled: IsCancelled = None) -> runtime.PredictionResult:
    """Write the species' probability raster(s) for ``grid`` (plus 0/1 bands if thresholded)."""
    return runtime.predict_to_geotiff(
        predictor, grid, list(species), path, mask_ocean=mask_ocean, covariates=covariates or None,
        threshold=threshold_argument(threshold_mode, threshold_value), fallback_threshold=float(threshold_value),
        one_file_per_species=one_file_per_species, progress=progress, is_cancelled=is_cancelled)


# The dock's coarse first look (progressive rendering): the same extent and CRS at 1/8 of the
# resolution along each side, and at most 128 x 128 pixels, so that it is encoded in about 0.15 s
# at the encoder's 127k locations/s and costs at most 1/64 of the full map's pixels. A map under
# 256 x 256 pixels (about 0.5 s) is done before a preview would help.
PREVIEW_FACTOR = 8
PREVIEW_MAX_PIXELS = 128 * 128
PREVIEW_MIN_PIXELS = 256 * 256


def preview_grid(grid: Grid) -> Grid | None:
    """A coarse grid over exactly ``grid``'s extent and CRS for a quick preview of it: at least
    ``PREVIEW_FACTOR`` times coarser along each side and at most about ``PREVIEW_MAX_PIXELS``
    pixels. None when ``grid`` has fewer than ``PREVIEW_MIN_PIXELS`` pixels (no preview needed)."""
    if grid.n_pixels < PREVIEW_MIN_PIXELS:
        return None
    factor = max(float(PREVIEW_FACTOR), math.sqrt(grid.n_pixels / PREVIEW_MAX_PIXELS))
    return Grid(grid.extent, grid.crs, max(1, round(grid.width / factor)), max(1, round(grid.height / factor)))


# ---- points ------------------------------------------------------------------------------------
@dataclass
class RankedSpecies:
    """One line of a "what lives here" list."""

    rank: int
    species: Species
    probability: float


def covariates_at_points(covariates: Covariates, lonlat: np.ndarray, bundle: ModelBundle) -> np.ndarray | None:
    """Covariate values [N, k] of ``bundle`` at (lon, lat) points, read as the bundle reads them
    (``covariate_match.covariate_samplers``: raw values, NaN outside a raster or on nodata; or the
    official SINR inputs of an imported official environmental model)."""
    if not covariates:
        return None
    samplers = covariate_samplers(bundle.meta["encoding"], covariates)
    return np.stack([s.sample(lonlat) for s in samplers], axis=1)


def ranked_species(predictor: runtime.Predictor, lonlat: np.ndarray, k: int,
                   covariates: Covariates = None) -> list[list[RankedSpecies]]:
    """The ``k`` most probable species at each (lon, lat) [N, 2], best first.

    A point the model cannot evaluate (a covariate missing there) gets an empty list.
    """
    lonlat = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
    env = covariates_at_points(covariates, lonlat, predictor.bundle)
    idx, prob = predictor.top_species(lonlat, k=k, env=env)
    species = predictor.bundle.species
    return [[RankedSpecies(r + 1, species[int(j)], float(p)) for r, (j, p) in enumerate(zip(row_i, row_p)) if j >= 0]
            for row_i, row_p in zip(idx, prob)]


# ---- whole-grid products -----------------------------------------------------------------------
def species_richness_raster(predictor: runtime.Predictor, grid: Grid, species: Sequence[Species],
                            thresholds: np.ndarray, path: str | Path, *, mask_ocean: bool = True,
                            covariates: Covariates = None, progress: Progress = None,
                            is_cancelled: IsCancelled = None) -> Path:
    """Per pixel, how many ``species`` reach their threshold (p >= t): a one-band GeoTIFF whose band
    name and CAVEAT metadata say that it follows sampling effort too (``RICHNESS_CAVEAT``).

    Memory stays within ``runtime.SPECIES_BLOCK_BYTES`` of logits whatever the number of species
    (``Predictor.count_above``); a pixel counts exactly where the species' 0/1 band would be 1."""
    idx = np.array([s.index for s in species], dtype=np.int64)
    thr = np.asarray(thresholds, dtype=np.float32).reshape(1, -1)
    if thr.shape[1] != idx.size:
        raise ValueError(f"{thr.shape[1]} thresholds for {idx.size} species")

    def count(embedding: np.ndarray) -> np.ndarray:
        # logits against logit cuts, a few rows at a time: bounded memory for any number of species
        return predictor.count_above(embedding, idx, thr.ravel()).astype(np.float32)[:, None]

    meta = {"PRODUCT": "species richness", "N_SPECIES": str(idx.size),
            "SPECIES_CODE": format_species_list((s.code for s in species), max_chars=30000),
            "THRESHOLDS": ",".join(f"{t:.6g}" for t in thr.ravel())[:30000], "CAVEAT": RICHNESS_CAVEAT}
    return runtime.map_grid_to_geotiff(
        predictor, grid, path, count, [f"species richness ({idx.size} species; follows sampling effort too)"],
        metadata=meta,
        resampling="AVERAGE", mask_ocean=mask_ocean, covariates=covariates or None,
        progress=progress, is_cancelled=is_cancelled)


@dataclass
class Pca:
    """A principal-component projection fitted on embeddings: scores = (x - mean) @ components.T."""

    mean: np.ndarray
    components: np.ndarray  # [3, D]
    explained: np.ndarray   # share of the variance per component

    def transform(self, x: np.ndarray) -> np.ndarray:
        # matmul_t, not numpy's @: numpy's product can be bound to a reference BLAS inside QGIS (core.blas)
        return matmul_t(np.asarray(x, dtype=np.float64) - self.mean, self.components).astype(np.float32)


def fit_pca(x: np.ndarray, k: int = 3) -> Pca:
    """PCA by numpy SVD of the centred rows; each component's largest loading is made positive
    (deterministic colours). Fewer than ``k`` dimensions are padded with zero components."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x).all(axis=1)]
    if x.shape[0] < 2:
        raise SinrError("Too few valid pixels to summarise the embedding (is the extent all ocean?). "
                        "Enlarge the extent or turn the ocean mask off.")
    mean = x.mean(axis=0)
    _u, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    n = min(k, vt.shape[0])
    comps = vt[:n].copy()
    signs = np.sign(comps[np.arange(n), np.argmax(np.abs(comps), axis=1)])
    comps *= np.where(signs == 0, 1.0, signs)[:, None]
    var = s ** 2
    explained = var[:n] / var.sum() if var.sum() > 0 else np.zeros(n)
    if n < k:
        comps = np.vstack([comps, np.zeros((k - n, comps.shape[1]))])
        explained = np.concatenate([explained, np.zeros(k - n)])
    return Pca(mean, comps, explained)


PCA_SAMPLE_SIDE = 128  # the PCA is fitted on at most 128 x 128 pixel centres of the same extent


def embedding_raster(predictor: runtime.Predictor, grid: Grid, path: str | Path, *, rgb: bool = True,
                     mask_ocean: bool = True, covariates: Covariates = None, progress: Progress = None,
                     is_cancelled: IsCancelled = None) -> tuple[Path, Pca | None]:
    """The location embedding per pixel: all D dimensions, or (``rgb``) its first 3 principal components
    fitted on a coarse sample of the same extent (numpy SVD) and applied block by block."""
    cov = covariates or None
    pca = None
    if rgb:
        scale = min(1.0, PCA_SAMPLE_SIDE / max(grid.width, grid.height))
        coarse = Grid(grid.extent, grid.crs, max(1, round(grid.width * scale)), max(1, round(grid.height * scale)))
        sample = runtime.map_grid(predictor, coarse, lambda e: e, predictor.embedding_dim,
                                  mask_ocean=mask_ocean, covariates=cov, is_cancelled=is_cancelled)
        pca = fit_pca(sample.reshape(predictor.embedding_dim, -1).T)
        predictor.take_class_warnings()  # the sample's pixels are counted again by the map itself
        names = ["PC1", "PC2", "PC3"]
        fn = pca.transform
        meta = {"PRODUCT": "embedding PCA (RGB)",
                "EXPLAINED_VARIANCE": ",".join(f"{v:.4f}" for v in pca.explained)}
    else:
        names = [f"embedding {i}" for i in range(predictor.embedding_dim)]
        fn = lambda e: e  # noqa: E731
        meta = {"PRODUCT": "embedding"}
    out = runtime.map_grid_to_geotiff(predictor, grid, path, fn, names, metadata=meta, mask_ocean=mask_ocean,
                                      covariates=cov, progress=progress, is_cancelled=is_cancelled)
    return out, pca
