"""Products made from a predictor: the dock's preview grid, the embedding PCA, "what lives here"."""
from __future__ import annotations

import numpy as np
import pytest

from sinr_qgis.core import products
from sinr_qgis.core.errors import SinrError
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.products import RankedSpecies, fit_pca, ranked_species
from sinr_qgis.core.runtime import Predictor
from tests.factories import fixture_bundle


# ---- the coarse grid ---------------------------------------------------------------------------
@pytest.mark.parametrize("size, expected", [((1024, 1024), (128, 128)),   # 1/8 along each side
                                            ((2048, 1536), (148, 111)),   # at most ~128 x 128 pixels
                                            ((255, 256), None)])         # small: done before a preview helps
def test_the_preview_grid_is_coarse_over_the_same_extent(size, expected):
    grid = Grid((-1.45e7, 1.6e6, -6.0e6, 1.01e7), "EPSG:3857", *size)
    coarse = products.preview_grid(grid)
    if expected is None:
        assert coarse is None
        return
    assert (coarse.width, coarse.height) == expected
    assert coarse.extent == grid.extent and coarse.crs_wkt == grid.crs_wkt
    assert coarse.n_pixels <= 1.01 * products.PREVIEW_MAX_PIXELS
    assert coarse.n_pixels <= grid.n_pixels / products.PREVIEW_FACTOR ** 2


# ---- PCA of embeddings ---------------------------------------------------------------------------
def test_pca_finds_the_line_the_points_lie_on():
    u = np.array([1.0, 2.0, 2.0]) / 3.0  # a unit vector
    t = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    x = 5.0 + t[:, None] * u  # on a line through (5, 5, 5)
    x = np.vstack([x, [np.nan, 0.0, 0.0]])  # a nodata row is left out of the fit
    pca = fit_pca(x)
    # float64 SVD of exact rows: agreement to rounding; the transform returns float32 (1e-6 relative)
    np.testing.assert_allclose(pca.mean, [5.0, 5.0, 5.0], atol=1e-12)
    np.testing.assert_allclose(pca.components[0], u, atol=1e-12)  # largest loading made positive
    np.testing.assert_allclose(pca.explained, [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(pca.transform(x[:5])[:, 0], t, atol=1e-6)


def test_pca_pads_missing_dimensions_and_refuses_too_few_pixels():
    pca = fit_pca(np.array([[0.0, 1.0], [0.0, 3.0], [0.0, 5.0]]))
    assert pca.components.shape == (3, 2)
    np.testing.assert_allclose(pca.components, [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(pca.explained, [1.0, 0.0, 0.0], atol=1e-12)
    with pytest.raises(SinrError, match="Too few valid pixels to summarise the embedding"):
        fit_pca(np.array([[1.0, 2.0], [np.nan, 1.0]]))


# ---- "what lives here" -------------------------------------------------------------------------
def test_ranked_species_are_the_predictors_top_species(tmp_path):
    bundle = fixture_bundle(tmp_path / "m.sinr", n_species=6, seed=2)
    predictor = Predictor(bundle, "numpy")
    lonlat = np.array([[-98.0, 38.5], [np.nan, 10.0]])
    ranks = ranked_species(predictor, lonlat, k=3)
    idx, prob = predictor.top_species(lonlat, k=3)
    assert len(ranks) == 2 and ranks[1] == []  # a point the model cannot evaluate: an empty list
    assert ranks[0] == [RankedSpecies(r + 1, bundle.species[int(idx[0, r])], float(prob[0, r])) for r in range(3)]
    assert [r.rank for r in ranks[0]] == [1, 2, 3]
    assert ranks[0][0].probability >= ranks[0][1].probability >= ranks[0][2].probability
