"""Observation export from point layers, and each bad training input's message (checked up front)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingException, QgsProject, QgsRasterLayer

from sinr_qgis.core.errors import GridError, OccurrenceError
from sinr_qgis.core.train_checks import MIN_TRAINING_RECORDS, check_training_input
from sinr_qgis.processing.train_model import TrainModelAlgorithm
from sinr_qgis.qgis_bridge.observations import attribute_text, export_file_name, export_observations
from tests.helpers.train_helpers import TINY, isolated_model_list, lonlat_points, point_layer  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_model_list")


def _export(layer, path, **kw):
    return export_observations(layer, "taxon", path, transform_context=QgsProject.instance().transformContext(),
                               **kw)


def _run(params: dict) -> dict:
    import processing

    return processing.run(TrainModelAlgorithm(), params)


def test_export_reprojects_to_lonlat_with_species_and_source(qgis_app, tmp_path):
    layer = point_layer("EPSG:3857", n_per_species=10)
    res = _export(layer, tmp_path / "obs.csv", source_field="dataset")
    assert (res.n_features, res.n_written, res.n_no_geometry, res.has_source) == (30, 30, 0, True)
    with open(res.path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ll, sp, src = lonlat_points(10)
    got = np.array([[float(r["longitude"]), float(r["latitude"])] for r in rows])
    np.testing.assert_allclose(got, ll, atol=1e-6)
    assert [r["species"] for r in rows] == sp and [r["source"] for r in rows] == src
    assert res.text() == "observations: 30 of 30 points exported."
    # the CLI's reader takes the file as is
    summary = check_training_input(res.path, species_column="species", source_column="source")
    assert (summary.n_records, summary.n_species) == (30, 3)


def test_attribute_text_handles_nulls_and_whole_floats():
    from qgis.PyQt.QtCore import QVariant

    assert attribute_text(QVariant()) == "" and attribute_text(None) == ""
    assert attribute_text(12345.0) == "12345" and attribute_text(" Acer rubrum ") == "Acer rubrum"
    assert attribute_text(float("nan")) == ""


def test_layer_without_crs_is_refused(qgis_app, tmp_path):
    layer = point_layer("", n_per_species=10)
    layer.setCrs(QgsCoordinateReferenceSystem())
    with pytest.raises(GridError, match=r"Layer 'observations': .*no valid CRS.*Set the layer's CRS"):
        _export(layer, tmp_path / "obs.csv")
    assert not (tmp_path / "obs.csv").exists()


def test_points_that_cannot_be_transformed_are_refused(qgis_app, tmp_path):
    # coordinates far outside what the layer's CRS can place on the globe
    far = point_layer("EPSG:4326", lonlat=np.full((30, 2), 1e8))
    far.setCrs(QgsCoordinateReferenceSystem("EPSG:3035"))
    with pytest.raises(GridError, match=r"None of the 30 points .* could be transformed from EPSG:3035.*CRS"):
        _export(far, tmp_path / "far.csv")


def test_missing_field_and_empty_layer(qgis_app, tmp_path):
    layer = point_layer(n_per_species=3)
    with pytest.raises(OccurrenceError, match=r"no species field 'kind'.*taxon, dataset, n"):
        export_observations(layer, "kind", tmp_path / "o.csv",
                            transform_context=QgsProject.instance().transformContext())
    empty = point_layer(lonlat=np.zeros((0, 2)))
    with pytest.raises(OccurrenceError, match=r"has no features"):
        _export(empty, tmp_path / "o.csv")


def test_too_few_records_say_how_many_are_needed(qgis_processing, tmp_path):
    layer = point_layer(n_per_species=2)
    with pytest.raises(QgsProcessingException, match=rf"Too few records: 6 usable .* at least {MIN_TRAINING_RECORDS}"):
        _run({"INPUT": layer, "SPECIES_FIELD": "taxon", "OUTPUT": str(tmp_path / "m.sinr"), **TINY})


def test_all_points_in_one_place(qgis_processing, tmp_path):
    layer = point_layer("EPSG:3857", lonlat=np.tile([[5.0, 45.0]], (30, 1)),
                        species=["a", "b", "c"] * 10)
    with pytest.raises(QgsProcessingException, match=r"All 30 records of observations are at the same place"):
        _run({"INPUT": layer, "SPECIES_FIELD": "taxon", "OUTPUT": str(tmp_path / "m.sinr"), **TINY})


def _raster(path: Path, extent: tuple[float, float, float, float]) -> Path:
    x0, y0, x1, y1 = extent
    w, h = int(x1 - x0), int(y1 - y0)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, 1, gdal.GDT_Float32)
    ds.SetGeoTransform((x0, 1.0, 0, y1, 0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(np.arange(w * h, dtype=np.float32).reshape(h, w))
    ds.GetRasterBand(1).SetDescription("bio1")
    ds = None
    return path


def test_covariates_that_do_not_cover_the_points(qgis_processing, tmp_path):
    raster = QgsRasterLayer(str(_raster(tmp_path / "asia.tif", (60.0, 0.0, 140.0, 60.0))), "asia")
    assert raster.isValid()
    # owned by the project, so it is not left for Python to destroy after QGIS has exited (a segfault)
    QgsProject.instance().addMapLayer(raster)
    try:
        with pytest.raises(QgsProcessingException, match=r"do not cover the observations: only 0 of 300 points"):
            _run({"INPUT": point_layer(), "SPECIES_FIELD": "taxon", "COVARIATES": [raster.id()],
                  "OUTPUT": str(tmp_path / "m.sinr"), **TINY})
    finally:
        QgsProject.instance().removeMapLayer(raster.id())
    assert not (tmp_path / "m.sinr").exists()


def test_layer_and_file_together_are_refused(qgis_processing, tmp_path):
    f = tmp_path / "o.csv"
    f.write_text("species,latitude,longitude\n")
    with pytest.raises(QgsProcessingException, match=r"either as a point layer or as a file, not both"):
        _run({"INPUT": point_layer(n_per_species=2), "SPECIES_FIELD": "taxon", "INPUT_FILE": str(f),
              "OUTPUT": str(tmp_path / "m.sinr"), **TINY})


def test_export_file_is_named_after_the_layer():
    assert export_file_name("Bird atlas 2024 / Spain") == "Bird_atlas_2024_Spain.csv"
    assert export_file_name("  ") == "observations.csv"
    assert export_file_name("Águilas") == "Águilas.csv"
    assert export_file_name("CON") == "CON_.csv"  # a Windows device name is no file name


def test_darwin_core_columns_of_a_layer_mean_the_same_as_in_a_file(tmp_path):
    """A GBIF table loaded as a layer keeps its occurrenceStatus / basisOfRecord meaning when trained."""
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    from sinr_qgis.core.occurrences import read_occurrences

    layer = QgsVectorLayer("Point?crs=EPSG:4326&field=taxon:string&field=occurrenceStatus:string"
                           "&field=basisOfRecord:string&field=remarks:string", "gbif", "memory")
    rows = [("Acer rubrum", "PRESENT", "HUMAN_OBSERVATION"), ("Acer rubrum", "ABSENT", "HUMAN_OBSERVATION"),
            ("Quercus alba", "PRESENT", "FOSSIL_SPECIMEN"), ("Quercus alba", "PRESENT", "PRESERVED_SPECIMEN")]
    feats = []
    for k, (sp, status, basis) in enumerate(rows):
        f = QgsFeature(layer.fields())
        f.setAttributes([sp, status, basis, "x"])
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(-80 + k, 40)))
        feats.append(f)
    assert layer.dataProvider().addFeatures(feats)[0]
    path = tmp_path / "gbif.csv"
    _export(layer, path)
    with open(path, newline="") as f:
        assert next(csv.reader(f)) == ["longitude", "latitude", "species", "occurrenceStatus", "basisOfRecord"]
    occ = read_occurrences(path)
    assert (len(occ), occ.dropped["absent"], occ.dropped["fossil"]) == (2, 1, 1)
    assert sorted(occ.species.tolist()) == ["Acer rubrum", "Quercus alba"]
