"""Global lon/lat test rasters and points over the whole globe (numpy and GDAL only: tests/core uses
them without torch; tests/training/official_env_data.py builds the official pipeline's inputs on them)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal, osr


def write_global_raster(path: Path, values: np.ndarray, nodata: float | None, dtype: int = gdal.GDT_Float32) -> Path:
    """A north-up global lon/lat GeoTIFF (-180..180, -90..90) of ``values`` [H, W]."""
    h, w = values.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, 1, dtype)
    ds.SetGeoTransform((-180.0, 360.0 / w, 0.0, 90.0, 0.0, -180.0 / h))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(values)
    ds = None
    return path


def worldwide_points(n: int = 600, seed: int = 7) -> np.ndarray:
    """Random (lon, lat) over the whole globe, plus the corners and edges of the grid, float32 [N, 2]."""
    rng = np.random.default_rng(seed)
    edges = [[-180, 90], [180, -90], [180, 0], [-180, -90], [0, 90], [0, -90], [179.99, 89.99]]
    return np.r_[np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)], edges].astype(np.float32)
