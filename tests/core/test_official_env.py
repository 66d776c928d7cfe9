"""The official SINR covariate inputs in core: names, the bundle's sampling record, windowed
sampling, and covariates matched to a model by name (never silently by position)."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from osgeo import gdal, osr

from sinr_qgis.core import official_env
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.covariate_match import covariate_samplers, match_covariates
from sinr_qgis.core.errors import BundleError, CovariateError
from sinr_qgis.core.official_env import OfficialBandSampler, official_order, sampling_problem, worldclim_variable
from tests.factories import fixture_bundle
from tests.helpers.global_rasters import worldwide_points, write_global_raster


@pytest.mark.parametrize("name, key", [
    ("wc2.1_5m_elev", 0), ("wc2.1_5m_bio_1", 1), ("wc2.1_5m_bio_12", 12), ("wc2.1_30s_bio_19", 19),
    ("bio12", 12), ("BIO_03", 3), ("bio 7", 7), ("bioclim_5", 5), ("elevation", 0), ("DEM", 0), ("alt", 0),
    ("wc2.1_5m_bio_20", None), ("bio0", None), ("wc2.1_5m_tavg_01", None), ("altitude_bio", None),
    ("salt", None), ("wc2.1_5m_bio_1_ssp585", 1),
])
def test_worldclim_names(name, key):
    assert worldclim_variable(name) == key


def test_official_order_sorts_like_the_preparation_script():
    names = ["wc_bio_10", "wc_bio_2", "wc_elev", "wc_bio_1"]
    assert [names[i] for i in official_order(names)] == ["wc_elev", "wc_bio_1", "wc_bio_2", "wc_bio_10"]
    assert official_order(["bio1", "bio1"]) is None and official_order(["bio1", "tree_cover"]) is None


SAMPLING = {"method": "sinr_official", "grid": [90, 180]}


@pytest.mark.parametrize("encoding, problem", [
    ({"name": "env", "covariates": [{"name": "a", "mean": 1.0, "std": 2.0}], "covariate_sampling": SAMPLING}, None),
    ({"name": "sin_cos"}, None),
    ({"name": "env", "covariates": [], "covariate_sampling": {"method": "kriging"}}, "'kriging' is unknown"),
    ({"name": "sin_cos", "covariate_sampling": SAMPLING}, "needs an environmental encoding, not 'sin_cos'"),
    ({"name": "env", "covariates": [{"name": "a", "mean": 1.0, "std": 0.0}], "covariate_sampling": SAMPLING},
     "positive std"),
    ({"name": "env", "covariates": [{"name": "a", "mean": 1.0, "std": 1.0}],
      "covariate_sampling": {"method": "sinr_official", "grid": [90]}}, "needs a grid"),
])
def test_the_bundles_sampling_record_is_checked(encoding, problem):
    got = sampling_problem(encoding)
    assert got is None if problem is None else problem in got


def test_a_bundle_with_an_unknown_sampling_is_refused_not_read_raw(tmp_path):
    b = fixture_bundle(tmp_path / "env.sinr", "env", n_species=3, covariate_names=("a", "b"))
    assert json.loads(zipfile.ZipFile(b.path).read("model.json"))["format_version"] == 1
    b.meta["encoding"]["covariate_sampling"] = {"method": "kriging"}
    with pytest.raises(BundleError, match=r"env.sinr: model.json encoding: covariate sampling 'kriging' is unknown "
                                          r"to this version of the plugin\. Update the plugin\."):
        b.validate()
    b.meta["encoding"]["covariate_sampling"] = dict(SAMPLING)
    b.write(tmp_path / "v2.sinr")  # written as version 2: an older plugin refuses it instead of misreading it
    assert json.loads(zipfile.ZipFile(tmp_path / "v2.sinr").read("model.json"))["format_version"] == 2
    assert ModelBundle.load(tmp_path / "v2.sinr").meta["encoding"]["covariate_sampling"]["grid"] == [90, 180]


def _raster(path, seed=0, shape=(30, 60), fill=True):
    rng = np.random.default_rng(seed)
    v = rng.normal(20, 5, shape).astype(np.float32)
    if fill:
        v[:6, :10] = np.float32(-3.4e38)
    return write_global_raster(path, v, float(np.float32(-3.4e38)))


def test_sampler_reads_in_windows_what_it_reads_whole(tmp_path, monkeypatch):
    """Strips of rows read what one window reads; points off the grid are NaN. (That these are the
    official values is checked against torch in tests/training/test_official_env.py.)"""
    p = _raster(tmp_path / "bio_1.tif")
    env = official_env.read_official_env([p])
    cov = {"name": env.names[0], "mean": env.means[0], "std": env.stds[0]}
    pts = worldwide_points(2000)
    whole = OfficialBandSampler(p, 1, cov, env.grid).sample(pts)
    # every point has a value (filled cells read as 0, the mean, as in the official code): the
    # comparisons below are not of NaN with NaN
    assert whole.shape == (2007,) and np.isfinite(whole).all()
    monkeypatch.setattr(official_env, "_WINDOW_PIXELS", 150)  # strips of two rows
    np.testing.assert_array_equal(OfficialBandSampler(p, 1, cov, env.grid).sample(pts), whole)
    off = OfficialBandSampler(p, 1, cov, env.grid).sample(np.array([[np.nan, 0], [181, 0], [0, -90.5], [180, 90]]))
    assert np.isnan(off[:3]).all() and np.isfinite(off[3])


def test_sampler_refuses_rasters_other_than_those_imported(tmp_path):
    p = _raster(tmp_path / "bio_1.tif")
    cov = {"name": "bio_1", "mean": 20.0, "std": 5.0}
    with pytest.raises(CovariateError, match=r"bio_1.tif has 60 x 30 cells; the model was imported with its "
                                             r"covariates on a 120 x 60 grid"):
        OfficialBandSampler(p, 1, cov, (60, 120))
    with pytest.raises(CovariateError, match=r"has 1 band\(s\); band 2 does not exist"):
        OfficialBandSampler(p, 2, cov, (30, 60))
    with pytest.raises(CovariateError, match=r"does not know\. Update the plugin"):
        covariate_samplers({"covariates": [cov], "covariate_sampling": {"method": "kriging"}}, [(str(p), 1)])


def _bands(path, names):
    """One multi-band raster whose bands are described as ``names``."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 4, 2, len(names), gdal.GDT_Float32)
    ds.SetGeoTransform((-180, 90, 0, 90, 0, -90))
    ds.SetProjection(osr.SRS_WKT_WGS84_LAT_LONG)
    for i, n in enumerate(names, start=1):
        ds.GetRasterBand(i).SetDescription(n)
        ds.GetRasterBand(i).WriteArray(np.full((2, 4), i, np.float32))
    ds = None
    return str(path)


