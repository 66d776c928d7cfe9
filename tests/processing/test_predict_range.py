"""sinr:predict_range through processing.run: georeferencing, pixel values, masks, errors, styling."""
from __future__ import annotations

import numpy as np
import processing
import pytest
from osgeo import osr
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProcessingException,
    QgsProject,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
)

from sinr_qgis.core import runtime
from tests.helpers.prediction_helpers import bundle, model_file, pixel_centre, read_raster, sinr_provider  # noqa: F401
from tests.tolerances import bundle_prob_atol

EAST_US = "-80,-70,35,45 [EPSG:4326]"  # xmin,xmax,ymin,ymax: Ohio to the Atlantic off Cape Cod


def _epsg(wkt: str) -> str:
    srs = osr.SpatialReference(wkt=wkt)
    srs.AutoIdentifyEPSG()
    return srs.GetAuthorityCode(None)


def _score(bundle, lon, lat, species_index):  # noqa: F811
    """The runtime's probability at one point: the reference every pixel must equal."""
    p = runtime.Predictor(bundle).predict_points(np.array([[lon, lat]]), [species_index])
    return float(np.asarray(p).reshape(-1)[0])


def _tol(bundle, lon, lat, species_index):  # noqa: F811
    """A pixel (a grid block) vs one point: other batch shapes, float32 rounding only."""
    return bundle_prob_atol(bundle, [(lon, lat)], species_index)


def test_geographic_grid_is_exact_and_pixels_equal_runtime_scores(sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    out = tmp_path / "range.tif"
    result = processing.run("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp001, Species number3", "EXTENT": EAST_US,
        "PIXEL_SIZE": 0.5, "MASK_OCEAN": True, "OUTPUT": str(out)})
    assert result["OUTPUT"] == str(out)
    data, info = read_raster(out)
    assert info["size"] == (20, 20)
    assert info["gt"] == pytest.approx((-80.0, 0.5, 0.0, 45.0, 0.0, -0.5))
    assert _epsg(info["wkt"]) == "4326"
    assert data.shape == (2, 20, 20)
    assert "Species number1" in info["descriptions"][0] and "Species number3" in info["descriptions"][1]
    # a land pixel (Maryland) equals the runtime's score at its centre, for both species
    lon, lat = pixel_centre(info["gt"], 10, 4)
    assert (lon, lat) == pytest.approx((-77.75, 39.75))
    assert data[0, 10, 4] == pytest.approx(_score(bundle, lon, lat, 1), abs=_tol(bundle, lon, lat, 1))
    assert data[1, 10, 4] == pytest.approx(_score(bundle, lon, lat, 3), abs=_tol(bundle, lon, lat, 3))
    # an Atlantic pixel is nodata
    assert np.isnan(data[:, 10, 19]).all()
    assert np.isfinite(data[:, 10, 4]).all()


def test_ocean_mask_off_predicts_over_the_sea(sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    out = tmp_path / "sea.tif"
    processing.run("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp002", "EXTENT": EAST_US, "PIXEL_SIZE": 0.5,
        "MASK_OCEAN": False, "OUTPUT": str(out)})
    data, info = read_raster(out)
    assert np.isfinite(data).all()
    lon, lat = pixel_centre(info["gt"], 10, 19)
    assert data[0, 10, 19] == pytest.approx(_score(bundle, lon, lat, 2), abs=_tol(bundle, lon, lat, 2))


def test_projected_crs_output_stays_in_that_crs(sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    out = tmp_path / "albers.tif"
    processing.run("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp000",
        "EXTENT": "1000000,1500000,1800000,2200000 [EPSG:5070]", "PIXEL_SIZE": 50000,
        "MASK_OCEAN": False, "OUTPUT": str(out)})
    data, info = read_raster(out)
    assert info["size"] == (10, 8)
    assert info["gt"] == pytest.approx((1_000_000.0, 50_000.0, 0.0, 2_200_000.0, 0.0, -50_000.0))
    assert _epsg(info["wkt"]) == "5070"
    # the centre of pixel (row 2, col 3), transformed to lon/lat by QGIS (not by the code under test)
    x, y = pixel_centre(info["gt"], 2, 3)
    xform = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:5070"),
                                   QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    p = xform.transform(QgsPointXY(x, y))
    assert data[0, 2, 3] == pytest.approx(_score(bundle, p.x(), p.y(), 0), abs=_tol(bundle, p.x(), p.y(), 0))


def test_unknown_species_is_a_clear_error_and_writes_nothing(sinr_provider, model_file, tmp_path):  # noqa: F811
    out = tmp_path / "none.tif"
    with pytest.raises(QgsProcessingException, match=r"Quercus imaginaria.*is not in model"):
        processing.run("sinr:predict_range", {
            "MODEL": str(model_file), "SPECIES": "sp001, Quercus imaginaria", "EXTENT": EAST_US,
            "PIXEL_SIZE": 0.5, "OUTPUT": str(out)})
    assert list(tmp_path.iterdir()) == []


def test_empty_extent_is_a_clear_error_and_writes_nothing(sinr_provider, model_file, tmp_path):  # noqa: F811
    out = tmp_path / "none.tif"
    with pytest.raises(QgsProcessingException, match=r"(?i)extent.*empty"):
        processing.run("sinr:predict_range", {
            "MODEL": str(model_file), "SPECIES": "sp001", "EXTENT": "-75,-75,40,40 [EPSG:4326]",
            "PIXEL_SIZE": 0.5, "OUTPUT": str(out)})
    assert list(tmp_path.iterdir()) == []


def test_missing_model_file_is_a_clear_error(sinr_provider, tmp_path):  # noqa: F811
    with pytest.raises(QgsProcessingException, match="does not exist"):
        processing.run("sinr:predict_range", {
            "MODEL": str(tmp_path / "nope.sinr"), "SPECIES": "sp001", "EXTENT": EAST_US,
            "PIXEL_SIZE": 0.5, "OUTPUT": str(tmp_path / "x.tif")})


def test_loaded_output_is_styled_by_the_post_processor(sinr_provider, model_file, tmp_path, qgis_iface):  # noqa: F811
    out = tmp_path / "styled.tif"
    before = set(QgsProject.instance().mapLayers())
    processing.runAndLoadResults("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp004", "EXTENT": EAST_US, "PIXEL_SIZE": 1.0,
        "OUTPUT": str(out)})
    added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    try:
        assert len(added) == 1
        layer = added[0]
        assert isinstance(layer, QgsRasterLayer)
        renderer = layer.renderer()
        assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
        assert (renderer.classificationMin(), renderer.classificationMax()) == (0.0, 1.0)
    finally:
        QgsProject.instance().removeMapLayers([lyr.id() for lyr in added])


def test_web_mercator_extent(sinr_provider, model_file, bundle, tmp_path):  # noqa: F811
    out = tmp_path / "merc.tif"
    processing.run("sinr:predict_range", {
        "MODEL": str(model_file), "SPECIES": "sp005",
        "EXTENT": "-9000000,-8000000,4000000,5000000 [EPSG:3857]", "PIXEL_SIZE": 100000,
        "MASK_OCEAN": False, "OUTPUT": str(out)})
    data, info = read_raster(out)
    assert info["size"] == (10, 10) and _epsg(info["wkt"]) == "3857"
    x, y = pixel_centre(info["gt"], 7, 1)
    xform = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:3857"),
                                   QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    p = xform.transform(QgsPointXY(x, y))
    assert data[0, 7, 1] == pytest.approx(_score(bundle, p.x(), p.y(), 5), abs=_tol(bundle, p.x(), p.y(), 5))
