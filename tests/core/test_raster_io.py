"""GeoTIFF writing (COG, nodata, descriptions, metadata, style sidecar, atomicity) and raster sampling."""
from __future__ import annotations

import xml.dom.minidom

import numpy as np
import pytest
from osgeo import gdal, osr

from sinr_qgis.core import raster_io
from sinr_qgis.core.covariates import RasterBandSampler
from sinr_qgis.core.errors import CancelledError, CovariateError, OutputError
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.raster_io import (
    NODATA,
    OVERVIEW_MIN_SIDE,
    BandSpec,
    GeoTiffWriter,
    style_path,
    write_geotiff,
    write_style_sidecar,
)
from tests.helpers.raster_files import read_geotiff


def _grid() -> Grid:
    return Grid.from_pixel_size((500_000, 4_000_000, 530_000, 4_020_000), "EPSG:32633", 100)


def test_write_geotiff_round_trip(tmp_path):
    g = _grid()
    arr = np.random.default_rng(0).random((2, g.height, g.width)).astype(np.float32)
    arr[0, 5, 7] = np.nan
    out = write_geotiff(tmp_path / "a.tif", g, arr, band_names=["first", "second"],
                        band_metadata=[{"K": "1"}, {"K": "2"}], metadata={"MODEL_NAME": "m"}, style="probability")
    assert out == tmp_path / "a.tif"
    back, info = read_geotiff(out)
    assert info["size"] == (300, 200)
    assert info["geotransform"] == g.geotransform
    srs = osr.SpatialReference(wkt=info["wkt"])
    assert srs.GetAuthorityCode(None) == "32633"
    assert info["nodata"] == NODATA
    assert info["descriptions"] == ["first", "second"]
    assert info["metadata"]["MODEL_NAME"] == "m"
    assert [m["K"] for m in info["band_metadata"]] == ["1", "2"]
    assert info["layout"] == "COG" and info["compression"] == "DEFLATE"
    np.testing.assert_array_equal(np.isnan(back), np.isnan(arr))
    np.testing.assert_array_equal(back[~np.isnan(back)], arr[~np.isnan(arr)])
    ds = gdal.Open(str(out))
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Float32
    assert ds.GetRasterBand(1).GetBlockSize() == [256, 256]
    assert (tmp_path / "a.qml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.qml", "a.tif"]  # no temporary left
    assert (out.stat().st_mode & 0o777) == 0o644 and ((tmp_path / "a.qml").stat().st_mode & 0o777) == 0o644


def test_large_file_gets_overviews(tmp_path):
    g = Grid((0, 0, 1, 1), "EPSG:4326", OVERVIEW_MIN_SIDE + 100, 700)
    out = write_geotiff(tmp_path / "big.tif", g, np.ones((700, OVERVIEW_MIN_SIDE + 100), np.float32))
    ds = gdal.Open(str(out))
    assert ds.GetRasterBand(1).GetOverviewCount() >= 2
    assert not (tmp_path / "big.qml").exists()  # style=None: no sidecar


@pytest.mark.parametrize("cog", [True, False])
def test_canvas_sized_file_has_no_overviews(tmp_path, cog):
    g = Grid((0, 0, 1, 1), "EPSG:4326", OVERVIEW_MIN_SIDE, 700)
    arr = np.linspace(0, 1, 700 * OVERVIEW_MIN_SIDE, dtype=np.float32).reshape(700, -1)
    with GeoTiffWriter(tmp_path / "c.tif", g, ["p"], cog=cog) as w:
        w.write_rows(0, arr[None])
        w.finish()
        out = w.commit()
    ds = gdal.Open(str(out))
    assert ds.GetRasterBand(1).GetOverviewCount() == 0
    np.testing.assert_array_equal(ds.GetRasterBand(1).ReadAsArray(), arr)


