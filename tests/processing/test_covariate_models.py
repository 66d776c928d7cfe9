"""Environmental models through the algorithms: COVARIATES rasters matched by name (COVARIATE_NAMES where
the bands' names say nothing), missing coverage = nodata, a map without a covered pixel an error."""
from __future__ import annotations

import numpy as np
import processing
import pytest
from osgeo import gdal, osr
from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsProcessingException, QgsVectorLayer

from sinr_qgis.core import runtime
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.grid import Grid
from tests.factories import make_bundle
from tests.helpers.prediction_helpers import pixel_centre, read_raster, sinr_provider  # noqa: F401
from tests.tolerances import bundle_prob_atol


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


@pytest.fixture(scope="module")
def two_covariates(tmp_path_factory):
    """A model of bio1 and bio12, and a 3-band raster without band names: bio12, an extra band, bio1."""
    folder = tmp_path_factory.mktemp("named")
    bundle = make_bundle(folder / "env2.sinr", n_species=2, encoding="env", covariate_names=("bio1", "bio12"),
                         env_mean=[15.0, 1500.0], env_std=[8.0, 800.0], seed=4)
    rng = np.random.default_rng(4)
    bands = [rng.uniform(100, 3000, (10, 10)), rng.uniform(-5, 5, (10, 10)), rng.uniform(0, 30, (10, 10))]
    stack = folder / "stack.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(stack), 10, 10, 3, gdal.GDT_Float32)
    ds.SetGeoTransform((-80.0, 1.0, 0.0, 45.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for i, arr in enumerate(bands):
        ds.GetRasterBand(i + 1).WriteArray(arr.astype(np.float32))
    ds = None
    return bundle, stack


def test_covariate_names_map_bands_whose_names_say_nothing(sinr_provider, two_covariates, tmp_path):  # noqa: F811
    bundle, stack = two_covariates
    params = {"MODEL": str(bundle.path), "SPECIES": "sp001", "EXTENT": "-80,-70,35,45 [EPSG:4326]", "PIXEL_SIZE": 1.0,
              "MASK_OCEAN": False, "COVARIATES": [str(stack)]}
    # by name only: refused, with the model's order and the bands given (never guessed by position)
    with pytest.raises(QgsProcessingException, match=r"the model reads bio1, bio12 \(in this order\), the bands given "
                                                     r"are stack_b1, stack_b2, stack_b3; no band is named bio1, bio12"):
        processing.run("sinr:predict_range", {**params, "OUTPUT": str(tmp_path / "refused.tif")})
    with pytest.raises(QgsProcessingException, match=r"2 covariate name\(s\) were given for 3 raster band\(s\) "
                                                     r"\(stack\.tif band 1, stack\.tif band 2, stack\.tif band 3\)"):
        processing.run("sinr:predict_range", {**params, "COVARIATE_NAMES": "bio12,bio1",
                                              "OUTPUT": str(tmp_path / "miscounted.tif")})
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "named.tif"
    processing.run("sinr:predict_range", {**params, "COVARIATE_NAMES": "bio12, -, bio1", "OUTPUT": str(out)})
    data, _ = read_raster(out)
    grid = Grid.from_pixel_size((-80, 35, -70, 45), "EPSG:4326", 1.0)
    ref = runtime.predict_grid(runtime.Predictor(bundle), grid, [1], mask_ocean=False,
                               covariates={"bio1": (str(stack), 3), "bio12": (str(stack), 1)})
    assert np.isfinite(data).all()
    # the same grid and covariates through Processing: float32 rounding of one network only
    np.testing.assert_allclose(data, ref, atol=1e-6)


def test_a_map_with_no_covered_pixel_is_an_error_without_a_file(sinr_provider, env_model, latitude_raster,  # noqa: F811
                                                                tmp_path):
    out = tmp_path / "empty.tif"
    with pytest.raises(QgsProcessingException, match=r"The covariate rasters have no value at any pixel of the "
                                                     r"extent \(they cover lat\.tif: lon -80\.00 to -75\.00"):
        processing.run("sinr:predict_range", {"MODEL": str(env_model), "SPECIES": "sp001",
                                              "EXTENT": "0,10,35,45 [EPSG:4326]", "PIXEL_SIZE": 1.0,
                                              "MASK_OCEAN": False, "COVARIATES": [str(latitude_raster)],
                                              "OUTPUT": str(out)})
    assert list(tmp_path.iterdir()) == []
