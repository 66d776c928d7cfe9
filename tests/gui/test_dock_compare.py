"""The dock's "Compare" section under pytest-qgis: every species typed against a loaded range layer, in a
background task, with the layer and field preselected and a warning when a range is outside the view."""
from __future__ import annotations

import threading

import processing
import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProject, QgsRectangle, QgsVectorLayer
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QSize

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.gui.compare_panel import ComparePanel, CompareSource
from sinr_qgis.gui.dock import SinrDock
from sinr_qgis.qgis_bridge import evaluation as bridge
from sinr_qgis.tasks.compare_task import CompareTask
from tests.helpers.evaluate_helpers import RECT_1, RECT_3, ranges_layer
from tests.helpers.prediction_helpers import bundle, model_file, sinr_provider  # noqa: F401
from tests.helpers.settings_helpers import restore_settings  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401


@pytest.fixture
def compare_dock(qgis_iface, qgis_canvas, model_file, restore_settings, isolated_model_list):  # noqa: F811
    qgis_canvas.resize(QSize(300, 200))
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    layer = ranges_layer("EPSG:5070")  # ranges in another CRS than the map
    QgsProject.instance().addMapLayer(layer)
    d = SinrDock(qgis_iface)
    assert d.choose_model(str(model_file))
    yield d, layer
    d.compare_panel.remove_outline()
    QgsProject.instance().removeAllMapLayers()
    d.deleteLater()


def _zoom_lonlat(canvas, xmin, ymin, xmax, ymax):
    xform = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), canvas.mapSettings().destinationCrs(),
                                   QgsProject.instance())
    canvas.setExtent(xform.transformBoundingBox(QgsRectangle(xmin, ymin, xmax, ymax)))


def _compare(panel, qtbot) -> CompareTask | None:
    task = panel.compare()
    if task is not None:
        qtbot.waitUntil(lambda: panel.task is None, timeout=120_000)
    return task


def test_compare_shows_the_ap_the_algorithm_computes(compare_dock, qgis_canvas, sinr_provider, model_file, qtbot):  # noqa: F811
    dock, layer = compare_dock
    panel = dock.compare_panel
    assert panel.layer_combo.currentLayer() is layer  # preselected: its field names species of the model
    assert panel.field_combo.currentField() == "taxon"
    _zoom_lonlat(qgis_canvas, -100, 30, -80, 46)
    dock.species_edit.setText("Species number1")
    task = _compare(panel, qtbot)
    assert isinstance(task, CompareTask) and task.error is None
    comparison = panel.comparison
    r, grid = comparison.evaluation, comparison.grid
    assert grid.crs == "EPSG:4326" and max(grid.width, grid.height) in (300, 301)
    assert 0 < r.ap < 1 and r.n_presence > 0
    assert f"AP <b>{r.ap_percent:.2f} %" in panel.result_label.text()
    assert "Only" not in panel.result_label.text()  # the whole range is in view
    assert comparison.share_in_view == pytest.approx(1.0)
    assert panel.curve.isVisibleTo(panel) and panel.curve.renderer().isValid()
    assert not panel.table.isVisibleTo(panel)  # one species: no table
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
    # comparing again replaces the outline instead of stacking them
    dock.species_edit.setText("sp003")
    assert _compare(panel, qtbot) is not None and panel.comparison is not None
    assert first_id not in QgsProject.instance().mapLayers()
    assert panel.outline_layer().name() == "Expert range: Species number3 (sp003)"


def test_compare_runs_in_a_background_task(compare_dock, qgis_canvas, qtbot, monkeypatch):
    """Compare never computes on the main thread: the layer is read there, the rest in a QgsTask."""
    dock, _layer = compare_dock
    panel = dock.compare_panel
    threads = []
    real = bridge.compare_species

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(bridge, "compare_species", spy)
    _zoom_lonlat(qgis_canvas, -100, 30, -80, 46)
    dock.species_edit.setText("sp001")
    task = panel.compare()
    assert isinstance(task, CompareTask) and not panel.compare_button.isEnabled()
    assert panel.compare() is None  # one comparison at a time
    assert panel.result_label.text() == "Comparing 1 species with their expert ranges on the visible map…"
    qtbot.waitUntil(lambda: panel.task is None, timeout=120_000)
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    assert panel.comparison is not None and panel.compare_button.isEnabled()
    # unloading the plugin while a comparison runs cancels it and drops its result
    panel.remove_outline()
    task = panel.compare()
    dock.shutdown()
    assert panel.task is None and task.on_done is None
    qtbot.waitUntil(lambda: sip.isdeleted(task), timeout=120_000)  # the task manager deletes an ended task
    assert panel.outline_layer() is None and panel.comparison is None


