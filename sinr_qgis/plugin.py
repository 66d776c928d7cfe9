"""The plugin class: provider registration, actions and the dock. Thin by design."""
from __future__ import annotations

from qgis.core import QgsApplication

from .processing.provider import SinrProvider
from .toolbelt.log import setup_logging


class SinrPlugin:
    """Entry object created by ``classFactory``."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: SinrProvider | None = None
        setup_logging()

    def initProcessing(self) -> None:
        self.provider = SinrProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
