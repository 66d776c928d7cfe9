"""The Diagnostics dialog: shows the report, already copied to the clipboard for a bug report."""
from __future__ import annotations

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QFontDatabase, QGuiApplication
from qgis.PyQt.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..toolbelt.diagnostics import diagnostics_report

TRACKER_HINT = ("The report below is in the clipboard: paste it into your bug report "
                "(Plugins > Manage and Install Plugins shows the tracker link).")


class DiagnosticsDialog(QDialog):
    """Read-only report with a Copy button."""

    def __init__(self, report: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrDiagnosticsDialog")
        self.setWindowTitle(self.tr("SINR diagnostics"))
        self.report = report
        layout = QVBoxLayout(self)
        hint = QLabel(self.tr(TRACKER_HINT))
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.text = QPlainTextEdit(report)
        self.text.setObjectName("SinrDiagnosticsText")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        copy = QPushButton(self.tr("Copy to clipboard"))
        copy.clicked.connect(self.copy_to_clipboard)
        buttons.addButton(copy, QDialogButtonBox.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(900, 420)

    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setText(self.report)


def show_diagnostics(parent: QWidget | None = None) -> DiagnosticsDialog:
    """Collect the report (starts the training interpreter once, ~2 s), copy it, show it."""
    QApplication.setOverrideCursor(Qt.WaitCursor)
    try:
        report = diagnostics_report(probe_torch=True)
    finally:
        QApplication.restoreOverrideCursor()
    dialog = DiagnosticsDialog(report, parent)
    dialog.copy_to_clipboard()
    dialog.show()
    return dialog
