"""``sinr:train_model`` where training cannot run (no training code, a Python without torch): it
says so, with what to do (``sinr:setup_training`` for the Python), before it reads or exports any
observation."""
from __future__ import annotations

import processing
import pytest
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

from sinr_qgis.core.errors import TrainingEnvironmentError
from sinr_qgis.core.training import interpreter
from sinr_qgis.processing.train_model import TrainModelAlgorithm
from tests.helpers.train_helpers import TINY, isolated_model_list, point_layer  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_model_list")


class LogFeedback(QgsProcessingFeedback):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def pushInfo(self, info: str) -> None:
        self.lines.append(info)
        super().pushInfo(info)


NO_CODE = ("Training is unavailable: the training code (package 'training') was not found in the plugin's "
           "folder, /x/sinr_qgis. Reinstall the plugin from its zip.")


def test_an_install_without_the_training_code_says_so_before_exporting(qgis_processing, tmp_path, monkeypatch):
    def missing():
        raise TrainingEnvironmentError(NO_CODE)

    monkeypatch.setattr(interpreter, "training_root", missing)
    feedback = LogFeedback()
    with pytest.raises(QgsProcessingException) as err:
        processing.run(TrainModelAlgorithm(), {"INPUT": point_layer(), "SPECIES_FIELD": "taxon",
                                               "OUTPUT": str(tmp_path / "m.sinr"), **TINY}, feedback=feedback)
    assert str(err.value).startswith(NO_CODE)
    assert not any("exported" in line for line in feedback.lines), feedback.lines
    assert list(tmp_path.iterdir()) == []


def test_a_python_without_torch_is_named_before_exporting(qgis_processing, tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho '{\"python\": \"3.11.2\", \"error\": \"ModuleNotFoundError: torch\", "
                    "\"missing\": [\"onnx\"]}'\n")
    fake.chmod(0o755)
    feedback = LogFeedback()
    with pytest.raises(QgsProcessingException, match=r"^PyTorch is missing: the Python interpreter .*python3 "
                                                     r"\(Python 3\.11\.2\) cannot import torch") as err:
        processing.run(TrainModelAlgorithm(), {"INPUT": point_layer(), "SPECIES_FIELD": "taxon", "PYTHON": str(fake),
                                               "OUTPUT": str(tmp_path / "m.sinr"), **TINY}, feedback=feedback)
    # the installed plugin's answer: the algorithm that makes such a Python, no terminal needed
    assert "(sinr:setup_training) in the Processing Toolbox" in str(err.value)
    assert not any("exported" in line for line in feedback.lines)
    # torch there but not onnx: named too, with the command that keeps numpy below 2
    fake.write_text("#!/bin/sh\necho '{\"python\": \"3.11.2\", \"torch\": \"2.3\", \"missing\": [\"onnx\"]}'\n")
    with pytest.raises(QgsProcessingException, match=r"has PyTorch but lacks onnx \(it writes the model file\).*"
                                                     r"-m pip install onnx \"numpy<2\""):
        processing.run(TrainModelAlgorithm(), {"INPUT": point_layer(), "SPECIES_FIELD": "taxon", "PYTHON": str(fake),
                                               "OUTPUT": str(tmp_path / "m.sinr"), **TINY})


@pytest.mark.parametrize("params, message", [
    ({}, "No observations: choose a point layer (and its species field) or an observation file."),
    ({"INPUT": "layer"}, "Choose the species field of the observation layer"),
    ({"INPUT": "layer", "SPECIES_FIELD": "taxon", "INPUT_FILE": "obs.csv"},
     "Give the observations either as a point layer or as a file, not both."),
])
def test_missing_observations_are_named_before_the_run(qgis_processing, tmp_path, params, message):
    alg = TrainModelAlgorithm()
    alg.initAlgorithm()
    layer = point_layer()
    (tmp_path / "obs.csv").write_text("species,latitude,longitude\n")
    values = {k: layer if v == "layer" else str(tmp_path / v) if k == "INPUT_FILE" else v for k, v in params.items()}
    ok, text = alg.checkParameterValues({**values, "OUTPUT": str(tmp_path / "m.sinr")}, QgsProcessingContext())
    assert not ok and text.startswith(message)


def test_a_temporary_output_is_saved_where_it_lasts(qgis_processing, tmp_path, monkeypatch):
    """The dialog's default output (a temporary file, deleted when QGIS closes) becomes a file in
    the user's models folder, with a warning; a second run never overwrites the first."""
    from sinr_qgis.qgis_bridge import model_files

    monkeypatch.setattr(model_files, "models_folder", lambda: tmp_path / "models")
    feedback = QgsProcessingFeedback()
    warnings = []
    feedback.pushWarning = warnings.append
    res = processing.run(TrainModelAlgorithm(), {"INPUT": point_layer(), "SPECIES_FIELD": "taxon",
                                                 "OUTPUT": "TEMPORARY_OUTPUT", **TINY, "EPOCHS": 1}, feedback=feedback)
    assert res["OUTPUT"] == str(tmp_path / "models" / "observations.sinr") and (tmp_path / "models").is_dir()
    assert (tmp_path / "models" / "observations.sinr").is_file()
    assert any("temporary output would be deleted when QGIS closes" in w for w in warnings), warnings
    assert model_files.lasting_model_path("observations") == tmp_path / "models" / "observations_2.sinr"
