"""Processing dialogs that work as they open: the map's extent and an automatic pixel size by
default, plain titles, and a table of a model's species (sinr:model_species)."""
from __future__ import annotations

import processing
import pytest
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsProcessingParameterDefinition,
    QgsRectangle,
    QgsVectorLayer,
)

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.resources import BUNDLED_MODEL
from sinr_qgis.processing import grid_params
from tests.helpers.prediction_helpers import model_file, read_raster, sinr_provider  # noqa: F401

GRID_ALGORITHMS = ("predict_range", "species_richness", "location_embeddings")


def _alg(name: str):
    return QgsApplication.processingRegistry().createAlgorithmById(f"sinr:{name}")


@pytest.fixture
def canvas_at_the_east_us(qgis_canvas):
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    qgis_canvas.setExtent(QgsRectangle(-9000000, 4000000, -8000000, 5000000))
    return qgis_canvas


@pytest.mark.parametrize("name", GRID_ALGORITHMS)
def test_grid_algorithms_open_on_the_maps_extent_with_an_automatic_pixel_size(sinr_provider, canvas_at_the_east_us,  # noqa: F811
                                                                              name):
    alg = _alg(name)
    e = canvas_at_the_east_us.extent()
    assert alg.parameterDefinition("EXTENT").defaultValue() == (
        f"{e.xMinimum()!r},{e.xMaximum()!r},{e.yMinimum()!r},{e.yMaximum()!r} [EPSG:3857]")
    assert not alg.parameterDefinition("EXTENT").flags() & QgsProcessingParameterDefinition.FlagOptional
    assert alg.parameterDefinition("PIXEL_SIZE").defaultValue() == 0.0
    assert alg.parameterDefinition("PIXEL_SIZE").description() == "Pixel size (0: automatic)"


def test_default_extent_maps_the_visible_map(sinr_provider, canvas_at_the_east_us, model_file, tmp_path):  # noqa: F811
    """What the dialog fills in (the default extent, pixel size 0) maps the visible map, in the
    map's CRS, at 1000 pixels along the longer side."""
    alg = _alg("predict_range")
    e = canvas_at_the_east_us.extent()
    out = tmp_path / "here.tif"
    processing.run("sinr:predict_range", {"MODEL": str(model_file), "SPECIES": "sp001", "OUTPUT": str(out),
                                          "EXTENT": alg.parameterDefinition("EXTENT").defaultValue()})
    _data, info = read_raster(out)
    assert info["size"][0] == 1000
    assert info["gt"][0] == pytest.approx(e.xMinimum()) and info["gt"][3] == pytest.approx(e.yMaximum())
    assert info["gt"][1] == pytest.approx(max(e.width(), e.height()) / 1000)
    assert "Pseudo-Mercator" in info["wkt"]


def test_without_a_canvas_the_extent_has_no_default(sinr_provider, monkeypatch):  # noqa: F811
    from qgis import utils

    monkeypatch.setattr(utils, "iface", None)  # qgis_process, a script
    assert grid_params.canvas_extent() is None
    assert _alg("predict_range").parameterDefinition("EXTENT").defaultValue() is None


def test_titles_are_plain_and_details_are_in_the_help(sinr_provider):  # noqa: F811
    titles = {(alg.name(), p.name()): p.description()
              for alg in QgsApplication.processingRegistry().providerById("sinr").algorithms()
              for p in alg.parameterDefinitions()}
    for (alg, name), title in titles.items():
        assert "=" not in title and ";" not in title and len(title) <= 60, (alg, name, title)
    assert titles[("predict_range", "SPECIES")] == "Species"
    assert titles[("predict_range", "MODEL")] == "Model file (leave empty for the bundled trees model)"
    assert titles[("species_richness", "SPECIES")] == "Species (leave empty for all)"
    assert titles[("evaluate_ranges", "PIXEL_SIZE")] == "Cell size (0: automatic)"
    help_text = _alg("predict_range").shortHelpString()
    assert "xmin,xmax,ymin,ymax [EPSG:4326]" in help_text and "starts as the map's visible extent" in help_text
    assert "closest ones" in help_text and "List a model's species" in help_text


def test_model_species_lists_every_species_with_its_reliability(sinr_provider, tmp_path):  # noqa: F811
    out = tmp_path / "species.csv"
    res = processing.run("sinr:model_species", {"OUTPUT": str(out)})
    bundle = ModelBundle.load(BUNDLED_MODEL)
    assert res["N_SPECIES"] == bundle.n_species == 169
    layer = QgsVectorLayer(str(out), "species", "ogr")
    assert layer.featureCount() == 169
    assert [f.name() for f in layer.fields()][:10] == ["index", "code", "name", "common_name", "n_train", "n_cells",
                                                       "threshold", "threshold_local_evidence", "reliability",
                                                       "ranges_ap"]
    rows = {f["code"]: f for f in layer.getFeatures()}
    douglas = rows["pseumenz"]
    assert douglas["name"] == "Pseudotsuga menziesii" and int(douglas["n_train"]) == 106
    assert douglas["reliability"] == "poor" and float(douglas["ranges_ap"]) == pytest.approx(0.1254, abs=5e-5)
    assert float(douglas["lat_min"]) > 40 and "Poor map" in douglas["warning"]
    assert rows["acerrubr"]["reliability"] == "good" and int(rows["acerrubr"]["n_train"]) == 14812
    # both thresholds, as the bundle stores them: the network's and the score's with local evidence
    acer = bundle.species[int(rows["acerrubr"]["index"])]
    assert float(rows["acerrubr"]["threshold"]) == pytest.approx(acer.threshold, rel=1e-6)
    assert float(rows["acerrubr"]["threshold_local_evidence"]) == pytest.approx(
        float(bundle.local_evidence.lpt_r[acer.index]), rel=1e-6)
    levels = [f["reliability"] for f in layer.getFeatures()]
    assert {lv: levels.count(lv) for lv in set(levels)} == {"good": 89, "caution": 53, "poor": 27}


def test_model_species_leaves_unknown_values_empty(sinr_provider, model_file):  # noqa: F811
    res = processing.run("sinr:model_species", {"MODEL": str(model_file), "OUTPUT": "memory:"})
    layer = res["OUTPUT"]
    assert res["N_SPECIES"] == 6 and layer.featureCount() == 6
    first = next(layer.getFeatures())
    assert first["code"] == "sp000" and first["name"] == "Species number0"
    assert first["ranges_ap"] is None or str(first["ranges_ap"]) == "NULL"  # not in this model: NULL, not 0
