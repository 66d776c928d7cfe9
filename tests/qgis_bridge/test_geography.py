"""Geography at the edges: the antimeridian, the poles and multipoint observations, through QGIS."""
from __future__ import annotations

import csv

import numpy as np
import processing
import pytest
from qgis.core import (
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProject,
    QgsVectorLayer,
    QgsWkbTypes,
)

from sinr_qgis.core import evaluation, runtime
from sinr_qgis.core.bundle import Species
from sinr_qgis.core.grid import Grid, transform_points
from sinr_qgis.qgis_bridge import evaluation as bridge
from sinr_qgis.qgis_bridge.grids import default_grid
from sinr_qgis.qgis_bridge.observations import export_observations
from tests.helpers.prediction_helpers import bundle, model_file, pixel_centre, read_raster, sinr_provider  # noqa: F401


def _layer(kind: str, crs: str, fields: str, rows: list[tuple[list, QgsGeometry | None]]) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{kind}?crs={crs}{fields}", "layer", "memory")
    feats = []
    for attrs, geom in rows:
        f = QgsFeature(layer.fields())
        f.setAttributes(attrs)
        if geom is not None:
            f.setGeometry(geom)
        feats.append(f)
    assert layer.dataProvider().addFeatures(feats)[0]
    return layer


def _polygon(xs, ys) -> QgsGeometry:
    return QgsGeometry.fromPolygonXY([[QgsPointXY(float(x), float(y)) for x, y in zip(xs, ys)]])


