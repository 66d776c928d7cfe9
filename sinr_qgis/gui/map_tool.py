"""A map tool that reports the clicked point (in the canvas CRS) and marks it on the map."""
from __future__ import annotations

from qgis.core import QgsPointXY
from qgis.gui import QgsMapCanvas, QgsMapToolEmitPoint, QgsVertexMarker
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QCursor

MARKER_COLOUR = QColor(220, 30, 30)


class SpeciesAtPointTool(QgsMapToolEmitPoint):
    """Click the map to ask "which species live here?"; ``pointPicked`` carries the map point.

    The clicked point keeps a cross marker (``marker``) so the list can be read against the map;
    a new click moves it, and it is removed when the tool is switched off.
    """

    pointPicked = pyqtSignal(QgsPointXY)

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.setCursor(QCursor(Qt.CursorShape.WhatsThisCursor))
        self.marker: QgsVertexMarker | None = None
        self.canvasClicked.connect(self._clicked)

    def _clicked(self, point: QgsPointXY, button) -> None:
        if button == Qt.MouseButton.LeftButton:
            self.mark(point)
            self.pointPicked.emit(QgsPointXY(point))

    def mark(self, point: QgsPointXY) -> None:
        """Put the marker at ``point`` (canvas CRS), replacing the previous one."""
        self.clear_marker()
        marker = QgsVertexMarker(self.canvas())
        marker.setIconType(QgsVertexMarker.IconType.ICON_X)
        marker.setIconSize(14)
        marker.setPenWidth(3)
        marker.setColor(MARKER_COLOUR)
        marker.setCenter(QgsPointXY(point))
        self.marker = marker

    def clear_marker(self) -> None:
        """Remove the marker from the map (no-op when there is none)."""
        if self.marker is not None:
            self.canvas().scene().removeItem(self.marker)
            self.marker = None

    def deactivate(self) -> None:  # QgsMapTool override: another tool took over, or the dock turned it off
        self.clear_marker()
        super().deactivate()
