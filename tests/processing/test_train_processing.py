"""``sinr:train_model``: trains from a projected memory layer; the model ranks its training places high."""
from __future__ import annotations

import numpy as np
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.landmask import is_land
from sinr_qgis.processing.train_model import TrainModelAlgorithm
from sinr_qgis.toolbelt import model_registry
from tests.helpers.train_helpers import TINY, isolated_model_list, lonlat_points, point_layer, probabilities  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_model_list")


def _run(params: dict, feedback=None) -> dict:
    import processing

    return processing.run(TrainModelAlgorithm(), params, feedback=feedback)


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps the log and the progress; cancels itself once progress passes ``cancel_at`` percent."""

    def __init__(self, cancel_at: float | None = None) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.progress: list[float] = []
        self.cancel_at = cancel_at
        self.progressChanged.connect(self._progress)

    def _progress(self, value: float) -> None:
        self.progress.append(value)
        if self.cancel_at is not None and value >= self.cancel_at:
            self.cancel()

    def pushInfo(self, info: str) -> None:
        self.lines.append(info)
        super().pushInfo(info)


def test_trains_from_a_projected_layer_and_ranks_training_places_high(qgis_processing, tmp_path):
    layer = point_layer("EPSG:3857")
    out = tmp_path / "trained.sinr"
    feedback = RecordingFeedback()
    res = _run({"INPUT": layer, "SPECIES_FIELD": "taxon", "SOURCE_FIELD": "dataset", "OUTPUT": str(out),
                "LOSS": 0, "SEED": 1, **TINY}, feedback)
    # progress per step (300 records / batch 32 = 10 steps per epoch), and a summary in the log
    assert len(feedback.progress) >= 10 * TINY["EPOCHS"] and feedback.progress[-1] == 100
    assert feedback.progress == sorted(feedback.progress)
    assert "observations: 300 of 300 points exported." in feedback.lines
    summary = [line for line in feedback.lines if line.startswith("Trained trained.sinr:")]
    assert len(summary) == 1 and "3 species, 300 records used of 300 read, 40 epochs, final loss" in summary[0]
    assert "time " in summary[0] and "no records dropped" in summary[0]
    assert res["OUTPUT"] == str(out) and res["N_SPECIES"] == 3 and res["N_RECORDS"] == 300
    assert np.isfinite(res["FINAL_LOSS"])
    bundle = ModelBundle.load(out)
    assert sorted(s.name for s in bundle.species) == ["Acer fakum", "Fagus exempli", "Quercus testii"]
    assert "Trained on: observations.csv (300 records)" in bundle.card()  # named after the layer
    assert bundle.meta["training"]["epochs"] == TINY["EPOCHS"] and bundle.meta["training"]["width"] == 32
    # the defaults' inputs and component (the bundled model's), said in the log
    assert (bundle.encoding, bundle.sh_degree, bundle.local_evidence is not None) == ("spherical_harmonics", 10, True)
    assert ("local evidence: SINR logit + 1 x log record density + 2 x log local detection rate, Gaussian kernel "
            "0.25 deg") in feedback.lines
    # the model sees lon/lat: the points were reprojected from EPSG:3857
    ll, sp, _ = lonlat_points()
    rng = np.random.default_rng(7)
    cand = np.stack([rng.uniform(-180, 180, 4000), np.degrees(np.arcsin(rng.uniform(-1, 1, 4000)))], 1)
    land = cand[is_land(cand)][:500]
    assert len(land) > 300
    for s in bundle.species:
        at_training = probabilities(bundle, ll[np.asarray(sp) == s.name], s.index)
        at_land = probabilities(bundle, land, s.index)
        assert at_training.mean() > at_land.mean() + 0.05, s.name
        assert np.median(at_training) > np.quantile(at_land, 0.75), s.name
    # the model is remembered for the dock
    assert [e.path for e in model_registry.list_models()] == [str(out.resolve())]


def test_needs_observations_and_a_species_field(qgis_processing, tmp_path):
    with pytest.raises(QgsProcessingException, match=r"No observations"):
        _run({"OUTPUT": str(tmp_path / "m.sinr"), **TINY})
    with pytest.raises(QgsProcessingException, match=r"Choose the species field"):
        _run({"INPUT": point_layer(n_per_species=5), "OUTPUT": str(tmp_path / "m.sinr"), **TINY})


def test_one_species_value_is_refused_with_the_field_name(qgis_processing, tmp_path):
    layer = point_layer(species=["Plantae"] * 300)
    with pytest.raises(QgsProcessingException, match=r"The 'taxon' field of observations has one value only"):
        _run({"INPUT": layer, "SPECIES_FIELD": "taxon", "OUTPUT": str(tmp_path / "m.sinr"), **TINY})
    assert not (tmp_path / "m.sinr").exists()


def test_unwritable_output_is_refused(qgis_processing, tmp_path):
    with pytest.raises(QgsProcessingException, match=r"folder .* does not exist"):
        _run({"INPUT": point_layer(n_per_species=5), "SPECIES_FIELD": "taxon",
              "OUTPUT": str(tmp_path / "missing" / "m.sinr"), **TINY})


def test_the_provider_offers_train_model(qgis_app):
    from sinr_qgis.processing.provider import available_algorithms

    algs = {a.name(): a for a in available_algorithms()}
    alg = algs["train_model"]
    alg.initAlgorithm()
    assert alg.groupId() == "models" and "PyTorch" in alg.shortHelpString()
    assert {p.name() for p in alg.parameterDefinitions()} >= {
        "INPUT", "SPECIES_FIELD", "SOURCE_FIELD", "INPUT_FILE", "COVARIATES", "LOSS", "CAP", "EPOCHS", "WIDTH",
        "DEPTH", "SEED", "MIN_RECORDS", "RESUME", "PYTHON", "OUTPUT", "ADD_LOCAL_EVIDENCE"}
    assert len(alg.parameterDefinition("LOSS").options()) == 6
    assert alg.parameterDefinition("ADD_LOCAL_EVIDENCE").defaultValue() is True
    assert "asked for with covariates it is refused" in alg.shortHelpString()


def test_trains_from_a_file(qgis_processing, tmp_path):
    ll, sp, _ = lonlat_points(40)
    data = tmp_path / "obs.csv"
    data.write_text("decimalLongitude\tdecimalLatitude\tscientificName\n"
                    + "".join(f"{x}\t{y}\t{s}\n" for (x, y), s in zip(ll, sp)))
    res = _run({"INPUT_FILE": str(data), "OUTPUT": str(tmp_path / "file.sinr"), **TINY, "EPOCHS": 2})
    assert res["N_SPECIES"] == 3 and res["N_RECORDS"] == 120


def test_cancel_between_steps_leaves_no_bundle(qgis_processing, tmp_path):
    feedback = RecordingFeedback(cancel_at=5)
    out = tmp_path / "cancelled.sinr"
    with pytest.raises(QgsProcessingException, match="cancelled"):
        _run({"INPUT": point_layer(), "SPECIES_FIELD": "taxon", "OUTPUT": str(out), **TINY, "EPOCHS": 200},
             feedback)
    assert 5 <= max(feedback.progress) < 50
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if ".part" in p.name] == []
    assert model_registry.list_models() == []


def test_trains_with_covariate_rasters(qgis_processing, tmp_path):
    from osgeo import gdal, osr
    from qgis.core import QgsRasterLayer

    path = tmp_path / "bio.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 360, 180, 2, gdal.GDT_Float32)
    ds.SetGeoTransform((-180.0, 1.0, 0, 90.0, 0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    lat = np.repeat(np.linspace(89.5, -89.5, 180)[:, None], 360, 1).astype(np.float32)
    for b, (name, values) in enumerate((("temp", 30 - np.abs(lat) / 2), ("wet", np.cos(np.radians(lat)) * 100))):
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(values.astype(np.float32))
        band.SetDescription(name)
    ds = None
    raster = QgsRasterLayer(str(path), "bio")
    out = tmp_path / "env.sinr"
    res = _run({"INPUT": point_layer(), "SPECIES_FIELD": "taxon", "COVARIATES": [raster], "OUTPUT": str(out),
                **TINY, "EPOCHS": 2})
    assert res["N_SPECIES"] == 3
    bundle = ModelBundle.load(out)
    assert bundle.encoding == "sin_cos_env" and bundle.covariate_names == ["temp", "wet"]
    assert bundle.local_evidence is None  # ADD_LOCAL_EVIDENCE left out: not added to a covariate model
    mean = [c["mean"] for c in bundle.covariates]
    assert mean[0] == pytest.approx(float((30 - np.abs(lat) / 2).mean()), rel=1e-3)
