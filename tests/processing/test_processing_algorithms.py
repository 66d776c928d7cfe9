"""sinr:species_at_points, sinr:species_richness, sinr:location_embeddings, thresholds, provider."""
from __future__ import annotations

import logging

import numpy as np
import processing
import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProject,
    QgsVectorLayer,
)

from sinr_qgis.core import runtime
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.processing import provider as provider_module
from tests.helpers.prediction_helpers import (  # noqa: F401
    RecordingFeedback,
    bundle,
    model_file,
    pixel_centre,
    read_raster,
    sinr_provider,
)
from tests.tolerances import bundle_prob_atol, f32_atol

EAST_US = "-80,-70,35,45 [EPSG:4326]"


# ---- predict_range thresholds and files ---------------------------------------------------------
def test_fixed_threshold_adds_a_presence_band_per_species(sinr_provider, model_file, tmp_path):  # noqa: F811
    out = tmp_path / "thr.tif"
    probs, _ = _predict(model_file, tmp_path / "p.tif", "sp001")
    t = float(np.nanmedian(probs[0]))  # a threshold that splits the map in two
    processing.run("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp001", "EXTENT": EAST_US, "PIXEL_SIZE": 0.5,
        "THRESHOLD": 1, "THRESHOLD_VALUE": t, "OUTPUT": str(out)})
    data, info = read_raster(out)
    assert data.shape[0] == 2
    assert info["band_metadata"][1]["VALUE"] == "binary"
    land = np.isfinite(data[0])
    np.testing.assert_array_equal(data[1][land], (data[0][land] >= np.float32(t)).astype(float))
    assert 0 < data[1][land].sum() < land.sum()


def test_lpt_r_without_stored_thresholds_falls_back_with_a_warning(sinr_provider, model_file, tmp_path):  # noqa: F811
    feedback = RecordingFeedback()
    out = tmp_path / "lptr.tif"
    processing.run("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp002", "EXTENT": EAST_US, "PIXEL_SIZE": 1.0,
        "THRESHOLD": 2, "THRESHOLD_VALUE": 0.3, "OUTPUT": str(out)}, feedback=feedback)
    _data, info = read_raster(out)
    assert info["band_metadata"][1]["THRESHOLD"] == "0.3"
    assert any("LPT-R" in w and "0.3" in w for w in feedback.warnings)


def test_one_file_per_species(sinr_provider, model_file, tmp_path):  # noqa: F811
    out = tmp_path / "ranges.tif"
    result = processing.run("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp001, sp004", "EXTENT": EAST_US, "PIXEL_SIZE": 1.0,
        "ONE_FILE_PER_SPECIES": True, "OUTPUT": str(out)})
    expected = [str(tmp_path / "ranges_sp001.tif"), str(tmp_path / "ranges_sp004.tif")]
    assert result["OUTPUT_FILES"] == expected
    assert result["OUTPUT"] == expected[0]
    assert not out.exists()
    for path, name in zip(expected, ("Species number1", "Species number4")):
        data, info = read_raster(path)
        assert data.shape == (1, 10, 10) and info["descriptions"] == [name]


def _predict(model_file, out, species, extent=EAST_US, pixel=0.5, mask=True):  # noqa: F811
    processing.run("sinr:predict_range", {"MODEL": str(model_file), "SPECIES": species, "EXTENT": extent,
                                          "PIXEL_SIZE": pixel, "MASK_OCEAN": mask, "OUTPUT": str(out)})
    return read_raster(out)


