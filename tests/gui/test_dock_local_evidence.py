"""The dock's "Use local evidence": hidden for a model without local evidence, shown and ticked for one
with it; the map and "What lives here?" give the SINR logit plus the stored offsets when ticked, pure
SINR when not, and toggling it redraws the same layer with the other values."""
from __future__ import annotations

import re

import numpy as np
import processing
import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsProject, QgsRectangle
from qgis.PyQt.QtCore import QSize, Qt

from sinr_qgis.core import network
from sinr_qgis.core.metrics import sigmoid
from sinr_qgis.core.point_context import MIN_SCORE
from sinr_qgis.gui.dock import SinrDock
from tests.factories import fixture_bundle
from tests.helpers.evaluate_helpers import ranges_layer
from tests.helpers.local_evidence_bundles import le_bundle
from tests.helpers.map_view import MapView
from tests.helpers.prediction_helpers import read_raster, sinr_provider  # noqa: F401
from tests.helpers.settings_helpers import restore_settings  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401
from tests.tolerances import bundle_prob_atol, f32_atol, prob_atol

BOX = (-97.0, 34.0, -87.0, 44.0)  # sp001's records: its offsets vary in there, the floor elsewhere


@pytest.fixture
def dock(qgis_iface, qgis_canvas, restore_settings, isolated_model_list):  # noqa: F811
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    qgis_canvas.setExtent(QgsRectangle(-100, 30, -80, 46))
    d = SinrDock(qgis_iface)
    yield d
    d.canvas = qgis_canvas
    d.compare_panel.remove_outline()
    QgsProject.instance().removeAllMapLayers()
    d.here_button.setChecked(False)
    d.deleteLater()


@pytest.fixture
def model(tmp_path):
    return le_bundle(tmp_path / "le.sinr", {1: BOX})


def _expected(bundle, ll: np.ndarray, species: list[int]) -> tuple[np.ndarray, np.ndarray, float]:
    """(with local evidence, pure SINR) probabilities [N, S] from core.network + core.local_evidence,
    and the tolerance: float32 network paths plus the float32 rounding of logit + offset."""
    emb = network.embed(bundle.weights, bundle.encoding, ll.astype(np.float32), None,
                        frequencies=bundle.frequencies, classes=bundle.covariate_classes)
    pure = emb.astype(np.float64) @ bundle.head[species].T.astype(np.float64)
    offsets = bundle.local_evidence.offsets(ll, np.array(species)).astype(np.float64)
    tol = bundle_prob_atol(bundle, ll, species) + prob_atol(f32_atol(pure + offsets))
    return sigmoid(pure + offsets), sigmoid(pure), tol


def test_the_box_is_shown_only_for_a_model_with_local_evidence(dock, model, tmp_path):
    assert dock.choose_model(str(fixture_bundle(tmp_path / "plain.sinr").path))
    assert dock.local_evidence_check.isHidden() and not dock.local_evidence_check.isEnabled()
    assert dock.point_predictor.local_evidence is None
    assert dock.choose_model(str(model.path))
    assert not dock.local_evidence_check.isHidden() and dock.local_evidence_check.isEnabled()
    assert dock.local_evidence_check.isChecked() and dock.local_evidence_check.text() == "Use local evidence"
    assert dock.point_predictor.local_evidence is dock.bundle.local_evidence
    assert dock.grid_predictor.local_evidence is dock.bundle.local_evidence


def _predict(dock, qtbot):
    # 1-degree pixels over the Midwest (an offscreen canvas keeps a stale output size)
    dock.canvas = MapView("EPSG:4326", QSize(20, 16), QgsRectangle(-100, 30, -80, 46))
    task = dock.predict_canvas_extent()
    assert task is not None
    qtbot.waitUntil(lambda: dock.task is None, timeout=60_000)
    assert task.error is None
    return task


