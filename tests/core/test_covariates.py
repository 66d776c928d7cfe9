"""Covariate rasters: bilinear sampling, nodata, edges, statistics (generated GeoTIFFs + the shared grid)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from sinr_qgis.core.covariates import CovariateStack, read_covariate_raster
from sinr_qgis.core.errors import CovariateError

ROOT = Path(__file__).resolve().parents[2]


def write_tif(path: Path, bands: list[np.ndarray], gt=(10.0, 1.0, 0.0, 50.0, 0.0, -1.0), epsg=4326,
              nodata=-9999.0, names=None) -> Path:
    h, w = bands[0].shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, len(bands), gdal.GDT_Float32)
    ds.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    for i, arr in enumerate(bands):
        b = ds.GetRasterBand(i + 1)
        if nodata is not None:
            b.SetNoDataValue(nodata)
        b.WriteArray(arr.astype(np.float32))
        if names:
            b.SetDescription(names[i])
    ds = None
    return path


def test_bilinear_values_nodata_and_outside(tmp_path):
    # value = column index + 10 * row index: bilinear interpolation is exact for a plane
    rows, cols = np.mgrid[0:4, 0:5]
    plane = cols + 10.0 * rows
    second = plane.copy()
    second[0, 0] = -9999.0
    r = read_covariate_raster(write_tif(tmp_path / "a.tif", [plane, second], names=["plane", "holed"]))
    assert r.names == ["plane", "holed"] and np.isnan(r.values[1, 0, 0])
    # pixel centres: lon = 10.5 + col, lat = 49.5 - row
    pts = np.array([[10.5, 49.5], [12.0, 48.0], [13.25, 47.75], [10.0, 50.0], [14.9, 46.1],
                    [9.0, 48.0], [12.0, 45.5], [11.0, 49.0]])
    v = r.sample(pts)
    np.testing.assert_allclose(v[:5, 0], [0.0, 1.5 + 15.0, 2.75 + 17.5, 0.0, 4.0 + 30.0])
    assert np.isnan(v[5]).all() and np.isnan(v[6]).all()  # outside the raster
    # nodata neighbour: weights renormalised over the 3 valid ones (plane values 1, 10, 11)
    assert v[7, 1] == pytest.approx((1 + 10 + 11) / 3)
    assert v[7, 0] == pytest.approx(5.5)
    mean, std = r.band_stats()
    assert mean[0] == pytest.approx(plane.mean()) and std[0] == pytest.approx(plane.std())
    assert mean[1] == pytest.approx(plane.ravel()[1:].mean())


def test_stack_concatenates_files_and_refuses_bad_input(tmp_path):
    a = write_tif(tmp_path / "a.tif", [np.ones((3, 3))], names=["x"])
    b = write_tif(tmp_path / "b.tif", [np.full((3, 3), 2.0), np.full((3, 3), 3.0)])
    s = CovariateStack.open([a, b])
    assert s.names == ["x", "b_b1", "b_b2"]
    assert s.sample(np.array([[11.0, 49.0]])).tolist() == [[1.0, 2.0, 3.0]]
    with pytest.raises(CovariateError, match="repeat"):
        CovariateStack.open([a, a])
    utm = write_tif(tmp_path / "utm.tif", [np.ones((3, 3))], gt=(500000, 100, 0, 4e6, 0, -100), epsg=32633)
    with pytest.raises(CovariateError, match="geographic"):
        read_covariate_raster(utm)
    with pytest.raises(CovariateError, match="does not exist"):
        read_covariate_raster(tmp_path / "none.tif")


def test_shared_bioclim_grid(shared_data):
    s = CovariateStack.open([shared_data / "covariates" / "sa_bioclim_0p5deg.tif"])
    assert s.names[:2] == ["bio1", "bio5"] and s.n_covariates == 9
    v = s.sample(np.array([[-100.25, 20.25], [-80.0, 50.0], [-30.0, -10.0]]))
    assert v[0].tolist() == [157, 272, 39, 233, 172, 776, 472, 32, 3]  # a pixel centre
    assert np.isnan(v[1]).all() and np.isnan(v[2]).all()  # north of 40 N; east of the grid
    _, std = s.stats()
    valid = np.isfinite(s.rasters[0].values[0]).sum()
    assert valid == 9775  # the data README's count of valid bio1 cells
    assert np.all(std > 0)


@pytest.mark.parametrize("exceptions", [False, True])
def test_gdal_exception_mode_is_left_alone_and_bad_rasters_are_covariate_errors(tmp_path, exceptions):
    """Inside QGIS the mode is process-wide (other plugins rely on theirs): reading covariates keeps
    it, and an unreadable raster is one CovariateError in either mode."""
    before = gdal.GetUseExceptions()
    gdal.UseExceptions() if exceptions else gdal.DontUseExceptions()
    try:
        good = write_tif(tmp_path / "good.tif", [np.arange(20, dtype=np.float32).reshape(4, 5)], names=["v"])
        stack = CovariateStack.open([good])
        assert stack.sample(np.array([[12.5, 47.5]]))[0, 0] == pytest.approx(12.0)
        (tmp_path / "text.tif").write_text("not a raster")
        data = good.read_bytes()
        (tmp_path / "cut.tif").write_bytes(data[: len(data) - 40])  # the header stays, pixel data is cut
        for name in ("text.tif", "cut.tif"):
            with pytest.raises(CovariateError, match=rf"^Cannot read covariate raster {name}: .+GDAL can read"):
                read_covariate_raster(tmp_path / name)
        assert gdal.GetUseExceptions() == int(exceptions)
    finally:
        gdal.UseExceptions() if before else gdal.DontUseExceptions()


def test_no_module_changes_gdals_process_wide_exception_mode():
    import re

    pattern = re.compile(r"\b(gdal|ogr|osr)\.(Dont)?UseExceptions\(")
    offenders = [str(f.relative_to(ROOT)) for folder in ("sinr_qgis", "training") for f in (ROOT / folder).rglob("*.py")
                 if pattern.search(f.read_text(encoding="utf-8"))]
    assert offenders == []


@pytest.mark.parametrize("fill", [np.finfo(np.float32).min, np.float32(-3.4e38), np.finfo(np.float32).max])
def test_undeclared_fill_values_are_missing_in_training_and_prediction(tmp_path, fill):
    """Case 21's kind: a fill value written without a nodata tag is no covariate value, for the
    training reader and the prediction sampler alike."""
    from sinr_qgis.core.raster_io import RasterBandSampler

    rows, cols = np.mgrid[0:4, 0:5]
    plane = (cols + 10.0 * rows).astype(np.float32)
    plane[0, :2] = fill
    path = write_tif(tmp_path / "undeclared.tif", [plane], nodata=None)
    ds = gdal.Open(str(path))
    assert ds.GetRasterBand(1).GetNoDataValue() is None
    ds = None
    r = read_covariate_raster(path)
    mean, std = r.band_stats()
    valid = np.r_[plane[1:].ravel(), plane[0, 2:]]
    assert mean[0] == pytest.approx(np.mean(valid)) and std[0] == pytest.approx(np.std(valid))
    pts = np.array([[10.5, 49.5], [13.5, 49.5]])  # the centre of a filled cell, of a valid one
    for got in (r.sample(pts)[:, 0], RasterBandSampler(path).sample(pts)):
        assert np.isnan(got[0]) and got[1] == pytest.approx(3.0)
