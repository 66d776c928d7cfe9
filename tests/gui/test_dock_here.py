"""The dock's "What lives here?": the clicked point is marked, water and points outside the model's data
get a message instead of a confident list, and species under 0.01 are not listed."""
from __future__ import annotations

import numpy as np
import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsRectangle
from qgis.PyQt.QtCore import QSize, Qt

from sinr_qgis.core import landmask, runtime
from sinr_qgis.core.bundle import ModelBundle, Species
from sinr_qgis.core.point_context import MIN_SCORE
from sinr_qgis.gui.dock import SinrDock
from tests.helpers.prediction_helpers import model_file  # noqa: F401
from tests.helpers.settings_helpers import restore_settings  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401

PENNSYLVANIA = (-77.5, 40.8)
MID_ATLANTIC = (-40.0, 35.0)
GERMANY = (10.0, 50.0)


@pytest.fixture
def here_model(model_file, tmp_path):  # noqa: F811
    """The test model with records boxes: species 0-4 in the eastern US, species 5 only in Wyoming
    (like the bundled model's Douglas-fir), and common names."""
    b = ModelBundle.load(model_file)
    east, wyoming = (-90.0, 30.0, -70.0, 45.0), (-111.0, 41.0, -104.0, 45.0)
    b.species = [Species(s.index, s.code, s.name, 200, common_name=f"common {s.index}",
                         record_extent=wyoming if s.index == 5 else east, n_cells=40) for s in b.species]
    return b.write(tmp_path / "boxes.sinr")


@pytest.fixture
def dock(qgis_iface, qgis_canvas, here_model, restore_settings, isolated_model_list):  # noqa: F811
    qgis_canvas.resize(QSize(240, 160))
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    qgis_canvas.setExtent(QgsRectangle(-100, 20, 0, 60))
    d = SinrDock(qgis_iface)
    assert d.choose_model(str(here_model))
    yield d
    d.here_button.setChecked(False)
    d.deleteLater()


def _click(dock, lon: float, lat: float) -> list[str]:
    dock.map_tool.canvasClicked.emit(QgsPointXY(lon, lat), Qt.LeftButton)  # what a left click does
    return [dock.species_list.item(i).text() for i in range(dock.species_list.count())]


def test_the_clicked_point_is_marked_and_the_marker_goes_with_the_tool(dock, qgis_canvas):
    dock.here_button.setChecked(True)
    assert qgis_canvas.mapTool() is dock.map_tool
    _click(dock, *PENNSYLVANIA)
    first = dock.map_tool.marker
    assert first is not None and first.scene() is qgis_canvas.scene()
    assert (first.center().x(), first.center().y()) == PENNSYLVANIA
    _click(dock, -80.0, 35.0)  # a new point moves the mark: one marker on the map
    markers = [i for i in qgis_canvas.scene().items() if type(i).__name__ == "QgsVertexMarker"]
    assert markers == [dock.map_tool.marker] and dock.map_tool.marker.center().x() == -80.0
    dock.here_button.setChecked(False)  # switching the tool off removes the mark
    assert dock.map_tool.marker is None
    assert [i for i in qgis_canvas.scene().items() if type(i).__name__ == "QgsVertexMarker"] == []


def test_on_water_no_species_are_listed(dock, here_model):
    lonlat = np.array([MID_ATLANTIC])
    assert runtime.Predictor(ModelBundle.load(here_model)).predict_points(lonlat, None).max() > MIN_SCORE
    dock.here_button.setChecked(True)
    assert _click(dock, *MID_ATLANTIC) == []
    assert dock.here_label.text().startswith("At lat 35.0000, lon -40.0000: This point is on water (sea or ocean")
    assert dock.map_tool.marker is not None  # the point stays marked: the message is about it


def test_outside_the_models_data_no_species_are_listed(dock):
    dock.here_button.setChecked(True)
    assert _click(dock, *GERMANY) == []
    assert dock.here_label.text() == (
        "At lat 50.0000, lon 10.0000: This point is outside the model's data: the bulk of its training records "
        "lies within longitude -111° to -70° and latitude 30° to 45°. Scores here are guesses far from anything "
        "the model saw: no species are listed.")


def test_a_species_far_from_its_records_is_marked_and_common_names_are_shown(dock, here_model):
    dock.top_k.setValue(6)
    dock.here_button.setChecked(True)
    items = _click(dock, *PENNSYLVANIA)
    probs = runtime.Predictor(ModelBundle.load(here_model)).predict_points(np.array([PENNSYLVANIA]), None)[0]
    order = [j for j in np.argsort(-probs, kind="stable") if probs[j] >= MIN_SCORE]
    assert len(items) == len(order) and 5 in order  # the random model scores every species here
    for rank, (text, j) in enumerate(zip(items, order), start=1):
        far = " (far from most of its records)" if j == 5 else ""  # only the Wyoming species
        assert text == f"{rank}. Species number{j} (sp{j:03d}), common {j}{far}  {probs[j]:.3f}"
    assert "1 species marked “far from most of its records”" in dock.here_label.text()


