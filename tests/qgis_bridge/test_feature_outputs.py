"""Every feature an algorithm writes is checked: GeoPackage, Shapefile and memory outputs get every
row (inputs with an fid, several rows per input, field names that collide), and a refused write is
an error, never a success with fewer rows."""
from __future__ import annotations

import csv

import processing
import pytest
from osgeo import ogr, osr
from qgis.core import (
    QgsFeature,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingUtils,
    QgsProject,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QVariant

from sinr_qgis.core.errors import OutputError
from sinr_qgis.processing import species_at_points
from sinr_qgis.qgis_bridge.features import is_dbf_destination, output_fields, write_features
from tests.helpers.prediction_helpers import model_file, sinr_provider  # noqa: F401

POINTS = [(-80.0, 40.0), (-75.0, 42.0)]
K = 3


def _gpkg_points(path) -> str:
    """A GeoPackage point layer, as QGIS and ogr2ogr write it: an ``fid`` primary key, plus fields
    named like the algorithm's own (``rank``) and one whose first 10 characters are
    ``species_co`` like ``species_code``'s."""
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    lyr = ds.CreateLayer("pts", srs, ogr.wkbPoint)
    for name, kind in (("site", ogr.OFTString), ("rank", ogr.OFTInteger), ("species_count", ogr.OFTInteger)):
        lyr.CreateField(ogr.FieldDefn(name, kind))
    for i, (lon, lat) in enumerate(POINTS):
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetField("site", f"s{i}")
        f.SetField("rank", 10 + i)
        f.SetField("species_count", 20 + i)
        f.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({lon} {lat})"))
        lyr.CreateFeature(f)
    ds = None
    return f"{path}|layername=pts"


@pytest.mark.parametrize(("out_name", "names"), [
    ("out.gpkg", ["input_fid", "site", "input_rank", "species_count", "rank", "species_code", "species_name",
                  "probability"]),
    ("out.shp", ["input_fid", "site", "input_rank", "species__1", "rank", "species_co", "species_na",
                 "probabilit"]),
    ("memory:", ["input_fid", "site", "input_rank", "species_count", "rank", "species_code", "species_name",
                 "probability"]),
])
def test_species_at_points_writes_every_row_to_each_format(sinr_provider, model_file, tmp_path,  # noqa: F811
                                                           out_name, names):
    source = QgsVectorLayer(_gpkg_points(tmp_path / "pts.gpkg"), "pts", "ogr")
    assert source.fields().names()[0] == "fid"
    dest = out_name if out_name == "memory:" else str(tmp_path / out_name)
    result = processing.run("sinr:species_at_points", {"INPUT": source, "MODEL": str(model_file), "TOP_K": K,
                                                       "OUTPUT": dest})
    out = result["OUTPUT"] if out_name == "memory:" else QgsVectorLayer(result["OUTPUT"], "out", "ogr")
    fields = [n for n in out.fields().names() if not (out_name == "out.gpkg" and n == "fid")]
    assert fields == names
    rows = sorted((int(f[names[0]]), f[names[1]], int(f[names[2]]), int(f[names[3]]), f[names[4]])
                  for f in out.getFeatures())
    assert len(rows) == len(POINTS) * K == 6
    # each input point's own values, then the ranks 1..K under the documented name
    assert rows == [(fid, f"s{fid - 1}", 9 + fid, 19 + fid, r) for fid in (1, 2) for r in range(1, K + 1)]
    assert all(f[names[5]].startswith("sp00") and 0 < f[names[7]] < 1 for f in out.getFeatures())


def test_a_refused_row_is_an_error_naming_the_cause(sinr_provider, model_file, tmp_path, monkeypatch):  # noqa: F811
    """The old field mapping (the input fid copied into every row) makes GeoPackage refuse rows:
    the algorithm must fail with the output's own reason instead of reporting success."""
    source = QgsVectorLayer(_gpkg_points(tmp_path / "pts.gpkg"), "pts", "ogr")

    def old_mapping(input_fields, added, _destination=""):
        return QgsProcessingUtils.combineFields(input_fields, added), {}

    monkeypatch.setattr(species_at_points, "output_fields", old_mapping)
    with pytest.raises(QgsProcessingException, match=r"refused features \(.*UNIQUE constraint failed.*incomplete"):
        processing.run("sinr:species_at_points", {"INPUT": source, "MODEL": str(model_file), "TOP_K": K,
                                                  "OUTPUT": str(tmp_path / "out.gpkg")})


def test_a_cancelled_run_is_not_a_result(sinr_provider, model_file, tmp_path):  # noqa: F811
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("sinr:species_at_points", {"INPUT": QgsVectorLayer(_gpkg_points(tmp_path / "pts.gpkg")),
                                                  "MODEL": str(model_file), "OUTPUT": "memory:"}, feedback=feedback)


def test_evaluation_table_keeps_every_row_in_a_shapefile_and_a_csv(sinr_provider, model_file, tmp_path):  # noqa: F811
    layer = QgsVectorLayer("Point?crs=EPSG:4326&field=fid:integer&field=sp001:integer&field=sp002:integer",
                           "plots", "memory")
    feats = []
    for i in range(12):
        f = QgsFeature(layer.fields())
        f.setAttributes([1, i % 3 == 0, 1])  # a repeated fid; sp002 present everywhere (skipped)
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(-85 + i, 35 + i % 4)))
        feats.append(f)
    assert layer.dataProvider().addFeatures(feats)[0]
    for name, written in (("t.shp", "t.dbf"), ("t.csv", "t.csv"), ("t.gpkg", "t.gpkg")):
        result = processing.run("sinr:evaluate_presence_absence", {
            "INPUT": layer, "MODEL": str(model_file), "SPECIES_FIELDS": ["sp001", "sp002"],
            "OUTPUT_TABLE": str(tmp_path / name)})
        # a table has no geometry: "as a Shapefile" OGR writes only the .dbf, which is reported
        assert result["OUTPUT_TABLE"].split("|")[0] == str(tmp_path / written)
        out = QgsVectorLayer(result["OUTPUT_TABLE"], "t", "ogr")
        rows = {f["code"]: f for f in out.getFeatures()}
        assert sorted(rows) == ["sp001", "sp002"], name
        assert rows["sp002"]["skipped"].startswith("no absence among its 12 evaluated points")
        assert ("f1_thresho" if name == "t.shp" else "f1_threshold") in out.fields().names()
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as f:
        assert [r["code"] for r in csv.DictReader(f)] == ["sp001", "sp002"]


