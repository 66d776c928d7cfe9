"""The algorithms leave the pixels outside the model's data footprint empty by default
(OUTSIDE_FOOTPRINT shows them, FOOTPRINT_BAND adds the distance), whichever score they map (local
evidence, the default, or pure SINR): the bundled model over the Greater Antilles and Florida, and
a fixture bundle without a footprint as before."""
from __future__ import annotations

import numpy as np
import processing
import pytest

from sinr_qgis.core import network
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.footprint import DISTANCE_BAND
from sinr_qgis.core.landmask import is_land
from sinr_qgis.core.metrics import sigmoid
from sinr_qgis.core.resources import BUNDLED_MODEL
from tests.factories import fixture_bundle
from tests.helpers.footprints import corner_km, kth_nearest_km
from tests.helpers.prediction_helpers import RecordingFeedback, read_raster, sinr_provider  # noqa: F401
from tests.tolerances import bundle_prob_atol, f32_atol, logit_atol, prob_atol

# 0.05-degree pixels from 86 W, 28 N: the centre of pixel (row, col) is (-86 + 0.05 col + 0.025, 28 - ...)
EXTENT, PIXEL = "-86,-68,17,28 [EPSG:4326]", 0.05
CUBA = [(-82.38, 23.10), (-80.0, 22.5), (-77.9, 21.4), (-75.8, 20.2)]  # Havana .. Santiago
HISPANIOLA = [(-69.93, 18.52), (-72.3, 18.55), (-70.7, 19.4)]  # Santo Domingo, Port-au-Prince, Santiago
FLORIDA = [(-80.22, 25.78), (-82.46, 27.95), (-80.9, 25.5), (-81.78, 24.56)]  # Miami, Tampa, Everglades, Key West


def _run(tmp_path, name: str, feedback=None, **extra) -> tuple[np.ndarray, dict]:
    out = tmp_path / f"{name}.tif"
    processing.run("sinr:predict_range", {"MODEL": "", "SPECIES": "Acer rubrum", "EXTENT": EXTENT,
                                          "PIXEL_SIZE": PIXEL, "OUTPUT": str(out), **extra}, feedback=feedback)
    return read_raster(out)


def _at(data: np.ndarray, places) -> np.ndarray:
    rows = [int((28 - lat) / PIXEL) for _, lat in places]
    cols = [int((lon + 86) / PIXEL) for lon, _ in places]
    return data[..., rows, cols]


def _centre(places) -> np.ndarray:
    return np.array([(-86 + PIXEL * (int((lon + 86) / PIXEL) + 0.5), 28 - PIXEL * (int((28 - lat) / PIXEL) + 0.5))
                     for lon, lat in places])


def _logits(bundle, lonlat: np.ndarray, local_evidence: bool = True) -> np.ndarray:
    """float64 [N, S]: every species' score (a logit) at ``lonlat`` [N, 2] from core.network, plus
    core.local_evidence's offsets by default: the truth the maps are compared with."""
    emb = network.embed(bundle.weights, bundle.encoding, lonlat.astype(np.float32), frequencies=bundle.frequencies)
    logits = emb.astype(np.float64) @ bundle.head.T.astype(np.float64)
    if local_evidence:
        logits += bundle.local_evidence.offsets(lonlat, np.arange(bundle.n_species)).astype(np.float64)
    return logits


def _tol(bundle, lonlat: np.ndarray, species: list[int], logits: np.ndarray) -> float:
    """Probabilities along two float32 paths: the network's rounding plus that of logit + offset."""
    return bundle_prob_atol(bundle, lonlat, species) + prob_atol(f32_atol(logits))


@pytest.fixture(scope="module")
def bundled():
    return ModelBundle.load(BUNDLED_MODEL)


