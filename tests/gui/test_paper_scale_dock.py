"""The dock and sinr:species_richness with a paper-scale model (47,375 species): completion over every
species, a species list that makes only the cells it shows, bounded texts (card, unknown names), "what
lives here" over all species, and richness that runs (it once asked for 17.2 GiB in one block)."""
from __future__ import annotations

import numpy as np
import processing
import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsRectangle
from qgis.PyQt.QtCore import QSize, Qt

from sinr_qgis.core import runtime
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.gui import species_list_dialog
from sinr_qgis.gui.dock import SinrDock
from tests.conftest import PAPER_SPECIES
from tests.helpers.prediction_helpers import read_raster, sinr_provider  # noqa: F401
from tests.helpers.settings_helpers import restore_settings  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401


@pytest.fixture
def dock(qgis_iface, qgis_canvas, paper_bundle_file, restore_settings, isolated_model_list):  # noqa: F811
    qgis_canvas.resize(QSize(240, 160))
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    qgis_canvas.setExtent(QgsRectangle(-80, 35, -70, 45))
    d = SinrDock(qgis_iface)
    assert d.choose_model(str(paper_bundle_file))
    yield d
    d.here_button.setChecked(False)
    d.deleteLater()


def _completions(completer, text: str) -> list[str]:
    completer.setCompletionPrefix(completer.splitPath(text)[0])
    found = completer.completionModel()
    return [found.index(i, 0).data() for i in range(found.rowCount())]


def test_the_dock_offers_every_species_and_builds_the_lookup_with_the_model(dock):
    assert dock.bundle.n_species == PAPER_SPECIES
    assert dock.species_completer.labels.rowCount() == PAPER_SPECIES
    assert dock.bundle._index is not None  # built at load: no keystroke waits for it
    assert _completions(dock.species_completer, "sp01, NUMBER4711") == [
        "Species number4711 (sp4711)", *[f"Species number{i} (sp{i})" for i in range(47110, 47120)]]
    dock.species_edit.setText("Species number4711, sp012")
    dock.update_species_info()
    assert [s.index for s in dock.species_info.species] == [4711, 12]
    # the card stays a card: counts, not 47,375 lines
    assert len(dock.model_details.text().split("<br>")) < 30
    assert "47,375 species" in dock.model_label.text()


def test_a_pasted_list_of_unknown_names_gets_three_suggestions_and_a_count(dock):
    dock.species_edit.setText(", ".join(f"Bogus name{i}" for i in range(10)))
    dock.update_species_info()
    text = dock.species_info.text()
    assert list(dock.species_info.suggestions) == ["Bogus name0", "Bogus name1", "Bogus name2"]
    assert text.count("is not in this model") == 3
    assert text.endswith("… and 7 more names not in this model.")


def test_the_species_list_makes_only_the_cells_it_shows(dock, qtbot, monkeypatch):
    calls = []
    real = species_list_dialog.SpeciesTableModel._text
    monkeypatch.setattr(species_list_dialog.SpeciesTableModel, "_text",
                        lambda self, pos, column: (calls.append(pos), real(self, pos, column))[1])
    dlg = dock.show_species_list()
    qtbot.addWidget(dlg)
    assert dlg.proxy.rowCount() == PAPER_SPECIES
    # sorted by name: the shown rows' cells and a few hundred for the column widths, not 5 x 47,375
    assert len(calls) < 5 * 1000
    calls.clear()
    dlg.filter_edit.setText("NUMBER4711")  # any column, any case
    assert dlg.visible_codes() == ["sp4711", *[f"sp{i}" for i in range(47110, 47120)]]
    dlg.table.selectRow(0)
    dlg.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)  # records (n_train = 10 + index), most first
    assert dlg.visible_codes() == [*[f"sp{i}" for i in range(47119, 47109, -1)], "sp4711"]
    assert [s.code for s in dlg.selected_species()] == ["sp4711"]  # the selection followed its species
    row = [dlg.proxy.index(dlg.proxy.rowCount() - 1, c).data() for c in range(5)]
    assert row == ["sp4711", "Species number4711", "", "4,721", "good"]
    assert "4,721 training records" in dlg.proxy.index(dlg.proxy.rowCount() - 1, 0).data(Qt.ItemDataRole.ToolTipRole)
    dlg.filter_edit.setText("")
    assert dlg.proxy.rowCount() == PAPER_SPECIES and dlg.visible_codes()[0] == "sp47374"
    assert [s.code for s in dlg.choose_selected()] == ["sp4711"]
    assert dock.species_edit.text().endswith("Species number4711")


def test_what_lives_here_ranks_all_47375_species(dock):
    dock.top_k.setValue(25)
    shown = dock.show_species_at(QgsPointXY(-75.0, 40.0))
    assert 0 < len(shown) <= 25
    idx, prob = runtime.Predictor(dock.bundle).top_species(np.array([[-75.0, 40.0]]), k=25)
    assert [r.species.index for r in shown] == [int(i) for i, p in zip(idx[0], prob[0]) if p >= 0.01][:len(shown)]
    assert dock.species_list.count() == len(shown)


def test_species_richness_of_47375_species_runs_in_processing(sinr_provider, paper_bundle_file, tmp_path):  # noqa: F811
    out = tmp_path / "richness.tif"
    processing.run("sinr:species_richness", {
        "MODEL": str(paper_bundle_file), "SPECIES": "", "EXTENT": "-90,-80,35,40 [EPSG:4326]", "PIXEL_SIZE": 0.25,
        "MASK_OCEAN": False, "THRESHOLD": 1, "THRESHOLD_VALUE": 0.5, "OUTPUT": str(out)})
    data, info = read_raster(out)
    assert info["size"] == (40, 20)
    bundle = ModelBundle.load(paper_bundle_file)
    centre = np.array([[-90 + 0.125, 40 - 0.125]])  # the first pixel
    p = runtime.Predictor(bundle).predict_points(centre)
    assert data[0, 0, 0] == float((p >= np.float32(0.5)).sum())
    assert np.nanmin(data) > 0 and np.nanmax(data) < PAPER_SPECIES
