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


def run_qgis_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``qgis_process.bin`` with the plugin enabled; Python's development mode makes warnings such
    as ResourceWarning (an unclosed file, pipe or socket) visible on stderr."""
    subprocess.run([QGIS_PROCESS, "plugins", "enable", "sinr_qgis"], env=env, capture_output=True, timeout=120)
    return subprocess.run([QGIS_PROCESS, *args], env={**env, "PYTHONDEVMODE": "1"}, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(not Path(QGIS_PROCESS).exists(), reason="qgis_process.bin is not installed")
@pytest.mark.parametrize("json_mode", [False, True])
def test_qgis_process_reports_an_unknown_species_once_with_suggestions(model_file, tmp_path, json_mode):  # noqa: F811
    env = qgis_process_env(tmp_path)
    out = tmp_path / "bad.tif"
    run = run_qgis_process(env, *(["--json"] if json_mode else []), "run", "sinr:predict_range", "--",
                           f"MODEL={model_file}", "SPECIES=Species numbr2", "EXTENT=-80,-70,35,45 [EPSG:4326]",
                           "PIXEL_SIZE=1", f"OUTPUT={out}")
    assert run.returncode != 0
    text = run.stdout + run.stderr
    # one letter missing: the one species a slip away, not the five others two slips away
    message = ("Species 'Species numbr2' is not in model 'test_model' (6 species). Did you mean: Species number2 "
               "(sp002)? Use a code or scientific name from the model's species list.")
    # QGIS would print it three times (its log, "ERROR:", its log again): the plugin leaves one
    assert text.count(message) == 1, text
    if not json_mode:
        assert f"ERROR:\t{message}" in run.stderr
    assert "ResourceWarning" not in text and "Traceback" not in text, text
    assert not out.exists()


@pytest.mark.skipif(not Path(QGIS_PROCESS).exists(), reason="qgis_process.bin is not installed")
def test_qgis_process_reports_a_failed_training_once_and_closes_its_pipes(tmp_path):
    """The training child fails: one message, no ResourceWarning for its stdout/stderr pipes."""
    env = qgis_process_env(tmp_path)
    data = tmp_path / "obs.csv"
    data.write_text("species,latitude,longitude\n" + "".join(
        f"{['Aus bus', 'Cus dus'][i % 2]},{40 + i % 5},{-90 + i % 7}\n" for i in range(40)))
    python = tmp_path / "python3"  # passes the availability probe, then fails as the training CLI
    python.write_text("#!/bin/sh\nif [ \"$1\" = -c ]; then echo '{\"python\": \"3.11.2\", \"torch\": \"2.3\", "
                      "\"missing\": []}'; exit 0; fi\necho 'Segmentation fault in the fake trainer' >&2\nexit 3\n")
    python.chmod(0o755)
    run = run_qgis_process(env, "run", "sinr:train_model", "--", f"INPUT_FILE={data}", f"PYTHON={python}",
                           "EPOCHS=1", f"OUTPUT={tmp_path / 'm.sinr'}")
    assert run.returncode != 0
    text = run.stdout + run.stderr
    assert text.count("The training process exited with status 3.") == 1, text
    assert "Segmentation fault in the fake trainer" in text
    assert "ResourceWarning" not in text and "Traceback" not in text, text
    assert not (tmp_path / "m.sinr").exists()


@pytest.mark.skipif(not Path(QGIS_PROCESS).exists(), reason="qgis_process.bin is not installed")
def test_qgis_process_names_the_extent_it_needs(model_file, tmp_path):  # noqa: F811
    """No canvas on the command line, so no default extent: QGIS names the missing parameter, and the
    help says how to write it."""
    env = qgis_process_env(tmp_path)
    run = run_qgis_process(env, "run", "sinr:predict_range", "--", f"MODEL={model_file}", "SPECIES=sp001",
                           f"OUTPUT={tmp_path / 'x.tif'}")
    assert run.returncode != 0
    assert "mandatory parameters were not specified" in run.stderr and "EXTENT" in run.stderr, run.stderr
    helped = run_qgis_process(env, "help", "sinr:predict_range")
    assert "xmin,xmax,ymin,ymax [EPSG:4326]" in helped.stdout
    assert "PIXEL_SIZE: Pixel size (0: automatic)" in helped.stdout
