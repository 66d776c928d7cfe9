"""A stand-in for the map canvas, as far as the dock reads it."""
from __future__ import annotations

from qgis.core import QgsCoordinateReferenceSystem, QgsMapSettings, QgsRectangle
from qgis.PyQt.QtCore import QSize


class MapView:
    """What the dock reads of the canvas: its map settings. An offscreen canvas keeps a stale output
    size, so the Zoom Full tests give the dock map settings of a known size."""

    def __init__(self, crs: str, size: QSize, extent: QgsRectangle) -> None:
        self.settings = QgsMapSettings()
        self.settings.setDestinationCrs(QgsCoordinateReferenceSystem(crs))
        self.settings.setOutputSize(size)
        self.settings.setExtent(extent)

    def mapSettings(self) -> QgsMapSettings:
        return self.settings
