"""The dock's "Compare" section: the species typed in the dock against a loaded expert range layer.

The panel preselects a polygon layer and the field whose values name the most species of the
model. "Compare" reads the species' range features on the main thread (layers are never read
from a worker thread) and computes, in a ``CompareTask``, each species' AP (percent, as MAP
everywhere in the plugin) on the land cells of the visible map. A table lists every species
typed with its AP or why it has none; the selected row shows its precision-recall curve, and its
expert outline is drawn over the map. A range that lies partly or wholly outside the view is
said so ("Zoom to ranges" frames them). The numbers come from
``qgis_bridge.evaluation.compare_species``, the same code as ``sinr:evaluate_ranges``.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from qgis.core import (
    QgsApplication,
    QgsCoordinateTransform,
    QgsCsException,
    QgsMapLayerProxyModel,
    QgsMapSettings,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsCollapsibleGroupBox, QgsFieldComboBox, QgsMapCanvas, QgsMapLayerComboBox
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QByteArray, Qt

try:
    from qgis.PyQt.QtSvg import QSvgWidget  # Qt 5 (QGIS 3)
except ImportError:  # Qt 6 moved it to QtSvgWidgets, which qgis.PyQt does not mirror in early QGIS 4 releases
    from PyQt6.QtSvgWidgets import QSvgWidget
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.bundle import ModelBundle
from ..core.errors import CancelledError, SinrError
from ..core.eval_report import OUTLINE_COLOUR, pr_curve_svg
from ..core.runtime import Predictor
from ..core.species_names import isolate_bidi
from ..qgis_bridge import evaluation as bridge
from ..qgis_bridge.grids import default_grid, map_view_extent
from ..qgis_bridge.layers import expert_outline_layer
from ..tasks.compare_task import CompareTask

LOG = logging.getLogger("sinr_qgis")
SIDE_CELLS = 300  # cells along the longer side of the visible map


@dataclass(frozen=True)
class CompareSource:
    """What the panel takes from its host (the dock), asked at each use since the host's model and
    species change: the model in use, the species text typed, an environmental model's covariate
    rasters ({covariate: (path, band)}), the map canvas, a way to clear the host's status line, and
    whether to add the model's local evidence (the host's "Use local evidence"; default on)."""

    bundle: Callable[[], ModelBundle | None]
    species_text: Callable[[], str]
    covariates: Callable[[], dict[str, tuple[str, int]] | None]
    canvas: Callable[[], QgsMapCanvas]
    clear_status: Callable[[], None]
    local_evidence: Callable[[], bool] = lambda: True


class ComparePanel(QgsCollapsibleGroupBox):
    """Expert range layer + species field -> a table of APs of the host's species, the selected
    one's PR curve and outline."""

    def __init__(self, source: CompareSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Compare with range maps"))
        self.setObjectName("SinrComparePanel")
        self.setCollapsed(True)  # keeps the dock compact until asked for
        self.source = source
        self.outline_layer_id: str | None = None
        self.task: CompareTask | None = None
        self.comparisons: list[bridge.SpeciesComparison] = []  # the last run, one per species typed
        self.comparison: bridge.SpeciesComparison | None = None  # the selected one, when it has an AP
        self._ranges_crs = None
        self.layer_combo = QgsMapLayerComboBox(self)
        self.layer_combo.setObjectName("SinrCompareLayer")
        self.layer_combo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.layer_combo.setAllowEmptyLayer(True)
        self.field_combo = QgsFieldComboBox(self)
        self.field_combo.setObjectName("SinrCompareField")
        self.layer_combo.layerChanged.connect(self._layer_changed)
        self.compare_button = QPushButton(self.tr("Compare"), self)
        self.compare_button.setObjectName("SinrCompareButton")
        self.compare_button.setToolTip(self.tr("AP of each species typed above against its expert range, "
                                               "on the visible map"))
        self.compare_button.clicked.connect(self.compare)
        self.zoom_button = QPushButton(self.tr("Zoom to ranges"), self)
        self.zoom_button.setObjectName("SinrCompareZoomButton")
        self.zoom_button.setToolTip(self.tr("Frame the expert ranges of the species typed above"))
        self.zoom_button.clicked.connect(self.zoom_to_ranges)
        self.table = self._results_table()
        self.result_label = QLabel(self)
        self.result_label.setObjectName("SinrCompareResult")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.curve = QSvgWidget(self)
        self.curve.setFixedSize(240, 200)
        self.curve.setVisible(False)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow(self.tr("Ranges"), self.layer_combo)
        form.addRow(self.tr("Species field"), self.field_combo)
        buttons = QHBoxLayout()
        buttons.addWidget(self.compare_button, 1)
        buttons.addWidget(self.zoom_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.table)
        layout.addWidget(self.result_label)
        layout.addWidget(self.curve, 0, Qt.AlignmentFlag.AlignHCenter)
        QgsProject.instance().layersAdded.connect(self._layers_added)
        self._following_project = True
        self.collapsedStateChanged.connect(lambda collapsed: collapsed or self.preselect_layer())
        self._layer_changed(self.layer_combo.currentLayer())

    def _results_table(self) -> QTableWidget:
        """The hidden, read-only species/AP table; selecting a row shows its curve and outline."""
        table = QTableWidget(0, 2, self)
        table.setObjectName("SinrCompareTable")
        table.setHorizontalHeaderLabels([self.tr("Species"), self.tr("AP")])
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        table.verticalHeader().setVisible(False)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setMaximumHeight(150)
        table.setVisible(False)
        table.currentCellChanged.connect(lambda row, *_: self.show_row(row))
        return table

    # ---- the range layer -----------------------------------------------------------------------
    def model_changed(self) -> None:
        """The dock loaded another model: the last comparison (its table, curve, outline) and a running
        one were the previous model's, so they go; then choose the layer and field that match its species."""
        self._drop_running()
        self._clear_results()
        self.result_label.clear()
        self.preselect_layer()
        self._layer_changed(self.layer_combo.currentLayer())

    def preselect_layer(self) -> QgsVectorLayer | None:
        """Unless the chosen layer names some of the model's species, choose the polygon layer of the
        project that names the most (by its best text field); returns the layer chosen."""
        bundle = self.source.bundle()
        current = self.layer_combo.currentLayer()
        if bundle is None or (isinstance(current, QgsVectorLayer) and _matches(current, bundle.species)):
            return current
        best, best_n = None, 0
        for layer in QgsProject.instance().mapLayers().values():
            if (isinstance(layer, QgsVectorLayer) and layer.isValid()
                    and QgsWkbTypes.geometryType(layer.wkbType()) == QgsWkbTypes.GeometryType.PolygonGeometry):
                n = _matches(layer, bundle.species)
                if n > best_n:
                    best, best_n = layer, n
        if best is not None:
            self.layer_combo.setLayer(best)  # layerChanged -> its species field
        return best or current

    def _layers_added(self, _layers) -> None:
        if not sip.isdeleted(self):
            self.preselect_layer()

    def _layer_changed(self, layer) -> None:
        """Bind the field list to the layer and preselect the field that matches the most species."""
        self.field_combo.setLayer(layer)
        bundle = self.source.bundle()
        if isinstance(layer, QgsVectorLayer) and bundle is not None:
            best, _n = bridge.best_species_field(layer, bundle.species)
            if best:
                self.field_combo.setField(best)
        self.compare_button.setEnabled(layer is not None and self.task is None)
        self.zoom_button.setEnabled(layer is not None)

    def _inputs(self):
        """(layer, field, species) for a comparison; raises ``SinrError`` saying what is missing."""
        layer = self.layer_combo.currentLayer()
        field = self.field_combo.currentField()
        bundle = self.source.bundle()
        if bundle is None or layer is None or not field:
            raise SinrError(self.tr("Choose a model, a range layer (expert range polygons with a species field, "
                                    "e.g. Little's ranges) and its species field first."))
        return layer, field, bundle.find_species_list(self.source.species_text())

    # ---- comparing -----------------------------------------------------------------------------
    def compare(self) -> CompareTask | None:
        """Start comparing every species typed in the dock on the visible map; returns the task."""
        if self.task is not None:
            return None
        self.source.clear_status()
        self._clear_results()
        settings = QgsMapSettings(self.source.canvas().mapSettings())
        context = QgsProject.instance().transformContext()
        try:
            layer, field, species = self._inputs()
            grid = default_grid(map_view_extent(settings), settings.destinationCrs(), context, side_cells=SIDE_CELLS)
            ranges = bridge.copy_ranges(layer, field, species)  # main thread: the task never reads the layer
            # the task's own (predictors are not thread-safe), scoring as the host's maps do
            predictor = Predictor(self.source.bundle(), local_evidence=self.source.local_evidence())
            covariates = self.source.covariates()  # an environmental model's rasters, as the dock maps
        except SinrError as exc:
            self._show_error(str(exc))
            return None
        view = bridge.view_in_crs(settings.visibleExtent(), settings.destinationCrs(), layer.crs(), context)
        self._ranges_crs = ranges.crs
        task = CompareTask(predictor, ranges, grid, view=view, covariates=covariates, on_done=self._done)
        self.task = task
        self.compare_button.setEnabled(False)
        self.result_label.setText(self.tr("Comparing {} species with their expert ranges on the visible map…")
                                  .format(len(species)))
        QgsApplication.taskManager().addTask(task)
        return task

    def _done(self, task: CompareTask, ok: bool) -> None:
        """Main thread: fill the table and show the first species with an AP."""
        if sip.isdeleted(self):
            return
        self.task = None
        self.compare_button.setEnabled(self.layer_combo.currentLayer() is not None)
        if not ok:
            cancelled = task.error is None or isinstance(task.error, CancelledError)
            self._show_error(self.tr("Comparison cancelled.") if cancelled
                             else self.tr("Comparison failed: {}").format(task.error))
            return
        self.comparisons = task.results
        self.table.setRowCount(len(task.results))
        for row, c in enumerate(task.results):
            name = QTableWidgetItem(isolate_bidi(c.label))
            name.setToolTip(c.problem or c.label)
            ap = QTableWidgetItem(f"{c.evaluation.ap_percent:.1f} %" if c.evaluation is not None else "–")
            ap.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if c.evaluation is not None and c.share_in_view is not None and c.share_in_view < bridge.PARTLY_IN_VIEW:
                ap.setText(ap.text() + " ⚠")  # only part of its range in view
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, ap)
        self.table.setVisible(len(task.results) > 1)
        first = next((i for i, c in enumerate(task.results) if c.evaluation is not None), 0)
        self.table.blockSignals(True)  # shown once, below
        self.table.setCurrentCell(first, 0)
        self.table.blockSignals(False)
        self.show_row(first)

    def show_row(self, row: int) -> bridge.SpeciesComparison | None:
        """Show species ``row`` of the last comparison: its numbers, curve and outline, or why it has none."""
        if not 0 <= row < len(self.comparisons):
            return None
        c = self.comparisons[row]
        self.remove_outline()
        r = c.evaluation
        if r is None:
            self.comparison = None
            self.curve.setVisible(False)
            self.result_label.setText(f"{c.label} {c.problem}")
            return None
        self.comparison = c
        text = self.tr(
            "<b>{label}</b>: AP <b>{ap:.2f} %</b> on {n:,} land cells in view (prevalence {prevalence:.1%}, what a "
            "random map scores). Best F1 {f1:.2f} at p ≥ {threshold:.3g}, IoU {iou:.2f}. <span style='color:{colour}'>"
            "Outline</span>: expert range.").format(
            label=c.label, ap=r.ap_percent, n=r.n_cells, prevalence=r.prevalence, f1=r.f1, threshold=r.threshold,
            iou=r.iou, colour=OUTLINE_COLOUR)
        if c.share_in_view is not None and c.share_in_view < bridge.PARTLY_IN_VIEW:
            text += self.tr("<br><b>⚠ Only {} % of its expert range is in view</b>: the AP covers that part. Press "
                            "“Zoom to ranges” to compare the whole range.").format(math.floor(100 * c.share_in_view))
        self.result_label.setText(text)
        title = self.tr("AP {:.2f} %").format(r.ap_percent)
        self.curve.load(QByteArray(pr_curve_svg(r.curve_precision, r.curve_recall, title=title,
                                                prevalence=r.prevalence).encode("utf-8")))
        self.curve.setVisible(True)
        self._show_outline(c)
        return c

    def zoom_to_ranges(self) -> QgsRectangle | None:
        """Frame the expert ranges of the species typed in the dock (map CRS); returns the new extent."""
        self.source.clear_status()
        try:
            layer, field, species = self._inputs()
            ranges = bridge.copy_ranges(layer, field, species)
        except SinrError as exc:
            self._show_error(str(exc))
            return None
        box = QgsRectangle()
        for feats in ranges.features.values():
            for f in feats:
                box.combineExtentWith(f.geometry().boundingBox())
        if box.isEmpty():
            self._show_error(self.tr("None of the species typed has a range in layer {!r}.").format(layer.name()))
            return None
        canvas = self.source.canvas()
        try:
            box = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(),
                                         QgsProject.instance()).transformBoundingBox(box)
        except QgsCsException as exc:
            self._show_error(self.tr("The ranges cannot be shown in the map's CRS ({}).").format(exc))
            return None
        box.scale(1.1)  # a margin, so the view also holds land outside the ranges
        canvas.setExtent(box)
        canvas.refresh()
        return canvas.extent()

    def _drop_running(self) -> None:
        """Cancel a running comparison; its result is dropped."""
        if self.task is not None:
            self.task.on_done = None
            self.task.cancel()
            self.task = None
            self.compare_button.setEnabled(self.layer_combo.currentLayer() is not None)

    def shutdown(self) -> None:
        """Plugin unload: cancel a running comparison (its result is dropped) and stop following the project."""
        self._drop_running()
        if self._following_project:  # unload may come twice (the dock closed, then the plugin)
            QgsProject.instance().layersAdded.disconnect(self._layers_added)
            self._following_project = False

    # ---- drawing -------------------------------------------------------------------------------
    def _show_outline(self, comparison: bridge.SpeciesComparison) -> None:
        """Replace the outline layer: the species' range features, no fill, on top of the map."""
        self.remove_outline()
        out, problem = expert_outline_layer(comparison.label, self._ranges_crs,
                                            (f.geometry() for f in comparison.features))
        if problem:  # the numbers stand; only the drawing is incomplete: say so
            LOG.warning(problem)
            self.result_label.setText(self.result_label.text() + f"<br><i>{problem}</i>")
        QgsProject.instance().addMapLayer(out)
        self.outline_layer_id = out.id()

    def outline_layer(self) -> QgsVectorLayer | None:
        return QgsProject.instance().mapLayer(self.outline_layer_id) if self.outline_layer_id else None

    def remove_outline(self) -> None:
        if self.outline_layer() is not None:
            QgsProject.instance().removeMapLayer(self.outline_layer_id)
        self.outline_layer_id = None

    def _clear_results(self) -> None:
        self.comparisons, self.comparison = [], None
        self.table.setRowCount(0)
        self.table.setVisible(False)
        self.curve.setVisible(False)
        self.remove_outline()

    def _show_error(self, text: str) -> None:
        self._clear_results()
        self.result_label.setText(text)
        LOG.warning(text)


def _matches(layer: QgsVectorLayer, species) -> int:
    """How many of ``species`` the layer's best text field names."""
    return bridge.best_species_field(layer, species)[1]
