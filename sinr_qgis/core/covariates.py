"""Covariate rasters (e.g. bioclim grids) sampled bilinearly at (lon, lat) points. numpy + GDAL.

The rasters must be in geographic lon/lat degrees (EPSG:4326 or another geographic CRS on the
same axes). Each band is one covariate, in band order, rasters after each other. Nodata cells
(declared, or undeclared fill values such as -3.4e38: :func:`missing_cells`) and points outside
a raster read as NaN; bilinear weights are renormalised over the valid
neighbours so coasts do not bleed nodata inwards (a point whose four neighbours are all nodata
is NaN). Standardisation statistics (mean, std) are taken over each band's valid cells.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CovariateError

FILL_MAGNITUDE = np.float32(1e30)  # beyond any covariate's values; fill values sit at float32's extremes


@dataclass
class CovariateRaster:
    """One raster file read into memory: ``values`` float32 [k, H, W] with NaN for nodata."""

    path: Path
    names: list[str]
    values: np.ndarray
    geotransform: tuple[float, ...]

    @property
    def n_bands(self) -> int:
        return int(self.values.shape[0])

    def sample(self, lonlat: np.ndarray) -> np.ndarray:
        """Bilinear values at points (lon, lat) degrees [N, 2] -> float64 [N, k] (NaN = missing)."""
        lonlat = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        x0, dx, _, y0, _, dy = self.geotransform
        _, h, w = self.values.shape
        # continuous pixel coordinates with pixel centres at integers
        px = (lonlat[:, 0] - x0) / dx - 0.5
        py = (lonlat[:, 1] - y0) / dy - 0.5
        inside = (px >= -0.5) & (px <= w - 0.5) & (py >= -0.5) & (py <= h - 0.5)
        inside &= np.isfinite(px) & np.isfinite(py)
        px = np.where(inside, px, 0.0)
        py = np.where(inside, py, 0.0)
        ix, iy = np.floor(px), np.floor(py)
        fx, fy = px - ix, py - iy
        ix0 = np.clip(ix.astype(np.int64), 0, w - 1)
        iy0 = np.clip(iy.astype(np.int64), 0, h - 1)
        ix1 = np.clip(ix.astype(np.int64) + 1, 0, w - 1)
        iy1 = np.clip(iy.astype(np.int64) + 1, 0, h - 1)
        out = np.full((len(lonlat), self.n_bands), np.nan)
        corners = ((iy0, ix0, (1 - fx) * (1 - fy)), (iy0, ix1, fx * (1 - fy)),
                   (iy1, ix0, (1 - fx) * fy), (iy1, ix1, fx * fy))
        for b in range(self.n_bands):
            band = self.values[b]
            acc = np.zeros(len(lonlat))
            wsum = np.zeros(len(lonlat))
            for r, c, wt in corners:
                v = band[r, c].astype(np.float64)
                ok = np.isfinite(v)
                acc += np.where(ok, v * wt, 0.0)
                wsum += np.where(ok, wt, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                val = acc / wsum
            out[:, b] = np.where(inside & (wsum > 1e-12), val, np.nan)
        return out

    def band_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of each band over its valid cells (std 1 where it would be 0)."""
        mean = np.zeros(self.n_bands)
        std = np.ones(self.n_bands)
        for b in range(self.n_bands):  # one band at a time: no float64 copy of the whole stack
            valid = self.values[b][np.isfinite(self.values[b])]
            if valid.size:
                mean[b] = valid.mean(dtype=np.float64)
                std[b] = valid.std(dtype=np.float64)
        std = np.where(std > 0, std, 1.0)
        return mean, std


