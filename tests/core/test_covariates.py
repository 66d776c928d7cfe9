"""Covariate rasters read by GDAL's rules (nodata, masks, scale and offset, fill values, CRS, 0..360
longitudes), sampled bilinearly, and their statistics (generated GeoTIFFs + the shared grid)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from sinr_qgis.core.covariates import CovariateRaster, CovariateStack, RasterBandSampler, read_band
from sinr_qgis.core.errors import CovariateError
from tests.helpers.raster_files import write_ascii_grid

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
    r = CovariateRaster(write_tif(tmp_path / "a.tif", [plane, second], names=["plane", "holed"]))
    assert r.names == ["plane", "holed"] and np.isnan(r.sample(np.array([[10.5, 49.5]]))[0, 1])
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
    with pytest.raises(CovariateError, match="does not exist"):
        CovariateRaster(tmp_path / "none.tif")
    rotated = write_tif(tmp_path / "rot.tif", [np.ones((3, 3))], gt=(10.0, 1.0, 0.1, 50.0, 0.0, -1.0))
    with pytest.raises(CovariateError, match="rotated; warp it to a north-up grid"):
        CovariateRaster(rotated)


def test_shared_bioclim_grid(shared_data):
    s = CovariateStack.open([shared_data / "covariates" / "sa_bioclim_0p5deg.tif"])
    assert s.names[:2] == ["bio1", "bio5"] and s.n_covariates == 9
    v = s.sample(np.array([[-100.25, 20.25], [-80.0, 50.0], [-30.0, -10.0]]))
    assert v[0].tolist() == [157, 272, 39, 233, 172, 776, 472, 32, 3]  # a pixel centre
    assert np.isnan(v[1]).all() and np.isnan(v[2]).all()  # north of 40 N; east of the grid
    _, std = s.stats()
    ds = gdal.Open(str(shared_data / "covariates" / "sa_bioclim_0p5deg.tif"))
    assert np.isfinite(read_band(ds.GetRasterBand(1), s.rasters[0].bands[0])).sum() == 9775  # the data README's count
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
                CovariateRaster(tmp_path / name).sample(np.array([[12.5, 47.5]]))  # values are read when asked
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
    rows, cols = np.mgrid[0:4, 0:5]
    plane = (cols + 10.0 * rows).astype(np.float32)
    plane[0, :2] = fill
    path = write_tif(tmp_path / "undeclared.tif", [plane], nodata=None)
    ds = gdal.Open(str(path))
    assert ds.GetRasterBand(1).GetNoDataValue() is None
    ds = None
    r = CovariateRaster(path)
    mean, std = r.band_stats()
    valid = np.r_[plane[1:].ravel(), plane[0, 2:]]
    assert mean[0] == pytest.approx(np.mean(valid)) and std[0] == pytest.approx(np.std(valid))
    pts = np.array([[10.5, 49.5], [13.5, 49.5]])  # the centre of a filled cell, of a valid one
    for got in (r.sample(pts)[:, 0], RasterBandSampler(path).sample(pts)):
        assert np.isnan(got[0]) and got[1] == pytest.approx(3.0)


def gdal_tif(path: Path, bands: list[np.ndarray], dtype=gdal.GDT_Float32, gt=(10.0, 1.0, 0.0, 50.0, 0.0, -1.0),
             names=None, nodata=None, alpha=None) -> Path:
    """A GeoTIFF of ``bands`` in ``dtype`` (EPSG:4326), with ``alpha`` [h, w] as a last alpha band."""
    h, w = bands[0].shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, len(bands) + (alpha is not None), dtype)
    ds.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for i, arr in enumerate(bands):
        b = ds.GetRasterBand(i + 1)
        b.WriteArray(arr)
        if names:
            b.SetDescription(names[i])
        if nodata is not None:
            b.SetNoDataValue(nodata)
    if alpha is not None:
        a = ds.GetRasterBand(len(bands) + 1)
        a.SetColorInterpretation(gdal.GCI_AlphaBand)
        a.WriteArray(alpha)
    ds = None
    return path


def centre(row: int, col: int) -> list[float]:
    """(lon, lat) of a cell centre of the rasters above (origin 10 E, 50 N, 1-degree cells)."""
    return [10.5 + col, 49.5 - row]


def test_an_alpha_band_masks_the_others_and_is_no_covariate(tmp_path):
    """GDAL's mask uses an alpha band in 2- and 4-band files only; any alpha band masks here."""
    values = np.arange(12, dtype=np.uint8).reshape(3, 4)
    alpha = np.full((3, 4), 255, np.uint8)
    alpha[1, 2] = 0  # transparent: no value, whatever the bands hold
    for bands, mask, alpha_band in (([values], "alpha band", 0), ([values, values + 100], "none", 3)):
        path = gdal_tif(tmp_path / f"alpha{len(bands)}.tif", bands, gdal.GDT_Byte, alpha=alpha)
        r = CovariateRaster(path)
        n = len(bands)
        assert r.band_numbers == list(range(1, n + 1)) and r.bands[0].mask == mask and r.bands[0].alpha == alpha_band
        got = r.sample(np.array([centre(1, 2), centre(1, 1)]))
        assert np.isnan(got[0]).all() and got[1].tolist() == [5.0, 105.0][:n]
        with pytest.raises(CovariateError, match=rf"covariate band\(s\) {', '.join(map(str, range(1, n + 1)))}; "
                                                 rf"band {n + 1} is its alpha band \(a mask\), not a covariate"):
            RasterBandSampler(path, n + 1)
        mean, _ = r.band_stats()
        assert mean.tolist() == pytest.approx([(values.sum() - 6) / 11, (values.sum() - 6) / 11 + 100][:n])


