"""A map tool that reports the clicked point (in the canvas CRS) to whoever listens."""
from __future__ import annotations

from qgis.core import QgsPointXY
from qgis.gui import QgsMapCanvas, QgsMapToolEmitPoint
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QCursor


class SpeciesAtPointTool(QgsMapToolEmitPoint):
    """Click the map to ask "which species live here?"; ``pointPicked`` carries the map point."""

    pointPicked = pyqtSignal(QgsPointXY)

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.setCursor(QCursor(Qt.WhatsThisCursor))
        self.canvasClicked.connect(self._clicked)

    def _clicked(self, point: QgsPointXY, button) -> None:
        if button == Qt.LeftButton:
            self.pointPicked.emit(QgsPointXY(point))