def test_cuba_and_hispaniola_are_empty_and_florida_keeps_its_values(sinr_provider, bundled, tmp_path):  # noqa: F811
    feedback = RecordingFeedback()
    masked, info = _run(tmp_path, "default", feedback)
    shown, _ = _run(tmp_path, "shown", OUTSIDE_FOOTPRINT=True)
    pure, pure_info = _run(tmp_path, "pure", OUTSIDE_FOOTPRINT=True, LOCAL_EVIDENCE=False)
    assert np.isnan(_at(masked, CUBA + HISPANIOLA)).all()
    # shown: the model's own values there, the default score's and pure SINR's (the network's
    # extrapolation, which local evidence lowers by orders of magnitude far from red maple's records)
    acru = bundled.find_species("acerrubr").index
    outside = _centre(CUBA + HISPANIOLA)
    for got, le in ((shown, True), (pure, False)):
        logits = _logits(bundled, outside, le)[:, [acru]]
        np.testing.assert_allclose(_at(got, CUBA + HISPANIOLA), sigmoid(logits).T, rtol=0,
                                   atol=_tol(bundled, outside, [acru], logits))
    assert _at(pure, CUBA[:1]) > 0.3 and (_at(shown, CUBA + HISPANIOLA) < 1e-5).all()
    assert pure_info["metadata"]["LOCAL_EVIDENCE"] == "off (pure SINR)"
    # Florida: the same values (two float32 runs over other pixel sets: path tolerance)
    logits = _logits(bundled, _centre(FLORIDA))[:, [acru]]
    np.testing.assert_allclose(_at(masked, FLORIDA), _at(shown, FLORIDA), rtol=0,
                               atol=_tol(bundled, _centre(FLORIDA), [acru], logits))
    assert np.isfinite(_at(masked, FLORIDA)).all()
    # shown: every land pixel has a value; by default every land pixel of Cuba's box is empty
    lonlat = np.stack(np.meshgrid(-86 + PIXEL * (np.arange(360) + 0.5), 28 - PIXEL * (np.arange(220) + 0.5)), -1)
    land = is_land(lonlat.reshape(-1, 2)).reshape(220, 360)
    assert np.isfinite(shown[0][land]).all() and np.isnan(shown[0][~land]).all()
    cuba = land & (lonlat[..., 0] > -85.0) & (lonlat[..., 0] < -74.0) & (lonlat[..., 1] < 23.3) \
        & (lonlat[..., 1] > 19.7)
    assert cuba.sum() > 1000 and np.isnan(masked[0][cuba]).all()
    assert info["metadata"]["FOOTPRINT"] == bundled.footprint.rule() + " Left empty (nodata)."
    assert any("lie outside the model's data footprint and were left empty" in line for line in feedback.infos)


def test_the_footprint_band_holds_the_distance_in_km(sinr_provider, bundled, shared_data, tmp_path):  # noqa: F811
    from sinr_qgis.core.occurrences import read_occurrences

    data, info = _run(tmp_path, "band", OUTSIDE_FOOTPRINT=True, FOOTPRINT_BAND=True)
    assert info["descriptions"] == ["Acer rubrum", DISTANCE_BAND]
    assert info["band_metadata"][1]["VALUE"] == "footprint" and info["band_metadata"][1]["UNITS"] == "km"
    assert info["metadata"]["FOOTPRINT"].endswith("Shown anyway (extrapolation).")
    places = CUBA + HISPANIOLA + FLORIDA
    km = _at(data[1], places)
    # the truth by brute force at the pixel centres, from the bundled model's training records (all of them)
    occ = read_occurrences(shared_data / "occurrences" / "na_trees.csv.gz")
    truth = kth_nearest_km(_centre(places), np.stack([occ.lon, occ.lat], axis=1), 10)
    # bilinear on 0.25-degree nodes of a 1-Lipschitz distance, whole km at the nodes, float32 values
    assert (np.abs(km - truth) <= corner_km(_centre(places), 0.25) + 0.51).all()
    threshold = bundled.footprint.distance.threshold_km
    assert (km[:7] > threshold).all() and (km[7:] < threshold).all()