def test_a_per_dataset_mask_marks_missing_cells(tmp_path):
    path = gdal_tif(tmp_path / "masked.tif", [np.full((3, 4), 7.0, np.float32)])
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)  # a .msk file beside the raster, as GDAL writes it
    mask = np.full((3, 4), 255, np.uint8)
    mask[0, 0] = 0
    ds.GetRasterBand(1).GetMaskBand().WriteArray(mask)
    ds = None
    r = CovariateRaster(path)
    assert r.bands[0].mask == "dataset mask"
    got = r.sample(np.array([centre(0, 0), centre(2, 3)]))[:, 0]
    assert np.isnan(got[0]) and got[1] == 7.0


def test_packed_integers_are_unpacked_with_scale_and_offset(tmp_path):
    raw = np.array([[100, 200, -32768], [300, 400, 500]], np.int16)  # e.g. temperature in 0.1 K - 273.15
    path = gdal_tif(tmp_path / "packed.tif", [raw], gdal.GDT_Int16, nodata=-32768)
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.GetRasterBand(1).SetScale(0.1)
    ds.GetRasterBand(1).SetOffset(-273.15)
    ds = None
    r = CovariateRaster(path)
    info = r.bands[0]
    assert (info.dtype, info.scale, info.offset, info.nodata, info.mask) == ("Int16", 0.1, -273.15, -32768, "nodata")
    got = r.sample(np.array([centre(0, 0), centre(1, 2), centre(0, 2)]))[:, 0]
    # float32 values: raw * 0.1 - 273.15 is rounded to float32 (about 3e-5 here)
    np.testing.assert_allclose(got[:2], [10.0 - 273.15, 50.0 - 273.15], atol=1e-4)
    assert np.isnan(got[2])  # the declared nodata is in raw units, before scale and offset
    mean, std = r.band_stats()
    unpacked = np.array([100, 200, 300, 400, 500]) * 0.1 - 273.15
    assert mean[0] == pytest.approx(unpacked.mean(), abs=1e-4) and std[0] == pytest.approx(unpacked.std(), abs=1e-4)
    assert r.warnings == []  # -32768 is declared: no fill-value warning


@pytest.mark.parametrize("dtype, fill", [(gdal.GDT_Int16, -32768), (gdal.GDT_Int16, -9999),
                                         (gdal.GDT_UInt16, 65535), (gdal.GDT_Float32, -9999)])
