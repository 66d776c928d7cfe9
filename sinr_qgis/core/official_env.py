"""The environmental inputs of the official SINR models, rebuilt exactly from the user's rasters.

The official code (github.com/elijahcole/sinr: ``data/env/format_env_feats.py``, ``datasets.py``,
``utils.py``) feeds its ``env`` and ``sin_cos_env`` models from WorldClim 2.1 at 5 arc-minutes:

- one channel per file: elevation first, then bio_1 ... bio_19 (sorted by their number);
- a cell is missing when its raw value is NaN or below -1e6 (WorldClim's float fill, -3.4e38); the
  files' declared nodata is not read (the script reads raw values), so a fill value above -1e6
  counts as a value;
- each channel is standardised over the valid cells of the whole global raster, in float64:
  ``(v - mean) / std`` with ``std`` that of the centred values (ddof 0), then stored as float16;
  missing cells become 0 *after* standardising (the channel's mean);
- at (lon, lat) degrees, in float32: ``x = (lon/180 + 1)/2 * (W - 1)`` and
  ``y = (1 - (lat/90 + 1)/2) * (H - 1)``: the first and last cell centres sit on -180/180 and
  90/-90 (the grid's corners, not its cell centres); bilinear between cells ``floor(x)`` and
  ``floor(x) + 1`` (clamped to the last column; the same for rows), summed in float32;
- ``sin_cos_env`` is [the 4 sin_cos features, then the channels].

:func:`read_official_env` computes the statistics from the user's rasters; a bundle stores them
(``model.json`` ``encoding.covariates`` and ``encoding.covariate_sampling``) and
:class:`OfficialBandSampler` reproduces the official input values at any point, reading only a
window of the raster. numpy + GDAL only.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .covariates import gdal_read_errors
from .errors import CancelledError, CovariateError

METHOD = "sinr_official"
MISSING_BELOW = -1e6
WORLDCLIM_5M = (2160, 4320)  # rows, columns of the global 5 arc-minute grid the official models read
WORLDCLIM_HELP = ("the WorldClim 2.1 rasters at 5 arc-minutes: elevation (wc2.1_5m_elev.zip) and bio1 ... bio19 "
                  "(wc2.1_5m_bio.zip), from worldclim.org, unchanged")
DESCRIPTION = ("As the official SINR code: cells below -1e6 or NaN are missing; each covariate standardised by its "
               "mean and standard deviation over the valid cells of the global raster, rounded to float16, missing "
               "cells 0 after standardising; bilinear sampling with the grid's first and last cells centred on "
               "-180/180 and 90/-90.")
_WINDOW_PIXELS = 1 << 22  # cells read at once when sampling (32 MB as float64)


@dataclass
class OfficialEnv:
    """Covariates prepared as the official code prepares them (one per raster band, model order).

    ``names``, ``means``, ``stds``, ``files`` (the raster each came from): one entry per covariate;
    ``grid``: (rows, columns) shared by every raster; ``warnings``: what the user should know (a
    grid other than WorldClim's 5 arc-minutes, names not recognised as WorldClim's, a declared
    nodata counted as a value)."""

    names: list[str]
    means: list[float]
    stds: list[float]
    files: list[str]
    grid: tuple[int, int]
    warnings: list[str] = field(default_factory=list)

    def encoding_meta(self, encoding: str) -> dict[str, Any]:
        """``model.json`` ``encoding`` of a bundle using these covariates with ``encoding``."""
        return {"name": encoding,
                "covariates": [{"name": n, "mean": m, "std": s, "file": f}
                               for n, m, s, f in zip(self.names, self.means, self.stds, self.files)],
                "covariate_sampling": {"method": METHOD, "grid": list(self.grid), "missing_below": MISSING_BELOW,
                                       "cell_dtype": "float16", "description": DESCRIPTION}}

    def to_json(self, path: str | Path) -> Path:
        """Write these statistics as JSON (what the converter process reads with ``--covariate-stats``)."""
        p = Path(path)
        p.write_text(json.dumps({"names": self.names, "means": self.means, "stds": self.stds, "files": self.files,
                                 "grid": list(self.grid), "warnings": self.warnings}), encoding="utf-8")
        return p

    @classmethod
    def from_json(cls, path: str | Path) -> OfficialEnv:
        """Read :meth:`to_json`'s file; ``CovariateError`` when it is not such a file."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
            env = cls(names=[str(n) for n in d["names"]], means=[float(m) for m in d["means"]],
                      stds=[float(s) for s in d["stds"]], files=[str(f) for f in d["files"]],
                      grid=(int(d["grid"][0]), int(d["grid"][1])), warnings=[str(w) for w in d.get("warnings", [])])
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise CovariateError(f"Covariate statistics file {Path(path).name} cannot be read ({exc}). "
                                 "Compute it again from the rasters.") from None
        if not len(env.names) == len(env.means) == len(env.stds) == len(env.files):
            raise CovariateError(f"Covariate statistics file {Path(path).name} is inconsistent. "
                                 "Compute it again from the rasters.")
        return env


