""""Set up PyTorch for me": one button that makes a private Python with PyTorch for training.

It hides itself while the configured training Python works (checked in a background thread:
importing torch takes seconds), runs the set-up as a ``QgsTask`` (progress, pip's log and Cancel in
QGIS's task manager) and emits ``ready(python)`` once the new environment is the training Python.
The Train dialog shows it in its "training unavailable" message; ``sinr:setup_training`` does the
same from Processing.
"""
from __future__ import annotations

import contextlib
import threading

from qgis.core import Qgis, QgsApplication, QgsMessageLog
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QMessageBox, QPushButton, QWidget

from ..core.errors import CancelledError, SinrError
from ..core.training.interpreter import check_python
from ..tasks.setup_training_task import SetupTrainingTask
from ..toolbelt.interpreter import training_interpreter
from ..toolbelt.private_packages import training_python_folder
from ..toolbelt.training_python import SIZE_MB, marked_python

TAG = "SINR"


class SetupTrainingButton(QPushButton):
    """"Set up PyTorch for me": one click, no terminal.

    Signals: ``ready(str)`` with the new interpreter once training can use it; ``failed(str)``
    with the error message (also shown in a message box unless ``quiet``). ``folder``,
    ``source`` and ``base_python`` are handed to :class:`SetupTrainingTask` (``None``: the
    profile's folder, PyTorch's and PyPI's indexes, QGIS's Python).
    """

    ready = pyqtSignal(str)
    failed = pyqtSignal(str)
    _probed = pyqtSignal(str, bool)  # (interpreter, usable) from the background check

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrSetupTrainingButton")
        self.quiet = False  # tests and the e2e script read ``last_error`` instead of a modal box
        self.task: SetupTrainingTask | None = None
        self.last_error = ""
        self.folder = None
        self.source: str | None = None
        self.base_python: str | None = None
        self.setText(self.tr("Set up PyTorch for me"))
        self.setToolTip(self.tr(
            "Makes a private Python with CPU PyTorch for training in your QGIS profile (about "
            "{:.1f} GB; the download is about 200 MB) from QGIS's own Python, so it keeps "
            "QGIS's GDAL. Nothing in QGIS itself changes; PyTorch only runs in the training process. "
            "Progress and Cancel are in QGIS's task manager.").format(SIZE_MB / 1000))
        self._probed.connect(self._show_for)
        self.clicked.connect(self._clicked)
        self.refresh()

    def refresh(self) -> None:
        """Hide at once when the training Python is one this button set up; otherwise check the
        configured interpreter in the background and hide when it works."""
        if self.task is not None:
            return
        python = training_interpreter()
        if marked_python(python) is not None:
            self.setVisible(False)
            return
        self.setEnabled(True)
        # hold the button, not its bound signal: emitting a bound signal of a deleted button
        # segfaults, while the button's wrapper raises RuntimeError (suppressed below)
        button = self

        def run() -> None:
            try:
                check_python(python)
                ok = True
            except SinrError:
                ok = False
            with contextlib.suppress(RuntimeError):  # the button was deleted meanwhile
                button._probed.emit(python, ok)

        threading.Thread(target=run, name="sinr-setup-probe", daemon=True).start()

    def _show_for(self, python: str, usable: bool) -> None:
        if self.task is None and python == training_interpreter():
            self.setVisible(not usable)

    def _clicked(self) -> None:
        if self.quiet or self._confirmed():
            self.start_setup()

    def _confirmed(self) -> bool:
        folder = self.folder or training_python_folder()
        answer = QMessageBox.question(
            self.window(), self.tr("Set up PyTorch for training"),
            self.tr("Download CPU PyTorch (about 200 MB) and install it with onnx into a private Python "
                    "environment in\n{}\n(about {:.1f} GB on disk)? QGIS itself is not "
                    "changed. You can keep working meanwhile.").format(folder, SIZE_MB / 1000),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def start_setup(self) -> SetupTrainingTask:
        """Start the set-up task (returns it, so a test can wait for it)."""
        self.last_error = ""
        self.setEnabled(False)
        self.setText(self.tr("Setting up PyTorch…"))
        self.task = SetupTrainingTask(folder=self.folder, source=self.source, base_python=self.base_python,
                                      on_done=self._done)
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def _done(self, task: SetupTrainingTask, ok: bool) -> None:
        self.task = None
        self.setText(self.tr("Set up PyTorch for me"))
        self.setEnabled(True)
        if ok and task.result is not None:  # pip's lines went to the log panel as they came
            QgsMessageLog.logMessage(task.summary, TAG, Qgis.MessageLevel.Info)
            self.setVisible(False)
            self.ready.emit(str(task.result.python))
            return
        self.last_error = str(task.error) if task.error is not None else self.tr("Set-up cancelled.")
        QgsMessageLog.logMessage(self.last_error, TAG, Qgis.MessageLevel.Warning)
        self.failed.emit(self.last_error)
        if not self.quiet and task.error is not None and not isinstance(task.error, CancelledError):
            QMessageBox.warning(self.window(), self.tr("PyTorch not set up"), self.last_error)
