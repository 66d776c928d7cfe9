"""The SINR dock: pick a model and species, predict on the canvas extent, ask what lives here.

The dock only gathers inputs and shows results. Predictions go through the same bridge
functions as the Processing algorithms (``core.products``), in a ``PredictTask``.
"""
from __future__ import annotations

import contextlib
import html
import logging
from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsMapSettings, QgsPointXY, QgsProject, QgsRasterLayer
from qgis.gui import QgsCollapsibleGroupBox, QgsDockWidget
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core import products
from ..core.bundle import ModelBundle
from ..core.errors import CancelledError, SinrError
from ..core.grid import off_globe_note
from ..core.landmask import load_land_mask
from ..core.model_cache import load_model, model_path
from ..core.point_context import MIN_SCORE, point_context, record_extents
from ..core.resources import BUNDLED_MODEL
from ..core.runtime import Predictor
from ..core.species_names import format_species_list, isolate_bidi
from ..qgis_bridge import prediction_layers
from ..qgis_bridge.grids import canvas_grid
from ..qgis_bridge.points import point_to_lonlat
from ..tasks.predict_task import PredictTask, Preview
from ..toolbelt import model_registry, settings
from ..toolbelt.prediction_folder import PredictionFolder
from .compare_panel import ComparePanel, CompareSource
from .covariate_rows import CovariateRows
from .install_button import OnnxruntimeInstallButton
from .map_tool import SpeciesAtPointTool
from .model_list import ModelChooser, model_summary
from .species_completer import SpeciesCompleter
from .species_info import SpeciesInfo
from .species_list_dialog import SpeciesListDialog

LOG = logging.getLogger("sinr_qgis")
DOCK_WIDTH = 300  # px: the dock's default width, so the map keeps most of a laptop screen