# ---- species_at_points --------------------------------------------------------------------------
def test_species_at_points_ranks_like_the_runtime(sinr_provider, model_file, bundle):  # noqa: F811
    layer = QgsVectorLayer("Point?crs=EPSG:3857&field=site:string", "sites", "memory")
    wgs_to_merc = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                         QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())
    lonlats = [(-77.0, 39.0), (-100.0, 45.0), (12.5, 41.9)]
    feats = []
    for i, (lon, lat) in enumerate(lonlats):
        f = QgsFeature(layer.fields())
        f.setAttributes([f"site{i}"])
        f.setGeometry(QgsGeometry.fromPointXY(wgs_to_merc.transform(QgsPointXY(lon, lat))))
        feats.append(f)
    nogeom = QgsFeature(layer.fields())
    nogeom.setAttributes(["nowhere"])
    feats.append(nogeom)
    assert layer.dataProvider().addFeatures(feats)[0]

    result = processing.run("sinr:species_at_points", {"INPUT": layer, "MODEL": str(model_file), "TOP_K": 3,
                                                       "OUTPUT": "memory:"})
    out = result["OUTPUT"]
    rows = sorted(((f["site"], f["rank"], f["species_code"], f["species_name"], f["probability"])
                   for f in out.getFeatures()), key=lambda r: (r[0], r[1]))
    assert len(rows) == 3 * 3  # the feature without geometry is skipped
    assert out.crs().authid() == "EPSG:3857"

    probs = runtime.Predictor(bundle).predict_points(np.array(lonlats), None)
    for i in range(len(lonlats)):
        mine = [r for r in rows if r[0] == f"site{i}"]
        order = np.argsort(-probs[i], kind="stable")[:3]
        assert [r[1] for r in mine] == [1, 2, 3]
        assert [r[2] for r in mine] == [bundle.species[j].code for j in order]
        assert mine[0][3] == bundle.species[order[0]].name
        tol = bundle_prob_atol(bundle, [lonlats[i]], order)  # other batch shapes: float32 rounding
        assert [r[4] for r in mine] == pytest.approx([float(probs[i, j]) for j in order], abs=tol)


# ---- species_richness ------------------------------------------------------------------------------
def test_richness_equals_a_hand_count(sinr_provider, model_file, tmp_path):  # noqa: F811
    # a 4 x 3 grid of 1-degree pixels in the Midwest; centres by hand
    lons = np.array([-89.5, -88.5, -87.5, -86.5])
    lats = np.array([40.5, 39.5, 38.5])
    centres = np.array([(lo, la) for la in lats for lo in lons])
    src = ModelBundle.load(model_file)
    probs = runtime.Predictor(src).predict_points(centres, None)  # [12, 6]
    # LPT-R thresholds that split each species' pixels; species 5 has none (falls back to 0.5)
    for s in src.species:
        s.threshold = float(np.median(probs[:, s.index])) if s.index < 5 else None
    thr_model = src.write(tmp_path / "with_thresholds.sinr")
    loaded = ModelBundle.load(thr_model)
    thresholds = np.array([s.threshold if s.threshold is not None else 0.5 for s in loaded.species])
    expected = (probs >= thresholds[None, :].astype(np.float32)).sum(axis=1).reshape(3, 4)

    out = tmp_path / "richness.tif"
    feedback = RecordingFeedback()
    processing.run("sinr:species_richness", {
        "MODEL": str(thr_model), "SPECIES": "", "EXTENT": "-90,-86,38,41 [EPSG:4326]", "PIXEL_SIZE": 1.0,
        "MASK_OCEAN": False, "THRESHOLD": 0, "THRESHOLD_VALUE": 0.5, "OUTPUT": str(out)}, feedback=feedback)
    data, info = read_raster(out)
    assert info["size"] == (4, 3)
    np.testing.assert_array_equal(data[0], expected)
    assert len(set(expected.ravel().tolist())) > 1
    assert any("sp005" in w for w in feedback.warnings)


