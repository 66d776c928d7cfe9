"""The algorithms with the bundled model (MODEL left empty): real ranges and stored LPT-R thresholds;
the bundled file checked against its catalogue entry, whose label the dock and the help show."""
from __future__ import annotations

import dataclasses

import processing
import pytest
from qgis.core import QgsProcessingException

from sinr_qgis.core import model_cache, resources
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.resources import BUNDLED, BUNDLED_MODEL
from sinr_qgis.gui import model_list
from sinr_qgis.processing import help_text
from tests.helpers.prediction_helpers import RecordingFeedback, pixel_centre, read_raster, sinr_provider  # noqa: F401


def test_red_maple_with_the_bundled_model_and_its_lpt_r_threshold(sinr_provider, tmp_path):  # noqa: F811
    out = tmp_path / "acru.tif"
    feedback = RecordingFeedback()
    processing.run("sinr:predict_range", {
        "MODEL": "", "SPECIES": "Acer rubrum", "EXTENT": "-107,-75,32,42 [EPSG:4326]", "PIXEL_SIZE": 1.0,
        "MASK_OCEAN": True, "THRESHOLD": 2, "OUTPUT": str(out)}, feedback=feedback)
    data, info = read_raster(out)
    assert info["size"] == (32, 10)
    assert info["metadata"]["MODEL_NAME"] == "na_trees_coords_v2"
    bundle = ModelBundle.load(BUNDLED_MODEL)
    acru = bundle.find_species("acer rubrum")
    # the map is the default score (local evidence on), so its LPT-R is the one stored for that score,
    # not the network's own
    lpt_r = float(bundle.local_evidence.lpt_r[acru.index])
    assert (acru.threshold, lpt_r) == pytest.approx((0.9287, 0.5699), abs=1e-4)
    assert float(info["band_metadata"][1]["THRESHOLD"]) == pytest.approx(lpt_r, rel=1e-5)
    assert feedback.warnings == []  # the bundle stores LPT-R: no fallback
    # central Pennsylvania (row 1, col 29: -77.5, 40.5) is red maple country; southern New Mexico is not
    assert pixel_centre(info["gt"], 1, 29) == pytest.approx((-77.5, 40.5))
    assert pixel_centre(info["gt"], 9, 0) == pytest.approx((-106.5, 32.5))
    assert data[0, 1, 29] > 0.8 and data[1, 1, 29] == 1.0
    assert data[0, 9, 0] < 0.4 and data[1, 9, 0] == 0.0


def test_an_algorithm_refuses_a_bundled_file_that_is_not_the_catalogued_one(sinr_provider, monkeypatch):  # noqa: F811
    monkeypatch.setattr(model_cache, "_cache", {})
    monkeypatch.setattr(resources, "BUNDLED", dataclasses.replace(BUNDLED, sha256="ab" * 32))
    with pytest.raises(QgsProcessingException) as err:
        processing.run("sinr:model_species", {"MODEL": "", "OUTPUT": "TEMPORARY_OUTPUT"})
    assert str(err.value) == (
        f"The bundled model {BUNDLED_MODEL} is not the file the plugin shipped (SHA-256 {BUNDLED.sha256[:12]}…, "
        "expected abababababab…): it was changed or damaged. Reinstall the plugin, or choose another .sinr "
        "model file.")


def test_the_dock_and_the_help_name_the_bundled_model_from_its_catalogue_entry(sinr_provider):  # noqa: F811
    assert model_list.BUNDLED == "Bundled model (North American trees)"
    assert help_text.CREDITS == (
        "<p><b>Bundled model.</b> 169 North American trees, trained on open records: USDA Forest Service FIA "
        "(public domain; via PalEON, Doser et al. 2025 and the FIESTA package), BIEN (via the hypervolume "
        "package) and GBIF downloads (CC0/CC-BY). Cite them and Cole et al. (2023) with maps made from it.</p>")
    species = sinr_provider.algorithm("model_species")
    assert "<p><b>Input.</b> The model file; empty = the bundled North American trees model.</p>" in \
        species.shortHelpString()
    model = species.parameterDefinition("MODEL")
    assert model.description() == "Model file (leave empty for the bundled trees model)"
