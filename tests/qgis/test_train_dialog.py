"""The "Train model" dialog: fills TrainOptions, exports the layer, starts the task, reports bad input inline."""
from __future__ import annotations

from pathlib import Path

import pytest
from qgis.core import QgsProject

from sinr_qgis.core.train_runner import checkpoint_path
from sinr_qgis.gui.train_dialog import TrainDialog
from sinr_qgis.tasks.train_task import active_tasks
from sinr_qgis.toolbelt import model_registry

from .train_helpers import isolated_model_list, point_layer  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_model_list")


@pytest.fixture
def layer(qgis_new_project):
    lyr = point_layer("EPSG:3857")
    QgsProject.instance().addMapLayer(lyr)
    yield lyr
    QgsProject.instance().removeAllMapLayers()


def _tiny(dlg: TrainDialog, out: Path) -> None:
    dlg.output.setFilePath(str(out))
    dlg.epochs.setValue(3)
    dlg.width_spin.setValue(32)
    dlg.depth.setValue(1)
    dlg.batch_size.setValue(64)
    dlg.cap.setValue(0)


def test_dialog_trains_the_layer_in_the_background(qgis_app, qtbot, layer, tmp_path):
    done = []
    dlg = TrainDialog(on_done=lambda t, ok: done.append((t, ok)))
    qtbot.addWidget(dlg)
    assert dlg.use_layer.isChecked() and dlg.layer_combo.currentLayer() is layer
    assert dlg.species_field.currentField() == "taxon"  # guessed from the field names
    assert dlg.loss.count() == 6 and dlg.loss.currentData() == "an_full"
    _tiny(dlg, tmp_path / "from_dialog")  # the .sinr extension is added
    dlg.source_field.setField("dataset")
    opts, label, species_label = dlg.build_options(tmp_path)
    assert (opts.out, opts.epochs, opts.width, opts.encoding, opts.source_column) == (
        str(tmp_path / "from_dialog.sinr"), 3, 32, "sin_cos", "source")
    assert (label, species_label) == ("observations", "'taxon'")
    task = dlg.start()
    assert task is not None and dlg.result() == dlg.Accepted
    # the same output again while it trains: refused in the dialog, with the reason
    again = TrainDialog()
    qtbot.addWidget(again)
    _tiny(again, tmp_path / "from_dialog.sinr")
    assert again.start() is None and "already running" in again.message.text()
    qtbot.waitUntil(lambda: bool(done) and task not in active_tasks(), timeout=120_000)
    assert done[0][1] is True, task.error
    assert model_registry.list_models()[0].path == str((tmp_path / "from_dialog.sinr").resolve())
    assert not task.temp_paths[0].exists()  # the exported CSV is removed


def test_bad_input_is_reported_in_the_dialog(qgis_app, qtbot, layer, tmp_path):
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    assert dlg.start() is None and "Choose where to save the model" in dlg.message.text()
    dlg.output.setFilePath(str(tmp_path / "m.sinr"))
    dlg.species_field.setField("")
    assert dlg.start() is None and "Choose the species field" in dlg.message.text()
    dlg.output.setFilePath(str(tmp_path / "nowhere" / "m.sinr"))
    dlg.species_field.setField("taxon")
    assert dlg.start() is None and "does not exist" in dlg.message.text()
    assert not active_tasks()


def test_resume_is_offered_only_with_a_checkpoint(qgis_app, qtbot, layer, tmp_path):
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    out = tmp_path / "m.sinr"
    dlg.output.setFilePath(str(out))
    assert not dlg.resume.isEnabled()
    checkpoint_path(out).write_bytes(b"x")
    dlg.output.setFilePath(str(tmp_path / "m"))
    assert dlg.resume.isEnabled()