class SinrDock(QgsDockWidget):
    """One model control, species (with reliability and suggestions), an environmental model's
    covariate layers (``CovariateRows``), "Predict on canvas extent", opacity, "What lives here?"
    and "Compare with range maps"."""

    def __init__(self, iface, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("SINR species ranges"))
        self.setObjectName("SinrDock")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.bundle = None
        self.grid_predictor = None   # used only by the (single) running task
        self.preview_predictor = None  # the same, for its coarse preview (keeps grid_predictor's cache)
        self.point_predictor = None  # used only on the main thread by the map tool
        self.task: PredictTask | None = None
        self.layer_id: str | None = None  # the first species' layer of the last prediction
        self.layer_ids: list[str] = []    # every layer of the last prediction, in species order
        self._preview_shown: list[tuple[str, str]] = []  # (layer id, file before) of the running task's preview
        self._checked_before: set[str] = set()  # prediction layers ticked before that preview
        # (grid key, ocean mask, covariates, extrapolation shown) grid_predictor has cached
        self._cached_view: tuple | None = None
        self.predictions = PredictionFolder()  # this session's managed folder (out_dir), made on first use
        self._counter = 0
        self.model_path = ""  # the loaded model's file ("" = the bundled model)
        self._record_extents = None  # per-species records boxes of the loaded model, made on first use
        self._species_list_dialog: SpeciesListDialog | None = None  # open on the loaded model's species
        self._build()
        self.map_tool = SpeciesAtPointTool(self.canvas)
        self.map_tool.pointPicked.connect(self.show_species_at)
        self.map_tool.deactivated.connect(lambda: self.here_button.setChecked(False))
        self._load_saved_model()

    # ---- widgets -------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget(self)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # a narrow dock puts a field under its label
        self._add_model_rows(body, form)
        self._add_species_rows(body, form)
        progress_row = self._prediction_controls(body)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, body)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(settings.get_value("opacity"))
        self.opacity_slider.valueChanged.connect(self.set_opacity)
        opacity_row = QFormLayout()
        opacity_row.addRow(self.tr("Opacity"), self.opacity_slider)
        here_row = self._here_controls(body)
        layout = QVBoxLayout(body)
        layout.addLayout(form)
        layout.addWidget(self.predict_button)
        layout.addLayout(progress_row)
        layout.addWidget(self.status_label)
        layout.addLayout(opacity_row)
        layout.addLayout(here_row)
        layout.addWidget(self.here_label)
        layout.addWidget(self.species_list, 1)
        # the current species vs a loaded expert range; the panel asks for what it needs, when it needs it
        self.compare_panel = ComparePanel(CompareSource(
            bundle=lambda: self.bundle, species_text=lambda: self.species_edit.text(),
            covariates=lambda: self.covariate_rows.mapping(), canvas=lambda: self.canvas,
            clear_status=self.clear_status, local_evidence=lambda: self.local_evidence_check.isChecked()),
            body)
        layout.addWidget(self.compare_panel)
        # The guide (gui/help_dialog.py): the model, reading the scores, expert ranges, credits.
        self.help_button = QPushButton(self.tr("Help: reading the map"), body)
        self.help_button.setObjectName("SinrDockHelpButton")
        self.help_button.clicked.connect(self.show_help)
        layout.addWidget(self.help_button)
        self._show_scrollable(body)

    def _add_model_rows(self, body: QWidget, form: QFormLayout) -> None:
        """The model chooser, its plain-words summary, the backend line and the Details card."""
        # one model control: bundled model, My models, "Open model file…" (+ "Train…")
        self.model_chooser = ModelChooser(body, choose=self.choose_model, report=self._report)
        form.addRow(self.tr("Model"), self.model_chooser)
        self.model_label = QLabel(body)  # the model in plain words; the technical card is under Details
        self.model_label.setObjectName("SinrModelSummary")
        self.model_label.setWordWrap(True)
        form.addRow(self.model_label)
        self.backend_label = QLabel(body)
        self.backend_label.setObjectName("SinrBackend")
        self.backend_label.setWordWrap(True)
        self.install_button = OnnxruntimeInstallButton(body)  # hidden while onnxruntime is importable
        self.install_button.installed.connect(self._onnxruntime_installed)
        # A widget, not a bare layout, holds the row: only a widget row of the form grows with the
        # label's wrapped height (a layout row kept one line and clipped the rest)
        backend_row = QWidget(body)
        backend_layout = QHBoxLayout(backend_row)
        backend_layout.setContentsMargins(0, 0, 0, 0)
        backend_layout.addWidget(self.backend_label, 1)
        backend_layout.addWidget(self.install_button)
        form.addRow(backend_row)
        self.details_box = QgsCollapsibleGroupBox(self.tr("Details"), body)
        self.details_box.setObjectName("SinrModelDetails")
        self.details_box.setCollapsed(True)
        self.model_details = QLabel(self.details_box)
        self.model_details.setWordWrap(True)
        self.model_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        QVBoxLayout(self.details_box).addWidget(self.model_details)
        form.addRow(self.details_box)

    def _add_species_rows(self, body: QWidget, form: QFormLayout) -> None:
        """The species field with its list button and live description, the ocean mask and the
        covariate rows of an environmental model."""
        self.species_edit = QLineEdit(settings.get_value("species"), body)
        self.species_edit.setObjectName("SinrSpeciesEdit")
        self.species_edit.setPlaceholderText(self.tr("Name or code, e.g. Acer rubrum"))
        self.species_edit.setToolTip(self.tr(
            "One or more species (comma-separated): scientific or common name, or code"))
        self.species_completer = SpeciesCompleter(self.species_edit)
        self.species_edit.setCompleter(self.species_completer)
        self.species_list_button = QPushButton(self.tr("List…"), body)
        self.species_list_button.setObjectName("SinrSpeciesListButton")
        self.species_list_button.setToolTip(self.tr("All species of the model, with their records and reliability"))
        self.species_list_button.clicked.connect(self.show_species_list)
        species_row = QHBoxLayout()
        species_row.addWidget(self.species_edit, 1)
        species_row.addWidget(self.species_list_button)
        form.addRow(self.tr("Species"), species_row)
        self.species_info = SpeciesInfo(body)  # what the text finds, its reliability, near misses
        self.species_info.textCorrected.connect(self._correct_species)
        form.addRow(self.species_info)
        self._species_timer = QTimer(self)  # described once typing pauses, not at every key
        self._species_timer.setSingleShot(True)
        self._species_timer.setInterval(300)
        self._species_timer.timeout.connect(self.update_species_info)
        self.species_edit.textChanged.connect(lambda _text: self._species_timer.start())
        self.mask_check = QCheckBox(self.tr("Mask ocean"), body)
        self.mask_check.setChecked(settings.get_value("mask_ocean"))
        form.addRow("", self.mask_check)
        # off at every start (not a setting): a map shows only where the model has data unless asked
        self.extrapolation_check = QCheckBox(self.tr("Show extrapolation"), body)
        self.extrapolation_check.setObjectName("SinrShowExtrapolation")
        self.extrapolation_check.setToolTip(self.tr(
            "Also colour the pixels outside the model's data footprint (far from its training records): "
            "guesses, left empty by default"))
        form.addRow("", self._score_switches(body))
        # an environmental model's covariates: which raster layer and band feeds each (hidden otherwise)
        self.covariate_rows = CovariateRows(body)
        form.addRow(self.covariate_rows)

    def _score_switches(self, body: QWidget) -> QWidget:
        """"Show extrapolation" and, under it, "Use local evidence": on at every start (not a
        setting), shown only for a model that stores local evidence (``_show_model``)."""
        self.local_evidence_check = QCheckBox(self.tr("Use local evidence"), body)
        self.local_evidence_check.setObjectName("SinrUseLocalEvidence")
        self.local_evidence_check.setToolTip(self.tr(
            "Add to the scores what the model stores of each species' training records near the place "
            "(local evidence); untick for pure SINR, the network alone"))
        self.local_evidence_check.setChecked(True)
        self.local_evidence_check.setVisible(False)
        self.local_evidence_check.toggled.connect(self._local_evidence_toggled)
        switches = QWidget(body)  # a widget of its own: the hidden box then takes no room in the form
        layout = QVBoxLayout(switches)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.extrapolation_check)
        layout.addWidget(self.local_evidence_check)
        return switches

    def _prediction_controls(self, body: QWidget) -> QHBoxLayout:
        """The predict and cancel buttons, the progress bar and the status line; returns the
        progress row (bar and Cancel)."""
        self.predict_button = QPushButton(self.tr("Predict on canvas extent"), body)
        self.predict_button.setObjectName("SinrPredictButton")
        self.predict_button.clicked.connect(self.predict_canvas_extent)
        self.cancel_button = QPushButton(self.tr("Cancel"), body)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(body)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        progress_row = QHBoxLayout()  # Cancel next to the progress it stops (and the dock stays narrow)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self.status_label = QLabel(body)  # the last action's outcome; cleared when a new one starts
        self.status_label.setObjectName("SinrStatus")
        self.status_label.setWordWrap(True)
        return progress_row

    def _here_controls(self, body: QWidget) -> QHBoxLayout:
        """"What lives here?" with its top-k box (the returned row), its label and ranking list."""
        self.here_button = QPushButton(self.tr("What lives here?"), body)
        self.here_button.setObjectName("SinrWhatLivesHereButton")
        self.here_button.setToolTip(self.tr("Then click the map: the species most likely at that point (it is marked)"))
        self.here_button.setCheckable(True)
        self.here_button.toggled.connect(self._toggle_map_tool)
        self.top_k = QSpinBox(body)
        self.top_k.setRange(1, 1000)
        self.top_k.setValue(settings.get_value("top_k"))
        here_row = QHBoxLayout()
        here_row.addWidget(self.here_button, 1)
        here_row.addWidget(QLabel(self.tr("Top"), body))
        here_row.addWidget(self.top_k)
        self.here_label = QLabel(body)
        self.here_label.setObjectName("SinrHereLabel")
        self.here_label.setWordWrap(True)
        self.species_list = QListWidget(body)  # the "what lives here" ranking
        self.species_list.setObjectName("SinrHereList")
        return here_row

    def _show_scrollable(self, body: QWidget) -> None:
        """Show ``body`` in a vertical scroll area: with the compare panel open the content is
        ~930 px tall, which would otherwise force the QGIS window taller than a 1080p screen."""
        scroll = _DockScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        scroll.setMinimumWidth(body.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        self.setWidget(scroll)

    # ---- model ---------------------------------------------------------------------------
    def _load_saved_model(self) -> None:
        """At start: the model used last time; the bundled one (with a message) if it no longer loads."""
        saved = settings.get_value("model_path")
        if not self.choose_model(saved) and saved:
            why = self.status_label.text()
            if self.choose_model(""):
                self._report(self.tr("{} The bundled model is used instead.").format(why), Qgis.MessageLevel.Warning)

    def choose_model(self, path: str) -> bool:
        """Load the model at ``path`` ("" = bundled), e.g. one just trained or opened; True when it loaded.

        A model from a file joins "My models". A file that does not load leaves the model in use
        (if any) as it was and says why in the status line and the message bar."""
        self.clear_status()
        path = str(path or "").strip()
        try:
            bundle = load_model(path)
            if path and model_path(path).resolve() == model_path("").resolve():
                path = ""  # the bundled model's own file: one entry, not a copy in "My models"
            use = self.local_evidence_check.isChecked()  # a model without local evidence: pure SINR either way
            grid_predictor = Predictor(bundle, local_evidence=use)
            preview_predictor = Predictor(bundle, local_evidence=use)
            point_predictor = Predictor(bundle, local_evidence=use)
            if path:
                model_registry.add_model(path, bundle)
        except SinrError as exc:
            self._report(self.tr("Model not loaded: {}").format(exc), Qgis.MessageLevel.Warning)
            if self.bundle is None:
                self.model_label.setText(self.tr("<b>No model:</b> {}").format(html.escape(str(exc))))
            self.model_chooser.refresh(select=self.model_path)
            return False
        self.bundle, self.grid_predictor, self.point_predictor = bundle, grid_predictor, point_predictor
        self.preview_predictor, self._cached_view = preview_predictor, None
        self.model_path = path
        self.covariate_rows.set_model(bundle)
        self._record_extents = None
        settings.set_value("model_path", path)
        self.species_completer.set_labels([s.label for s in bundle.species], [s.common_name for s in bundle.species])
        bundle.species_index()  # built with the model (0.7 s for 47,375 species), not at the first keystroke
        with contextlib.suppress(SinrError):  # read with the model (0.2 s), not at the first click; a
            load_land_mask()                  # missing mask is reported where it is used
        self._show_model(bundle)
        self.model_chooser.refresh(select=path)
        self.predict_button.setEnabled(self.task is None)
        self.update_species_info()
        self.compare_panel.model_changed()
        self._rank_again()
        return True

    def _rank_again(self) -> None:
        """A new model: the "what lives here" list was the previous model's. Rank the marked point
        again with the new one; with no point marked, clear the list. An open species list showed
        the previous model's species (a choice from it could name species the new one lacks): closed."""
        if self._species_list_dialog is not None:  # a child of the dock: alive while the dock is
            self._species_list_dialog.close()
            self._species_list_dialog = None
        marker = self.map_tool.marker
        if marker is not None:
            self.show_species_at(marker.center())  # the marker sits at the clicked point, in the canvas CRS
        else:
            self.species_list.clear()
            self.here_label.clear()

    def _local_evidence_toggled(self, _on: bool) -> None:
        """"Use local evidence" changed: the marked point's list is ranked again with the score now
        in use; the next map (Predict) uses it too (``_follow_switch``)."""
        if self.point_predictor is None:
            return
        self._follow_switch(self.point_predictor)
        marker = self.map_tool.marker
        if marker is not None:
            self.show_species_at(marker.center())

    def _follow_switch(self, *predictors: Predictor) -> None:
        """Make ``predictors`` (of the loaded model; none in use by a task) add its local evidence or
        not, as "Use local evidence" says. Switched in place, not made anew: local evidence changes
        only what is added to the logits, so a grid predictor keeps its cached embedding and the same
        view is mapped again at once."""
        for predictor in predictors:
            predictor.use_local_evidence(self.local_evidence_check.isChecked())

    def _show_model(self, bundle: ModelBundle) -> None:
        """The model in plain words, the engine it runs on, the technical card under Details, and
        "Use local evidence" for a model that stores it."""
        stores = bundle.local_evidence is not None
        self.local_evidence_check.setVisible(stores)
        self.local_evidence_check.setEnabled(stores)
        warning = self.tr("<br><b>Warning:</b> {}")
        self.model_label.setText(f"{html.escape(bundle.name)}: {html.escape(model_summary(bundle))}"
                                 + "".join(warning.format(html.escape(w)) for w in bundle.warnings))
        fast = self.backend_name == "onnxruntime"
        runs = self.tr("Runs with <b>{}</b>.") if fast else self.tr("Runs with <b>{}</b> (slower than onnxruntime).")
        self.backend_label.setText(runs.format(self.backend_name))
        self.install_button.refresh()
        self.model_details.setText(html.escape(bundle.card()).replace("\n", "<br>"))

    def _onnxruntime_installed(self) -> None:
        """onnxruntime just became importable: reload the model so it runs on the fast engine."""
        if self.choose_model(self.model_path):
            self._report(self.tr("onnxruntime installed: predictions now run with {}.").format(self.backend_name),
                         Qgis.MessageLevel.Info)

    @property
    def backend_name(self) -> str:
        return self.grid_predictor.backend_name if self.grid_predictor is not None else ""

    def _species(self):
        return self.bundle.find_species_list(self.species_edit.text())

    # ---- species -------------------------------------------------------------------------
    def update_species_info(self) -> None:
        """Describe under the species field what its text finds: reliability, or near misses as links."""
        self._species_timer.stop()
        self.species_info.update_for(self.bundle, self.species_edit.text())

    def _correct_species(self, text: str) -> None:
        """A suggestion was clicked: its text replaces the field's, described at once (its links
        must never refer to the text before the correction)."""
        self.species_edit.setText(text)
        self.update_species_info()

    def show_species_list(self) -> SpeciesListDialog | None:
        """Open the loaded model's species table; its choice is added to the species field."""
        if self.bundle is None:
            return None
        self._species_list_dialog = SpeciesListDialog(self.bundle, self, on_choose=self.add_species)
        self._species_list_dialog.show()
        return self._species_list_dialog

    def add_species(self, species: list) -> None:
        """Append ``species`` (not yet in the field) to the species field."""
        try:
            current = self._species()
        except SinrError:  # the field holds text that finds nothing: start afresh
            current = []
        have = {s.index for s in current}
        items = [s.name if self.bundle.species_index().candidates(s.name) == [s] else s.label
                 for s in species if s.index not in have]
        typed = [self.species_edit.text().strip()] if current else []
        self.species_edit.setText(", ".join(typed + [format_species_list([i]) for i in items]))
        self.update_species_info()

    # ---- predict -------------------------------------------------------------------------
    @property
    def out_dir(self) -> Path:
        """This session's managed folder for the dock's maps (``toolbelt/prediction_folder.py``)."""
        return self.predictions.path

    def predict_canvas_extent(self) -> PredictTask | None:
        """Start a background prediction of the species over the visible map; returns the task.

        A view larger than the world (Zoom Full) is predicted where it is on the globe, with nodata
        around and a note; each species is written to its own file, shown as its own layer.

        Progressive: on a map of ``products.PREVIEW_MIN_PIXELS`` or more whose embedding is not
        cached, a coarse preview (``products.preview_grid``) is shown first in each species' layer
        (within about a second), then the full map replaces it in place; the full map is exactly
        the one-pass prediction, and a cancel or failure puts the layers back as they were."""
        if self.bundle is None or self.task is not None:
            return None
        try:
            species = self._species()
            covariates = self.covariate_rows.mapping()
            grid = canvas_grid(QgsMapSettings(self.canvas.mapSettings()))
            note = off_globe_note(grid, "map view")
            out_dir = self.out_dir
        except SinrError as exc:
            self._report(str(exc), Qgis.MessageLevel.Warning)
            return None
        settings.set_value("species", self.species_edit.text())
        settings.set_value("mask_ocean", self.mask_check.isChecked())
        self._counter += 1
        # a new name each time: the layer being replaced still reads the previous file
        path = out_dir / f"{self._counter}.tif"  # one species: 3.tif; several: 3_<code>.tif each
        # a coarse preview first (progressive rendering), unless the full map's embedding is cached
        # (then it costs only the head product: done at once). "preview-3.tif": never a final map's name
        view = (grid.key, self.mask_check.isChecked(), _view_key(covariates), self.extrapolation_check.isChecked())
        coarse = None if view == self._cached_view else \
            products.preview_grid(grid)
        preview = None if coarse is None else \
            Preview(self.preview_predictor, coarse, out_dir / f"preview-{self._counter}.tif")
        self._follow_switch(self.grid_predictor, self.preview_predictor)  # no task uses them now
        task = PredictTask(self.grid_predictor, grid, species, path, mask_ocean=self.mask_check.isChecked(),
                           one_file_per_species=True, notes=[note] if note else [], on_done=self._task_done,
                           preview=preview, covariates=covariates,
                           mask_footprint=not self.extrapolation_check.isChecked())
        # bound methods of this (main-thread) widget: Qt queues the worker thread's signals to us
        task.progressChanged.connect(self._task_progress)
        task.previewReady.connect(self._show_preview)
        self.task = task
        self.predict_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.status_label.setText(self.tr("Predicting {} x {} pixels with {}...").format(
            grid.width, grid.height, self.backend_name))
        QgsApplication.taskManager().addTask(task)
        return task

    def _task_progress(self, percent: float) -> None:
        self.progress.setValue(int(percent))

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _show_maps(self, task: PredictTask, files: list[Path]):
        """Show ``files`` (one per species of ``task``) as the species' layers; yields (layer, the
        file it read before, "" when new) in reverse species order: each new layer goes on top, so
        the first species typed ends up first and shown. Raises ``SinrError`` when a file does not open."""
        bundle = task.predictor.bundle
        # the model's name tells two models' maps of one species apart; the bundled model needs none
        bundled = bundle.path is not None and Path(bundle.path).resolve() == BUNDLED_MODEL.resolve()
        suffix = "" if bundled else f" · {bundle.name}"
        for s, path in reversed(list(zip(task.species, files))):
            yield prediction_layers.show_prediction(
                path, prediction_layers.prediction_key(bundle.sha256, s.code), (s.name or s.code) + suffix,
                self.opacity_slider.value() / 100.0)

    def _show_preview(self) -> None:
        """Main thread, while the full map is computed: the coarse preview in the species' layers,
        replaced in place by the full maps (or undone when they do not come)."""
        task = self.task
        if task is None or task.preview is None or not task.preview.files or task.files or task.isCanceled():
            return  # the full map is already there (or will not be): nothing to show in between
        self._checked_before = prediction_layers.checked_predictions()
        try:
            for layer, old in self._show_maps(task, task.preview.files):
                self._preview_shown.append((layer.id(), old))
        except SinrError as exc:  # the full map will be shown (or its failure reported)
            LOG.info("Preview not shown: %s", exc)
            return
        self.status_label.setText(self.tr("Preview shown; predicting {} x {} pixels with {}...").format(
            task.grid.width, task.grid.height, self.backend_name))

    def _withdraw_preview(self) -> None:
        """The full maps did not come: the preview's layers read their previous maps again (new
        ones are removed), the layers ticked before are ticked again, its files are deleted."""
        shown, self._preview_shown = self._preview_shown, []
        if not shown:
            return
        try:
            prediction_layers.undo_show(shown, self._checked_before)
        except SinrError as exc:
            LOG.warning("The previous map could not be shown again: %s", exc)
        self.predictions.remove_unused(prediction_layers.layer_sources())

    def _task_done(self, task: PredictTask, ok: bool) -> None:
        """Main thread: add the styled layer, or report the error."""
        self.task = None
        self.predict_button.setEnabled(self.bundle is not None)
        self.cancel_button.setEnabled(False)
        # (a model chosen meanwhile has a new grid predictor, with nothing cached)
        cached = ok and task.final_cached and task.predictor is self.grid_predictor
        self._cached_view = (task.grid.key, task.mask_ocean, _view_key(task.covariates),
                             not task.mask_footprint) if cached else None
        if not ok:
            self._withdraw_preview()
            self.progress.setValue(0)
            if isinstance(task.error, CancelledError) or task.error is None:
                self._report(self.tr("Prediction cancelled."), Qgis.MessageLevel.Info)
            else:
                self._report(self.tr("Prediction failed: {}").format(task.error), Qgis.MessageLevel.Critical)
            return
        self.progress.setValue(100)
        before = dict(self._preview_shown)  # a layer that showed the preview: its file before that
        shown, replaced = [], 0
        try:
            for layer, old in self._show_maps(task, task.files):
                shown.insert(0, layer)
                replaced += bool(before.get(layer.id(), old))
        except SinrError as exc:
            self._withdraw_preview()
            self._report(self.tr("Prediction failed: {}").format(exc), Qgis.MessageLevel.Critical)
            return
        finally:  # the replaced maps' and the preview's files (and any a removed layer left) are no longer read
            self._preview_shown = []
            self.predictions.remove_unused(prediction_layers.layer_sources())
        self.layer_ids = [layer.id() for layer in shown]
        self.layer_id = self.layer_ids[0]
        names = ", ".join(layer.name() for layer in shown)
        done = self.tr("Updated {} ({} x {} pixels).") if replaced == len(shown) else \
            self.tr("Added {} ({} x {} pixels).")
        text = done.format(names, task.grid.width, task.grid.height)
        if len(shown) > 1:
            text += self.tr(" One layer per species in “{}”; tick one to show it.").format(prediction_layers.GROUP_NAME)
        coverage = task.predictor.grid_coverage
        if coverage is not None and coverage.outside_footprint:  # why part of the land is empty
            text += f" {task.footprint_note}"
        if task.warnings:
            self._report(" ".join([text, *task.warnings]), Qgis.MessageLevel.Info)
        else:
            self.status_label.setText(text)

    def prediction_layer(self) -> QgsRasterLayer | None:
        """The layer of the last prediction's first species (None before one, or once removed)."""
        return QgsProject.instance().mapLayer(self.layer_id) if self.layer_id else None

    def prediction_layers(self) -> list[QgsRasterLayer]:
        """Every dock prediction layer of the project (any model, any species)."""
        return prediction_layers.dock_prediction_layers()

    def set_opacity(self, value: int) -> None:
        """The slider's opacity (percent) for every dock prediction layer."""
        settings.set_value("opacity", int(value))
        prediction_layers.set_predictions_opacity(value / 100.0)

    # ---- what lives here -----------------------------------------------------------------
    def _toggle_map_tool(self, on: bool) -> None:
        if on:
            self.canvas.setMapTool(self.map_tool)
        elif self.canvas.mapTool() is self.map_tool:
            self.canvas.unsetMapTool(self.map_tool)  # deactivate(): the point's marker goes too
        else:
            self.map_tool.clear_marker()

    def show_species_at(self, point: QgsPointXY) -> list:
        """List the species ranked at ``point`` (canvas CRS); returns the ranking shown.

        Nothing is ranked on water or far outside the model's data (the label says which, see
        ``core.point_context``); species scoring under ``MIN_SCORE`` are left out and counted; a
        species listed far from its own training records is marked so; a point outside the model's
        data footprint still gets its list, with a note saying why its scores are extrapolation."""
        self.species_list.clear()
        self.clear_status()
        if self.point_predictor is None:
            return []
        settings.set_value("top_k", self.top_k.value())
        try:
            lon, lat = point_to_lonlat(point, self.canvas.mapSettings().destinationCrs(),
                                       QgsProject.instance().transformContext())
        except SinrError as exc:
            self._report(str(exc), Qgis.MessageLevel.Warning)
            return []
        where = self.tr("At lat {lat:.4f}, lon {lon:.4f}").format(lat=lat, lon=lon)
        context = point_context(lon, lat, self._extents())
        if context.message:
            self.here_label.setText(f"{where}: {context.message}")
            return []
        try:
            ranking = products.ranked_species(self.point_predictor, [[lon, lat]], self.top_k.value(),
                                              covariates=self.covariate_rows.mapping())[0]
            outside = products.footprint_notes(self.point_predictor, [[lon, lat]], self.covariate_rows.mapping())[0]
        except SinrError as exc:  # e.g. a covariate without a raster layer: named, nothing ranked
            self.here_label.setText(f"{where}: {exc}")
            self._report(str(exc), Qgis.MessageLevel.Warning)
            return []
        shown = [r for r in ranking if r.probability >= MIN_SCORE]
        if not ranking:  # the runtime could not score the point at all (e.g. a covariate has no value here)
            none = self.tr("{}: the model gives no score here (a covariate raster has no value at this point).") \
                if self.covariate_rows.rows else self.tr("{}: the model gives no score here.")
            self.here_label.setText(none.format(where))
            return []
        if not shown:  # outside the footprint, say so even then: the low scores are extrapolation too
            self.here_label.setText(self.tr("{}: no species scores above {} here.").format(where, MIN_SCORE)
                                    + f" {outside}".rstrip())
            return []
        below = len(ranking) - len(shown)
        note = self.tr(" {} more of the top {} score below {}.").format(below, len(ranking), MIN_SCORE) if below else ""
        self.here_label.setText(self.tr("{} (relative score, 0-1):{}").format(where, note) + f" {outside}".rstrip())
        far = 0
        for r in shown:
            text = f"{r.rank}. {isolate_bidi(r.species.label)}"
            if r.species.common_name:
                text += f", {isolate_bidi(r.species.common_name)}"
            if context.far_from_records(r.species.index):
                text += self.tr(" (far from most of its records)")
                far += 1
            self.species_list.addItem(f"{text}  {r.probability:.3f}")  # the score last: a column to read down
        if far:
            self.here_label.setText(self.here_label.text() + self.tr(
                " {} species marked “far from most of its records” were rarely or never recorded near here: "
                "their scores are guesses.").format(far))
        return shown

    def _extents(self):
        """The loaded model's per-species records boxes (made once per model)."""
        if self._record_extents is None:  # the species' own boxes: no reliability sentences for 47,000 species
            self._record_extents = record_extents(self.bundle.species, lambda s: s.record_extent)
        return self._record_extents

    # ---- misc ----------------------------------------------------------------------------
    def show_help(self) -> None:
        """Open the plugin's guide at "Reading the numbers"."""
        from .help_dialog import show_help

        self._help_dialog = show_help("numbers", self.iface.mainWindow())

    def clear_status(self) -> None:
        """A new action starts: the last one's message no longer applies."""
        self.status_label.clear()

    def _report(self, text: str, level) -> None:
        self.status_label.setText(text)
        LOG.log(logging.WARNING if level != Qgis.MessageLevel.Info else logging.INFO, text)
        self.iface.messageBar().pushMessage("SINR", text, level, 8)

    def shutdown(self) -> None:
        """Plugin unload: cancel a running prediction (its result is dropped) and free the map tool."""
        if self.task is not None:
            self.task.on_done = None
            self.task.cancel()
            self.task = None
            self._withdraw_preview()
        self._toggle_map_tool(False)
        self.map_tool.clear_marker()
        self.compare_panel.shutdown()
        self.predictions.close(prediction_layers.layer_sources())  # keeps the files layers still show

    def closeEvent(self, event) -> None:
        self._toggle_map_tool(False)
        super().closeEvent(event)


def _view_key(covariates: dict | None) -> tuple:
    """What of the covariates decides whether the cached embedding is this view's (the runtime's cache
    also checks the files themselves)."""
    return tuple(sorted((covariates or {}).items()))


class _DockScrollArea(QScrollArea):
    """The dock's scroll area, asking for ``DOCK_WIDTH`` (or its minimum, when wider) so the dock
    opens narrow; the user can still widen it."""

    def sizeHint(self):  # Qt override
        hint = super().sizeHint()
        hint.setWidth(max(DOCK_WIDTH, self.minimumWidth()))
        return hint
