"""sinr:evaluate_ranges on the real Little range maps (../shared/data/ranges/little_ranges.gpkg).

Expected labels are computed independently with shapely (cell centre inside or on the species'
MultiPolygon) and AP with scikit-learn.
"""
from __future__ import annotations

import numpy as np
import processing
import pytest
import shapely
from osgeo import ogr
from qgis.core import QgsVectorLayer
from sklearn.metrics import average_precision_score

from sinr_qgis.core import runtime
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.landmask import is_land
from sinr_qgis.core.resources import BUNDLED_MODEL
from tests.factories import make_bundle
from tests.helpers.prediction_helpers import sinr_provider  # noqa: F401
from tests.tolerances import ap_atol

# the conterminous US on 1-degree cells, in the layer's own CRS (NAD27 lon/lat): no datum shift
# between the polygons and the cell centres, so shapely sees exactly the cells the algorithm does
US_4267 = (-125.0, 24.0, -66.0, 50.0)
SPECIES = {"acerrubr": "Acer rubrum", "pinuechi": "Pinus echinata", "queralba": "Quercus alba"}


def little_layer(path, codes) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{path}|layername=ranges", "little", "ogr")
    assert layer.isValid() and layer.crs().authid() == "EPSG:4267"
    assert layer.setSubsetString("\"code\" IN ({})".format(", ".join(f"'{c}'" for c in codes)))
    return layer


def shapely_labels(shared_data, codes, centres) -> dict[str, np.ndarray]:
    ds = ogr.Open(str(shared_data / "ranges" / "little_ranges.gpkg"))
    out = {}
    for f in ds.GetLayerByName("ranges"):
        if f.GetField("code") in codes:
            geom = shapely.from_wkb(bytes(f.GetGeometryRef().ExportToIsoWkb()))
            out[f.GetField("code")] = shapely.intersects_xy(geom, centres[:, 0], centres[:, 1])
    return out


def expected_aps(bundle, shared_data, codes, weighted, local_evidence=True):
    grid = Grid.from_pixel_size(US_4267, "EPSG:4267", 1.0)
    x, y = grid.pixel_centres()
    lonlat, ok = grid.lonlat()
    land = ok & is_land(lonlat)
    labels = shapely_labels(shared_data, codes, np.column_stack([x, y]))
    predictor = runtime.Predictor(bundle, local_evidence=local_evidence)
    emb = predictor.embed(lonlat[land])
    w = np.cos(np.radians(y[land])) if weighted else None
    out, tols = {}, {}
    for code in codes:
        index = bundle.find_species(code).index
        head = bundle.head[index].astype(np.float64)
        # the score: the network's logit plus the model's local evidence where it stores it and it is
        # used (zeros otherwise), as the algorithm stores them
        offsets = predictor.offsets(lonlat[land], [index])[:, 0].astype(np.float64)
        logits = (emb.astype(np.float64) @ head + offsets).astype(np.float32)
        out[code] = average_precision_score(labels[code][land], logits, sample_weight=w)
        # the algorithm's own batches and float32 product: AP moves only where near-tied scores swap;
        # the table rounds AP (percent) to 4 decimals
        tols[code] = 100 * ap_atol(labels[code][land], logits, w) + 5e-5
    return out, int(land.sum()), tols


def run(layer, model, field="code", **extra):
    result = processing.run("sinr:evaluate_ranges", {
        "MODEL": str(model), "RANGES": layer, "SPECIES_FIELD": field,
        "EXTENT": f"{US_4267[0]},{US_4267[2]},{US_4267[1]},{US_4267[3]} [EPSG:4267]",
        "PIXEL_SIZE": 1.0, "AREA_WEIGHTED": True, "OUTPUT_TABLE": "memory:", **extra})
    rows = {f["code"]: {k: f[k] for k in f.fields().names()} for f in result["OUTPUT_TABLE"].getFeatures()}
    return result, rows


def test_little_ranges_match_shapely_labels(sinr_provider, shared_data, little_ranges, tmp_path):  # noqa: F811
    """A random model whose species carry Little codes: the algorithm's AP equals shapely + sklearn."""
    path = tmp_path / "little_codes.sinr"
    bundle = make_bundle(path, n_species=4, seed=11)
    for s, (code, name) in zip(bundle.species, [*SPECIES.items(), ("zzz", "Nothing here")]):
        s.code, s.name = code, name
    bundle.write(path)
    bundle = ModelBundle.load(path)
    codes = list(SPECIES)
    # the layer's species field holds the scientific names, matched case-insensitively
    result, rows = run(little_layer(little_ranges, codes), path, field="species")
    exp, n_land, tols = expected_aps(bundle, shared_data, codes, weighted=True)
    assert sorted(rows) == sorted(codes)
    for code in codes:
        assert rows[code]["ap"] == pytest.approx(100 * exp[code], abs=tols[code]), code
        assert rows[code]["n_cells"] == n_land
    assert 1000 < n_land < 1200
    assert rows["pinuechi"]["prevalence"] < rows["acerrubr"]["prevalence"]  # shortleaf pine: the south-east only
    # MAP: the mean AP rounded to 2 decimals
    assert result["MAP"] == round(result["MAP"], 2)
    assert result["MAP"] == pytest.approx(100 * np.mean(list(exp.values())), abs=0.005 + np.mean(list(tols.values())))


