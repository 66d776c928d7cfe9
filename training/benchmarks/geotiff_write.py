"""What writing one prediction GeoTIFF costs, for the COG options the plugin could use (issue 12).

Builds a smooth 1024 x 1024 float32 probability field with an ocean of NaN (like a canvas map),
then times, interleaved round by round (best of N), GDAL's COG driver from an in-memory raster with:
the old options (DEFLATE level 6, AVERAGE pyramid), the shipped ones (``core.raster_io``: DEFLATE
``DEFLATE_LEVEL`` and a pyramid only above ``OVERVIEW_MIN_SIDE``), and the alternatives weighed
(no pyramid at level 6, ZSTD, LZW, no compression). Prints milliseconds, file sizes and each
variant's time as a ratio of the old options.

    .venv/bin/python training/benchmarks/geotiff_write.py --rounds 5 --side 1024
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from osgeo import gdal

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: the plugin package sits at the top level

from sinr_qgis.core.raster_io import DEFLATE_LEVEL, OVERVIEW_MIN_SIDE, TILE  # noqa: E402

COMMON = [f"BLOCKSIZE={TILE}", "RESAMPLING=AVERAGE", "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS"]


def variants(side: int) -> dict[str, list[str]]:
    """Creation options of each variant (COG driver)."""
    shipped_ovr = "AUTO" if side > OVERVIEW_MIN_SIDE else "NONE"
    return {
        "old: DEFLATE 6 + pyramid": ["COMPRESS=DEFLATE", "PREDICTOR=YES", "OVERVIEWS=AUTO"],
        f"shipped: DEFLATE {DEFLATE_LEVEL}, pyramid {shipped_ovr}": [
            "COMPRESS=DEFLATE", f"LEVEL={DEFLATE_LEVEL}", "PREDICTOR=YES", f"OVERVIEWS={shipped_ovr}"],
        "DEFLATE 6, no pyramid": ["COMPRESS=DEFLATE", "PREDICTOR=YES", "OVERVIEWS=NONE"],
        "ZSTD 1, no pyramid": ["COMPRESS=ZSTD", "LEVEL=1", "PREDICTOR=YES", "OVERVIEWS=NONE"],
        "LZW, no pyramid": ["COMPRESS=LZW", "PREDICTOR=YES", "OVERVIEWS=NONE"],
        "uncompressed, no pyramid": ["COMPRESS=NONE", "OVERVIEWS=NONE"],
    }


def probability_map(side: int) -> np.ndarray:
    """[side, side] float32 in (0, 1), smooth, with a NaN 'ocean' on the left and a NaN 'lake'."""
    y, x = np.mgrid[0:side, 0:side] * (1024.0 / side)
    field = 1.0 / (1.0 + np.exp(-3.0 * (np.sin(x / 90.0) + np.cos(y / 70.0))))
    field[((x - 300) ** 2 + (y - 900) ** 2) < 200 ** 2] = np.nan
    field[:, : side * 150 // 1024] = np.nan
    return field.astype(np.float32)


def in_memory(array: np.ndarray) -> gdal.Dataset:
    """A MEM dataset holding ``array`` with NaN as nodata, as ``raster_io`` assembles it."""
    ds = gdal.GetDriverByName("MEM").Create("", array.shape[1], array.shape[0], 1, gdal.GDT_Float32)
    ds.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(float("nan"))
    band.WriteArray(array)
    return ds


def main() -> None:
    """Time every variant round by round and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    array = probability_map(args.side)
    opts = variants(args.side)
    best = {k: float("inf") for k in opts}
    size = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, co in opts.items():
                src, out = in_memory(array), Path(tmp) / "out.tif"
                t = time.perf_counter()
                gdal.Translate(str(out), src, format="COG", creationOptions=[*co, *COMMON])
                best[name] = min(best[name], time.perf_counter() - t)
                size[name] = out.stat().st_size
    old = best["old: DEFLATE 6 + pyramid"]
    print(f"{args.side} x {args.side} float32 COG from memory, best of {args.rounds} (GDAL {gdal.__version__}):")
    for name in opts:
        print(f"  {name:36s} {best[name] * 1e3:7.1f} ms  {best[name] / old:5.2f}x  {size[name] / 1e6:5.2f} MB")


if __name__ == "__main__":
    main()