# ---- the helpers --------------------------------------------------------------------------------
def _fields(*names: str) -> QgsFields:
    out = QgsFields()
    for n in names:
        out.append(QgsField(n, QVariant.String))
    return out


def test_output_fields_rules():
    added = _fields("rank", "species_code", "species_name", "probability")
    fields, renamed = output_fields(_fields("FID", "Rank", "species_count", "site"), added, "memory:")
    assert fields.names() == ["input_FID", "input_Rank", "species_count", "site", *added.names()]
    assert renamed == {"FID": "input_FID", "Rank": "input_Rank"}
    fields, renamed = output_fields(_fields("fid", "species_count", "species_co", "site"), added,
                                    "ogr:/data/x.SHP|layername=x")
    assert fields.names() == ["input_fid", "species__1", "species__2", "site", "rank", "species_co", "species_na",
                              "probabilit"]
    assert all(len(n) <= 10 for n in fields.names())
    assert is_dbf_destination("/d/t.dbf") and is_dbf_destination("'/d/a.shp'") and not is_dbf_destination("/d/a.gpkg")


class _RefusingSink:
    def addFeatures(self, features, flags=None):
        return False

    def lastError(self):
        return "No space left on device"


def test_write_features_raises_when_the_output_refuses():
    with pytest.raises(OutputError, match=r"^The table refused features \(No space left on device\), so it is "
                                          "incomplete"):
        write_features(_RefusingSink(), [QgsFeature()], "The table")
    # a memory layer's provider refuses a point in a polygon layer; its answer is a tuple
    polygons = QgsVectorLayer("Polygon?crs=EPSG:4326", "p", "memory")
    point = QgsFeature()
    point.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(1, 2)))
    with pytest.raises(OutputError, match="refused features"):
        write_features(polygons.dataProvider(), [point], "The outline layer")
    assert write_features(polygons.dataProvider(), [], "The outline layer") == 0


def test_observation_export_on_a_full_disk_is_an_output_error(qgis_app, tmp_path, monkeypatch):
    """The CSV of training points: a write the disk refuses is a clear error and no partial file."""
    from sinr_qgis.qgis_bridge import observations
    from tests.helpers.train_helpers import point_layer

    class FullDiskWriter:
        def __init__(self, _f):
            self.rows = 0

        def writerow(self, _row):
            self.rows += 1
            if self.rows > 5:
                raise OSError(28, "No space left on device")

    monkeypatch.setattr(observations.csv, "writer", FullDiskWriter)
    out = tmp_path / "obs.csv"
    with pytest.raises(OutputError, match=r"^Cannot write .*obs\.csv: No space left on device\. Free disk space"):
        observations.export_observations(point_layer("EPSG:4326", n_per_species=10), "taxon", out,
                                         transform_context=QgsProject.instance().transformContext())
    assert list(tmp_path.iterdir()) == []