def test_richness_follows_the_same_rule(sinr_provider, bundled, tmp_path):  # noqa: F811
    out, shown = tmp_path / "r.tif", tmp_path / "rs.tif"
    base = {"MODEL": "", "EXTENT": EXTENT, "PIXEL_SIZE": PIXEL, "THRESHOLD": 1, "THRESHOLD_VALUE": 0.5}
    processing.run("sinr:species_richness", {**base, "OUTPUT": str(out)})
    processing.run("sinr:species_richness", {**base, "OUTPUT": str(shown), "OUTSIDE_FOOTPRINT": True,
                                             "FOOTPRINT_BAND": True})
    masked, _ = read_raster(out)
    full, info = read_raster(shown)
    assert info["descriptions"][1] == DISTANCE_BAND
    assert np.isnan(_at(masked[0], CUBA + HISPANIOLA)).all()
    # shown: the count of species at p >= 0.5 of the default score (none reaches it on the islands:
    # no record of any of them nearby), none of them within float32 path rounding of the threshold
    outside = _centre(CUBA + HISPANIOLA)
    logits = _logits(bundled, outside)
    emb = network.embed(bundled.weights, bundled.encoding, outside.astype(np.float32), frequencies=bundled.frequencies)
    assert np.abs(logits).min() > logit_atol(emb, bundled.head) + f32_atol(logits)
    np.testing.assert_array_equal(_at(full[0], CUBA + HISPANIOLA), (logits >= 0).sum(axis=1))
    assert (_at(full[0], CUBA + HISPANIOLA) == 0).all()
    np.testing.assert_array_equal(_at(masked[0], FLORIDA), _at(full[0], FLORIDA))  # counts: whole numbers


def test_a_model_without_a_footprint_maps_everything_and_says_so(sinr_provider, tmp_path):  # noqa: F811
    old = fixture_bundle(tmp_path / "old.sinr")  # a committed fixture: written before footprints
    feedback = RecordingFeedback()
    out = tmp_path / "old.tif"
    processing.run("sinr:predict_range", {"MODEL": str(old.path), "SPECIES": "sp001", "EXTENT": EXTENT,
                                          "PIXEL_SIZE": PIXEL, "FOOTPRINT_BAND": True, "OUTPUT": str(out)},
                   feedback=feedback)
    data, info = read_raster(out)
    assert data.shape[0] == 1 and info["metadata"]["FOOTPRINT"] == "no footprint stored"
    assert np.isfinite(_at(data[0], CUBA + HISPANIOLA)).all()
    assert "Data footprint: no footprint stored; every pixel is shown." in feedback.infos
    assert "Model 'old': no footprint stored, so the map has no footprint band." in feedback.warnings


def test_the_parameters_and_their_help(sinr_provider):  # noqa: F811
    for name in ("predict_range", "species_richness"):
        alg = sinr_provider.algorithm(name)
        assert alg.parameterDefinition("OUTSIDE_FOOTPRINT").defaultValue() is False
        assert alg.parameterDefinition("OUTSIDE_FOOTPRINT").description() == \
            "Show extrapolation (outside the data footprint)"
        assert alg.parameterDefinition("FOOTPRINT_BAND").defaultValue() is False
        assert "no footprint stored" in alg.shortHelpString()


def test_species_at_points_counts_the_points_outside(sinr_provider, bundled):  # noqa: F811
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    layer = QgsVectorLayer("Point?crs=EPSG:4326", "pts", "memory")
    feats = []
    for lon, lat in (CUBA[0], FLORIDA[0], HISPANIOLA[0]):
        f = QgsFeature()
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(lon, lat)))
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    feedback = RecordingFeedback()
    result = processing.run("sinr:species_at_points", {"INPUT": layer, "MODEL": "", "TOP_K": 3,
                                                       "OUTPUT": "memory:"}, feedback=feedback)
    assert result["OUTPUT"].featureCount() == 9  # every point keeps its list
    assert (f"2 point(s) lie outside the model's data footprint: their species lists are extrapolation. "
            f"{bundled.footprint.rule()}") in feedback.warnings
