"""Range polygons are tested in their own CRS: poles, the antimeridian, 0..360 longitudes, repairs."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import ogr

from sinr_qgis.core.errors import GridError
from sinr_qgis.core.grid import Grid, extent_across_antimeridian, longitude_window, transform_points
from sinr_qgis.core.polygons import grid_cells_in_polygons, points_in_polygons


def _wkb(wkt: str) -> bytes:
    return bytes(ogr.CreateGeometryFromWkt(wkt).ExportToIsoWkb())


def _circle(cx: float, cy: float, r: float, n: int = 128) -> bytes:
    a = np.linspace(0, 2 * np.pi, n + 1)
    ring = ", ".join(f"{cx + r * np.cos(t)!r} {cy + r * np.sin(t)!r}" for t in a[:-1])
    first = f"{cx + r!r} {cy!r}"
    return _wkb(f"POLYGON(({ring}, {first}))")


def test_cells_are_labelled_by_their_centre():
    grid = Grid.from_pixel_size((0, 0, 4, 3), "EPSG:4326", 1.0)  # centres x 0.5..3.5, y 2.5..0.5
    # covers the centres (1.5, 1.5), (2.5, 1.5) and (1.5, 0.5) but only part of their neighbours
    poly = _wkb("MULTIPOLYGON(((1.2 0.2, 2.9 0.2, 2.9 1.8, 1.2 1.8, 1.2 0.2)),((10 10, 11 10, 11 11, 10 10)))")
    labels = grid_cells_in_polygons(grid, [poly, b""], "EPSG:4326")
    expected = np.zeros((3, 4), bool)
    expected[1, 1:3] = expected[2, 1:3] = True
    np.testing.assert_array_equal(labels, expected)
    assert not grid_cells_in_polygons(grid, [], "EPSG:4326").any()


def test_a_range_around_the_pole_in_a_polar_crs_is_not_turned_into_its_complement():
    # a 2000 km disc around the North Pole in Arctic polar stereographic (EPSG:3995): its vertices
    # reprojected to lon/lat give a degenerate ring, so a lon/lat rasterisation would lose it
    cap = _circle(0.0, 0.0, 2.0e6)
    grid = Grid.from_pixel_size((-180, 50, 180, 90), "EPSG:4326", 2.0)  # rows centred at 89..51 N
    labels = grid_cells_in_polygons(grid, [cap], "EPSG:3995")
    lat = 90 - 2.0 * (np.arange(grid.height) + 0.5)
    inside_rows = labels.all(axis=1)
    assert (labels.all(axis=1) | ~labels.any(axis=1)).all()  # a disc about the pole: whole rows in or out
    # the disc's edge: where the pole distance in the projection reaches 2000 km
    _x, y, _ok = transform_points(np.zeros(grid.height), lat, "EPSG:4326", "EPSG:3995")
    np.testing.assert_array_equal(inside_rows, np.abs(y) <= 2.0e6)
    assert inside_rows[lat > 73].all() and not inside_rows[lat < 70].any()


def test_points_with_no_place_in_the_polygon_crs_are_outside():
    cap = _circle(0.0, 0.0, 2.0e6)
    grid = Grid.from_pixel_size((-10, -90, 10, -80), "EPSG:4326", 5.0)  # at the South Pole
    assert not grid_cells_in_polygons(grid, [cap], "EPSG:3995").any()


def test_a_range_across_the_antimeridian_in_a_pacific_crs():
    # lon 170 E .. 170 W, lat 50..60 N drawn in PDC Mercator (EPSG:3832, centred on 150 E)
    lon = np.r_[np.linspace(170, 190, 21), np.linspace(190, 170, 21)]
    lat = np.r_[np.full(21, 50.0), np.full(21, 60.0)]
    x, y, ok = transform_points(np.where(lon > 180, lon - 360, lon), lat, "EPSG:4326", "EPSG:3832")
    assert ok.all()
    ring = ", ".join(f"{a!r} {b!r}" for a, b in zip(np.r_[x, x[0]], np.r_[y, y[0]]))
    pacific = _wkb(f"POLYGON(({ring}))")
    # on a window written across the seam (160 E .. 160 W) and on the usual -180..180 globe
    for extent in ((160, 40, 200, 70), (-180, 40, 180, 70)):
        grid = Grid.from_pixel_size(extent, "EPSG:4326", 1.0)
        labels = grid_cells_in_polygons(grid, [pacific], "EPSG:3832")
        ll, _ = grid.lonlat()
        want = ((ll[:, 0] >= 170) | (ll[:, 0] <= -170)) & (ll[:, 1] > 50) & (ll[:, 1] < 60)
        np.testing.assert_array_equal(labels.ravel(), want)
        assert labels.sum() == 20 * 10


def test_longitudes_past_180_meet_a_minus_180_grid_and_back():
    east_of_seam = _wkb("POLYGON((170 50, 190 50, 190 60, 170 60, 170 50))")  # 0..360 style data
    pts_x, pts_y = np.array([-175.5, 175.5, 0.5, 185.5]), np.array([55.5, 55.5, 55.5, 55.5])
    assert points_in_polygons(pts_x, pts_y, [east_of_seam], geographic=True).tolist() == [True, True, False, True]
    # the shifts are for degrees only: in a projected CRS 360 units are not the same place
    assert points_in_polygons(pts_x, pts_y, [east_of_seam]).tolist() == [False, True, False, True]
    west = _wkb("POLYGON((-180 50, -170 50, -170 60, -180 60, -180 50))")
    assert points_in_polygons(np.array([185.5]), np.array([55.5]), [west], geographic=True).tolist() == [True]


def test_an_invalid_self_intersecting_range_is_repaired_not_dropped():
    bow_tie = _wkb("POLYGON((0 0, 2 2, 2 0, 0 2, 0 0))")  # two triangles meeting at (1, 1)
    x = np.array([0.2, 1.8, 1.0, 1.0, 5.0])
    y = np.array([1.0, 1.0, 0.2, 1.8, 5.0])
    assert points_in_polygons(x, y, [bow_tie]).tolist() == [True, True, False, False, False]


def test_non_finite_points_are_never_inside():
    square = _wkb("POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))")
    got = points_in_polygons(np.array([np.nan, 0.5, np.inf]), np.array([0.5, 0.5, 0.5]), [square])
    assert got.tolist() == [False, True, False]


def test_longitude_window_is_the_circle_minus_its_widest_gap():
    assert longitude_window(np.array([-100.0, -80.0, -90.0])) == (-100.0, -80.0)
    assert longitude_window(np.array([179.0, -179.0, 175.0])) == (175.0, 181.0)  # across the seam
    assert longitude_window(np.array([190.0, 170.0])) == (170.0, 190.0)  # 0..360 input
    assert longitude_window(np.array([10.0, np.nan])) == (10.0, 10.0)
    with pytest.raises(GridError):
        longitude_window(np.array([np.nan]))


def test_extent_across_antimeridian_rules():
    assert extent_across_antimeridian(170, 50, -170, 70, "EPSG:4326") == (170, 50, 190, 70)
    assert extent_across_antimeridian(-10, 0, 10, 5, "EPSG:4326") == (-10, 0, 10, 5)
    with pytest.raises(GridError, match="projected"):
        extent_across_antimeridian(1e6, 0, -1e6, 1e6, "EPSG:3857")
