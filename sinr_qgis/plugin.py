"""The plugin class: provider registration, actions and the dock. Thin by design."""
from __future__ import annotations

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication

from .core.resources import icon_path
from .processing.provider import SinrProvider
from .toolbelt.log import setup_logging

MENU = QT_TRANSLATE_NOOP("SinrPlugin", "&SINR Species Ranges")  # shown as tr(MENU): one text to add and remove


class SinrPlugin:
    """Entry object created by ``classFactory``."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: SinrProvider | None = None
        self.diagnostics_action = None
        self._diagnostics_dialog = None
        self.help_action = None
        self._help_dialog = None
        self.dock_action = None
        self.dock = None  # created on first use: loading a model at QGIS start-up would slow it down
        self.temporary_check = None  # warns when a saved project uses the dock's temporary maps
        self.menu = self.tr(MENU)
        setup_logging()

    @staticmethod
    def tr(text: str) -> str:
        """``text`` in the user's language (not a QObject: a fixed translation context)."""
        return QCoreApplication.translate("SinrPlugin", text)

    def initProcessing(self) -> None:
        self.provider = SinrProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()
        self._add_dock_action()
        self._add_diagnostics_action()
        self._add_help_action()
        self._watch_temporary_predictions()

    # ---- The dock's temporary maps (toolbelt/prediction_folder.py, gui/temporary_predictions.py) ----
    def _watch_temporary_predictions(self) -> None:
        from .gui.temporary_predictions import TemporaryPredictionsCheck
        from .qgis_bridge.prediction_layers import layer_sources
        from .toolbelt.prediction_folder import remove_stale_sessions

        remove_stale_sessions(layer_sources())  # maps of QGIS sessions that have ended
        self.temporary_check = TemporaryPredictionsCheck(self.iface)

    # ---- The prediction dock (gui/dock.py) ----
    def _add_dock_action(self) -> None:
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        self.dock_action = QAction(QIcon(icon_path("sinr.svg")), self.tr("Species ranges panel"),
                                   self.iface.mainWindow())
        self.dock_action.setObjectName("SinrDockAction")
        self.dock_action.setToolTip(self.tr("Predict species ranges on the map and list the species at a point"))
        self.dock_action.setCheckable(True)
        self.dock_action.toggled.connect(self.show_dock)
        self.iface.addPluginToMenu(self.menu, self.dock_action)
        self.iface.addToolBarIcon(self.dock_action)

    def show_dock(self, visible: bool = True) -> None:
        if self.dock is None and visible:
            from qgis.PyQt.QtCore import Qt

            from .gui.dock import SinrDock

            self.dock = SinrDock(self.iface, self.iface.mainWindow())
            self.dock.visibilityChanged.connect(self.dock_action.setChecked)
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        if self.dock is not None:
            self.dock.setUserVisible(visible)

    # ---- Diagnostics (a report for bug reports, copied to the clipboard) ----
    def _add_diagnostics_action(self) -> None:
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        self.diagnostics_action = QAction(QIcon(icon_path("sinr.svg")), self.tr("Diagnostics…"),
                                          self.iface.mainWindow())
        self.diagnostics_action.setObjectName("SinrDiagnosticsAction")
        self.diagnostics_action.setToolTip(self.tr("Copy a report of versions, backend and models for a bug report"))
        self.diagnostics_action.triggered.connect(self.show_diagnostics)
        self.iface.addPluginToMenu(self.menu, self.diagnostics_action)

    def _add_help_action(self) -> None:
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        self.help_action = QAction(QIcon(icon_path("sinr.svg")), self.tr("Help…"), self.iface.mainWindow())
        self.help_action.setObjectName("SinrHelpAction")
        self.help_action.setToolTip(self.tr("What SINR is, how to read its maps and scores, and the data credits"))
        self.help_action.triggered.connect(lambda: self.show_help())
        self.iface.addPluginToMenu(self.menu, self.help_action)

    def show_help(self, section: str = "") -> None:
        from .gui.help_dialog import show_help

        self._help_dialog = show_help(section, self.iface.mainWindow())

    def show_diagnostics(self) -> None:
        from .gui.diagnostics_dialog import show_diagnostics

        self._diagnostics_dialog = show_diagnostics(self.iface.mainWindow())
        self.iface.messageBar().pushInfo("SINR", self.tr("Diagnostics report copied to the clipboard."))

    def unload(self) -> None:
        if self.dock is not None:
            self.dock.shutdown()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.temporary_check is not None:
            self.temporary_check.close()
            self.temporary_check = None
        if self.dock_action is not None:
            self.iface.removePluginMenu(self.menu, self.dock_action)
            self.iface.removeToolBarIcon(self.dock_action)
            self.dock_action.deleteLater()
            self.dock_action = None
        if self.help_action is not None:
            self.iface.removePluginMenu(self.menu, self.help_action)
            self.help_action.deleteLater()
            self.help_action = None
        if self.diagnostics_action is not None:
            self.iface.removePluginMenu(self.menu, self.diagnostics_action)
            self.diagnostics_action.deleteLater()
            self.diagnostics_action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
