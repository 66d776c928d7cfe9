""""Import SINR checkpoint…": an official SINR model (.pt) into "My models", from the dock.

A small non-modal dialog: the checkpoint, an optional names table, the WorldClim rasters of an
environmental model, where to save. The import runs as an :class:`~sinr_qgis.tasks.import_task.ImportTask`
(the call ``sinr:import_sinr_checkpoint`` makes), with progress and Cancel here and in QGIS's task
bar; the outcome (or the one-line reason it failed) is shown in the dialog, and ``on_done(task)``
lets the dock choose the new model.
"""
from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from qgis.core import QgsApplication
from qgis.gui import QgsFileWidget
from qgis.PyQt import sip
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..qgis_bridge.model_files import CHECKPOINT_FILTER, MODEL_FILTER, TAXA_FILTER, lasting_model_path
from ..tasks.import_task import ImportTask
from ..toolbelt.interpreter import training_interpreter
from .setup_training_button import SetupTrainingButton

RASTER_FILTER = "Rasters (*.tif *.tiff *.bil *.asc *.nc *.vrt);;All files (*)"


class ImportCheckpointDialog(QDialog):
    """Choose and import an official SINR checkpoint. ``set_inputs(...)`` then ``start()`` drive it
    without clicks; ``task`` is the running (or last) import."""

    def __init__(self, parent: QWidget | None = None, on_done: Callable[[ImportTask], None] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrImportCheckpointDialog")
        self.setWindowTitle("Import SINR checkpoint")
        self.on_done = on_done
        self.task: ImportTask | None = None
        intro = QLabel("Turns a model of the official SINR code (e.g. the paper's pretrained models) into a model "
                       "of this plugin. Environmental models need the WorldClim 2.1 rasters at 5 arc-minutes "
                       "(elevation and bio1 ... bio19, any order). The Help says more.", self)
        intro.setWordWrap(True)
        form = self._inputs_form()
        self.progress = QProgressBar(self)
        self.progress.setObjectName("SinrImportProgress")
        self.progress.setRange(0, 100)
        self.status = QLabel(self)
        self.status.setObjectName("SinrImportStatus")
        self.status.setWordWrap(True)
        self.import_button = QPushButton("Import", self)
        self.import_button.setObjectName("SinrImportButton")
        self.import_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel import", self)
        self.cancel_button.setObjectName("SinrImportCancelButton")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.addButton(self.import_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._show_python()
        self.resize(560, self.sizeHint().height())

    def _inputs_form(self) -> QFormLayout:
        """The checkpoint, names, rasters and output choosers, and the training Python's row."""
        self.checkpoint = self._file_widget("SinrImportCheckpoint", CHECKPOINT_FILTER,
                                            "The official checkpoint (.pt); it is opened by PyTorch in the "
                                            "training Python, where no code stored in it can run")
        self.taxa = self._file_widget("SinrImportTaxa", TAXA_FILTER,
                                      "Names of the species: the SINR web app's names file, iNaturalist's taxa.csv, "
                                      "or a CSV of id and name; empty: the taxon ids are the names")
        self.covariates = self._file_widget("SinrImportCovariates", RASTER_FILTER,
                                            "Environmental checkpoints only: the 20 global WorldClim 2.1 rasters at 5 "
                                            "arc-minutes (elevation, bio1 ... bio19)")
        self.covariates.setStorageMode(QgsFileWidget.StorageMode.GetMultipleFiles)
        self.output = self._file_widget("SinrImportOutput", MODEL_FILTER,
                                        "Where to save the model; empty: the plugin's models folder in your profile")
        self.output.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.python_label = QLabel(self)
        self.python_label.setObjectName("SinrImportPython")
        self.python_label.setWordWrap(True)
        self.setup_button = SetupTrainingButton(self)  # hidden while the training Python works
        self.setup_button.ready.connect(lambda _python: self._show_python())
        python_row = QHBoxLayout()
        python_row.addWidget(self.python_label, 1)
        python_row.addWidget(self.setup_button)
        form = QFormLayout()
        form.addRow("Checkpoint", self.checkpoint)
        form.addRow("Species names", self.taxa)
        form.addRow("Covariate rasters", self.covariates)
        form.addRow("Save as", self.output)
        form.addRow("Python", python_row)
        return form

    def _file_widget(self, name: str, file_filter: str, tip: str) -> QgsFileWidget:
        widget = QgsFileWidget(self)
        widget.setObjectName(name)
        widget.setFilter(file_filter)
        widget.setToolTip(tip)
        return widget

    def _show_python(self) -> None:
        self.python_label.setText(f"With PyTorch from {html.escape(training_interpreter())} (the training Python)")

    def set_inputs(self, checkpoint: str, taxa: str | None = None, covariates: list[str] | tuple[str, ...] = (),
                   out: str | None = None) -> None:
        """Fill the fields (what a user would choose)."""
        self.checkpoint.setFilePath(str(checkpoint))
        self.taxa.setFilePath(str(taxa or ""))
        self.covariates.setFilePath(" ".join(f'"{c}"' for c in covariates))
        self.output.setFilePath(str(out or ""))

    def start(self) -> ImportTask | None:
        """Start the import of the chosen checkpoint as a background task; None while one runs."""
        if self.task is not None and not self.task.ended:
            return None
        checkpoint = self.checkpoint.filePath().strip()
        covariates = QgsFileWidget.splitFilePaths(self.covariates.filePath())
        out = self.output.filePath().strip() or str(lasting_model_path(Path(checkpoint).stem or "sinr_checkpoint"))
        self.task = ImportTask(checkpoint, out, training_interpreter(), taxa=self.taxa.filePath().strip() or None,
                               covariates=covariates, on_done=self._done)
        self.task.progressChanged.connect(self._progress)
        self.progress.setValue(0)
        self.status.setText(f"Importing {html.escape(Path(checkpoint).name)}…")
        self.import_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def cancel(self) -> None:
        if self.task is not None and not self.task.ended:
            self.task.cancel()

    def _progress(self, percent: float) -> None:
        if not sip.isdeleted(self):
            self.progress.setValue(int(percent))

    def _done(self, task: ImportTask, ok: bool) -> None:
        if sip.isdeleted(self):  # closed with the plugin while the import ran
            return
        self.import_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if ok and task.result is not None:
            self.progress.setValue(100)
            self.status.setText(html.escape(" ".join([task.result.summary(), *task.messages]))
                                + "<br>It is now in <i>My models</i>.")
        elif task.cancelled:
            self.status.setText("Import cancelled; no model was written.")
        else:
            self.status.setText(f"<b>Import failed:</b> {html.escape(str(task.error))}")
        if self.on_done is not None:
            self.on_done(task)