def test_toggling_redraws_the_map_with_or_without_the_offsets(dock, model, qtbot, monkeypatch):
    from sinr_qgis.core import products
    from sinr_qgis.qgis_bridge import prediction_layers

    monkeypatch.setattr(products, "PREVIEW_MIN_PIXELS", 1)  # a coarse preview first, from the preview predictor
    previews = {}
    real = prediction_layers.show_prediction

    def record(path, *args, **kwargs):
        if "preview" in str(path):  # deleted once the full map replaces it
            previews[str(path)] = read_raster(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(prediction_layers, "show_prediction", record)
    assert dock.choose_model(str(model.path))
    dock.mask_check.setChecked(False)
    dock.species_edit.setText("sp001")
    lons, lats = -100 + 0.5 + np.arange(20), 46 - 0.5 - np.arange(16)
    ll = np.array([(x, y) for y in lats for x in lons])
    with_le, pure, tol = _expected(dock.bundle, ll, [1])
    places = [QgsPointXY(*p) for p in ll]
    rendered = {}
    for on in (False, True):  # off first: the preview predictor, made with the box ticked, follows it
        dock.local_evidence_check.setChecked(on)
        task = _predict(dock, qtbot)
        data, info = read_raster(task.files[0])
        np.testing.assert_allclose(data[0].ravel(), (with_le if on else pure)[:, 0], rtol=0, atol=tol)
        assert info["metadata"]["LOCAL_EVIDENCE"] == (dock.bundle.local_evidence.describe() if on else
                                                      "off (pure SINR)")
        layer = dock.prediction_layer()
        rendered[on] = (layer.id(), np.array([layer.dataProvider().sample(p, 1)[0] for p in places]))
    assert rendered[True][0] == rendered[False][0]  # the same layer, redrawn
    (coarse, info), = previews.values()  # the second map's embedding was cached: no preview
    assert coarse.shape == (1, 2, 2) and info["gt"][1] == 10.0 and info["gt"][5] == -8.0
    centres = np.array([(-95.0, 42.0), (-85.0, 42.0), (-95.0, 34.0), (-85.0, 34.0)])
    _, coarse_pure, coarse_tol = _expected(dock.bundle, centres, [1])
    np.testing.assert_allclose(coarse.ravel(), coarse_pure[:, 0], rtol=0, atol=coarse_tol)
    np.testing.assert_allclose(rendered[True][1], with_le[:, 0], rtol=0, atol=tol)
    np.testing.assert_allclose(rendered[False][1], pure[:, 0], rtol=0, atol=tol)
    assert np.abs(rendered[True][1] - rendered[False][1]).max() > 0.3


def _listed(dock) -> list[tuple[str, float]]:
    items = [dock.species_list.item(i).text() for i in range(dock.species_list.count())]
    return [(re.search(r"sp\d{3}", t).group(0), float(t.rsplit(" ", 1)[1])) for t in items]


def test_what_lives_here_follows_the_switch(dock, model):
    assert dock.choose_model(str(model.path))
    dock.top_k.setValue(6)
    point = np.array([[-92.3, 39.2]])  # Missouri, inside sp001's window
    with_le, pure, tol = _expected(dock.bundle, point, list(range(6)))
    dock.here_button.setChecked(True)
    dock.map_tool.canvasClicked.emit(QgsPointXY(*point[0]), Qt.LeftButton)
    lists = {True: _listed(dock)}
    dock.local_evidence_check.setChecked(False)  # the marked point is ranked again at once
    lists[False] = _listed(dock)
    for on, probs in ((True, with_le[0]), (False, pure[0])):
        order = [j for j in np.argsort(-probs, kind="stable") if probs[j] >= MIN_SCORE]
        assert [code for code, _ in lists[on]] == [f"sp{j:03d}" for j in order], on
        # the list shows 3 decimals
        assert [v for _, v in lists[on]] == pytest.approx([probs[j] for j in order], abs=5e-4 + tol)
    assert lists[True] != lists[False]


def test_compare_scores_as_the_switch_says(dock, model, qgis_canvas, sinr_provider, qtbot):  # noqa: F811
    """The panel's AP is sinr:evaluate_ranges' on the same grid with LOCAL_EVIDENCE as the box says."""
    layer = ranges_layer()
    QgsProject.instance().addMapLayer(layer)
    assert dock.choose_model(str(model.path))
    dock.species_edit.setText("sp001")
    panel = dock.compare_panel
    panel.layer_combo.setLayer(layer)
    panel.field_combo.setField("taxon")
    aps = {}
    for on in (True, False):
        dock.local_evidence_check.setChecked(on)
        task = panel.compare()
        assert task is not None and (task.predictor.local_evidence is not None) == on
        qtbot.waitUntil(lambda: panel.task is None, timeout=60_000)
        assert task.error is None
        grid, aps[on] = panel.comparison.grid, panel.comparison.evaluation.ap_percent
        ext = grid.extent
        result = processing.run("sinr:evaluate_ranges", {
            "MODEL": str(model.path), "RANGES": layer, "SPECIES_FIELD": "taxon", "PIXEL_SIZE": grid.xres,
            "EXTENT": f"{ext[0]},{ext[2]},{ext[1]},{ext[3]} [EPSG:4326]", "AREA_WEIGHTED": True,
            "LOCAL_EVIDENCE": on, "OUTPUT_TABLE": "memory:"})
        rows = {f["code"]: f["ap"] for f in result["OUTPUT_TABLE"].getFeatures()}
        # the same code, grid and process: equal but for the table's rounding of AP to 4 decimals
        assert rows["sp001"] == pytest.approx(aps[on], abs=1e-4)
    assert abs(aps[True] - aps[False]) > 1
