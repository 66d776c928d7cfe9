"""The dock's one model control (bundled model, My models, "Open model file…"), its plain-language card
with the technical fields under Details, the engine line with the onnxruntime install button, the
default width and the status line."""
from __future__ import annotations

from pathlib import Path

import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsRectangle, QgsSettings
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtWidgets import QFileDialog, QHBoxLayout

from sinr_qgis.core.resources import BUNDLED_MODEL
from sinr_qgis.gui import dock as dock_module
from sinr_qgis.gui.dock import DOCK_WIDTH, SinrDock
from sinr_qgis.gui.model_list import BUNDLED, IMPORT_CHECKPOINT, OPEN_FILE
from sinr_qgis.toolbelt import model_registry, settings
from tests.helpers.bundle_files import copy_bundle
from tests.helpers.prediction_helpers import model_file  # noqa: F401
from tests.helpers.settings_helpers import restore_settings  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list, listed_model  # noqa: F401


@pytest.fixture
def make_dock(qgis_iface, qgis_canvas, restore_settings, isolated_model_list):  # noqa: F811
    qgis_canvas.resize(QSize(240, 160))
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    qgis_canvas.setExtent(QgsRectangle(-80, 35, -70, 45))
    QgsSettings().setValue(settings.PREFIX + "model_path", "")
    docks = []

    def make() -> SinrDock:
        docks.append(SinrDock(qgis_iface))
        return docks[-1]

    yield make
    for d in docks:
        d.deleteLater()


def _entries(d: SinrDock) -> list[str]:
    combo = d.model_chooser.combo
    return [combo.itemText(i) for i in range(combo.count())]


def test_one_model_control_opens_files_into_my_models(make_dock, model_file, monkeypatch):  # noqa: F811
    d = make_dock()
    assert d.findChildren(QgsFileWidget) == []  # no second model control
    assert d.bundle is not None and d.bundle.name == "na_trees_coords_v2" and d.model_path == ""
    # the bundled model, a separator, "Open model file…", "Import SINR checkpoint…"
    assert _entries(d) == [BUNDLED, "", OPEN_FILE, IMPORT_CHECKPOINT]
    assert d.model_chooser.combo.currentIndex() == 0
    # "Open model file…": the file dialog's choice is loaded and joins My models
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(model_file), "SINR model (*.sinr)"))
    combo = d.model_chooser.combo
    combo.setCurrentIndex(combo.findText(OPEN_FILE))
    combo.activated.emit(combo.findText(OPEN_FILE))
    assert d.bundle.name == "test_model" and d.model_path == str(model_file)
    entry = listed_model(model_file)
    assert entry is not None and entry.n_species == 6
    assert _entries(d)[1] == entry.label and combo.currentData() == str(Path(model_file).resolve())
    assert settings.get_value("model_path") == str(model_file)
    # back to the bundled model from the same control
    combo.setCurrentIndex(0)
    combo.activated.emit(0)
    assert d.bundle.name == "na_trees_coords_v2" and settings.get_value("model_path") == ""
    # the next session starts with the list and the last model
    d.choose_model(str(model_file))
    d2 = make_dock()
    assert d2.bundle.name == "test_model" and _entries(d2)[1] == entry.label
    assert d2.model_chooser.combo.currentIndex() == 1


def test_a_file_that_does_not_load_keeps_the_model_in_use(make_dock, model_file, tmp_path, qgis_iface):  # noqa: F811
    d = make_dock()
    assert d.choose_model(str(model_file))
    bad = copy_bundle(model_file, tmp_path / "bad.sinr", flip_onnx=True)
    assert not d.model_chooser.open_model_file(str(bad))
    assert d.bundle.name == "test_model" and d.model_path == str(model_file)
    assert d.status_label.text().startswith("Model not loaded: bad.sinr: encoder.onnx is damaged or was altered")
    assert listed_model(bad) is None
    assert d.model_chooser.combo.currentData() == str(Path(model_file).resolve())
    # the file dialog cancelled: nothing changes
    assert not d.model_chooser.open_model_file("")
    assert d.bundle.name == "test_model"


