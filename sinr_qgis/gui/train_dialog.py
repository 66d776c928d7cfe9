"""The "Train model" dialog: the parameters of ``sinr:train_model``, started as a background task.

The dialog only gathers inputs. On "Train" it copies them on the main thread (a point layer is
exported to a temporary lon/lat CSV by ``qgis_bridge.observations``), then queues a
``TrainTask`` and closes; ``on_done(task, ok)`` is called when the task ends.

When it opens it says whether training can run here: the training code's presence is checked at
once, the interpreter (torch, onnx, GDAL) in a background thread (importing torch takes seconds);
a failure shows the set-up steps for the user's system. Its defaults are the bundled model's
recipe (``train_runner.DEFAULTS``), and each loss is explained in one line.
"""
from __future__ import annotations

import contextlib
import html
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from qgis.core import QgsMapLayerProxyModel, QgsProject, QgsRasterLayer
from qgis.gui import QgsCheckableComboBox, QgsFieldComboBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import QObject, QSize, Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.encoding import ENCODINGS
from ..core.errors import SinrError
from ..core.train_runner import (
    DEFAULTS,
    LOSS_HELP,
    LOSS_LABELS,
    LOSSES,
    TrainingEnvironmentError,
    TrainOptions,
    check_training_available,
    checkpoint_path,
    training_root,
)
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


class _Probe(QObject):
    """Carries the interpreter check's answer from its thread to the dialog (a queued signal)."""

    done = pyqtSignal(str, bool, str)  # message, training can run, the interpreter checked


