"""The "Train model" dialog: fills TrainOptions, exports the layer, starts the task, reports bad input inline."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.errors import TrainingEnvironmentError
from sinr_qgis.core.training.defaults import LOSS_HELP, LOSSES
from sinr_qgis.core.training.options import checkpoint_path
from sinr_qgis.core.training.process import cli_arguments
from sinr_qgis.gui.train_dialog import TrainDialog
from sinr_qgis.tasks.train_task import active_tasks
from sinr_qgis.toolbelt import model_registry
from tests.helpers.train_helpers import isolated_model_list, point_layer  # noqa: F401

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
    # 'taxon' is no column name the file reader detects: the user chooses (the layer's first field
    # was taken before, whatever it held)
    assert dlg.species_field.currentField() == ""
    assert dlg.loss.count() == 6 and dlg.loss.currentData() == "an_full"
    _tiny(dlg, tmp_path / "from_dialog")  # the .sinr extension is added
    dlg.species_field.setField("taxon")
    dlg.source_field.setField("dataset")
    opts, label, species_label = dlg.build_options(tmp_path)
    assert (opts.out, opts.epochs, opts.width, opts.encoding, opts.source_column, opts.local_evidence) == (
        str(tmp_path / "from_dialog.sinr"), 3, 32, "spherical_harmonics", "source", True)
    assert (label, species_label) == ("observations", "'taxon'")
    task = dlg.start()
    assert task is not None and dlg.result() == dlg.Accepted
    # the same output again while it trains: refused in the dialog, with the reason
    again = TrainDialog()
    qtbot.addWidget(again)
    _tiny(again, tmp_path / "from_dialog.sinr")
    assert again.start() is None and "already writing from_dialog.sinr (SINR: training" in again.message.text()
    qtbot.waitUntil(lambda: bool(done) and task not in active_tasks(), timeout=120_000)
    assert done[0][1] is True, task.error
    assert model_registry.list_models()[0].path == str((tmp_path / "from_dialog.sinr").resolve())
    trained = ModelBundle.load(tmp_path / "from_dialog.sinr")  # the bundled model's inputs and component
    assert trained.sh_degree == 10 and trained.local_evidence is not None
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


# ---- when training cannot run, the recipe, the losses ------------------------------------------
NO_CODE = ("Training is unavailable: the training code (package 'training') was not found in the plugin's "
           "folder, /x/sinr_qgis. Reinstall the plugin from its zip & try again.")


def _no_training_code(monkeypatch) -> None:
    """A damaged install: the training package is not in the plugin (the runner's message is given)."""
    from sinr_qgis.core.training import interpreter
    from sinr_qgis.gui import train_dialog

    def missing():
        raise TrainingEnvironmentError(NO_CODE)

    monkeypatch.setattr(interpreter, "training_root", missing)
    monkeypatch.setattr(train_dialog, "training_root", missing)


def test_dialog_says_at_once_that_training_cannot_run_and_how_to_set_it_up(qgis_app, qtbot, layer, tmp_path,
                                                                           monkeypatch, caplog):
    _no_training_code(monkeypatch)
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    # at once, before the interpreter check answers: what is missing and what to do, as the runner says it
    assert html.escape(NO_CODE) in dlg.message.text()
    qtbot.waitUntil(lambda: dlg.availability is not None, timeout=60_000)
    assert dlg.availability is False and "training code" in dlg.unavailable_reason
    # Train refuses without exporting the layer or queuing a task, and says why in the log too
    _tiny(dlg, tmp_path / "m.sinr")
    with caplog.at_level("WARNING", logger="sinr_qgis"):
        assert dlg.start() is None
    assert "Training is unavailable" in dlg.message.text() and not active_tasks()
    assert any("Training is unavailable" in r.getMessage() for r in caplog.records)
    assert list(tmp_path.iterdir()) == []  # nothing exported, no model


def test_dialog_names_a_missing_torch_after_its_background_check(qgis_app, qtbot, layer, tmp_path):
    fake = tmp_path / "python3"  # a Python without torch: the probe's answer
    fake.write_text("#!/bin/sh\necho '{\"python\": \"3.11.2\", \"error\": \"ModuleNotFoundError: torch\", "
                    "\"missing\": []}'\n")
    fake.chmod(0o755)
    from sinr_qgis.toolbelt.interpreter import set_training_interpreter

    set_training_interpreter(str(fake))
    try:
        dlg = TrainDialog()
        qtbot.addWidget(dlg)
        qtbot.waitUntil(lambda: dlg.availability is not None, timeout=60_000)
    finally:
        set_training_interpreter("")
    assert dlg.availability is False
    assert "PyTorch is missing" in dlg.message.text() and f"{fake} -m pip install torch" in dlg.message.text()
    # choosing another interpreter checks again: this test's own Python has torch
    import sys

    dlg.python.setFilePath(sys.executable)
    assert dlg.availability is None
    qtbot.waitUntil(lambda: dlg.availability is not None, timeout=60_000)
    assert dlg.availability is True and dlg.message.text().count("Ready to train") == 1


def test_set_up_pytorch_is_offered_when_the_python_lacks_it_and_its_python_enables_train(
        qgis_app, qtbot, layer, tmp_path):
    import sys

    from sinr_qgis.gui.setup_training_button import SetupTrainingButton

    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho '{\"python\": \"3.11.2\", \"error\": \"ModuleNotFoundError: torch\"}'\n")
    fake.chmod(0o755)
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    dlg.python.setFilePath(str(fake))
    qtbot.waitUntil(lambda: dlg.availability is False, timeout=60_000)
    # "Set up PyTorch for me" beside the message; Train waits for a Python that can train
    assert isinstance(dlg.setup_button, SetupTrainingButton)
    assert dlg.findChild(SetupTrainingButton, "SinrSetupTrainingButton") is dlg.setup_button
    assert not dlg.setup_row.isHidden() and not dlg.train_button.isEnabled()
    # the set-up made a Python with PyTorch (here: this test's own): the dialog takes it and checks it
    dlg.setup_button.ready.emit(sys.executable)
    assert dlg.python.filePath() == sys.executable and dlg.availability is None
    qtbot.waitUntil(lambda: dlg.availability is not None, timeout=60_000)
    assert dlg.availability is True and "Ready to train" in dlg.message.text()
    assert dlg.train_button.isEnabled() and dlg.setup_row.isHidden()
    # the same path again (an environment made anew where the old one was): checked again too
    dlg.use_python(sys.executable)
    assert dlg.availability is None
    qtbot.waitUntil(lambda: dlg.availability is True, timeout=60_000)


def test_no_set_up_offer_when_the_training_code_is_missing(qgis_app, qtbot, layer, monkeypatch):
    _no_training_code(monkeypatch)
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: dlg.availability is False, timeout=60_000)
    # a new Python would not bring the code back: the message says to reinstall, Train is off
    assert dlg.code_missing and dlg.setup_row.isHidden() and not dlg.train_button.isEnabled()


