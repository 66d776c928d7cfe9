"""Processing provider ``sinr``: registers the plugin's algorithms."""
from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..toolbelt.paths import icon_path

PROVIDER_ID = "sinr"


class SinrProvider(QgsProcessingProvider):
    """Species range mapping with SINR models."""

    def id(self) -> str:
        return PROVIDER_ID

    def name(self) -> str:
        return "SINR species ranges"

    def longName(self) -> str:
        return self.name()

    def icon(self) -> QIcon:
        return QIcon(icon_path("sinr.svg"))

    def svgIconPath(self) -> str:
        return icon_path("sinr.svg")

    def loadAlgorithms(self) -> None:
        for alg in available_algorithms():
            self.addAlgorithm(alg)


def available_algorithms() -> list:
    """Instances of every algorithm; filled in as algorithms are added."""
    return []
