"""``sinr:train_model``: trains from a projected memory layer; the model ranks its training places high."""
from __future__ import annotations

import numpy as np
import pytest
from qgis.core import QgsProcessingException

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.landmask import is_land
from sinr_qgis.processing.train_model import TrainModelAlgorithm
from sinr_qgis.toolbelt import model_registry

from .train_helpers import TINY, isolated_model_list, lonlat_points, point_layer, probabilities  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_model_list")


def _run(params: dict) -> dict:
    import processing

    return processing.run(TrainModelAlgorithm(), params)


def test_trains_from_a_projected_layer_and_ranks_training_places_high(qgis_processing, tmp_path):
    layer = point_layer("EPSG:3857")
    out = tmp_path / "trained.sinr"
    res = _run({"INPUT": layer, "SPECIES_FIELD": "taxon", "SOURCE_FIELD": "dataset", "OUTPUT": str(out),
                "LOSS": 0, "SEED": 1, **TINY})
    assert res["OUTPUT"] == str(out) and res["N_SPECIES"] == 3 and res["N_RECORDS"] == 300
    assert np.isfinite(res["FINAL_LOSS"])
    bundle = ModelBundle.load(out)
    assert sorted(s.name for s in bundle.species) == ["Acer fakum", "Fagus exempli", "Quercus testii"]
    assert bundle.meta["training"]["epochs"] == TINY["EPOCHS"] and bundle.meta["training"]["width"] == 32
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
        "DEPTH", "SEED", "MIN_RECORDS", "RESUME", "PYTHON", "OUTPUT"}
    assert len(alg.parameterDefinition("LOSS").options()) == 6


def test_trains_from_a_file(qgis_processing, tmp_path):
    ll, sp, _ = lonlat_points(40)
    data = tmp_path / "obs.csv"
    data.write_text("decimalLongitude\tdecimalLatitude\tscientificName\n"
                    + "".join(f"{x}\t{y}\t{s}\n" for (x, y), s in zip(ll, sp)))
    res = _run({"INPUT_FILE": str(data), "OUTPUT": str(tmp_path / "file.sinr"), **TINY, "EPOCHS": 2})
    assert res["N_SPECIES"] == 3 and res["N_RECORDS"] == 120