def sampling_problem(encoding: Mapping[str, Any]) -> str | None:
    """What is wrong with a bundle's ``encoding.covariate_sampling`` (``model.json``), or None when
    it is absent or valid: method ``sinr_official`` on a covariate encoding, a (rows, columns)
    grid of at least 2 x 2 cells, and a finite mean and positive std for every covariate."""
    sampling = encoding.get("covariate_sampling")
    if sampling is None:
        return None
    if not isinstance(sampling, Mapping) or sampling.get("method") != METHOD:
        method = sampling.get("method") if isinstance(sampling, Mapping) else sampling
        return f"covariate sampling {method!r} is unknown to this version of the plugin. Update the plugin."
    if encoding.get("name") not in ("env", "sin_cos_env"):
        return f"covariate sampling {METHOD!r} needs an environmental encoding, not {encoding.get('name')!r}."
    try:
        grid_ok = len(sampling["grid"]) == 2 and min(int(g) for g in sampling["grid"]) >= 2
        stats_ok = all(np.isfinite(float(c["mean"])) and float(c["std"]) > 0 for c in encoding.get("covariates", []))
    except (KeyError, TypeError, ValueError):
        grid_ok = stats_ok = False
    if not (grid_ok and stats_ok):
        return ("covariate sampling 'sinr_official' needs a grid [rows, columns] and each covariate's mean and "
                "positive std. Import the checkpoint again.")
    return None


def worldclim_variable(name: str) -> int | None:
    """0 for an elevation layer, n for bioclim variable n (1..19), from a WorldClim-style name
    ('wc2.1_5m_elev', 'wc2.1_5m_bio_12', 'bio12', 'BIO_03'); None when the name says neither."""
    s = name.lower()
    m = re.search(r"bio(?:clim)?[_\s.-]*0*(\d{1,2})(?!\d)", s)
    if m:
        return int(m.group(1)) if 1 <= int(m.group(1)) <= 19 else None
    return 0 if re.search(r"elev|(?<![a-z])(?:alt|dem)(?![a-z])", s) else None


def official_order(names: Sequence[str]) -> list[int] | None:
    """Indices putting ``names`` in the official order (elevation, then bio1..bio19 by number),
    as the official preparation script sorts its files; None unless every name is a distinct
    WorldClim variable."""
    keys = [worldclim_variable(n) for n in names]
    if any(k is None for k in keys) or len(set(keys)) != len(keys):
        return None
    return sorted(range(len(names)), key=lambda i: keys[i])


def _variable_label(key: int) -> str:
    return "elevation" if key == 0 else f"bio{key}"


def missing_worldclim(names: Sequence[str], n_needed: int) -> list[str]:
    """The WorldClim variables (elevation, bio1..bio19) an official model of ``n_needed`` covariates
    lacks, when ``names`` are WorldClim names and ``n_needed`` is the official 20; else []."""
    keys = {worldclim_variable(n) for n in names}
    if n_needed != 20 or None in keys:
        return []
    return [_variable_label(k) for k in range(20) if k not in keys]


