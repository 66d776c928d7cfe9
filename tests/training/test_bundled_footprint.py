"""The bundled model's data footprint is the training export's rule applied to its own records
(na_trees.csv.gz): the threshold recomputed, the grid against brute-force haversine, and the
places the issue names (Cuba and Hispaniola out, Florida in)."""
from __future__ import annotations

import numpy as np
import pytest

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.resources import BUNDLED
from tests.helpers.footprints import corner_km, kth_nearest_km
from training.footprint import distinct_locations, leave_one_out_km, unit_vectors

PLACES = {"Havana": (-82.38, 23.13), "Pinar del Rio": (-83.70, 22.42), "Santo Domingo": (-69.93, 18.49),
          "Port-au-Prince": (-72.34, 18.54), "Camaguey": (-77.92, 21.38),
          "Key West": (-81.78, 24.56), "Miami": (-80.19, 25.76), "Tampa": (-82.46, 27.95), "Everglades": (-80.9, 25.5)}
OUT = ("Havana", "Pinar del Rio", "Santo Domingo", "Port-au-Prince", "Camaguey")


@pytest.fixture(scope="module")
def records(shared_data):
    from training.columnar import read_training_occurrences
    from training.data import prepare_training_data

    bundle = ModelBundle.load(BUNDLED.path)
    t = bundle.meta["training"]
    occ, _ = read_training_occurrences(shared_data / "occurrences" / "na_trees.csv.gz")
    data = prepare_training_data(occ, cap=t["cap"], seed=t["seed"], thin_deg=t["thin_deg"],
                                 min_records=t["min_records"])
    return bundle, distinct_locations(data.lonlat)


def test_the_threshold_is_the_rule_applied_to_its_records(records):
    from scipy.spatial import cKDTree

    bundle, places = records
    d = bundle.footprint.distance
    assert (d.k, d.resolution, d.n_locations) == (10, 0.25, places.shape[0]) and places.shape[0] == 54_192
    loo = leave_one_out_km(cKDTree(unit_vectors(places)), 10)
    assert d.threshold_km == pytest.approx(np.percentile(loo, 99.9), abs=1e-9)
    assert round(d.threshold_km) == 187
    assert bundle.footprint.rule() == ("Outside the data footprint where the 10th nearest distinct training "
                                       "location is farther than 187 km.")


def test_cuba_and_hispaniola_are_outside_and_florida_inside(records):
    bundle, places = records
    d = bundle.footprint.distance
    pts = np.array(list(PLACES.values()))
    truth = kth_nearest_km(pts, places, 10)
    got = d.sample(pts)
    # bilinear on 0.25-degree nodes of a 1-Lipschitz distance, nodes in whole km
    assert (np.abs(got - truth) <= corner_km(pts, 0.25) + 0.51).all()
    outside = dict(zip(PLACES, got > d.threshold_km))
    assert {p for p, o in outside.items() if o} == set(OUT)
    # the brute-force truth says the same, with a margin wider than the interpolation's
    assert all(truth[i] > d.threshold_km + 30 for i, p in enumerate(PLACES) if p in OUT)
    assert all(truth[i] < d.threshold_km - 20 for i, p in enumerate(PLACES) if p not in OUT)
    # the distances the model card quotes
    assert dict(zip(PLACES, np.rint(got).astype(int))) == {
        "Havana": 298, "Pinar del Rio": 443, "Santo Domingo": 393, "Port-au-Prince": 644, "Camaguey": 509,
        "Key West": 162, "Miami": 102, "Tampa": 29, "Everglades": 71}
