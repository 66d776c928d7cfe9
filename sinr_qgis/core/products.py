"""What the plugin makes from a predictor: species maps, species richness, embeddings, rankings.

Species maps (:func:`predict_to_geotiff`): Float32 COG GeoTIFF(s), DEFLATE, nodata -9999 (see
:mod:`~sinr_qgis.core.raster_io`), band description = species name, per-band metadata
(SPECIES_CODE, VALUE probability|binary, THRESHOLD, the species' reliability: RELIABILITY,
N_TRAIN, RANGES_AP, ...), dataset metadata (MODEL_NAME, MODEL_SHA256, SPECIES_CODE and
SPECIES_NAME as comma-separated lists, CSV-quoted where an item holds a comma or quote, ENCODING,
BACKEND, OCEAN_MASK, FOOTPRINT), and a ``.qml`` default style beside each file. Pixels outside the
model's data footprint are nodata unless ``mask_footprint=False``; ``footprint_band=True`` ends each
file with the footprint's values (:mod:`~sinr_qgis.core.footprint`). ``threshold`` adds a 0/1 band
after each species' probability band (:func:`~sinr_qgis.core.thresholds.resolve_thresholds`: a
number, or ``"lpt_r"``, each species' LPT-R threshold from the bundle; species without one use
``fallback_threshold`` and a warning is returned and logged). ``one_file_per_species=True`` writes
``<stem>_<code>.tif`` per species (just ``path`` for a single species; the code made file-name
safe and distinct, see :func:`species_output_paths`) instead of one band (pair) per species in
``path``.

::

    result = predict_to_geotiff(predictor, grid, species, "out.tif", threshold="lpt_r")
    result.paths, result.warnings, result.thresholds   # iterating a result yields its paths
    species_richness_raster(predictor, grid, species, thresholds, "richness.tif")
    embedding_raster(predictor, grid, "emb.tif", rgb=True)   # -> (path, Pca)
    ranked_species(predictor, lonlat, k=10)             # "what lives here", best first
    footprint_notes(predictor, lonlat)                  # "" or why a point is outside the data footprint
    preview_grid(grid)                                  # the dock's coarse first look, or None

Every grid product streams the grid through :mod:`~sinr_qgis.core.runtime` (bounded memory, progress,
cancel, atomic files). ``progress`` callbacks receive a percentage (0-100).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .blas import matmul_t
from .bundle import Species
from .covariate_match import covariates_at_points
from .errors import OutputError, SinrError
from .file_names import MAX_NAME_BYTES, unique_file_stems
from .footprint import DISTANCE_BAND, NOVELTY_BAND, footprint_status, footprint_summary
from .grid import Grid
from .raster_io import BandSpec, GeoTiffWriter
from .reliability import RICHNESS_CAVEAT, SpeciesReliability, species_reliability
from .runtime import (
    CancelFn,
    CovariateSpec,
    Predictor,
    ProgressFn,
    SpeciesLike,
    WithFootprint,
    apply_on_grid,
    apply_on_grid_to_geotiff,
    model_metadata,
    stream_to_geotiffs,
)
from .species_names import format_species_list
from .thresholds import resolve_thresholds

LOG = logging.getLogger("sinr_qgis")
MAX_GEOTIFF_BANDS = 65535  # TIFF counts samples per pixel in 16 bits: GDAL refuses more bands
MIN_CODE_BYTES = 24  # room left for a species code in a one-file-per-species name


# ---- species maps ----------------------------------------------------------------------------------
@dataclass
class PredictionResult:
    """What ``predict_to_geotiff`` wrote. Iterating it yields the written paths."""

    paths: list[Path]
    species: list[Species]
    thresholds: dict[str, float] = field(default_factory=dict)  # species code -> threshold of its binary band
    warnings: list[str] = field(default_factory=list)
    backend: str = ""
    footprint: str = ""  # what the map did with the model's data footprint (core.footprint.footprint_summary)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Path:
        return self.paths[i]


def predict_to_geotiff(predictor: Predictor, grid: Grid, species: SpeciesLike | Iterable[SpeciesLike],
                       path: str | Path, *, mask_ocean: bool = True, covariates: CovariateSpec = None,
                       threshold: float | str | None = None, fallback_threshold: float | None = 0.5,
                       one_file_per_species: bool = False, land_mask: str | Path | None = None,
                       progress: ProgressFn | None = None, is_cancelled: CancelFn | None = None,
                       mask_footprint: bool = True, footprint_band: bool = False) -> PredictionResult:
    """Predict ``species`` on ``grid`` and write Float32 COG GeoTIFF(s) with a ``.qml`` style beside.

    Bands per species: probability (description = species name), then, if ``threshold`` is set,
    a 0/1 band "<name> above threshold (p >= t)". Each band's metadata carries the species'
    reliability (:func:`reliability_metadata`). ``mask_footprint``: pixels outside the model's data
    footprint are nodata (:mod:`~sinr_qgis.core.footprint`); ``footprint_band``: each file ends with
    the footprint's band(s) (:func:`footprint_band_specs`; a warning when the model stores none).
    All files are written atomically after the whole grid is done; a cancel or an error leaves no
    file. Returns the paths, the thresholds used, warnings (also logged): threshold fallbacks and
    each species whose map is poor, and what the map did with the footprint.
    """
    sp = predictor.resolve_species(species)
    thresholds, warnings = resolve_thresholds(predictor.scoring_species(sp), threshold, fallback_threshold)
    _check_band_count(len(sp), 2 if thresholds else 1, one_file_per_species)
    reliability = {s.code: species_reliability(predictor.bundle, s) for s in sp}
    warnings += [f"{s.label}: {reliability[s.code].warning}" for s in sp if reliability[s.code].level == "poor"]
    for w in warnings:
        LOG.warning(w)
    paths = species_output_paths(path, sp, one_file_per_species, predictor.bundle.species)
    groups = [[s] for s in sp] if len(paths) > 1 else [sp]
    base_meta = model_metadata(predictor, mask_ocean, mask_footprint)
    extra = footprint_band_specs(predictor, warnings) if footprint_band else []
    outputs = []
    for out_path, group in zip(paths, groups):
        specs: list[BandSpec] = []
        cols: list[tuple[int, float | None]] = []  # (head index, threshold or None)
        for s in group:
            bm = {"SPECIES_CODE": s.code, "SPECIES_NAME": s.name, "SPECIES_INDEX": str(s.index),
                  **reliability_metadata(reliability[s.code])}
            specs.append(BandSpec(s.name or s.code, {**bm, "VALUE": "probability"}))
            cols.append((s.index, None))
            if s.code in thresholds:
                t, src = thresholds[s.code]
                # a relative score above a cut, not a presence: the legend and the name say so
                specs.append(BandSpec(f"{s.name or s.code} above threshold (p >= {t:.4g})",
                                      {**bm, "VALUE": "binary", "THRESHOLD": f"{t:.6g}", "THRESHOLD_SOURCE": src}))
                cols.append((s.index, t))
        # CSV-quoted: a code or name holding a comma stays one item
        meta = {**base_meta, "SPECIES_CODE": format_species_list(s.code for s in group),
                "SPECIES_NAME": format_species_list(s.name for s in group)}
        writer = GeoTiffWriter(out_path, grid, specs + extra, metadata=meta, style="probability",
                               resampling="NEAREST" if thresholds else "AVERAGE")
        fn = _species_fn(predictor, cols)
        outputs.append((writer, WithFootprint(fn, len(specs)) if extra else fn, len(specs) + len(extra)))
    predictor.take_class_warnings()  # what earlier calls encoded is not this map's
    written = stream_to_geotiffs(predictor, grid, outputs, mask_ocean=mask_ocean, covariates=covariates,
                                 land_mask=land_mask, progress=progress, is_cancelled=is_cancelled,
                                 mask_footprint=mask_footprint)
    for w in predictor.take_class_warnings():
        LOG.warning(w)
        warnings.append(w)
    warnings += [w for w in predictor.covariate_warnings if w not in warnings]  # logged by iter_grid
    return PredictionResult(paths=written, species=sp, thresholds={c: t for c, (t, _) in thresholds.items()},
                            warnings=warnings, backend=predictor.backend_name,
                            footprint=map_footprint_summary(predictor, mask_footprint))


def footprint_band_specs(predictor: Predictor, warnings: list[str]) -> list[BandSpec]:
    """The bands a map adds for its model's data footprint: "distance to training data (km)" and/or
    "covariate novelty (0 inside the training ranges)" (:class:`~sinr_qgis.core.footprint.Footprint`),
    metadata VALUE=footprint (evaluation skips them), FOOTPRINT_RULE and UNITS. None, with a
    sentence added to ``warnings`` (and logged), when the model stores no footprint."""
    b = predictor.bundle
    if b.footprint is None:
        w = f"Model {b.name!r}: {footprint_status(None, b.meta)}, so the map has no footprint band."
        LOG.warning(w)
        warnings.append(w)
        return []
    units = {DISTANCE_BAND: "km", NOVELTY_BAND: "ranges outside the training range"}
    return [BandSpec(name, {"VALUE": "footprint", "UNITS": units[name], "FOOTPRINT_RULE": b.footprint.rule()})
            for name in b.footprint.band_names]


def map_footprint_summary(predictor: Predictor, mask_footprint: bool) -> str:
    """What the last map computed with ``predictor`` did with the model's data footprint, one
    sentence (:func:`~sinr_qgis.core.footprint.footprint_summary`)."""
    c = predictor.grid_coverage
    n_outside = c.outside_footprint if c is not None else 0
    n_pixels = (c.valid + n_outside) if c is not None else 0
    return footprint_summary(predictor.bundle.footprint, predictor.bundle.meta, n_outside, n_pixels,
                             shown=not mask_footprint)


def _check_band_count(n_species: int, bands_per_species: int, one_file_per_species: bool) -> None:
    """Refuse, before any work, a one-file output with more bands than a GeoTIFF holds (a paper-scale
    model's every species with its 0/1 band is 94,750), saying how to get the maps instead."""
    if (one_file_per_species and n_species > 1) or n_species * bands_per_species <= MAX_GEOTIFF_BANDS:
        return
    what = f"{n_species:,} species with their 0/1 bands" if bands_per_species > 1 else f"{n_species:,} species"
    raise OutputError(f"{what} make {n_species * bands_per_species:,} bands, more than a GeoTIFF holds "
                      f"({MAX_GEOTIFF_BANDS:,}); no file was written. Write one file per species, or at most "
                      f"{MAX_GEOTIFF_BANDS // bands_per_species:,} species in one file (a species-richness map "
                      "counts every species in one band).")


def species_output_paths(path: str | Path, species: Sequence[Species], one_file_per_species: bool,
                         model_species: Sequence[Species] | None = None) -> list[Path]:
    """Where ``predict_to_geotiff`` writes: ``[path]``, or ``<stem>_<code><suffix>`` per species.

    The code part follows :mod:`~sinr_qgis.core.file_names` (readable letters of any script kept,
    what a file system refuses replaced, Windows device names avoided, whole name within
    ``MAX_NAME_BYTES``) and is distinct from every other species' of ``model_species`` (default:
    ``species``) even on case-insensitive, normalisation-insensitive file systems, so a species'
    file name does not depend on which others are written with it. Raises ``OutputError`` when
    ``path``'s own name leaves no room for a code.
    """
    p = Path(path)
    if not one_file_per_species or len(species) == 1:
        return [p]
    room = MAX_NAME_BYTES - len(f"{p.stem}_{p.suffix}".encode())
    if room < MIN_CODE_BYTES:
        raise OutputError(f"The output name {p.name!r} is too long to add species codes to it. Choose a name "
                          f"of at most {MAX_NAME_BYTES - MIN_CODE_BYTES - 5} bytes (as many plain ASCII letters).")
    every = list(model_species) if model_species is not None else list(species)
    stems = dict(zip((s.index for s in every), unique_file_stems([s.code for s in every], room)))
    return [p.with_name(f"{p.stem}_{stems[s.index]}{p.suffix}") for s in species]


def reliability_metadata(r: SpeciesReliability) -> dict[str, str]:
    """Band metadata of a species' reliability: RELIABILITY (good | caution | poor | unknown),
    RELIABILITY_SUMMARY, N_TRAIN, and where known RANGES_AP (0-1), N_CELLS, RECORD_EXTENT
    ("lon_min,lat_min,lon_max,lat_max" degrees) and RELIABILITY_WARNING."""
    meta = {"RELIABILITY": r.level, "RELIABILITY_SUMMARY": r.summary, "N_TRAIN": str(r.n_train)}
    if r.ap_ranges is not None:
        meta["RANGES_AP"] = f"{r.ap_ranges:.4f}"
    if r.n_cells is not None:
        meta["N_CELLS"] = str(r.n_cells)
    if r.record_extent is not None:
        meta["RECORD_EXTENT"] = ",".join(f"{v:.4f}" for v in r.record_extent)
    if r.warning:
        meta["RELIABILITY_WARNING"] = r.warning
    return meta


def _species_fn(predictor: Predictor,
                cols: list[tuple[int, float | None]]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    idx = np.array(sorted({i for i, _ in cols}), dtype=np.int64)
    pos = {int(i): j for j, i in enumerate(idx)}

    def fn(emb: np.ndarray, lonlat: np.ndarray) -> np.ndarray:
        p = predictor.probabilities(emb, idx, lonlat)
        out = np.empty((emb.shape[0], len(cols)), dtype=np.float32)
        for c, (i, t) in enumerate(cols):
            col = p[:, pos[i]]
            out[:, c] = col if t is None else (col >= t).astype(np.float32)
        return out

    return fn


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


# ---- points -----------------------------------------------------------------------------------------
@dataclass
class RankedSpecies:
    """One line of a "what lives here" list."""

    rank: int
    species: Species
    probability: float


def ranked_species(predictor: Predictor, lonlat: np.ndarray, k: int,
                   covariates: CovariateSpec = None) -> list[list[RankedSpecies]]:
    """The ``k`` most probable species at each (lon, lat) [N, 2], best first.

    A point the model cannot evaluate (a covariate missing there) gets an empty list.
    """
    lonlat = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
    env = covariates_at_points(covariates, lonlat, predictor.bundle)
    idx, prob = predictor.top_species(lonlat, k=k, env=env)
    species = predictor.bundle.species
    return [[RankedSpecies(r + 1, species[int(j)], float(p)) for r, (j, p) in enumerate(zip(row_i, row_p)) if j >= 0]
            for row_i, row_p in zip(idx, prob)]


def footprint_notes(predictor: Predictor, lonlat: np.ndarray, covariates: CovariateSpec = None) -> list[str]:
    """Per (lon, lat) [N, 2] degrees: "" inside the model's data footprint (or when it stores none,
    or a covariate is missing there), else a sentence saying why the point is outside: a "what
    lives here" list still ranks its species, and says that their scores there are extrapolation."""
    lonlat = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
    fp = predictor.bundle.footprint
    if fp is None:
        return [""] * lonlat.shape[0]
    env = covariates_at_points(covariates, lonlat, predictor.bundle) if fp.ranges is not None else None
    outside, values = fp.measure(lonlat, env)
    return [f"Outside the model's data footprint: {fp.describe(v)}, so these scores are extrapolation." if o else ""
            for o, v in zip(outside, values)]


# ---- whole-grid products ---------------------------------------------------------------------------
def species_richness_raster(predictor: Predictor, grid: Grid, species: Sequence[Species],
                            thresholds: np.ndarray, path: str | Path, *, mask_ocean: bool = True,
                            covariates: CovariateSpec = None, progress: ProgressFn | None = None,
                            is_cancelled: CancelFn | None = None, mask_footprint: bool = True,
                            footprint_band: bool = False) -> Path:
    """Per pixel, how many ``species`` reach their threshold (p >= t): a one-band GeoTIFF whose band
    name and CAVEAT metadata say that it follows sampling effort too (``RICHNESS_CAVEAT``); nodata
    outside the model's data footprint with ``mask_footprint``, and the footprint's band(s) after
    the count with ``footprint_band`` (as :func:`predict_to_geotiff`).

    Memory stays within ``runtime.SPECIES_BLOCK_BYTES`` of logits whatever the number of species
    (``Predictor.count_above``); a pixel counts exactly where the species' 0/1 band would be 1."""
    idx = np.array([s.index for s in species], dtype=np.int64)
    thr = np.asarray(thresholds, dtype=np.float32).reshape(1, -1)
    if thr.shape[1] != idx.size:
        raise ValueError(f"{thr.shape[1]} thresholds for {idx.size} species")

    def count(embedding: np.ndarray, lonlat: np.ndarray) -> np.ndarray:
        # logits against logit cuts, a few rows at a time: bounded memory for any number of species
        return predictor.count_above(embedding, idx, thr.ravel(), lonlat).astype(np.float32)[:, None]

    meta = {"PRODUCT": "species richness", "N_SPECIES": str(idx.size),
            "SPECIES_CODE": format_species_list((s.code for s in species), max_chars=30000),
            "THRESHOLDS": ",".join(f"{t:.6g}" for t in thr.ravel())[:30000], "CAVEAT": RICHNESS_CAVEAT}
    extra = footprint_band_specs(predictor, []) if footprint_band else []
    return apply_on_grid_to_geotiff(
        predictor, grid, path, WithFootprint(count, 1) if extra else count,
        [f"species richness ({idx.size} species; follows sampling effort too)", *extra], metadata=meta,
        resampling="AVERAGE", mask_ocean=mask_ocean, covariates=covariates or None,
        progress=progress, is_cancelled=is_cancelled, mask_footprint=mask_footprint)


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


def embedding_raster(predictor: Predictor, grid: Grid, path: str | Path, *, rgb: bool = True,
                     mask_ocean: bool = True, covariates: CovariateSpec = None, progress: ProgressFn | None = None,
                     is_cancelled: CancelFn | None = None) -> tuple[Path, Pca | None]:
    """The location embedding per pixel: all D dimensions, or (``rgb``) its first 3 principal components
    fitted on a coarse sample of the same extent (numpy SVD) and applied block by block. Written
    inside and outside the model's data footprint alike: an embedding is a feature for further
    analysis, not a claim that a species lives there (metadata FOOTPRINT says so)."""
    cov = covariates or None
    pca = None
    if rgb:
        scale = min(1.0, PCA_SAMPLE_SIDE / max(grid.width, grid.height))
        coarse = Grid(grid.extent, grid.crs, max(1, round(grid.width * scale)), max(1, round(grid.height * scale)))
        sample = apply_on_grid(predictor, coarse, lambda e, _ll: e, predictor.embedding_dim, mask_ocean=mask_ocean,
                               covariates=cov, is_cancelled=is_cancelled, mask_footprint=False)
        pca = fit_pca(sample.reshape(predictor.embedding_dim, -1).T)
        predictor.take_class_warnings()  # the sample's pixels are counted again by the map itself
        names = ["PC1", "PC2", "PC3"]
        fn = lambda e, _ll: pca.transform(e)  # noqa: E731
        meta = {"PRODUCT": "embedding PCA (RGB)",
                "EXPLAINED_VARIANCE": ",".join(f"{v:.4f}" for v in pca.explained)}
    else:
        names = [f"embedding {i}" for i in range(predictor.embedding_dim)]
        fn = lambda e, _ll: e  # noqa: E731
        meta = {"PRODUCT": "embedding"}
    out = apply_on_grid_to_geotiff(predictor, grid, path, fn, names, metadata=meta, mask_ocean=mask_ocean,
                                   covariates=cov, progress=progress, is_cancelled=is_cancelled,
                                   mask_footprint=False)
    return out, pca
