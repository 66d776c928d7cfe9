"""The SINR dock: pick a model and species, predict on the canvas extent, ask what lives here.

The dock only gathers inputs and shows results. Predictions go through the same bridge
functions as the Processing algorithms (``qgis_bridge.prediction``), in a ``PredictTask``.
"""
from __future__ import annotations

import html
import logging
import tempfile
from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsMapSettings, QgsPointXY, QgsProject, QgsRasterLayer
from qgis.gui import QgsDockWidget, QgsFileWidget
from qgis.PyQt.QtCore import Qt
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

from ..core.errors import CancelledError, SinrError
from ..core.file_names import safe_file_stem
from ..core.species_names import isolate_bidi
from ..qgis_bridge import layers as bridge_layers
from ..qgis_bridge import prediction
from ..qgis_bridge.grids import canvas_grid
from ..qgis_bridge.model import load_model
from ..qgis_bridge.points import point_to_lonlat
from ..tasks.predict_task import PredictTask
from ..toolbelt import settings
from .compare_panel import ComparePanel
from .map_tool import SpeciesAtPointTool
from .model_list import ModelListWidget
from .species_completer import SpeciesCompleter

LOG = logging.getLogger("sinr_qgis")
BUNDLED_LABEL = "Bundled model (North American trees)"


