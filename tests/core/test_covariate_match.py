"""``covariates_at_points``: a bundle's covariate values at points, read by the bundle's own rules."""
from __future__ import annotations

import numpy as np
from osgeo import gdal, osr

from sinr_qgis.core.covariate_match import covariates_at_points
from tests.factories import fixture_bundle


def _stack(path, values: dict[str, float]) -> str:
    """A 10 x 10 one-degree GeoTIFF over lon -100..-90, lat 30..40, one constant band per name."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 10, 10, len(values), gdal.GDT_Float32)
    ds.SetGeoTransform((-100.0, 1.0, 0.0, 40.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for i, (name, value) in enumerate(values.items(), start=1):
        ds.GetRasterBand(i).WriteArray(np.full((10, 10), value, np.float32))
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    return str(path)


def test_covariates_at_points_in_the_bundles_order_nan_outside(tmp_path):
    bundle = fixture_bundle(tmp_path / "env.sinr", "sin_cos_env")  # covariates elev, temp
    path = _stack(tmp_path / "stack.tif", {"temp": 12.5, "elev": 250.0})  # another order: matched by name
    lonlat = np.array([[-95.0, 35.0], [-80.0, 35.0]])  # inside; east of the raster
    values = covariates_at_points([path], lonlat, bundle)
    assert values.shape == (2, 2)
    np.testing.assert_array_equal(values[0], [250.0, 12.5])  # constants in float32: read exactly
    assert np.isnan(values[1]).all()
    assert covariates_at_points(None, lonlat, bundle) is None  # a coordinate model's call: no values
