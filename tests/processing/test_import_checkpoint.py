"""sinr:import_sinr_checkpoint and the dock's "Import SINR checkpoint…": official checkpoints (the
conversion in the training Python, a child process) into My models, then mapped with the official
inputs; a file that is not a checkpoint and covariates that do not fit are refused in one line."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import processing
import pytest
import torch
from qgis.core import QgsProcessingException

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.grid import Grid
from sinr_qgis.gui.model_list import IMPORT_CHECKPOINT, ModelChooser, model_summary
from sinr_qgis.toolbelt import model_registry
from tests.helpers.official_reference import OfficialLinNet, OfficialResidualFCNet, official_params
from tests.helpers.prediction_helpers import read_raster, sinr_provider  # noqa: F401
from tests.helpers.qgis_process import QGIS_PROCESS, qgis_process_profile, run_qgis_process  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list, listed_model  # noqa: F401
from tests.training.official_env_data import official_input, official_stack, worldclim_like

pytestmark = pytest.mark.usefixtures("isolated_model_list")
PYTHON = sys.executable  # the venv's Python: it has torch, as "Set up PyTorch for me" makes one
NAMES = "1001\tQuercus alba\n1002\tAcer rubrum\n1004\tPinus strobus\n9999\tNot in the model\n"  # the web app's layout
# The bundle (numpy/onnxruntime, grid blocks) against the official torch network on bit-equal inputs:
# the same float32 network summed in other orders moves a probability by ~1e-7; 1e-5 leaves a margin.
PROB_ATOL = 1e-5


@pytest.fixture(scope="module")
def rasters(tmp_path_factory):
    return worldclim_like(tmp_path_factory.mktemp("worldclim"))


def checkpoint(path: Path, encoding: str = "sin_cos", arch: str = "ResidualFCNet", stack=None):
    """An official-layout checkpoint of 5 classes (taxa 1001..1005) and its official network."""
    torch.manual_seed(11)
    d_in = {"sin_cos": 4, "env": 20, "sin_cos_env": 24}[encoding]
    net = (OfficialResidualFCNet(d_in, 5, 16, 2) if arch == "ResidualFCNet" else OfficialLinNet(d_in, 5)).eval()
    torch.save({"state_dict": net.state_dict(),
                "params": official_params(arch, 5, input_enc=encoding, input_dim=d_in, num_filts=16, depth=2)}, path)
    return path, net


def test_import_names_the_species_and_lists_the_model(sinr_provider, tmp_path):  # noqa: F811
    ck, _net = checkpoint(tmp_path / "model_an_full_input_enc_sin_cos.pt")
    (tmp_path / "taxa_names.txt").write_text(NAMES)
    res = processing.run("sinr:import_sinr_checkpoint", {
        "INPUT": str(ck), "TAXA": str(tmp_path / "taxa_names.txt"), "PYTHON": PYTHON,
        "OUTPUT": str(tmp_path / "official")})  # ".sinr" is added
    assert res["OUTPUT"] == str(tmp_path / "official.sinr") and res["N_SPECIES"] == 5
    b = ModelBundle.load(res["OUTPUT"])
    assert [s.name for s in b.species] == ["Quercus alba", "Acer rubrum", "1003", "Pinus strobus", "1005"]
    assert b.find_species("Acer rubrum").code == "1002"
    assert b.meta["data"]["taxa_names"]["n_ignored"] == 1  # the row of a taxon the model lacks
    assert [e.path for e in model_registry.list_models()] == [str((tmp_path / "official.sinr").resolve())]


def test_environmental_checkpoint_maps_with_the_official_inputs(sinr_provider, tmp_path, rasters):  # noqa: F811
    stack = official_stack(rasters)
    ck, net = checkpoint(tmp_path / "env.pt", "sin_cos_env", "LinNet", stack)
    res = processing.run("sinr:import_sinr_checkpoint", {
        "INPUT": str(ck), "COVARIATES": [str(p) for p in reversed(rasters)], "PYTHON": PYTHON,
        "OUTPUT": str(tmp_path / "env.sinr")})
    b = ModelBundle.load(res["OUTPUT"])
    assert b.encoding == "sin_cos_env" and b.covariate_names[:2] == ["wc2.1_2d_elev", "wc2.1_2d_bio_1"]
    assert ("It maps them from the location and 20 environmental layers (wc2.1_2d_elev, wc2.1_2d_bio_1, "
            "wc2.1_2d_bio_2, …)") in model_summary(b)
    # predicted with the rasters in yet another order: matched by their WorldClim names
    order = [rasters[i] for i in (5, 0, *range(1, 5), *range(6, 20))]
    out = tmp_path / "map.tif"
    processing.run("sinr:predict_range", {
        "MODEL": res["OUTPUT"], "SPECIES": "1003", "EXTENT": "-180,180,-90,90 [EPSG:4326]", "PIXEL_SIZE": 4,
        "MASK_OCEAN": False, "COVARIATES": [str(p) for p in order], "OUTPUT": str(out)})
    data, info = read_raster(out)
    grid = Grid.from_pixel_size((-180.0, -90.0, 180.0, 90.0), "EPSG:4326", 4.0)
    lonlat, _ok = grid.lonlat()
    with torch.no_grad():
        expected = net(official_input("sin_cos_env", lonlat.astype(np.float32), stack)).numpy()[:, 2]
    assert info["size"] == (90, 45) and not np.isnan(data[0]).any()  # the sea reads 0, as in the official code
    np.testing.assert_allclose(data[0].ravel(), expected, rtol=0, atol=PROB_ATOL)


@pytest.mark.parametrize("case, message", [
    ("names_file_as_checkpoint", r"^taxa_names.txt is not a PyTorch checkpoint\. Choose the \.pt file"),
    ("bundle_as_checkpoint", r"^official.sinr is a SINR model bundle already, not a checkpoint"),
    ("env_without_rasters", r"^env.pt is an environmental model \(input_enc 'env'\): it reads 20 covariates and not "
                            r"the location\. Give its covariate rasters: the WorldClim 2.1 rasters"),
    ("nineteen_rasters", r"^env.pt reads 20 covariates \(input_enc 'env'\), but 19 raster bands were given "
                         r"\(wc2.1_2d_elev, .*\)\. Missing: bio7\."),
    ("rasters_for_coordinates", r"^coords.pt reads the location only \(input_enc 'sin_cos'\), no covariate rasters"),
    ("python_without_torch", r"cannot import 'torch', which the import needs .* 'Set up PyTorch for me'"),
])
def test_bad_inputs_are_refused_in_one_line(sinr_provider, tmp_path, rasters, case, message):  # noqa: F811
    (tmp_path / "taxa_names.txt").write_text(NAMES)
    params = {"PYTHON": PYTHON, "OUTPUT": str(tmp_path / "out.sinr")}
    if case == "names_file_as_checkpoint":
        params["INPUT"] = str(tmp_path / "taxa_names.txt")
    elif case == "bundle_as_checkpoint":
        ck, _net = checkpoint(tmp_path / "c.pt")
        first = {**params, "INPUT": str(ck), "OUTPUT": str(tmp_path / "official.sinr")}
        params["INPUT"] = processing.run("sinr:import_sinr_checkpoint", first)["OUTPUT"]
    elif case in ("env_without_rasters", "nineteen_rasters"):
        params["INPUT"] = str(checkpoint(tmp_path / "env.pt", "env", "ResidualFCNet")[0])
        if case == "nineteen_rasters":
            params["COVARIATES"] = [str(p) for p in rasters if not p.name.endswith("_bio_7.tif")]
    elif case == "rasters_for_coordinates":
        params.update(INPUT=str(checkpoint(tmp_path / "coords.pt")[0]), COVARIATES=[str(rasters[0])])
    else:
        params["INPUT"] = str(checkpoint(tmp_path / "c.pt")[0])
        no_torch = tmp_path / "python3"  # a Python without PyTorch, as the child reports it
        no_torch.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n")
        no_torch.chmod(0o755)
        params["PYTHON"] = str(no_torch)
    with pytest.raises(QgsProcessingException, match=message) as err:
        processing.run("sinr:import_sinr_checkpoint", params)
    assert "Traceback" not in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.sinr").exists() and not list(tmp_path.glob(".out.sinr.*"))


def test_dock_imports_a_checkpoint_and_chooses_it(qgis_iface, qtbot, tmp_path):
    """The model chooser's "Import SINR checkpoint…" entry: the dialog, a background task, My models."""
    ck, _net = checkpoint(tmp_path / "official.pt", "sin_cos", "LinNet")
    (tmp_path / "names.txt").write_text(NAMES)
    chosen: list[str] = []
    chooser = ModelChooser(choose=lambda path: chosen.append(path) or True)
    qtbot.addWidget(chooser)
    assert chooser.combo.itemText(chooser.combo.count() - 1) == IMPORT_CHECKPOINT
    chooser.combo.activated.emit(chooser.combo.count() - 1)
    dialog = chooser.import_dialog
    assert dialog is not None and dialog.isVisible() and dialog.objectName() == "SinrImportCheckpointDialog"
    dialog.set_inputs(str(ck), str(tmp_path / "names.txt"), out=str(tmp_path / "from_dock.sinr"))
    from sinr_qgis.toolbelt import interpreter

    interpreter.set_training_interpreter(PYTHON)
    task = dialog.start()
    assert task is not None and dialog.start() is None  # one import at a time
    qtbot.waitUntil(lambda: task.ended, timeout=120_000)
    assert task.ok, dialog.status.text()
    assert chosen == [str(tmp_path / "from_dock.sinr")]
    assert dialog.status.text().startswith("Imported from_dock.sinr: 5 species, LinNet reading the location.")
    assert dialog.progress.value() == 100
    assert listed_model(tmp_path / "from_dock.sinr") is not None
    assert chooser.combo.currentData() == str((tmp_path / "from_dock.sinr").resolve())