def test_compare_lists_every_species_typed(compare_dock, qgis_canvas, qtbot):
    dock, _layer = compare_dock
    panel = dock.compare_panel
    _zoom_lonlat(qgis_canvas, -100, 28, -78, 46)
    dock.species_edit.setText("sp001, Species number3, sp005")
    _compare(panel, qtbot)
    assert panel.table.isVisibleTo(panel) and panel.table.rowCount() == 3
    rows = [(panel.table.item(r, 0).text(), panel.table.item(r, 1).text()) for r in range(3)]
    aps = [c.evaluation.ap_percent if c.evaluation else None for c in panel.comparisons]
    assert aps[0] is not None and aps[1] is not None and aps[2] is None
    assert rows == [("Species number1 (sp001)", f"{aps[0]:.1f} %"), ("Species number3 (sp003)", f"{aps[1]:.1f} %"),
                    ("Species number5 (sp005)", "–")]
    assert panel.comparison.species.code == "sp001" and panel.table.currentRow() == 0
    panel.table.setCurrentCell(1, 0)  # the selected species' curve and outline
    assert panel.comparison.species.code == "sp003"
    assert panel.outline_layer().name() == "Expert range: Species number3 (sp003)"
    assert f"AP <b>{aps[1]:.2f} %" in panel.result_label.text()
    panel.table.setCurrentCell(2, 0)
    assert panel.comparison is None and panel.outline_layer() is None and not panel.curve.isVisibleTo(panel)
    assert panel.result_label.text() == ("Species number5 (sp005) has no range in layer 'ranges' (field 'taxon' "
                                         "holds no code or name of it). Choose another species or field.")
    # one species alone without a range: said at once, no table
    dock.species_edit.setText("sp005")
    _compare(panel, qtbot)
    assert "has no range" in panel.result_label.text() and not panel.table.isVisibleTo(panel)
    assert panel.outline_layer() is None


def test_compare_warns_when_a_range_is_partly_or_wholly_outside_the_view(compare_dock, qgis_canvas, qtbot):
    dock, _layer = compare_dock
    panel = dock.compare_panel
    dock.species_edit.setText("sp001, sp003")
    # a view holding the western part of RECT_1 (-95.3 .. -88.7) and none of RECT_3 (-86.4 .. -81.2)
    _zoom_lonlat(qgis_canvas, -102, 38, -92, 40)  # wider than the canvas: the width holds
    _compare(panel, qtbot)
    one, three = panel.comparisons
    # the map's aspect ratio adjusts the view: measure the share from the view actually used
    view = QgsCoordinateTransform(qgis_canvas.mapSettings().destinationCrs(), QgsCoordinateReferenceSystem("EPSG:4326"),
                                  QgsProject.instance()).transformBoundingBox(qgis_canvas.mapSettings().visibleExtent())
    assert view.xMinimum() < RECT_1[0] < view.xMaximum() < RECT_1[2] and view.xMaximum() < RECT_3[0]
    box = QgsRectangle(*RECT_1)
    lonlat_share = box.intersect(view).area() / box.area()
    # areas in the layer's equal-area CRS (EPSG:5070) vs the lon/lat rectangles: they differ by the
    # change of a degree's area over the range's 5 degrees of latitude and the meridians' slant (< 5 %)
    assert one.share_in_view == pytest.approx(lonlat_share, abs=0.05)
    assert 0 < one.share_in_view < bridge.PARTLY_IN_VIEW and one.evaluation is not None
    text = panel.result_label.text()
    assert f"<b>⚠ Only {int(100 * one.share_in_view)} % of its expert range is in view</b>" in text
    assert panel.table.item(0, 1).text().endswith(" %" + " ⚠")
    assert three.evaluation is None and three.share_in_view == 0.0
    assert panel.table.item(1, 1).text() == "–"
    panel.table.setCurrentCell(1, 0)
    assert panel.result_label.text() == ("Species number3 (sp003) is not compared: its expert range is entirely "
                                         "outside the view. Press “Zoom to ranges”, or pan to it.")
    # "Zoom to ranges" frames both ranges: then both are compared whole
    extent = panel.zoom_to_ranges()
    assert extent is not None
    _compare(panel, qtbot)
    assert [c.share_in_view for c in panel.comparisons] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert all(c.evaluation is not None for c in panel.comparisons)
    assert "Only" not in panel.result_label.text()


def test_compare_refuses_a_view_inside_the_range_with_the_evaluations_reason(compare_dock, qgis_canvas, qtbot):
    """Every land cell in view inside the range: no absence, so AP would be 100 % whatever the model
    says. The panel says so with the same reason text as the Processing algorithms."""
    dock, _layer = compare_dock
    panel = dock.compare_panel
    _zoom_lonlat(qgis_canvas, -93, 38.5, -91, 39.5)  # well inside RECT_1 even at the canvas' aspect ratio
    dock.species_edit.setText("sp001")
    _compare(panel, qtbot)
    assert panel.comparison is None
    text = panel.result_label.text()
    assert text.startswith("Species number1 (sp001) is not compared: no absence among its ")
    assert "AP would be 100 % whatever the scores" in text and "covers every land cell in view" in text
    assert not panel.curve.isVisibleTo(panel) and panel.outline_layer() is None