def test_bundled_model_on_little_ranges(sinr_provider, shared_data, little_ranges):  # noqa: F811
    codes = ["acerrubr", "pinuechi"]
    bundle = ModelBundle.load(BUNDLED_MODEL)
    for local_evidence in (True, False):  # the default score, and pure SINR
        result, rows = run(little_layer(little_ranges, codes), BUNDLED_MODEL, LOCAL_EVIDENCE=local_evidence)
        exp, _, tols = expected_aps(bundle, shared_data, codes, weighted=True, local_evidence=local_evidence)
        for code in codes:
            assert rows[code]["ap"] == pytest.approx(100 * exp[code], abs=tols[code]), (local_evidence, code)
            # a trained model ranks its range far above the prevalence a random map would get
            assert rows[code]["ap"] > 100 * rows[code]["prevalence"] + 20
        assert result["MAP"] > 50


def test_fia_plots_give_the_benchmark_harness_numbers(sinr_provider, shared_data, tmp_path):  # noqa: F811
    """sinr:evaluate_presence_absence on the 23,530 FIA plots (wide layout) agrees with the NA-Trees
    harness's "plots" task. The protocol asks two implementations to agree to 0.01 MAP points; here
    both score through core.scoring.point_logits on the plugin's default backend, and the points are
    read by two readers (OGR here, csv in the harness), so each AP is held to the swaps of near-tied
    scores that float32 rounding allows. This random model's scores are nearly flat over the
    south-east, where such ties are common."""
    from qgis.core import QgsCoordinateReferenceSystem

    from training.benchmarks import na_trees

    plots = shared_data / "presence_absence" / "se_fia_eval_plots.csv.gz"
    task = na_trees.plots_task(plots)
    path = tmp_path / "fia_codes.sinr"
    bundle = make_bundle(path, n_species=len(task.codes), seed=5)
    for s, code in zip(bundle.species, task.codes):
        s.code, s.name = code, code.capitalize()
    bundle.write(path)
    bundle = ModelBundle.load(path)
    harness = na_trees.evaluate_task(task, na_trees.bundle_scorer(bundle), [s.code for s in bundle.species])

    layer = QgsVectorLayer(f"/vsigzip/{plots}|option:X_POSSIBLE_NAMES=longitude|option:Y_POSSIBLE_NAMES=latitude"
                           "|option:AUTODETECT_TYPE=YES", "plots", "ogr")
    layer.setCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    assert layer.featureCount() == 23530
    result = processing.run("sinr:evaluate_presence_absence", {
        "MODEL": str(path), "INPUT": layer, "OUTPUT_TABLE": "memory:"})
    rows = {f["code"]: f["ap"] for f in result["OUTPUT_TABLE"].getFeatures()}
    assert result["N_SPECIES"] == harness["n_species"] == 20
    scores = na_trees.bundle_scorer(bundle)(task.lonlat, task.codes)
    tols = {code: 100 * ap_atol(task.labels[:, j], scores[:, j]) + 5e-5  # the table rounds to 4 decimals
            for j, code in enumerate(task.codes)}
    assert result["MAP"] == pytest.approx(harness["map"], abs=0.005 + np.mean(list(tols.values())))
    for code, ap in harness["per_species"].items():
        assert rows[code] == pytest.approx(100 * ap, abs=tols[code]), code


def test_the_harness_and_evaluate_ranges_give_equal_ap_on_the_same_cells(sinr_provider, little_ranges):  # noqa: F811
    """The bundled model scored by the NA-Trees harness (its matcher and scorer) and by
    sinr:evaluate_ranges on the same cells (the 1-degree US grid's land cells, in the layer's CRS),
    with the same labels (cell centre inside or on the polygon) and area weights: equal APs. Both
    paths run the same backend on the same CPU over the same points in the same batches, then one
    float64 product (core.scoring), so the logits and the APs are identical, not just close."""
    from sinr_qgis.core import evaluation
    from training.benchmarks import na_trees

    codes = list(SPECIES)
    bundle = ModelBundle.load(BUNDLED_MODEL)
    result, rows = run(little_layer(little_ranges, codes), BUNDLED_MODEL)

    grid = Grid.from_pixel_size(US_4267, "EPSG:4267", 1.0)
    land = evaluation.valid_cells(grid)
    x, y = grid.pixel_centres()
    features = [f for f in na_trees.read_range_polygons(little_ranges) if f[0] in codes]
    labels = na_trees.polygon_labels(np.column_stack([x, y])[land], [g for _, _, g in features])
    task = na_trees.Task("ranges", grid.lonlat()[0][land], [c for c, _, _ in features],
                         [s for _, s, _ in features], labels)
    harness = na_trees.evaluate_task(task, na_trees.bundle_scorer(bundle), [s.code for s in bundle.species],
                                     weights=evaluation.area_weights(grid)[land])

    assert sorted(harness["per_species"]) == sorted(rows) == sorted(codes)
    for code in codes:
        assert rows[code]["n_cells"] == int(land.sum())
        assert rows[code]["ap"] == round(100 * harness["per_species"][code], 4), code  # the table's 4 decimals
    assert result["N_SPECIES"] == harness["n_species"] == 3
    assert result["MAP"] == pytest.approx(harness["map"], abs=0.005)  # the table's MAP has 2 decimals
