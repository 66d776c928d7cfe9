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
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, Qt, QTimer
from qgis.PyQt.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QPushButton, QWidget

from ..core import resources
from ..core.bundle import ModelBundle
from ..core.reliability import level_counts
from ..qgis_bridge.model_files import MODEL_FILTER
from ..tasks.import_task import ImportTask
from ..tasks.train_task import TrainTask
from ..toolbelt import model_registry
from .import_dialog import ImportCheckpointDialog
from .train_dialog import TrainDialog

LOG = logging.getLogger("sinr_qgis")
# The entries' English texts; shown through tr(). OPEN_FILE and IMPORT_CHECKPOINT also mark the
# action entries (ACTION_ROLE), whatever the language shown.
BUNDLED_ENTRY = QT_TRANSLATE_NOOP("ModelChooser", "Bundled model ({})")  # .format(the catalogue's label)
BUNDLED = BUNDLED_ENTRY.format(resources.BUNDLED.label)
OPEN_FILE = QT_TRANSLATE_NOOP("ModelChooser", "Open model file…")
IMPORT_CHECKPOINT = QT_TRANSLATE_NOOP("ModelChooser", "Import SINR checkpoint…")
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
        self.combo.setToolTip(self.tr("The bundled model, the models you trained or opened (last used first), or "
                                      "open a .sinr file; files that have gone are dropped from the list"))
        self.combo.activated.connect(self._activated)
        self.train_button = QPushButton(self.tr("Train…"), self)
        self.train_button.setObjectName("SinrTrainButton")
        self.train_button.setToolTip(self.tr("Train a SINR model on your observations (runs in the background)"))
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
        self.combo.addItem(self.tr(BUNDLED_ENTRY).format(resources.BUNDLED.label), "")
        for e in model_registry.list_models(prune=False):
            self.combo.addItem(e.label, e.path)
            self.combo.setItemData(self.combo.count() - 1, e.path, Qt.ItemDataRole.ToolTipRole)
        self.combo.insertSeparator(self.combo.count())
        self.combo.addItem(self.tr(OPEN_FILE), None)
        self.combo.setItemData(self.combo.count() - 1, OPEN_FILE, ACTION_ROLE)
        self.combo.setItemData(self.combo.count() - 1, self.tr("Choose a .sinr model bundle on disk; it joins this "
                                                               "list"), Qt.ItemDataRole.ToolTipRole)
        self.combo.addItem(self.tr(IMPORT_CHECKPOINT), None)
        self.combo.setItemData(self.combo.count() - 1, IMPORT_CHECKPOINT, ACTION_ROLE)
        self.combo.setItemData(self.combo.count() - 1, self.tr("Convert a model of the official SINR code (.pt, e.g. "
                                                               "the paper's 47,375 species); it joins this list"),
                               Qt.ItemDataRole.ToolTipRole)
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
            path, _filter = QFileDialog.getOpenFileName(self, self.tr("Open a SINR model"), start, MODEL_FILTER)
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
            self._report(self.tr("Training of {} cancelled; no model was written.").format(Path(task.opts.out).name),
                         Qgis.MessageLevel.Info)
        else:
            self._report(self.tr("Training of {} failed: {}").format(Path(task.opts.out).name, task.error),
                         Qgis.MessageLevel.Warning)

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
    text = _tr("{:,} species").format(bundle.n_species)
    if isinstance(records, int) and records > 0:
        text += _tr(", learned from {:,} records").format(records) + (f" ({data['file']})" if data.get("file") else "")
    names = bundle.covariate_names
    if names:
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        maps = _tr(". It maps them from {} environmental layers ({}).") if bundle.encoding == "env" else \
            _tr(". It maps them from the location and {} environmental layers ({}).")  # 'env' reads the layers alone
        text += maps.format(len(names), shown)
    else:
        text += _tr(". It maps them from the location alone (no climate or land-cover layers).")
    levels = level_counts(bundle)
    if levels["poor"] or levels["caution"]:
        text += (_tr(" Maps: {} good, {} to use with caution, {} poor").format(
                     levels["good"], levels["caution"], levels["poor"])
                 + (_tr(", {} unknown").format(levels["unknown"]) if levels["unknown"] else "")
                 + _tr(" (see the species list)."))
    return text


def _tr(text: str) -> str:
    """``text`` in the user's language (the chooser's translation context)."""
    return QCoreApplication.translate("ModelChooser", text)


def _key(path: str) -> str:
    return str(Path(path).expanduser().resolve())
