"""The global land mask: is a (lon, lat) on land? Used to blank out ocean pixels of range maps.

The mask is ``resources/land_mask.tif``, a 0.05 deg 1-bit EPSG:4326 raster built once by
``scripts/build_land_mask.py`` from the PyPI package ``global-land-mask`` (GLOBE data; most lakes
count as land). It is read once per process (about 26 MB in memory) and sampled by nearest
neighbour::

    from sinr_qgis.core.landmask import is_land
    land = is_land(lonlat)          # lonlat: [n, 2] degrees -> bool [n]; NaN rows -> False

Longitudes are wrapped, so -190 deg is 170 deg. A custom mask file (any 1-band EPSG:4326
north-up raster, non-zero = land) can be passed as ``path``.
"""
from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np
from osgeo import gdal

from .errors import GridError
from .resources import LAND_MASK

_lock = threading.Lock()


class LandMask:
    """A global land/ocean raster held in memory, sampled by nearest neighbour."""

    def __init__(self, path: str | Path = LAND_MASK) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise GridError(f"The land mask {self.path} is missing. Reinstall the plugin, or rebuild it "
                            "with scripts/build_land_mask.py, or turn the ocean mask off.")
        ds = gdal.Open(str(self.path))
        if ds is None:
            raise GridError(f"The land mask {self.path} cannot be read. Rebuild it with scripts/build_land_mask.py.")
        x0, dx, rx, y0, ry, dy = ds.GetGeoTransform()
        if rx or ry or dx <= 0 or dy >= 0:
            raise GridError(f"The land mask {self.path} must be a north-up EPSG:4326 raster.")
        self.origin = (x0, y0)
        self.res = (dx, -dy)
        self.data = ds.GetRasterBand(1).ReadAsArray() != 0
        ds = None

    def is_land(self, lonlat: np.ndarray) -> np.ndarray:
        """Bool [n]: True where the cell containing (lon, lat) is land; NaN coordinates -> False."""
        ll = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        ok = np.isfinite(ll).all(axis=1)
        out = np.zeros(ll.shape[0], dtype=bool)
        if not ok.any():
            return out
        lon = np.mod(ll[ok, 0] - self.origin[0], 360.0)  # wrap: the mask spans the whole globe
        lat = self.origin[1] - ll[ok, 1]
        h, w = self.data.shape
        col = np.clip((lon / self.res[0]).astype(np.int64), 0, w - 1)
        row = np.clip((lat / self.res[1]).astype(np.int64), 0, h - 1)
        out[ok] = self.data[row, col]
        return out


@functools.lru_cache(maxsize=2)
def _load(path: str) -> LandMask:
    return LandMask(path)


def load_land_mask(path: str | Path | None = None) -> LandMask:
    """The land mask at ``path`` (default: the shipped one), loaded once and shared (thread-safe)."""
    with _lock:
        return _load(str(Path(path) if path else LAND_MASK))


def is_land(lonlat: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """Bool [n]: whether each (lon, lat) in degrees is on land according to the shipped mask."""
    return load_land_mask(path).is_land(lonlat)
