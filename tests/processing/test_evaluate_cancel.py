"""A cancelled evaluation ends as a cancel (core ``CancelledError`` through ``user_errors``), never as
a wrong error about the data read so far, and writes nothing."""
from __future__ import annotations

import processing
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from tests.helpers.evaluate_helpers import EXTENT, point_layer, ranges_layer
from tests.helpers.prediction_helpers import bundle, model_file, sinr_provider  # noqa: F401

SITES = [((-90.0 + i, 35.0 + i % 5), (i % 2, 1 - i % 2)) for i in range(12)]


def _cancelled() -> QgsProcessingFeedback:
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    return feedback


def test_presence_absence_cancelled_while_reading_the_points(sinr_provider, model_file, tmp_path):  # noqa: F811
    # before: the points read so far (none) gave "None of the species matches a species of the model."
    layer = point_layer("field=sp001:integer&field=sp002:integer", SITES)
    report = tmp_path / "pa.html"
    with pytest.raises(QgsProcessingException) as err:
        processing.run("sinr:evaluate_presence_absence", {
            "INPUT": layer, "MODEL": str(model_file), "SPECIES_FIELDS": ["sp001", "sp002"],
            "OUTPUT_TABLE": str(tmp_path / "pa.csv"), "OUTPUT_REPORT": str(report)}, feedback=_cancelled())
    assert str(err.value) == "Cancelled while reading the points."
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_ranges_cancelled_while_reading_the_polygons(sinr_provider, model_file, tmp_path):  # noqa: F811
    # before: no polygon read gave "None of the range layer's species matches a species of the model."
    with pytest.raises(QgsProcessingException) as err:
        processing.run("sinr:evaluate_ranges", {
            "RANGES": ranges_layer(), "SPECIES_FIELD": "taxon", "EXTENT": EXTENT, "PIXEL_SIZE": 1.0,
            "MODEL": str(model_file), "OUTPUT_TABLE": str(tmp_path / "r.csv"),
            "OUTPUT_REPORT": str(tmp_path / "r.html")}, feedback=_cancelled())
    assert str(err.value) == "Evaluation cancelled."
    assert sorted(p.name for p in tmp_path.iterdir()) == []
