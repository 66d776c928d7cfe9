"""Comparing predicted ranges with reference data: species matching, labels on a grid, per-species scores.

The Processing algorithms ``sinr:evaluate_ranges`` / ``sinr:evaluate_presence_absence``, the
dock's "Compare" and the NA-Trees benchmark harness all match species here, take model logits from
:mod:`~sinr_qgis.core.scoring` and score with :mod:`~sinr_qgis.core.metrics`, so every place
reports the same numbers.

- :func:`match_species` pairs reference names (a range layer's species field, a presence/absence
  column) with model species by code or scientific name, with the lookup rules of
  :mod:`~sinr_qgis.core.species_names` (case, Unicode form, spacing, hybrid sign, authorship); or,
  for the benchmark protocol, by code only.
- :func:`~sinr_qgis.core.polygons.grid_cells_in_polygons` labels grid cells from range polygons (in
  their own CRS): a cell is a presence when its *centre* lies inside a polygon, the same
  point-in-polygon rule the benchmark applies to its H3 points.
- :func:`warp_band_to_grid` reads any raster band onto an evaluation grid (prediction rasters,
  reference rasters whose cells > 0 are presence).
- :func:`area_weights`: cos(latitude) per cell of a lon/lat grid (the cell's area up to a constant).
- :func:`evaluate_species` -> :class:`SpeciesEvaluation`: AP, prevalence, cell counts, the
  F1-optimal threshold with its F1 and IoU, and the precision-recall curve.
- :func:`evaluate_grid` / :func:`evaluate_points` score every referenced species, or skip it as a
  :class:`SkippedSpecies` when its reference makes AP meaningless (no evaluated location, no
  presence, no absence: ``metrics.ap_undefined_reason``, the one rule everywhere).

AP is reported as a fraction in [0, 1] per species here; :func:`map_percent` gives the mean over
species in percent with 2 decimals, the benchmark harness's scale.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

from . import metrics
from .bundle import Species
from .errors import CancelledError, GridError
from .grid import Grid
from .species_names import ONE_EDIT_SCORE, index_for, name_key

EVALUATION_CANCELLED = "Evaluation cancelled."  # what every step of an evaluation says on a cancel


# ---- species matching --------------------------------------------------------------------------
@dataclass
class SpeciesMatch:
    """Reference names paired with species: ``matched`` {reference name as given: species};
    ``unmatched`` names (those that fit several species too, listed in ``ambiguous``)."""

    matched: dict[str, Species] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[Species]] = field(default_factory=dict)
    # an unmatched name one slip or one Latin ending away from a species ("Quercus rubrum")
    close: dict[str, Species] = field(default_factory=dict)

    def unmatched_text(self, limit: int = 20) -> str:
        """The unmatched names for a message; an ambiguous one says which species it fits, a near
        miss which species it may mean."""
        def text(n: str) -> str:
            fits = self.ambiguous.get(n)
            if fits:
                return repr(n) + f" (fits {len(fits)} species: {'; '.join(s.label for s in fits[:3])})"
            return repr(n) + (f" (did you mean {self.close[n].label}?)" if n in self.close else "")

        more = f" and {len(self.unmatched) - limit} more" if len(self.unmatched) > limit else ""
        return ", ".join(text(n) for n in self.unmatched[:limit]) + more


def match_species(names: Iterable[str], species: Sequence[Species], *, by_code_only: bool = False) -> SpeciesMatch:
    """Pair each reference name with a species by code, scientific name (with or without
    authorship) or "Name (code)" label, as :class:`~sinr_qgis.core.species_names.SpeciesIndex`
    finds them (case, Unicode form, spacing and the hybrid sign's spelling ignored). With
    ``by_code_only`` (the NA-Trees protocol) a name matches only a species whose code has the same
    :func:`~sinr_qgis.core.species_names.name_key`, and no near miss is looked for.

    Empty names are dropped; names with the same :func:`~sinr_qgis.core.species_names.name_key`
    appear once (first spelling kept, exactly as given, so callers can look it up). Two names
    meaning the same species (its code and its name) both match it. A name that fits several
    species matches none: it is unmatched and listed in ``ambiguous``. A name one slip or one Latin
    ending away from a species ("Quercus rubrum") stays unmatched, its likely species in ``close``.
    """
    if by_code_only:
        by_code: dict[str, list[Species]] = {}
        for s in species:
            by_code.setdefault(name_key(s.code), []).append(s)
    else:
        index = index_for(species)
    out = SpeciesMatch()
    seen: set[str] = set()
    for n in names:
        text = "" if n is None else str(n)
        k = name_key(text)
        if not k or k in seen:
            continue
        seen.add(k)
        found = by_code.get(k, []) if by_code_only else index.candidates(text)
        if len(found) == 1:
            out.matched[text] = found[0]
        else:
            out.unmatched.append(text)
            if found:
                out.ambiguous[text] = found
            elif not by_code_only and (near := index.suggestions(text, n=1, min_score=ONE_EDIT_SCORE)):
                out.close[text] = near[0]  # said, never matched: a near name may be another species
    return out


# ---- grids and labels --------------------------------------------------------------------------
def _mem_raster(grid: Grid, dtype: int = gdal.GDT_Byte) -> gdal.Dataset:
    ds = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, dtype)
    ds.SetGeoTransform(grid.geotransform)
    ds.SetProjection(grid.crs_wkt)
    return ds


def warp_band_to_grid(path: str, band: int, grid: Grid, resampling: str = "average") -> np.ndarray:
    """Float32 [H, W] of raster ``path`` band ``band`` on ``grid`` (any source CRS); NaN where the
    raster has no data or does not reach. A raster already on ``grid`` is read as it is."""
    src = gdal.Open(str(path))
    if src is None:
        raise GridError(f"Cannot read the raster {path}.")
    if not 1 <= band <= src.RasterCount:
        raise GridError(f"{path} has {src.RasterCount} band(s); band {band} does not exist.")
    b = src.GetRasterBand(band)
    nodata = b.GetNoDataValue()
    same = (src.RasterXSize == grid.width and src.RasterYSize == grid.height
            and np.allclose(src.GetGeoTransform(), grid.geotransform, rtol=0, atol=1e-9 * max(grid.xres, 1e-12))
            and _same_crs(src.GetProjection(), grid))
    if same:
        arr = b.ReadAsArray().astype(np.float32)
    else:
        dst = _mem_raster(grid, gdal.GDT_Float32)
        dst.GetRasterBand(1).SetNoDataValue(np.nan)
        dst.GetRasterBand(1).Fill(np.nan)
        one_band = gdal.Translate("", src, format="VRT", bandList=[band])  # GDAL < 3.7 warps all bands
        opts = gdal.WarpOptions(resampleAlg=resampling, srcNodata=nodata, dstNodata=np.nan, multithread=False)
        if one_band is None or gdal.Warp(dst, one_band, options=opts) is None:
            raise GridError(f"The raster {path} could not be resampled onto the evaluation grid.")
        arr = dst.GetRasterBand(1).ReadAsArray().astype(np.float32)
        nodata = None
    if nodata is not None:
        arr[arr == np.float32(nodata)] = np.nan
    arr[~np.isfinite(arr)] = np.nan
    return arr


def _same_crs(wkt: str, grid: Grid) -> bool:
    if not wkt:
        return False
    srs = osr.SpatialReference()
    if srs.ImportFromWkt(wkt) != 0:
        return False
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return bool(srs.IsSame(grid.srs))


def raster_grid(path: str) -> Grid:
    """The grid of an existing north-up raster (its extent, CRS and size)."""
    ds = gdal.Open(str(path))
    if ds is None:
        raise GridError(f"Cannot read the raster {path}.")
    x0, dx, rx, y0, ry, dy = ds.GetGeoTransform()
    if rx or ry or dx <= 0 or dy >= 0:
        raise GridError(f"{path} is not a north-up raster; warp it first (Raster > Projections > Warp).")
    if not ds.GetProjection():
        raise GridError(f"{path} has no CRS. Assign one before evaluating it.")
    w, h = ds.RasterXSize, ds.RasterYSize
    return Grid((x0, y0 + h * dy, x0 + w * dx, y0), ds.GetProjection(), w, h)


def area_weights(grid: Grid) -> np.ndarray | None:
    """Float64 [H * W] cos(latitude) of each cell centre for a lon/lat grid (the cell area up to a
    constant factor), None for a projected grid (its cells are taken as equal in area)."""
    if not grid.is_geographic:
        return None
    lonlat, ok = grid.lonlat()
    w = np.zeros(grid.n_pixels)
    w[ok] = np.clip(np.cos(np.radians(lonlat[ok, 1])), 0.0, None)
    return w


def valid_cells(grid: Grid, mask_ocean: bool = True) -> np.ndarray:
    """Bool [H * W]: cells whose centre has a lon/lat and (``mask_ocean``) lies on land."""
    from .landmask import load_land_mask

    lonlat, ok = grid.lonlat()
    if mask_ocean:
        ok &= load_land_mask().is_land(lonlat)
    return ok


# ---- per-species scores ------------------------------------------------------------------------
@dataclass
class SpeciesEvaluation:
    """How well one species' scores rank its reference presences on the evaluation cells/points."""

    code: str
    name: str
    reference: str  # the name as written in the reference data
    ap: float  # average precision, 0..1 (NaN: no presence)
    prevalence: float  # (weighted) share of presences among the evaluated cells
    n_cells: int  # cells or points evaluated
    n_presence: int
    threshold: float  # F1-optimal score threshold (probability for model scores)
    f1: float
    iou: float
    precision: float
    recall: float
    curve_precision: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    curve_recall: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    @property
    def ap_percent(self) -> float:
        return 100.0 * self.ap

    def row(self) -> dict[str, object]:
        """The table row: AP in percent, like MAP."""
        return {"code": self.code, "name": self.name, "reference": self.reference,
                "ap": round(self.ap_percent, 4) if math.isfinite(self.ap) else None,
                "prevalence": round(self.prevalence, 6), "n_cells": self.n_cells, "n_presence": self.n_presence,
                "f1_threshold": _round_or_none(self.threshold, 6), "f1": round(self.f1, 6),
                "iou": round(self.iou, 6), "precision": round(self.precision, 6), "recall": round(self.recall, 6),
                "skipped": None}


@dataclass
class SkippedSpecies:
    """A matched species whose reference makes AP meaningless here (see ``metrics.ap_undefined_reason``)."""

    code: str
    name: str
    reference: str
    reason: str  # metrics.ap_undefined_reason's text
    n_cells: int  # cells or points evaluated
    n_presence: int

    def __str__(self) -> str:
        return f"{self.code} ({self.name}): {self.reason}"

    def row(self) -> dict[str, object]:
        """The table row: counts and the reason, every score empty (a user sees why AP is missing)."""
        row: dict[str, object] = dict.fromkeys(TABLE_COLUMNS)
        row.update(code=self.code, name=self.name, reference=self.reference, n_cells=self.n_cells,
                   n_presence=self.n_presence, skipped=self.reason,
                   prevalence=round(self.n_presence / self.n_cells, 6) if self.n_cells else None)
        return row


TABLE_COLUMNS = ("code", "name", "reference", "ap", "prevalence", "n_cells", "n_presence",
                 "f1_threshold", "f1", "iou", "precision", "recall", "skipped")


def _round_or_none(v: float, nd: int) -> float | None:
    return round(float(v), nd) if math.isfinite(v) else None


def evaluate_species(species: Species, reference: str, labels: np.ndarray, scores: np.ndarray,
                     weights: np.ndarray | None = None, *, logits: bool = False,
                     curve_points: int = 400) -> SpeciesEvaluation:
    """Score one species on the evaluated cells/points (``labels`` 0/1, ``scores`` finite).

    With ``logits=True`` the scores are model logits (best for ranking: no float saturation) and the
    F1-optimal threshold is reported as a probability. The stored precision-recall curve is thinned
    to about ``curve_points`` points for plotting. Labels that make AP meaningless
    (``metrics.ap_undefined_reason``) raise ``ValueError``: :func:`evaluate_grid` and
    :func:`evaluate_points` skip such species instead, so no score of 100 % or NaN gets through.
    """
    y = np.asarray(labels).ravel() > 0
    s = np.asarray(scores, dtype=np.float64).ravel()
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    reason = metrics.ap_undefined_reason(y, w)
    if reason is not None:
        raise ValueError(f"{species.code}: {reason}")
    ap = metrics.average_precision(y, s, w)
    best = metrics.f1_optimal_threshold(y, s, w)
    total = float(w.sum()) if w is not None else float(y.size)
    pos = float(w[y].sum()) if w is not None else float(y.sum())
    precision, recall, _thr = metrics.precision_recall_curve(y, s, w)
    if precision.size > curve_points:
        keep = np.unique(np.r_[np.linspace(0, precision.size - 1, curve_points).astype(np.int64), precision.size - 1])
        precision, recall = precision[keep], recall[keep]
    threshold = float(metrics.sigmoid(best.threshold)) if logits else best.threshold
    return SpeciesEvaluation(
        code=species.code, name=species.name, reference=reference, ap=ap,
        prevalence=pos / total if total > 0 else float("nan"), n_cells=int(y.size), n_presence=int(y.sum()),
        threshold=threshold, f1=best.f1, iou=best.iou, precision=best.precision, recall=best.recall,
        curve_precision=precision, curve_recall=recall)


def map_percent(results: Iterable[SpeciesEvaluation]) -> float:
    """Mean AP over the species with a defined AP, in percent, 2 decimals (NaN if none)."""
    mean = metrics.mean_average_precision({str(i): r.ap for i, r in enumerate(results)})
    return round(100.0 * mean, 2) if math.isfinite(mean) else float("nan")


def auto_pixel_size(extent: tuple[float, float, float, float], geographic: bool, cells: int = 400,
                    degrees: float = 0.25) -> float:
    """The default evaluation cell: ``degrees`` on a lon/lat grid, else the extent's longer side
    divided by ``cells``."""
    if geographic:
        return degrees
    return max(extent[2] - extent[0], extent[3] - extent[1]) / cells


# ---- inputs on the grid ------------------------------------------------------------------------
def prediction_bands(path: str, skip_binary: bool = True) -> list[tuple[int, Species]]:
    """The bands of a prediction (or reference) raster and the species each holds: (band, species).

    Species come from the band metadata the plugin writes (SPECIES_CODE, SPECIES_NAME), else from
    the band description (e.g. another tool's "Acer rubrum"), else, for a one-band raster, from the
    file name. With ``skip_binary`` the plugin's 0/1 presence bands (VALUE=binary) are left out;
    the footprint bands a map may end with (VALUE=footprint: distance, novelty) always are.
    """
    ds = gdal.Open(str(path))
    if ds is None:
        raise GridError(f"Cannot read the raster {path}.")
    out: list[tuple[int, Species]] = []
    stem = Path(str(path)).stem
    for i in range(1, ds.RasterCount + 1):
        b = ds.GetRasterBand(i)
        meta = b.GetMetadata() or {}
        value = meta.get("VALUE", "").lower()
        if (skip_binary and value == "binary") or value == "footprint":
            continue
        code = meta.get("SPECIES_CODE", "").strip()
        name = meta.get("SPECIES_NAME", "").strip()
        if not code and not name:
            code = name = (b.GetDescription() or "").strip() or (stem if ds.RasterCount == 1 else f"{stem} band {i}")
        out.append((i, Species(index=len(out), code=code or name, name=name or code, n_train=0)))
    return out


def reference_raster_labels(path: str, grid: Grid) -> list[tuple[str, np.ndarray]]:
    """Reference presence from a raster (cells > 0 = presence): one (species code or name, bool
    [H, W]) per band, resampled to ``grid`` by nearest neighbour (a cell takes the value at its
    centre, the rule polygons follow too). Bands are named as :func:`prediction_bands` finds them."""
    out = []
    for band, sp in prediction_bands(path, skip_binary=False):
        vals = warp_band_to_grid(path, band, grid, resampling="near")
        out.append((sp.code, np.nan_to_num(vals, nan=0.0) > 0))
    return out


@dataclass
class EvaluationResult:
    """Per-species results on one grid or set of points, the species skipped and why, and what was used."""

    results: list[SpeciesEvaluation]
    skipped: list[SkippedSpecies]
    n_valid_cells: int
    area_weighted: bool
    # "code (name): k of its n cells/points have no score ...": locations left out of a species' AP
    unscored: list[str] = field(default_factory=list)

    @property
    def map(self) -> float:
        """Mean AP over the evaluated species, percent, 2 decimals."""
        return map_percent(self.results)

    def rows(self) -> list[dict[str, object]]:
        """The table (``TABLE_COLUMNS``): the evaluated species, then the skipped ones with their reason."""
        return [r.row() for r in self.results] + [s.row() for s in self.skipped]


def _evaluate_or_skip(species: Species, reference: str, labels: np.ndarray, scores: np.ndarray,
                      weights: np.ndarray | None, unit: str, logits: bool) -> SpeciesEvaluation | SkippedSpecies:
    """One species on its scored locations, or why it is skipped (the one rule, ``metrics.ap_undefined_reason``)."""
    reason = metrics.ap_undefined_reason(labels, weights, unit)
    if reason is None:
        return evaluate_species(species, reference, labels, scores, weights, logits=logits)
    y = np.asarray(labels).ravel() > 0
    if weights is not None:
        y = y[np.asarray(weights).ravel() > 0]
    return SkippedSpecies(species.code, species.name, reference, reason, int(y.size), int(y.sum()))


def _unscored_note(species: Species, n_unscored: int, n_total: int, unit: str) -> str | None:
    if not n_unscored:
        return None
    return (f"{species.code} ({species.name}): {n_unscored:,} of its {n_total:,} {unit}s have no score (no "
            "prediction value or no covariate value there) and are left out of its AP")


def evaluate_grid(grid: Grid, references: Sequence[tuple[str, Species, np.ndarray]],
                  scores: dict[str, np.ndarray], *, logits: bool = False, mask_ocean: bool = True,
                  area_weighted: bool = False, is_cancelled: Callable[[], bool] | None = None) -> EvaluationResult:
    """AP and thresholds of each species on the valid cells of ``grid``.

    ``references``: (reference name, species, bool labels [H, W]); ``scores``: species code ->
    float [H, W] with NaN where there is no prediction. A cell is evaluated when its centre has a
    lon/lat, is on land (``mask_ocean``) and has a score. ``area_weighted`` weights cells by
    cos(latitude) on a lon/lat grid (ignored on a projected grid). A species whose evaluated cells
    make AP meaningless (``metrics.ap_undefined_reason``: no cell, no presence, no absence) is
    skipped with that reason; valid cells without a score are counted in ``unscored``. Raises
    ``CancelledError`` when ``is_cancelled`` says so.
    """
    base = valid_cells(grid, mask_ocean)
    weights = area_weights(grid) if area_weighted else None
    if weights is not None:
        base = base & (weights > 0)
    out = EvaluationResult([], [], int(base.sum()), weights is not None)
    for ref_name, sp, labels in references:
        if is_cancelled is not None and is_cancelled():
            raise CancelledError(EVALUATION_CANCELLED)
        s = np.asarray(scores[sp.code], dtype=np.float64).ravel()
        keep = base & np.isfinite(s)
        y = np.asarray(labels, dtype=bool).ravel()[keep]
        r = _evaluate_or_skip(sp, ref_name, y, s[keep], None if weights is None else weights[keep], "cell", logits)
        (out.results if isinstance(r, SpeciesEvaluation) else out.skipped).append(r)
        note = _unscored_note(sp, int(base.sum() - keep.sum()), int(base.sum()), "cell")
        if note:
            out.unscored.append(note)
    return out


def evaluate_points(references: Sequence[tuple[str, Species, np.ndarray, np.ndarray]],
                    scores: dict[str, np.ndarray], *, logits: bool = False) -> EvaluationResult:
    """Presence/absence points: ``references`` (reference name, species, labels [n], point index
    [n] into the scored points); ``scores`` code -> float [N] (NaN = not scorable).

    Skips and unscored points are reported as in :func:`evaluate_grid` (the same rule and text).
    """
    n = max((len(r[3]) for r in references), default=0)
    out = EvaluationResult([], [], n, False)
    for ref_name, sp, labels, index in references:
        s = np.asarray(scores[sp.code], dtype=np.float64)[np.asarray(index, dtype=np.int64)]
        keep = np.isfinite(s)
        y = np.asarray(labels).ravel()[keep] > 0
        r = _evaluate_or_skip(sp, ref_name, y, s[keep], None, "point", logits)
        (out.results if isinstance(r, SpeciesEvaluation) else out.skipped).append(r)
        note = _unscored_note(sp, int(keep.size - keep.sum()), int(keep.size), "point")
        if note:
            out.unscored.append(note)
    return out
