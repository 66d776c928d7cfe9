"""sinr:evaluate_presence_absence, sinr:evaluate_ranges and the dock's Compare treat every reference
where AP means nothing alike: skipped with one reason text (metrics.ap_undefined_reason), left out
of MAP, and shown in the log, the table (empty AP + ``skipped``), the CSV and the report."""
from __future__ import annotations

import csv

import numpy as np
import processing
import pytest
from qgis.core import NULL, QgsProcessingException, QgsVectorLayer
from sklearn.metrics import average_precision_score

from sinr_qgis.core import metrics, runtime
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.raster_io import write_geotiff
from sinr_qgis.processing import evaluation_outputs
from tests.helpers.evaluate_helpers import RECT_1, grid_cells, inside, point_layer, ranges_layer
from tests.helpers.prediction_helpers import RecordingFeedback, bundle, model_file, sinr_provider  # noqa: F401
from tests.tolerances import ap_atol

SITES = [(-77.1 + 0.37 * i, 36.2 + 0.29 * (i % 11)) for i in range(30)]
MIXED = [1, 0, 0, 1, 0, 1, 1, 0, 0, 0] * 3  # sp002: 12 presences, 18 absences


def _plots() -> QgsVectorLayer:
    """Wide layout: sp001 present on every plot, sp002 mixed, sp003 on none, sp004 surveyed on one
    plot only, sp005 mixed with one value that is neither 1 nor 0."""
    rows = []
    for i, site in enumerate(SITES):
        sp005 = "maybe" if i == 4 else str(1 - MIXED[i])
        rows.append((site, (1, MIXED[i], 0, 1 if i == 7 else None, sp005)))
    return point_layer("field=sp001:integer&field=sp002:integer&field=sp003:integer&field=sp004:integer"
                        "&field=sp005:string", rows)