def test_the_bundled_file_is_not_listed_twice_and_a_gone_model_falls_back(make_dock, model_file, tmp_path):  # noqa: F811
    d = make_dock()
    assert d.choose_model(str(BUNDLED_MODEL))
    assert d.model_path == "" and model_registry.list_models() == []
    assert _entries(d) == [BUNDLED, "", OPEN_FILE, IMPORT_CHECKPOINT]
    gone = copy_bundle(model_file, tmp_path / "gone.sinr")
    assert d.choose_model(str(gone))
    gone.unlink()
    d2 = make_dock()  # next session: the saved model has gone
    assert d2.bundle is not None and d2.model_path == "" and d2.bundle.name == "na_trees_coords_v2"
    status = d2.status_label.text()
    assert status.startswith("Model not loaded: Model file ") and "gone.sinr does not exist." in status
    assert status.endswith("The bundled model is used instead.")


def test_the_card_is_plain_with_technical_fields_under_details(make_dock):
    d = make_dock()
    assert d.model_label.text() == (
        "na_trees_coords_v2: 169 species, learned from 168,651 records (na_trees.csv.gz). It maps them from "
        "the location alone (no climate or land-cover layers). Maps: 89 good, 53 to use with caution, 27 poor "
        "(see the species list).")
    assert d.details_box.objectName() == "SinrModelDetails" and d.details_box.isCollapsed()
    details = d.model_details.text()
    for line in ("Encoding: spherical_harmonics (degree 10: 100 features)", "Loss: an_full, epochs 20, cap 0",
                 "Cite: Cole, E.", "Poor maps (27;", "Local evidence (on unless switched off; pure SINR without it): "):
        assert line in details
    assert "Encoding" not in d.model_label.text()


def test_the_engine_line_holds_the_onnxruntime_install_button(make_dock, monkeypatch):
    d = make_dock()
    rows = [r for r in d.findChildren(QHBoxLayout) if r.indexOf(d.backend_label) >= 0]
    assert len(rows) == 1 and rows[0].indexOf(d.install_button) == rows[0].indexOf(d.backend_label) + 1
    assert d.install_button.objectName() == "SinrInstallOnnxruntimeButton"
    assert d.backend_label.text() in (f"Runs with <b>{d.backend_name}</b>.",
                                      f"Runs with <b>{d.backend_name}</b> (slower than onnxruntime).")
    # once installed, the model is reloaded so the fast engine is used at once
    loads = []
    real = d.choose_model
    monkeypatch.setattr(d, "choose_model", lambda path: loads.append(path) or real(path))
    d.install_button.installed.emit()
    assert loads == [""]
    assert d.status_label.text() == f"onnxruntime installed: predictions now run with {d.backend_name}."


def test_the_engine_line_is_shown_whole_next_to_the_install_button(make_dock, qtbot):
    """The numpy line wraps beside the button at the default width; its row grows with it (in a plain
    layout row of the form it was clipped after one line: "Runs with numpy (slower than")."""
    d = make_dock()
    d.backend_label.setText("Runs with <b>numpy</b> (slower than onnxruntime).")
    d.install_button.setVisible(True)
    d.resize(DOCK_WIDTH, 900)
    d.show()
    qtbot.waitExposed(d)
    label = d.backend_label
    assert label.heightForWidth(label.width()) > label.fontMetrics().height() * 1.5  # it wraps: 2 lines or more
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()))
    assert d.install_button.geometry().left() >= label.geometry().right()  # the button stays beside the line
    d.hide()


def test_the_dock_opens_narrow(make_dock):
    d = make_dock()
    scroll = d.widget()
    assert DOCK_WIDTH == 300
    assert scroll.minimumWidth() <= DOCK_WIDTH  # every row fits (long fields wrap under their label)
    assert scroll.sizeHint().width() == DOCK_WIDTH


def test_the_status_line_clears_when_a_new_action_starts(make_dock, qgis_iface):
    d = make_dock()
    d._report("Prediction failed: something", dock_module.Qgis.Warning)
    d.show_species_at(QgsPointXY(-77.5, 40.8))  # "what lives here" is a new action
    assert d.status_label.text() == ""
    d._report("An old message", dock_module.Qgis.Info)
    d.compare_panel.compare()  # so is Compare (here refused: no range layer, said in its own panel)
    assert d.status_label.text() == ""
    assert d.compare_panel.result_label.text().startswith("Choose a model, a range layer")
    d._report("An old message", dock_module.Qgis.Info)
    d.choose_model("")
    assert d.status_label.text() == ""