def test_covariates_are_matched_by_name_not_position(tmp_path):
    """Case 20's kind: the same layers in another band or file order are re-ordered by their names."""
    stack = _bands(tmp_path / "stack.tif", ["bio12", "bio1", "bio5"])
    assert match_covariates(["bio1", "bio5", "bio12"], [(stack, 1), (stack, 2), (stack, 3)]) == [
        (stack, 2), (stack, 3), (stack, 1)]
    singles = [_raster(tmp_path / f"{n}.tif", fill=False) for n in ("wc2.1_5m_bio_2", "wc2.1_5m_elev")]
    # file names (a single-band file goes by its name), and training's '<file>_b1' for an undescribed band
    assert match_covariates(["wc2.1_5m_elev", "wc2.1_5m_bio_2"], [(str(p), 1) for p in singles]) == [
        (str(singles[1]), 1), (str(singles[0]), 1)]
    assert match_covariates(["wc2.1_5m_bio_2_b1", "wc2.1_5m_elev_b1"], [(str(p), 1) for p in singles]) == [
        (str(singles[0]), 1), (str(singles[1]), 1)]
    # WorldClim variables when no name is the model's own (renamed or other-resolution files)
    assert match_covariates(["wc2.1_2d_elev", "wc2.1_2d_bio_2"], [(str(p), 1) for p in singles]) == [
        (str(singles[1]), 1), (str(singles[0]), 1)]
    # names that say nothing of the model's covariates are not guessed by position: refused, both orders
    # listed; the user names them explicitly ({covariate: band}), or by elimination when one is left
    other = _bands(tmp_path / "other.tif", ["x", "y"])
    with pytest.raises(CovariateError, match=r"the model reads bio1, bio5 \(in this order\), the bands given are x, "
                                             r"y; no band is named bio1, bio5\. Name each band"):
        match_covariates(["bio1", "bio5"], [(other, 1), (other, 2)])
    assert match_covariates(["bio1", "bio5"], {"bio5": (other, 1), "bio1": (other, 2)}) == [(other, 2), (other, 1)]
    assert match_covariates(["bio1", "bio5"], [(other, 2), (stack, 2)]) == [(stack, 2), (other, 2)]
    # a path alone stands for all its bands; bands the model does not read are left out; case is ignored
    assert match_covariates(["BIO12", "bio5"], [stack]) == [(stack, 1), (stack, 3)]
    # an alias (a QGIS layer's name) names an undescribed band
    assert match_covariates(["bio1", "bio5"], [(other, 1), (other, 2)], aliases=[["bio5"], ["bio1"]]) == [
        (other, 2), (other, 1)]


@pytest.mark.parametrize("given, message", [
    (["bio5", "bio5", "bio12"], r"do not match the model's covariates by name: the model reads bio1, bio5, bio12 "
                                r"\(in this order\), the bands given are bio5, bio5, bio12"),
    (["bio5", "x", "y"], r"the bands given are bio5, x, y"),
    (["bio1", "bio5"], r"The model reads 3 covariates \(bio1, bio5, bio12\); 2 raster band\(s\) were given"),
])
def test_bands_that_cannot_be_put_in_place_are_refused(tmp_path, given, message):
    stack = _bands(tmp_path / "stack.tif", given)
    with pytest.raises(CovariateError, match=message):
        match_covariates(["bio1", "bio5", "bio12"], [(stack, i + 1) for i in range(len(given))])


def test_plugin_models_sample_covariates_by_name_too(tmp_path):
    stack = _bands(tmp_path / "stack.tif", ["b", "a"])
    samplers = covariate_samplers({"covariates": [{"name": "a"}, {"name": "b"}]}, [(stack, 1), (stack, 2)])
    assert [s.band for s in samplers] == [2, 1]
    assert [s.sample(np.array([[0.0, 0.0]]))[0] for s in samplers] == [2.0, 1.0]