def test_usual_undeclared_fill_values_stay_values_with_a_warning(tmp_path, dtype, fill):
    """-32768 may be a fill value or a real (if odd) elevation: never dropped silently, but the user
    is told to declare nodata; once declared, the cells are missing and nothing is said."""
    arr = np.full((3, 4), 12, dtype=gdal.GetDataTypeName(dtype).lower())
    arr[0, :3] = fill
    path = gdal_tif(tmp_path / "elev.tif", [arr], dtype, names=["elev"])
    r = CovariateRaster(path)
    got = r.sample(np.array([centre(0, 0), centre(2, 2)]))[:, 0]
    assert got.tolist() == [fill, 12.0]
    assert r.warnings == [
        f"elev.tif (band 1, elev): 3 cells read hold {fill:g}, a usual fill value, but no nodata is declared, so "
        f"they are read as values. If these cells are empty, declare the nodata value (e.g. gdal_edit.py -a_nodata "
        f"{fill:g} elev.tif); if they are real values, ignore this warning."]
    declared = gdal_tif(tmp_path / "declared.tif", [arr], dtype, names=["elev"], nodata=fill)
    r = CovariateRaster(declared)
    assert np.isnan(r.sample(np.array([centre(0, 0)]))[0, 0]) and r.warnings == []


def test_float_fill_without_nodata_is_missing_with_a_warning_to_declare_it(tmp_path):
    arr = np.full((3, 4), 5.0, np.float32)
    arr[2, :] = np.float32(-3.4e38)
    r = CovariateRaster(gdal_tif(tmp_path / "bio1.tif", [arr]))
    assert r.band_stats() == (pytest.approx([5.0]), pytest.approx([1.0]))  # std 0 is taken as 1
    assert r.warnings == [
        "bio1.tif (band 1, bio1_b1): 4 cells read hold -3.4e+38, a fill value, and no nodata is declared for it; "
        "they are read as missing. Declare the nodata value (e.g. gdal_edit.py -a_nodata -3.39999995e+38 bio1.tif) "
        "so every program reads the raster alike."]


def test_a_raster_without_crs_is_lonlat_only_when_its_extent_is_in_degrees(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    arr[0, 0] = -9999
    asc = write_ascii_grid(tmp_path / "bio1.asc", arr, 10.0, 47.0, 1.0)
    r = CovariateRaster(asc)
    assert r.notes == [
        "Covariate raster bio1.asc has no CRS; its extent (lon 10 to 14, lat 47 to 50) fits longitude/latitude "
        "degrees, so it is read as EPSG:4326 (WGS 84). If it is in another CRS, assign that CRS to the file (e.g. "
        "gdal_edit.py -a_srs EPSG:<code> bio1.asc)."]
    tif = gdal_tif(tmp_path / "bio1.tif", [arr], nodata=-9999)  # the same cells with a CRS
    pts = np.array([centre(0, 0), centre(1, 1), [11.9, 48.2], [20.0, 48.0]])
    np.testing.assert_array_equal(r.sample(pts), CovariateRaster(tif).sample(pts))
    refusal = (r"^Covariate raster utm\.asc has no CRS, and its extent \(x 500000 to 500400, y 4e\+06 to "
               r"4\.0003e\+06\) is not in longitude/latitude degrees\. Assign its CRS")
    with pytest.raises(CovariateError, match=refusal):
        CovariateRaster(write_ascii_grid(tmp_path / "utm.asc", arr, 500000.0, 4000000.0, 100.0))


def test_a_0_360_raster_is_read_where_its_minus_180_180_copy_is(tmp_path):
    rng = np.random.default_rng(3)
    arr = rng.random((10, 20)).astype(np.float32)
    east = gdal_tif(tmp_path / "east.tif", [arr], gt=(235.0, 1.0, 0.0, 40.0, 0.0, -1.0))
    west = gdal_tif(tmp_path / "west.tif", [arr], gt=(-125.0, 1.0, 0.0, 40.0, 0.0, -1.0))
    pts = np.stack([rng.uniform(-126, -104, 300), rng.uniform(29, 41, 300)], 1)
    r = CovariateRaster(east)
    got = r.sample(pts)
    # the same cells and weights; float64 longitudes moved by 360 and back differ in the last bits
    np.testing.assert_allclose(got, CovariateRaster(west).sample(pts), rtol=1e-12)
    assert np.isfinite(got).sum() > 200
    assert r.notes == ["Covariate raster east.tif spans longitudes 235 to 255 (a 0..360 grid): longitudes are "
                       "wrapped by 360 degrees to read it, in training and prediction alike."]
    assert CovariateRaster(west).notes == []
