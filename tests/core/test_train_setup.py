"""Where the training code is (a checkout, an installed zip, a damaged install) and the set-up
steps every "training is unavailable" message gives, per operating system."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sinr_qgis.core.errors import TrainingEnvironmentError
from sinr_qgis.core.resources import PLUGIN_DIR
from sinr_qgis.core.train_setup import (
    CPU_INDEX,
    README_INSTALL,
    TrainingCode,
    install_command,
    setup_steps,
    training_code,
    training_code_dir,
)
from sinr_qgis.core.training import process
from sinr_qgis.core.training.process import training_cli, training_root

ROOT = Path(__file__).resolve().parents[2]


def _package(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("__init__.py", "cli.py"):
        (folder / name).write_text("")
    return folder


def test_the_checkout_runs_its_top_level_training_package():
    assert training_code() == TrainingCode(ROOT / "training", "training", ROOT)
    assert training_code_dir() == ROOT / "training"
    assert training_root() == ROOT


def test_an_installed_zip_runs_the_copy_inside_the_plugin(tmp_path):
    plugins = tmp_path / "profiles" / "default" / "python" / "plugins"
    inside = _package(plugins / "sinr_qgis" / "training")
    # another plugin called "training" beside ours is not our training code
    _package(plugins / "training")
    (plugins / "training" / "metadata.txt").write_text("[general]\nname=training\n")
    code = training_code(plugins / "sinr_qgis")
    assert code == TrainingCode(inside, "sinr_qgis.training", plugins)
    (inside / "cli.py").unlink()  # a damaged copy: nothing found, the other plugin is not taken
    assert training_code(plugins / "sinr_qgis") is None
    assert training_code_dir(plugins / "sinr_qgis") is None


def test_a_plugin_without_training_code_says_to_reinstall(monkeypatch, tmp_path):
    monkeypatch.setattr(process, "training_code", lambda: None)
    with pytest.raises(TrainingEnvironmentError) as err:
        training_root()
    text = str(err.value)
    assert text.startswith("Training is unavailable: the training code (package 'training') was not found in the "
                           f"plugin's folder, {PLUGIN_DIR}. Prediction and comparison work without it.")
    assert "Reinstall the plugin from its zip" in text and README_INSTALL in text
    with pytest.raises(TrainingEnvironmentError):
        training_cli(sys.executable, ["--help"])


def test_training_cli_runs_the_located_module_from_its_folder_only(tmp_path, monkeypatch):
    """The child gets one folder (the one holding sinr_qgis) on its path and runs there: never the
    user's working folder, never QGIS's PYTHONPATH/PYTHONHOME."""
    monkeypatch.setenv("PYTHONPATH", "/qgis/python")
    monkeypatch.setenv("PYTHONHOME", "/qgis/apps/Python39")
    monkeypatch.chdir(tmp_path)
    argv, cwd, env = training_cli(sys.executable, ["--help"])
    assert argv == [sys.executable, "-u", "-m", "training", "--help"] and cwd == ROOT
    assert env["PYTHONPATH"] == str(ROOT) and "PYTHONHOME" not in env
    # (that the child really starts the training CLI, which needs torch: tests/training/test_train_runner.py)


@pytest.mark.parametrize("system, where, python", [
    ("Windows", "in the OSGeo4W Shell", "python -m pip install torch onnx"),
    ("Darwin", "in Terminal", "/Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install torch onnx"),
    ("Linux", "in a terminal", "/usr/bin/python3 -m pip install --user --break-system-packages torch onnx"),
    ("FreeBSD", "in a terminal", "/usr/bin/python3 -m pip install"),  # other Unix systems: the Linux steps
])
def test_steps_offer_the_set_up_first_then_the_platforms_pip_command(system, where, python):
    text = setup_steps(system=system)
    name = {"Windows": "Windows", "Darwin": "macOS"}.get(system, "Linux")
    assert text.startswith(f"To set up training on {name}, click 'Set up PyTorch for me' in the Train dialog, or "
                           "run 'Set up PyTorch for training' (sinr:setup_training) in the Processing Toolbox")
    assert "no terminal needed" in text and "git clone" not in text  # the zip carries the training code
    assert f"({where}" in text and f": {python}" in text
    assert '"numpy<2"' in text and f"--extra-index-url {CPU_INDEX}" in text  # QGIS's GDAL needs numpy 1
    assert "'Python with PyTorch'" in text and README_INSTALL in text


def test_steps_name_the_chosen_interpreter():
    assert "(in a terminal: /opt/venv/bin/python -m pip install torch onnx" in setup_steps("/opt/venv/bin/python",
                                                                                           "Linux")


def test_install_command_is_user_wide_only_for_the_system_python_of_linux():
    assert install_command("/usr/bin/python3", "Linux").startswith("/usr/bin/python3 -m pip install --user ")
    venv = "/home/me/venv/bin/python"
    assert install_command(venv, "Linux").startswith(f"{venv} -m pip install torch")