def standardised_cells(raw: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Official input cells: raw values (any dtype) -> float32 z-scores rounded to float16, 0 where missing."""
    v = np.asarray(raw, dtype=np.float64)
    missing = np.isnan(v) | (v < MISSING_BELOW)
    with np.errstate(invalid="ignore", over="ignore"):
        z = ((v - mean) / std).astype(np.float16).astype(np.float32)
    z[missing] = 0.0
    return z


def pixel_coordinates(lonlat: np.ndarray, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Continuous (x, y) cell coordinates of (lon, lat) degrees [N, 2] on a global ``grid`` (rows,
    columns), computed in float32 step by step as the official code does -> float32 [N] each."""
    ll = np.asarray(lonlat, dtype=np.float32).reshape(-1, 2)
    x = ll[:, 0] / np.float32(180.0)
    y = ll[:, 1] / np.float32(90.0)
    x = (x + np.float32(1.0)) / np.float32(2.0)
    y = np.float32(1.0) - (y + np.float32(1.0)) / np.float32(2.0)
    return x * np.float32(grid[1] - 1), y * np.float32(grid[0] - 1)


def bilinear(cells: np.ndarray, x: np.ndarray, y: np.ndarray, row0: int = 0, col0: int = 0,
             grid: tuple[int, int] | None = None) -> np.ndarray:
    """Official bilinear values [N] float32 of ``cells`` [h, w] (a window whose first cell is
    (``row0``, ``col0``) of ``grid``, default: the whole grid) at cell coordinates ``x``, ``y``."""
    rows, cols = grid or cells.shape
    xf, yf = np.floor(x), np.floor(y)
    xx, yy = xf.astype(np.int64), yf.astype(np.int64)
    xx1, yy1 = np.minimum(xx + 1, cols - 1), np.minimum(yy + 1, rows - 1)
    dx, dy = x - xf, y - yf
    one = np.float32(1.0)
    xx, xx1, yy, yy1 = xx - col0, xx1 - col0, yy - row0, yy1 - row0
    # the official expression, term by term and summed left to right, so float32 rounds alike
    return (cells[yy, xx] * (one - dx) * (one - dy) + cells[yy, xx1] * dx * (one - dy)
            + cells[yy1, xx] * (one - dx) * dy + cells[yy1, xx1] * dx * dy)


def _open_global(path: str | Path, purpose: str) -> Any:
    """Open a raster that must be a north-up global lon/lat grid (-180..180, -90..90)."""
    from osgeo import gdal, osr

    p = Path(path)
    if not p.is_file():
        raise CovariateError(f"Covariate raster {p} does not exist. Choose {WORLDCLIM_HELP}.")
    with gdal_read_errors(p) as failures:
        ds = gdal.Open(str(p))
        if ds is None:
            raise CovariateError(f"Cannot read covariate raster {p.name}: "
                                 f"{failures[0] if failures else 'GDAL does not recognise it as a raster'}.")
    wkt = ds.GetProjection()
    if wkt and not osr.SpatialReference(wkt=wkt).IsGeographic():
        raise CovariateError(f"Covariate raster {p.name} is not in longitude/latitude degrees; {purpose} "
                             f"reads {WORLDCLIM_HELP}.")
    x0, dx, rx, y0, ry, dy = ds.GetGeoTransform()
    w, h = ds.RasterXSize, ds.RasterYSize
    tol = 0.01 * abs(dx)
    west, east, north, south = x0, x0 + w * dx, y0, y0 + h * dy
    if rx or ry or dy >= 0 or max(abs(west + 180), abs(east - 180), abs(north - 90), abs(south + 90)) > tol:
        raise CovariateError(
            f"Covariate raster {p.name} covers longitude {west:g}..{east:g}, latitude {south:g}..{north:g}; "
            f"{purpose} reads a north-up global grid (-180..180, -90..90), as {WORLDCLIM_HELP}. "
            "Give the global files, not a clipped, shifted (0..360) or reprojected copy.")
    return ds


def _named_bands(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, int, str]], tuple[int, int]]:
    """Every band of ``paths`` as (file, band number, covariate name), and the common grid
    (rows, columns). Raises ``CovariateError`` for no paths, a raster that is not a global lon/lat
    grid, or grids of different sizes."""
    if not paths:
        raise CovariateError(f"No covariate raster given. The model reads {WORLDCLIM_HELP}.")
    bands: list[tuple[Path, int, str]] = []
    grid: tuple[int, int] | None = None
    for path in paths:
        ds = _open_global(path, "an official SINR environmental model")
        shape = (ds.RasterYSize, ds.RasterXSize)
        if grid is not None and shape != grid:
            raise CovariateError(f"Covariate raster {Path(path).name} has {shape[1]} x {shape[0]} cells, "
                                 f"{Path(paths[0]).name} {grid[1]} x {grid[0]}; the official inputs are one "
                                 f"stack of equal grids. Give {WORLDCLIM_HELP}.")
        grid = shape
        stem = Path(path).stem
        for b in range(1, ds.RasterCount + 1):
            desc = ds.GetRasterBand(b).GetDescription()
            if ds.RasterCount > 1:
                name = desc or f"{stem}_b{b}"
            else:  # WorldClim's own files are named for their variable
                name = stem if worldclim_variable(stem) is not None else desc or stem
            bands.append((Path(path), b, name))
        ds = None
    assert grid is not None
    return bands, grid


