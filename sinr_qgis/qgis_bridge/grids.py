"""QGIS extents, CRSs and the map canvas -> core prediction grids."""
from __future__ import annotations

from qgis.core import QgsCoordinateReferenceSystem, QgsMapSettings, QgsRectangle

from ..core.errors import GridError
from ..core.grid import Grid
from .crs import crs_to_core, extent_to_core

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
