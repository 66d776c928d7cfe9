"""The algorithms with the bundled model (MODEL left empty): real ranges and stored LPT-R thresholds."""
from __future__ import annotations

import processing
import pytest

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.toolbelt.paths import BUNDLED_MODEL

from .prediction_helpers import RecordingFeedback, pixel_centre, read_raster, sinr_provider  # noqa: F401


def test_red_maple_with_the_bundled_model_and_its_lpt_r_threshold(sinr_provider, tmp_path):  # noqa: F811
    out = tmp_path / "acru.tif"
    feedback = RecordingFeedback()
    processing.run("sinr:predict_range", {
        "MODEL": "", "SPECIES": "Acer rubrum", "EXTENT": "-107,-75,32,42 [EPSG:4326]", "PIXEL_SIZE": 1.0,
        "MASK_OCEAN": True, "THRESHOLD": 2, "OUTPUT": str(out)}, feedback=feedback)
    data, info = read_raster(out)
    assert info["size"] == (32, 10)
    assert info["metadata"]["MODEL_NAME"] == "na_trees_coords_v1"
    acru = ModelBundle.load(BUNDLED_MODEL).find_species("acer rubrum")
    assert acru.threshold is not None
    assert float(info["band_metadata"][1]["THRESHOLD"]) == pytest.approx(acru.threshold, rel=1e-5)
    assert feedback.warnings == []  # the bundle stores LPT-R: no fallback
    # central Pennsylvania (row 1, col 29: -77.5, 40.5) is red maple country; southern New Mexico is not
    assert pixel_centre(info["gt"], 1, 29) == pytest.approx((-77.5, 40.5))
    assert pixel_centre(info["gt"], 9, 0) == pytest.approx((-106.5, 32.5))
    assert data[0, 1, 29] > 0.8 and data[1, 1, 29] == 1.0
    assert data[0, 9, 0] < 0.4 and data[1, 9, 0] == 0.0
