"""Honest maps in QGIS: reliability in predict_range's log, legends that say "relative score",
and species richness that says it follows sampling effort."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import processing
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.reliability import RICHNESS_CAVEAT
from sinr_qgis.core.resources import HELP_PAGE, STYLES
from sinr_qgis.qgis_bridge import layers
from tests.helpers.prediction_helpers import RecordingFeedback, model_file, read_raster, sinr_provider  # noqa: F401

EAST_US = "-80,-70,35,45 [EPSG:4326]"


def douglas_fir_like_model(model_file, folder: Path) -> Path:  # noqa: F811
    """The test model with sp001 rated like the bundled Douglas-fir: 106 Wyoming records, AP 12.5 %."""
    b = ModelBundle.load(model_file)
    b.species[1] = dataclasses.replace(b.species[1], n_train=106, record_extent=(-111.0, 42.3, -105.7, 45.0),
                                       n_cells=22)
    b.meta["evaluation"] = {"ranges_ap": {"sp001": 0.1254, "sp002": 0.911}, "ranges_reference": "Little's range maps"}
    return b.write(folder / "rated.sinr")


def test_predict_range_logs_each_species_reliability_and_warns_for_a_poor_map(sinr_provider, model_file,  # noqa: F811
                                                                               tmp_path):
    model = douglas_fir_like_model(model_file, tmp_path)
    feedback = RecordingFeedback()
    processing.run("sinr:predict_range", {"MODEL": str(model), "SPECIES": "sp001, sp002", "EXTENT": EAST_US,
                                          "PIXEL_SIZE": 1.0, "OUTPUT": str(tmp_path / "r.tif")}, feedback=feedback)
    rel = [i for i in feedback.infos if i.startswith("Reliability")]
    assert rel == ["Reliability poor: Species number1 (sp001): 106 training records in 22 one-degree cells, mostly "
                   "within 111.0°W–105.7°W, 42.3°N–45.0°N; agreement with Little's range maps: AP 12.5%.",
                   # 12 records without cells: "caution" by records, but a measured AP of 91 % is good
                   "Reliability good: Species number2 (sp002): 12 training records; agreement with Little's range "
                   "maps: AP 91.1%."]
    poor = [w for w in feedback.warnings if "Poor map" in w]
    assert len(poor) == 1 and poor[0].startswith("Species number1 (sp001): Poor map: it disagrees with Little's")
    _, info = read_raster(tmp_path / "r.tif")
    assert [m["RELIABILITY"] for m in info["band_metadata"]] == ["poor", "good"]
    assert [m["N_TRAIN"] for m in info["band_metadata"]] == ["106", "12"]
    assert [m.get("RANGES_AP") for m in info["band_metadata"]] == ["0.1254", "0.9110"]


def test_loaded_prediction_legend_says_low_and_high_relative_score(sinr_provider, model_file, tmp_path,  # noqa: F811
                                                                   qgis_iface):
    before = set(QgsProject.instance().mapLayers())
    processing.runAndLoadResults("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp004", "EXTENT": EAST_US, "PIXEL_SIZE": 1.0,
        "THRESHOLD": 1, "THRESHOLD_VALUE": 0.5, "OUTPUT": str(tmp_path / "styled.tif")})
    added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    try:
        assert len(added) == 1
        fcn = added[0].renderer().shader().rasterShaderFunction()
        ends = (fcn.legendSettings().minimumLabel(), fcn.legendSettings().maximumLabel())
        assert ends == ("0 low relative score", "1 high relative score")
        labels = [item.label for item in fcn.colorRampItemList()]
        assert labels == ["0.00 low relative score", "0.25", "0.50", "0.75", "1.00 high relative score"]
        legend = " ".join(str(label) for label, _colour in added[0].renderer().legendSymbologyItems())
        assert "absent" not in legend and "present" not in legend
        # the thresholded band says what it is
        descriptions = read_raster(tmp_path / "styled.tif")[1]["descriptions"]
        assert descriptions == ["Species number4", "Species number4 above threshold (p >= 0.5)"]
    finally:
        QgsProject.instance().removeMapLayers([lyr.id() for lyr in added])


def test_shipped_styles_never_label_absent_or_present():
    for name in ("prediction.qml", "prediction_binary.qml"):
        text = (STYLES / name).read_text(encoding="utf-8")
        assert 'label="absent"' not in text and 'label="present"' not in text
        assert 'Label="absent"' not in text and 'Label="present"' not in text
    binary = (STYLES / "prediction_binary.qml").read_text(encoding="utf-8")
    assert 'label="below threshold"' in binary and 'label="above threshold"' in binary


def test_code_built_fallback_ramp_has_the_same_legend_words(tmp_path):
    import numpy as np

    from sinr_qgis.core.grid import Grid
    from sinr_qgis.core.raster_io import write_geotiff

    path = tmp_path / "plain.tif"
    write_geotiff(path, Grid.from_pixel_size((0, 0, 2, 2), "EPSG:4326", 1.0), np.zeros((2, 2)), band_names=["x"])
    layer = QgsRasterLayer(str(path), "plain", "gdal")
    layer.setRenderer(layers.pseudocolor_renderer(layer, 1, 0.0, 1.0, layers.PROBABILITY_RAMP,
                                                  legend=layers.SCORE_LEGEND))
    fcn = layer.renderer().shader().rasterShaderFunction()
    assert (fcn.legendSettings().minimumLabel(), fcn.legendSettings().maximumLabel()) == layers.SCORE_LEGEND
    items = fcn.colorRampItemList()
    assert (items[0].label, items[-1].label) == layers.SCORE_LEGEND


def test_richness_output_log_and_layer_name_say_it_follows_sampling_effort(sinr_provider, model_file,  # noqa: F811
                                                                           tmp_path, qgis_iface):
    out = tmp_path / "rich.tif"
    feedback = RecordingFeedback()
    before = set(QgsProject.instance().mapLayers())
    processing.runAndLoadResults("sinr:species_richness", {
        "MODEL": str(model_file), "SPECIES": "", "EXTENT": EAST_US, "PIXEL_SIZE": 1.0, "THRESHOLD": 1,
        "THRESHOLD_VALUE": 0.5, "OUTPUT": str(out)}, feedback=feedback)
    added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    try:
        _, info = read_raster(out)
        assert info["descriptions"] == ["species richness (6 species; follows sampling effort too)"]
        assert info["metadata"]["CAVEAT"] == RICHNESS_CAVEAT
        assert RICHNESS_CAVEAT in feedback.infos
        assert RICHNESS_CAVEAT.startswith("Species richness from presence-only records reflects sampling effort "
                                          "as much as richness")
        assert [lyr.name() for lyr in added] == ["Species richness (follows sampling effort too)"]
    finally:
        QgsProject.instance().removeMapLayers([lyr.id() for lyr in added])


def test_richness_saved_as_a_file_keeps_the_caveat_in_its_layer_name(sinr_provider, model_file, tmp_path,  # noqa: F811
                                                                     qgis_iface, monkeypatch):
    """QGIS names a loaded output saved as a file after the file ("Prefer output filename for layer
    names", on by default): the richness layer keeps its caveat instead of becoming "richness"."""
    from qgis.core import QgsSettings

    key = "Processing/Configuration/PREFER_FILENAME_AS_LAYER_NAME"
    old = QgsSettings().value(key)
    QgsSettings().setValue(key, True)
    (tmp_path / "temp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "temp"))  # tmp_path is then no temporary folder for QGIS
    before = set(QgsProject.instance().mapLayers())
    try:
        for alg, out in (("species_richness", "richness.tif"), ("predict_range", "acer.tif")):
            processing.runAndLoadResults(f"sinr:{alg}", {
                "MODEL": str(model_file), "SPECIES": "sp001" if alg == "predict_range" else "", "EXTENT": EAST_US,
                "PIXEL_SIZE": 1.0, "OUTPUT": str(tmp_path / out)})
        added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
        # the species map follows the user's preference: its file name says what it is
        assert sorted(lyr.name() for lyr in added) == ["Species richness (follows sampling effort too)", "acer"]
    finally:
        QgsProject.instance().removeMapLayers(list(set(QgsProject.instance().mapLayers()) - before))
        QgsSettings().remove(key) if old is None else QgsSettings().setValue(key, old)


def test_richness_help_and_the_help_page_say_so_next_to_the_map_guidance(sinr_provider):  # noqa: F811
    alg = QgsApplication.processingRegistry().algorithmById("sinr:species_richness")
    help_text = alg.shortHelpString()
    assert "reflects sampling effort as much as richness" in help_text
    assert "north-eastern US states" in help_text
    page = HELP_PAGE.read_text(encoding="utf-8")
    numbers = page[page.index('id="numbers"'):page.index('id="ranges"')]
    assert "Species richness follows sampling effort" in numbers and "north-eastern US states" in numbers
    assert "<i>low</i> to <i>high relative score</i>" in numbers
    assert 'id="reliability"' in numbers and "12.5 %" in numbers and "<b>poor</b>" in numbers


def test_bundled_douglas_fir_map_is_marked_poor_in_the_log_and_the_file(sinr_provider, tmp_path):  # noqa: F811
    feedback = RecordingFeedback()
    out = tmp_path / "doug.tif"
    processing.run("sinr:predict_range", {"MODEL": "", "SPECIES": "Pseudotsuga menziesii",
                                          "EXTENT": "-120,-114,36,42 [EPSG:4326]", "PIXEL_SIZE": 1.0,
                                          "OUTPUT": str(out)}, feedback=feedback)
    assert [w for w in feedback.warnings if "pseumenz" in w] == [
        "Pseudotsuga menziesii (pseumenz): Poor map: it disagrees with Little's range maps over the conterminous US "
        "(AP 12.5%), likely because its training records cover only part of where the species grows, or lie "
        "elsewhere. It can miss much of the range and show the species where it does not grow. Do not use it "
        "without checking a range map or local knowledge."]
    meta = read_raster(out)[1]["band_metadata"][0]
    assert (meta["RELIABILITY"], meta["N_TRAIN"], meta["N_CELLS"], meta["RANGES_AP"]) == ("poor", "106", "22", "0.1254")
    assert meta["RECORD_EXTENT"] == "-111.0044,42.3177,-105.6679,44.9895"
