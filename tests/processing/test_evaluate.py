"""sinr:evaluate_ranges and sinr:evaluate_presence_absence on small synthetic layers with known AP.

Expected numbers are computed independently: cell centres and labels with numpy, scores with the
runtime at those centres, AP with scikit-learn.
"""
from __future__ import annotations

import re

import numpy as np
import processing
import pytest
from sklearn.metrics import average_precision_score

from sinr_qgis.core import runtime
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.raster_io import write_geotiff
from tests.helpers.evaluate_helpers import EXTENT, RECT_1, RECT_3, grid_cells, inside, point_layer, ranges_layer
from tests.helpers.prediction_helpers import RecordingFeedback, bundle, model_file, sinr_provider  # noqa: F401
from tests.tolerances import ap_atol


def expected(bundle, ll, land, rect, index, weights=None):  # noqa: F811
    """(AP, labels, tolerance of the table's AP in percent) of species ``index`` on the land cells."""
    emb = runtime.Predictor(bundle).embed(ll[land]).astype(np.float64)
    logits = (emb @ bundle.head[index].astype(np.float64)).astype(np.float32)  # as the algorithm stores them
    y = inside(ll[land], rect)
    w = None if weights is None else weights[land]
    return average_precision_score(y, logits, sample_weight=w), y, ap_percent_atol(y, logits, w)


def ap_percent_atol(y, logits, w=None) -> float:
    """The algorithm embeds in its own batches and multiplies in float32: AP moves only where
    near-tied scores swap order (float32 rounding); the table rounds AP (percent) to 4 decimals."""
    return 100 * ap_atol(y, logits, w) + 5e-5


def map_matches(value, aps_percent, tols) -> bool:
    """MAP is the mean AP rounded to 2 decimals: within 0.005 of the mean, plus the AP tolerances."""
    return value == round(value, 2) and abs(value - np.mean(aps_percent)) <= 0.005 + np.mean(tols)


def run_ranges(params, feedback=None):
    base = {"RANGES": ranges_layer(), "SPECIES_FIELD": "taxon", "EXTENT": EXTENT, "PIXEL_SIZE": 1.0,
            "AREA_WEIGHTED": False, "OUTPUT_TABLE": "memory:"}
    result = processing.run("sinr:evaluate_ranges", {**base, **params}, feedback=feedback)
    rows = {f["code"]: {k: f[k] for k in f.fields().names()} for f in result["OUTPUT_TABLE"].getFeatures()}
    return result, rows


