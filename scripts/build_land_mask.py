"""Build ``resources/land_mask.tif``, the global land mask the plugin samples to blank out oceans.

Source: the PyPI package ``global-land-mask`` (MIT licence, Todd Karin), which ships the GLOBE
1-km digital elevation project's land/ocean mask (NOAA NGDC, public domain) as a boolean
21600 x 43200 array at 30 arc-seconds: row 0 starts at +90 deg latitude, column 0 at -180 deg
longitude, ``True`` = ocean. Most lakes count as land.

What this script does, reproducibly:
1. aggregates the 30" mask to ``--resolution`` degrees (default 0.05 deg = 6 x 6 source cells) by
   majority: an output cell is land (1) when at least half of its source cells are land;
2. writes a 1-bit (``NBITS=1``) uint8 GeoTIFF in EPSG:4326, pixel-is-area, extent
   -180..180 x -90..90, DEFLATE-compressed and tiled, with provenance in its metadata.

The file is a few hundred kB, small enough to ship in the plugin. Run it once after changing it:

    .venv/bin/pip install global-land-mask==1.0.0
    .venv/bin/python scripts/build_land_mask.py            # -> resources/land_mask.tif

``sinr_qgis/core/landmask.py`` reads the result and samples it at pixel centres (nearest).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sinr_qgis.core.atomic import atomic_path  # noqa: E402
from sinr_qgis.core.resources import LAND_MASK  # noqa: E402

SOURCE_RES = 1.0 / 120.0  # 30 arc-seconds


def load_source() -> np.ndarray:
    """The package's ocean mask as a boolean array (True = ocean), row 0 at +90 deg."""
    try:
        from global_land_mask import globe
    except ImportError:
        sys.exit("Install the source first: .venv/bin/pip install global-land-mask==1.0.0")
    mask = np.asarray(globe._mask, dtype=bool)
    lat, lon = globe._lat, globe._lon
    # Check the layout this script relies on: top edge +90, left edge -180, 30" cells.
    if mask.shape != (21600, 43200) or abs(lat[0] - 90) > 1e-9 or abs(lon[0] + 180) > 1e-9:
        sys.exit(f"Unexpected global-land-mask layout {mask.shape}, lat0={lat[0]}, lon0={lon[0]}")
    return mask


def aggregate(ocean: np.ndarray, factor: int) -> np.ndarray:
    """Majority land (>= half the source cells) per ``factor`` x ``factor`` block -> uint8 0/1."""
    h, w = ocean.shape[0] // factor, ocean.shape[1] // factor
    out = np.empty((h, w), dtype=np.uint8)
    step = 600  # output rows per chunk: keeps memory small
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        land = ~ocean[r0 * factor:r1 * factor]
        counts = land.reshape(r1 - r0, factor, w, factor).sum(axis=(1, 3))
        out[r0:r1] = counts * 2 >= factor * factor
    return out


def write(mask: np.ndarray, res: float, path: Path) -> None:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    with atomic_path(path) as tmp:
        ds = gdal.GetDriverByName("GTiff").Create(
            str(tmp), mask.shape[1], mask.shape[0], 1, gdal.GDT_Byte,
            ["NBITS=1", "COMPRESS=DEFLATE", "ZLEVEL=9", "TILED=YES", "BLOCKXSIZE=512", "BLOCKYSIZE=512"])
        ds.SetGeoTransform((-180.0, res, 0.0, 90.0, 0.0, -res))
        ds.SetProjection(srs.ExportToWkt())
        ds.SetMetadata({
            "DESCRIPTION": "Global land mask: 1 = land (incl. most lakes), 0 = ocean",
            "SOURCE": "PyPI global-land-mask 1.0.0 (MIT, Todd Karin): GLOBE 30-arc-second mask "
                      "(NOAA NGDC, public domain)",
            "METHOD": f"majority of {round(res / SOURCE_RES)}x{round(res / SOURCE_RES)} source cells",
            "BUILT_BY": "scripts/build_land_mask.py",
        })
        band = ds.GetRasterBand(1)
        band.SetDescription("land")
        band.WriteArray(mask)
        ds.FlushCache()
        ds = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=float, default=0.05,
                    help="output cell size in degrees; a multiple of 1/120 that divides 180 (default 0.05)")
    ap.add_argument("--output", type=Path, default=LAND_MASK)
    args = ap.parse_args()
    factor = round(args.resolution / SOURCE_RES)
    if factor < 1 or abs(factor * SOURCE_RES - args.resolution) > 1e-9 or 21600 % factor:
        sys.exit(f"--resolution must be a multiple of 1/120 deg that divides 180 deg, got {args.resolution}")
    mask = aggregate(load_source(), factor)
    write(mask, factor * SOURCE_RES, args.output)
    print(f"wrote {args.output}: {mask.shape[1]} x {mask.shape[0]} cells of {factor * SOURCE_RES:g} deg, "
          f"{mask.mean():.1%} land, {args.output.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
