"""Points in any CRS (features, a clicked map point) -> (lon, lat) degrees for the model."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsCsException,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsWkbTypes,
)

from ..core.errors import CancelledError, GridError

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")


def to_wgs84(crs: QgsCoordinateReferenceSystem,
             transform_context: QgsCoordinateTransformContext) -> QgsCoordinateTransform:
    """A transform from ``crs`` to EPSG:4326 lon/lat, or ``GridError`` if the CRS is unusable."""
    if not crs.isValid():
        raise GridError("The layer or map has no valid CRS, so its points cannot be placed on the globe. "
                        "Set the layer's CRS first.")
    return QgsCoordinateTransform(crs, WGS84, transform_context)


def point_to_lonlat(point: QgsPointXY, crs: QgsCoordinateReferenceSystem,
                    transform_context: QgsCoordinateTransformContext) -> tuple[float, float]:
    """One point in ``crs`` -> (lon, lat) degrees."""
    try:
        p = to_wgs84(crs, transform_context).transform(point)
    except QgsCsException as exc:
        raise GridError(f"The point {point.x():.6g}, {point.y():.6g} cannot be transformed to "
                        f"longitude/latitude ({exc}).") from None
    return float(p.x()), float(p.y())


def features_to_lonlat(features: Iterable[QgsFeature], crs: QgsCoordinateReferenceSystem,
                       transform_context: QgsCoordinateTransformContext,
                       is_cancelled: Callable[[], bool] | None = None,
                       ) -> tuple[list[QgsFeature], np.ndarray, int]:
    """Point features -> (one feature per point, lonlat [N, 2] float64 degrees, number skipped).

    Every part of a multipoint is a point of its own (several sightings or plots stored in one
    feature; their centroid would be a place nobody visited): its feature is repeated once per
    part, each copy's geometry being that part, so the i-th feature goes with ``lonlat[i]``.
    Longitudes are wrapped to [-180, 180). A feature without a geometry, a geometry that is not a
    point, or a point that cannot be transformed (outside the CRS's area) is skipped and counted.
    Raises ``CancelledError`` when ``is_cancelled`` says so (a part of the points is no result).
    """
    xform = to_wgs84(crs, transform_context)
    kept: list[QgsFeature] = []
    coords: list[tuple[float, float]] = []
    skipped = 0
    for f in features:
        if is_cancelled is not None and is_cancelled():
            raise CancelledError("Cancelled while reading the points.")
        geom = f.geometry()
        if geom is None or geom.isNull() or geom.isEmpty() or geom.type() != QgsWkbTypes.GeometryType.PointGeometry:
            skipped += 1
            continue
        parts = [geom] if not geom.isMultipart() else \
            [QgsGeometry(geom.constGet().geometryN(i).clone()) for i in range(geom.constGet().numGeometries())]
        for part in parts:
            try:
                p = xform.transform(part.asPoint())
            except QgsCsException:
                skipped += 1
                continue
            if not (np.isfinite(p.x()) and np.isfinite(p.y()) and -90.0 <= p.y() <= 90.0):
                skipped += 1
                continue
            copy = QgsFeature(f)
            if part is not geom:
                copy.setGeometry(part)
            kept.append(copy)
            coords.append((p.x(), p.y()))
    lonlat = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    lonlat[:, 0] = np.mod(lonlat[:, 0] + 180.0, 360.0) - 180.0
    return kept, lonlat, skipped