def test_compare_on_qgis_start_page_says_to_open_a_map_first(compare_dock, monkeypatch):
    from tests.helpers.map_view import MapView

    dock, _layer = compare_dock
    monkeypatch.setattr(dock, "canvas", MapView("EPSG:4326", QSize(98, 28), QgsRectangle()))  # hidden, no extent
    dock.species_edit.setText("Species number1")
    assert dock.compare_panel.compare() is None and dock.compare_panel.task is None
    assert dock.compare_panel.result_label.text().startswith("The map shows no area yet (QGIS's start page is open)")


def test_the_range_layer_is_preselected_among_the_projects_polygon_layers(qgis_iface, qgis_canvas, model_file,  # noqa: F811
                                                                          restore_settings, isolated_model_list):  # noqa: F811
    """A layer with a field naming the model's species is chosen, not the first polygon layer; a
    layer added later is chosen when none matched; the user's choice is kept."""
    other = QgsVectorLayer("MultiPolygon?crs=EPSG:4326&field=name:string", "countries", "memory")
    QgsProject.instance().addMapLayer(other)
    d = SinrDock(qgis_iface)
    try:
        assert d.choose_model(str(model_file))
        panel = d.compare_panel
        assert panel.layer_combo.currentLayer() in (None, other)  # nothing names a species yet
        ranges = ranges_layer()
        QgsProject.instance().addMapLayer(ranges)  # loading the ranges selects them
        assert panel.layer_combo.currentLayer() is ranges and panel.field_combo.currentField() == "taxon"
        more = ranges_layer()
        QgsProject.instance().addMapLayer(more)
        assert panel.layer_combo.currentLayer() is ranges  # a matching choice is not overridden
    finally:
        d.deleteLater()
        QgsProject.instance().removeAllMapLayers()


def test_another_model_drops_the_last_comparison_and_a_running_one(compare_dock, qgis_canvas, model_file,  # noqa: F811
                                                                   tmp_path, qtbot):
    """A comparison is one model's: choosing another model clears its AP, table, curve and outline,
    and a comparison still running is cancelled and its result dropped."""
    dock, _layer = compare_dock
    panel = dock.compare_panel
    other_path = ModelBundle.load(model_file).write(tmp_path / "other.sinr")  # the same, as another file
    _zoom_lonlat(qgis_canvas, -100, 30, -80, 46)
    dock.species_edit.setText("sp001, sp003")
    assert _compare(panel, qtbot) is not None and panel.comparison is not None
    assert panel.table.rowCount() == 2 and panel.outline_layer() is not None
    assert dock.choose_model(str(other_path))
    assert (panel.comparisons, panel.comparison, panel.table.rowCount(), panel.result_label.text()) == ([], None, 0, "")
    assert not panel.curve.isVisibleTo(panel) and panel.outline_layer() is None
    task = panel.compare()
    assert dock.choose_model(str(model_file))
    assert panel.task is None and task.on_done is None and panel.compare_button.isEnabled()
    qtbot.waitUntil(lambda: sip.isdeleted(task), timeout=120_000)  # the task manager deletes an ended task
    assert panel.comparisons == [] and panel.result_label.text() == ""


def test_the_panel_needs_only_its_source_not_a_dock(qgis_canvas, bundle, qtbot):  # noqa: F811
    """The panel reads the host through ``CompareSource`` alone: here no dock exists. "Zoom to
    ranges" frames species 1's range (lon/lat layer, lon/lat map) with a 10 % margin."""
    qgis_canvas.resize(QSize(300, 200))
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    layer = ranges_layer()
    QgsProject.instance().addMapLayer(layer)
    cleared = []
    source = CompareSource(bundle=lambda: bundle, species_text=lambda: "sp001", covariates=lambda: None,
                           canvas=lambda: qgis_canvas, clear_status=lambda: cleared.append(1))
    panel = ComparePanel(source)
    qtbot.addWidget(panel)
    try:
        assert panel.layer_combo.currentLayer() is layer and panel.field_combo.currentField() == "taxon"
        extent = panel.zoom_to_ranges()
        assert cleared == [1]
        w, h = RECT_1[2] - RECT_1[0], RECT_1[3] - RECT_1[1]
        # QgsRectangle.scale(1.1) about the centre; the canvas then widens one side to its aspect ratio
        assert extent.width() >= 1.1 * w - 1e-9 and extent.height() >= 1.1 * h - 1e-9
        assert extent.contains(QgsRectangle(*RECT_1))
        assert min(extent.width() - 1.1 * w, extent.height() - 1.1 * h) < 1e-6
    finally:
        panel.shutdown()
        QgsProject.instance().removeAllMapLayers()
