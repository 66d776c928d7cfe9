"""The dock's "Compare" section under pytest-qgis: AP of the current species against a loaded range layer."""
from __future__ import annotations

import processing
import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsProject, QgsRectangle, QgsSettings
from qgis.PyQt.QtCore import QSize

from sinr_qgis.gui.dock import SinrDock
from sinr_qgis.toolbelt import settings

from .prediction_helpers import bundle, model_file, sinr_provider  # noqa: F401
from .test_evaluate import RECT_1, ranges_layer


@pytest.fixture
def compare_dock(qgis_iface, qgis_canvas, model_file):  # noqa: F811
    store = QgsSettings()
    keys = [settings.PREFIX + k for k in settings.DEFAULTS]
    saved = {k: store.value(k) for k in keys if store.contains(k)}
    qgis_canvas.resize(QSize(300, 200))
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    layer = ranges_layer("EPSG:5070")  # ranges in another CRS than the map
    QgsProject.instance().addMapLayer(layer)
    d = SinrDock(qgis_iface)
    d.model_widget.setFilePath(str(model_file))
    yield d, layer
    d.compare_panel.remove_outline()
    QgsProject.instance().removeMapLayer(layer.id())
    d.deleteLater()
    for k in keys:
        if k in saved:
            store.setValue(k, saved[k])
        else:
            store.remove(k)


def _zoom_lonlat(canvas, xmin, ymin, xmax, ymax):
    from qgis.core import QgsCoordinateTransform
    xform = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), canvas.mapSettings().destinationCrs(),
                                   QgsProject.instance())
    canvas.setExtent(xform.transformBoundingBox(QgsRectangle(xmin, ymin, xmax, ymax)))


def test_compare_shows_the_ap_the_algorithm_computes(compare_dock, qgis_canvas, sinr_provider, model_file):  # noqa: F811
    dock, layer = compare_dock
    panel = dock.compare_panel
    panel.layer_combo.setLayer(layer)
    assert panel.field_combo.currentField() == "taxon"  # the field that matches the model's species
    _zoom_lonlat(qgis_canvas, -100, 30, -80, 46)
    dock.species_edit.setText("Species number1")
    comparison = panel.compare()
    assert comparison is not None
    r, grid = comparison.evaluation, comparison.grid
    assert grid.crs == "EPSG:4326" and max(grid.width, grid.height) in (300, 301)
    assert 0 < r.ap < 1 and r.n_presence > 0
    assert f"AP <b>{r.ap_percent:.2f} %" in panel.result_label.text()
    assert panel.curve.isVisibleTo(panel) and panel.curve.renderer().isValid()
    # the same grid through sinr:evaluate_ranges gives the same AP
    ext = grid.extent
    result = processing.run("sinr:evaluate_ranges", {
        "MODEL": str(model_file), "RANGES": layer, "SPECIES_FIELD": "taxon", "PIXEL_SIZE": grid.xres,
        "EXTENT": f"{ext[0]},{ext[2]},{ext[1]},{ext[3]} [EPSG:4326]", "AREA_WEIGHTED": True,
        "OUTPUT_TABLE": "memory:"})
    rows = {f["code"]: f["ap"] for f in result["OUTPUT_TABLE"].getFeatures()}
    # the same code (compare_species), grid, process and thread count: equal but for the table's
    # rounding of AP (percent) to 4 decimals (at most 5e-5)
    assert rows["sp001"] == pytest.approx(r.ap_percent, abs=1e-4)
    # the expert outline is drawn over the map: the species' feature only, no fill
    outline = panel.outline_layer()
    assert outline is not None and outline.featureCount() == 1
    assert outline.crs() == layer.crs()
    bbox = next(outline.getFeatures()).geometry().boundingBox()
    assert bbox == next(f for f in layer.getFeatures() if f["taxon"] == "sp001").geometry().boundingBox()
    symbol = outline.renderer().symbol()
    assert symbol.symbolLayer(0).brushStyle() == 0  # Qt.NoBrush
    first_id = outline.id()
    assert first_id in QgsProject.instance().mapLayers()
    # comparing again replaces the outline instead of stacking them
    dock.species_edit.setText("sp003")
    assert panel.compare() is not None
    assert first_id not in QgsProject.instance().mapLayers()
    assert panel.outline_layer().name() == "Expert range: Species number3 (sp003)"


def test_compare_explains_a_species_without_a_range(compare_dock, qgis_canvas):
    dock, layer = compare_dock
    panel = dock.compare_panel
    panel.layer_combo.setLayer(layer)
    _zoom_lonlat(qgis_canvas, -100, 30, -80, 46)
    dock.species_edit.setText("sp005")
    assert panel.compare() is None
    assert "has no range" in panel.result_label.text() and not panel.curve.isVisibleTo(panel)
    assert panel.outline_layer() is None
    # a range entirely outside the visible map
    dock.species_edit.setText("sp001")
    _zoom_lonlat(qgis_canvas, 0, 40, 10, 50)
    assert panel.compare() is None
    assert "no land cell" in panel.result_label.text()
    assert RECT_1[0] < -80  # (the range lies in North America)


def test_compare_refuses_a_view_inside_the_range_with_the_evaluations_reason(compare_dock, qgis_canvas):
    """Every land cell in view inside the range: no absence, so AP would be 100 % whatever the model
    says. The panel says so with the same reason text as the Processing algorithms."""
    dock, layer = compare_dock
    panel = dock.compare_panel
    panel.layer_combo.setLayer(layer)
    _zoom_lonlat(qgis_canvas, -93, 38.5, -91, 39.5)  # well inside RECT_1 even at the canvas' aspect ratio
    dock.species_edit.setText("sp001")
    assert panel.compare() is None
    text = panel.result_label.text()
    assert text.startswith("Species number1 (sp001) is not compared: no absence among its ")
    assert "AP would be 100 % whatever the scores" in text and "covers every land cell in view" in text
    assert not panel.curve.isVisibleTo(panel) and panel.outline_layer() is None

