"""The "Train model" dialog: the parameters of ``sinr:train_model``, started as a background task.

The dialog only gathers inputs into a ``TrainingRequest`` (:meth:`TrainDialog.gather_request`).
On "Train" it turns it into the runner's options on the main thread through
``qgis_bridge.training_inputs`` (the path ``sinr:train_model`` takes too: a point layer is
exported to a temporary lon/lat CSV), then queues a ``TrainTask`` and closes; ``on_done(task,
ok)`` is called when the task ends.

When it opens it says whether training can run here: the training code's presence is checked at
once, the interpreter (torch, onnx, GDAL) in a background thread (importing torch takes seconds);
a failure shows the set-up steps for the user's system and, when the interpreter is what is
missing, "Set up PyTorch for me" (``SetupTrainingButton``): once it has made a Python with
PyTorch, the dialog checks that one and enables Train. Its defaults are the bundled model's
recipe (``core.training.defaults.DEFAULTS``: spherical harmonics and local evidence among them),
and each loss is explained in one line. Local evidence is for coordinates models: its box is
unticked and disabled while the model inputs read covariates.
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

from ..core.errors import SinrError, TrainingEnvironmentError
from ..core.training.defaults import DEFAULTS, LOSS_HELP, LOSS_LABELS, LOSSES
from ..core.training.interpreter import check_training_available, describe_python
from ..core.training.options import checkpoint_path, sinr_path
from ..core.training.process import training_root
from ..qgis_bridge.model_files import MODEL_FILTER
from ..qgis_bridge.observations import OBSERVATION_FILE_FILTER
from ..qgis_bridge.training_inputs import (
    ENCODING_CHOICES,
    FILE_COLUMN_HINTS,
    TrainingInputs,
    TrainingRequest,
    guess_species_field,
    reads_covariates,
    training_inputs,
)
from ..tasks.train_task import TrainTask, start_training, training_busy_message
from ..toolbelt.interpreter import (
    INTERPRETER_FILE_FILTER,
    check_training_interpreter,
    set_training_interpreter,
    training_interpreter,
)
from .setup_training_button import SetupTrainingButton

LOG = logging.getLogger("sinr_qgis")


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
        self.setWindowTitle(self.tr("Train a SINR model"))
        self.on_done = on_done
        self.task: TrainTask | None = None
        self.availability: bool | None = None
        self.unavailable_reason = ""
        self.code_missing = False  # no training code: a new Python would not help
        self.warnings: list[str] = []  # what the last build_options() could not take as asked
        self._checking_text = ""
        self._build()
        self._probe = _Probe(self)
        self._probe.done.connect(self._availability_known)
        self.python.fileChanged.connect(lambda _path: self.check_availability())
        self.check_availability()

    # ---- widgets -------------------------------------------------------------------------------
    def _build(self) -> None:
        """The three groups of settings in a scrolled body, then the message, the set-up row and the buttons."""
        body = QWidget(self)
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        for part in (self._observations_group(), self._model_group(), self._output_group()):
            body_layout.addWidget(part)
        self._message_widgets()
        # The settings scroll rather than shrink: a zip install's set-up steps (~20 lines) in the
        # message, or a short laptop screen, crushed them to unreadable slivers and clipped the loss
        # help line. The message stays outside, so it is read at once without scrolling.
        scroll = _ScrolledBody(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        scroll.setMinimumWidth(body.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.setup_row)
        layout.addWidget(self.buttons)

    def _observations_group(self) -> QGroupBox:
        """Where the records come from: a point layer and its fields, or a file and its columns."""
        obs = QGroupBox(self.tr("Observations"), self)
        self.use_layer = QRadioButton(self.tr("Point layer (any CRS)"), obs)
        self.use_file = QRadioButton(self.tr("File (CSV, GBIF, iNaturalist, Darwin Core Archive)"), obs)
        group = QButtonGroup(self)
        group.addButton(self.use_layer)
        group.addButton(self.use_file)
        self.layer_combo = QgsMapLayerComboBox(obs)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.Filter.PointLayer)
        self.species_field = QgsFieldComboBox(obs)
        self.species_field.setAllowEmptyFieldName(True)  # no field named like a species: the user chooses
        self.source_field = QgsFieldComboBox(obs)
        self.source_field.setAllowEmptyFieldName(True)
        self.layer_combo.layerChanged.connect(self._layer_changed)
        self.file_widget = QgsFileWidget(obs)
        self.file_widget.setFilter(OBSERVATION_FILE_FILTER)
        self.species_column = self._column_edit(obs, "species")
        self.source_column = self._column_edit(obs, "source", self.tr("; optional"))
        self.lat_column = self._column_edit(obs, "latitude")
        self.lon_column = self._column_edit(obs, "longitude")
        f = QFormLayout(obs)
        f.addRow(self.use_layer)
        f.addRow(self.tr("Layer"), self.layer_combo)
        f.addRow(self.tr("Species field"), self.species_field)
        f.addRow(self.tr("Source field"), self.source_field)
        f.addRow(self.use_file)
        f.addRow(self.tr("File"), self.file_widget)
        f.addRow(self.tr("Species column"), self.species_column)
        f.addRow(self.tr("Source column"), self.source_column)
        f.addRow(self.tr("Latitude column"), self.lat_column)
        f.addRow(self.tr("Longitude column"), self.lon_column)
        self.use_layer.toggled.connect(self._mode_changed)
        has_points = self.layer_combo.count() > 0
        (self.use_layer if has_points else self.use_file).setChecked(True)
        self._layer_changed(self.layer_combo.currentLayer())
        self._mode_changed()
        return obs

    def _model_group(self) -> QGroupBox:
        """The model's inputs, its loss and the training settings (their defaults: ``DEFAULTS``)."""
        model = QGroupBox(self.tr("Model"), self)
        self._input_widgets(model)
        self._local_evidence_widgets(model)
        self._loss_widgets(model)
        self.cap = self._spin(0, 10_000_000, DEFAULTS["cap"], self.tr("0 = all records (the bundled model used all)"))
        self.epochs = self._spin(1, 100_000, DEFAULTS["epochs"])
        self.width_spin = self._spin(1, 4096, DEFAULTS["width"])
        self.depth = self._spin(0, 64, DEFAULTS["depth"])
        self.seed = self._spin(0, 2**31 - 1, DEFAULTS["seed"])
        self.min_records = self._spin(1, 1_000_000, DEFAULTS["min_records"])
        self.batch_size = self._spin(1, 1_000_000, DEFAULTS["batch_size"])
        self.threads = self._spin(0, 1024, 0, self.tr("CPU threads of the training process; 0 = PyTorch's choice"))
        self.threads.setObjectName("SinrTrainThreads")
        self.threads.setSpecialValueText(self.tr("automatic"))
        m = QFormLayout(model)
        m.addRow(self.tr("Covariate rasters"), self.covariates)
        m.addRow(self.tr("Categorical covariates"), self.categorical)
        m.addRow(self.tr("Model inputs"), self.encoding)
        m.addRow("", self.local_evidence)
        m.addRow("", self.local_evidence_help)
        m.addRow(self.tr("Loss"), self.loss)
        m.addRow("", self.loss_help)
        m.addRow(self.tr("Presence weight"), self.pos_weight)
        m.addRow("", self.land_absences)
        m.addRow(self.tr("Max records per species"), self.cap)
        m.addRow(self.tr("Min records per species"), self.min_records)
        m.addRow(self.tr("Epochs"), self.epochs)
        m.addRow(self.tr("Network width"), self.width_spin)
        m.addRow(self.tr("Network depth"), self.depth)
        m.addRow(self.tr("Batch size"), self.batch_size)
        m.addRow(self.tr("Random seed"), self.seed)
        m.addRow(self.tr("CPU threads"), self.threads)
        return model

    def _input_widgets(self, model: QGroupBox) -> None:
        """The covariate rasters (the project's GDAL raster layers), their categorical bands and the encoding."""
        self.covariates = QgsCheckableComboBox(model)
        self.covariates.setDefaultText(self.tr("none: coordinates only"))
        self.covariates.setToolTip(self.tr("Raster layers (lon/lat, e.g. bioclim) whose bands become model inputs"))
        for layer in QgsProject.instance().mapLayers().values():
            if isinstance(layer, QgsRasterLayer) and layer.providerType() == "gdal":
                self.covariates.addItemWithCheckState(layer.name(), Qt.CheckState.Unchecked, layer.id())
        self.categorical = QLineEdit(model)
        self.categorical.setObjectName("SinrTrainCategorical")
        self.categorical.setPlaceholderText(self.tr("band names, e.g. biome, landcover"))
        self.categorical.setToolTip(self.tr(
            "Covariate bands that hold classes (land cover, biome, soil type), by band name, comma-separated: "
            "read at the nearest cell and one class per input. Bands with GDAL category names, an attribute "
            "table, a colour table or the metadata CATEGORICAL=YES are categorical without being named here."))
        self.encoding = QComboBox(model)
        for label, value in ENCODING_CHOICES:
            self.encoding.addItem(label, value)

    def _local_evidence_widgets(self, model: QGroupBox) -> None:
        """"Add local evidence" with its one-line explanation, kept off while the inputs read covariates."""
        self.local_evidence = QCheckBox(self.tr("Add local evidence (records near each location)"), model)
        self.local_evidence.setObjectName("SinrTrainLocalEvidence")
        self.local_evidence.setChecked(DEFAULTS["local_evidence"])
        self._local_evidence_wanted = DEFAULTS["local_evidence"]  # the user's choice, back when allowed again
        self.local_evidence_help = QLabel(self.tr(
            "Sharpens each species' map near its training records (their density, and how often the surveys "
            "there found it) and lowers it away from them, as in the bundled model; coordinates models only."), model)
        self.local_evidence_help.setObjectName("SinrTrainLocalEvidenceHelp")
        self.local_evidence_help.setWordWrap(True)
        # the model's signal: checkedItemsChanged misses check states set from code (QGIS 3.22)
        self.covariates.model().dataChanged.connect(self._inputs_changed)
        self.encoding.currentIndexChanged.connect(self._inputs_changed)

    def _inputs_changed(self) -> None:
        """Local evidence needs a coordinates model: unticked and disabled while the chosen inputs read
        covariates; the user's own choice comes back when they no longer do."""
        allowed = not reads_covariates(self.encoding.currentData(), bool(self.covariates.checkedItemsData()))
        if allowed == self.local_evidence.isEnabled():
            return
        if allowed:
            self.local_evidence.setChecked(self._local_evidence_wanted)
        else:
            self._local_evidence_wanted = self.local_evidence.isChecked()
            self.local_evidence.setChecked(False)
        self.local_evidence.setEnabled(allowed)
        self.local_evidence.setToolTip("" if allowed else self.tr(
            "Local evidence is for models that read coordinates only: choose no covariate rasters, or "
            "coordinates-only model inputs."))

    def _loss_widgets(self, model: QGroupBox) -> None:
        """The loss with its one-line help, the presence weight and where random absences are drawn."""
        self.loss = QComboBox(model)
        self.loss.setObjectName("SinrTrainLoss")
        for i, key in enumerate(LOSSES):
            self.loss.addItem(LOSS_LABELS[key], key)
            self.loss.setItemData(i, LOSS_HELP[key], Qt.ItemDataRole.ToolTipRole)
        self.loss_help = QLabel(model)  # the chosen loss in one line, under the list
        self.loss_help.setObjectName("SinrTrainLossHelp")
        self.loss_help.setWordWrap(True)
        # under the list, even when its row is taller
        self.loss_help.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.loss.currentIndexChanged.connect(self._loss_changed)
        self.loss.setCurrentIndex(LOSSES.index(DEFAULTS["loss"]))
        self._loss_changed()
        self.pos_weight = QDoubleSpinBox(model)
        self.pos_weight.setRange(0.0, 1e6)
        self.pos_weight.setDecimals(1)
        self.pos_weight.setSpecialValueText(self.tr("number of species"))  # shown for 0: lambda = C
        self.pos_weight.setValue(0.0 if DEFAULTS["pos_weight"] == "species" else float(DEFAULTS["pos_weight"]))
        self.pos_weight.setToolTip(self.tr(
            "Lambda: how much one presence weighs against the assumed absences in the full losses. The number "
            "of species (the bundled model's choice) balances them; the paper used 2048 for 47,000 species."))
        self.land_absences = QCheckBox(self.tr("Random absences on land only"), model)
        self.land_absences.setChecked(DEFAULTS["pseudo_negatives"] == "land")
        self.land_absences.setToolTip(self.tr("Random places taken as absences are drawn on land (the bundled "
                                              "model's recipe); unticked: anywhere on the globe, as the paper."))

    def _output_group(self) -> QGroupBox:
        """The model file, its name, resuming, and the Python that trains."""
        out = QGroupBox(self.tr("Output"), self)
        self.output = QgsFileWidget(out)
        self.output.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.output.setFilter(MODEL_FILTER)
        self.output.fileChanged.connect(self._output_changed)
        self.model_name = QLineEdit(out)
        self.model_name.setPlaceholderText(self.tr("default: the file name"))
        self.resume = QCheckBox(self.tr("Resume from the last checkpoint of this output"), out)
        self.python = QgsFileWidget(out)
        self.python.setFilter(INTERPRETER_FILE_FILTER)
        self.python.setFilePath(training_interpreter())
        self.check_button = QPushButton(self.tr("Check"), out)
        self.check_button.clicked.connect(self.check_python)
        py_row = QHBoxLayout()
        py_row.addWidget(self.python, 1)
        py_row.addWidget(self.check_button)
        o = QFormLayout(out)
        o.addRow(self.tr("Model file"), self.output)
        o.addRow(self.tr("Model name"), self.model_name)
        o.addRow("", self.resume)
        o.addRow(self.tr("Python with PyTorch"), py_row)
        self._output_changed(self.output.filePath())
        return out

    def _message_widgets(self) -> None:
        """The message under the settings, the set-up button beside it and the dialog's buttons."""
        self.message = QLabel(self)
        self.message.setObjectName("SinrTrainMessage")
        self.message.setWordWrap(True)
        self.message.setOpenExternalLinks(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # beside the message while the interpreter is what keeps training from running
        self.setup_button = SetupTrainingButton(self)
        self.setup_button.ready.connect(self.use_python)
        self.setup_row = QWidget(self)
        self.setup_row.setObjectName("SinrTrainSetupRow")
        setup_layout = QHBoxLayout(self.setup_row)
        setup_layout.setContentsMargins(0, 0, 0, 0)
        setup_layout.addWidget(self.setup_button)
        setup_layout.addStretch(1)
        self.setup_row.setVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.train_button = self.buttons.addButton(self.tr("Train"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.train_button.setObjectName("SinrTrainButton")
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)

    def _spin(self, low: int, high: int, value: int, tip: str = "") -> QSpinBox:
        s = QSpinBox(self)
        s.setRange(low, high)
        s.setValue(int(value))
        if tip:
            s.setToolTip(tip)
        return s

    def _column_edit(self, parent: QWidget, role: str, note: str = "") -> QLineEdit:
        edit = QLineEdit(parent)
        edit.setPlaceholderText(self.tr("detected (e.g. {}){}").format(FILE_COLUMN_HINTS[role], note))
        return edit

    def _layer_changed(self, layer) -> None:
        self.species_field.setLayer(layer)
        self.source_field.setLayer(layer)
        # the names the file reader detects (the path sinr:train_model takes without a species field)
        guess = guess_species_field(layer.fields().names()) if layer is not None else None
        self.species_field.setField(guess or "")
        self.source_field.setField("")  # a source changes which absences are assumed: the user's choice

    def _mode_changed(self) -> None:
        layer_mode = self.use_layer.isChecked()
        for w in (self.layer_combo, self.species_field, self.source_field):
            w.setEnabled(layer_mode)
        for w in (self.file_widget, self.species_column, self.source_column, self.lat_column, self.lon_column):
            w.setEnabled(not layer_mode)

    def _output_changed(self, path: str) -> None:
        has_ckpt = bool(path) and checkpoint_path(sinr_path(path)).is_file()
        self.resume.setEnabled(has_ckpt)
        if not has_ckpt:
            self.resume.setChecked(False)
        self.resume.setToolTip("" if has_ckpt else self.tr("No interrupted training to resume for this output."))

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
        self._show_availability()
        python = self._current_python()
        try:
            training_root()
            self.code_missing = False
            self.show_message(self.tr("Checking {} for PyTorch…").format(python), error=False)
            self._checking_text = self.message.text()
        except TrainingEnvironmentError as exc:  # known at once; the probe adds the interpreter's state
            self.code_missing = True
            self.show_message(str(exc))
        probe = self._probe
        ready = self.tr("Ready to train: {}")  # now: the dialog may be closed before the thread answers

        def run() -> None:
            try:
                answer = (ready.format(describe_python(python, check_training_available(python))), True)
            except SinrError as exc:
                answer = (str(exc), False)
            with contextlib.suppress(RuntimeError):  # the dialog was closed meanwhile
                probe.done.emit(*answer, python)

        threading.Thread(target=run, name="sinr-train-probe", daemon=True).start()

    def use_python(self, python: str) -> None:
        """Train with ``python`` (e.g. the one "Set up PyTorch for me" made): shown, then checked."""
        if python == self.python.filePath().strip():
            self.check_availability()  # the same path, a new environment: fileChanged does not fire
        else:
            self.python.setFilePath(python)  # fileChanged checks it

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
        self._show_availability()

    def _show_availability(self) -> None:
        """Train is enabled unless training is known not to run; "Set up PyTorch for me" is offered
        when it cannot and the training code is there (the button hides itself while the
        configured Python works)."""
        self.train_button.setEnabled(self.availability is not False)
        offer = self.availability is False and not self.code_missing
        if offer and self.setup_row.isHidden():
            self.setup_button.refresh()
        self.setup_row.setVisible(offer)

    # ---- actions -------------------------------------------------------------------------------
    def check_python(self) -> bool:
        """Check the training code and the chosen interpreter (imports torch: a few seconds) now,
        and say what was found."""
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            text = check_training_interpreter(self.python.filePath().strip() or None)
        except SinrError as exc:
            self._availability_known(str(exc), False)
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self._checking_text = self.message.text()  # an explicit check always shows its answer
        self._availability_known(self.tr("Ready to train: {}").format(text), True)
        return True

    def gather_request(self) -> TrainingRequest:
        """The widgets' values as the plain request ``sinr:train_model`` also makes (no checks here)."""
        layer_mode = self.use_layer.isChecked()
        project = QgsProject.instance()
        return TrainingRequest(
            output=self.output.filePath(),
            layer=self.layer_combo.currentLayer() if layer_mode else None,
            species_field=self.species_field.currentField() if layer_mode else "",
            source_field=self.source_field.currentField() if layer_mode else "",
            data_file="" if layer_mode else self.file_widget.filePath(),
            species_column="" if layer_mode else self.species_column.text(),
            source_column="" if layer_mode else self.source_column.text(),
            lat_column="" if layer_mode else self.lat_column.text(),
            lon_column="" if layer_mode else self.lon_column.text(),
            # a checked layer removed from the project since stays in the list as None: refused, never dropped
            rasters=[project.mapLayer(layer_id) for layer_id in self.covariates.checkedItemsData()],
            categorical=self.categorical.text().split(","),
            encoding=self.encoding.currentData(), loss=self.loss.currentData(), cap=self.cap.value(),
            epochs=self.epochs.value(), batch_size=self.batch_size.value(), width=self.width_spin.value(),
            depth=self.depth.value(), seed=self.seed.value(), min_records=self.min_records.value(),
            pos_weight=self.pos_weight.value(), land_absences=self.land_absences.isChecked(),
            local_evidence=self.local_evidence.isChecked(), name=self.model_name.text(),
            resume=self.resume.isChecked(), threads=self.threads.value())

    def build_options(self, workdir: Path) -> TrainingInputs:
        """The training options for the widgets (``qgis_bridge.training_inputs``); a point layer is
        exported into ``workdir``. What could not be taken as asked is logged and kept in ``warnings``."""
        request = self.gather_request()
        # queued tasks too, which only the task module knows (the runner's lock covers running ones)
        busy = training_busy_message(sinr_path(request.output)) if request.output.strip() else None
        if busy:
            raise SinrError(busy)
        self.warnings = []

        def warn(text: str) -> None:
            self.warnings.append(text)
            LOG.warning(text)

        return training_inputs(request, workdir, transform_context=QgsProject.instance().transformContext(),
                               on_info=LOG.info, on_warning=warn)

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
                             species_label=species_label, temp_paths=[workdir], on_done=self.on_done,
                             warnings=self.warnings)
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
