"""The plugin's help page (resources/help/index.html) in a small browser window, offline."""
from __future__ import annotations

from qgis.PyQt.QtCore import QUrl
from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from ..core.resources import HELP_PAGE


class HelpDialog(QDialog):
    """Shows the help page, opened at ``section`` (an anchor such as "numbers" or "ranges")."""

    def __init__(self, section: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrHelpDialog")
        self.setWindowTitle(self.tr("SINR species ranges: help"))
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("SinrHelpBrowser")
        self.browser.setOpenExternalLinks(True)
        self.browser.setSource(QUrl.fromLocalFile(str(HELP_PAGE)))
        if section:
            self.browser.scrollToAnchor(section)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(760, 640)


def show_help(section: str = "", parent: QWidget | None = None) -> HelpDialog:
    """Open the help (non-modal) and return the dialog."""
    dialog = HelpDialog(section, parent)
    dialog.show()
    return dialog