def test_style_templates_are_valid_qml(tmp_path):
    for kind in ("probability", "binary"):
        doc = xml.dom.minidom.parse(str(style_path(kind)))
        renderer = doc.getElementsByTagName("rasterrenderer")[0]
        assert renderer.getAttribute("band") == "1"
    doc = xml.dom.minidom.parse(str(style_path("probability")))
    r = doc.getElementsByTagName("rasterrenderer")[0]
    assert r.getAttribute("type") == "singlebandpseudocolor"
    assert (r.getAttribute("classificationMin"), r.getAttribute("classificationMax")) == ("0", "1")
    side = write_style_sidecar(tmp_path / "x.tif", "binary")
    assert side == tmp_path / "x.qml" and "paletted" in side.read_text()


def test_unwritable_folder_leaves_nothing(tmp_path, read_only_folder):
    g = _grid()
    with pytest.raises(OutputError, match="does not exist"):
        write_geotiff(tmp_path / "no" / "a.tif", g, np.zeros(g.shape, np.float32))
    (tmp_path / "file").write_text("x")  # a "folder" that is a regular file: refused for root too
    with pytest.raises(OutputError, match="does not exist"):
        write_geotiff(tmp_path / "file" / "a.tif", g, np.zeros(g.shape, np.float32))
    with pytest.raises(OutputError, match=r"folder .*ro is not writable"):
        write_geotiff(read_only_folder / "a.tif", g, np.zeros(g.shape, np.float32))
    assert list(read_only_folder.iterdir()) == []


def test_not_a_tif_name_is_refused(tmp_path):
    with pytest.raises(OutputError, match="GeoTIFF"):
        write_geotiff(tmp_path / "a.png", _grid(), np.zeros(_grid().shape, np.float32))


def test_writer_streams_blocks_and_discards_on_error(tmp_path):
    g = Grid((0, 0, 10, 10), "EPSG:4326", 10, 10)
    with pytest.raises(RuntimeError, match="boom"):
        with GeoTiffWriter(tmp_path / "s.tif", g, [BandSpec("b")]) as w:
            w.write_rows(0, np.ones((1, 4, 10), np.float32))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with GeoTiffWriter(tmp_path / "s.tif", g, ["b"], style=None) as w:
        for r0 in (0, 4, 8):
            w.write_rows(r0, np.full((min(4, 10 - r0), 10), r0, np.float32))
        w.finish()
        w.commit()
    back, _ = read_geotiff(tmp_path / "s.tif")
    assert back[0, :, 0].tolist() == [0, 0, 0, 0, 4, 4, 4, 4, 8, 8]
    assert [p.name for p in tmp_path.iterdir()] == ["s.tif"]


def test_in_memory_and_striped_rows_write_the_same_file(tmp_path, monkeypatch):
    """A raster up to IN_MEMORY_BYTES is assembled in memory, a larger one in strips on disk: the
    same values, nodata, georeferencing, descriptions and metadata either way, no file left over."""
    g = _grid()  # 300 x 200, EPSG:32633
    arr = np.random.default_rng(1).random((2, g.height, g.width)).astype(np.float32)
    arr[1, 10:20, 30:40] = np.nan
    specs = [BandSpec("p", {"VALUE": "probability"}), BandSpec("b", {"VALUE": "binary"})]
    assert 4 * arr.size <= raster_io.IN_MEMORY_BYTES
    for name, limit in (("memory.tif", raster_io.IN_MEMORY_BYTES), ("strips.tif", 0)):
        monkeypatch.setattr(raster_io, "IN_MEMORY_BYTES", limit)
        with GeoTiffWriter(tmp_path / name, g, specs, metadata={"MODEL_NAME": "m"}, style=None) as w:
            for r0 in range(0, g.height, 64):
                w.write_rows(r0, arr[:, r0:r0 + 64])
            assert (w._strips is None) == (limit > 0)
            w.finish()
            w.commit()
    mem, mem_info = read_geotiff(tmp_path / "memory.tif")
    strips, strips_info = read_geotiff(tmp_path / "strips.tif")
    np.testing.assert_array_equal(mem, arr)  # NaN where nodata, every value exact
    np.testing.assert_array_equal(strips, arr)
    assert mem_info == strips_info
    assert mem_info["geotransform"] == g.geotransform and mem_info["descriptions"] == ["p", "b"]
    assert mem_info["band_metadata"][1]["VALUE"] == "binary" and mem_info["metadata"]["MODEL_NAME"] == "m"
    assert mem_info["layout"] == "COG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.tif", "strips.tif"]