def test_a_cancelled_import_leaves_no_model(qgis_iface, qtbot, tmp_path):
    ck, _net = checkpoint(tmp_path / "official.pt")
    slow = tmp_path / "python3"  # a "Python" that never finishes
    slow.write_text("#!/bin/sh\nsleep 60\n")
    slow.chmod(0o755)
    from sinr_qgis.gui.import_dialog import ImportCheckpointDialog
    from sinr_qgis.toolbelt import interpreter

    interpreter.set_training_interpreter(str(slow))
    dialog = ImportCheckpointDialog()
    qtbot.addWidget(dialog)
    dialog.set_inputs(str(ck), out=str(tmp_path / "never.sinr"))
    task = dialog.start()
    qtbot.waitUntil(lambda: task.status() == task.Running, timeout=10_000)
    dialog.cancel()
    qtbot.waitUntil(lambda: task.ended, timeout=30_000)
    assert not task.ok and task.cancelled
    assert dialog.status.text() == "Import cancelled; no model was written."
    assert not (tmp_path / "never.sinr").exists()


@pytest.mark.integration
@pytest.mark.skipif(not Path(QGIS_PROCESS).exists(), reason="qgis_process.bin is not installed")
def test_qgis_process_imports_with_a_names_file(qgis_process_profile, tmp_path):  # noqa: F811
    env = qgis_process_profile
    ck, _net = checkpoint(tmp_path / "official.pt")
    (tmp_path / "taxa_names.txt").write_text(NAMES)
    run = run_qgis_process(env, "run", "sinr:import_sinr_checkpoint", "--", f"INPUT={ck}",
                           f"TAXA={tmp_path / 'taxa_names.txt'}", f"PYTHON={PYTHON}", f"OUTPUT={tmp_path / 'cli.sinr'}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "N_SPECIES:\t5" in run.stdout
    assert [s.name for s in ModelBundle.load(tmp_path / "cli.sinr").species][:2] == ["Quercus alba", "Acer rubrum"]
    bad = run_qgis_process(env, "run", "sinr:import_sinr_checkpoint", "--", f"INPUT={tmp_path / 'taxa_names.txt'}",
                           f"PYTHON={PYTHON}", f"OUTPUT={tmp_path / 'bad.sinr'}")
    assert bad.returncode != 0
    message = "taxa_names.txt is not a PyTorch checkpoint."
    assert (bad.stdout + bad.stderr).count(message) == 1 and "Traceback" not in bad.stdout + bad.stderr
    assert not (tmp_path / "bad.sinr").exists()



def test_the_dock_says_an_env_model_reads_the_layers_alone(tmp_path):
    from tests import factories

    b = factories.make_bundle(tmp_path / "env.sinr", 3, "env", ("bio1", "bio12"), width=8, depth=0)
    assert "It maps them from 2 environmental layers (bio1, bio12)." in model_summary(b)