def test_evaluate_ranges_gives_the_independent_ap(sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    feedback = RecordingFeedback()
    report = tmp_path / "report.html"
    result, rows = run_ranges({"MODEL": str(model_file), "OUTPUT_REPORT": str(report)}, feedback)
    ll, land, _ = grid_cells()
    assert 250 < land.sum() < 320  # the Gulf coast leaves some cells out
    ap1, y1, tol1 = expected(bundle, ll, land, RECT_1, 1)
    ap3, y3, tol3 = expected(bundle, ll, land, RECT_3, 3)
    assert sorted(rows) == ["sp001", "sp003"]
    r1, r3 = rows["sp001"], rows["sp003"]
    assert r1["ap"] == pytest.approx(100 * ap1, abs=tol1)
    assert r3["ap"] == pytest.approx(100 * ap3, abs=tol3)
    assert r1["n_cells"] == r3["n_cells"] == land.sum()
    assert (r1["n_presence"], r3["n_presence"]) == (y1.sum(), y3.sum()) == (36, 30)
    assert r1["prevalence"] == pytest.approx(y1.mean(), abs=1e-6)
    assert r3["reference"] == "SPECIES NUMBER3" and r3["name"] == "Species number3"
    assert 0 < r1["f1"] <= 1 and 0 < r1["iou"] <= r1["f1"] and 0 < r1["f1_threshold"] < 1
    assert map_matches(result["MAP"], [100 * ap1, 100 * ap3], [tol1, tol3])
    assert result["N_SPECIES"] == 2
    assert any("Quercus nowhere" in w for w in feedback.warnings)
    # report: table, one curve and one map per species; a CSV copy beside it
    text = report.read_text(encoding="utf-8")
    assert text.count('class="pr-curve"') == 2 and text.count('class="map-thumbnail"') == 2
    assert text.count("data:image/png;base64,") == 2
    assert any(f"{100 * ap1 + d:.2f}" in text for d in (-tol1, 0, tol1))  # 2 decimals, either side of a tie
    csv_lines = (tmp_path / "report.csv").read_text().splitlines()
    assert csv_lines[0].startswith("code,name,reference,ap,") and len(csv_lines) == 3
    assert result["CSV"] == str(tmp_path / "report.csv")


def test_area_weighting_uses_cos_latitude(sinr_provider, model_file, bundle):  # noqa: F811
    _result, rows = run_ranges({"MODEL": str(model_file), "AREA_WEIGHTED": True})
    ll, land, cos = grid_cells()
    ap1, _, tol1 = expected(bundle, ll, land, RECT_1, 1, cos)
    plain, _, _ = expected(bundle, ll, land, RECT_1, 1)
    assert rows["sp001"]["ap"] == pytest.approx(100 * ap1, abs=tol1)
    assert abs(ap1 - plain) > 1e-4  # the weights do change the number


@pytest.mark.parametrize("crs", ["EPSG:5070", "EPSG:3857"])
def test_a_projected_range_layer_gives_the_same_result(sinr_provider, model_file, crs):  # noqa: F811
    _r, in_4326 = run_ranges({"MODEL": str(model_file)})
    result, projected = run_ranges({"MODEL": str(model_file), "RANGES": ranges_layer(crs)})
    assert projected == in_4326
    assert result["N_SPECIES"] == 2


def test_species_field_can_be_left_empty_and_matching_is_by_code_or_name(sinr_provider, model_file):  # noqa: F811
    layer = ranges_layer(features=[("Species Number1", [RECT_1]), ("SP003", [RECT_3]), ("sp001", [RECT_3])])
    feedback = RecordingFeedback()
    _r, rows = run_ranges({"MODEL": str(model_file), "RANGES": layer, "SPECIES_FIELD": ""}, feedback)
    assert any("Species field: taxon" in i for i in feedback.infos)
    assert sorted(rows) == ["sp001", "sp003"]
    # "Species Number1" and "sp001" are one species: their polygons are merged
    ll, land, _ = grid_cells()
    both = inside(ll[land], RECT_1) | inside(ll[land], RECT_3)
    assert rows["sp001"]["n_presence"] == both.sum()
    assert not feedback.warnings


def test_prediction_rasters_instead_of_the_model(sinr_provider, tmp_path):  # noqa: F811
    """A map equal to the range scores AP 100 %, F1 1; a map ranking by longitude scores as sklearn says."""
    grid = Grid.from_pixel_size((-100, 30, -80, 46), "EPSG:4326", 1.0)
    ll, land, _ = grid_cells()
    perfect = inside(ll, RECT_1).astype(np.float32).reshape(16, 20)
    by_lon = ((ll[:, 0] + 100) / 20).astype(np.float32).reshape(16, 20)
    path = tmp_path / "pred.tif"
    write_geotiff(path, grid, np.stack([perfect, by_lon, perfect]), band_names=["a", "Species number3", "bin"],
                  band_metadata=[{"SPECIES_CODE": "sp001", "SPECIES_NAME": "Species number1", "VALUE": "probability"},
                                 {}, {"SPECIES_CODE": "sp001", "VALUE": "binary"}])
    result, rows = run_ranges({"PREDICTION": [str(path)], "EXTENT": None, "PIXEL_SIZE": 0,
                               "OUTPUT_REPORT": str(tmp_path / "r.html")})
    assert rows["sp001"]["ap"] == pytest.approx(100.0)
    assert rows["sp001"]["f1"] == pytest.approx(1.0) and rows["sp001"]["iou"] == pytest.approx(1.0)
    assert rows["sp001"]["f1_threshold"] == pytest.approx(1.0)
    exp3 = average_precision_score(inside(ll[land], RECT_3), by_lon.ravel()[land])
    # the range layer names species 3 by name; the band has only a description: matched by name
    assert rows["Species number3"]["ap"] == pytest.approx(100 * exp3, abs=1e-4)
    assert result["MAP"] == pytest.approx(round(50 * (1 + exp3), 2))


def test_a_raster_reference_equals_its_polygons(sinr_provider, model_file, tmp_path):  # noqa: F811
    grid = Grid.from_pixel_size((-100, 30, -80, 46), "EPSG:4326", 1.0)
    ll, _, _ = grid_cells()
    ref = tmp_path / "ref.tif"
    write_geotiff(ref, grid, inside(ll, RECT_1).astype(np.float32).reshape(16, 20), band_names=["sp001"])
    from qgis.core import QgsRasterLayer
    _r, polys = run_ranges({"MODEL": str(model_file)})
    _r, raster = run_ranges({"MODEL": str(model_file), "RANGES": QgsRasterLayer(str(ref), "ref"),
                             "SPECIES_FIELD": ""})
    assert list(raster) == ["sp001"]
    assert raster["sp001"]["ap"] == pytest.approx(polys["sp001"]["ap"], abs=1e-9)
    assert raster["sp001"]["reference"] == "sp001"


def test_no_matching_species_is_a_clear_error(sinr_provider, model_file):  # noqa: F811
    from qgis.core import QgsProcessingException
    layer = ranges_layer(features=[("Pinus imaginaria", [RECT_1])])
    with pytest.raises(QgsProcessingException, match="None of the range layer's species"):
        run_ranges({"MODEL": str(model_file), "RANGES": layer})


# ---- presence/absence ----------------------------------------------------------------------------
SITES = [(-77.1 + 0.37 * i, 36.2 + 0.29 * (i % 11)) for i in range(40)]


def _pa_labels():
    rng = np.random.default_rng(5)
    a = (rng.random(len(SITES)) < 0.4).astype(int)
    b = (rng.random(len(SITES)) < 0.5).astype(int)
    a[:2], b[:2] = 1, 0
    return a, b


def _pa_expected(bundle):  # noqa: F811
    """AP of species 2 and 4 at the sites, which sites know species 4, and the two AP tolerances."""
    a, b = _pa_labels()
    emb = runtime.Predictor(bundle).embed(np.array(SITES)).astype(np.float64)
    logits = (emb @ bundle.head[[2, 4]].T.astype(np.float64)).astype(np.float32)
    known_b = np.arange(len(SITES)) % 7 != 3  # species 4 was not surveyed at every 7th site
    tols = (ap_percent_atol(a, logits[:, 0]), ap_percent_atol(b[known_b], logits[known_b, 1]))
    return (average_precision_score(a, logits[:, 0]),
            average_precision_score(b[known_b], logits[known_b, 1]), known_b, tols)


def _pa_run(params, feedback=None):
    result = processing.run("sinr:evaluate_presence_absence", {**params, "OUTPUT_TABLE": "memory:"},
                            feedback=feedback)
    rows = {f["code"]: {k: f[k] for k in f.fields().names()} for f in result["OUTPUT_TABLE"].getFeatures()}
    return result, rows


def test_presence_absence_wide_layout(sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    a, b = _pa_labels()
    ap_a, ap_b, known_b, tols = _pa_expected(bundle)
    rows = [(site, (int(a[i]), int(b[i]) if known_b[i] else None, 1))
            for i, site in enumerate(SITES)]
    layer = point_layer("field=SP002:integer&field=Species number4:integer&field=notaspecies:integer", rows)
    feedback = RecordingFeedback()
    report = tmp_path / "pa.html"
    result, table = _pa_run({"INPUT": layer, "MODEL": str(model_file), "SPECIES_FIELDS": [],
                             "OUTPUT_REPORT": str(report)}, feedback)
    assert table["sp002"]["ap"] == pytest.approx(100 * ap_a, abs=tols[0])
    assert table["sp004"]["ap"] == pytest.approx(100 * ap_b, abs=tols[1])
    assert table["sp002"]["n_cells"] == len(SITES) and table["sp004"]["n_cells"] == known_b.sum()
    assert table["sp004"]["reference"] == "Species number4"
    assert map_matches(result["MAP"], [100 * ap_a, 100 * ap_b], tols)
    assert report.read_text().count('class="pr-curve"') == 2
    # explicit fields, one of them unknown to the model: reported, not evaluated
    feedback = RecordingFeedback()
    _result2, table2 = _pa_run({"INPUT": layer, "MODEL": str(model_file),
                               "SPECIES_FIELDS": ["SP002", "notaspecies"]}, feedback)
    assert list(table2) == ["sp002"] and table2["sp002"]["ap"] == table["sp002"]["ap"]
    assert any("notaspecies" in w for w in feedback.warnings)


def test_presence_absence_long_layout_gives_the_same_numbers(sinr_provider, model_file, bundle):  # noqa: F811
    a, b = _pa_labels()
    ap_a, ap_b, known_b, tols = _pa_expected(bundle)
    rows = []
    for i, site in enumerate(SITES):
        rows.append((site, ("sp002", int(a[i]))))
        if known_b[i]:
            rows.append((site, ("SPECIES NUMBER4", "yes" if b[i] else "no")))
    rows.append((SITES[0], ("Acer imaginarium", 1)))
    layer = point_layer("field=taxon:string&field=present:string", rows)
    feedback = RecordingFeedback()
    result, table = _pa_run({"INPUT": layer, "MODEL": str(model_file), "SPECIES_FIELD": "taxon",
                             "PRESENCE_FIELD": "present"}, feedback)
    assert table["sp002"]["ap"] == pytest.approx(100 * ap_a, abs=tols[0])
    assert table["sp004"]["ap"] == pytest.approx(100 * ap_b, abs=tols[1])
    assert map_matches(result["MAP"], [100 * ap_a, 100 * ap_b], tols)
    assert any("Acer imaginarium" in w for w in feedback.warnings)


def test_help_says_map_is_in_percent(sinr_provider):  # noqa: F811
    from qgis.core import QgsApplication
    for alg_id in ("sinr:evaluate_ranges", "sinr:evaluate_presence_absence"):
        alg = QgsApplication.processingRegistry().algorithmById(alg_id)
        text = re.sub(r"<[^>]+>", "", alg.shortHelpString())
        assert "in percent" in text and "rank" in text
        assert "Prevalence matters" in text


def test_a_prediction_raster_in_another_crs_is_warped_onto_the_grid(sinr_provider, tmp_path):  # noqa: F811
    """A fine Web Mercator map equal to 1 inside RECT_1, averaged onto the 1-degree lon/lat grid:
    the cells inside the range score 1, the cells outside 0, edges in between: AP 100 %."""
    merc = Grid.from_pixel_size((-11_200_000, 3_500_000, -8_900_000, 5_800_000), "EPSG:3857", 10_000)
    lonlat, _ok = merc.lonlat()
    values = inside(lonlat, RECT_1).astype(np.float32).reshape(merc.shape)
    path = tmp_path / "merc.tif"
    write_geotiff(path, merc, values, band_names=["Species number1"], band_metadata=[{"SPECIES_CODE": "sp001"}])
    result, rows = run_ranges({"PREDICTION": [str(path)], "OUTPUT_REPORT": str(tmp_path / "m.html")})
    assert list(rows) == ["sp001"] and result["N_SPECIES"] == 1
    assert rows["sp001"]["ap"] == pytest.approx(100.0)
    assert rows["sp001"]["n_presence"] == 36
