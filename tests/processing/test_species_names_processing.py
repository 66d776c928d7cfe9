"""Species names as free text in Processing: SPECIES lists, one file per species, reference matching."""
from __future__ import annotations

import hashlib
import unicodedata

import processing
import pytest
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsProcessingException,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)

from sinr_qgis.core import evaluation
from sinr_qgis.core.bundle import ModelBundle, Species
from sinr_qgis.qgis_bridge.evaluation import range_polygons
from tests.factories import make_bundle
from tests.helpers.demo import run_demo
from tests.helpers.prediction_helpers import read_raster, sinr_provider  # noqa: F401

NAMES = ["Abies borisii-regis", "Abies × borisii-regis", "Quercus alba L., 1753", "Ель сибирская",
         "ель сибирская", 'Q. <alba> & "rubra"']
EXTENT = "20,24,40,43 [EPSG:4326]"  # the Balkans: 4 x 3 one-degree pixels


def _sha8(code: str) -> str:
    return hashlib.sha1(code.encode()).hexdigest()[:8]


@pytest.fixture(scope="module")
def odd_model(tmp_path_factory):
    """A random-weight model whose species codes and names are the awkward ones above."""
    folder = tmp_path_factory.mktemp("odd")
    b = make_bundle(folder / "random.sinr", n_species=len(NAMES), width=16, depth=1, seed=4)
    b.species = [Species(i, n, n, 5) for i, n in enumerate(NAMES)]
    return b.write(folder / "odd.sinr")


def _predict(model, out, species, **extra):
    return processing.run("sinr:predict_range", {
        "MODEL": str(model), "SPECIES": species, "EXTENT": EXTENT, "PIXEL_SIZE": 1.0, "MASK_OCEAN": False,
        "OUTPUT": str(out), **extra})


def test_one_file_per_species_gives_each_species_its_own_readable_file(sinr_provider, odd_model, tmp_path):  # noqa: F811
    # the comma inside "Quercus alba L., 1753" needs no quotes; 'x' is the hybrid sign
    species = 'Abies x borisii-regis, Abies borisii-regis, Quercus alba L., 1753, ель сибирская, Ель сибирская, ' \
              'Q. <alba> & "rubra"'
    result = _predict(odd_model, tmp_path / "range.tif", species, ONE_FILE_PER_SPECIES=True)
    names = [f.rsplit("/", 1)[-1] for f in result["OUTPUT_FILES"]]
    assert names == ["range_Abies_×_borisii-regis.tif", "range_Abies_borisii-regis.tif",
                     "range_Quercus_alba_L._1753.tif", f"range_ель_сибирская_{_sha8('ель сибирская')}.tif",
                     f"range_Ель_сибирская_{_sha8('Ель сибирская')}.tif", "range_Q._alba_rubra.tif"]
    assert sorted(p.name for p in tmp_path.glob("*.tif")) == sorted(names)  # six files, none overwritten
    for path, code in zip(result["OUTPUT_FILES"], [NAMES[1], NAMES[0], NAMES[2], NAMES[4], NAMES[3], NAMES[5]]):
        _data, info = read_raster(path)
        assert info["descriptions"] == [code]


def test_species_one_per_line_and_in_quotes(sinr_provider, odd_model, tmp_path):  # noqa: F811
    result = _predict(odd_model, tmp_path / "lines.tif",
                      '"Quercus alba L., 1753", Abies borisii-regis\nЕль сибирская\n'
                      + unicodedata.normalize("NFD", "ABIES × BORISII-REGIS"))
    _data, info = read_raster(result["OUTPUT"])
    assert info["descriptions"] == [NAMES[2], NAMES[0], NAMES[3], NAMES[1]]
    # the model holds "Ель сибирская" and "ель сибирская": any other spelling fits both
    with pytest.raises(QgsProcessingException, match=r"'Ель\\xa0сибирская' matches 2 species .*"
                                                     r"Ель сибирская; ель сибирская"):
        _predict(odd_model, tmp_path / "none.tif", "Ель\u00a0сибирская")
    assert not (tmp_path / "none.tif").exists()


def test_an_ambiguous_species_list_is_a_clear_error_and_writes_nothing(sinr_provider, tmp_path):  # noqa: F811
    b = make_bundle(tmp_path / "random.sinr", n_species=3, width=16, depth=1, seed=4)
    b.species = [Species(0, "qa", "Quercus alba L., 1753", 1), Species(1, "ql", "Quercus alba L.", 1),
                 Species(2, "y", "1753", 1)]
    model = b.write(tmp_path / "amb.sinr")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match=r"can be read two ways.*double quotes"):
        _predict(model, out / "x.tif", "y, Quercus alba L., 1753")
    assert list(out.iterdir()) == []
    _predict(model, out / "x.tif", 'y, "Quercus alba L., 1753"')
    assert read_raster(out / "x.tif")[1]["descriptions"] == ["1753", "Quercus alba L., 1753"]


