"""The SINR dock under pytest-qgis: model, species, prediction task, layer, opacity, map tool."""
from __future__ import annotations

import numpy as np
import pytest
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtCore import QSize, Qt

from sinr_qgis.core import runtime
from sinr_qgis.core.bundle import Species
from sinr_qgis.gui.dock import SinrDock
from tests.factories import make_bundle
from tests.helpers.prediction_helpers import bundle, model_file, pixel_centre, read_raster  # noqa: F401
from tests.helpers.settings_helpers import restore_settings  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401
from tests.tolerances import bundle_prob_atol


@pytest.fixture
def dock(qgis_iface, qgis_canvas, model_file, restore_settings, isolated_model_list):  # noqa: F811
    qgis_canvas.resize(QSize(240, 160))
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    qgis_canvas.setExtent(QgsRectangle(-80, 35, -70, 45))
    qgis_iface.messageBar().clear_messages()
    d = SinrDock(qgis_iface)
    assert d.choose_model(str(model_file))
    yield d
    if d.layer_id:
        QgsProject.instance().removeMapLayer(d.layer_id)
    d.deleteLater()


def test_dock_loads_the_model_and_offers_species(dock, bundle):  # noqa: F811
    assert dock.bundle is not None and dock.bundle.sha256 == bundle.sha256
    assert dock.species_completer.label_list() == [s.label for s in bundle.species]
    assert dock.backend_name in ("onnxruntime", "numpy")
    assert dock.backend_name in dock.backend_label.text()
    completer = dock.species_edit.completer()
    completer.setCompletionPrefix("number4")
    assert completer.currentIndex().data() == bundle.species[4].label


def test_species_search_completes_the_last_item_by_the_lookup_key(dock):
    completer = dock.species_completer
    completer.set_labels(["Abies borisii-regis (c0)", "Abies × borisii-regis (c1)", "Quercus alba L., 1753 (c2)",
                          "Épicéa commun (c3)"])
    # what is typed after the last comma, compared as the lookup compares names
    assert completer.splitPath("c2, Abies x BORISII") == ["abies × borisii"]
    completer.setCompletionPrefix(completer.splitPath("c2, Abies x BORISII")[0])
    assert completer.completionCount() == 1 and completer.currentIndex().data() == "Abies × borisii-regis (c1)"
    completer.setCompletionPrefix(completer.splitPath("\u00c9PICE\u0301A")[0])  # NFD input
    assert completer.currentIndex().data() == "Épicéa commun (c3)"
    # choosing a label replaces only the item being typed; a label with a comma is quoted
    dock.species_edit.setText("c1, Quercus al")
    completer.setCompletionPrefix(completer.splitPath(dock.species_edit.text())[0])
    assert completer.pathFromIndex(completer.currentIndex()) == 'c1, "Quercus alba L., 1753 (c2)"'
    assert [s.code for s in dock.bundle.find_species_list('sp001, "Species number2 (sp002)"')] == ["sp001", "sp002"]


def test_dock_predicts_the_canvas_extent_and_adds_a_styled_layer(dock, qtbot, bundle, qgis_canvas):  # noqa: F811
    dock.species_edit.setText("Species number2")
    dock.opacity_slider.setValue(60)
    task = dock.predict_canvas_extent()
    assert task is not None and not dock.predict_button.isEnabled()
    qtbot.waitUntil(lambda: dock.task is None, timeout=120_000)
    assert task.error is None
    layer = dock.prediction_layer()
    assert layer is not None and layer.isValid()
    assert isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer)
    assert layer.renderer().opacity() == pytest.approx(0.6)
    # the grid is the visible extent at about one cell per screen pixel
    size = qgis_canvas.mapSettings().outputSize()
    assert (layer.width(), layer.height()) == (size.width(), size.height())
    visible = qgis_canvas.mapSettings().visibleExtent()
    assert layer.extent().xMinimum() == pytest.approx(visible.xMinimum())
    assert layer.extent().yMaximum() == pytest.approx(visible.yMaximum())
    # a land pixel equals the runtime's score at its centre
    data, info = read_raster(task.files[0])
    row, col = layer.height() // 2, layer.width() // 3
    lon, lat = pixel_centre(info["gt"], row, col)
    ref = runtime.Predictor(bundle).predict_points(np.array([[lon, lat]]), [2])[0, 0]
    assert np.isfinite(data[0, row, col])
    assert data[0, row, col] == pytest.approx(float(ref), abs=bundle_prob_atol(bundle, [(lon, lat)], 2))
    # the opacity slider drives the prediction layer
    dock.opacity_slider.setValue(25)
    assert layer.renderer().opacity() == pytest.approx(0.25)
    assert dock.predict_button.isEnabled() and dock.progress.value() == 100


