"""One rule for references where AP means nothing (no evaluated location, no presence, no absence),
applied alike by evaluate_points, evaluate_grid and written to the table, CSV and report."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from sinr_qgis.core import eval_report, evaluation, metrics
from sinr_qgis.core.bundle import Species
from sinr_qgis.core.grid import Grid

SP = [Species(i, f"sp{i}", f"Species {i}", 1) for i in range(5)]


@pytest.mark.parametrize(("labels", "weights", "expected"), [
    ([], None, "no point to evaluate (none has both a reference label and a score): AP is undefined"),
    ([0, 0, 0], None, "no presence among its 3 evaluated points: AP is undefined"),
    ([0], None, "no presence among its 1 evaluated point: AP is undefined"),
    ([1, 1], None, "no absence among its 2 evaluated points (present in every one): AP would be 100 % "
                   "whatever the scores, so it says nothing about the model"),
    ([1], None, "no absence among its 1 evaluated point (present in every one): AP would be 100 % "
                "whatever the scores, so it says nothing about the model"),
    # weight 0 means "not evaluated", as in average_precision: the only absence does not count
    ([1, 1, 0], [0.5, 0.5, 0.0], "no absence among its 2 evaluated points (present in every one): AP would "
                                 "be 100 % whatever the scores, so it says nothing about the model"),
    ([1, 0], [0.0, 0.0], "no point to evaluate (none has both a reference label and a score): AP is undefined"),
    ([1, 0], None, None),
    ([0, 1, 0], [1.0, 2.0, 0.1], None),
])
def test_ap_undefined_reason(labels, weights, expected):
    assert metrics.ap_undefined_reason(np.array(labels), None if weights is None else np.array(weights)) == expected


def test_a_reference_without_absence_scores_100_whatever_the_model_says():
    """Why the rule exists: scikit-learn gives AP 1 to any ranking, even the reversed one."""
    y = np.ones(6, dtype=bool)
    assert average_precision_score(y, np.arange(6.0)) == average_precision_score(y, -np.arange(6.0)) == 1.0
    assert "AP would be 100 %" in metrics.ap_undefined_reason(y)


def _points_case():
    scores = {"sp0": np.array([4.0, 3.0, 2.0, 1.0, 0.0, np.nan]),  # usable: ranks p0 > p1 > ...
              "sp1": np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
              "sp2": np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
              "sp3": np.full(6, np.nan),
              "sp4": np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])}
    idx = np.arange(6)
    refs = [("zero", SP[0], np.array([1, 0, 1, 0, 0, 1]), idx),  # the NaN point is left out: 5 points
            ("everywhere", SP[1], np.ones(6), idx),
            ("nowhere", SP[2], np.zeros(6), idx),
            ("unscored", SP[3], np.array([1, 0, 1, 0, 1, 0]), idx),
            ("single", SP[4], np.array([1]), np.array([2]))]
    return refs, scores


def test_evaluate_points_skips_every_meaningless_ap_alike_and_leaves_it_out_of_map():
    refs, scores = _points_case()
    result = evaluation.evaluate_points(refs, scores)
    ap0 = average_precision_score([1, 0, 1, 0, 0], [4, 3, 2, 1, 0])  # (1 + 2/3) / 2
    assert [r.code for r in result.results] == ["sp0"]
    assert result.results[0].ap == pytest.approx(ap0, abs=1e-12)
    assert result.map == round(100 * ap0, 2) == 83.33
    reasons = {s.code: s.reason for s in result.skipped}
    assert reasons == {
        "sp1": metrics.ap_undefined_reason(np.ones(6)),
        "sp2": metrics.ap_undefined_reason(np.zeros(6)),
        "sp3": metrics.ap_undefined_reason(np.zeros(0)),
        "sp4": metrics.ap_undefined_reason(np.ones(1)),
    }
    assert [(s.n_cells, s.n_presence) for s in result.skipped] == [(6, 6), (6, 0), (0, 0), (1, 1)]
    assert str(result.skipped[0]).startswith("sp1 (Species 1): no absence among its 6 evaluated points")
    # points without a score are counted, species by species
    assert result.unscored == [
        "sp0 (Species 0): 1 of its 6 points have no score (no prediction value or no covariate value there) "
        "and are left out of its AP",
        "sp3 (Species 3): 6 of its 6 points have no score (no prediction value or no covariate value there) "
        "and are left out of its AP"]


def test_table_rows_list_skipped_species_with_an_empty_ap_and_the_reason(tmp_path):
    refs, scores = _points_case()
    result = evaluation.evaluate_points(refs, scores)
    rows = result.rows()
    assert [r["code"] for r in rows] == ["sp0", "sp1", "sp2", "sp3", "sp4"]
    assert all(set(r) == set(evaluation.TABLE_COLUMNS) for r in rows)
    assert rows[0]["skipped"] is None and rows[0]["ap"] == pytest.approx(83.3333, abs=1e-4)
    everywhere = rows[1]
    assert everywhere["ap"] is None and everywhere["f1"] is None and everywhere["f1_threshold"] is None
    assert (everywhere["n_cells"], everywhere["n_presence"], everywhere["prevalence"]) == (6, 6, 1.0)
    assert everywhere["skipped"].startswith("no absence among its 6 evaluated points")
    assert rows[3]["prevalence"] is None  # no point evaluated: no prevalence either
    path = eval_report.write_csv(tmp_path / "t.csv", [*result.results, *result.skipped])
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [r["code"] for r in table] == ["sp0", "sp1", "sp2", "sp3", "sp4"]
    assert table[1]["ap"] == "" and table[1]["skipped"] == everywhere["skipped"]
    assert table[0]["skipped"] == "" and float(table[0]["ap"]) == pytest.approx(83.3333, abs=1e-4)


def test_evaluate_grid_applies_the_same_rule_to_cells():
    grid = Grid.from_pixel_size((0, 0, 4, 3), "EPSG:4326", 1.0)  # 12 cells, no ocean mask
    rng = np.random.default_rng(1)
    scores = {s.code: rng.normal(size=grid.shape) for s in SP[:3]}
    scores["sp2"][:] = np.nan  # e.g. a prediction raster that does not reach the extent
    half = np.zeros(grid.shape, bool)
    half[:, :2] = True
    refs = [("all", SP[0], np.ones(grid.shape, bool)), ("half", SP[1], half), ("unscored", SP[2], half)]
    result = evaluation.evaluate_grid(grid, refs, scores, mask_ocean=False)
    assert [r.code for r in result.results] == ["sp1"]
    assert result.results[0].ap == pytest.approx(average_precision_score(half.ravel(), scores["sp1"].ravel()))
    assert [(s.code, s.reason) for s in result.skipped] == [
        ("sp0", metrics.ap_undefined_reason(np.ones(12), unit="cell")),
        ("sp2", metrics.ap_undefined_reason(np.zeros(0), unit="cell"))]
    assert result.skipped[0].reason.startswith("no absence among its 12 evaluated cells")
    assert result.unscored == ["sp2 (Species 2): 12 of its 12 cells have no score (no prediction value or no "
                               "covariate value there) and are left out of its AP"]
    # area weights: the same rule on the cells that count
    weighted = evaluation.evaluate_grid(grid, refs, scores, mask_ocean=False, area_weighted=True)
    assert [r.code for r in weighted.results] == ["sp1"] and len(weighted.skipped) == 2


def test_evaluate_species_refuses_a_meaningless_reference():
    with pytest.raises(ValueError, match=r"^sp1: no absence among its 3 evaluated points"):
        evaluation.evaluate_species(SP[1], "x", np.ones(3), np.array([0.1, 0.2, 0.3]))