def test_species_parameters_take_several_lines_and_explain_the_list_rule(sinr_provider):  # noqa: F811
    for alg_id in ("sinr:predict_range", "sinr:species_richness"):
        alg = QgsApplication.processingRegistry().algorithmById(alg_id)
        assert alg.parameterDefinition("SPECIES").multiLine()
        assert "double quotes" in alg.shortHelpString() and "one per line" in alg.shortHelpString()


def test_species_richness_takes_the_same_lists(sinr_provider, odd_model, tmp_path):  # noqa: F811
    out = tmp_path / "rich.tif"
    processing.run("sinr:species_richness", {
        "MODEL": str(odd_model), "SPECIES": "Quercus alba L., 1753\nAbies x borisii-regis", "EXTENT": EXTENT,
        "PIXEL_SIZE": 1.0, "MASK_OCEAN": False, "THRESHOLD": 1, "THRESHOLD_VALUE": 0.5, "OUTPUT": str(out)})
    md = read_raster(out)[1]["metadata"]
    assert md["N_SPECIES"] == "2"
    assert md["SPECIES_CODE"] == '"Quercus alba L., 1753",Abies × borisii-regis'
    assert ModelBundle.load(odd_model).find_species_list(md["SPECIES_CODE"])[0].code == NAMES[2]


def test_range_features_are_grouped_by_the_matching_key():
    layer = QgsVectorLayer("Polygon?crs=EPSG:4326&field=taxon:string", "ranges", "memory")
    values = ["Abies x borisii-regis", unicodedata.normalize("NFD", "ABIES × BORISII-REGIS"),
              "Abies borisii-regis", "Ель\u00a0сибирская", "nowhere"]
    feats = []
    for k, v in enumerate(values):
        f = QgsFeature(layer.fields())
        f.setAttributes([v])
        f.setGeometry(QgsGeometry.fromRect(QgsRectangle(k, 0, k + 1, 1)))
        feats.append(f)
    assert layer.dataProvider().addFeatures(feats)[0]
    species = [Species(i, f"c{i}", n, 1) for i, n in enumerate(NAMES[:4])]
    match = evaluation.match_species(values, species)
    assert {k: v.code for k, v in match.matched.items()} == {
        "Abies x borisii-regis": "c1", "Abies borisii-regis": "c0", "Ель\u00a0сибирская": "c3"}
    assert match.unmatched == ["nowhere"]
    polys = range_polygons(layer, "taxon", list(match.matched), layer.crs())
    # both spellings of the hybrid are its range; the non-hybrid keeps its own one polygon
    assert {k: len(v) for k, v in polys.polygons.items()} == {
        "Abies x borisii-regis": 2, "Abies borisii-regis": 1, "Ель\u00a0сибирская": 1}


@pytest.mark.integration
def test_demo_names_its_files_readably_in_any_script(odd_model, tmp_path):
    out = tmp_path / "demo"
    for species in ("Ель сибирская", "Abies × borisii-regis"):
        run = run_demo(tmp_path, "--model", str(odd_model), "--species", species, "--extent=20,24,40,43",
                       "--pixel-size", "1", "--out", str(out), "--png-width", "40")
        assert run.returncode == 0, run.stdout + run.stderr
    # two species, two files (the old ASCII-only slug wrote both Cyrillic names to "species.tif")
    assert sorted(p.name for p in out.glob("*.tif")) == ["Abies_×_borisii-regis.tif", "Ель_сибирская.tif"]


def test_loaded_layers_are_named_after_their_species(sinr_provider, odd_model, tmp_path, qgis_iface):  # noqa: F811
    before = set(QgsProject.instance().mapLayers())
    result = processing.runAndLoadResults("sinr:predict_range", {
        "MODEL": str(odd_model), "SPECIES": 'Q. <alba> & "rubra", ель сибирская, Abies x borisii-regis',
        "EXTENT": EXTENT, "PIXEL_SIZE": 1.0, "MASK_OCEAN": False, "ONE_FILE_PER_SPECIES": True,
        "OUTPUT": str(tmp_path / "loaded.tif")})
    added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    try:
        by_source = {lyr.source(): lyr.name() for lyr in added}
        assert by_source == dict(zip(result["OUTPUT_FILES"], [NAMES[5], NAMES[4], NAMES[1]]))
        assert all(lyr.isValid() for lyr in added)
    finally:
        QgsProject.instance().removeMapLayers([lyr.id() for lyr in added])
