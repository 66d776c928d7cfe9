"""The dock's species field: what the text finds with its reliability (the poor warning stands out),
near misses offered as links that correct the text, common names, and the model's species list."""
from __future__ import annotations

import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsRectangle
from qgis.PyQt.QtCore import QSize

from sinr_qgis.core.bundle import ModelBundle, Species
from sinr_qgis.core.reliability import species_reliability
from sinr_qgis.gui.dock import SinrDock
from sinr_qgis.gui.species_info import POOR_STYLE
from tests.helpers.prediction_helpers import model_file  # noqa: F401
from tests.helpers.settings_helpers import restore_settings  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401

TREES = [("acerrubr", "Acer rubrum", "red maple", 5000), ("acersacr", "Acer saccharum", "sugar maple", 4000),
         ("quealba", "Quercus alba", "white oak", 3000), ("pseumenz", "Pseudotsuga menziesii", "Douglas-fir", 106),
         ("pinustro", "Pinus strobus", "eastern white pine", 2500), ("fagugran", "Fagus grandifolia", "", 2000)]


@pytest.fixture
def trees_model(model_file, tmp_path):  # noqa: F811
    """Six tree species with common names (one without), records boxes and, for Douglas-fir, the
    bundled model's AP against Little's range (12.5 %): a poor map."""
    b = ModelBundle.load(model_file)
    b.species = [Species(i, code, name, n, common_name=common, record_extent=(-90.0, 30.0, -70.0, 45.0), n_cells=50)
                 for i, (code, name, common, n) in enumerate(TREES)]
    b.meta["evaluation"] = {"ranges_ap": {"pseumenz": 0.1254, "quealba": 0.92}, "ranges_reference": "Little's ranges"}
    return b.write(tmp_path / "trees.sinr")


@pytest.fixture
def dock(qgis_iface, qgis_canvas, trees_model, restore_settings, isolated_model_list):  # noqa: F811
    qgis_canvas.resize(QSize(240, 160))
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    qgis_canvas.setExtent(QgsRectangle(-80, 35, -70, 45))
    d = SinrDock(qgis_iface)
    assert d.choose_model(str(trees_model))
    yield d
    d.deleteLater()


def _type(dock, text: str) -> str:
    dock.species_edit.setText(text)
    dock.update_species_info()  # what the typing pause's timer does
    return dock.species_info.text()


def test_a_poor_species_shows_its_reliability_warning_prominently(dock):
    r = species_reliability(dock.bundle, "pseumenz")
    assert r.level == "poor" and r.warning.startswith("Poor map:") and "AP 12.5%" in r.warning
    text = _type(dock, "Pseudotsuga menziesii")
    assert text.startswith("<b>Pseudotsuga menziesii (Douglas-fir)</b>: 106 training records")
    assert f"<span style='{POOR_STYLE}'>⚠ Poor map:" in text and "AP 12.5%" in text
    # a good species: its summary (records, AP), no warning
    text = _type(dock, "Quercus alba")
    assert text.startswith("<b>Quercus alba (white oak)</b>: 3,000 training records") and "AP 92.0%" in text
    assert "⚠" not in text
    assert [s.code for s in dock.species_info.species] == ["quealba"]


def test_every_species_typed_is_described_and_common_names_find_species(dock):
    text = _type(dock, "red maple, Fagus grandifolia")
    assert [s.code for s in dock.species_info.species] == ["acerrubr", "fagugran"]
    assert "<b>Acer rubrum (red maple)</b>: 5,000 training records" in text
    assert "<br><b>Fagus grandifolia</b>: 2,000 training records" in text  # no common name: none shown
    assert _type(dock, "") == "" and dock.species_info.species == []
    # the completer offers a species by its common name too (and inserts its label)
    completer = dock.species_completer
    completer.setCompletionPrefix(completer.splitPath("Quercus alba, WHITE O")[0])
    assert completer.completionCount() == 1 and completer.currentIndex().data() == "Quercus alba (quealba)"
    completer.setCompletionPrefix(completer.splitPath("maple")[0])
    found = completer.completionModel()
    assert [found.index(i, 0).data() for i in range(found.rowCount())] == [
        "Acer rubrum (acerrubr)", "Acer saccharum (acersacr)"]