class SinrDock(QgsDockWidget):
    """Model, species, "Predict on canvas extent", opacity and a "what lives here" list."""

    def __init__(self, iface, parent: QWidget | None = None) -> None:
        super().__init__("SINR species ranges", parent)
        self.setObjectName("SinrDock")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.bundle = None
        self.grid_predictor = None   # used only by the (single) running task
        self.point_predictor = None  # used only on the main thread by the map tool
        self.task: PredictTask | None = None
        self.layer_id: str | None = None
        self.out_dir = Path(tempfile.mkdtemp(prefix="sinr_predictions_"))
        self._counter = 0
        self._build()
        self.map_tool = SpeciesAtPointTool(self.canvas)
        self.map_tool.pointPicked.connect(self.show_species_at)
        self.map_tool.deactivated.connect(lambda: self.here_button.setChecked(False))
        self.load_model()

    # ---- widgets -------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget(self)
        form = QFormLayout()
        self.model_widget = QgsFileWidget(body)
        self.model_widget.setFilter("SINR model (*.sinr)")
        self.model_widget.setDialogTitle("Choose a SINR model bundle")
        self.model_widget.lineEdit().setPlaceholderText(BUNDLED_LABEL)
        self.model_widget.setFilePath(settings.get_value("model_path"))
        self.model_widget.fileChanged.connect(lambda _path: self.load_model())
        form.addRow("Model", self.model_widget)
        self.model_list = ModelListWidget(body, choose=self.choose_model, report=self._report)  # + "Train model…"
        form.addRow("My models", self.model_list)
        self.model_label = QLabel(body)
        self.model_label.setWordWrap(True)
        form.addRow("", self.model_label)
        self.species_edit = QLineEdit(settings.get_value("species"), body)
        self.species_edit.setPlaceholderText("Name or code, e.g. Acer rubrum (several: comma-separated)")
        self.species_completer = SpeciesCompleter(self.species_edit)
        self.species_edit.setCompleter(self.species_completer)
        form.addRow("Species", self.species_edit)
        self.mask_check = QCheckBox("Mask ocean", body)
        self.mask_check.setChecked(settings.get_value("mask_ocean"))
        form.addRow("", self.mask_check)

        self.predict_button = QPushButton("Predict on canvas extent", body)
        self.predict_button.clicked.connect(self.predict_canvas_extent)
        self.cancel_button = QPushButton("Cancel", body)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.predict_button, 1)
        buttons.addWidget(self.cancel_button)
        self.progress = QProgressBar(body)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.status_label = QLabel(body)
        self.status_label.setWordWrap(True)

        self.opacity_slider = QSlider(Qt.Horizontal, body)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(settings.get_value("opacity"))
        self.opacity_slider.valueChanged.connect(self.set_opacity)
        opacity_row = QFormLayout()
        opacity_row.addRow("Opacity", self.opacity_slider)

        self.here_button = QPushButton("What lives here? (click the map)", body)
        self.here_button.setCheckable(True)
        self.here_button.toggled.connect(self._toggle_map_tool)
        self.top_k = QSpinBox(body)
        self.top_k.setRange(1, 1000)
        self.top_k.setValue(settings.get_value("top_k"))
        here_row = QHBoxLayout()
        here_row.addWidget(self.here_button, 1)
        here_row.addWidget(QLabel("Top", body))
        here_row.addWidget(self.top_k)
        self.here_label = QLabel(body)
        self.species_list = QListWidget(body)

        layout = QVBoxLayout(body)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addLayout(opacity_row)
        layout.addLayout(here_row)
        layout.addWidget(self.here_label)
        layout.addWidget(self.species_list, 1)
        self.compare_panel = ComparePanel(self, body)  # the current species vs a loaded expert range
        layout.addWidget(self.compare_panel)
        # The guide (gui/help_dialog.py): the model, reading the scores, expert ranges, credits.
        self.help_button = QPushButton("Help: what the map and its numbers mean", body)
        self.help_button.setObjectName("SinrDockHelpButton")
        self.help_button.clicked.connect(self.show_help)
        layout.addWidget(self.help_button)
        # Scrollable: with the compare panel open the content is ~930 px tall, which would otherwise
        # force the QGIS window taller than a 1080p screen.
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        scroll.setMinimumWidth(body.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        self.setWidget(scroll)

    # ---- model ---------------------------------------------------------------------------
    def load_model(self) -> bool:
        """Load the chosen model (empty = bundled); fill the species completer; show the backend."""
        path = self.model_widget.filePath().strip()
        try:
            bundle = load_model(path)
            self.grid_predictor = prediction.make_predictor(bundle)
            self.point_predictor = prediction.make_predictor(bundle)
        except SinrError as exc:
            self.bundle = self.grid_predictor = self.point_predictor = None
            self.species_completer.set_labels([])
            self.model_label.setText(f"<b>No model:</b> {exc}")
            self.model_list.model_loaded(path, None)
            self.predict_button.setEnabled(False)
            return False
        self.bundle = bundle
        settings.set_value("model_path", path)
        self.species_completer.set_labels([s.label for s in bundle.species])
        self.model_label.setText(f"{bundle.name}: {bundle.n_species} species, encoding {bundle.encoding}. "
                                 f"Backend: <b>{self.backend_name}</b>"
                                 + "".join(f"<br><b>Warning:</b> {html.escape(w)}" for w in bundle.warnings))
        self.model_label.setToolTip(bundle.card())
        self.model_list.model_loaded(path, bundle)
        self.predict_button.setEnabled(self.task is None)
        return True

    def choose_model(self, path: str) -> None:
        """Show and load the model at ``path`` ("" = bundled), e.g. one just trained."""
        if self.model_widget.filePath().strip() == path:
            self.load_model()
        else:
            self.model_widget.setFilePath(path)  # fileChanged -> load_model

    @property
    def backend_name(self) -> str:
        return self.grid_predictor.backend_name if self.grid_predictor is not None else ""

    def _species(self):
        return self.bundle.find_species_list(self.species_edit.text())

    # ---- predict -------------------------------------------------------------------------
    def predict_canvas_extent(self) -> PredictTask | None:
        """Start a background prediction of the species over the visible map; returns the task."""
        if self.bundle is None or self.task is not None:
            return None
        try:
            species = self._species()
            grid = canvas_grid(QgsMapSettings(self.canvas.mapSettings()))
        except SinrError as exc:
            self._report(str(exc), Qgis.Warning)
            return None
        settings.set_value("species", self.species_edit.text())
        settings.set_value("mask_ocean", self.mask_check.isChecked())
        self._counter += 1
        stem = safe_file_stem("_".join(s.code for s in species), max_bytes=60)
        path = self.out_dir / f"{stem}_{self._counter}.tif"
        task = PredictTask(self.grid_predictor, grid, species, path, mask_ocean=self.mask_check.isChecked(),
                           on_done=self._task_done)
        # a bound method of this (main-thread) widget: Qt queues the worker thread's signal to us
        task.progressChanged.connect(self._task_progress)
        self.task = task
        self.predict_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.status_label.setText(f"Predicting {grid.width} x {grid.height} pixels with {self.backend_name}...")
        QgsApplication.taskManager().addTask(task)
        return task

    def _task_progress(self, percent: float) -> None:
        self.progress.setValue(int(percent))

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _task_done(self, task: PredictTask, ok: bool) -> None:
        """Main thread: add the styled layer, or report the error."""
        self.task = None
        self.predict_button.setEnabled(self.bundle is not None)
        self.cancel_button.setEnabled(False)
        if not ok:
            self.progress.setValue(0)
            if isinstance(task.error, CancelledError) or task.error is None:
                self._report("Prediction cancelled.", Qgis.Info)
            else:
                self._report(f"Prediction failed: {task.error}", Qgis.Critical)
            return
        self.progress.setValue(100)
        name = "SINR: " + ", ".join(s.name or s.code for s in task.species)
        layer = bridge_layers.add_styled_raster(task.files[0], name, "probability", QgsProject.instance(),
                                                opacity=self.opacity_slider.value() / 100.0)
        self.layer_id = layer.id()
        self.status_label.setText(f"Added {name} ({task.grid.width} x {task.grid.height} pixels).")

    def prediction_layer(self) -> QgsRasterLayer | None:
        return QgsProject.instance().mapLayer(self.layer_id) if self.layer_id else None

    def set_opacity(self, value: int) -> None:
        settings.set_value("opacity", int(value))
        layer = self.prediction_layer()
        if layer is not None:
            layer.renderer().setOpacity(value / 100.0)
            layer.triggerRepaint()

    # ---- what lives here -----------------------------------------------------------------
    def _toggle_map_tool(self, on: bool) -> None:
        if on:
            self.canvas.setMapTool(self.map_tool)
        elif self.canvas.mapTool() is self.map_tool:
            self.canvas.unsetMapTool(self.map_tool)

    def show_species_at(self, point: QgsPointXY) -> list:
        """Fill the list with the species ranked at ``point`` (canvas CRS); returns the ranking."""
        self.species_list.clear()
        if self.point_predictor is None:
            return []
        settings.set_value("top_k", self.top_k.value())
        try:
            lon, lat = point_to_lonlat(point, self.canvas.mapSettings().destinationCrs(),
                                       QgsProject.instance().transformContext())
            ranking = prediction.ranked_species(self.point_predictor, [[lon, lat]], self.top_k.value())[0]
        except SinrError as exc:
            self._report(str(exc), Qgis.Warning)
            return []
        self.here_label.setText(f"At lat {lat:.4f}, lon {lon:.4f} (relative probability):")
        for r in ranking:
            self.species_list.addItem(f"{r.rank}. {isolate_bidi(r.species.label)}  {r.probability:.3f}")
        return ranking

    # ---- misc ----------------------------------------------------------------------------
    def show_help(self) -> None:
        """Open the plugin's guide at "Reading the numbers"."""
        from .help_dialog import show_help

        self._help_dialog = show_help("numbers", self.iface.mainWindow())

    def _report(self, text: str, level) -> None:
        self.status_label.setText(text)
        LOG.log(logging.WARNING if level != Qgis.Info else logging.INFO, text)
        self.iface.messageBar().pushMessage("SINR", text, level, 8)

    def shutdown(self) -> None:
        """Plugin unload: cancel a running prediction (its result is dropped) and free the map tool."""
        if self.task is not None:
            self.task.on_done = None
            self.task.cancel()
            self.task = None
        self._toggle_map_tool(False)

    def closeEvent(self, event) -> None:
        self._toggle_map_tool(False)
        super().closeEvent(event)