def test_cancel_during_conversion_leaves_nothing(tmp_path):
    g = Grid((0, 0, 1, 1), "EPSG:4326", 600, 600)
    with pytest.raises(CancelledError):
        with GeoTiffWriter(tmp_path / "c.tif", g, ["b"]) as w:
            w.write_rows(0, np.ones((600, 600), np.float32))
            w.finish(is_cancelled=lambda: True)
            w.commit()
    assert list(tmp_path.iterdir()) == []


def _raster(path, srs_epsg, gt, arr, nodata=None):
    ds = gdal.GetDriverByName("GTiff").Create(str(path), arr.shape[1], arr.shape[0], 1, gdal.GDT_Float32)
    ds.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(srs_epsg)
    ds.SetProjection(srs.ExportToWkt())
    if nodata is not None:
        ds.GetRasterBand(1).SetNoDataValue(nodata)
    ds.GetRasterBand(1).WriteArray(arr)
    ds = None
    return path


def test_sampler_interpolates_like_training_and_keeps_nodata(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    arr[1, 1] = -1
    p = _raster(tmp_path / "c.tif", 4326, (10, 1, 0, 50, 0, -1), arr, nodata=-1)
    s = RasterBandSampler(p)
    pts = np.array([[10.5, 49.5], [13.9, 47.1], [11.5, 48.5], [9.9, 49.5], [12.0, 49.99], [11.0, 48.0],
                    [np.nan, 0]])
    got = s.sample(pts)
    # cell centre; clamped at the raster's edge; containing cell is nodata; outside (west);
    # half-way between two cells; a corner of four cells, one nodata (weights renormalised); NaN point
    np.testing.assert_allclose(got, [0, 11, np.nan, np.nan, 1.5, (4 + 8 + 9) / 3, np.nan])
    # the very same values as the training reader (one sampler for both)
    from sinr_qgis.core.covariates import CovariateStack

    np.testing.assert_array_equal(CovariateStack.open([p]).sample(pts)[:, 0], got)


def test_sampler_windows_match_a_whole_raster_read(tmp_path, monkeypatch):
    from sinr_qgis.core import covariates

    rng = np.random.default_rng(0)
    arr = rng.random((40, 50)).astype(np.float32)
    p = _raster(tmp_path / "w.tif", 4326, (0, 0.5, 0, 20, 0, -0.5), arr)
    pts = np.stack([rng.uniform(0, 25, 500), rng.uniform(0, 20, 500)], 1)
    whole = RasterBandSampler(p).sample(pts)
    monkeypatch.setattr(covariates, "KEEP_BAND_BYTES", 0)  # read in tiles, not kept whole
    monkeypatch.setattr(covariates, "TILE_CELLS", 7)  # tiles of 7 x 7 cells: many windows
    np.testing.assert_allclose(RasterBandSampler(p).sample(pts), whole)
    assert np.isfinite(whole).all()


def test_sampler_transforms_to_the_raster_crs(tmp_path):
    # a Web Mercator raster; its cell (r, c) contains the lon/lat of that cell's centre
    arr = np.arange(20, dtype=np.float32).reshape(4, 5)
    p = _raster(tmp_path / "m.tif", 3857, (0, 1000, 0, 4000, 0, -1000), arr)
    g = Grid((0, 0, 5000, 4000), "EPSG:3857", 5, 4)
    ll, _ = g.lonlat()
    np.testing.assert_allclose(RasterBandSampler(p).sample(ll), arr.ravel(), atol=1e-9)


def test_sampler_errors(tmp_path):
    with pytest.raises(CovariateError, match="does not exist"):
        RasterBandSampler(tmp_path / "none.tif")
    p = _raster(tmp_path / "c.tif", 4326, (10, 1, 0, 50, 0, -1), np.zeros((2, 2), np.float32))
    with pytest.raises(CovariateError, match="band 3 does not exist"):
        RasterBandSampler(p, 3)
