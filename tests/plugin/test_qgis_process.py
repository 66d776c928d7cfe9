"""sinr:predict_range from the command line: qgis_process.bin with the plugin on QGIS_PLUGINPATH."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from sinr_qgis.core import runtime
from tests.helpers.prediction_helpers import bundle, model_file, pixel_centre, read_raster  # noqa: F401
from tests.helpers.qgis_process import QGIS_PROCESS, qgis_process_profile, run_qgis_process  # noqa: F401
from tests.tolerances import bundle_prob_atol

pytestmark = pytest.mark.integration  # every test boots qgis_process.bin


@pytest.mark.skipif(not Path(QGIS_PROCESS).exists(), reason="qgis_process.bin is not installed")
def test_predict_range_runs_from_qgis_process(model_file, bundle, qgis_process_profile, tmp_path):  # noqa: F811
    env = qgis_process_profile
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
@pytest.mark.parametrize("json_mode", [False, True])
def test_qgis_process_reports_an_unknown_species_once_with_suggestions(model_file, qgis_process_profile, tmp_path,  # noqa: F811
                                                                    json_mode):
    env = qgis_process_profile
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
def test_qgis_process_reports_a_failed_training_once_and_closes_its_pipes(qgis_process_profile, tmp_path):  # noqa: F811
    """The training child fails: one message, no ResourceWarning for its stdout/stderr pipes."""
    env = qgis_process_profile
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
def test_qgis_process_names_the_extent_it_needs(model_file, qgis_process_profile, tmp_path):  # noqa: F811
    """No canvas on the command line, so no default extent: QGIS names the missing parameter, and the
    help says how to write it."""
    env = qgis_process_profile
    run = run_qgis_process(env, "run", "sinr:predict_range", "--", f"MODEL={model_file}", "SPECIES=sp001",
                           f"OUTPUT={tmp_path / 'x.tif'}")
    assert run.returncode != 0
    assert "mandatory parameters were not specified" in run.stderr and "EXTENT" in run.stderr, run.stderr
    helped = run_qgis_process(env, "help", "sinr:predict_range")
    assert "xmin,xmax,ymin,ymax [EPSG:4326]" in helped.stdout
    assert "PIXEL_SIZE: Pixel size (0: automatic)" in helped.stdout
    assert "LOCAL_EVIDENCE: Use local evidence (nearby records) if the model stores it" in helped.stdout
