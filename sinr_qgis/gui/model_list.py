"""The dock's one model control: the bundled model, "My models", "Open model file…", "Import SINR
checkpoint…" (an official SINR model, gui/import_dialog.py), and "Train model…".

A small widget the dock embeds. Choosing an entry calls ``choose(path)`` ("" = the bundled
model), which loads it and returns whether it did; a model opened from a file joins "My models"
(the dock remembers it once it loaded), and a finished training adds the new model and chooses it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from qgis.core import Qgis
from qgis.PyQt import sip
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QPushButton, QWidget

from ..core import resources
from ..core.bundle import ModelBundle
from ..core.reliability import level_counts
from ..tasks.import_task import ImportTask
from ..tasks.train_task import TrainTask
from ..toolbelt import model_registry
from .import_dialog import ImportCheckpointDialog
from .train_dialog import TrainDialog

LOG = logging.getLogger("sinr_qgis")
BUNDLED = f"Bundled model ({resources.BUNDLED.label})"
OPEN_FILE = "Open model file…"
IMPORT_CHECKPOINT = "Import SINR checkpoint…"
# marks the action entries (their data is no path): OPEN_FILE or IMPORT_CHECKPOINT
ACTION_ROLE = Qt.ItemDataRole.UserRole + 1


class ModelChooser(QWidget):
    """A combo of the bundled model, the user's models (last used first) and "Open model file…", and a
    "Train model…" button. ``choose(path) -> bool`` loads a model ("" = bundled)."""

    def __init__(self, parent: QWidget | None = None, *, choose: Callable[[str], bool],
                 report: Callable[[str, object], None] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrModelChooser")
        self.choose = choose
        self.report = report
        self.dialog: TrainDialog | None = None
        self.import_dialog: ImportCheckpointDialog | None = None
        self.current_path = ""  # the entry shown while no other is chosen
        self.combo = QComboBox(self)
        self.combo.setObjectName("SinrModelCombo")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(8)  # long model names are elided, not widening the dock
        self.combo.setToolTip("The bundled model, the models you trained or opened (last used first), or open a "
                              ".sinr file; files that have gone are dropped from the list")
        self.combo.activated.connect(self._activated)
        self.train_button = QPushButton("Train…", self)
        self.train_button.setObjectName("SinrTrainButton")
        self.train_button.setToolTip("Train a SINR model on your observations (runs in the background)")
        self.train_button.clicked.connect(self.open_train_dialog)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.train_button)
        self._pending: list[str] = []
        self.refresh(defer_messages=True)  # the host (the dock) is still being built: report a moment later

    # ---- the list ------------------------------------------------------------------------------
    def refresh(self, select: str | None = None, defer_messages: bool = False) -> None:
        """Re-read the remembered models (dropping gone files, with a message) and show ``select``
        (default: the current model)."""
        messages = model_registry.prune_missing()
        if defer_messages and messages:
            self._pending = messages
            QTimer.singleShot(0, self._flush_messages)
        else:
            for msg in messages:
                self._report(msg, Qgis.MessageLevel.Info)
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(BUNDLED, "")
        for e in model_registry.list_models(prune=False):
            self.combo.addItem(e.label, e.path)
            self.combo.setItemData(self.combo.count() - 1, e.path, Qt.ItemDataRole.ToolTipRole)
        self.combo.insertSeparator(self.combo.count())
        self.combo.addItem(OPEN_FILE, None)
        self.combo.setItemData(self.combo.count() - 1, OPEN_FILE, ACTION_ROLE)
        self.combo.setItemData(self.combo.count() - 1, "Choose a .sinr model bundle on disk; it joins this list",
                               Qt.ItemDataRole.ToolTipRole)
        self.combo.addItem(IMPORT_CHECKPOINT, None)
        self.combo.setItemData(self.combo.count() - 1, IMPORT_CHECKPOINT, ACTION_ROLE)
        self.combo.setItemData(self.combo.count() - 1, "Convert a model of the official SINR code (.pt, e.g. the "
                               "paper's 47,375 species); it joins this list", Qt.ItemDataRole.ToolTipRole)
        self.combo.blockSignals(False)
        self.show_model(self.current_path if select is None else select)

    def _flush_messages(self) -> None:
        for msg in self._pending:
            self._report(msg, Qgis.MessageLevel.Info)
        self._pending = []

    def show_model(self, path: str) -> None:
        """Show ``path``'s entry as the current one ("" = bundled); nothing shown when it is not listed."""
        self.current_path = path
        key = _key(path) if path else ""
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(-1)
        for i in range(self.combo.count()):
            data = self.combo.itemData(i)
            if isinstance(data, str) and (_key(data) if data else "") == key:
                self.combo.setCurrentIndex(i)
                break
        self.combo.blockSignals(False)

    def _activated(self, index: int) -> None:
        action = self.combo.itemData(index, ACTION_ROLE)
        if action == IMPORT_CHECKPOINT:
            self.show_model(self.current_path)  # the model in use stays shown while the dialog is open
            self.open_import_dialog()
        elif action:
            self.open_model_file()
        elif not self.choose(self.combo.itemData(index) or ""):
            self.show_model(self.current_path)  # it did not load: the model in use stays shown

    def open_model_file(self, path: str | None = None) -> bool:
        """Load a model from a file (asks for it when ``path`` is None); True when it loaded.

        Cancelling the file dialog, or a file that does not load, keeps the model in use."""
        if path is None:
            start = str(Path(self.current_path).parent) if self.current_path else ""
            path, _filter = QFileDialog.getOpenFileName(self, "Open a SINR model", start, "SINR model (*.sinr)")
        if not path or not self.choose(path):
            self.show_model(self.current_path)
            return False
        return True

    def open_import_dialog(self) -> ImportCheckpointDialog:
        """Show "Import SINR checkpoint" (non-modal); an imported model joins the list and is chosen."""
        self.import_dialog = ImportCheckpointDialog(self.window(), on_done=self._imported)
        self.import_dialog.show()
        return self.import_dialog

    def _imported(self, task: ImportTask) -> None:
        if sip.isdeleted(self) or not task.ok or task.result is None:
            return  # the dialog shows why
        path = str(task.result.path)
        self.refresh(select=path)
        self.choose(path)
        self._report(" ".join([task.result.summary(), *task.messages]),
                     Qgis.MessageLevel.Warning if task.messages else Qgis.MessageLevel.Info)

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
            # what the inputs could not take as asked (rasters with a coordinates-only model) stays in sight
            self._report(" ".join([task.result.summary(), *task.warnings]),
                         Qgis.MessageLevel.Warning if task.warnings else Qgis.MessageLevel.Info)
        elif task.cancelled:
            self._report(f"Training of {Path(task.opts.out).name} cancelled; no model was written.",
                         Qgis.MessageLevel.Info)
        else:
            self._report(f"Training of {Path(task.opts.out).name} failed: {task.error}", Qgis.MessageLevel.Warning)

    def _report(self, text: str, level) -> None:
        if self.report is not None:
            self.report(text, level)
        else:
            LOG.info(text)


def model_summary(bundle: ModelBundle) -> str:
    """The model in plain words for the dock: how many species, from how many records, from what
    inputs (the technical card, ``ModelBundle.card``, goes under "Details")."""
    data = bundle.meta.get("data") if isinstance(bundle.meta.get("data"), dict) else {}
    records = data.get("n_records_used")
    text = f"{bundle.n_species:,} species"
    if isinstance(records, int) and records > 0:
        text += f", learned from {records:,} records" + (f" ({data['file']})" if data.get("file") else "")
    names = bundle.covariate_names
    if names:
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        where = "the location and " if bundle.encoding != "env" else ""  # 'env' reads the layers alone
        text += f". It maps them from {where}{len(names)} environmental layers ({shown})."
    else:
        text += ". It maps them from the location alone (no climate or land-cover layers)."
    levels = level_counts(bundle)
    if levels["poor"] or levels["caution"]:
        text += (f" Maps: {levels['good']} good, {levels['caution']} to use with caution, {levels['poor']} poor"
                 + (f", {levels['unknown']} unknown" if levels["unknown"] else "") + " (see the species list).")
    return text


def _key(path: str) -> str:
    return str(Path(path).expanduser().resolve())
