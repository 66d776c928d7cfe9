"""The dock with the bundled model's data footprint: its map (and preview) leaves Cuba and
Hispaniola empty unless "Show extrapolation" is ticked, whichever score is mapped (local evidence,
the default, or pure SINR), and "What lives here?" still lists the species at a point outside, with
a note, which it keeps when local evidence leaves no species above the list's minimum there."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsProject, QgsRectangle
from qgis.PyQt.QtCore import QSize, Qt

from sinr_qgis.core import network
from sinr_qgis.core.metrics import sigmoid
from sinr_qgis.core.point_context import MIN_SCORE
from sinr_qgis.core.runtime import Predictor
from sinr_qgis.gui.dock import SinrDock
from tests.helpers.map_view import MapView
from tests.helpers.prediction_helpers import read_raster
from tests.helpers.settings_helpers import restore_settings  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401
from tests.tolerances import bundle_prob_atol, f32_atol, prob_atol

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


def _centre(gt, lon: float, lat: float) -> tuple[float, float]:
    """The centre of the pixel of a raster with geotransform ``gt`` that holds (lon, lat)."""
    col, row = int((lon - gt[0]) / gt[1]), int((lat - gt[3]) / gt[5])
    return gt[0] + (col + 0.5) * gt[1], gt[3] + (row + 0.5) * gt[5]


def _expected(bundle, lon: float, lat: float, local_evidence: bool = True) -> tuple[float, float]:
    """Red maple's probability at (lon, lat) from core.network (+ core.local_evidence's offsets), and
    its tolerance: float32 network paths plus the float32 rounding of logit + offset."""
    ll = np.array([[lon, lat]])
    acru = [bundle.find_species("acerrubr").index]
    emb = network.embed(bundle.weights, bundle.encoding, ll.astype(np.float32), frequencies=bundle.frequencies)
    logit = emb.astype(np.float64) @ bundle.head[acru].T.astype(np.float64)
    if local_evidence:
        logit = logit + bundle.local_evidence.offsets(ll, np.array(acru)).astype(np.float64)
    return float(sigmoid(logit)[0, 0]), bundle_prob_atol(bundle, ll, acru) + prob_atol(f32_atol(logit))


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
    assert dock.local_evidence_check.isChecked()  # the default score: SINR plus local evidence
    task = _predict(dock, qtbot)
    gt = read_raster(task.files[0])[1]["gt"]
    miami = _value(task, *MIAMI)  # read now: the next map replaces this file
    expected, tol = _expected(dock.bundle, *_centre(gt, *MIAMI))
    assert task.mask_footprint and np.isnan(_value(task, *HAVANA)) and miami == pytest.approx(expected, abs=tol)
    assert "lie outside the model's data footprint and were left empty." in dock.status_label.text()
    dock.extrapolation_check.setChecked(True)
    shown = _predict(dock, qtbot)
    expected, tol = _expected(dock.bundle, *_centre(gt, *HAVANA))
    assert not shown.mask_footprint and _value(shown, *HAVANA) == pytest.approx(expected, abs=tol)
    assert expected < 1e-5  # local evidence: no red maple record anywhere near Havana
    # the same pixel from two runs encoding other pixel sets: float32 path rounding of a probability
    assert _value(shown, *MIAMI) == pytest.approx(miami, abs=_expected(dock.bundle, *MIAMI)[1] + 1e-6)
    assert "outside the model's data footprint" not in dock.status_label.text()
    # pure SINR: the network's own extrapolation over Cuba (the colours the issue saw), and left
    # empty like the default score's once extrapolation is hidden again
    dock.local_evidence_check.setChecked(False)
    pure = _predict(dock, qtbot)
    expected, tol = _expected(dock.bundle, *_centre(gt, *HAVANA), local_evidence=False)
    assert _value(pure, *HAVANA) == pytest.approx(expected, abs=tol) and expected > 0.25
    dock.extrapolation_check.setChecked(False)
    hidden = _predict(dock, qtbot)
    assert hidden.mask_footprint and np.isnan(_value(hidden, *HAVANA)) and not np.isnan(_value(hidden, *MIAMI))


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
    gt = info["gt"]
    row, col = int((CAMAGUEY[1] - gt[3]) / gt[5]), int((CAMAGUEY[0] - gt[0]) / gt[1])
    expected, tol = _expected(dock.bundle, *_centre(gt, *CAMAGUEY))  # the default score, local evidence on
    assert np.isnan(masked[0, row, col]) and shown[0, row, col] == pytest.approx(expected, abs=tol)


def _click(dock, lon: float, lat: float) -> list[str]:
    dock.map_tool.canvasClicked.emit(QgsPointXY(lon, lat), Qt.LeftButton)
    return [dock.species_list.item(i).text() for i in range(dock.species_list.count())]


def test_what_lives_here_lists_the_species_outside_with_a_note(dock):
    dock.here_button.setChecked(True)
    km = float(dock.bundle.footprint.distance.sample(np.array([HAVANA]))[0])
    assert 290 < km < 310  # tests/training/test_bundled_footprint.py checks it against brute force
    note = (f"Outside the model's data footprint: the 10th nearest training location is {km:.0f} km away (the "
            "footprint reaches 187 km), so these scores are extrapolation.")
    # local evidence (the default): no record of any species near Havana, so none reaches the list's
    # minimum (the best, Caribbean pine, 0.0099); the label still says why the scores mean little
    best = Predictor(dock.bundle, "numpy").predict_points(np.array([HAVANA])).max()
    assert best < MIN_SCORE
    assert _click(dock, *HAVANA) == []
    assert dock.here_label.text() == f"At lat 23.1000, lon -82.3800: no species scores above 0.01 here. {note}"
    # pure SINR lists its extrapolated species there, with the same note
    dock.local_evidence_check.setChecked(False)
    assert _click(dock, *HAVANA) != []
    assert dock.here_label.text().startswith(f"At lat 23.1000, lon -82.3800 (relative score, 0-1): {note}")
    dock.local_evidence_check.setChecked(True)
    assert _click(dock, *MIAMI) != []
    assert "footprint" not in dock.here_label.text()
