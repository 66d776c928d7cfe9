"""Member checksums where bundles are loaded: Processing and the dock refuse an altered bundle with
the member's name, and load an older bundle without checksums with the warning shown."""
from __future__ import annotations

import processing
import pytest
from qgis.core import QgsProcessingException

from sinr_qgis.gui.dock import SinrDock
from tests.helpers.bundle_files import copy_bundle
from tests.helpers.prediction_helpers import RecordingFeedback, model_file, sinr_provider  # noqa: F401
from tests.helpers.settings_helpers import restore_settings  # noqa: F401  (the dock stores the chosen model)
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401  (a model opened in the dock joins My models)

PARAMS = {"SPECIES": "sp000", "EXTENT": "-80,-78,35,37 [EPSG:4326]", "PIXEL_SIZE": 1.0, "MASK_OCEAN": False}


def test_processing_refuses_an_altered_member_and_writes_nothing(sinr_provider, model_file, tmp_path):  # noqa: F811
    bad = copy_bundle(model_file, tmp_path / "altered.sinr", flip_onnx=True)
    with pytest.raises(QgsProcessingException, match=r"altered\.sinr: encoder\.onnx is damaged or was altered"):
        processing.run("sinr:predict_range", {**PARAMS, "MODEL": str(bad), "OUTPUT": str(tmp_path / "x.tif")})
    assert not (tmp_path / "x.tif").exists()


def test_processing_shows_the_warning_of_a_bundle_without_sums(sinr_provider, model_file, tmp_path):  # noqa: F811
    old = copy_bundle(model_file, tmp_path / "old.sinr", drop_sums=True)
    feedback = RecordingFeedback()
    processing.run("sinr:predict_range", {**PARAMS, "MODEL": str(old), "OUTPUT": str(tmp_path / "o.tif")},
                   feedback=feedback)
    assert (tmp_path / "o.tif").is_file()
    assert [w for w in feedback.warnings if "checksums" in w] == [
        "old.sinr has no SHA-256 checksums of its files (it was written by an older version), so damage to "
        "them cannot be detected. Export or save it again with this version to add them."]


def test_dock_shows_the_warning_or_the_refusal(qgis_iface, model_file, tmp_path, restore_settings,  # noqa: F811
                                               isolated_model_list):  # noqa: F811
    dock = SinrDock(qgis_iface)
    assert dock.choose_model(str(copy_bundle(model_file, tmp_path / "old.sinr", drop_sums=True)))
    assert "<b>Warning:</b> old.sinr has no SHA-256 checksums" in dock.model_label.text()
    # a refused file leaves the model in use loaded and says why
    assert not dock.choose_model(str(copy_bundle(model_file, tmp_path / "bad.sinr", flip_onnx=True)))
    assert dock.bundle is not None and dock.bundle.path.name == "old.sinr"
    assert "bad.sinr: encoder.onnx is damaged or was altered" in dock.status_label.text()
    assert dock.choose_model(str(model_file))
    assert dock.bundle is not None and "Warning" not in dock.model_label.text()