def test_no_species_above_the_floor_says_so_instead_of_zeros(dock, here_model, tmp_path):
    """Ten species at 0.000 tell nothing: the label says no species scores above 0.01."""
    b = ModelBundle.load(here_model)
    b.weights["head"] = np.full_like(b.weights["head"], -50.0)  # embeddings are >= 0 (ReLU): logits << 0
    low = b.write(tmp_path / "low.sinr")
    assert runtime.Predictor(ModelBundle.load(low)).predict_points(np.array([PENNSYLVANIA]), None).max() < MIN_SCORE
    assert dock.choose_model(str(low))
    dock.here_button.setChecked(True)
    assert _click(dock, *PENNSYLVANIA) == []
    assert dock.here_label.text() == "At lat 40.8000, lon -77.5000: no species scores above 0.01 here."


def test_species_under_the_floor_are_counted_not_listed(dock, here_model, tmp_path, monkeypatch):
    from sinr_qgis.core import products

    b = ModelBundle.load(here_model)
    fake = [products.RankedSpecies(1, b.species[2], 0.9), products.RankedSpecies(2, b.species[0], 0.02),
            products.RankedSpecies(3, b.species[1], 0.009), products.RankedSpecies(4, b.species[3], 0.0)]
    monkeypatch.setattr(products, "ranked_species", lambda *_args, **_kw: [fake])
    dock.top_k.setValue(4)
    dock.here_button.setChecked(True)
    assert _click(dock, *PENNSYLVANIA) == ["1. Species number2 (sp002), common 2  0.900",
                                          "2. Species number0 (sp000), common 0  0.020"]
    assert dock.here_label.text() == ("At lat 40.8000, lon -77.5000 (relative score, 0-1): 2 more of the top 4 "
                                      "score below 0.01.")


def test_a_point_the_model_cannot_score_says_so(dock, monkeypatch):
    from sinr_qgis.core import products

    monkeypatch.setattr(products, "ranked_species", lambda *_args, **_kw: [[]])  # e.g. no covariate value
    dock.here_button.setChecked(True)
    assert _click(dock, *PENNSYLVANIA) == []
    assert dock.here_label.text() == "At lat 40.8000, lon -77.5000: the model gives no score here."


def test_a_model_without_records_boxes_lists_species_as_before(dock, model_file):  # noqa: F811
    """Older bundles store no boxes: nothing is called outside the data (the model does not say)."""
    assert dock.choose_model(str(model_file))
    dock.top_k.setValue(3)
    dock.here_button.setChecked(True)
    items = _click(dock, *GERMANY)
    assert len(items) == 3 and not any("far from" in t for t in items)
    assert dock.here_label.text().startswith("At lat 50.0000, lon 10.0000 (relative score, 0-1):")


def test_another_model_ranks_the_marked_point_again_or_clears_the_list(dock, here_model, model_file):  # noqa: F811
    """The list is the ranking of the model that made it: choosing another model ranks the marked point
    again with the new one (as a new click would), and with no point marked the old list goes."""
    dock.here_button.setChecked(True)
    before = _click(dock, *PENNSYLVANIA)
    assert before and all(", common " in t for t in before)  # here_model's common names
    assert dock.choose_model(str(model_file))  # the same species, without common names
    after = [dock.species_list.item(i).text() for i in range(dock.species_list.count())]
    assert after and not any("common" in t for t in after)
    assert dock.here_label.text().startswith("At lat 40.8000, lon -77.5000 (relative score, 0-1):")
    assert after == _click(dock, *PENNSYLVANIA) and dock.map_tool.marker is not None
    dock.here_button.setChecked(False)  # the point is no longer marked
    assert dock.choose_model(str(here_model))
    assert dock.species_list.count() == 0 and dock.here_label.text() == ""


def test_the_land_mask_is_read_with_the_model_not_at_the_first_click(dock, here_model, monkeypatch):
    # the first click would otherwise read the global mask (about 0.2 s of the 50 ms a click may take)
    landmask._load.cache_clear()
    assert dock.choose_model(str(here_model))
    assert landmask._load.cache_info().currsize == 1
    reads = []
    monkeypatch.setattr(landmask, "LandMask", lambda *a: reads.append(a))
    dock.here_button.setChecked(True)
    assert _click(dock, *PENNSYLVANIA) and reads == []
