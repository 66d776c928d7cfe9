"""Progressive rendering in the dock: a coarse preview of the canvas first, in the species' own
layers, replaced in place by the full map, which is exactly a one-pass prediction; a cancel at either
stage leaves the layers and files as they were."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsMapSettings, QgsProject, QgsRectangle, QgsSettings
from qgis.PyQt.QtCore import QSize

from sinr_qgis.core import products
from sinr_qgis.core.errors import GridError
from sinr_qgis.core.runtime import Predictor
from sinr_qgis.gui.dock import SinrDock
from sinr_qgis.qgis_bridge import prediction_layers
from sinr_qgis.toolbelt import prediction_folder, settings
from tests.helpers.prediction_helpers import bundle, model_file, read_raster  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401

CANVAS = (240, 160)  # the map view's output size, so the full map is 240 x 160 pixels
PREVIEW = (30, 20)   # 1/8 of it along each side


class _MapView:
    """What the dock reads of the canvas: its map settings (an offscreen canvas keeps a stale size)."""

    def __init__(self, extent: QgsRectangle) -> None:
        self.settings = QgsMapSettings()
        self.settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
        self.settings.setOutputSize(QSize(*CANVAS))
        self.settings.setExtent(extent)

    def mapSettings(self) -> QgsMapSettings:
        return self.settings


def _pan(dock) -> None:
    dock.canvas = _MapView(QgsRectangle(-95, 28, -85, 38))


def _remove_dock_predictions() -> None:
    project = QgsProject.instance()
    project.removeMapLayers([lyr.id() for lyr in prediction_layers.dock_prediction_layers()])
    for group in project.layerTreeRoot().findGroups(True):
        if group.customProperty(prediction_layers.GROUP_PROPERTY):
            group.parent().removeChildNode(group)


@pytest.fixture
def dock(qgis_iface, qgis_canvas, model_file, isolated_model_list, tmp_path, monkeypatch):  # noqa: F811
    """A dock on the 6-species test model whose canvas map (240 x 160) is large enough for a preview."""
    monkeypatch.setattr(prediction_folder, "predictions_root", lambda: tmp_path / "managed")
    monkeypatch.setattr(products, "PREVIEW_MIN_PIXELS", 1)
    store = QgsSettings()
    saved = {k: store.value(settings.PREFIX + k) for k in settings.DEFAULTS if store.contains(settings.PREFIX + k)}
    _remove_dock_predictions()
    d = SinrDock(qgis_iface)
    assert d.choose_model(str(model_file))
    d.mask_check.setChecked(False)
    d.canvas = _MapView(QgsRectangle(-80, 35, -70, 45))
    yield d
    _remove_dock_predictions()
    d.canvas = qgis_canvas
    d.shutdown()
    d.deleteLater()
    for k in settings.DEFAULTS:
        store.remove(settings.PREFIX + k)
        if k in saved:
            store.setValue(settings.PREFIX + k, saved[k])


@pytest.fixture
def shown(monkeypatch):
    """Every ``show_prediction`` call of the dock, as it happened: the file's name, the layer, its
    size then, the file's values then (a preview file is deleted afterwards) and how many dock
    prediction layers the project had then."""
    calls = []
    real = prediction_layers.show_prediction

    def record(path, *args, **kwargs):
        layer, old = real(path, *args, **kwargs)
        calls.append({"name": Path(path).name, "layer": layer.id(), "size": (layer.width(), layer.height()),
                      "raster": read_raster(path), "layers": len(prediction_layers.dock_prediction_layers())})
        return layer, old

    monkeypatch.setattr(prediction_layers, "show_prediction", record)
    return calls


def _predict(dock, qtbot, species: str):
    dock.species_edit.setText(species)
    task = dock.predict_canvas_extent()
    assert task is not None
    qtbot.waitUntil(lambda: dock.task is None, timeout=120_000)
    return task


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != prediction_folder.LOCK_NAME)


def _one_pass(bundle, task, path: Path) -> list[Path]:  # noqa: F811
    """The same map predicted in one pass, without a preview, by a fresh predictor."""
    return products.predict_to_geotiff(Predictor(bundle), task.grid, task.species, path,
                                       mask_ocean=task.mask_ocean, one_file_per_species=True).paths


# ---- preview, then the full map in the same layer ------------------------------------------------
def test_the_preview_appears_first_and_the_full_map_replaces_it_in_place(dock, qtbot, bundle, shown,  # noqa: F811
                                                                         tmp_path, monkeypatch):
    progress = []
    real_progress = SinrDock._task_progress
    monkeypatch.setattr(SinrDock, "_task_progress", lambda self, p: (progress.append(p), real_progress(self, p)))
    task = _predict(dock, qtbot, "sp002")
    assert task.error is None
    assert [(c["name"], c["size"], c["layers"]) for c in shown] == [("preview-1.tif", PREVIEW, 1),
                                                                     ("1.tif", CANVAS, 1)]
    layer = dock.prediction_layer()
    assert shown[0]["layer"] == shown[1]["layer"] == layer.id()  # one layer: its data replaced in place
    assert Path(layer.source()) == task.files[0] == dock.out_dir / "1.tif"
    # the preview covered exactly the full map's extent, 8 times coarser
    (coarse, coarse_info), (_, full_info) = shown[0]["raster"], shown[1]["raster"]
    assert coarse.shape == (1, 20, 30) and np.isfinite(coarse).all()
    assert coarse_info["gt"] == pytest.approx((full_info["gt"][0], full_info["gt"][1] * 8, 0,
                                               full_info["gt"][3], 0, full_info["gt"][5] * 8))
    # the full map is bit for bit the one-pass prediction: values, georeferencing, the file itself
    ref = _one_pass(bundle, task, tmp_path / "one_pass.tif")[0]
    ref_data, ref_info = read_raster(ref)
    np.testing.assert_array_equal(read_raster(task.files[0])[0], ref_data)
    assert read_raster(task.files[0])[1]["gt"] == ref_info["gt"]
    assert task.files[0].read_bytes() == ref.read_bytes()
    # no preview file left, the progress bar full, the status about the full map
    assert _files(dock.out_dir) == ["1.qml", "1.tif"]
    # one progress bar for both stages: the preview's share first (30 x 20 of 30 x 20 + 240 x 160 pixels)
    assert progress == sorted(progress) and progress[-1] == 100
    assert min(p for p in progress if p > 0) <= 100 * 600 / (600 + 38400) + 1e-9
    assert dock.progress.value() == 100
    assert dock.status_label.text().startswith("Added Species number2 · test_model (240 x 160 pixels).")


def test_a_preview_of_several_species_keeps_one_layer_each(dock, qtbot, bundle, shown, tmp_path):  # noqa: F811
    _predict(dock, qtbot, "sp001")
    first = dock.prediction_layer()
    _pan(dock)  # then two species: one known, one new
    shown.clear()
    task = _predict(dock, qtbot, "sp001, sp004")
    assert [(c["name"], c["size"], c["layers"]) for c in shown] == [
        ("preview-2_sp004.tif", PREVIEW, 2), ("preview-2_sp001.tif", PREVIEW, 2),
        ("2_sp004.tif", CANVAS, 2), ("2_sp001.tif", CANVAS, 2)]
    assert dock.layer_ids[0] == first.id() and [c["layer"] for c in shown[2:]] == dock.layer_ids[::-1]
    assert len(dock.prediction_layers()) == 2
    for made, ref in zip(task.files, _one_pass(bundle, task, tmp_path / "one_pass.tif")):
        np.testing.assert_array_equal(read_raster(made)[0], read_raster(ref)[0])
    assert _files(dock.out_dir) == ["2_sp001.qml", "2_sp001.tif", "2_sp004.qml", "2_sp004.tif"]
    # one species was new: "Added", not "Updated" (its layer first showed the preview)
    assert dock.status_label.text().startswith("Added Species number1 · test_model, Species number4")


def test_a_further_species_on_the_same_view_needs_no_preview(dock, qtbot, shown):
    _predict(dock, qtbot, "sp001")
    encoded = dock.grid_predictor.locations_encoded, dock.preview_predictor.locations_encoded
    shown.clear()
    _predict(dock, qtbot, "sp003")  # the full map's embedding is cached: only its head product is left
    assert [c["name"] for c in shown] == ["2.tif"]
    assert (dock.grid_predictor.locations_encoded, dock.preview_predictor.locations_encoded) == encoded
    _pan(dock)  # a new view: a preview again
    shown.clear()
    _predict(dock, qtbot, "sp003")
    assert [c["name"] for c in shown] == ["preview-3.tif", "3.tif"]


def test_a_preview_with_nothing_to_show_is_skipped(dock, qtbot, shown, monkeypatch):
    real = products.predict_to_geotiff

    def coarse_grid_all_at_sea(predictor, grid, *args, **kwargs):
        if grid.width == PREVIEW[0]:  # e.g. the coarse pixels all miss the one island of the view
            raise GridError("Every pixel of the extent is at sea.")
        return real(predictor, grid, *args, **kwargs)

    monkeypatch.setattr(products, "predict_to_geotiff", coarse_grid_all_at_sea)
    task = _predict(dock, qtbot, "sp001")
    assert task.error is None and [c["name"] for c in shown] == ["1.tif"]
    assert _files(dock.out_dir) == ["1.qml", "1.tif"]


# ---- cancel at either stage --------------------------------------------------------------------
def test_a_cancel_while_the_preview_is_computed_changes_nothing(dock, qtbot, shown, monkeypatch):
    real = products.predict_to_geotiff

    def cancel_at_the_preview(predictor, grid, *args, **kwargs):
        if grid.width == PREVIEW[0]:
            dock.task.cancel()  # the user presses Cancel as the preview starts
        return real(predictor, grid, *args, **kwargs)

    monkeypatch.setattr(products, "predict_to_geotiff", cancel_at_the_preview)
    layers_before = set(QgsProject.instance().mapLayers())
    task = _predict(dock, qtbot, "sp001, sp002")
    assert task.preview.files == [] and task.files == []
    assert shown == [] and set(QgsProject.instance().mapLayers()) == layers_before
    assert _files(dock.out_dir) == []
    assert dock.status_label.text() == "Prediction cancelled." and dock.progress.value() == 0


def test_a_cancel_after_the_preview_restores_the_maps_before(dock, qtbot, shown, monkeypatch):
    _predict(dock, qtbot, "sp001")
    old = dock.prediction_layer()
    old_file, old_size = old.source(), (old.width(), old.height())
    _predict(dock, qtbot, "sp005")  # now the visible one; sp001's layer is unticked
    ticked = prediction_layers.checked_predictions()
    assert ticked == {dock.layer_id}
    layers_before, files_before = set(QgsProject.instance().mapLayers()), _files(dock.out_dir)
    # the user pans, predicts sp001 (known) and sp002 (new), and cancels once the preview shows
    preview_shown = threading.Event()
    real_show, real_predict = SinrDock._show_preview, products.predict_to_geotiff

    def show_then_cancel(self):
        real_show(self)
        self.cancel()
        preview_shown.set()

    def full_map_after_the_preview(predictor, grid, *args, **kwargs):
        if grid.width == CANVAS[0]:
            assert preview_shown.wait(60)
        return real_predict(predictor, grid, *args, **kwargs)

    monkeypatch.setattr(SinrDock, "_show_preview", show_then_cancel)
    monkeypatch.setattr(products, "predict_to_geotiff", full_map_after_the_preview)
    _pan(dock)
    shown.clear()
    task = _predict(dock, qtbot, "sp001, sp002")
    assert [(c["name"], c["size"]) for c in shown] == [("preview-3_sp002.tif", PREVIEW),
                                                       ("preview-3_sp001.tif", PREVIEW)]
    assert task.files == [] and dock.status_label.text() == "Prediction cancelled."
    # as before: sp001's layer reads its old map again, sp002's new layer is gone, the same one ticked
    assert set(QgsProject.instance().mapLayers()) == layers_before
    assert old.source() == old_file and (old.width(), old.height()) == old_size
    assert prediction_layers.checked_predictions() == ticked
    assert _files(dock.out_dir) == files_before  # the preview's files are deleted


def test_closing_the_plugin_during_the_preview_undoes_it(dock, qtbot, shown, monkeypatch, qgis_canvas):
    release = threading.Event()
    real_predict = products.predict_to_geotiff

    def full_map_waits(predictor, grid, *args, **kwargs):
        if grid.width == CANVAS[0]:
            release.wait(60)
        return real_predict(predictor, grid, *args, **kwargs)

    monkeypatch.setattr(products, "predict_to_geotiff", full_map_waits)
    dock.species_edit.setText("sp001")
    task = dock.predict_canvas_extent()
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=60_000)  # the preview is on the map
    folder, ended = dock.out_dir, []
    task.taskCompleted.connect(lambda: ended.append("completed"))
    task.taskTerminated.connect(lambda: ended.append("terminated"))
    dock.canvas = qgis_canvas  # the real canvas: unload frees its map tool
    try:
        dock.shutdown()  # plugin unload while the full map is computed
    finally:
        release.set()
    qtbot.waitUntil(lambda: bool(ended), timeout=60_000)
    assert ended == ["terminated"]
    assert prediction_layers.dock_prediction_layers() == []
    assert not folder.exists() or _files(folder) == []
