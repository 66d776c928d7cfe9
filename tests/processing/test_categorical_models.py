"""A model with a categorical covariate through the algorithms: the class band is read at each
pixel's own cell and one-hot encoded, and every product made with the model (map, richness,
embedding, evaluation at points) warns about pixels in classes no training record had."""
from __future__ import annotations

import numpy as np
import processing
import pytest
from osgeo import gdal, osr
from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsProcessingFeedback, QgsVectorLayer

from sinr_qgis.core import runtime
from sinr_qgis.core.bundle import ModelBundle
from tests.factories import make_bundle
from tests.helpers.prediction_helpers import pixel_centre, read_raster, sinr_provider  # noqa: F401
from tests.tolerances import bundle_prob_atol

EXTENT = "0,6,40,46 [EPSG:4326]"  # 6 x 6 cells of 1 degree
UNSEEN = ("12 location(s) lie in class(es) 5 of categorical covariate 'landcover', which no training record had "
          "(the model knows 1, 3): they are encoded as no class, so their predictions there rest on the other "
          "covariates.")


class _Feedback(QgsProcessingFeedback):
    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []

    def pushWarning(self, warning: str) -> None:
        self.warnings.append(warning)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cat") / "cat.sinr"
    make_bundle(path, n_species=3, encoding="sin_cos_env", covariate_names=("temp", "landcover"),
                env_mean=[10.0, 0.0], env_std=[5.0, 1.0], classes=[None, [1.0, 3.0]], width=16, depth=1, seed=3)
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """band ``temp`` = the latitude; band ``landcover``: classes 1, 3, 5 in stripes of 2 columns
    (class 5, in columns 4 and 5, is none of the model's)."""
    path = tmp_path_factory.mktemp("cov") / "stack.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 6, 6, 2, gdal.GDT_Float32)
    ds.SetGeoTransform((0.0, 1.0, 0.0, 46.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    lat = np.repeat((46.0 - np.arange(6) - 0.5)[:, None], 6, axis=1)
    for b, (name, values) in enumerate((("temp", lat), ("landcover", np.tile(LANDCOVER, (6, 1))))):
        band = ds.GetRasterBand(b + 1)
        band.SetDescription(name)
        band.WriteArray(values.astype(np.float32))
    ds = None
    return path


LANDCOVER = np.array([1.0, 1.0, 3.0, 3.0, 5.0, 5.0])  # by column


def test_a_map_is_the_one_hot_of_each_pixels_class_and_warns_about_unseen_ones(sinr_provider, model, stack,  # noqa: F811
                                                                              tmp_path):
    out, feedback = tmp_path / "map.tif", _Feedback()
    processing.run("sinr:predict_range", {"MODEL": str(model), "SPECIES": "sp001", "EXTENT": EXTENT,
                                          "PIXEL_SIZE": 1.0, "MASK_OCEAN": False, "COVARIATES": [str(stack)],
                                          "OUTPUT": str(out)}, feedback=feedback)
    assert UNSEEN in feedback.warnings
    data, info = read_raster(out)
    bundle = ModelBundle.load(model)
    centres = np.array([pixel_centre(info["gt"], r, c) for r in range(6) for c in range(6)])
    env = np.c_[centres[:, 1], LANDCOVER[np.arange(36) % 6]]  # each pixel's own cell, straight from the arrays
    ref = runtime.Predictor(bundle, "numpy").predict_points(centres, [1], env=env)[:, 0]
    # a grid block vs the same points: float32 rounding of one network
    np.testing.assert_allclose(data[0].ravel(), ref, atol=bundle_prob_atol(bundle, centres, 1, env), rtol=0)
    # an unseen class is no class: the prediction of a row of zeros, not of class 1 or 3
    none = runtime.Predictor(bundle, "numpy").predict_points(centres[4:5], [1], env=np.array([[45.5, -1.0]]))
    assert data[0, 0, 4] == pytest.approx(float(none[0, 0]), abs=bundle_prob_atol(bundle, centres[4:5], 1, env[4:5]))


def test_richness_and_embeddings_warn_about_unseen_classes_once(sinr_provider, model, stack, tmp_path):  # noqa: F811
    common = {"MODEL": str(model), "EXTENT": EXTENT, "PIXEL_SIZE": 1.0, "MASK_OCEAN": False,
              "COVARIATES": [str(stack)]}
    for alg, extra in (("sinr:species_richness", {}), ("sinr:location_embeddings", {"MODE": 0}),
                       ("sinr:location_embeddings", {"MODE": 1})):
        feedback = _Feedback()
        processing.run(alg, common | extra | {"OUTPUT": str(tmp_path / f"{alg[5:]}{extra}.tif")}, feedback=feedback)
        # once, counting the map's own pixels (not the PCA's sample of the extent as well)
        assert [w for w in feedback.warnings if "categorical" in w] == [UNSEEN], (alg, extra)


def test_evaluation_at_points_warns_about_points_in_unseen_classes(sinr_provider, model, stack, tmp_path):  # noqa: F811
    layer = QgsVectorLayer("Point?crs=EPSG:4326&field=sp001:integer", "pa", "memory")
    feats = []
    for i, x in enumerate([0.5, 2.5, 4.5, 5.5]):  # classes 1, 3, 5, 5
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, 43.5)))
        f.setAttributes([i % 2])
        feats.append(f)
    assert layer.dataProvider().addFeatures(feats)[0]
    feedback = _Feedback()
    processing.run("sinr:evaluate_presence_absence", {"MODEL": str(model), "INPUT": layer,
                                                      "COVARIATES": [str(stack)],
                                                      "OUTPUT_TABLE": "memory:"}, feedback=feedback)
    assert UNSEEN.replace("12 location(s)", "2 location(s)") in feedback.warnings
