"""The dock's "My models" row: the user's remembered models, their card, and "Train model…".

A small widget the dock embeds: choosing a model calls ``choose(path)`` ("" = the bundled
model); a finished training adds the new model to the list and chooses it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from qgis.core import Qgis
from qgis.PyQt import sip
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..tasks.train_task import TrainTask
from ..toolbelt import model_registry
from .train_dialog import TrainDialog

LOG = logging.getLogger("sinr_qgis")
BUNDLED = "Bundled model (North American trees)"


class ModelListWidget(QWidget):
    """A combo of the user's models (newest first), the selected model's card, and a Train button."""

    def __init__(self, parent: QWidget | None = None, *, choose: Callable[[str], None],
                 report: Callable[[str, object], None] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrModelList")
        self.choose = choose
        self.report = report
        self.dialog: TrainDialog | None = None
        self.combo = QComboBox(self)
        self.combo.setToolTip("Models you trained (newest first); files that have gone are dropped from the list")
        if hasattr(self.combo, "setPlaceholderText"):  # Qt >= 5.15
            self.combo.setPlaceholderText("choose one of your models")
        self.combo.activated.connect(self._activated)
        self.train_button = QPushButton("Train model…", self)
        self.train_button.setToolTip("Train a SINR model on your observations (runs in the background)")
        self.train_button.clicked.connect(self.open_train_dialog)
        self.card = QLabel(self)
        self.card.setWordWrap(True)
        self.card.setTextInteractionFlags(Qt.TextSelectableByMouse)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.train_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.card)
        self._pending: list[str] = []
        self.refresh(defer_messages=True)  # the host (the dock) is still being built: report a moment later

    # ---- the list ------------------------------------------------------------------------------
    def refresh(self, select: str | None = None, defer_messages: bool = False) -> None:
        """Re-read the remembered models (dropping gone files, with a message) and select ``select``."""
        messages = model_registry.prune_missing()
        if defer_messages and messages:
            self._pending = messages
            QTimer.singleShot(0, self._flush_messages)
        else:
            for msg in messages:
                self._report(msg, Qgis.Info)
        current = self.combo.currentData() if select is None else select
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(BUNDLED, "")
        for e in model_registry.list_models(prune=False):
            self.combo.addItem(e.label, e.path)
            self.combo.setItemData(self.combo.count() - 1, e.path, Qt.ToolTipRole)
        self._select(current)
        self.combo.blockSignals(False)

    def _flush_messages(self) -> None:
        for msg in self._pending:
            self._report(msg, Qgis.Info)
        self._pending = []

    def _select(self, path: str | None) -> None:
        key = _key(path) if path else ""
        for i in range(self.combo.count()):
            data = self.combo.itemData(i) or ""
            if (_key(data) if data else "") == key:
                self.combo.setCurrentIndex(i)
                return
        self.combo.setCurrentIndex(-1)  # a model opened from a file that is not in the list

    def _activated(self, index: int) -> None:
        self.choose(self.combo.itemData(index) or "")

    def model_loaded(self, path: str, bundle) -> None:
        """The dock loaded ``path`` (``bundle`` None when it failed): select it if listed, show its card."""
        self._select(path)
        card = bundle.card() if bundle is not None else ""
        # the long licence and citation lines stay in the tooltip; the label keeps the facts
        self.card.setText("\n".join(line for line in card.splitlines()
                                    if not line.startswith(("Cite:", "Licence:"))))
        self.card.setToolTip(card)

    # ---- training ------------------------------------------------------------------------------
    def open_train_dialog(self) -> TrainDialog:
        """Show the "Train a SINR model" dialog (non-modal: QGIS stays usable)."""
        self.dialog = TrainDialog(self.window(), on_done=self._trained)
        self.dialog.show()
        return self.dialog

    def _trained(self, task: TrainTask, ok: bool) -> None:
        if sip.isdeleted(self):  # the dock was closed with the plugin while training ran
            return
        if ok and task.result is not None:
            path = str(task.result.path)
            self.refresh(select=path)
            self.choose(path)
            self._report(task.result.summary(), Qgis.Info)
        elif task.cancelled:
            self._report(f"Training of {Path(task.opts.out).name} cancelled; no model was written.", Qgis.Info)
        else:
            self._report(f"Training of {Path(task.opts.out).name} failed: {task.error}", Qgis.Warning)

    def _report(self, text: str, level) -> None:
        if self.report is not None:
            self.report(text, level)
        else:
            LOG.info(text)


def _key(path: str) -> str:
    return str(Path(path).expanduser().resolve())