def test_dialog_defaults_are_the_bundled_models_recipe(qgis_app, qtbot, layer, tmp_path):
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    assert (dlg.loss.currentData(), dlg.cap.value(), dlg.epochs.value(), dlg.width_spin.value(),
            dlg.depth.value(), dlg.pos_weight.value(), dlg.land_absences.isChecked()) == (
        "an_full", 0, 20, 256, 4, 0.0, True)
    assert dlg.pos_weight.text() == "number of species"
    dlg.output.setFilePath(str(tmp_path / "m.sinr"))
    dlg.species_field.setField("taxon")
    dlg.source_field.setField("dataset")
    opts, _label, _species = dlg.build_options(tmp_path)
    args = cli_arguments(opts)
    pairs = dict(zip(args[1::2], args[2::2]))
    assert (pairs["--cap"], pairs["--epochs"], pairs["--pos-weight"], pairs["--pseudo-negatives"],
            pairs["--negatives"], pairs["--encoding"]) == ("0", "20", "species", "land", "source_site",
                                                           "spherical_harmonics")
    assert "--sh-degree" not in args and args[-1] == "--local-evidence"  # the CLI's default degree: 10
    dlg.pos_weight.setValue(2048)
    dlg.land_absences.setChecked(False)
    opts, _label, _species = dlg.build_options(tmp_path)
    assert (opts.pos_weight, opts.pseudo_negatives) == (2048.0, "sphere")


