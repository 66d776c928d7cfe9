"""core.scoring: logits at points and on grids are one float64 head product, batched and cancellable."""
from __future__ import annotations

import numpy as np
import pytest

from sinr_qgis.core import network, scoring
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.errors import CancelledError, CovariateError
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.runtime import Predictor
from tests.factories import fixture_bundle
from tests.tolerances import F32_EPS, logit_atol

# the float64 product stored as float32: off the exact float64 value by float32 rounding only
ONE_ROUNDING = F32_EPS


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> ModelBundle:
    return fixture_bundle(tmp_path_factory.mktemp("m") / "coords.sinr", n_species=5, seed=7)


@pytest.fixture(scope="module")
def env_bundle(tmp_path_factory) -> ModelBundle:
    # covariates elev (mean 500, std 300) and temp (10, 5)
    return fixture_bundle(tmp_path_factory.mktemp("m") / "env.sinr", "sin_cos_env", n_species=3, seed=2)


def _points(n: int = 50) -> np.ndarray:
    rng = np.random.default_rng(4)
    return np.column_stack([rng.uniform(-120, -70, n), rng.uniform(25, 50, n)])


def test_point_logits_are_the_float64_head_product_in_the_order_given(bundle):
    predictor = Predictor(bundle, backend="numpy")
    ll = _points()
    ll[3] = np.nan
    species = [bundle.species[3], bundle.species[0]]
    got = scoring.point_logits(predictor, ll, species)
    assert got.shape == (50, 2) and got.dtype == np.float32
    assert np.isnan(got[3]).all() and np.isfinite(np.delete(got, 3, axis=0)).all()
    emb = predictor.embed(ll).astype(np.float64)
    exact = emb @ bundle.head[[3, 0]].astype(np.float64).T
    np.testing.assert_allclose(got, exact, rtol=ONE_ROUNDING, atol=0)
    # and the model's own logits, through an independent encoder call (float32 paths)
    ref = network.embed(bundle.weights, bundle.encoding, np.delete(ll, 3, axis=0)) @ bundle.head[[3, 0]].T
    np.testing.assert_allclose(np.delete(got, 3, axis=0), ref, atol=logit_atol(ref, bundle.head), rtol=0)


def test_point_logits_batches_report_progress_and_can_be_cancelled(bundle):
    predictor = Predictor(bundle, backend="numpy")
    ll = _points(50)
    seen: list[float] = []
    small = scoring.point_logits(predictor, ll, bundle.species, batch=7, progress=seen.append)
    whole = scoring.point_logits(predictor, ll, bundle.species)
    # other encoder batch sizes: the float32 network rounds differently, nothing more
    np.testing.assert_allclose(small, whole, atol=logit_atol(predictor.embed(ll), bundle.head), rtol=0)
    assert len(seen) == 8 and seen == sorted(seen) and seen[-1] == 100.0
    assert seen[0] == pytest.approx(100 * 7 / 50)
    checks = iter([False, True])
    with pytest.raises(CancelledError, match="cancelled"):
        scoring.point_logits(predictor, ll, bundle.species, batch=7, is_cancelled=lambda: next(checks))


def test_point_logits_of_an_environmental_model(env_bundle):
    predictor = Predictor(env_bundle, backend="numpy")
    ll = _points(4)
    env = np.array([[100.0, 5.0], [np.nan, 12.0], [900.0, 20.0], [400.0, 8.0]])
    got = scoring.point_logits(predictor, ll, env_bundle.species, env)
    assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2, 3]]).all()  # no covariate value, no score
    with pytest.raises(CovariateError, match="needs 2 covariate values"):
        scoring.point_logits(predictor, ll, env_bundle.species)


def test_grid_logits_equal_point_logits_at_the_land_cell_centres(bundle):
    predictor = Predictor(bundle, backend="numpy")
    grid = Grid.from_pixel_size((-100.0, 25.0, -30.0, 45.0), "EPSG:4326", 5.0)  # the US into the Atlantic
    species = [bundle.species[4], bundle.species[1]]
    got = scoring.grid_logits(predictor, grid, species)
    assert list(got) == [species[0].code, species[1].code]
    assert all(v.shape == grid.shape and v.dtype == np.float32 for v in got.values())
    land = np.isfinite(got[species[0].code]).ravel()
    assert 0 < land.sum() < grid.n_pixels  # the Atlantic cells are nodata
    at_points = scoring.point_logits(predictor, grid.lonlat()[0][land], species)
    for k, s in enumerate(species):
        # the same encoder batches (all of a small grid's land cells), one float64 product each
        np.testing.assert_allclose(got[s.code].ravel()[land], at_points[:, k], rtol=ONE_ROUNDING, atol=0)
