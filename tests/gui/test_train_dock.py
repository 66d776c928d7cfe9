"""The dock's model chooser: remembered models, gone files dropped with a message, card, Train…"""
from __future__ import annotations

from pathlib import Path

import pytest
from qgis.core import QgsProject, QgsSettings

from sinr_qgis.gui.dock import SinrDock
from sinr_qgis.tasks.train_task import active_tasks
from sinr_qgis.toolbelt import model_registry, settings
from tests.helpers.train_helpers import isolated_model_list, point_layer  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_model_list")


@pytest.fixture
def dock(qgis_iface, qgis_canvas, qgis_new_project):
    store = QgsSettings()
    keys = [settings.PREFIX + k for k in settings.DEFAULTS]
    saved = {k: store.value(k) for k in keys if store.contains(k)}
    store.setValue(settings.PREFIX + "model_path", "")
    yield lambda: SinrDock(qgis_iface)
    for k in keys:
        store.remove(k)
        if k in saved:
            store.setValue(k, saved[k])
    QgsProject.instance().removeAllMapLayers()


def test_model_list_selects_shows_card_and_drops_gone_files(dock, qtbot, tmp_path, caplog):
    from tests import factories

    kept = factories.make_bundle(tmp_path / "kept.sinr", n_species=3, width=8, depth=0)
    gone = factories.make_bundle(tmp_path / "gone.sinr", n_species=2, width=8, depth=0)
    model_registry.add_model(gone.path)
    model_registry.add_model(kept.path)
    Path(gone.path).unlink()
    with caplog.at_level("INFO", logger="sinr_qgis"):
        d = dock()
    qtbot.addWidget(d)
    combo = d.model_chooser.combo
    assert combo.itemText(0) == "Bundled model (North American trees)"
    # then My models, a separator, "Open model file…" and "Import SINR checkpoint…"
    assert [combo.itemData(i) for i in range(1, combo.count() - 3)] == [str(Path(kept.path).resolve())]
    assert any("Model 'gone' is no longer at" in r.getMessage() for r in caplog.records)
    qtbot.waitUntil(lambda: "Model 'gone' is no longer at" in d.status_label.text(), timeout=2000)
    combo.setCurrentIndex(1)
    combo.activated.emit(1)
    assert d.model_path == str(Path(kept.path).resolve())
    assert d.bundle is not None and d.bundle.name == "kept"
    assert d.model_label.text().startswith("kept: 3 species.")  # plain words; the card under Details
    assert d.model_details.text().startswith("Model: kept<br>Species: 3") and "Cite: Cole" in d.model_details.text()


def test_train_button_trains_and_selects_the_new_model(dock, qtbot, tmp_path):
    QgsProject.instance().addMapLayer(point_layer("EPSG:3857"))
    d = dock()
    qtbot.addWidget(d)
    dlg = d.model_chooser.open_train_dialog()
    qtbot.addWidget(dlg)
    out = tmp_path / "dock_trained.sinr"
    dlg.output.setFilePath(str(out))
    dlg.species_field.setField("taxon")  # no name the reader detects: chosen, as a user would
    for spin, value in ((dlg.epochs, 3), (dlg.width_spin, 32), (dlg.depth, 1), (dlg.batch_size, 64), (dlg.cap, 0)):
        spin.setValue(value)
    task = dlg.start()
    assert task is not None
    qtbot.waitUntil(lambda: task.ended and task not in active_tasks(), timeout=120_000)
    assert task.ok, task.error
    assert d.model_path == str(out.resolve())
    assert d.model_chooser.combo.currentData() == str(out.resolve())
    assert d.bundle.name == "dock_trained" and d.bundle.n_species == 3
    assert "Species: 3" in d.model_details.text()
    assert "Trained dock_trained.sinr: 3 species" in d.status_label.text()


def test_what_training_could_not_take_as_asked_stays_in_the_report(dock, qtbot, tmp_path, caplog):
    """The Train dialog's warning (rasters with a coordinates-only model) is repeated, as a warning,
    with the summary the dock shows when the model is ready: the dialog itself has closed by then."""
    from types import SimpleNamespace

    from sinr_qgis.core.training.summary import TrainResult
    from sinr_qgis.qgis_bridge.training_inputs import RASTERS_IGNORED
    from tests import factories

    bundle = factories.make_bundle(tmp_path / "coords.sinr", n_species=2, width=8, depth=0)
    d = dock()
    qtbot.addWidget(d)
    result = TrainResult(path=Path(bundle.path), done={"n_species": 2, "epochs": 1}, seconds=3.0)
    task = SimpleNamespace(result=result, warnings=[RASTERS_IGNORED], cancelled=False, error=None)
    model_registry.add_model(bundle.path)
    with caplog.at_level("WARNING", logger="sinr_qgis"):
        d.model_chooser._trained(task, True)
    assert d.status_label.text() == "Trained coords.sinr: 2 species, 1 epochs, time 3s. " + RASTERS_IGNORED
    assert any(r.levelname == "WARNING" and RASTERS_IGNORED in r.getMessage() for r in caplog.records)
