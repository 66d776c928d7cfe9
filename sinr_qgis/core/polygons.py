"""Which points lie inside polygons, decided in the polygons' own CRS.

Expert ranges are tested where they were drawn: the points (grid cell centres, survey plots) are
moved into the polygons' CRS, never the polygons into the points'. A range around a pole stored in
a polar stereographic CRS, or one across the antimeridian stored in a Pacific-centred CRS, has no
faithful lon/lat outline (reprojecting its vertices gives a degenerate ring or its complement),
whereas every point has one place in the polygons' CRS. In a geographic polygon CRS a point is also
tried 360 degrees east and west, so a range written with longitudes past 180 (0..360 data) and a
grid written in -180..180 (or the other way round) still meet.

A point counts when it intersects a polygon (inside or on its boundary), the rule the NA-Trees
benchmark applies to its points. The test is GEOS's, through OGR: all candidate points of a polygon
(those in its bounding box) go into one MultiPoint, and its intersection with the polygon is the
set of points inside, so there is no Python loop over points. A polygon GEOS refuses as invalid
(self-intersecting rings, common in hand-drawn ranges) is repaired with ``MakeValid`` and tried again.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from osgeo import gdal, ogr

from .errors import GridError
from .grid import Grid, parse_crs, transform_points

# One point of a little-endian ISO WKB MultiPoint: byte order, type (1 = Point), x, y.
_POINT_WKB = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
_MULTIPOINT_HEADER = 9  # byte order, type (4 = MultiPoint), number of points


def points_in_polygons(x: np.ndarray, y: np.ndarray, wkb_geometries: Iterable[bytes], *,
                       geographic: bool = False) -> np.ndarray:
    """Bool [N]: points (x, y float64 [N], in the polygons' CRS) inside or on any of the polygons.

    ``wkb_geometries``: OGR-readable WKB (multi)polygons; empty or unreadable ones are ignored.
    ``geographic``: the CRS is lon/lat in degrees, so x and x +/- 360 are the same meridian.
    Non-finite points are never inside. Raises ``GridError`` when GDAL has no GEOS (QGIS's GDAL
    always has it) or a polygon is invalid beyond repair.
    """
    if not getattr(ogr, "GetGEOSVersionMajor", lambda: 1)():
        raise GridError("Cannot test points against the range polygons: this GDAL has no GEOS support "
                        "(QGIS's own GDAL has it; run the plugin inside QGIS).")
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    inside = np.zeros(x.size, dtype=bool)
    finite = np.isfinite(x) & np.isfinite(y)
    shifts = (0.0, 360.0, -360.0) if geographic else (0.0,)
    for wkb in wkb_geometries:
        geom = ogr.CreateGeometryFromWkb(bytes(wkb)) if wkb else None
        if geom is None or geom.IsEmpty():
            continue
        xmin, xmax, ymin, ymax = geom.GetEnvelope()
        for shift in shifts:
            xs = x + shift
            cand = np.flatnonzero(finite & ~inside & (xs >= xmin) & (xs <= xmax) & (y >= ymin) & (y <= ymax))
            if cand.size:
                inside[cand[_intersecting(geom, xs[cand], y[cand])]] = True
    return inside


def grid_cells_in_polygons(grid: Grid, wkb_geometries: Iterable[bytes], crs: str) -> np.ndarray:
    """Bool [H, W]: grid cells whose centre lies inside or on any of the polygons.

    ``wkb_geometries`` are in ``crs`` (anything :func:`~sinr_qgis.core.grid.parse_crs` reads); the cell
    centres are transformed from the grid's CRS into it. Centres with no place in ``crs`` are
    outside. Raises ``GridError`` when there is no transformation between the two CRSs.
    """
    x, y = grid.pixel_centres()
    tx, ty, _ok = transform_points(x, y, grid.crs_wkt, crs)
    geographic = bool(parse_crs(crs).IsGeographic())
    return points_in_polygons(tx, ty, wkb_geometries, geographic=geographic).reshape(grid.shape)


def _intersecting(geom: ogr.Geometry, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bool [n]: which of the points (inside the polygon's bounding box) intersect ``geom``."""
    points = np.empty(x.size, dtype=_POINT_WKB)
    points["order"], points["type"], points["x"], points["y"] = 1, 1, x, y
    header = np.array([1], dtype="u1").tobytes() + np.array([4, x.size], dtype="<u4").tobytes()
    multipoint = ogr.CreateGeometryFromWkb(header + points.tobytes())
    hit = _intersection(multipoint, geom)
    if hit is None:
        raise GridError("A range polygon is invalid and could not be repaired. Repair the layer with "
                        "Vector > Geometry Tools > Fix Geometries, then evaluate again.")
    found = _coordinates(hit)
    if found.size == 0:
        return np.zeros(x.size, dtype=bool)
    # GEOS copies the points' coordinates unchanged, so exact equality finds them again
    return np.isin(x + 1j * y, found[:, 0] + 1j * found[:, 1])


def _intersection(a: ogr.Geometry, b: ogr.Geometry) -> ogr.Geometry | None:
    """``a ∩ b``, retried once on a repaired ``b``; None when both fail."""
    for attempt in range(2):
        try:
            gdal.PushErrorHandler("CPLQuietErrorHandler")
            try:
                out = a.Intersection(b)
            finally:
                gdal.PopErrorHandler()
        except RuntimeError:  # OGR exceptions switched on by someone else
            out = None
        if out is not None or attempt:
            return out
        repaired = b.MakeValid() if hasattr(b, "MakeValid") else b.Buffer(0)
        if repaired is None:
            return None
        b = repaired
    return None


def _coordinates(geom: ogr.Geometry) -> np.ndarray:
    """Float64 [n, 2] of the points of a Point, MultiPoint or collection (anything else ignored)."""
    flat = ogr.GT_Flatten(geom.GetGeometryType())
    if geom.IsEmpty():
        return np.empty((0, 2))
    if flat == ogr.wkbPoint:
        return np.array([[geom.GetX(), geom.GetY()]])
    if flat == ogr.wkbMultiPoint:
        wkb = bytes(geom.ExportToIsoWkb(ogr.wkbNDR)) if geom.GetCoordinateDimension() == 2 else None
        if wkb is not None:
            n = int(np.frombuffer(wkb, dtype="<u4", count=1, offset=5)[0])
            pts = np.frombuffer(wkb, dtype=_POINT_WKB, count=n, offset=_MULTIPOINT_HEADER)
            return np.column_stack([pts["x"], pts["y"]])
    parts = [_coordinates(geom.GetGeometryRef(i)) for i in range(geom.GetGeometryCount())]
    return np.concatenate(parts) if parts else np.empty((0, 2))
