"""Prediction grids: exact georeferencing in EPSG:4326, 3857 and 5070, and clear errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from osgeo import osr

from sinr_qgis.core.errors import GridError
from sinr_qgis.core.grid import MAX_PIXELS, Grid, off_globe_note

R = 6378137.0  # WGS 84 / Pseudo-Mercator sphere radius


def test_geographic_grid_is_exact():
    g = Grid.from_pixel_size((-125, 24, -66, 50), "EPSG:4326", 0.5)
    assert (g.width, g.height) == (118, 52)
    assert g.geotransform == (-125.0, 0.5, 0.0, 50.0, 0.0, -0.5)
    assert g.extent == (-125.0, 24.0, -66.0, 50.0)
    assert g.is_geographic
    ll, ok = g.lonlat()
    assert ok.all() and ll.shape == (118 * 52, 2)
    assert ll[0].tolist() == [-124.75, 49.75]  # top-left centre
    assert ll[117].tolist() == [-66.25, 49.75]  # end of the first row
    assert ll[-1].tolist() == [-66.25, 24.25]  # bottom-right centre
    r, c = 10, 20
    np.testing.assert_allclose(ll[r * 118 + c], [-125 + (c + 0.5) * 0.5, 50 - (r + 0.5) * 0.5], atol=1e-12)


def test_pixel_size_not_dividing_extent_keeps_top_left_and_pixel_size():
    g = Grid.from_pixel_size((0, 0, 1.05, 1.0), "EPSG:4326", 0.1)
    assert (g.width, g.height) == (11, 10)
    assert g.geotransform[0] == 0.0 and g.geotransform[3] == 1.0
    assert g.xres == pytest.approx(0.1) and g.yres == pytest.approx(0.1)
    assert g.extent[2] == pytest.approx(1.1)
    # float noise (59.000000001 pixels) does not add a column
    assert Grid.from_pixel_size((0, 0, 0.3, 0.3), "EPSG:4326", 0.1).width == 3


def test_width_height_constructor():
    g = Grid((0, 0, 100, 50), "EPSG:3857", 10, 5)
    assert g.geotransform == (0.0, 10.0, 0.0, 50.0, 0.0, -10.0)
    x, y = g.pixel_centres(1, 3)
    assert x[:3].tolist() == [5.0, 15.0, 25.0] and y[0] == 35.0 and y[-1] == 25.0 and x.size == 20


def test_web_mercator_centres_match_the_spherical_formula():
    g = Grid.from_pixel_size((-1.2e7, 2.5e6, -7.0e6, 6.5e6), "EPSG:3857", 25_000)
    assert (g.width, g.height) == (200, 160)
    assert g.geotransform == (-1.2e7, 25_000.0, 0.0, 6.5e6, 0.0, -25_000.0)
    assert not g.is_geographic and "3857" in g.crs_name
    x, y = g.pixel_centres()
    ll, ok = g.lonlat()
    assert ok.all()
    lon = np.degrees(x / R)
    lat = np.degrees(np.arctan(np.sinh(y / R)))
    np.testing.assert_allclose(ll[:, 0], lon, atol=1e-9)
    np.testing.assert_allclose(ll[:, 1], lat, atol=1e-9)
    assert x[0] == -1.2e7 + 12_500 and y[0] == 6.5e6 - 12_500


def test_albers_5070_centres_match_osr_point_by_point():
    # EPSG:5070 has its natural origin at lon -96, lat 23: the middle pixel's centre is (0, 0)
    g = Grid((-1500.0, -1500.0, 1500.0, 1500.0), "EPSG:5070", 3, 3)
    ll, ok = g.lonlat()
    assert ok.all()
    np.testing.assert_allclose(ll[4], [-96.0, 23.0], atol=1e-9)

    g = Grid.from_pixel_size((-2.3e6, 2.6e5, 2.3e6, 3.2e6), "EPSG:5070", 50_000)
    assert (g.width, g.height) == (92, 59)
    assert g.geotransform == (-2.3e6, 50_000.0, 0.0, 3.2e6, 0.0, -50_000.0)
    src = osr.SpatialReference()
    src.ImportFromEPSG(5070)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(src, dst)
    ll, ok = g.lonlat()
    assert ok.all()
    for r, c in [(0, 0), (0, 91), (58, 0), (58, 91), (30, 45), (7, 63)]:
        x = -2.3e6 + (c + 0.5) * 50_000
        y = 3.2e6 - (r + 0.5) * 50_000
        lon, lat, _ = ct.TransformPoint(x, y)
        np.testing.assert_allclose(ll[r * g.width + c], [lon, lat], atol=1e-9)


def test_centres_outside_the_projection_domain_are_flagged():
    # orthographic view of one hemisphere: the corners of this square are off the globe
    g = Grid((-7e6, -7e6, 7e6, 7e6), "+proj=ortho +lat_0=40 +lon_0=-100 +datum=WGS84", 20, 20)
    ll, ok = g.lonlat()
    assert ok[0] == False and ok[-1] == False  # noqa: E712  corners
    assert ok[10 * 20 + 10]  # centre
    assert np.isnan(ll[~ok]).all() and np.isfinite(ll[ok]).all()
    assert 0.6 < ok.mean() < 0.9


def test_longitudes_are_wrapped():
    g = Grid.from_pixel_size((170, 0, 190, 10), "EPSG:4326", 5)
    ll, _ = g.lonlat()
    assert ll[:4, 0].tolist() == [172.5, 177.5, -177.5, -172.5]
    # another geographic CRS (NAD83) across the dateline is transformed, not flagged invalid
    ll, ok = Grid.from_pixel_size((170, 50, 190, 60), "EPSG:4269", 5).lonlat()
    assert ok.all()
    np.testing.assert_allclose(ll[:4, 0], [172.5, 177.5, -177.5, -172.5], atol=1e-6)


def test_wkt_crs_is_accepted():
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3857)
    g = Grid((0, 0, 1000, 1000), srs.ExportToWkt(), 10, 10)
    assert g.srs.IsSame(srs)


@pytest.mark.parametrize("extent", [(0, 0, 0, 10), (0, 5, 10, 5), (10, 0, 0, 10), (0, 10, 10, 0),
                                    (0, 0, math.nan, 1)])
def test_empty_or_inverted_extent(extent):
    with pytest.raises(GridError, match="extent"):
        Grid.from_pixel_size(extent, "EPSG:4326", 1)
    with pytest.raises(GridError, match="extent"):
        Grid(extent, "EPSG:4326", 10, 10)


@pytest.mark.parametrize("size", [0, -1, math.inf, "abc"])
def test_bad_pixel_size(size):
    with pytest.raises(GridError, match="pixel size"):
        Grid.from_pixel_size((0, 0, 10, 10), "EPSG:4326", size)


def test_too_many_pixels():
    with pytest.raises(GridError, match=r"limit of [\d,]+.*larger pixel size"):
        Grid.from_pixel_size((-180, -90, 180, 90), "EPSG:4326", 0.001)
    with pytest.raises(GridError, match="limit"):
        Grid((0, 0, 1, 1), "EPSG:4326", 30_000, 30_000)
    Grid((0, 0, 1, 1), "EPSG:4326", 20_000, 20_000)  # the large request is allowed
    assert MAX_PIXELS >= 20_000 * 20_000


def test_zero_width_or_height():
    with pytest.raises(GridError, match="1 x 1"):
        Grid((0, 0, 1, 1), "EPSG:4326", 0, 10)


# ---- a view larger than the world ("Zoom Full"): predicted where it is on the globe -------------
def test_extent_beyond_the_poles_is_nodata_there_not_an_error():
    g = Grid.from_pixel_size((-180, -100, 180, 100), "EPSG:4326", 1)  # QGIS's Zoom Full on a tall canvas
    assert (g.width, g.height) == (360, 200) and g.geotransform == (-180.0, 1.0, 0.0, 100.0, 0.0, -1.0)
    ll, ok = g.lonlat()
    rows_ok = ok.reshape(200, 360)
    assert not rows_ok[:10].any() and not rows_ok[190:].any() and rows_ok[10:190].all()  # centres 99.5..90.5 off
    assert ll[10 * 360].tolist() == [-179.5, 89.5] and np.isnan(ll[9 * 360]).all()
    assert g.off_globe_fraction() == pytest.approx(0.1, abs=1e-12)  # 20 of 200 rows, exact
    assert off_globe_note(g) == ("10 % of the extent lies off the globe (beyond the poles); "
                                 "those pixels are left empty (nodata).")
    assert off_globe_note(Grid((-180, -90, 180, 90), "EPSG:4326", 36, 18)) == ""  # exactly the globe


def test_beyond_the_pole_in_another_geographic_crs_and_unit():
    _, ok = Grid((-10, 0, 10, 100), "EPSG:4269", 20, 100).lonlat()  # NAD83: transformed, not identity
    assert ok.reshape(100, 20)[:10].sum() == 0 and ok.reshape(100, 20)[10:].all()
    # NTF (Paris) counts in grads: 100 grad is the pole and 200 grad the antimeridian, nothing is off
    g = Grid((-200, -100, 200, 100), "EPSG:4807", 40, 20)
    assert g.off_globe_fraction() == 0.0 and g.lonlat()[1].all()


def test_a_view_wider_than_the_world_maps_each_meridian_once():
    g = Grid.from_pixel_size((-250, -90, 250, 90), "EPSG:4326", 10)  # Zoom Full on a wide canvas
    ll, ok = g.lonlat()
    cols = ok.reshape(18, 50)[0]
    assert cols.sum() == 36 and cols[7:43].all()  # centres -175..175 only: no second Asia at -245..-185
    assert ll[7].tolist() == [-175.0, 85.0]
    assert g.off_globe_fraction() == pytest.approx(1 - 36 / 50, abs=1e-12)
    assert "28 %" in off_globe_note(g) and "repeat" in off_globe_note(g)
    # a window narrower than a full turn across the antimeridian is still wrapped, not cut
    assert Grid.from_pixel_size((170, 50, 190, 70), "EPSG:4326", 5).lonlat()[1].all()


def test_web_mercator_beyond_the_edge_of_the_world():
    g = Grid((-30e6, -10e6, 30e6, 10e6), "EPSG:3857", 60, 20)  # the world's edge is x = +/-20037508 m
    _, ok = g.lonlat()
    np.testing.assert_array_equal(ok.reshape(20, 60)[0], np.abs(np.arange(60) * 1e6 - 29.5e6) < math.pi * R)
    assert ok.reshape(20, 60).sum(axis=1).tolist() == [40] * 20
    assert g.off_globe_fraction() == pytest.approx(1 / 3, abs=1e-12)  # all 60 x 20 centres sampled
    assert off_globe_note(g).startswith("About 33 % of the extent lies off the globe (outside what EPSG:3857")


@pytest.mark.parametrize("extent, crs", [((-10, 95, 10, 100), "EPSG:4326"), ((25e6, 0, 30e6, 1e6), "EPSG:3857")])
def test_a_view_entirely_off_the_globe_is_a_clear_error(extent, crs):
    with pytest.raises(GridError, match=r"whole map view lies off the globe.*Pan or zoom"):
        off_globe_note(Grid(extent, crs, 10, 10), "map view")


@pytest.mark.parametrize("crs", ["", "EPSG:99999", "not a crs"])
def test_unparseable_crs(crs):
    with pytest.raises(GridError, match="CRS"):
        Grid((0, 0, 1, 1), crs, 10, 10)


def test_crs_without_transformation_to_lonlat():
    with pytest.raises(GridError, match="No transformation"):
        Grid((0, 0, 1, 1), 'LOCAL_CS["arbitrary"]', 10, 10)


def test_row_blocks_cover_the_grid():
    g = Grid((0, 0, 10, 10), "EPSG:4326", 10, 10)
    blocks = list(g.row_blocks(3))
    assert blocks == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_grid_key_identifies_equal_grids():
    a = Grid((0, 0, 10, 10), "EPSG:4326", 10, 10)
    b = Grid((0, 0, 10, 10), "EPSG:4326", 10, 10)
    c = Grid((0, 0, 10, 10), "EPSG:4326", 10, 11)
    assert a.key == b.key and a.key != c.key and a == b


def test_grid_built_on_one_thread_works_on_another():
    import threading

    g = Grid.from_pixel_size((-2.3e6, 2.6e5, 2.3e6, 3.2e6), "EPSG:5070", 100_000)
    here = g.lonlat()[0]
    there = {}
    t = threading.Thread(target=lambda: there.setdefault("ll", g.lonlat()[0]))
    t.start()
    t.join()
    np.testing.assert_array_equal(there["ll"], here)


def _count_transformed(monkeypatch) -> list[int]:
    """Record how many points each vectorised GDAL transform call gets."""
    from sinr_qgis.core import grid as grid_module

    sizes: list[int] = []
    real = grid_module._transform

    def counting(transformer, x, y):
        sizes.append(int(np.size(x)))
        return real(transformer, x, y)

    monkeypatch.setattr(grid_module, "_transform", counting)
    return sizes


# cylindrical CRSs: lon depends on x alone and lat on y alone, including views past the world's edge
SEPARABLE = [((-1.45e7, 1.6e6, -6.0e6, 1.01e7), "EPSG:3857"), ((-3e7, -3e7, 3e7, 3e7), "EPSG:3857"),
             ((-200, -100, 200, 100), "EPSG:4326"), ((170, 50, 190, 70), "EPSG:4326"),
             ((-125, 24, -66, 50), "EPSG:4269"), ((-2e7, -1e7, 2e7, 1e7), "EPSG:4087"),
             ((-2e7, -1.5e7, 2e7, 1.5e7), "EPSG:3395"), ((-2e6, -2e6, 2e6, 2e6), "+proj=cea +lat_ts=30 +datum=WGS84")]
# lon depends on y too (conic, azimuthal, transverse, pseudo-cylindrical), or nearly separable: an
# oblique Mercator 0.001 deg off the equatorial one, NAD27 with its grid shift
NOT_SEPARABLE = [((2.5e6, 1.5e6, 7.5e6, 5.5e6), "EPSG:3035"), ((-3e6, -3e6, 3e6, 3e6), "EPSG:3413"),
                 ((2e5, 5e6, 8e5, 6e6), "EPSG:32633"), ((-2.5e6, 2e5, 2.5e6, 3.3e6), "EPSG:5070"),
                 ((-2e6, -2e6, 2e6, 2e6), "+proj=sinu +datum=WGS84"),
                 ((-2e6, -2e6, 2e6, 2e6), "+proj=omerc +lat_0=0 +lonc=0 +alpha=89.999 +gamma=89.999 +datum=WGS84"),
                 ((-125, 24, -66, 50), "EPSG:4267")]


@pytest.mark.parametrize("extent, crs", SEPARABLE)
def test_a_separable_grid_transforms_one_row_and_one_column(monkeypatch, extent, crs):
    g = Grid(extent, crs, 300, 200)
    want, want_ok = g._lonlat_at(*g.pixel_centres())  # every centre through GDAL, point by point
    sizes = _count_transformed(monkeypatch)
    fresh = Grid(extent, crs, 300, 200)
    assert fresh.separable
    ll, ok = fresh.lonlat()
    np.testing.assert_array_equal(ok, want_ok)
    # float64 against float64 of the same PROJ formulas: equal to far below the float32 input's 1e-5 deg
    np.testing.assert_allclose(ll, want, rtol=0, atol=1e-9)
    assert np.isnan(ll[~ok]).all()
    # one row, one column and a 32 x 32 check sample, each there and back; nothing per pixel
    identity = crs == "EPSG:4326"
    assert sum(sizes) == (0 if identity else 2 * (300 + 200 + 32 * 32))
    part, part_ok = fresh.lonlat(37, 91)  # a row block is the same rows of the whole
    assert np.array_equal(part, ll[37 * 300:91 * 300], equal_nan=True)
    np.testing.assert_array_equal(part_ok, ok[37 * 300:91 * 300])
    assert fresh.off_globe_fraction() == pytest.approx(1.0 - ok.mean(), abs=1e-12)  # exact, not sampled


@pytest.mark.parametrize("extent, crs", NOT_SEPARABLE)
def test_a_grid_that_is_not_separable_is_transformed_in_one_call_per_block(monkeypatch, extent, crs):
    g = Grid(extent, crs, 300, 200)
    assert not g.separable
    sizes = _count_transformed(monkeypatch)
    ll, ok = g.lonlat(10, 60)
    assert sizes == [300 * 50, 300 * 50]  # forward and the round trip, each one vectorised call
    # the same as osr, point by point, at a few centres
    srs = osr.SpatialReference()
    srs.SetFromUserInput(crs)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(srs, wgs)
    x, y = g.pixel_centres(10, 60)
    for i in (0, 299, 7_777, 300 * 50 - 1):
        assert ok[i]
        lon, lat, _ = ct.TransformPoint(float(x[i]), float(y[i]))
        np.testing.assert_allclose(ll[i], [lon, lat], rtol=0, atol=1e-9)


def test_separability_is_decided_once_per_grid(monkeypatch):
    g = Grid((-1.45e7, 1.6e6, -6.0e6, 1.01e7), "EPSG:3857", 1024, 1024)
    sizes = _count_transformed(monkeypatch)
    for r0, r1 in g.row_blocks(128):
        g.lonlat(r0, r1)
    g.off_globe_fraction()
    assert sum(sizes) == 2 * (1024 + 1024 + 32 * 32)  # 6,144 points for 1,048,576 pixels


def test_centres_off_the_domain_print_nothing(capfd):
    """A centre past the projection's domain is reported by ``ok``; GDAL printed one stderr line
    per such pixel before (thousands for a Miller world view)."""
    g = Grid((-2e7, -1.5e7, 2e7, 1.5e7), "ESRI:54003", 300, 200)  # Miller: |y| beyond ~14.7e6 m is off
    _, ok = g.lonlat()
    assert ok.reshape(200, 300).all(axis=1).sum() == 196 and not ok.reshape(200, 300)[[0, 1, 198, 199]].any()
    assert capfd.readouterr().err == ""
