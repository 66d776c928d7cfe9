"""The dock's prediction layers: one per species and model, replaced in place, shown one at a time,
written to the managed folder; a map view larger than the world is predicted where it is on the globe."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsLayerTree,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsSettings,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize

from sinr_qgis.core import runtime
from sinr_qgis.gui.dock import SinrDock
from sinr_qgis.qgis_bridge import prediction_layers
from sinr_qgis.toolbelt import prediction_folder, settings
from tests.factories import make_bundle
from tests.helpers.map_view import MapView
from tests.helpers.prediction_helpers import bundle, model_file, pixel_centre, read_raster  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401
from tests.tolerances import bundle_prob_atol

WEB_MERCATOR_HALF_WORLD = math.pi * 6378137.0  # metres from 0 to 180 degrees of longitude in EPSG:3857


@pytest.fixture
def managed_root(tmp_path, monkeypatch):
    """The managed folder inside the test's tmp_path, not the real system temp folder."""
    root = tmp_path / "sinr_qgis_predictions"
    monkeypatch.setattr(prediction_folder, "predictions_root", lambda: root)
    return root


def _remove_dock_predictions() -> None:
    project = QgsProject.instance()
    project.removeMapLayers([lyr.id() for lyr in prediction_layers.dock_prediction_layers()])
    for group in project.layerTreeRoot().findGroups(True):
        if group.customProperty(prediction_layers.GROUP_PROPERTY):
            group.parent().removeChildNode(group)


@pytest.fixture
def dock(qgis_iface, qgis_canvas, model_file, isolated_model_list, managed_root):  # noqa: F811
    store = QgsSettings()
    saved = {k: store.value(settings.PREFIX + k) for k in settings.DEFAULTS if store.contains(settings.PREFIX + k)}
    qgis_canvas.resize(QSize(240, 160))
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    qgis_canvas.setExtent(QgsRectangle(-80, 35, -70, 45))
    qgis_iface.messageBar().clear_messages()
    _remove_dock_predictions()  # another test's dock may have left its group
    d = SinrDock(qgis_iface)
    assert d.choose_model(str(model_file))
    d.mask_check.setChecked(False)  # every pixel on the globe gets a value, so values can be checked anywhere
    yield d
    _remove_dock_predictions()
    d.canvas = qgis_canvas  # a test may have given it a MapView
    d.shutdown()
    d.deleteLater()
    for k in settings.DEFAULTS:
        store.remove(settings.PREFIX + k)
        if k in saved:
            store.setValue(settings.PREFIX + k, saved[k])


def _predict(dock, qtbot, species: str):
    dock.species_edit.setText(species)
    task = dock.predict_canvas_extent()
    assert task is not None
    qtbot.waitUntil(lambda: dock.task is None, timeout=120_000)
    assert task.error is None
    return task


def _value_matches_runtime(path, bundle, species_index, row, col, crs_to_lonlat=None):  # noqa: F811
    data, info = read_raster(path)
    x, y = pixel_centre(info["gt"], row, col)
    lon, lat = (x, y) if crs_to_lonlat is None else crs_to_lonlat(x, y)
    ref = runtime.Predictor(bundle).predict_points(np.array([[lon, lat]]), [species_index])[0, 0]
    assert data[0, row, col] == pytest.approx(float(ref), abs=bundle_prob_atol(bundle, [(lon, lat)], species_index))


def _tree_ids(group):
    return [child.layerId() for child in group.children() if QgsLayerTree.isLayer(child)]


