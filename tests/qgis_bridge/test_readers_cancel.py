"""The layer readers stop on a cancel with ``CancelledError``: a part of a layer is never handed on
as if it were the whole (points, range polygons, their labels, the observations export)."""
from __future__ import annotations

import pytest
from qgis.core import QgsProject

from sinr_qgis.core.errors import CancelledError
from sinr_qgis.core.evaluation import match_species
from sinr_qgis.core.grid import Grid
from sinr_qgis.qgis_bridge import evaluation as bridge
from sinr_qgis.qgis_bridge.observations import export_observations
from sinr_qgis.qgis_bridge.points import features_to_lonlat
from tests.helpers.evaluate_helpers import ranges_layer
from tests.helpers.prediction_helpers import bundle, model_file  # noqa: F401
from tests.helpers.train_helpers import point_layer


def _after(n: int):
    """An ``is_cancelled`` that says yes from its ``n + 1``-th call on (a cancel mid-way)."""
    calls = []

    def is_cancelled() -> bool:
        calls.append(1)
        return len(calls) > n
    return is_cancelled


def test_points_cancelled_mid_way_raise_instead_of_returning_a_part(qgis_app):
    layer = point_layer("EPSG:3857", n_per_species=10)
    ctx = QgsProject.instance().transformContext()
    kept, lonlat, skipped = features_to_lonlat(layer.getFeatures(), layer.crs(), ctx, _after(10**6))
    assert len(kept) == lonlat.shape[0] == layer.featureCount() and skipped == 0
    with pytest.raises(CancelledError, match=r"^Cancelled while reading the points\.$"):
        features_to_lonlat(layer.getFeatures(), layer.crs(), ctx, _after(5))


def test_range_polygons_and_labels_cancelled_mid_way_raise(qgis_app, bundle):  # noqa: F811
    layer = ranges_layer()
    match = match_species(bridge.field_values(layer, "taxon"), bundle.species)
    assert len(match.matched) == 2
    grid = Grid((-100.0, 30.0, -80.0, 46.0), "EPSG:4326", 20, 16)
    with pytest.raises(CancelledError, match=r"^Evaluation cancelled\.$"):
        bridge.range_polygons(layer, "taxon", list(match.matched), layer.crs(), _after(1))
    polys = bridge.range_polygons(layer, "taxon", list(match.matched), layer.crs())
    assert polys.n_features == 2
    with pytest.raises(CancelledError, match=r"^Evaluation cancelled\.$"):
        bridge.reference_labels(polys, match, grid, _after(1))
    assert len(bridge.reference_labels(polys, match, grid)) == 2


def test_observation_export_cancelled_says_so_and_leaves_no_file(qgis_app, tmp_path):
    layer = point_layer("EPSG:3857", n_per_species=10)
    out = tmp_path / "obs.csv"
    with pytest.raises(CancelledError, match=r"^Export of the observations was cancelled\.$"):
        export_observations(layer, "taxon", out, transform_context=QgsProject.instance().transformContext(),
                            is_cancelled=_after(3))
    assert list(tmp_path.iterdir()) == []