def read_official_env(paths: Sequence[str | Path], progress: Callable[[float], None] | None = None,
                      is_cancelled: Callable[[], bool] | None = None) -> OfficialEnv:
    """Statistics of the official inputs from global rasters (each band one covariate).

    Covariates are put in the official order (elevation, bio1..bio19) when every band's name (its
    description, or the file name for a single-band file) is a WorldClim variable; otherwise they
    keep the given order and a warning says so. Reads one band at a time (a 5 arc-minute band is
    9.3 million cells). ``progress`` gets 0..100. Raises ``CovariateError`` for a missing or
    unreadable raster, one that is not a global lon/lat grid, grids of different sizes, a band
    without valid cells or with one value only; ``CancelledError`` on cancel."""
    bands, grid = _named_bands(paths)
    names = [n for _p, _b, n in bands]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CovariateError(f"Covariate {', '.join(repeated)} is given more than once. Give each raster once: "
                             f"{WORLDCLIM_HELP}.")
    warnings: list[str] = []
    order = official_order(names)
    if order is None:
        warnings.append("The covariate names are not all WorldClim names (elevation, bio1 ... bio19), so they are "
                        "used in the order given: " + ", ".join(names) + ".")
    else:
        bands = [bands[i] for i in order]
    if grid != WORLDCLIM_5M:
        warnings.append(f"The rasters have {grid[1]} x {grid[0]} cells; the official models were trained on WorldClim "
                        f"2.1 at 5 arc-minutes ({WORLDCLIM_5M[1]} x {WORLDCLIM_5M[0]}), so their inputs differ.")
    means, stds = [], []
    for i, (p, b, name) in enumerate(bands):
        if is_cancelled is not None and is_cancelled():
            raise CancelledError("Cancelled while reading the covariate rasters; no model was written.")
        mean, std, note = _band_statistics(p, b, name)
        means.append(mean)
        stds.append(std)
        if note:
            warnings.append(note)
        if progress is not None:
            progress(100.0 * (i + 1) / len(bands))
    return OfficialEnv(names=[n for _p, _b, n in bands], means=means, stds=stds,
                       files=[p.name for p, _b, _n in bands], grid=grid, warnings=warnings)


