"""The data footprint made at export (training/footprint.py): the distance field against brute-force
haversine, the threshold rule, the covariate ranges, the bundle a training writes, and
``python -m training footprint`` for a bundle of an older version (the same rule)."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from sinr_qgis.core.bundle import SUMS_KEY, ModelBundle
from sinr_qgis.core.footprint import OFFICIAL_NO_FOOTPRINT, footprint_status
from tests.helpers.cli_helpers import FAST, run_main, write_csv
from tests.helpers.footprints import haversine_km, kth_nearest_km
from training.footprint import covariate_ranges, distance_field, model_footprint

RNG = np.random.default_rng(5)
# 300 records at 120 places (several species recorded at one place), around the Great Lakes
PLACES = np.stack([RNG.uniform(-95, -75, 120), RNG.uniform(38, 50, 120)], axis=1)
RECORDS = PLACES[RNG.integers(0, 120, 300)]


@pytest.fixture(scope="module")
def field():
    return distance_field(RECORDS, k=10, resolution=1.0)


def test_the_field_is_the_brute_force_distance_to_the_10th_nearest_distinct_location(field):
    places = np.unique(RECORDS, axis=0)
    assert field.k == 10 and field.n_locations == places.shape[0] <= 120 and field.km.shape == (181, 361)
    rows = RNG.integers(0, 181, 400)
    cols = RNG.integers(0, 361, 400)
    nodes = np.stack([-180.0 + cols, -90.0 + rows], axis=1)
    near = np.array([[-85.0, 44.0], [-100.0, 30.0], [-60.0, 47.0]])  # nodes near the records too
    nodes = np.concatenate([nodes, near])
    got = np.concatenate([field.km[rows, cols], [field.km[134, 95], field.km[120, 80], field.km[137, 120]]])
    # chord -> arc in float64, stored as float32: within float32 rounding of distances up to 20,000 km
    np.testing.assert_allclose(got, kth_nearest_km(nodes, places, 10), rtol=0, atol=0.005)


def test_the_threshold_is_the_999th_percentile_of_the_leave_one_out_distances(field):
    places = np.unique(RECORDS, axis=0)
    d = haversine_km(places, places)
    np.fill_diagonal(d, np.inf)  # leave the location itself out
    loo = np.partition(d, 9, axis=1)[:, 9]
    assert field.threshold_km == pytest.approx(np.percentile(loo, 99.9), abs=1e-6)
    assert field.threshold_rule == (f"99.9th percentile of the {places.shape[0]} distinct training locations' "
                                    "distance to their 10th nearest other training location")
    # records at one place are one location: doubling every record changes nothing
    twice = distance_field(np.concatenate([RECORDS, RECORDS]), k=10, resolution=1.0)
    assert twice.threshold_km == field.threshold_km
    np.testing.assert_array_equal(twice.km, field.km)


def test_few_locations_lower_k_and_one_location_makes_no_footprint():
    five = distance_field(PLACES[:5], k=10, resolution=30.0)
    assert five.k == 4
    assert distance_field(np.repeat(PLACES[:1], 3, axis=0), resolution=30.0) is None
    assert distance_field(np.array([[np.nan, 1.0]]), resolution=30.0) is None


def test_covariate_ranges_and_which_rules_each_encoding_gets():
    env = np.array([[1.0, 3.0], [4.0, 2.0], [np.nan, 5.0], [2.0, 2.0]])
    r = covariate_ranges(env, ["temp", "landcover"], [None, (2.0, 3.0, 5.0)])
    assert r.meta() == [{"name": "temp", "min": 1.0, "max": 4.0}] and r.classes[1] == (2.0, 3.0, 5.0)
    coords = model_footprint("sin_cos", RECORDS[:20], resolution=30.0)
    assert coords.distance is not None and coords.ranges is None
    env_only = model_footprint("env", RECORDS[:4], env, ["temp", "landcover"], [None, (2.0, 3.0, 5.0)])
    assert env_only.distance is None and env_only.ranges.low[0] == 1.0  # location says nothing to an env model
    both = model_footprint("sin_cos_env", RECORDS[:4], env, ["temp", "landcover"], [None, (2.0, 3.0, 5.0)],
                           resolution=30.0)
    assert both.distance is not None and both.ranges is not None


# ---- the bundle a training writes, and the command for older ones -------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    data = write_csv(folder / "obs.csv.gz")
    out = folder / "m.sinr"
    from training.cli import main

    assert main(["train", "--data", str(data), "--out", str(out), "--cap", "100", "--pos-weight", "3", *FAST]) == 0
    return data, out


def test_training_stores_the_footprint_of_its_records(trained):
    data, out = trained
    b = ModelBundle.load(out)
    from sinr_qgis.core.occurrences import read_occurrences
    from training.data import prepare_training_data

    sel = prepare_training_data(read_occurrences(data), cap=100, seed=0)
    ref = distance_field(sel.lonlat)
    assert (b.footprint.distance.k, b.footprint.distance.resolution) == (10, 0.25)
    assert b.footprint.distance.threshold_km == pytest.approx(ref.threshold_km)
    np.testing.assert_array_equal(b.footprint.distance.km, np.rint(ref.km))  # whole km in the bundle
    assert b.footprint.ranges is None  # a coordinate model
    with zipfile.ZipFile(out) as z:
        assert "footprint.npz" in json.loads(z.read("model.json"))[SUMS_KEY]


def strip_footprint(src, dst):
    """``src`` as an older version wrote it: no footprint.npz, no footprint in model.json."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist() if n != "footprint.npz"}
    meta = json.loads(members["model.json"])
    del meta["footprint"], meta[SUMS_KEY]["footprint.npz"]
    members["model.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return dst


def test_the_footprint_command_adds_the_same_footprint_and_keeps_the_weights(trained, tmp_path, capsys):
    data, out = trained
    old = strip_footprint(out, tmp_path / "old.sinr")
    assert ModelBundle.load(old).footprint is None
    code, _, err = run_main(capsys, "footprint", old, "--data", data, "--out", tmp_path / "new.sinr")
    assert code == 0, err
    new, ref = ModelBundle.load(tmp_path / "new.sinr"), ModelBundle.load(out)
    assert f"new.sinr: {ref.footprint.rule()}" in err
    np.testing.assert_array_equal(new.footprint.distance.km, ref.footprint.distance.km)
    assert new.footprint.meta() == ref.footprint.meta()
    with zipfile.ZipFile(tmp_path / "new.sinr") as zn, zipfile.ZipFile(out) as zr:
        for member in ("species.csv", "encoder.onnx", "weights.npz", "footprint.npz"):
            assert zn.read(member) == zr.read(member), member


def test_the_footprint_command_refuses_what_it_cannot_do(trained, tmp_path, capsys):
    data, out = trained
    other = write_csv(tmp_path / "other.csv", n_per=80)  # same species, other counts
    code, _, err = run_main(capsys, "footprint", out, "--data", other, "--out", tmp_path / "x.sinr")
    assert code == 2 and "error: The records are not those the model was trained on" in err
    code, _, err = run_main(capsys, "footprint", out, "--data", data, "--resolution", "0.7", "--out", tmp_path / "x")
    assert code == 2 and "--resolution a number of degrees that divides 180" in err
    assert not (tmp_path / "x.sinr").exists() and not (tmp_path / "x").exists()


def test_an_imported_official_model_has_no_footprint_and_says_so(tmp_path, capsys):
    from tests.helpers.official_reference import official_state, write_checkpoint
    from training.official import convert_official

    ck = write_checkpoint(tmp_path / "model.pt", official_state())
    convert_official(ck, None, tmp_path / "inat.sinr")
    b = ModelBundle.load(tmp_path / "inat.sinr")
    assert b.footprint is None and "footprint.npz" not in zipfile.ZipFile(b.path).namelist()
    assert f"Footprint: {OFFICIAL_NO_FOOTPRINT}" in b.card()
    assert OFFICIAL_NO_FOOTPRINT == ("no footprint stored (an imported official model: its training records are not "
                                     "in the checkpoint)")
    assert footprint_status(None, b.meta, shown=False) == OFFICIAL_NO_FOOTPRINT
    code, _, err = run_main(capsys, "footprint", b.path, "--data", write_csv(tmp_path / "o.csv"))
    assert code == 2 and "was imported from an official SINR checkpoint: its training records are not known" in err