def test_presence_absence_skips_a_species_present_on_every_plot_like_one_present_on_none(
        sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    feedback = RecordingFeedback()
    table, report = tmp_path / "eval.gpkg", tmp_path / "eval.html"
    result = processing.run("sinr:evaluate_presence_absence", {
        "INPUT": _plots(), "MODEL": str(model_file), "OUTPUT_TABLE": str(table), "OUTPUT_REPORT": str(report)},
        feedback=feedback)
    reasons = {"sp001": metrics.ap_undefined_reason(np.ones(30)),
               "sp003": metrics.ap_undefined_reason(np.zeros(30)),
               "sp004": metrics.ap_undefined_reason(np.ones(1))}
    assert reasons["sp001"].startswith("no absence among its 30 evaluated points")
    # the log names each skipped species, its reason, and that it is out of MAP
    for code, reason in reasons.items():
        assert sum(w.startswith(f"Skipped {code} (") and reason in w and "left out of MAP" in w
                   for w in feedback.warnings) == 1, code
    assert any(w.startswith("1 value(s) were skipped because they say neither present nor absent")
               for w in feedback.warnings)
    assert (result["N_SPECIES"], result["N_SKIPPED"]) == (2, 3)

    # the table: every matched species, the skipped ones with an empty AP and the reason
    layer = QgsVectorLayer(str(table), "t", "ogr")
    rows = {f["code"]: f for f in layer.getFeatures()}
    assert sorted(rows) == ["sp001", "sp002", "sp003", "sp004", "sp005"]
    for code, reason in reasons.items():
        assert rows[code]["ap"] == NULL and rows[code]["f1"] == NULL
        assert rows[code]["skipped"] == reason
    assert (rows["sp001"]["n_cells"], rows["sp001"]["n_presence"]) == (30, 30)
    assert (rows["sp004"]["n_cells"], rows["sp004"]["n_presence"]) == (1, 1)

    # the two evaluated species, against scikit-learn; MAP is their mean only
    emb = runtime.Predictor(bundle).embed(np.array(SITES)).astype(np.float64)
    logits = (emb @ bundle.head[[2, 5]].T.astype(np.float64)).astype(np.float32)
    y2 = np.array(MIXED)
    keep5 = np.arange(30) != 4  # "maybe" is not a label
    y5 = 1 - y2[keep5]
    ap2 = average_precision_score(y2, logits[:, 0])
    ap5 = average_precision_score(y5, logits[keep5, 1])
    # the algorithm embeds in its own batches: AP moves only where near-tied scores swap order
    assert rows["sp002"]["ap"] == pytest.approx(100 * ap2, abs=100 * ap_atol(y2, logits[:, 0]) + 5e-5)
    assert rows["sp005"]["ap"] == pytest.approx(100 * ap5, abs=100 * ap_atol(y5, logits[keep5, 1]) + 5e-5)
    assert rows["sp005"]["n_cells"] == 29 and rows["sp002"]["skipped"] == NULL
    assert result["MAP"] == round((rows["sp002"]["ap"] + rows["sp005"]["ap"]) / 2, 2)

    # the CSV beside the report and the report itself list the skipped species with the reason
    with open(tmp_path / "eval.csv", newline="", encoding="utf-8") as f:
        csv_rows = {r["code"]: r for r in csv.DictReader(f)}
    assert sorted(csv_rows) == sorted(rows)
    assert csv_rows["sp001"]["ap"] == "" and csv_rows["sp001"]["skipped"] == reasons["sp001"]
    html = report.read_text(encoding="utf-8")
    assert "Skipped sp001 (Species number1): no absence among its 30 evaluated points" in html
    assert html.count('class="pr-curve"') == 2


def _prediction_raster(tmp_path):
    """Scores equal to longitude for sp001, sp002 and sp003 on the 1-degree test grid."""
    grid = Grid.from_pixel_size((-100, 30, -80, 46), "EPSG:4326", 1.0)
    ll, _land, _ = grid_cells()
    by_lon = ((ll[:, 0] + 100) / 20).astype(np.float32).reshape(16, 20)
    path = tmp_path / "pred.tif"
    write_geotiff(path, grid, np.stack([by_lon] * 3), band_names=["a", "b", "c"],
                  band_metadata=[{"SPECIES_CODE": f"sp00{i}"} for i in (1, 2, 3)])
    return path, by_lon


def test_evaluate_ranges_skips_a_range_covering_every_cell_with_the_same_rule(sinr_provider, tmp_path):  # noqa: F811
    path, by_lon = _prediction_raster(tmp_path)
    layer = ranges_layer(features=[("sp001", [RECT_1]), ("sp002", [(-120, 20, -60, 60)]),
                                   ("sp003", [(10, 10, 20, 20)])])
    feedback = RecordingFeedback()
    result = processing.run("sinr:evaluate_ranges", {
        "RANGES": layer, "SPECIES_FIELD": "taxon", "PREDICTION": [str(path)], "EXTENT": "-100,-80,30,46 [EPSG:4326]",
        "PIXEL_SIZE": 1.0, "AREA_WEIGHTED": False, "OUTPUT_TABLE": "memory:"}, feedback=feedback)
    ll, land, _ = grid_cells()
    n = int(land.sum())
    rows = {f["code"]: f for f in result["OUTPUT_TABLE"].getFeatures()}
    assert rows["sp002"]["skipped"] == metrics.ap_undefined_reason(np.ones(n), unit="cell")
    assert rows["sp003"]["skipped"] == metrics.ap_undefined_reason(np.zeros(n), unit="cell")
    assert rows["sp002"]["skipped"].startswith(f"no absence among its {n} evaluated cells")
    assert (rows["sp002"]["n_cells"], rows["sp002"]["n_presence"]) == (n, n)
    assert any(w.startswith("Skipped sp002 (") and "no absence" in w for w in feedback.warnings)
    ap1 = average_precision_score(inside(ll[land], RECT_1), by_lon.ravel()[land])  # exact scores: tight
    assert rows["sp001"]["ap"] == pytest.approx(100 * ap1, abs=1e-4)
    assert result["MAP"] == round(100 * ap1, 2) and (result["N_SPECIES"], result["N_SKIPPED"]) == (1, 2)


def test_prediction_raster_not_covering_the_extent_counts_the_unscored_cells(sinr_provider, tmp_path):  # noqa: F811
    grid = Grid.from_pixel_size((-100, 38, -80, 46), "EPSG:4326", 1.0)  # the northern half only
    ll, land, _ = grid_cells()
    values = ((ll[:, 0] + 100) / 20).astype(np.float32).reshape(16, 20)[:8]
    path = tmp_path / "north.tif"
    write_geotiff(path, grid, values, band_names=["a"], band_metadata=[{"SPECIES_CODE": "sp001"}])
    feedback = RecordingFeedback()
    result = processing.run("sinr:evaluate_ranges", {
        "RANGES": ranges_layer(features=[("sp001", [RECT_1])]), "SPECIES_FIELD": "taxon", "PREDICTION": [str(path)],
        "EXTENT": "-100,-80,30,46 [EPSG:4326]", "PIXEL_SIZE": 1.0, "AREA_WEIGHTED": False,
        "OUTPUT_TABLE": "memory:"}, feedback=feedback)
    south = int(land.reshape(16, 20)[8:].sum())
    assert f"sp001 (sp001): {south} of its {int(land.sum())} cells have no score" in " ".join(
        feedback.warnings)
    row = next(result["OUTPUT_TABLE"].getFeatures())
    assert row["n_cells"] == int(land.reshape(16, 20)[:8].sum())


def test_every_species_skipped_is_one_clear_error_and_no_table(sinr_provider, model_file, tmp_path):  # noqa: F811
    rows = [(site, (1, 0)) for site in SITES]
    layer = point_layer("field=sp001:integer&field=sp003:integer", rows)
    table = tmp_path / "none.gpkg"
    with pytest.raises(QgsProcessingException) as err:
        processing.run("sinr:evaluate_presence_absence", {"INPUT": layer, "MODEL": str(model_file),
                                                          "OUTPUT_TABLE": str(table)})
    text = str(err.value)
    assert text.startswith("No species could be evaluated: sp001 (Species number1): no absence among its 30")
    assert "sp003 (Species number3): no presence among its 30 evaluated points" in text
    assert not table.exists()


def test_an_unwritable_report_is_a_clear_error(sinr_provider, model_file, tmp_path, monkeypatch):  # noqa: F811
    rows = [(site, (MIXED[i],)) for i, site in enumerate(SITES)]
    layer = point_layer("field=sp002:integer", rows)

    def disk_full(path, _rows):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(evaluation_outputs.eval_report, "write_csv", disk_full)
    with pytest.raises(QgsProcessingException, match=r"Cannot write .*eval\.csv: No space left on device"):
        processing.run("sinr:evaluate_presence_absence", {
            "INPUT": layer, "MODEL": str(model_file), "OUTPUT_TABLE": "memory:",
            "OUTPUT_REPORT": str(tmp_path / "eval.html")})
    with pytest.raises(QgsProcessingException, match="does not exist"):
        processing.run("sinr:evaluate_presence_absence", {
            "INPUT": layer, "MODEL": str(model_file), "OUTPUT_TABLE": "memory:",
            "OUTPUT_REPORT": str(tmp_path / "nowhere" / "eval.html")})