def _band_statistics(path: Path, band: int, name: str) -> tuple[float, float, str]:
    """(mean, std, note) of one band's valid cells, computed as the official script does."""
    from osgeo import gdal

    with gdal_read_errors(path) as failures:
        ds = gdal.Open(str(path))
        b = ds.GetRasterBand(band)
        raw = b.ReadAsArray()
        if raw is None:
            raise CovariateError(f"Cannot read band {band} of covariate raster {path.name}: "
                                 f"{failures[0] if failures else 'no data returned'}.")
        nodata = b.GetNoDataValue()
    v = raw.astype(np.float64)
    del raw
    valid = v[~(np.isnan(v) | (v < MISSING_BELOW))]  # row-major order, as the official mask selects
    if valid.size == 0:
        raise CovariateError(f"Covariate {name} ({path.name}) has no valid cell (every value is missing or below "
                             "-1e6). Choose the original WorldClim raster.")
    mean = float(valid.mean())
    centred = valid - mean
    std = float(centred.std())
    if not std > 0:
        raise CovariateError(f"Covariate {name} ({path.name}) has one value everywhere ({valid[0]:g}), so it cannot "
                             "be standardised. Choose the original WorldClim raster.")
    note = ""
    if nodata is not None and np.isfinite(nodata) and nodata >= MISSING_BELOW:
        n_fill = int(np.count_nonzero(v == nodata))
        if n_fill:
            note = (f"{path.name} declares nodata {nodata:g} on {n_fill:,} cells; the official preparation counted "
                    f"them as values (it treats only values below -1e6 as missing), so they are kept as values "
                    "to give the model the inputs it was trained with.")
    return mean, std, note


class OfficialBandSampler:
    """Official input values of one covariate (a raster band) at (lon, lat) points.

    ``covariate``: the bundle's covariate entry (``mean``, ``std``); ``grid``: the (rows, columns)
    the statistics were computed on; the raster must be that global grid. Only the cells around
    the requested points are read."""

    def __init__(self, path: str | Path, band: int, covariate: Mapping[str, Any], grid: Sequence[int]) -> None:
        self.path, self.band = Path(path), int(band)
        self.name = str(covariate.get("name", self.path.stem))
        self.mean, self.std = float(covariate["mean"]), float(covariate["std"])
        self.grid = (int(grid[0]), int(grid[1]))
        ds = _open_global(self.path, f"covariate {self.name} of an imported official SINR model")
        if (ds.RasterYSize, ds.RasterXSize) != self.grid:
            raise CovariateError(
                f"Covariate raster {self.path.name} has {ds.RasterXSize} x {ds.RasterYSize} cells; the model was "
                f"imported with its covariates on a {self.grid[1]} x {self.grid[0]} grid, and its statistics "
                "belong to those rasters. Give the rasters the model was imported with.")
        if not 1 <= self.band <= ds.RasterCount:
            raise CovariateError(f"Covariate raster {self.path.name} has {ds.RasterCount} band(s); band {self.band} "
                                 "does not exist.")
        self._ds = ds

    def sample(self, lonlat: np.ndarray) -> np.ndarray:
        """float64 [N]: the official input at each (lon, lat) degrees; NaN only for a non-finite point
        or one off the globe (every point on it has a value: missing cells read as 0)."""
        ll = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        out = np.full(len(ll), np.nan)
        ok = np.isfinite(ll).all(axis=1)
        ok[ok] = (np.abs(ll[ok, 0]) <= 180.0) & (np.abs(ll[ok, 1]) <= 90.0)
        pick = np.flatnonzero(ok)
        if not pick.size:
            return out
        x, y = pixel_coordinates(ll[pick], self.grid)
        rows = np.floor(y).astype(np.int64)
        c0, c1 = int(np.floor(x).min()), min(self.grid[1], int(np.floor(x).max()) + 2)
        strip = max(1, _WINDOW_PIXELS // (c1 - c0) - 1)
        order = np.argsort(rows, kind="stable")
        pick, x, y, rows = pick[order], x[order], y[order], rows[order]
        band = self._ds.GetRasterBand(self.band)
        start = 0
        while start < len(pick):
            r0 = int(rows[start])
            stop = int(np.searchsorted(rows, r0 + strip, side="left"))
            r1 = min(self.grid[0], int(rows[stop - 1]) + 2)
            with gdal_read_errors(self.path) as failures:
                raw = band.ReadAsArray(c0, r0, c1 - c0, r1 - r0)
                if raw is None:
                    raise CovariateError(f"Reading covariate raster {self.path.name} failed: "
                                         f"{failures[0] if failures else 'no data returned'}.")
            cells = standardised_cells(raw, self.mean, self.std)
            out[pick[start:stop]] = bilinear(cells, x[start:stop], y[start:stop], r0, c0, self.grid)
            start = stop
        return out
