"""The "Train model" dialog: the parameters of ``sinr:train_model``, started as a background task.

The dialog only gathers inputs. On "Train" it copies them on the main thread (a point layer is
exported to a temporary lon/lat CSV by ``qgis_bridge.observations``), then queues a
``TrainTask`` and closes; ``on_done(task, ok)`` is called when the task ends.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from qgis.core import QgsMapLayerProxyModel, QgsProject, QgsRasterLayer
from qgis.gui import QgsCheckableComboBox, QgsFieldComboBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.encoding import ENCODINGS
from ..core.errors import SinrError
from ..core.train_runner import DEFAULTS, LOSS_LABELS, LOSSES, TrainOptions, checkpoint_path
from ..qgis_bridge.covariates import raster_layer_source
from ..qgis_bridge.observations import (
    OBSERVATION_FILE_FILTER,
    SOURCE,
    SPECIES,
    export_file_name,
    export_observations,
)
from ..tasks.train_task import TrainTask, start_training, training_busy_message
from ..toolbelt.interpreter import (
    INTERPRETER_FILE_FILTER,
    check_training_interpreter,
    set_training_interpreter,
    training_interpreter,
)

LOG = logging.getLogger("sinr_qgis")
ENCODING_CHOICES = (("Automatic (coordinates + covariates when rasters are checked)", None),
                    ("Coordinates only", "sin_cos"), ("Covariates only", "env"),
                    ("Coordinates + covariates", "sin_cos_env"))


class TrainDialog(QDialog):
    """Observations, covariates, loss and network settings, output, interpreter -> a ``TrainTask``."""

    def __init__(self, parent: QWidget | None = None,
                 on_done: Callable[[TrainTask, bool], None] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrTrainDialog")
        self.setWindowTitle("Train a SINR model")
        self.on_done = on_done
        self.task: TrainTask | None = None
        self._build()

    # ---- widgets -------------------------------------------------------------------------------
    def _build(self) -> None:
        obs = QGroupBox("Observations", self)
        self.use_layer = QRadioButton("Point layer (any CRS)", obs)
        self.use_file = QRadioButton("File (CSV, GBIF, iNaturalist, Darwin Core Archive)", obs)
        group = QButtonGroup(self)
        group.addButton(self.use_layer)
        group.addButton(self.use_file)
        self.layer_combo = QgsMapLayerComboBox(obs)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.PointLayer)
        self.species_field = QgsFieldComboBox(obs)
        self.source_field = QgsFieldComboBox(obs)
        self.source_field.setAllowEmptyFieldName(True)
        self.layer_combo.layerChanged.connect(self._layer_changed)
        self.file_widget = QgsFileWidget(obs)
        self.file_widget.setFilter(OBSERVATION_FILE_FILTER)
        self.species_column = QLineEdit(obs)
        self.species_column.setPlaceholderText("detected (e.g. species, scientificName)")
        self.source_column = QLineEdit(obs)
        self.source_column.setPlaceholderText("detected (e.g. source, datasetKey); optional")
        f = QFormLayout(obs)
        f.addRow(self.use_layer)
        f.addRow("Layer", self.layer_combo)
        f.addRow("Species field", self.species_field)
        f.addRow("Source field", self.source_field)
        f.addRow(self.use_file)
        f.addRow("File", self.file_widget)
        f.addRow("Species column", self.species_column)
        f.addRow("Source column", self.source_column)
        self.use_layer.toggled.connect(self._mode_changed)
        has_points = self.layer_combo.count() > 0
        (self.use_layer if has_points else self.use_file).setChecked(True)
        self._layer_changed(self.layer_combo.currentLayer())
        self._mode_changed()

        model = QGroupBox("Model", self)
        self.covariates = QgsCheckableComboBox(model)
        self.covariates.setDefaultText("none: coordinates only")
        self.covariates.setToolTip("Raster layers (lon/lat, e.g. bioclim) whose bands become model inputs")
        for layer in QgsProject.instance().mapLayers().values():
            if isinstance(layer, QgsRasterLayer) and layer.providerType() == "gdal":
                self.covariates.addItemWithCheckState(layer.name(), Qt.Unchecked, layer.id())
        self.encoding = QComboBox(model)
        for label, value in ENCODING_CHOICES:
            self.encoding.addItem(label, value)
        self.loss = QComboBox(model)
        for key in LOSSES:
            self.loss.addItem(LOSS_LABELS[key], key)
        self.loss.setCurrentIndex(LOSSES.index(DEFAULTS["loss"]))
        self.cap = self._spin(0, 10_000_000, DEFAULTS["cap"], "0 = all records")
        self.epochs = self._spin(1, 100_000, DEFAULTS["epochs"])
        self.width_spin = self._spin(1, 4096, DEFAULTS["width"])
        self.depth = self._spin(0, 64, DEFAULTS["depth"])
        self.seed = self._spin(0, 2**31 - 1, DEFAULTS["seed"])
        self.min_records = self._spin(1, 1_000_000, DEFAULTS["min_records"])
        self.batch_size = self._spin(1, 1_000_000, DEFAULTS["batch_size"])
        m = QFormLayout(model)
        m.addRow("Covariate rasters", self.covariates)
        m.addRow("Model inputs", self.encoding)
        m.addRow("Loss", self.loss)
        m.addRow("Max records per species", self.cap)
        m.addRow("Min records per species", self.min_records)
        m.addRow("Epochs", self.epochs)
        m.addRow("Network width", self.width_spin)
        m.addRow("Network depth", self.depth)
        m.addRow("Batch size", self.batch_size)
        m.addRow("Random seed", self.seed)

        out = QGroupBox("Output", self)
        self.output = QgsFileWidget(out)
        self.output.setStorageMode(QgsFileWidget.SaveFile)
        self.output.setFilter("SINR model (*.sinr)")
        self.output.fileChanged.connect(self._output_changed)
        self.model_name = QLineEdit(out)
        self.model_name.setPlaceholderText("default: the file name")
        self.resume = QCheckBox("Resume from the last checkpoint of this output", out)
        self.python = QgsFileWidget(out)
        self.python.setFilter(INTERPRETER_FILE_FILTER)
        self.python.setFilePath(training_interpreter())
        self.check_button = QPushButton("Check", out)
        self.check_button.clicked.connect(self.check_python)
        py_row = QHBoxLayout()
        py_row.addWidget(self.python, 1)
        py_row.addWidget(self.check_button)
        o = QFormLayout(out)
        o.addRow("Model file", self.output)
        o.addRow("Model name", self.model_name)
        o.addRow("", self.resume)
        o.addRow("Python with PyTorch", py_row)
        self._output_changed(self.output.filePath())

        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Cancel, self)
        self.train_button = self.buttons.addButton("Train", QDialogButtonBox.AcceptRole)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(obs)
        layout.addWidget(model)
        layout.addWidget(out)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

    def _spin(self, low: int, high: int, value: int, tip: str = "") -> QSpinBox:
        s = QSpinBox(self)
        s.setRange(low, high)
        s.setValue(int(value))
        if tip:
            s.setToolTip(tip)
        return s

    def _layer_changed(self, layer) -> None:
        self.species_field.setLayer(layer)
        self.source_field.setLayer(layer)
        if layer is not None:
            names = [f.name().lower() for f in layer.fields()]
            for guess in ("species", "scientificname", "scientific_name", "taxon", "name"):
                if guess in names:
                    self.species_field.setField(layer.fields()[names.index(guess)].name())
                    break
            self.source_field.setField("")

    def _mode_changed(self) -> None:
        layer_mode = self.use_layer.isChecked()
        for w in (self.layer_combo, self.species_field, self.source_field):
            w.setEnabled(layer_mode)
        for w in (self.file_widget, self.species_column, self.source_column):
            w.setEnabled(not layer_mode)

    def _output_changed(self, path: str) -> None:
        has_ckpt = bool(path) and checkpoint_path(self._sinr_path(path)).is_file()
        self.resume.setEnabled(has_ckpt)
        if not has_ckpt:
            self.resume.setChecked(False)
        self.resume.setToolTip("" if has_ckpt else "No interrupted training to resume for this output.")

    @staticmethod
    def _sinr_path(path: str) -> str:
        path = str(path or "").strip()
        return path if not path or path.lower().endswith(".sinr") else path + ".sinr"

    def show_message(self, text: str, error: bool = True) -> None:
        colour = "#b00020" if error else "#1b5e20"
        self.message.setText(f'<span style="color:{colour}">{text}</span>')

    # ---- actions -------------------------------------------------------------------------------
    def check_python(self) -> bool:
        """Check the chosen interpreter (imports torch: a few seconds) and say what was found."""
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            text = check_training_interpreter(self.python.filePath().strip() or None)
        except SinrError as exc:
            self.show_message(str(exc))
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self.show_message(f"Ready to train: {text}", error=False)
        return True

    def build_options(self, workdir: Path) -> tuple[TrainOptions, str, str]:
        """Plain training options from the widgets; a point layer is exported into ``workdir``."""
        out = self._sinr_path(self.output.filePath())
        if not out:
            raise SinrError("Choose where to save the model (Model file).")
        busy = training_busy_message(out)
        if busy:
            raise SinrError(busy)
        if self.resume.isChecked() and not checkpoint_path(out).is_file():
            raise SinrError(f"There is no checkpoint to resume for {Path(out).name}. Untick Resume to train anew.")
        kw: dict = {}
        if self.use_layer.isChecked():
            layer = self.layer_combo.currentLayer()
            if layer is None:
                raise SinrError("Choose a point layer of observations, or use a file.")
            species_field = self.species_field.currentField()
            if not species_field:
                raise SinrError("Choose the species field: the field that holds each point's species name or code.")
            export = export_observations(layer, species_field, workdir / export_file_name(layer.name()),
                                         transform_context=QgsProject.instance().transformContext(),
                                         source_field=self.source_field.currentField() or None)
            LOG.info(export.text())
            data, label, species_label = str(export.path), layer.name(), f"'{species_field}'"
            kw = {"species_column": SPECIES, "source_column": SOURCE if export.has_source else None}
        else:
            data = self.file_widget.filePath().strip()
            if not data:
                raise SinrError("Choose an observation file, or use a point layer.")
            label, species_label = Path(data).name, "species"
            kw = {"species_column": self.species_column.text().strip() or None,
                  "source_column": self.source_column.text().strip() or None}
        rasters = []
        for layer_id in self.covariates.checkedItemsData():
            layer = QgsProject.instance().mapLayer(layer_id)
            if layer is not None:
                rasters.append(raster_layer_source(layer, 1)[0])
        encoding = self.encoding.currentData() or ("sin_cos_env" if rasters else "sin_cos")
        if encoding not in ENCODINGS:
            raise SinrError(f"Unknown model inputs {encoding!r}.")
        if encoding == "sin_cos":
            rasters = []
        opts = TrainOptions(
            data=data, out=out, loss=self.loss.currentData(), cap=self.cap.value(), epochs=self.epochs.value(),
            batch_size=self.batch_size.value(), width=self.width_spin.value(), depth=self.depth.value(),
            seed=self.seed.value(), min_records=self.min_records.value(), encoding=encoding,
            covariates=rasters or None, name=self.model_name.text().strip() or None,
            resume=self.resume.isChecked(), **kw)
        opts.check()
        return opts, label, species_label

    def start(self) -> TrainTask | None:
        """Copy the inputs, queue the training task and close; on a bad input, say why and stay open."""
        workdir = Path(tempfile.mkdtemp(prefix="sinr_train_"))
        try:
            opts, label, species_label = self.build_options(workdir)
            python = self.python.filePath().strip()
            if python and python != training_interpreter():
                set_training_interpreter(python)
            task = TrainTask(opts, python or training_interpreter(), input_label=label,
                             species_label=species_label, temp_paths=[workdir], on_done=self.on_done)
            self.task = start_training(task)
        except SinrError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            self.show_message(str(exc))
            return None
        LOG.info("Training %s started in the background.", Path(opts.out).name)
        self.accept()
        return self.task
