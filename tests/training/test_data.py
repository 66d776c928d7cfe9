"""Species index, per-species cap, grid thinning, random sphere points, data preparation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sinr_qgis.core.errors import OccurrenceError
from sinr_qgis.core.occurrences import occurrences_from_arrays
from training import data as D


def test_species_index_is_sorted_unique():
    codes, idx = D.species_index(np.array(["quer", "acer", "quer", "pinu"], dtype=object))
    assert codes == ["acer", "pinu", "quer"]
    assert idx.tolist() == [2, 0, 2, 1]


def test_cap_keeps_at_most_cap_per_species_and_all_of_rare_ones():
    sp = np.array([0] * 50 + [1] * 3 + [2] * 10)
    kept = D.cap_per_species(sp, 5, seed=1)
    counts = np.bincount(sp[kept], minlength=3)
    assert counts.tolist() == [5, 3, 5]
    assert np.all(np.diff(kept) > 0)  # sorted, no repeats
    assert np.array_equal(kept, D.cap_per_species(sp, 5, seed=1))  # seeded
    assert not np.array_equal(kept, D.cap_per_species(sp, 5, seed=2))
    assert len(D.cap_per_species(sp, 0, seed=1)) == len(sp)  # no cap


def test_cap_is_the_papers_permutation_walk():
    sp = np.random.default_rng(3).integers(0, 4, 200)
    cap = 7
    perm = np.random.default_rng(11).permutation(len(sp))
    kept_by_walk, seen = [], {}
    for i in perm:  # the explicit walk: keep while the species has fewer than cap kept
        if seen.get(sp[i], 0) < cap:
            kept_by_walk.append(i)
            seen[sp[i]] = seen.get(sp[i], 0) + 1
    assert D.cap_per_species(sp, cap, seed=11).tolist() == sorted(kept_by_walk)


def test_cap_subset_is_uniform_across_records():
    sp = np.zeros(10, dtype=np.int64)
    hits = np.zeros(10)
    for seed in range(2000):
        hits[D.cap_per_species(sp, 3, seed)] += 1
    assert np.allclose(hits / 2000, 0.3, atol=0.04)


def test_thinning_keeps_one_record_per_species_and_cell():
    lon = np.array([10.1, 10.9, 10.5, 11.2, 10.2, -179.9])
    lat = np.array([5.1, 5.8, 5.5, 5.5, 5.2, -89.9])
    sp = np.array([0, 0, 1, 0, 1, 0])
    kept = D.thin_per_cell(lon, lat, sp, 1.0)
    # (sp0, cell 10/5) x2 -> first; (sp1, 10/5) x2 -> first; (sp0, 11/5); (sp0, -180/-90)
    assert kept.tolist() == [0, 2, 3, 5]
    assert D.thin_per_cell(lon, lat, sp, 5.0).tolist() == [0, 2, 5]
    with pytest.raises(ValueError):
        D.thin_per_cell(lon, lat, sp, 0)


def test_sphere_points_are_area_uniform_in_numpy_and_torch():
    pts = D.random_sphere_points(200_000, np.random.default_rng(0))
    assert pts[:, 0].min() >= -180 and pts[:, 0].max() <= 180
    assert pts[:, 1].min() >= -90 and pts[:, 1].max() <= 90
    # area-uniform: sin(lat) is uniform on [-1, 1]; a lat-uniform sampler would fail this
    s = np.sin(np.radians(pts[:, 1]))
    assert np.histogram(s, bins=10, range=(-1, 1))[0] / len(s) == pytest.approx(np.full(10, 0.1), abs=0.005)
    assert np.mean(np.abs(pts[:, 1]) > 60) == pytest.approx(1 - np.sin(np.radians(60)), abs=0.005)
    u = np.array([0.0, 0.5, 0.25])
    v = np.array([0.5, 1.0, 0.0])
    expected = [[-180, 0], [0, 90], [-90, -90]]
    assert np.allclose(D.sphere_lonlat(u, v), expected)
    assert np.allclose(D.sphere_lonlat(torch.tensor(u), torch.tensor(v), torch).numpy(), expected)


def test_prepare_training_data_thins_drops_rare_caps_and_records_provenance():
    rng = np.random.default_rng(0)
    lon = np.r_[rng.uniform(-100, -90, 40), [-80.2, -80.21], rng.uniform(-70, -60, 5)]
    lat = np.r_[rng.uniform(30, 40, 40), [40.0, 40.01], rng.uniform(30, 40, 5)]
    sp = np.array(["b"] * 40 + ["a"] * 2 + ["c"] * 5, dtype=object)
    occ = occurrences_from_arrays(lon, lat, sp, names={"a": "A a", "b": "B b", "c": "C c"}, origin="x.csv")
    d = D.prepare_training_data(occ, cap=10, seed=0, thin_deg=0.5, min_records=2)
    assert d.codes == ["b", "c"]  # "a" thinned to one record, then below min_records
    assert d.names == ["B b", "C c"]
    assert d.n_train().tolist() == [10, 5]
    p = d.provenance
    assert p["n_removed_by_thinning"] >= 1 and p["n_species_below_min_records"] == 1
    assert p["n_used"] == 15 and p["n_read"] == 47 and p["file"] == "x.csv"
    assert d.lonlat.dtype == np.float32 and d.lonlat.shape == (15, 2)
    assert d.fingerprint() == D.prepare_training_data(occ, cap=10, seed=0, thin_deg=0.5,
                                                      min_records=2).fingerprint()
    with pytest.raises(OccurrenceError, match="min-records"):
        D.prepare_training_data(occ, min_records=100)