# ---- extents across the antimeridian -----------------------------------------------------------
def test_an_extent_typed_west_edge_first_across_the_antimeridian_is_the_narrow_window(
        sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    out = tmp_path / "bering.tif"
    processing.run("sinr:predict_range", {"MODEL": str(model_file), "SPECIES": "sp001",
                                          "EXTENT": "170,-170,50,70 [EPSG:4326]", "PIXEL_SIZE": 0.5,
                                          "MASK_OCEAN": False, "OUTPUT": str(out)})
    data, info = read_raster(out)
    assert info["size"] == (40, 40)  # 20 degrees, not the 340-degree complement
    assert info["gt"] == pytest.approx((170.0, 0.5, 0.0, 70.0, 0.0, -0.5))
    # a pixel east of the seam (x 185.25 = 174.75 W) holds the model's value there
    x, y = pixel_centre(info["gt"], 10, 30)
    assert (x, y) == pytest.approx((185.25, 64.75))
    p = runtime.Predictor(bundle).predict_points(np.array([[-174.75, 64.75]]), [1])
    assert data[0, 10, 30] == pytest.approx(float(np.asarray(p).ravel()[0]), abs=1e-5)


def test_an_inverted_projected_extent_is_refused(sinr_provider, model_file, tmp_path):  # noqa: F811
    with pytest.raises(QgsProcessingException, match="greater than its x maximum"):
        processing.run("sinr:predict_range", {"MODEL": str(model_file), "SPECIES": "sp001",
                                              "EXTENT": "1000000,-1000000,0,1000000 [EPSG:3857]",
                                              "PIXEL_SIZE": 50000, "OUTPUT": str(tmp_path / "x.tif")})
    assert not list(tmp_path.iterdir())


def test_a_pacific_layer_extent_gives_the_window_across_the_antimeridian():
    # lon 170 E .. 170 W drawn in PDC Mercator (EPSG:3832), as a Pacific atlas stores it
    lon = np.array([170.0, -170.0, -170.0, 170.0, 170.0])
    lat = np.array([50.0, 50.0, 60.0, 60.0, 50.0])
    x, y, _ = transform_points(lon, lat, "EPSG:4326", "EPSG:3832")
    layer = _layer("Polygon", "EPSG:3832", "&field=species:string", [(["Acer x"], _polygon(x, y))])
    grid = default_grid(layer.extent(), layer.crs(), QgsProject.instance().transformContext(), 1.0)
    xmin, ymin, xmax, ymax = grid.extent
    assert (xmin, xmax) == pytest.approx((170.0, 190.0), abs=1e-6)
    assert ymin == pytest.approx(50.0, abs=0.5) and ymax == pytest.approx(60.0, abs=0.5)


# ---- ranges around a pole ------------------------------------------------------------------------
def test_a_polar_range_is_labelled_by_cell_centres_in_its_own_crs():
    a = np.linspace(0, 2 * np.pi, 129)
    cap = _polygon(2.0e6 * np.cos(a), 2.0e6 * np.sin(a))  # 2000 km around the North Pole, EPSG:3995
    layer = _layer("Polygon", "EPSG:3995", "&field=species:string", [(["Picea glauca"], cap)])
    grid = default_grid(layer.extent(), layer.crs(), QgsProject.instance().transformContext(), 2.0)
    assert grid.extent[0] == -180 and grid.extent[2] == pytest.approx(180)
    assert grid.extent[3] == 90  # the pole inside the extent is reached
    sp = Species(0, "picegla", "Picea glauca", 0)
    match = evaluation.match_species(["Picea glauca"], [sp])
    refs, polys = bridge.range_references(layer, "species", match, grid, layer.crs())
    labels = refs[0][2]
    lat = grid.extent[3] - grid.yres * (np.arange(grid.height) + 0.5)
    _x, y, _ok = transform_points(np.zeros(grid.height), lat, "EPSG:4326", "EPSG:3995")
    np.testing.assert_array_equal(labels.all(axis=1), np.abs(y) <= 2.0e6)  # whole rows inside, near the pole
    assert not labels[lat < 70].any() and labels[lat > 74].all()
    assert polys.crs == "EPSG:3995"


# ---- multipoint observations ---------------------------------------------------------------------
def _sightings() -> QgsVectorLayer:
    two = QgsGeometry.fromMultiPointXY([QgsPointXY(-150, 64), QgsPointXY(-70, 48)])
    seam = QgsGeometry.fromMultiPointXY([QgsPointXY(-179.5, 52), QgsPointXY(179.5, 52)])
    one = QgsGeometry.fromMultiPointXY([QgsPointXY(-80, 40)])
    return _layer("MultiPoint", "EPSG:4326", "&field=species:string&field=fid2:integer",
                  [(["Picea glauca", 1], two), (["Picea glauca", 2], seam), (["Acer rubrum", 3], one),
                   (["Acer rubrum", 4], None)])


def test_every_part_of_a_multipoint_is_an_observation(tmp_path):
    path = tmp_path / "obs.csv"
    export = export_observations(_sightings(), "species", path,
                                 transform_context=QgsProject.instance().transformContext())
    with open(path, newline="") as f:
        rows = [(float(r["longitude"]), float(r["latitude"]), r["species"]) for r in csv.DictReader(f)]
    assert rows == [(-150, 64, "Picea glauca"), (-70, 48, "Picea glauca"), (-179.5, 52, "Picea glauca"),
                    (179.5, 52, "Picea glauca"), (-80, 40, "Acer rubrum")]  # never the centroids
    assert (export.n_written, export.n_no_geometry) == (5, 1)


def test_species_at_points_ranks_each_part_of_a_multipoint(sinr_provider, model_file, bundle):  # noqa: F811
    result = processing.run("sinr:species_at_points", {"INPUT": _sightings(), "MODEL": str(model_file),
                                                       "TOP_K": 2, "OUTPUT": "memory:"})
    out = result["OUTPUT"]
    assert QgsWkbTypes.flatType(out.wkbType()) == QgsWkbTypes.Point
    feats = list(out.getFeatures())
    assert len(feats) == 5 * 2
    where = sorted({(f.geometry().asPoint().x(), f.geometry().asPoint().y(), f["fid2"]) for f in feats})
    assert where == [(-179.5, 52, 2), (-150, 64, 1), (-80, 40, 3), (-70, 48, 1), (179.5, 52, 2)]
    top = {(f.geometry().asPoint().x(), f.geometry().asPoint().y()): f["species_code"] for f in feats
           if f["rank"] == 1}
    idx, _p = runtime.Predictor(bundle).top_species(np.array([[-70.0, 48.0]]), k=1)
    assert top[(-70.0, 48.0)] == bundle.species[int(idx[0][0])].code


def test_presence_absence_plots_stored_as_multipoints_are_one_plot_per_part():
    plots = QgsGeometry.fromMultiPointXY([QgsPointXY(-80, 35), QgsPointXY(-81, 36)])
    layer = _layer("MultiPoint", "EPSG:4326", "&field=acerrubr:integer",
                   [([1], plots), ([0], QgsGeometry.fromMultiPointXY([QgsPointXY(-90, 30)]))])
    pa = bridge.presence_absence_points(layer, layer.crs(), QgsProject.instance().transformContext(),
                                        species_fields=["acerrubr"])
    np.testing.assert_array_equal(pa.lonlat, [[-80, 35], [-81, 36], [-90, 30]])
    labels, index = pa.labels["acerrubr"]
    assert labels.tolist() == [1, 1, 0] and index.tolist() == [0, 1, 2]


def test_points_on_both_sides_of_the_antimeridian_are_the_same_grid_cells():
    grid = Grid.from_pixel_size((170, 50, 190, 70), "EPSG:4326", 1.0)
    ll, ok = grid.lonlat()
    assert ok.all() and ll[:, 0].min() >= -180 and ll[:, 0].max() < 180
    assert np.sum(ll[:, 0] < 0) == np.sum(ll[:, 0] > 0) == 10 * 20  # 10 columns each side, 20 rows


def test_a_map_around_the_north_pole_in_a_polar_crs(sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    out = tmp_path / "arctic.tif"
    processing.run("sinr:predict_range", {"MODEL": str(model_file), "SPECIES": "sp002",
                                          "EXTENT": "-3000000,3000000,-3000000,3000000 [EPSG:3995]",
                                          "PIXEL_SIZE": 200000, "MASK_OCEAN": False, "OUTPUT": str(out)})
    data, info = read_raster(out)
    assert info["size"] == (30, 30) and np.isfinite(data).all()  # the pole and every longitude have a value
    x, y = pixel_centre(info["gt"], 14, 15)  # a pixel touching the pole: centre (100 km, 100 km)
    lon, lat, ok = transform_points(np.array([x]), np.array([y]), "EPSG:3995", "EPSG:4326")
    p = runtime.Predictor(bundle).predict_points(np.column_stack([lon, lat]), [2])
    assert ok.all() and data[0, 14, 15] == pytest.approx(float(np.asarray(p).ravel()[0]), abs=1e-5)
