"""LOCAL_EVIDENCE on the five algorithms that score species: on (the default) a model's stored local
evidence is added to the SINR logit, off gives pure SINR; maps differ exactly by the offsets,
richness and LPT-R use the thresholds of the score in use, evaluations say which score they ranked.

Reference values come from the network evaluated by core.network (numpy, float32 embedding, float64
product) plus the offsets sampled by core.local_evidence at the pixel centres."""
from __future__ import annotations

import numpy as np
import processing
import pytest
from qgis.core import QgsApplication
from sklearn.metrics import average_precision_score

from sinr_qgis.core import network, runtime
from sinr_qgis.core.metrics import sigmoid
from tests.factories import fixture_bundle
from tests.helpers.evaluate_helpers import EXTENT, RECT_1, RECT_3, grid_cells, inside, point_layer, ranges_layer
from tests.helpers.local_evidence_bundles import le_bundle
from tests.helpers.prediction_helpers import RecordingFeedback, read_raster, sinr_provider  # noqa: F401
from tests.tolerances import ap_atol, bundle_prob_atol, f32_atol, prob_atol

SCORING = ("predict_range", "species_richness", "species_at_points", "evaluate_ranges", "evaluate_presence_absence")
# sp001's records around RECT_1 (offsets vary there); the other species have none (the floor everywhere)
BOX = (-97.0, 34.0, -87.0, 44.0)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return le_bundle(tmp_path_factory.mktemp("le") / "le.sinr", {1: BOX})


def _pure_logits(bundle, ll: np.ndarray, species: list[int]) -> np.ndarray:
    emb = network.embed(bundle.weights, bundle.encoding, ll.astype(np.float32), None,
                        frequencies=bundle.frequencies, classes=bundle.covariate_classes)
    return emb.astype(np.float64) @ bundle.head[species].T.astype(np.float64)


def _centres(west: float, north: float, width: int, height: int, pixel: float) -> np.ndarray:
    """Pixel centres [height * width, 2], row-major from the top-left pixel."""
    lons = west + pixel * (np.arange(width) + 0.5)
    lats = north - pixel * (np.arange(height) + 0.5)
    return np.array([(x, y) for y in lats for x in lons])


def test_the_map_differs_from_pure_sinr_exactly_by_the_offsets(sinr_provider, model, tmp_path):  # noqa: F811
    maps, metas, logs = {}, {}, {}
    for on in (True, False):
        feedback = RecordingFeedback()
        out = tmp_path / f"{on}.tif"
        processing.run("sinr:predict_range", {"MODEL": str(model.path), "SPECIES": "sp001, sp002", "EXTENT": EXTENT,
                                              "PIXEL_SIZE": 1.0, "MASK_OCEAN": False, "LOCAL_EVIDENCE": on,
                                              "OUTPUT": str(out)}, feedback=feedback)
        data, info = read_raster(out)
        maps[on], metas[on], logs[on] = data.reshape(2, -1).T, info["metadata"], feedback.infos
    ll = _centres(-100, 46, 20, 16, 1.0)
    pure = _pure_logits(model, ll, [1, 2])
    offsets = model.local_evidence.offsets(ll, np.array([1, 2])).astype(np.float64)
    # float32 network paths (logit_atol), plus the float32 rounding of logit + offset
    tol = bundle_prob_atol(model, ll, [1, 2]) + prob_atol(f32_atol(pure + offsets))
    np.testing.assert_allclose(maps[True], sigmoid(pure + offsets), rtol=0, atol=tol)
    np.testing.assert_allclose(maps[False], sigmoid(pure), rtol=0, atol=tol)
    inside_box = inside(ll, BOX)
    assert inside_box.sum() == 100 and np.ptp(offsets[inside_box, 0]) > 4  # the offsets vary inside the window
    assert (offsets[~inside_box, 0] == np.float32(model.local_evidence.floor)).all()  # the floor outside it
    assert (offsets[:, 1] == np.float32(model.local_evidence.floor)).all()  # sp002: no records
    assert np.abs(maps[True] - maps[False]).max() > 0.3
    assert metas[True]["LOCAL_EVIDENCE"] == model.local_evidence.describe()
    assert metas[False]["LOCAL_EVIDENCE"] == "off (pure SINR)"
    assert f"Scores with {model.local_evidence.describe()}" in logs[True]
    assert "Local evidence switched off: pure SINR scores." in logs[False]


