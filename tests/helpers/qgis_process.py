"""qgis_process.bin with the repository's plugin in a private profile, set up once per test module."""
from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"
PLUGIN = Path(__file__).resolve().parents[2] / "sinr_qgis"


def qgis_process_env(folder: Path) -> dict[str, str]:
    """A private profile (HOME) under ``folder``, the plugin folder and the venv's packages on QGIS's Python path."""
    plugins = folder / "plugins"
    plugins.mkdir()
    (plugins / "sinr_qgis").symlink_to(PLUGIN, target_is_directory=True)
    env = dict(os.environ)
    home = folder / "home"
    home.mkdir()
    site = sysconfig.get_paths()["purelib"]  # the venv's site-packages (numpy<2, onnxruntime)
    home.chmod(0o700)
    # pytest-qgis points QGIS_CUSTOM_CONFIG_PATH at the repository's test profile: use a private one
    env.update(HOME=str(home), QGIS_CUSTOM_CONFIG_PATH=str(home / "qgis"), QGIS_OPTIONS_PATH=str(home / "qgis"),
               QGIS_PLUGINPATH=str(plugins), QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(home),
               PYTHONPATH=os.pathsep.join(p for p in (site, env.get("PYTHONPATH", "")) if p))
    return env


@pytest.fixture(scope="module")
def qgis_process_profile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a profile with the plugin enabled: ``plugins enable`` boots QGIS once per
    module instead of before every run."""
    env = qgis_process_env(tmp_path_factory.mktemp("qgis_process"))
    enable = subprocess.run([QGIS_PROCESS, "plugins", "enable", "sinr_qgis"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    return env


def run_qgis_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``qgis_process.bin`` in the profile of ``env`` (see ``qgis_process_profile``); Python's
    development mode makes warnings such as ResourceWarning (an unclosed file, pipe or socket)
    visible on stderr."""
    return subprocess.run([QGIS_PROCESS, *args], env={**env, "PYTHONDEVMODE": "1"}, capture_output=True, text=True,
                          timeout=300)
