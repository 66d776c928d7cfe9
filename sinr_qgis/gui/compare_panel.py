"""The dock's "Compare" section: the current species' prediction against a loaded expert range.

Pick the range layer and its species field, press "Compare": the AP (percent, as MAP everywhere
in the plugin) on the land cells of the visible map, the precision-recall curve, and the species'
expert outline drawn over the map. The numbers come from ``qgis_bridge.evaluation.compare_species``,
the same code as ``sinr:evaluate_ranges``. It runs on the main thread: one species on at most
``SIDE_CELLS`` x ``SIDE_CELLS`` cells takes well under a second, and reading the layer must
happen there anyway.
"""
from __future__ import annotations

import logging

from qgis.core import (
    QgsFeature,
    QgsFillSymbol,
    QgsGeometry,
    QgsMapLayerProxyModel,
    QgsMapSettings,
    QgsProject,
    QgsSingleSymbolRenderer,
    QgsVectorLayer,
)
from qgis.gui import QgsCollapsibleGroupBox, QgsFieldComboBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import QByteArray, Qt
from qgis.PyQt.QtSvg import QSvgWidget
from qgis.PyQt.QtWidgets import QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..core.errors import SinrError
from ..core.eval_report import OUTLINE_COLOUR, pr_curve_svg
from ..qgis_bridge import evaluation as bridge
from ..qgis_bridge.features import write_features

LOG = logging.getLogger("sinr_qgis")
SIDE_CELLS = 300  # cells along the longer side of the visible map


class ComparePanel(QgsCollapsibleGroupBox):
    """Expert range layer + species field -> AP, PR curve and outline of the dock's current species."""

    def __init__(self, dock, parent: QWidget | None = None) -> None:
        super().__init__("Compare with an expert range", parent)
        self.setCollapsed(True)  # keeps the dock compact until asked for
        self.dock = dock
        self.outline_layer_id: str | None = None
        self.comparison: bridge.SpeciesComparison | None = None
        self.layer_combo = QgsMapLayerComboBox(self)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.layer_combo.setAllowEmptyLayer(True)
        self.field_combo = QgsFieldComboBox(self)
        self.layer_combo.layerChanged.connect(self._layer_changed)
        self.compare_button = QPushButton("Compare", self)
        self.compare_button.clicked.connect(self.compare)
        self.result_label = QLabel(self)
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.curve = QSvgWidget(self)
        self.curve.setFixedSize(260, 220)
        self.curve.setVisible(False)
        form = QFormLayout()
        form.addRow("Ranges", self.layer_combo)
        form.addRow("Species field", self.field_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.compare_button)
        layout.addWidget(self.result_label)
        layout.addWidget(self.curve, 0, Qt.AlignHCenter)
        self._layer_changed(self.layer_combo.currentLayer())

    def _layer_changed(self, layer) -> None:
        """Bind the field list to the layer and preselect the field that matches the most species."""
        self.field_combo.setLayer(layer)
        if isinstance(layer, QgsVectorLayer) and self.dock.bundle is not None:
            best, _n = bridge.best_species_field(layer, self.dock.bundle.species)
            if best:
                self.field_combo.setField(best)
        self.compare_button.setEnabled(layer is not None)

    def compare(self) -> bridge.SpeciesComparison | None:
        """Compare the dock's (first) species on the visible map; show AP, curve and outline."""
        layer = self.layer_combo.currentLayer()
        field = self.field_combo.currentField()
        if self.dock.bundle is None or self.dock.point_predictor is None or layer is None or not field:
            self._show_error("Choose a model, a range layer and its species field first.")
            return None
        settings = QgsMapSettings(self.dock.canvas.mapSettings())
        try:
            species = self.dock.bundle.find_species_list(self.dock.species_edit.text())[0]
            grid = bridge.default_grid(settings.visibleExtent(), settings.destinationCrs(),
                                       QgsProject.instance().transformContext(), side_cells=SIDE_CELLS)
            comparison = bridge.compare_species(self.dock.point_predictor, species, layer, field, grid)
        except SinrError as exc:
            self._show_error(str(exc))
            return None
        self.comparison = comparison
        r = comparison.evaluation
        self.result_label.setText(
            f"<b>{species.label}</b>: AP <b>{r.ap_percent:.2f} %</b> on {r.n_cells:,} land cells in view "
            f"(prevalence {r.prevalence:.1%}, what a random map scores). Best F1 {r.f1:.2f} at "
            f"p ≥ {r.threshold:.3g}, IoU {r.iou:.2f}. <span style='color:{OUTLINE_COLOUR}'>Outline</span>: "
            "expert range.")
        self.curve.load(QByteArray(pr_curve_svg(r.curve_precision, r.curve_recall, title=f"AP {r.ap_percent:.2f} %",
                                                prevalence=r.prevalence).encode("utf-8")))
        self.curve.setVisible(True)
        self._show_outline(layer, comparison, species.label)
        return comparison

    def _show_outline(self, layer: QgsVectorLayer, comparison: bridge.SpeciesComparison, label: str) -> None:
        """Replace the outline layer: the species' range features, no fill, on top of the map."""
        self.remove_outline()
        out = QgsVectorLayer("MultiPolygon?field=species:string", f"Expert range: {label}", "memory")
        out.setCrs(layer.crs())
        feats = []
        for f in comparison.features:
            geom = QgsGeometry(f.geometry())
            geom.convertToMultiType()
            feat = QgsFeature(out.fields())
            feat.setGeometry(geom)
            feat.setAttributes([label])
            feats.append(feat)
        try:
            write_features(out.dataProvider(), feats, f"The outline layer of {label}")
        except SinrError as exc:  # the numbers stand; only the drawing would be incomplete: say so
            LOG.warning(str(exc))
            self.result_label.setText(self.result_label.text() + f"<br><i>{exc}</i>")
        symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": OUTLINE_COLOUR,
                                             "outline_width": "0.6", "outline_width_unit": "MM"})
        out.setRenderer(QgsSingleSymbolRenderer(symbol))
        QgsProject.instance().addMapLayer(out)
        self.outline_layer_id = out.id()

    def outline_layer(self) -> QgsVectorLayer | None:
        return QgsProject.instance().mapLayer(self.outline_layer_id) if self.outline_layer_id else None

    def remove_outline(self) -> None:
        if self.outline_layer() is not None:
            QgsProject.instance().removeMapLayer(self.outline_layer_id)
        self.outline_layer_id = None

    def _show_error(self, text: str) -> None:
        self.comparison = None
        self.curve.setVisible(False)
        self.result_label.setText(text)
        LOG.warning(text)
