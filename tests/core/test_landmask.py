"""The shipped global land mask: small, georeferenced, and right about land and sea."""
from __future__ import annotations

import numpy as np
import pytest
from global_land_mask import globe
from osgeo import gdal, osr

from sinr_qgis.core.errors import GridError
from sinr_qgis.core.landmask import LandMask, is_land, load_land_mask
from sinr_qgis.core.resources import LAND_MASK


def test_shipped_file_is_small_global_and_1bit():
    assert load_land_mask().path.resolve() == LAND_MASK.resolve()  # the default is the shipped file
    assert LAND_MASK.stat().st_size < 2_000_000
    ds = gdal.Open(str(LAND_MASK))
    assert ds.GetGeoTransform() == (-180.0, 0.05, 0.0, 90.0, 0.0, -0.05)
    assert (ds.RasterXSize, ds.RasterYSize) == (7200, 3600)
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    assert srs.GetAuthorityCode(None) == "4326"
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte
    assert band.GetMetadataItem("NBITS", "IMAGE_STRUCTURE") == "1"
    assert ds.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    assert "global-land-mask" in ds.GetMetadataItem("SOURCE")


def test_known_places():
    pts = np.array([
        [-98.0, 38.5],    # Kansas
        [-40.0, 30.0],    # North Atlantic
        [2.35, 48.85],    # Paris
        [-150.0, 0.0],    # central Pacific
        [134.0, -25.0],   # central Australia
        [262.0, 38.5],    # Kansas again, longitude + 360
        [np.nan, 10.0],   # invalid -> not land
    ])
    assert is_land(pts).tolist() == [True, False, True, False, True, True, False]


def test_land_fraction_is_plausible():
    mask = load_land_mask()
    assert mask.data.shape == (3600, 7200)
    # area-weighted land fraction of the globe: ~29% land (GLOBE counts lakes and Antarctica)
    weights = np.cos(np.radians(90 - (np.arange(3600) + 0.5) * 0.05))
    frac = float((mask.data.mean(axis=1) * weights).sum() / weights.sum())
    assert 0.27 < frac < 0.33


def test_agrees_with_the_source_package_away_from_coasts():
    rng = np.random.default_rng(1)
    lon = rng.uniform(-179.9, 179.9, 20_000)
    lat = rng.uniform(-89.9, 89.9, 20_000)
    ours = is_land(np.stack([lon, lat], axis=1))
    # the source at the point and at +/-0.1 deg around it; keep points that are not near a coast
    near = [globe.is_land(lat + dy, lon + dx) for dx in (-0.1, 0, 0.1) for dy in (-0.1, 0, 0.1)]
    clear = np.all(near, axis=0) | ~np.any(near, axis=0)
    assert clear.mean() > 0.9
    agree = ours[clear] == globe.is_land(lat, lon)[clear]
    assert agree.mean() > 0.999


def test_missing_mask_file_is_a_clear_error(tmp_path):
    with pytest.raises(GridError, match=r"land mask .* is missing"):
        LandMask(tmp_path / "nope.tif")
