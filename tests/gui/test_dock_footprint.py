"""The dock with the bundled model's data footprint: its map (and preview) leaves Cuba and
Hispaniola empty unless "Show extrapolation" is ticked, and "What lives here?" still lists the
species at a point outside, with a note."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsProject, QgsRectangle
from qgis.PyQt.QtCore import QSize, Qt

from sinr_qgis.gui.dock import SinrDock
from tests.helpers.map_view import MapView
from tests.helpers.prediction_helpers import read_raster
from tests.helpers.settings_helpers import restore_settings  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401
from tests.tolerances import bundle_prob_atol

HAVANA, MIAMI, CAMAGUEY = (-82.38, 23.10), (-80.22, 25.78), (-77.92, 21.38)


@pytest.fixture
def dock(qgis_iface, qgis_canvas, restore_settings, isolated_model_list):  # noqa: F811
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    qgis_canvas.setExtent(QgsRectangle(-86, 17, -68, 28))
    qgis_iface.messageBar().clear_messages()
    d = SinrDock(qgis_iface)
    assert d.choose_model("")  # the bundled model
    yield d
    d.canvas = qgis_canvas
    for layer_id in d.layer_ids:
        QgsProject.instance().removeMapLayer(layer_id)
    d.here_button.setChecked(False)
    d.deleteLater()


def _value(task, lon: float, lat: float) -> float:
    data, info = read_raster(task.files[0])
    gt = info["gt"]
    return data[0, int((lat - gt[3]) / gt[5]), int((lon - gt[0]) / gt[1])]


def _predict(dock, qtbot):
    # Florida, Cuba and Hispaniola at 0.05 degree (an offscreen canvas keeps a stale output size)
    dock.canvas = MapView("EPSG:4326", QSize(360, 220), QgsRectangle(-86, 17, -68, 28))
    dock.species_edit.setText("Acer rubrum")
    task = dock.predict_canvas_extent()
    assert task is not None
    qtbot.waitUntil(lambda: dock.task is None, timeout=120_000)
    assert task.error is None
    return task


def test_the_map_leaves_the_outside_empty_until_extrapolation_is_shown(dock, qtbot):
    assert not dock.extrapolation_check.isChecked()  # the default, at every start
    task = _predict(dock, qtbot)
    miami = _value(task, *MIAMI)  # read now: the next map replaces this file
    assert task.mask_footprint and np.isnan(_value(task, *HAVANA)) and miami > 0.5
    assert "lie outside the model's data footprint and were left empty." in dock.status_label.text()
    dock.extrapolation_check.setChecked(True)
    shown = _predict(dock, qtbot)
    assert not shown.mask_footprint and _value(shown, *HAVANA) > 0.5  # the warm colours the issue saw
    # the same pixel from two runs encoding other pixel sets: float32 path rounding of a probability
    assert _value(shown, *MIAMI) == pytest.approx(miami, abs=bundle_prob_atol(dock.bundle, [MIAMI], 0) + 1e-6)
    assert "outside the model's data footprint" not in dock.status_label.text()


def test_the_preview_follows_the_same_rule(dock, qtbot, monkeypatch):
    from sinr_qgis.core import products
    from sinr_qgis.qgis_bridge import prediction_layers

    monkeypatch.setattr(products, "PREVIEW_MIN_PIXELS", 1)  # a preview even for this small map
    rasters = {}  # each file as it is shown (a preview's file is deleted afterwards)
    real = prediction_layers.show_prediction

    def record(path, *args, **kwargs):
        rasters[Path(path).name] = read_raster(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(prediction_layers, "show_prediction", record)
    _predict(dock, qtbot)
    dock.extrapolation_check.setChecked(True)  # another view: not the cached one, so a preview again
    _predict(dock, qtbot)
    assert sorted(rasters) == ["1.tif", "2.tif", "preview-1.tif", "preview-2.tif"]
    (masked, info), (shown, _) = rasters["preview-1.tif"], rasters["preview-2.tif"]
    assert masked.shape == (1, 28, 45)  # 8 times coarser
    row, col = int((CAMAGUEY[1] - info["gt"][3]) / info["gt"][5]), int((CAMAGUEY[0] - info["gt"][0]) / info["gt"][1])
    assert np.isnan(masked[0, row, col]) and shown[0, row, col] > 0.5


def _click(dock, lon: float, lat: float) -> list[str]:
    dock.map_tool.canvasClicked.emit(QgsPointXY(lon, lat), Qt.LeftButton)
    return [dock.species_list.item(i).text() for i in range(dock.species_list.count())]


def test_what_lives_here_lists_the_species_outside_with_a_note(dock):
    dock.here_button.setChecked(True)
    assert _click(dock, *HAVANA) != []
    km = float(dock.bundle.footprint.distance.sample(np.array([HAVANA]))[0])
    assert 290 < km < 310  # tests/training/test_bundled_footprint.py checks it against brute force
    assert dock.here_label.text().startswith(
        f"At lat 23.1000, lon -82.3800 (relative score, 0-1): Outside the model's data footprint: the 10th nearest "
        f"training location is {km:.0f} km away (the footprint reaches 187 km), so these scores are extrapolation.")
    assert _click(dock, *MIAMI) != []
    assert "footprint" not in dock.here_label.text()