def test_richness_counts_with_the_thresholds_of_the_score_in_use(sinr_provider, tmp_path):  # noqa: F811
    ll = _centres(-90, 41, 4, 3, 1.0)  # 4 x 3 pixels: two columns in the windows, two outside
    src = fixture_bundle(tmp_path / "src.sinr")
    pure = runtime.Predictor(src).predict_points(ll, None)  # [12, 6]
    for s in src.species:  # the network's LPT-R: splits its pixels; sp005 has none (falls back to 0.5)
        s.threshold = float(np.median(pure[:, s.index])) if s.index < 5 else None
    model = le_bundle(tmp_path / "rich.sinr", {1: (-89.0, 37.5, -87.0, 41.5), 3: (-89.0, 37.5, -87.0, 41.5)},
                      src=src, seed=4)
    with_le = runtime.Predictor(model).predict_points(ll, None)
    lpt_r = np.append(np.median(with_le[:, :5], axis=0), np.nan)  # the local-evidence LPT-R; sp005: none
    model = le_bundle(tmp_path / "rich.sinr", {1: (-89.0, 37.5, -87.0, 41.5), 3: (-89.0, 37.5, -87.0, 41.5)},
                      src=src, seed=4, lpt_r=lpt_r)
    expected = {True: (with_le >= np.append(lpt_r[:5], 0.5).astype(np.float32)).sum(axis=1),
                False: (pure >= np.array([s.threshold or 0.5 for s in model.species], np.float32)).sum(axis=1)}
    thresholds = {True: np.append(lpt_r[:5], 0.5), False: [s.threshold or 0.5 for s in model.species]}
    for on in (True, False):
        out, feedback = tmp_path / f"r{on}.tif", RecordingFeedback()
        processing.run("sinr:species_richness", {
            "MODEL": str(model.path), "EXTENT": "-90,-86,38,41 [EPSG:4326]", "PIXEL_SIZE": 1.0, "MASK_OCEAN": False,
            "THRESHOLD": 0, "THRESHOLD_VALUE": 0.5, "LOCAL_EVIDENCE": on, "OUTPUT": str(out)}, feedback=feedback)
        data, info = read_raster(out)
        np.testing.assert_array_equal(data[0].ravel(), expected[on])
        assert info["metadata"]["THRESHOLDS"] == ",".join(f"{np.float32(t):.6g}" for t in thresholds[on])
        assert any("sp005" in w for w in feedback.warnings)
    assert not np.array_equal(expected[True], expected[False])


def test_species_at_points_ranks_the_score_in_use(sinr_provider, model):  # noqa: F811
    ll = np.array([(-92.0, 39.0), (-89.5, 36.5)])
    layer = point_layer("field=site:integer", [(p, (i,)) for i, p in enumerate(ll)])
    pure = _pure_logits(model, ll, list(range(6)))
    offsets = model.local_evidence.offsets(ll, np.arange(6)).astype(np.float64)
    tol = bundle_prob_atol(model, ll, list(range(6))) + prob_atol(f32_atol(pure + offsets))
    for on, expected in ((True, sigmoid(pure + offsets)), (False, sigmoid(pure))):
        out = processing.run("sinr:species_at_points", {"INPUT": layer, "MODEL": str(model.path), "TOP_K": 6,
                                                        "LOCAL_EVIDENCE": on, "OUTPUT": "memory:"})["OUTPUT"]
        got = np.zeros((2, 6))
        for f in out.getFeatures():
            got[f["site"], int(f["species_code"][2:])] = f["probability"]
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol)
        ranks = {(f["site"], f["rank"]): f["species_code"] for f in out.getFeatures()}
        assert [ranks[(0, r)] for r in range(1, 7)] == [f"sp{j:03d}" for j in np.argsort(-expected[0], kind="stable")]


def test_evaluate_ranges_ranks_the_score_in_use_and_says_so(sinr_provider, model, tmp_path):  # noqa: F811
    ll, land, _ = grid_cells()
    pure = _pure_logits(model, ll[land], [1, 3])
    offsets = model.local_evidence.offsets(ll[land], np.array([1, 3])).astype(np.float64)
    y1, y3 = inside(ll[land], RECT_1), inside(ll[land], RECT_3)
    aps = {}
    for on, scores in ((True, pure + offsets), (False, pure)):
        report = tmp_path / f"ranges{on}.html"
        result = processing.run("sinr:evaluate_ranges", {
            "MODEL": str(model.path), "RANGES": ranges_layer(), "SPECIES_FIELD": "taxon", "EXTENT": EXTENT,
            "PIXEL_SIZE": 1.0, "AREA_WEIGHTED": False, "LOCAL_EVIDENCE": on, "OUTPUT_TABLE": "memory:",
            "OUTPUT_REPORT": str(report)})
        rows = {f["code"]: f["ap"] for f in result["OUTPUT_TABLE"].getFeatures()}
        for code, y, s in (("sp001", y1, scores[:, 0]), ("sp003", y3, scores[:, 1])):
            # float32 logits: AP moves only where near-tied scores swap; the table rounds to 4 decimals
            tol = 100 * ap_atol(y, s, score_atol=f32_atol(s) + f32_atol(pure)) + 5e-5
            assert rows[code] == pytest.approx(100 * average_precision_score(y, s), abs=tol), (on, code)
        status = model.local_evidence.describe() if on else "off (pure SINR)"
        assert f"<th class='l'>Local evidence</th><td class='l'>{status}</td>" in report.read_text(encoding="utf-8")
        aps[on] = rows
    assert abs(aps[True]["sp001"] - aps[False]["sp001"]) > 1  # sp001's records near its range change its AP
    assert aps[True]["sp003"] == pytest.approx(aps[False]["sp003"], abs=1e-3)  # the floor everywhere: same ranking


