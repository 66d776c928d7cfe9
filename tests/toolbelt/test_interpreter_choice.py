"""Choosing the training interpreter: a path without an extension (Linux and macOS: python3) and
python.exe (Windows) are accepted by sinr:train_model's PYTHON parameter and the Train dialog."""
from __future__ import annotations

import csv

import processing
import pytest
from qgis.core import QgsApplication, QgsFileUtils, QgsProcessingException, QgsProcessingParameterFile

from sinr_qgis.gui.train_dialog import TrainDialog
from sinr_qgis.toolbelt.interpreter import INTERPRETER_FILE_FILTER
from tests.helpers.prediction_helpers import sinr_provider  # noqa: F401
from tests.helpers.train_helpers import TINY, isolated_model_list, lonlat_points  # noqa: F401

INTERPRETERS = ["/usr/bin/python3", "/home/me/sinr/.venv/bin/python", "python3", "/usr/bin/python3.11",
                r"C:\Program Files\Python311\python.exe", "C:/Users/me/venv/Scripts/python.exe"]


def interpreter_parameters() -> list[tuple[str, QgsProcessingParameterFile]]:
    """Every file parameter of the provider's algorithms that names a program to run."""
    provider = QgsApplication.processingRegistry().providerById("sinr")
    return [(alg.id(), p) for alg in provider.algorithms() for p in alg.parameterDefinitions()
            if isinstance(p, QgsProcessingParameterFile) and "interpreter" in p.description().lower()]


def test_every_interpreter_parameter_accepts_paths_without_extension(sinr_provider):  # noqa: F811
    params = interpreter_parameters()
    assert sorted((alg_id, p.name()) for alg_id, p in params) == [("sinr:import_sinr_checkpoint", "PYTHON"),
                                                                   ("sinr:setup_training", "BASE_PYTHON"),
                                                                   ("sinr:train_model", "PYTHON")]
    for _alg_id, p in params:
        assert p.fileFilter() == INTERPRETER_FILE_FILTER
        assert [path for path in INTERPRETERS if not p.checkValueIsAcceptable(path)] == []


def test_train_model_runs_the_interpreter_named_python3(sinr_provider, isolated_model_list, tmp_path):  # noqa: F811
    """The extension-less interpreter gets past Processing's checks and is the one that runs."""
    data = tmp_path / "obs.csv"
    ll, species, _source = lonlat_points(30)
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["species", "latitude", "longitude"])
        w.writerows([s, lat, lon] for (lon, lat), s in zip(ll, species))
    python = tmp_path / "python3"
    # the availability probe (python -c ...) finds torch; the training command then reports an error
    python.write_text("#!/bin/sh\nif [ \"$1\" = -c ]; then echo '{\"python\": \"3.11.2\", \"torch\": \"2.3\", "
                      "\"missing\": []}'; exit 0; fi\n"
                      "echo '{\"event\": \"error\", \"message\": \"the chosen python3 ran\"}'\nexit 2\n")
    python.chmod(0o755)
    with pytest.raises(QgsProcessingException, match=r"^the chosen python3 ran$"):
        processing.run("sinr:train_model", {"INPUT_FILE": str(data), "PYTHON": str(python),
                                             "OUTPUT": str(tmp_path / "m.sinr"), **TINY})
    assert not (tmp_path / "m.sinr").exists()


def test_train_dialog_chooser_offers_interpreters_without_extension(qgis_app, qtbot, isolated_model_list):  # noqa: F811
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    assert dlg.python.filter() == INTERPRETER_FILE_FILTER
    assert [path for path in INTERPRETERS if not QgsFileUtils.fileMatchesFilter(path, dlg.python.filter())] == []