def test_richness_of_chosen_species_with_a_fixed_threshold(sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    probs, _info = _predict(model_file, tmp_path / "p.tif", "sp000, sp003", mask=False, pixel=1.0)
    t = float(np.median(probs))
    out = tmp_path / "rich2.tif"
    processing.run("sinr:species_richness", {
        "MODEL": str(model_file), "SPECIES": "sp000, sp003", "EXTENT": EAST_US, "PIXEL_SIZE": 1.0,
        "MASK_OCEAN": False, "THRESHOLD": 1, "THRESHOLD_VALUE": t, "OUTPUT": str(out)})
    data, _ = read_raster(out)
    np.testing.assert_array_equal(data[0], (probs >= np.float32(t)).sum(axis=0))


# ---- location_embeddings ------------------------------------------------------------------------------
def test_embeddings_pca_gives_three_ordered_components(sinr_provider, model_file, tmp_path):  # noqa: F811
    out = tmp_path / "pca.tif"
    processing.run("sinr:location_embeddings", {"MODEL": str(model_file), "EXTENT": EAST_US, "PIXEL_SIZE": 0.5,
                                                "MODE": 0, "OUTPUT": str(out)})
    data, info = read_raster(out)
    assert data.shape == (3, 20, 20)
    assert info["descriptions"] == ["PC1", "PC2", "PC3"]
    explained = [float(v) for v in info["metadata"]["EXPLAINED_VARIANCE"].split(",")]
    assert explained == sorted(explained, reverse=True) and 0 < sum(explained) <= 1.0 + 1e-6
    land = np.isfinite(data[0])
    assert np.isnan(data[:, 10, 19]).all() and land.sum() > 100
    # component scores are centred on the sample and PC1 varies most
    spread = [np.nanvar(data[i]) for i in range(3)]
    assert spread[0] >= spread[1] >= spread[2]


def test_full_embedding_pixels_equal_the_runtime(sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    out = tmp_path / "emb.tif"
    processing.run("sinr:location_embeddings", {"MODEL": str(model_file), "EXTENT": EAST_US, "PIXEL_SIZE": 1.0,
                                                "MODE": 1, "MASK_OCEAN": False, "OUTPUT": str(out)})
    data, info = read_raster(out)
    assert data.shape == (bundle.embedding_dim, 10, 10)
    lon, lat = pixel_centre(info["gt"], 3, 6)
    ref = runtime.Predictor(bundle).embed(np.array([[lon, lat]]))[0]
    np.testing.assert_allclose(data[:, 3, 6], ref, atol=f32_atol(ref), rtol=0)  # a grid block vs one point


# ---- provider ---------------------------------------------------------------------------------------
def test_provider_lists_the_four_algorithms(sinr_provider):  # noqa: F811
    ours = {"sinr:predict_range", "sinr:species_at_points", "sinr:location_embeddings", "sinr:species_richness"}
    assert ours <= {a.id() for a in sinr_provider.algorithms()}
    for alg in sinr_provider.algorithms():
        if alg.id() in ours:
            assert alg.name() == alg.name().lower() and alg.groupId() == alg.groupId().lower()
            assert "Caveats" in alg.shortHelpString() or "caveat" in alg.shortHelpString().lower()


def test_algorithm_with_a_missing_dependency_is_skipped_and_logged(monkeypatch, caplog):
    monkeypatch.setattr(provider_module, "ALGORITHMS",
                        [*provider_module.ALGORITHMS, ("needs_missing_dependency", "Nothing")])
    with caplog.at_level(logging.WARNING, logger="sinr_qgis"):
        algs = provider_module.available_algorithms()
    names = [a.name() for a in algs]
    assert "predict_range" in names and "needs_missing_dependency" not in names
    assert any("needs_missing_dependency" in r.getMessage() for r in caplog.records)


# ---- outputs loaded by Processing are styled by the post-processors -----------------------------
@pytest.mark.parametrize(("alg", "extra", "renderer_type"), [
    ("sinr:species_richness", {"THRESHOLD": 1, "THRESHOLD_VALUE": 0.5}, "singlebandpseudocolor"),
    ("sinr:location_embeddings", {"MODE": 0}, "multibandcolor"),
])
def test_richness_and_embedding_outputs_are_styled_on_load(sinr_provider, model_file, tmp_path, qgis_iface,  # noqa: F811
                                                           alg, extra, renderer_type):
    before = set(QgsProject.instance().mapLayers())
    processing.runAndLoadResults(alg, {"MODEL": str(model_file), "EXTENT": EAST_US, "PIXEL_SIZE": 1.0,
                                       "OUTPUT": str(tmp_path / "out.tif"), **extra})
    added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    try:
        assert len(added) == 1
        assert added[0].renderer().type() == renderer_type
    finally:
        QgsProject.instance().removeMapLayers([lyr.id() for lyr in added])


def test_unwritable_output_is_a_clear_error(sinr_provider, model_file, tmp_path):  # noqa: F811
    out = tmp_path / "no_such_folder" / "x.tif"
    with pytest.raises(QgsProcessingException, match="does not exist"):
        processing.run("sinr:predict_range", {"MODEL": str(model_file), "SPECIES": "sp001", "EXTENT": EAST_US,
                                              "PIXEL_SIZE": 1.0, "OUTPUT": str(out)})
    assert not out.parent.exists()


def test_extent_beyond_the_poles_predicts_the_globe_with_a_note(sinr_provider, model_file, bundle,  # noqa: F811
                                                                tmp_path):
    feedback = RecordingFeedback()
    out = tmp_path / "world.tif"
    processing.run("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp001", "EXTENT": "-180,180,-100,100 [EPSG:4326]", "PIXEL_SIZE": 10.0,
        "MASK_OCEAN": False, "OUTPUT": str(out)}, feedback=feedback)
    data, info = read_raster(out)
    assert info["size"] == (36, 20) and info["gt"] == (-180.0, 10.0, 0.0, 100.0, 0.0, -10.0)  # the extent asked for
    assert np.isnan(data[0, 0]).all() and np.isnan(data[0, 19]).all()  # centres at 95 N and 95 S: off the globe
    assert np.isfinite(data[0, 1:19]).all()
    lon, lat = pixel_centre(info["gt"], 1, 3)  # (-145, 85): next to the pole
    ref = runtime.Predictor(bundle).predict_points(np.array([[lon, lat]]), [1])[0, 0]
    assert data[0, 1, 3] == pytest.approx(float(ref), abs=bundle_prob_atol(bundle, [(lon, lat)], 1))
    assert feedback.warnings == ["10 % of the extent lies off the globe (beyond the poles); "
                                 "those pixels are left empty (nodata)."]


@pytest.mark.parametrize("alg, extra, bands", [
    ("sinr:species_richness", {"THRESHOLD": 1, "THRESHOLD_VALUE": 0.5}, 1),
    ("sinr:location_embeddings", {"MODE": 0}, 3),
])
def test_every_grid_algorithm_takes_a_view_larger_than_the_world(sinr_provider, model_file, tmp_path,  # noqa: F811
                                                                 alg, extra, bands):
    feedback = RecordingFeedback()
    out = tmp_path / "world.tif"
    processing.run(alg, {"MODEL": str(model_file), "EXTENT": "-250,250,-100,100 [EPSG:4326]", "PIXEL_SIZE": 10.0,
                         "MASK_OCEAN": False, "OUTPUT": str(out), **extra}, feedback=feedback)
    data, info = read_raster(out)
    assert info["size"] == (50, 20) and data.shape[0] == bands
    on = np.isfinite(data).all(axis=0)
    # rows at 95 N / 95 S and columns past +/-180 (centres -245..-185 and 185..245) are empty
    np.testing.assert_array_equal(on, np.outer(np.r_[False, [True] * 18, False], np.r_[[False] * 7, [True] * 36,
                                                                                      [False] * 7]))
    assert any(w.startswith("35 % of the extent lies off the globe (beyond the poles or past 180 degrees")
               for w in feedback.warnings)  # 1 - 18/20 * 36/50


def test_extent_entirely_beyond_a_pole_is_a_clear_error(sinr_provider, model_file, tmp_path):  # noqa: F811
    with pytest.raises(QgsProcessingException, match="whole extent lies off the globe"):
        processing.run("sinr:species_richness", {"MODEL": str(model_file), "EXTENT": "-10,10,91,95 [EPSG:4326]",
                                                 "PIXEL_SIZE": 1.0, "OUTPUT": str(tmp_path / "r.tif")})
    assert list(tmp_path.iterdir()) == []


def test_one_file_per_species_loads_each_file_styled(sinr_provider, model_file, tmp_path, qgis_iface):  # noqa: F811
    before = set(QgsProject.instance().mapLayers())
    processing.runAndLoadResults("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp000, sp002", "EXTENT": EAST_US, "PIXEL_SIZE": 1.0,
        "ONE_FILE_PER_SPECIES": True, "OUTPUT": str(tmp_path / "each.tif")})
    added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    try:
        assert sorted(lyr.source() for lyr in added) == [str(tmp_path / "each_sp000.tif"),
                                                         str(tmp_path / "each_sp002.tif")]
        assert all(lyr.renderer().type() == "singlebandpseudocolor" for lyr in added)
    finally:
        QgsProject.instance().removeMapLayers([lyr.id() for lyr in added])
