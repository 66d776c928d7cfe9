"""The NA-Trees harness skips species by the plugin's one rule (metrics.ap_undefined_reason)."""
from __future__ import annotations

import numpy as np
import pytest

from sinr_qgis.core import metrics
from training.benchmarks import na_trees as nt


def test_a_species_present_on_every_point_is_skipped_like_one_present_on_none():
    lonlat = np.array([[i, 0.0] for i in range(4)], dtype=float)
    labels = np.array([[1, 1, 0], [0, 1, 0], [1, 1, 0], [0, 1, 0]], dtype=bool)
    task = nt.Task("plots", lonlat, ["aaa", "all", "none"], [""] * 3, labels)

    def score(points: np.ndarray, codes: list[str]) -> np.ndarray:
        assert codes == ["aaa"]  # skipped species are not even scored
        return -points[:, :1]  # ranks point 0 first

    res = nt.evaluate_task(task, score, ["aaa", "all", "none"])
    assert res["per_species"] == {"aaa": pytest.approx((1 + 2 / 3) / 2)}
    assert res["n_species"] == 1 and res["n_skipped"] == 2
    assert res["skipped"] == {"all": metrics.ap_undefined_reason(np.ones(4)),
                              "none": metrics.ap_undefined_reason(np.zeros(4))}
    assert res["skipped"]["all"].startswith("no absence among its 4 evaluated points")
    assert res["map"] == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_area_weights_of_zero_do_not_count_as_absences():
    lonlat = np.zeros((3, 2))
    task = nt.Task("ranges", lonlat, ["x"], [""], np.array([[1], [1], [0]], dtype=bool))
    res = nt.evaluate_task(task, lambda p, c: np.zeros((3, 1)), ["x"], weights=np.array([1.0, 1.0, 0.0]))
    assert res["n_species"] == 0 and res["map"] is None
    assert res["skipped"]["x"].startswith("no absence among its 2 evaluated points")
