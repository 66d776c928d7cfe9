"""The Diagnostics dialog: shows the report, already copied to the clipboard for a bug report."""
from __future__ import annotations

from qgis.core import QgsApplication, QgsTask
from qgis.PyQt.QtGui import QFontDatabase, QGuiApplication
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..toolbelt.diagnostics import diagnostics_report
from .install_button import OnnxruntimeInstallButton

TRACKER_HINT = ("The report below is in the clipboard: paste it into your bug report "
                "(Plugins > Manage and Install Plugins shows the tracker link).")


COLLECTING = ("Collecting the report: timing the prediction engine and asking the training Python "
              "(a few seconds; QGIS stays usable)…")


class DiagnosticsDialog(QDialog):
    """Read-only report with a Copy button; the report is collected in a background task."""

    def __init__(self, report: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrDiagnosticsDialog")
        self.setWindowTitle(self.tr("SINR diagnostics"))
        self.report = report  # "" while being collected
        self.task: QgsTask | None = None
        layout = QVBoxLayout(self)
        hint = QLabel(self.tr(TRACKER_HINT))
        hint.setWordWrap(True)
        layout.addWidget(hint)
        # Hidden when onnxruntime is importable; the report is collected again once it is installed
        self.install_button = OnnxruntimeInstallButton(self)
        self.install_button.installed.connect(self.refresh_report)
        layout.addWidget(self.install_button)
        self.text = QPlainTextEdit(report or self.tr(COLLECTING))
        self.text.setObjectName("SinrDiagnosticsText")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton(self.tr("Copy to clipboard"))
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        self.copy_button.setEnabled(bool(report))
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(900, 420)

    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setText(self.report)

    def refresh_report(self) -> None:
        """Collect the report in a background task (it starts the training interpreter, ~2 s, and
        times the bundled model, ~1 s), then show it and copy it to the clipboard."""
        if self.task is not None:
            return
        self.report = ""
        self.text.setPlainText(self.tr(COLLECTING))
        self.copy_button.setEnabled(False)
        self.task = QgsTask.fromFunction("SINR diagnostics", lambda _task: diagnostics_report(probe_torch=True),
                                         on_finished=self._collected)
        QgsApplication.taskManager().addTask(self.task)

    def _collected(self, exception: Exception | None, report: str | None = None) -> None:
        self.task = None
        self.report = report if exception is None and report else \
            f"The diagnostics report could not be collected: {exception!r}"
        self.text.setPlainText(self.report)
        self.copy_button.setEnabled(True)
        self.copy_to_clipboard()


def show_diagnostics(parent: QWidget | None = None) -> DiagnosticsDialog:
    """Show the dialog at once and collect the report in the background; it is copied when ready."""
    dialog = DiagnosticsDialog("", parent)
    dialog.show()
    dialog.refresh_report()
    return dialog
