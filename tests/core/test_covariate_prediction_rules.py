"""Prediction reads covariate rasters by the training reader's rules: bands matched by name, 0..360
longitudes wrapped, a raster without CRS read as lon/lat only when its extent is in degrees, and a
map without any valid pixel an error that leaves no file (generated rasters, random-weight bundles)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from sinr_qgis.core.errors import CovariateError, GridError
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.products import predict_to_geotiff
from sinr_qgis.core.runtime import Predictor, apply_on_grid_to_geotiff, predict_grid
from tests.factories import fixture_bundle
from tests.helpers.raster_files import write_ascii_grid

RNG = np.random.default_rng(11)
BIO1 = RNG.uniform(0, 30, (10, 20)).astype(np.float32)
BIO12 = RNG.uniform(100, 3000, (10, 20)).astype(np.float32)
GRID = Grid.from_pixel_size((-125, 30, -105, 40), "EPSG:4326", 0.5)  # inside the rasters below


def tif(path: Path, bands: list[np.ndarray], names: list[str] | None, x0: float = -125.0) -> str:
    """A lon/lat GeoTIFF of 1-degree cells from (x0, 40 N)."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), bands[0].shape[1], bands[0].shape[0], len(bands),
                                              gdal.GDT_Float32)
    ds.SetGeoTransform((x0, 1.0, 0.0, 40.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for i, arr in enumerate(bands):
        ds.GetRasterBand(i + 1).WriteArray(arr)
        if names:
            ds.GetRasterBand(i + 1).SetDescription(names[i])
    ds = None
    return str(path)


@pytest.fixture(scope="module")
def env2(tmp_path_factory):
    path = tmp_path_factory.mktemp("env2") / "env2.sinr"
    return fixture_bundle(path, "env")  # 2 species; bio1 (mean 15, std 8) and bio12 (1500, 800)


def test_bands_in_another_order_predict_the_same_and_unnamed_bands_are_refused(env2, tmp_path):
    """Kind 1: the model knows its covariates' names; the order the bands come in does not matter."""
    p = Predictor(env2)
    ordered = predict_grid(p, GRID, None, mask_ocean=False,
                           covariates=[tif(tmp_path / "ordered.tif", [BIO1, BIO12], ["bio1", "bio12"])])
    swapped = tif(tmp_path / "swapped.tif", [BIO12, BIO1], ["bio12", "bio1"])
    assert np.isfinite(ordered).all()
    np.testing.assert_array_equal(predict_grid(p, GRID, None, mask_ocean=False, covariates=[swapped]), ordered)
    singles = [tif(tmp_path / "bio12.tif", [BIO12], None), tif(tmp_path / "bio1.tif", [BIO1], None)]  # file names
    np.testing.assert_array_equal(predict_grid(p, GRID, None, mask_ocean=False, covariates=singles), ordered)
    unnamed = tif(tmp_path / "stack.tif", [BIO12, BIO1], None)
    with pytest.raises(CovariateError, match=r"the model reads bio1, bio12 \(in this order\), the bands given are "
                                             r"stack_b1, stack_b2; no band is named bio1, bio12\. Name each band"):
        predict_grid(p, GRID, None, mask_ocean=False, covariates=[unnamed])
    explicit = {"bio1": (unnamed, 2), "bio12": (unnamed, 1)}  # the user's mapping (Processing: COVARIATE_NAMES)
    np.testing.assert_array_equal(predict_grid(p, GRID, None, mask_ocean=False, covariates=explicit), ordered)


def test_0_360_and_crs_less_rasters_predict_like_their_lonlat_copy(env2, tmp_path):
    """Kind 5: training and prediction read these rasters by one rule (core.covariates)."""
    p = Predictor(env2)
    lonlat = [tif(tmp_path / "bio1.tif", [BIO1], None), tif(tmp_path / "bio12.tif", [BIO12], None)]
    ref = predict_grid(p, GRID, None, mask_ocean=False, covariates=lonlat)
    (tmp_path / "east").mkdir()
    east = [tif(tmp_path / "east" / "bio1.tif", [BIO1], None, 235.0), tif(tmp_path / "east" / "bio12.tif", [BIO12],
                                                                         None, 235.0)]
    # the same cells; longitudes moved by 360 and back differ in float64's last bits, then float32
    # network arithmetic: 1e-6 on probabilities
    np.testing.assert_allclose(predict_grid(p, GRID, None, mask_ocean=False, covariates=east), ref, atol=1e-6)
    asc = [write_ascii_grid(tmp_path / "bio1.asc", BIO1, -125.0, 30.0, 1.0),
           write_ascii_grid(tmp_path / "bio12.asc", BIO12, -125.0, 30.0, 1.0)]
    # an ASCII grid holds values as text: read back to float32 from '%g' (6 digits), so compare to
    # a GeoTIFF of the values as written
    written = [np.array([[float(f"{v:g}") for v in row] for row in a], np.float32) for a in (BIO1, BIO12)]
    as_text = [tif(tmp_path / "t1.tif", [written[0]], ["bio1"]), tif(tmp_path / "t12.tif", [written[1]], ["bio12"])]
    np.testing.assert_array_equal(predict_grid(p, GRID, None, mask_ocean=False, covariates=asc),
                                  predict_grid(p, GRID, None, mask_ocean=False, covariates=as_text))
    result = predict_to_geotiff(p, GRID, 0, tmp_path / "east.tif", mask_ocean=False, covariates=east)
    assert "Covariate raster bio1.tif spans longitudes 235 to 255 (a 0..360 grid): longitudes are wrapped by 360 " \
           "degrees to read it, in training and prediction alike." in result.warnings


def test_a_map_without_any_valid_pixel_is_an_error_and_leaves_no_file(env2, tmp_path):
    """Kind 5: an all-nodata map is never reported as a success (rasters away from the extent,
    an extent at sea with the ocean left empty)."""
    p = Predictor(env2)
    far = [tif(tmp_path / "bio1.tif", [BIO1], None, 10.0), tif(tmp_path / "bio12.tif", [BIO12], None, 10.0)]
    out = tmp_path / "out"
    out.mkdir()
    message = (r"^The covariate rasters have no value at any pixel of the extent \(they cover bio1\.tif: lon 10\.00 to "
               r"30\.00, lat 30\.00 to 40\.00; bio12\.tif: .+\), so there is nothing to predict; no file was written\.")
    with pytest.raises(CovariateError, match=message):
        predict_to_geotiff(p, GRID, [0, 1], out / "map.tif", mask_ocean=False, covariates=far)
    with pytest.raises(CovariateError, match=message):
        apply_on_grid_to_geotiff(p, GRID, out / "emb.tif", lambda e, _ll: e[:, :1], ["e0"], mask_ocean=False,
                                 covariates=far)
    coords = Predictor(fixture_bundle(tmp_path / "coords.sinr", n_species=2))
    pacific = Grid.from_pixel_size((-150, -10, -145, -5), "EPSG:4326", 1.0)
    with pytest.raises(GridError, match="Every pixel of the extent is at sea and the ocean is left empty"):
        predict_to_geotiff(coords, pacific, 0, out / "sea.tif", mask_ocean=True)
    assert list(out.iterdir()) == []
