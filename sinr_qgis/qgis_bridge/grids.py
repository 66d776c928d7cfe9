"""QGIS extents, CRSs and the map canvas -> core prediction and evaluation grids."""
from __future__ import annotations

import numpy as np
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsCsException,
    QgsMapSettings,
    QgsPointXY,
    QgsRectangle,
)

from ..core.errors import GridError
from ..core.evaluation import auto_pixel_size
from ..core.grid import Grid, extent_across_antimeridian, longitude_window
from .crs import crs_to_core, extent_to_core
from .points import WGS84

AUTO_SIDE = 1000  # pixels along the longer side when the pixel size is left at 0 (auto)
CANVAS_MAX_SIDE = 2048  # a very large screen still gives a quick prediction


def grid_from_extent(extent: QgsRectangle | tuple[float, float, float, float], crs: QgsCoordinateReferenceSystem,
                     pixel_size: float) -> Grid:
    """A grid over ``extent`` (a rectangle, or (xmin, ymin, xmax, ymax), in ``crs``) with square
    pixels of ``pixel_size`` CRS units.

    ``pixel_size`` 0 picks one that gives ``AUTO_SIDE`` pixels along the longer side.
    """
    ext = extent_to_core(extent) if isinstance(extent, QgsRectangle) else tuple(float(v) for v in extent)
    if pixel_size is None or pixel_size == 0:
        pixel_size = max(ext[2] - ext[0], ext[3] - ext[1]) / AUTO_SIDE
    if pixel_size < 0:
        raise GridError(f"The pixel size must be positive (in the extent's CRS units), got {pixel_size}.")
    return Grid.from_pixel_size(ext, crs_to_core(crs), float(pixel_size))


def grid_from_size(extent: QgsRectangle, crs: QgsCoordinateReferenceSystem, width: int, height: int) -> Grid:
    """A grid of exactly ``width`` x ``height`` pixels over ``extent``."""
    return Grid(extent_to_core(extent), crs_to_core(crs), int(width), int(height))


NO_MAP_VIEW = ("The map shows no area yet (QGIS's start page is open): create or open a project, or add a "
               "layer, zoom to the area you want, then try again.")


def map_view_extent(settings: QgsMapSettings) -> QgsRectangle:
    """The visible extent of a canvas's map settings (map CRS units).

    Raises ``GridError`` (``NO_MAP_VIEW``) when it is empty: on QGIS's start page the canvas is
    hidden, 100 x 30 pixels, with no extent, and "the map" means nothing yet.
    """
    extent = settings.visibleExtent()
    if extent.isNull() or extent.isEmpty():
        raise GridError(NO_MAP_VIEW)
    return extent


def canvas_grid(settings: QgsMapSettings, max_side: int = CANVAS_MAX_SIDE) -> Grid:
    """The visible map as a grid: the canvas extent and CRS, about one cell per screen pixel.

    Takes ``QgsMapSettings`` (a value copied from the canvas on the main thread), never the canvas;
    raises ``GridError`` when the map shows no area (QGIS's start page, see :func:`map_view_extent`).
    A view larger than the world (Zoom Full) is kept whole, so the result lies exactly over the
    canvas; its pixels off the globe are nodata (``core.grid.off_globe_note`` says how many).
    """
    extent = map_view_extent(settings)
    size = settings.outputSize()
    w, h = max(1, size.width()), max(1, size.height())
    scale = min(1.0, max_side / max(w, h))
    return grid_from_size(extent, settings.destinationCrs(),
                          max(1, round(w * scale)), max(1, round(h * scale)))


def default_grid(extent: QgsRectangle, crs: QgsCoordinateReferenceSystem,
                 transform_context: QgsCoordinateTransformContext, pixel_size: float = 0.0,
                 side_cells: int = 0) -> Grid:
    """The default evaluation grid for a layer (or the map): its extent as WGS 84 lon/lat (whatever
    the layer's CRS, so the same ranges in another CRS give the same cells), ``pixel_size`` degrees;
    0 = 0.25 degree, or, with ``side_cells``, that many cells along the longer side.

    An extent across the antimeridian (a Pacific-centred CRS) gives a window from its west edge
    eastwards past 180 degrees, not the rest of the globe; an extent holding a pole (a polar CRS)
    reaches that pole at every longitude."""
    if extent is None or extent.isNull() or extent.isEmpty():
        raise GridError("The reference layer has an empty extent. Give an evaluation extent.")
    west, south, east, north = extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()
    if crs.isValid() and crs != WGS84:
        xform = QgsCoordinateTransform(crs, WGS84, transform_context)
        try:
            box = xform.transformBoundingBox(extent)
        except QgsCsException as exc:
            raise GridError(f"The reference layer's extent cannot be transformed to lon/lat ({exc}). "
                            "Give an evaluation extent.") from None
        south, north = box.yMinimum(), box.yMaximum()
        west, east = longitude_window(_sample_longitudes(extent, xform))
        for pole in (90.0, -90.0):  # the extent's edges never reach a pole that lies inside it
            try:
                at = xform.transform(QgsPointXY(0.0, pole), Qgis.TransformDirection.Reverse)
            except QgsCsException:
                continue
            if extent.contains(at):
                west, east = -180.0, 180.0
                south, north = (south, 90.0) if pole > 0 else (-90.0, north)
    west, south, east, north = extent_across_antimeridian(west, south, east, north, "EPSG:4326")
    if east - west >= 300.0:  # (nearly) round the globe: the lattice's gaps are no seam
        west, east = -180.0, 180.0
    ext = (west, max(-90.0, south), east, min(90.0, north))
    if ext[2] <= ext[0] or ext[3] <= ext[1]:
        raise GridError("The extent does not overlap the globe's lon/lat range. Give an evaluation extent.")
    if pixel_size and pixel_size > 0:
        size = pixel_size
    elif side_cells:
        size = max(ext[2] - ext[0], ext[3] - ext[1]) / side_cells
    else:
        size = auto_pixel_size(ext, True)
    return Grid.from_pixel_size(ext, "EPSG:4326", size)


def _sample_longitudes(extent: QgsRectangle, xform: QgsCoordinateTransform, n: int = 33) -> np.ndarray:
    """Longitudes of an ``n`` x ``n`` lattice over ``extent`` (points that do not transform are left out)."""
    out = []
    for x in np.linspace(extent.xMinimum(), extent.xMaximum(), n):
        for y in np.linspace(extent.yMinimum(), extent.yMaximum(), n):
            try:
                out.append(xform.transform(QgsPointXY(float(x), float(y))).x())
            except QgsCsException:
                continue
    return np.asarray(out, dtype=np.float64)
