"""QGIS CRS and extents -> the plain values core understands (WKT or authid, tuples)."""
from __future__ import annotations

from qgis.core import QgsCoordinateReferenceSystem, QgsRectangle

from ..core.errors import GridError


def crs_to_core(crs: QgsCoordinateReferenceSystem) -> str:
    """A CRS string GDAL/osr reads: the authid when QGIS knows one, else GDAL-flavoured WKT."""
    if not crs.isValid():
        raise GridError("The coordinate reference system is not valid. Choose a CRS for the extent.")
    authid = crs.authid()
    if authid and authid.upper().startswith(("EPSG:", "ESRI:", "IAU_")):
        return authid
    return crs.toWkt(QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED_GDAL)


def extent_to_core(extent: QgsRectangle) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax), refusing an empty or inverted rectangle with a clear message."""
    if extent is None or extent.isNull() or extent.isEmpty() or extent.width() <= 0 or extent.height() <= 0:
        raise GridError("The extent is empty. Draw or choose an extent with a non-zero width and height.")
    return (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum())
