"""Environmental models through the algorithms: COVARIATES rasters, missing coverage = nodata."""
from __future__ import annotations

import numpy as np
import processing
import pytest
from osgeo import gdal, osr
from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsProcessingException, QgsVectorLayer

from sinr_qgis.core import runtime
from sinr_qgis.core.bundle import ModelBundle
from tests.factories import make_bundle
from tests.tolerances import bundle_prob_atol

from .prediction_helpers import pixel_centre, read_raster, sinr_provider  # noqa: F401


@pytest.fixture(scope="module")
def env_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("env") / "env_model.sinr"
    make_bundle(path, n_species=3, encoding="sin_cos_env", covariate_names=("temp",), env_mean=[40.0],
                env_std=[3.0], seed=5)
    return path


@pytest.fixture(scope="module")
def latitude_raster(tmp_path_factory):
    """A covariate equal to the latitude, covering only lon -80..-75 (the west half of the extent)."""
    path = tmp_path_factory.mktemp("cov") / "lat.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 50, 100, 1, gdal.GDT_Float32)
    ds.SetGeoTransform((-80.0, 0.1, 0.0, 45.0, 0.0, -0.1))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    lat = 45.0 - (np.arange(100) + 0.5) * 0.1
    ds.GetRasterBand(1).WriteArray(np.repeat(lat[:, None], 50, axis=1).astype(np.float32))
    ds.GetRasterBand(1).SetNoDataValue(-9999)
    ds = None
    return path


def stored_latitude(lat: float) -> float:
    """The latitude raster's value at ``lat`` as the sampler reads it: linear between the float32
    cell values (40.45 is stored as 40.4500008), so the reference sees the same covariate."""
    centres = 45.0 - (np.arange(100)[::-1] + 0.5) * 0.1
    return float(np.interp(lat, centres, centres.astype(np.float32).astype(np.float64)))


def test_env_model_needs_covariates(sinr_provider, env_model, tmp_path):  # noqa: F811
    with pytest.raises(QgsProcessingException, match="temp"):
        processing.run("sinr:predict_range", {"MODEL": str(env_model), "SPECIES": "sp000",
                                              "EXTENT": "-80,-70,35,45 [EPSG:4326]", "PIXEL_SIZE": 1.0,
                                              "OUTPUT": str(tmp_path / "x.tif")})
    assert not (tmp_path / "x.tif").exists()


def test_env_model_range_uses_covariate_values_and_nodata_outside(sinr_provider, env_model, latitude_raster,  # noqa: F811
                                                                 tmp_path):
    out = tmp_path / "env.tif"
    processing.run("sinr:predict_range", {"MODEL": str(env_model), "SPECIES": "sp001",
                                          "EXTENT": "-80,-70,35,45 [EPSG:4326]", "PIXEL_SIZE": 1.0,
                                          "MASK_OCEAN": False, "COVARIATES": [str(latitude_raster)],
                                          "OUTPUT": str(out)})
    data, info = read_raster(out)
    assert np.isfinite(data[0, :, :5]).all()  # covered by the covariate raster
    assert np.isnan(data[0, :, 5:]).all()  # not covered: nodata, never a silent zero
    lon, lat = pixel_centre(info["gt"], 4, 2)
    bundle = ModelBundle.load(env_model)
    env = np.array([[stored_latitude(lat)]])
    ref = runtime.Predictor(bundle).predict_points(np.array([[lon, lat]]), [1], env=env)[0, 0]
    # a grid block vs one point: float32 rounding only
    assert data[0, 4, 2] == pytest.approx(float(ref), abs=bundle_prob_atol(bundle, [(lon, lat)], 1, env))


def test_env_model_species_at_points(sinr_provider, env_model, latitude_raster):  # noqa: F811
    layer = QgsVectorLayer("Point?crs=EPSG:4326&field=id:integer", "pts", "memory")
    feats = []
    for i, (x, y) in enumerate([(-78.0, 40.0), (-72.0, 40.0)]):
        f = QgsFeature(layer.fields())
        f.setAttributes([i])
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, y)))
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    result = processing.run("sinr:species_at_points", {"INPUT": layer, "MODEL": str(env_model), "TOP_K": 2,
                                                       "COVARIATES": [str(latitude_raster)], "OUTPUT": "memory:"})
    rows = sorted((f["id"], f["rank"], f["species_code"], f["probability"]) for f in result["OUTPUT"].getFeatures())
    assert [r[0] for r in rows] == [0, 0]  # the point outside the covariate raster gets no species
    bundle = ModelBundle.load(env_model)
    env = np.array([[stored_latitude(40.0)]])
    probs = runtime.Predictor(bundle).predict_points(np.array([[-78.0, 40.0]]), None, env=env)[0]
    order = np.argsort(-probs, kind="stable")[:2]
    assert [r[2] for r in rows] == [bundle.species[j].code for j in order]
    tol = bundle_prob_atol(bundle, [(-78.0, 40.0)], order, env)  # other batch shapes: float32 rounding
    assert [r[3] for r in rows] == pytest.approx([float(probs[j]) for j in order], abs=tol)