class TrainDialog(QDialog):
    """Observations, covariates, loss and network settings, output, interpreter -> a ``TrainTask``.

    ``availability``: None while the interpreter check runs, then True or False, for the
    interpreter in the *Python with PyTorch* field (checked again when it changes);
    ``unavailable_reason``: why training cannot run (empty when it can or is not known yet).
    """

    def __init__(self, parent: QWidget | None = None,
                 on_done: Callable[[TrainTask, bool], None] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrTrainDialog")
        self.setWindowTitle("Train a SINR model")
        self.on_done = on_done
        self.task: TrainTask | None = None
        self.availability: bool | None = None
        self.unavailable_reason = ""
        self._checking_text = ""
        self._build()
        self._probe = _Probe(self)
        self._probe.done.connect(self._availability_known)
        self.python.fileChanged.connect(lambda _path: self.check_availability())
        self.check_availability()

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
        self.loss.setObjectName("SinrTrainLoss")
        for i, key in enumerate(LOSSES):
            self.loss.addItem(LOSS_LABELS[key], key)
            self.loss.setItemData(i, LOSS_HELP[key], Qt.ToolTipRole)
        self.loss_help = QLabel(model)  # the chosen loss in one line, under the list
        self.loss_help.setObjectName("SinrTrainLossHelp")
        self.loss_help.setWordWrap(True)
        self.loss_help.setAlignment(Qt.AlignLeft | Qt.AlignTop)  # under the list, even when its row is taller
        self.loss.currentIndexChanged.connect(self._loss_changed)
        self.loss.setCurrentIndex(LOSSES.index(DEFAULTS["loss"]))
        self._loss_changed()
        self.pos_weight = QDoubleSpinBox(model)
        self.pos_weight.setRange(0.0, 1e6)
        self.pos_weight.setDecimals(1)
        self.pos_weight.setSpecialValueText("number of species")  # shown for 0: lambda = C
        self.pos_weight.setValue(0.0 if DEFAULTS["pos_weight"] == "species" else float(DEFAULTS["pos_weight"]))
        self.pos_weight.setToolTip("Lambda: how much one presence weighs against the assumed absences in the "
                                   "full losses. The number of species (the bundled model's choice) balances "
                                   "them; the paper used 2048 for 47,000 species.")
        self.land_absences = QCheckBox("Random absences on land only", model)
        self.land_absences.setChecked(DEFAULTS["pseudo_negatives"] == "land")
        self.land_absences.setToolTip("Random places taken as absences are drawn on land (the bundled model's "
                                      "recipe); unticked: anywhere on the globe, as the paper.")
        self.cap = self._spin(0, 10_000_000, DEFAULTS["cap"], "0 = all records (the bundled model used all)")
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
        m.addRow("", self.loss_help)
        m.addRow("Presence weight", self.pos_weight)
        m.addRow("", self.land_absences)
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
        self.message.setObjectName("SinrTrainMessage")
        self.message.setWordWrap(True)
        self.message.setOpenExternalLinks(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Cancel, self)
        self.train_button = self.buttons.addButton("Train", QDialogButtonBox.AcceptRole)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        body = QWidget(self)
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        for part in (obs, model, out):
            body_layout.addWidget(part)
        # The settings scroll rather than shrink: a zip install's set-up steps (~20 lines) in the
        # message, or a short laptop screen, crushed them to unreadable slivers and clipped the loss
        # help line. The message stays outside, so it is read at once without scrolling.
        scroll = _ScrolledBody(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        scroll.setMinimumWidth(body.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
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

    def _loss_changed(self) -> None:
        self.loss_help.setText(LOSS_HELP.get(self.loss.currentData(), ""))

    def show_message(self, text: str, error: bool = True) -> None:
        colour = "#b00020" if error else "#1b5e20"
        self.message.setText(f'<span style="color:{colour}">{html.escape(text)}</span>')

    # ---- can training run here? ----------------------------------------------------------------
    def check_availability(self) -> None:
        """Say at once when the training code is missing; check the interpreter in the background
        (``availability`` and the message follow when it answers)."""
        self.availability, self.unavailable_reason = None, ""
        python = self._current_python()
        try:
            training_root()
            self.show_message(f"Checking {python} for PyTorch…", error=False)
            self._checking_text = self.message.text()
        except TrainingEnvironmentError as exc:  # known at once; the probe adds the interpreter's state
            self.show_message(str(exc))
        probe = self._probe

        def run() -> None:
            try:
                info = check_training_available(python)
                answer = (f"Ready to train: {python}: Python {info.get('python', '?')}, "
                          f"torch {info.get('torch', '?')}", True)
            except SinrError as exc:
                answer = (str(exc), False)
            with contextlib.suppress(RuntimeError):  # the dialog was closed meanwhile
                probe.done.emit(*answer, python)

        threading.Thread(target=run, name="sinr-train-probe", daemon=True).start()

    def _current_python(self) -> str:
        return self.python.filePath().strip() or training_interpreter()

    def _availability_known(self, message: str, ok: bool, python: str = "") -> None:
        if python and python != self._current_python():
            return  # the answer for an interpreter the user has since replaced
        self.availability = ok
        self.unavailable_reason = "" if ok else message
        # a failure always shows; "ready" only replaces the "Checking" note, not a newer message
        if not ok or self.message.text() == self._checking_text:
            self.show_message(message, error=not ok)

    # ---- actions -------------------------------------------------------------------------------
    def check_python(self) -> bool:
        """Check the training code and the chosen interpreter (imports torch: a few seconds) now,
        and say what was found."""
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            text = check_training_interpreter(self.python.filePath().strip() or None)
        except SinrError as exc:
            self._availability_known(str(exc), False)
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self._checking_text = self.message.text()  # an explicit check always shows its answer
        self._availability_known(f"Ready to train: {text}", True)
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
            resume=self.resume.isChecked(), pos_weight=self.pos_weight.value() or "species",
            pseudo_negatives="land" if self.land_absences.isChecked() else "sphere", **kw)
        opts.check()
        return opts, label, species_label

    def start(self) -> TrainTask | None:
        """Copy the inputs, queue the training task and close; on a bad input, or when training
        cannot run here, say why and stay open."""
        try:
            training_root()  # instant, and whatever the interpreter
            refused = self.unavailable_reason if self.availability is False else ""
        except TrainingEnvironmentError as exc:
            refused = self.unavailable_reason or str(exc)
        if refused:
            self.show_message(refused)
            LOG.warning(refused)
            return None
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


class _ScrolledBody(QScrollArea):
    """The dialog's settings in a scroll area that asks for their whole height (QScrollArea's own
    hint stops at about 24 lines), up to 85 % of the screen: a scroll bar only where they do not fit."""

    def sizeHint(self):  # Qt override
        content = self.widget().sizeHint()
        screen = self.screen() or QApplication.primaryScreen()
        tallest = int(0.85 * screen.availableGeometry().height()) if screen is not None else content.height()
        return QSize(content.width() + self.verticalScrollBar().sizeHint().width(), min(content.height(), tallest))