def test_evaluate_presence_absence_ranks_the_score_in_use_and_says_so(sinr_provider, model, tmp_path):  # noqa: F811
    sites = np.array([(-96.5 + 0.83 * i, 34.5 + 0.61 * (i % 15)) for i in range(12)])
    y = (np.random.default_rng(2).random(len(sites)) < 0.5).astype(int)
    y[:2] = 1, 0
    layer = point_layer("field=sp001:integer", [(p, (int(v),)) for p, v in zip(sites, y)])
    pure = _pure_logits(model, sites, [1])[:, 0]
    score = pure + model.local_evidence.offsets(sites, np.array([1]))[:, 0]
    report = tmp_path / "pa.html"
    result = processing.run("sinr:evaluate_presence_absence", {
        "INPUT": layer, "MODEL": str(model.path), "SPECIES_FIELDS": ["sp001"], "OUTPUT_TABLE": "memory:",
        "OUTPUT_REPORT": str(report)})
    ap = next(result["OUTPUT_TABLE"].getFeatures())["ap"]
    tol = 100 * ap_atol(y, score, score_atol=f32_atol(score) + f32_atol(pure)) + 5e-5
    assert ap == pytest.approx(100 * average_precision_score(y, score), abs=tol)
    assert abs(100 * average_precision_score(y, score) - 100 * average_precision_score(y, pure)) > 1
    status = model.local_evidence.describe()
    assert f"<th class='l'>Local evidence</th><td class='l'>{status}</td>" in report.read_text(encoding="utf-8")


def test_the_switch_is_on_the_five_scoring_algorithms_with_its_help(sinr_provider):  # noqa: F811
    registry = QgsApplication.processingRegistry()
    for name in SCORING:
        alg = registry.algorithmById(f"sinr:{name}")
        param = alg.parameterDefinition("LOCAL_EVIDENCE")
        assert param is not None, name
        assert param.defaultValue() is True and param.type() == "boolean"
        assert param.description() == "Use local evidence (nearby records) if the model stores it"
        assert "<b>Local evidence.</b>" in alg.shortHelpString() and "pure SINR" in alg.shortHelpString(), name
    assert registry.algorithmById("sinr:location_embeddings").parameterDefinition("LOCAL_EVIDENCE") is None


def test_a_model_without_local_evidence_scores_alike_either_way(sinr_provider, tmp_path):  # noqa: F811
    plain = fixture_bundle(tmp_path / "plain.sinr")
    maps = {}
    for on in (True, False):
        feedback = RecordingFeedback()
        out = tmp_path / f"plain{on}.tif"
        processing.run("sinr:predict_range", {"MODEL": str(plain.path), "SPECIES": "sp001", "EXTENT": EXTENT,
                                              "PIXEL_SIZE": 1.0, "LOCAL_EVIDENCE": on, "OUTPUT": str(out)},
                       feedback=feedback)
        maps[on], info = read_raster(out)
        assert info["metadata"]["LOCAL_EVIDENCE"] == "none stored (pure SINR)"
        assert not any("local evidence" in line.lower() for line in feedback.infos)
    np.testing.assert_array_equal(maps[True], maps[False])


def test_predict_range_lpt_r_is_the_one_of_the_score_in_use(sinr_provider, tmp_path):  # noqa: F811
    src = fixture_bundle(tmp_path / "src.sinr")
    for s in src.species:
        s.threshold = 0.6  # the network's LPT-R
    model = le_bundle(tmp_path / "lpt.sinr", {1: BOX}, src=src, lpt_r=[0.2, 0.25, np.nan, 0.2, 0.2, 0.2])
    for on, expected in ((True, {"sp001": 0.25}), (False, {"sp001": 0.6, "sp002": 0.6})):
        feedback, out = RecordingFeedback(), tmp_path / f"lpt{on}.tif"
        processing.run("sinr:predict_range", {"MODEL": str(model.path), "SPECIES": "sp001, sp002", "EXTENT": EXTENT,
                                              "PIXEL_SIZE": 1.0, "MASK_OCEAN": False, "THRESHOLD": 2,
                                              "THRESHOLD_VALUE": 0.5, "LOCAL_EVIDENCE": on, "OUTPUT": str(out)},
                       feedback=feedback)
        data, _ = read_raster(out)
        logged = {line.split()[2][:-1]: float(line.split()[3]) for line in feedback.infos
                  if line.startswith("Threshold for")}
        # sp002 has no local-evidence LPT-R: it falls back to THRESHOLD_VALUE, with a warning
        assert logged == ({**expected, "sp002": 0.5} if on else expected)
        assert any("sp002" in w for w in feedback.warnings) == on
        for band, code in ((0, "sp001"), (2, "sp002")):  # each score band, then its 0/1 band against the threshold
            np.testing.assert_array_equal(data[band + 1], (data[band] >= np.float32(logged[code])).astype(float))
