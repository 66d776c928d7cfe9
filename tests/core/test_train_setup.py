"""The set-up steps every "training is unavailable" message gives, per operating system."""
from __future__ import annotations

import pytest

from sinr_qgis.core.train_setup import CPU_INDEX, REPOSITORY, SOURCE_ZIP, install_command, setup_steps


@pytest.mark.parametrize("system, where, python", [
    ("Windows", "in the OSGeo4W Shell", "python -m pip install torch onnx"),
    ("Darwin", "in Terminal", "/Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install torch onnx"),
    ("Linux", "in a terminal", "/usr/bin/python3 -m pip install --user --break-system-packages torch onnx"),
    ("FreeBSD", "in a terminal", "/usr/bin/python3 -m pip install"),  # other Unix systems: the Linux steps
])
def test_steps_name_the_platforms_python_and_keep_numpy_below_2(system, where, python):
    text = setup_steps("/profile/python/plugins/sinr_qgis", system)
    assert f"1) download the plugin's source ({SOURCE_ZIP}, or git clone {REPOSITORY})" in text
    assert "2) copy its 'training' folder into the plugin's folder, /profile/python/plugins/sinr_qgis;" in text
    assert f"3) {where}" in text and python in text
    assert '"numpy<2"' in text and f"--extra-index-url {CPU_INDEX}" in text  # QGIS's GDAL needs numpy 1
    assert "4) in the Train dialog choose" in text and "'Python with PyTorch'" in text


def test_install_command_is_user_wide_only_for_the_system_python_of_linux():
    assert install_command("/usr/bin/python3", "Linux").startswith("/usr/bin/python3 -m pip install --user ")
    venv = "/home/me/venv/bin/python"
    assert install_command(venv, "Linux").startswith(f"{venv} -m pip install torch")