# ---- layers a reader can tell apart --------------------------------------------------------------
def test_predicting_a_species_again_replaces_its_layer_in_place(dock, qtbot, bundle, qgis_canvas):  # noqa: F811
    project = QgsProject.instance()
    root = project.layerTreeRoot()
    _predict(dock, qtbot, "sp002")
    layer = dock.prediction_layer()
    first_file = Path(layer.source())
    assert first_file.parent == dock.out_dir and layer.name() == "Species number2 · test_model"
    # the user renames it and drags it out of the group, below a layer of their own
    points = QgsVectorLayer("Point?crs=EPSG:4326", "my points", "memory")
    project.addMapLayer(points, False)
    root.insertLayer(0, points)
    node = root.findLayer(layer.id())
    root.insertChildNode(1, node.clone())
    node.parent().removeChildNode(node)
    layer.setName("my red maple")
    dock.opacity_slider.setValue(55)
    try:
        qgis_canvas.setExtent(QgsRectangle(-95, 28, -85, 38))  # pan and predict again
        _predict(dock, qtbot, "sp002")
        assert dock.prediction_layer() is layer and len(dock.prediction_layers()) == 1
        assert layer.name() == "my red maple" and root.children()[1].layerId() == layer.id()  # same place
        assert root.findLayer(layer.id()).isVisible()
        visible = qgis_canvas.mapSettings().visibleExtent()
        assert layer.extent().xMinimum() == pytest.approx(visible.xMinimum())
        assert layer.extent().yMaximum() == pytest.approx(visible.yMaximum())
        assert layer.renderer().opacity() == pytest.approx(0.55)
        assert not first_file.exists()  # the replaced map's file is cleaned at once
        assert sorted(p.name for p in dock.out_dir.glob("*.tif")) == [Path(layer.source()).name]
        _value_matches_runtime(layer.source(), bundle, 2, layer.height() // 2, layer.width() // 3)
        assert dock.status_label.text().startswith("Updated my red maple (")
    finally:
        project.removeMapLayer(points.id())


def test_several_species_give_one_layer_each_shown_one_at_a_time(dock, qtbot, bundle):  # noqa: F811
    project = QgsProject.instance()
    dock.opacity_slider.setValue(70)
    task = _predict(dock, qtbot, "sp001, sp003")
    first = [project.mapLayer(i) for i in dock.layer_ids]
    assert [lyr.name() for lyr in first] == ["Species number1 · test_model", "Species number3 · test_model"]
    assert [lyr.bandCount() for lyr in first] == [1, 1] and len(task.files) == 2
    for lyr, index in zip(first, (1, 3)):  # each file holds its own species
        _value_matches_runtime(lyr.source(), bundle, index, lyr.height() // 2, lyr.width() // 2)
    group = prediction_layers.prediction_group()
    assert group.name() == "SINR predictions" and group.isMutuallyExclusive()
    assert project.layerTreeRoot().children()[0] is group  # on top of the user's layers
    assert _tree_ids(group) == dock.layer_ids
    assert [root_node.itemVisibilityChecked() for root_node in group.children()] == [True, False]
    assert "One layer per species" in dock.status_label.text()

    _predict(dock, qtbot, "sp004")
    assert _tree_ids(group) == [dock.layer_id, *(lyr.id() for lyr in first)]
    assert [n.itemVisibilityChecked() for n in group.children()] == [True, False, False]  # never stacked
    dock.opacity_slider.setValue(30)  # the slider drives every dock prediction layer
    assert [lyr.renderer().opacity() for lyr in dock.prediction_layers()] == pytest.approx([0.3] * 3)


def test_another_models_map_of_the_same_species_is_its_own_layer(dock, qtbot, tmp_path):
    _predict(dock, qtbot, "sp001")
    first = dock.prediction_layer()
    make_bundle(tmp_path / "oak_model.sinr", n_species=6, width=16, depth=1, seed=9)
    assert dock.choose_model(str(tmp_path / "oak_model.sinr"))
    _predict(dock, qtbot, "sp001")
    second = dock.prediction_layer()
    assert second.id() != first.id() and second.name() == "Species number1 · oak_model"
    assert {lyr.id() for lyr in dock.prediction_layers()} == {first.id(), second.id()}
    assert Path(first.source()).is_file() and Path(second.source()).is_file()


def test_dock_maps_live_in_the_managed_folder_and_are_cleaned(dock, qtbot, managed_root):
    project = QgsProject.instance()
    _predict(dock, qtbot, "sp001")
    removed = dock.prediction_layer()
    removed_file = Path(removed.source())
    assert dock.out_dir.parent == managed_root
    project.removeMapLayer(removed.id())
    _predict(dock, qtbot, "sp002, sp003")
    kept = [Path(lyr.source()) for lyr in dock.prediction_layers()]
    assert not removed_file.exists()  # a removed layer's map goes at the next prediction
    assert sorted(p.name for p in dock.out_dir.glob("*.tif")) == sorted(p.name for p in kept) == \
        ["2_sp002.tif", "2_sp003.tif"]
    session = dock.out_dir
    dock.shutdown()  # plugin unload: what the layers show stays, the lock is released
    assert all(p.is_file() for p in kept)
    project.removeMapLayers([lyr.id() for lyr in dock.prediction_layers()])
    prediction_folder.remove_stale_sessions(prediction_layers.layer_sources())  # the next start
    assert not session.exists()


# ---- Zoom Full: a view larger than the world -----------------------------------------------------
def test_zoom_full_beyond_the_poles_is_predicted_on_the_globe_with_a_note(dock, qtbot, bundle,  # noqa: F811
                                                                          qgis_iface, monkeypatch):
    # Zoom Full on a world layer in a square canvas: the view reaches latitude 180
    view = MapView("EPSG:4326", QSize(200, 200), QgsRectangle(-180, -90, 180, 90))
    assert view.settings.visibleExtent() == QgsRectangle(-180, -180, 180, 180)
    monkeypatch.setattr(dock, "canvas", view)
    _predict(dock, qtbot, "sp002")
    layer = dock.prediction_layer()
    data, info = read_raster(layer.source())
    assert info["size"] == (200, 200) and info["gt"] == pytest.approx((-180, 1.8, 0, 180, 0, -1.8))
    # centre latitudes 179.1 .. -179.1: rows 0-49 and 150-199 lie beyond the poles
    assert np.isnan(data[0, :50]).all() and np.isnan(data[0, 150:]).all() and np.isfinite(data[0, 50:150]).all()
    _value_matches_runtime(layer.source(), bundle, 2, 50, 100)  # (0.9 E, 89.1 N): next to the pole
    note = "50 % of the map view lies off the globe (beyond the poles); those pixels are left empty (nodata)."
    assert note in dock.status_label.text()
    assert any(note in m for m in qgis_iface.messageBar().get_messages(Qgis.Info))


def test_web_mercator_view_past_the_edge_of_the_world(dock, qtbot, bundle, monkeypatch):  # noqa: F811
    merc = QgsCoordinateReferenceSystem("EPSG:3857")
    monkeypatch.setattr(dock, "canvas", MapView("EPSG:3857", QSize(240, 160), QgsRectangle(-36e6, -12e6, 36e6, 36e6)))
    _predict(dock, qtbot, "sp001")
    layer = dock.prediction_layer()
    data, info = read_raster(layer.source())
    xs = np.array([pixel_centre(info["gt"], 0, c)[0] for c in range(data.shape[2])])
    np.testing.assert_array_equal(np.isfinite(data[0]).all(axis=0), np.abs(xs) < WEB_MERCATOR_HALF_WORLD)
    to_lonlat = QgsCoordinateTransform(merc, QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())

    def lonlat(x, y):
        p = to_lonlat.transform(QgsPointXY(x, y))
        return p.x(), p.y()

    _value_matches_runtime(layer.source(), bundle, 1, 100, 120, lonlat)
    off = 1 - (np.abs(xs) < WEB_MERCATOR_HALF_WORLD).mean()
    assert f"About {off * 100:.0f} % of the map view lies off the globe (outside what EPSG:3857" in \
        dock.status_label.text()


def test_a_view_with_no_part_of_the_globe_starts_nothing(dock, qgis_canvas, qgis_iface):
    qgis_canvas.setExtent(QgsRectangle(0, 100, 10, 110))
    dock.species_edit.setText("sp001")
    assert dock.predict_canvas_extent() is None and dock.task is None
    assert any("whole map view lies off the globe" in m for m in qgis_iface.messageBar().get_messages(Qgis.Warning))


def test_on_qgis_start_page_the_dock_says_to_open_a_map_first(dock, monkeypatch, qgis_iface):
    """A new user presses Predict before any project: the canvas is hidden, 100 x 30 pixels, with no
    extent. One message says what to do; nothing starts (no 98 x 28 map of nowhere)."""
    monkeypatch.setattr(dock, "canvas", MapView("EPSG:4326", QSize(98, 28), QgsRectangle()))
    dock.species_edit.setText("sp001")
    assert dock.predict_canvas_extent() is None and dock.task is None
    assert dock.status_label.text() == (
        "The map shows no area yet (QGIS's start page is open): create or open a project, or add a layer, "
        "zoom to the area you want, then try again.")
    assert qgis_iface.messageBar().get_messages(Qgis.Warning)[-1].endswith(dock.status_label.text())


def test_zoom_full_on_a_wide_canvas_maps_each_meridian_once(dock, qtbot, bundle, monkeypatch):  # noqa: F811
    view = MapView("EPSG:4326", QSize(250, 90), QgsRectangle(-180, -90, 180, 90))
    assert view.settings.visibleExtent() == QgsRectangle(-250, -90, 250, 90)
    monkeypatch.setattr(dock, "canvas", view)
    _predict(dock, qtbot, "sp003")
    data, info = read_raster(dock.prediction_layer().source())
    assert info["size"] == (250, 90) and info["gt"] == pytest.approx((-250, 2, 0, 90, 0, -2))
    # column centres -249 .. 249: only -179 .. 179 (columns 35-214) are drawn, not a second Asia and America
    on = np.isfinite(data[0]).all(axis=0)
    assert on[35:215].all() and not on[:35].any() and not on[215:].any()
    _value_matches_runtime(dock.prediction_layer().source(), bundle, 3, 45, 36)  # (-177, -1)
    assert "28 % of the map view lies off the globe (past 180 degrees of longitude" in dock.status_label.text()


def test_the_bundled_models_maps_are_named_by_species_alone(dock, qtbot):
    assert dock.choose_model("")  # the bundled model
    _predict(dock, qtbot, "Quercus alba")
    assert dock.prediction_layer().name() == "Quercus alba"


def test_a_managed_folder_that_cannot_be_made_is_reported_and_starts_nothing(dock, qgis_iface, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    dock.predictions = prediction_folder.PredictionFolder(blocker / "root")
    dock.species_edit.setText("sp001")
    assert dock.predict_canvas_extent() is None and dock.task is None
    assert any("Cannot create a folder for the dock's maps" in m
               for m in qgis_iface.messageBar().get_messages(Qgis.Warning))