def missing_cells(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """bool mask (the shape of float32 ``values``) of the cells that hold no covariate value: the
    declared ``nodata``, NaN and infinities, and undeclared fill values, |v| >= ``FILL_MAGNITUDE``
    (float32's extremes, WorldClim's -3.4e38, written without a nodata tag by many tools). Training
    and prediction both read rasters through it, so they agree on what is missing."""
    missing = ~np.isfinite(values) | (np.abs(values) >= FILL_MAGNITUDE)
    if nodata is not None:
        missing |= values == np.float32(nodata)
    return missing


@contextlib.contextmanager
def gdal_read_errors(p: Path) -> Iterator[list[str]]:
    """GDAL failures inside the block become one ``CovariateError`` naming ``p``, whether GDAL
    exceptions are on or off: that mode is process-wide, QGIS's and other plugins' to choose, so it
    is never changed here. Yields the failure messages so far (for calls that return None)."""
    from osgeo import gdal

    failures: list[str] = []

    def collect(err_class: int, _err_no: int, message: str) -> None:
        if err_class >= gdal.CE_Failure:
            failures.append(message.strip())

    gdal.PushErrorHandler(collect)  # also keeps GDAL's messages off stderr
    try:
        yield failures
    except RuntimeError as exc:  # GDAL exceptions on (by QGIS or another plugin)
        failures.append(str(exc).strip())
    finally:
        gdal.PopErrorHandler()
    if failures:
        raise _unreadable(p, failures[0])


def _unreadable(p: Path, why: str) -> CovariateError:
    return CovariateError(f"Cannot read covariate raster {p.name}: {why.rstrip('.')}. "
                          "Choose a raster file GDAL can read (e.g. a GeoTIFF).")


def read_covariate_raster(path: str | Path) -> CovariateRaster:
    """Read all bands of a lon/lat GeoTIFF (or any GDAL raster) into memory.

    Raises ``CovariateError`` when the file is missing, unreadable (a message from GDAL), not in
    lon/lat degrees, rotated or without bands."""
    from osgeo import gdal, osr

    p = Path(path)
    if not p.is_file():
        raise CovariateError(f"Covariate raster {p} does not exist.")
    with gdal_read_errors(p) as failures:
        ds = gdal.Open(str(p))
        if ds is None:
            raise _unreadable(p, failures[0] if failures else "GDAL does not recognise it as a raster")
        srs_wkt = ds.GetProjection()
        gt = ds.GetGeoTransform()
        names, bands, nodatas = [], [], []
        for i in range(1, ds.RasterCount + 1):
            band = ds.GetRasterBand(i)
            arr = band.ReadAsArray()
            if arr is None:
                raise _unreadable(p, failures[0] if failures else f"band {i} cannot be read")
            bands.append(arr.astype(np.float32))
            nodatas.append(band.GetNoDataValue())
            names.append(band.GetDescription() or f"{p.stem}_b{i}")
    if srs_wkt:
        srs = osr.SpatialReference(wkt=srs_wkt)
        if not srs.IsGeographic():
            raise CovariateError(f"Covariate raster {p.name} is not in geographic lon/lat degrees; "
                                 "reproject it to EPSG:4326 first.")
    if gt[2] != 0 or gt[4] != 0:
        raise CovariateError(f"Covariate raster {p.name} is rotated; warp it to a north-up grid first.")
    for arr, nodata in zip(bands, nodatas):
        arr[missing_cells(arr, nodata)] = np.nan
    if not bands:
        raise CovariateError(f"Covariate raster {p.name} has no bands.")
    return CovariateRaster(path=p, names=names, values=np.stack(bands), geotransform=tuple(gt))


class CovariateStack:
    """Several covariate rasters used together; covariates in file order, then band order."""

    def __init__(self, rasters: Sequence[CovariateRaster]) -> None:
        self.rasters = list(rasters)
        names = [n for r in self.rasters for n in r.names]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise CovariateError(f"Covariate names repeat across rasters: {', '.join(dup)}. "
                                 "Give each band a unique description.")
        self.names = names

    @classmethod
    def open(cls, paths: Sequence[str | Path]) -> CovariateStack:
        if not paths:
            raise CovariateError("No covariate raster given.")
        return cls([read_covariate_raster(p) for p in paths])

    @property
    def n_covariates(self) -> int:
        return len(self.names)

    def sample(self, lonlat: np.ndarray) -> np.ndarray:
        """Raw covariate values at (lon, lat) [N, 2] -> float64 [N, k], NaN where missing."""
        return np.concatenate([r.sample(lonlat) for r in self.rasters], axis=1)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-covariate (mean, std) over valid raster cells."""
        ms = [r.band_stats() for r in self.rasters]
        return np.concatenate([m for m, _ in ms]), np.concatenate([s for _, s in ms])


def sample_covariates(paths: Sequence[str | Path], lonlat: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Convenience: raw values [N, k] at ``lonlat`` and the covariate names."""
    stack = CovariateStack.open(paths)
    return stack.sample(lonlat), stack.names
