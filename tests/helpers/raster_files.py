"""Small rasters written into tmp_path for the covariate tests, and the outputs' GeoTIFFs read back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal

from sinr_qgis.core.covariates import band_info, read_band


def write_ascii_grid(path: Path, arr: np.ndarray, x0: float, y0: float, cell: float) -> Path:
    """An ESRI ASCII grid (lower-left corner x0, y0) without a .prj: no CRS, as many are shared."""
    rows = "\n".join(" ".join(f"{v:g}" for v in row) for row in arr)
    path.write_text(f"ncols {arr.shape[1]}\nnrows {arr.shape[0]}\nxllcorner {x0}\nyllcorner {y0}\n"
                    f"cellsize {cell}\nNODATA_value -9999\n{rows}\n", encoding="ascii")
    return path


def read_geotiff(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read a written GeoTIFF back: float32 [bands, H, W] with NaN for nodata, and a dict of its
    geotransform, projection WKT, band descriptions, dataset and band metadata, nodata, size and
    COG layout/compression. Bands go through the covariates' reader: one set of nodata rules."""
    ds = gdal.Open(str(path))
    assert ds is not None, f"cannot read {path}"
    bands, desc, bmeta = [], [], []
    for i in range(1, ds.RasterCount + 1):
        b = ds.GetRasterBand(i)
        bands.append(read_band(b, band_info(b, i, Path(path).stem)))
        desc.append(b.GetDescription())
        bmeta.append(b.GetMetadata())
    info = {"geotransform": ds.GetGeoTransform(), "wkt": ds.GetProjection(), "descriptions": desc,
            "metadata": ds.GetMetadata(), "band_metadata": bmeta,
            "nodata": ds.GetRasterBand(1).GetNoDataValue(), "size": (ds.RasterXSize, ds.RasterYSize),
            "layout": ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT", ""),
            "compression": ds.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION", "")}
    ds = None
    return np.stack(bands), info