def test_near_misses_are_offered_as_links_that_correct_the_text(dock, qtbot):
    text = _type(dock, "Acer rubra, Quercus albus")
    assert dock.species_info.species == []
    assert {k: [s.code for s in v] for k, v in dock.species_info.suggestions.items()} == {
        "Acer rubra": ["acerrubr"], "Quercus albus": ["quealba"]}
    assert text == ("“Acer rubra” is not in this model. Did you mean: <a href='s0'>Acer rubrum (acerrubr)</a>?<br>"
                    "“Quercus albus” is not in this model. Did you mean: <a href='s1'>Quercus alba (quealba)</a>?")
    dock.species_info.linkActivated.emit("s1")  # what clicking the second link does
    assert dock.species_edit.text() == "Acer rubra, Quercus alba"
    assert dock.species_info.text() == ("“Acer rubra” is not in this model. Did you mean: <a href='s0'>Acer rubrum "
                                        "(acerrubr)</a>?")  # described at once: no link to the old text
    dock.species_info.linkActivated.emit("s0")
    assert dock.species_edit.text() == "Acer rubrum, Quercus alba"
    assert [s.code for s in dock.species_info.species] == ["acerrubr", "quealba"]
    # typing is described once it pauses
    dock.species_edit.setText("white oak")
    qtbot.waitUntil(lambda: [s.code for s in dock.species_info.species] == ["quealba"], timeout=3000)
    # a name with nothing close: no link, a pointer to the species list
    assert _type(dock, "Betula papyrifera") == ("“Betula papyrifera” is not in this model. Open the species list "
                                                "to see the model's species.")


def test_the_species_list_shows_every_species_and_adds_the_chosen_ones(dock, qtbot):
    dlg = dock.show_species_list()
    qtbot.addWidget(dlg)
    assert dlg.objectName() == "SinrSpeciesListDialog" and dlg.windowTitle() == "Species of test_model"
    assert sorted(dlg.visible_codes()) == sorted(code for code, *_ in TREES)
    row = {dlg.proxy.index(r, 0).data(): [dlg.proxy.index(r, c).data() for c in range(5)]
           for r in range(dlg.proxy.rowCount())}
    assert row["pseumenz"] == ["pseumenz", "Pseudotsuga menziesii", "Douglas-fir", "106", "poor"]
    assert row["quealba"] == ["quealba", "Quercus alba", "white oak", "3,000", "good"]
    dlg.filter_edit.setText("MAPLE")  # any column, any case
    assert dlg.visible_codes() == ["acerrubr", "acersacr"]
    dock.species_edit.setText("Quercus alba")
    dlg.table.selectAll()
    assert [s.code for s in dlg.choose_selected()] == ["acerrubr", "acersacr"]
    assert dock.species_edit.text() == "Quercus alba, Acer rubrum, Acer saccharum"
    assert [s.code for s in dock.bundle.find_species_list(dock.species_edit.text())] == [
        "quealba", "acerrubr", "acersacr"]
    # a species already in the field is not added twice; text that finds nothing is replaced
    dlg.choose_selected()
    assert dock.species_edit.text() == "Quercus alba, Acer rubrum, Acer saccharum"
    dock.species_edit.setText("Bogus")
    dlg.choose_selected()
    assert dock.species_edit.text() == "Acer rubrum, Acer saccharum"


def test_another_model_closes_the_species_list_of_the_previous_one(dock, qtbot, model_file, tmp_path):  # noqa: F811
    """The list shows one model's species, and a choice from it goes into the field for that model:
    choosing another model closes it (List… opens the new model's)."""
    other = ModelBundle.load(model_file)
    other.meta["name"] = "Other trees"
    other_path = other.write(tmp_path / "other.sinr")
    dlg = dock.show_species_list()
    qtbot.addWidget(dlg)
    assert dlg.isVisible() and dlg.windowTitle() == "Species of test_model"
    assert dock.choose_model(str(other_path))
    assert not dlg.isVisible()
    again = dock.show_species_list()
    qtbot.addWidget(again)
    assert again.isVisible() and again.windowTitle() == "Species of Other trees"