def test_unknown_species_is_reported_and_starts_nothing(dock, qgis_iface):
    dock.species_edit.setText("Nonexistent species")
    assert dock.predict_canvas_extent() is None
    assert dock.task is None
    assert any("Nonexistent species" in m for m in qgis_iface.messageBar().get_messages(Qgis.Warning))


def test_cancelled_prediction_adds_no_layer(dock, qtbot, qgis_canvas):
    qgis_canvas.resize(QSize(1600, 1200))
    dock.species_edit.setText("sp001")
    layers_before = set(QgsProject.instance().mapLayers())
    task = dock.predict_canvas_extent()
    task.cancel()
    qtbot.waitUntil(lambda: dock.task is None, timeout=120_000)
    assert set(QgsProject.instance().mapLayers()) == layers_before
    assert "cancel" in dock.status_label.text().lower()
    assert list(dock.out_dir.glob("*.tif")) == []


def test_map_tool_lists_species_ranked_like_the_runtime(dock, bundle, qgis_canvas):  # noqa: F811
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    to_merc = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                     QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())
    lon, lat = -84.4, 33.7
    point = to_merc.transform(QgsPointXY(lon, lat))
    dock.top_k.setValue(4)
    dock.here_button.setChecked(True)
    assert qgis_canvas.mapTool() is dock.map_tool
    dock.map_tool.canvasClicked.emit(point, Qt.LeftButton)  # what a left click does
    items = [dock.species_list.item(i).text() for i in range(dock.species_list.count())]
    probs = runtime.Predictor(bundle).predict_points(np.array([[lon, lat]]), None)[0]
    order = np.argsort(-probs, kind="stable")[:4]
    assert len(items) == 4
    for rank, (text, j) in enumerate(zip(items, order), start=1):
        assert text.startswith(f"{rank}. {bundle.species[j].label}")
        assert text.endswith(f"{probs[j]:.3f}")
    dock.here_button.setChecked(False)
    assert qgis_canvas.mapTool() is not dock.map_tool


def test_what_lives_here_keeps_right_to_left_names_from_reordering_the_line(dock, tmp_path):
    b = make_bundle(tmp_path / "random.sinr", n_species=3, width=16, depth=1, seed=2)
    b.species = [Species(0, "q1", "אלון מצוי", 1), Species(1, "a1", "Acer rubrum", 1), Species(2, "e1", "🌳 شجرة", 1)]
    assert dock.choose_model(str(b.write(tmp_path / "rtl.sinr")))
    assert [s.code for s in dock.bundle.species] == ["q1", "a1", "e1"]
    dock.top_k.setValue(3)
    ranking = dock.show_species_at(QgsPointXY(-84.4, 33.7))  # the canvas is in EPSG:4326
    items = [dock.species_list.item(i).text() for i in range(dock.species_list.count())]
    assert len(items) == len(ranking) == 3
    for r, text in zip(ranking, items):
        label = r.species.label if r.species.code == "a1" else f"\u2068{r.species.label}\u2069"  # FSI ... PDI
        assert text == f"{r.rank}. {label}  {r.probability:.3f}"


def test_plugin_action_opens_the_dock_and_unload_removes_it(qgis_iface, qgis_processing, restore_settings):  # noqa: F811
    import sinr_qgis

    plugin = sinr_qgis.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert plugin.dock is None  # nothing loaded at start-up
        plugin.dock_action.setChecked(True)
        assert isinstance(plugin.dock, SinrDock)
        assert plugin.dock.objectName() == "SinrDock"
    finally:
        plugin.unload()
    assert plugin.dock is None and plugin.dock_action is None
