"""sinr:predict_range from the command line: qgis_process.bin with the plugin on QGIS_PLUGINPATH."""
from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from sinr_qgis.core import runtime
from tests.tolerances import bundle_prob_atol

from .prediction_helpers import bundle, model_file, pixel_centre, read_raster  # noqa: F401

QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"
PLUGIN = Path(__file__).resolve().parents[2] / "sinr_qgis"


def qgis_process_env(tmp_path: Path) -> dict[str, str]:
    """A private profile (HOME), the plugin folder and the venv's packages on QGIS's Python path."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "sinr_qgis").symlink_to(PLUGIN, target_is_directory=True)
    env = dict(os.environ)
    home = tmp_path / "home"
    home.mkdir()
    site = sysconfig.get_paths()["purelib"]  # the venv's site-packages (numpy<2, onnxruntime)
    home.chmod(0o700)
    # pytest-qgis points QGIS_CUSTOM_CONFIG_PATH at the repository's test profile: use a private one
    env.update(HOME=str(home), QGIS_CUSTOM_CONFIG_PATH=str(home / "qgis"), QGIS_OPTIONS_PATH=str(home / "qgis"),
               QGIS_PLUGINPATH=str(plugins), QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(home),
               PYTHONPATH=os.pathsep.join(p for p in (site, env.get("PYTHONPATH", "")) if p))
    return env


@pytest.mark.skipif(not Path(QGIS_PROCESS).exists(), reason="qgis_process.bin is not installed")
def test_predict_range_runs_from_qgis_process(model_file, bundle, tmp_path):  # noqa: F811
    env = qgis_process_env(tmp_path)
    enable = subprocess.run([QGIS_PROCESS, "plugins", "enable", "sinr_qgis"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    out = tmp_path / "cli.tif"
    run = subprocess.run([QGIS_PROCESS, "run", "sinr:predict_range", "--",
                          f"MODEL={model_file}", "SPECIES=Species number2", "EXTENT=-80,-70,35,45 [EPSG:4326]",
                          "PIXEL_SIZE=1", "MASK_OCEAN=false", f"OUTPUT={out}"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    data, info = read_raster(out)
    assert info["size"] == (10, 10)
    assert info["gt"] == pytest.approx((-80.0, 1.0, 0.0, 45.0, 0.0, -1.0))
    lon, lat = pixel_centre(info["gt"], 4, 7)
    ref = runtime.Predictor(bundle).predict_points(np.array([[lon, lat]]), [2])[0, 0]
    # another process, its own thread count and blocks: float32 rounding only
    assert data[0, 4, 7] == pytest.approx(float(ref), abs=bundle_prob_atol(bundle, [(lon, lat)], 2))


@pytest.mark.skipif(not Path(QGIS_PROCESS).exists(), reason="qgis_process.bin is not installed")
def test_qgis_process_reports_unknown_species(model_file, tmp_path):  # noqa: F811
    env = qgis_process_env(tmp_path)
    subprocess.run([QGIS_PROCESS, "plugins", "enable", "sinr_qgis"], env=env, capture_output=True, timeout=120)
    out = tmp_path / "bad.tif"
    run = subprocess.run([QGIS_PROCESS, "run", "sinr:predict_range", "--", f"MODEL={model_file}",
                          "SPECIES=Nothing here", "EXTENT=-80,-70,35,45 [EPSG:4326]", "PIXEL_SIZE=1",
                          f"OUTPUT={out}"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "is not in model" in run.stdout + run.stderr
    assert not out.exists()
