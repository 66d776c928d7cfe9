"""Reference layers for the comparison (Evaluate) tests: expert range polygons over a 1-degree grid,
presence-absence plots, and which grid cells lie in a range."""
from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)

from sinr_qgis.core.landmask import is_land

EXTENT = "-100,-80,30,46 [EPSG:4326]"  # 20 x 16 one-degree cells, mostly land


RECT_1 = (-95.3, 36.2, -88.7, 41.6)  # sp001, by code


RECT_3 = (-86.4, 31.7, -81.2, 38.3)  # species 3, by name in odd case


def _rect(xmin, ymin, xmax, ymax) -> QgsGeometry:
    return QgsGeometry.fromRect(QgsRectangle(xmin, ymin, xmax, ymax))


def ranges_layer(crs: str = "EPSG:4326", features=None) -> QgsVectorLayer:
    """Range polygons drawn in lon/lat, stored in ``crs`` (vertices transformed)."""
    features = features or [("sp001", [RECT_1]), ("  SPECIES NUMBER3 ", [RECT_3]), ("Quercus nowhere", [RECT_1])]
    layer = QgsVectorLayer(f"MultiPolygon?crs={crs}&field=taxon:string&field=note:string", "ranges", "memory")
    xform = None
    if crs != "EPSG:4326":
        xform = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                       QgsCoordinateReferenceSystem(crs), QgsProject.instance())
    feats = []
    for name, rects in features:
        geom = QgsGeometry.collectGeometry([_rect(*r) for r in rects])
        if xform is not None:
            geom.densifyByCount(0)
            assert geom.transform(xform) == 0
        f = QgsFeature(layer.fields())
        f.setAttributes([name, "x"])
        f.setGeometry(geom)
        feats.append(f)
    assert layer.dataProvider().addFeatures(feats)[0]
    return layer


def grid_cells():
    """Centres, land flag and cos(lat) of the 1-degree cells of EXTENT, row-major from the top."""
    lons = -100 + 0.5 + np.arange(20)
    lats = 46 - 0.5 - np.arange(16)
    ll = np.array([(x, y) for y in lats for x in lons])
    return ll, is_land(ll), np.cos(np.radians(ll[:, 1]))


def inside(ll, rect):
    return (ll[:, 0] > rect[0]) & (ll[:, 0] < rect[2]) & (ll[:, 1] > rect[1]) & (ll[:, 1] < rect[3])


def point_layer(fields: str, rows) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"Point?crs=EPSG:3857&{fields}", "plots", "memory")
    to_merc = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                     QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())
    feats = []
    for (lon, lat), attrs in rows:
        f = QgsFeature(layer.fields())
        f.setAttributes(list(attrs))
        f.setGeometry(QgsGeometry.fromPointXY(to_merc.transform(QgsPointXY(lon, lat))))
        feats.append(f)
    assert layer.dataProvider().addFeatures(feats)[0]
    return layer