def _raster_layer(path: Path) -> QgsRasterLayer:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 36, 18, 1, gdal.GDT_Float32)
    ds.SetGeoTransform((-180.0, 10.0, 0, 90.0, 0, -10.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(np.arange(18 * 36, dtype=np.float32).reshape(18, 36))
    ds = None
    raster = QgsRasterLayer(str(path), "bio")
    assert raster.isValid()
    return raster


def test_local_evidence_is_offered_for_coordinates_models_only(qgis_app, qtbot, layer, tmp_path):
    raster = _raster_layer(tmp_path / "bio.tif")
    QgsProject.instance().addMapLayer(raster)
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    box = dlg.local_evidence
    assert box.text() == "Add local evidence (records near each location)" and box.isChecked() and box.isEnabled()
    assert dlg.local_evidence_help.text().startswith("Sharpens each species' map near its training records")
    dlg.output.setFilePath(str(tmp_path / "m.sinr"))
    dlg.species_field.setField("taxon")
    row = dlg.covariates.findData(raster.id())

    def state() -> tuple[bool, bool, bool]:
        """(ticked, enabled, --local-evidence in the command the dialog builds)"""
        return box.isChecked(), box.isEnabled(), "--local-evidence" in cli_arguments(dlg.build_options(tmp_path)[0])

    box.setChecked(False)  # the user's choice
    assert state() == (False, True, False)
    box.setChecked(True)
    dlg.covariates.setItemCheckState(row, Qt.CheckState.Checked)  # automatic inputs: coordinates + covariates
    assert state() == (False, False, False) and "coordinates only" in box.toolTip()
    dlg.encoding.setCurrentIndex(dlg.encoding.findData("sin_cos"))  # the rasters are ignored: allowed again
    assert state() == (True, True, True) and box.toolTip() == ""
    dlg.encoding.setCurrentIndex(dlg.encoding.findData("env"))
    assert state() == (False, False, False)
    box.setChecked(False)  # unticked while off: stays off
    dlg.covariates.setItemCheckState(row, Qt.CheckState.Unchecked)
    dlg.encoding.setCurrentIndex(0)
    opts = dlg.build_options(tmp_path)[0]
    assert (box.isChecked(), box.isEnabled(), opts.local_evidence, opts.encoding) == (
        True, True, True, "spherical_harmonics")  # the user's choice before it was disabled comes back


def test_each_loss_is_explained_in_one_line(qgis_app, qtbot, layer):
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    for i, key in enumerate(LOSSES):
        assert dlg.loss.itemData(i, Qt.ToolTipRole) == LOSS_HELP[key]
        dlg.loss.setCurrentIndex(i)
        assert dlg.loss_help.text() == LOSS_HELP[key] and "\n" not in LOSS_HELP[key]
    assert LOSS_HELP["an_full"].startswith("Assume negative, full: at each record's place every other species")


def test_a_long_message_never_squeezes_the_form(qgis_app, qtbot, layer, monkeypatch):
    """The set-up steps of a zip install run to ~20 lines: they scroll in their own box instead of
    squeezing the settings above them to unreadable slivers, and each loss's help line is whole."""
    from qgis.PyQt.QtWidgets import QAbstractSpinBox, QComboBox, QLabel

    _no_training_code(monkeypatch)
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    qtbot.waitUntil(lambda: dlg.availability is not None, timeout=60_000)  # its failure text is longer still
    for i in range(dlg.loss.count()):
        dlg.loss.setCurrentIndex(i)
        qtbot.wait(50)  # the layout settles on the next event loop turn
        fields = dlg.findChildren(QAbstractSpinBox) + dlg.findChildren(QComboBox)
        squeezed = [w.objectName() or type(w).__name__ for w in fields
                    if w.isVisible() and w.height() < w.minimumSizeHint().height()]
        assert squeezed == [], dlg.loss.currentData()
        help_ = dlg.loss_help
        assert help_.height() >= help_.heightForWidth(help_.width()), (dlg.loss.currentData(), help_.text())
    assert isinstance(dlg.message, QLabel) and "Training is unavailable" in dlg.message.text()
    assert not dlg.message.visibleRegion().isEmpty()  # read at once: not scrolled out of sight
