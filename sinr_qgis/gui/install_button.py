"""A button that installs onnxruntime for QGIS's Python in one click (placed next to the backend text).

It hides itself while onnxruntime is importable (and not outdated), runs the install as a
``QgsTask`` (progress and cancel in QGIS's task manager) and emits ``installed`` once the new
package is importable in this QGIS, so the caller can reload its model on the fast backend.
"""
from __future__ import annotations

from qgis.core import Qgis, QgsApplication, QgsMessageLog
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QMessageBox, QPushButton, QWidget

from ..core.errors import CancelledError
from ..tasks.install_task import InstallTask
from ..toolbelt.dependencies import ONNXRUNTIME, InstallState
from ..toolbelt.private_packages import onnxruntime_install_state

TAG = "SINR"


class OnnxruntimeInstallButton(QPushButton):
    """"Install onnxruntime (faster)": one click, no command to copy.

    Signals: ``installed()`` once onnxruntime is importable in this QGIS; ``failed(str)`` with
    the error message (also shown in a message box unless ``quiet``).
    """

    installed = pyqtSignal()
    failed = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrInstallOnnxruntimeButton")
        self.quiet = False  # tests and the e2e script read ``last_error`` instead of a modal box
        self.task: InstallTask | None = None
        self.last_error = ""
        self.restart_needed = False  # an older onnxruntime was already loaded: the new one needs a restart
        self.clicked.connect(self.start_install)
        self.refresh()

    def refresh(self) -> None:
        """Show the button when onnxruntime is missing or outdated; hide it otherwise."""
        if self.task is not None or self.restart_needed:
            return
        state = onnxruntime_install_state()
        if state == InstallState.OUTDATED:
            self.setText(self.tr("Update onnxruntime"))
        else:
            self.setText(self.tr("Install onnxruntime"))
        self.setToolTip(self.tr(
            "Downloads onnxruntime {} (about 20 MB) into a private folder of your QGIS "
            "profile; QGIS's own numpy and GDAL are left untouched. Predictions then run faster, with the "
            "same results. Progress and Cancel are in QGIS's task manager.").format(ONNXRUNTIME.version))
        self.setEnabled(True)
        self.setVisible(state != InstallState.CURRENT)

    def start_install(self) -> InstallTask:
        """Start the install task (returns it, so a test can wait for it)."""
        self.last_error = ""
        self.setEnabled(False)
        self.setText(self.tr("Installing onnxruntime…"))
        self.task = InstallTask(ONNXRUNTIME, on_done=self._done)
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def _done(self, task: InstallTask, ok: bool) -> None:
        self.task = None
        if ok:  # pip's lines went to the log panel as they came
            QgsMessageLog.logMessage(task.summary, TAG)
            if task.needs_restart:
                self.restart_needed = True
                self.setText(self.tr("Restart QGIS to use the new onnxruntime"))
                self.setToolTip(task.summary)
                self.setEnabled(False)
                self.setVisible(True)
            self.refresh()
            self.installed.emit()
            return
        self.last_error = str(task.error) if task.error is not None else self.tr("Install cancelled.")
        QgsMessageLog.logMessage(self.last_error, TAG, Qgis.MessageLevel.Warning)
        self.refresh()
        self.failed.emit(self.last_error)
        if not self.quiet and task.error is not None and not isinstance(task.error, CancelledError):
            QMessageBox.warning(self.window(), self.tr("onnxruntime not installed"), self.last_error)
