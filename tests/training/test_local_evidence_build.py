"""Building local evidence from training records (training/local_evidence.py) and the
``python -m training local-evidence`` command: offsets against the formula computed by hand."""
from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest

from sinr_qgis.core import local_evidence as le
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.runtime import Predictor
from sinr_qgis.core.scoring import point_logits
from sinr_qgis.core.thresholds import lpt_r_per_species
from tests.helpers.cli_helpers import FAST, run_main, write_csv
from training.errors import TrainerError
from training.local_evidence import TRUNCATE, build_local_evidence

H, A, B = 0.25, 0.5, 1.0
# uint16 levels over a spread of about 10 logit units: 1.6e-4 per level, halved by rounding
TOL = 2e-4


def kernel_sum(points: np.ndarray, at: np.ndarray) -> np.ndarray:
    """sum_i g(dx) g(dy) with g the 0.05-degree Gaussian of sigma H normalised over 4 sigma, the
    records snapped to their nearest 0.05-degree node: what the build smooths with."""
    sigma = H / le.CELL_DEG
    radius = int(TRUNCATE * sigma + 0.5)
    k = np.arange(-radius, radius + 1)
    g = np.exp(-0.5 * (k / sigma) ** 2)
    g /= g.sum()
    nodes = np.rint((points + np.array([180.0, 90.0])) / le.CELL_DEG).astype(int)
    out = np.zeros(len(at))
    for n, (x, y) in enumerate(np.rint((at + np.array([180.0, 90.0])) / le.CELL_DEG).astype(int)):
        dx, dy = nodes[:, 0] - x, nodes[:, 1] - y
        near = (abs(dx) <= radius) & (abs(dy) <= radius)
        out[n] = (g[dx[near] + radius] * g[dy[near] + radius]).sum()
    return out


def test_offsets_are_the_formula_at_the_stored_nodes():
    # species 0: 3 records of source "plots" (one repeated: counted once) + 1 of "atlas";
    # species 1: 1 record of "plots"; species 2: none. Sites of "plots": 3 distinct locations.
    ll = np.array([[-80.0, 35.0], [-80.0, 35.0], [-80.2, 35.1], [-79.8, 35.3], [-80.1, 34.9]])
    sp = np.array([0, 0, 0, 0, 1])
    src = np.array(["plots", "plots", "plots", "atlas", "plots"])
    comp = build_local_evidence(ll, sp, 3, src, bandwidth_deg=H, record_weight=A, survey_weight=B)
    nodes = np.array([[-80.0, 35.0], [-80.1, 35.1], [-79.5, 35.5], [-82.0, 33.0]])  # the last beyond every kernel
    # the build's formula before the shift that puts each species' median at its records at 0
    got = comp.offsets(nodes, np.array([0, 1, 2])) - comp.shift[:3]
    own0 = np.array([[-80.0, 35.0], [-80.2, 35.1], [-79.8, 35.3]])  # distinct (location, source) rows
    rec0 = kernel_sum(own0, nodes)
    sites = kernel_sum(np.array([[-80.0, 35.0], [-80.2, 35.1], [-80.1, 34.9], [-79.8, 35.3]]), nodes)
    rate0 = np.divide(rec0, sites, out=np.zeros_like(rec0), where=sites > 1e-12)  # no site in reach: rate 0
    want0 = A * np.log(rec0 / 3 * le.RECORD_SCALE + le.RECORD_FLOOR) + B * np.log(rate0 + le.SURVEY_FLOOR)
    np.testing.assert_allclose(got[:, 0], want0, atol=TOL)
    rec1 = kernel_sum(np.array([[-80.1, 34.9]]), nodes)
    plots = kernel_sum(np.array([[-80.0, 35.0], [-80.2, 35.1], [-80.1, 34.9]]), nodes)  # its one source's sites
    want1 = A * np.log(rec1 * le.RECORD_SCALE + le.RECORD_FLOOR) + B * np.log(
        np.divide(rec1, plots, out=np.zeros_like(rec1), where=plots > 1e-12) + le.SURVEY_FLOOR)
    np.testing.assert_allclose(got[:, 1], want1, atol=TOL)
    floor = A * math.log(le.RECORD_FLOOR) + B * math.log(le.SURVEY_FLOOR)
    assert got[3, 0] == pytest.approx(floor, abs=TOL) and np.allclose(got[:, 2], floor)
    assert tuple(comp.window[2]) == (0, 0, 0, 0) and comp.shift[2] == 0
    for s in (0, 1):
        assert np.median(comp.offsets(ll[sp == s], np.array([s]))) == pytest.approx(0.0, abs=1e-6)


def test_one_source_when_none_is_given_and_refusals():
    ll = np.array([[10.0, 50.0], [10.5, 50.0]])
    one = build_local_evidence(ll, np.array([0, 1]), 2, None, bandwidth_deg=H, record_weight=0.0, survey_weight=1.0)
    # each species holds one of the two sites: its rate at its own site is k(0) / (k(0) + k(0.5 deg))
    rate = kernel_sum(ll[:1], ll[:1]) / kernel_sum(ll, ll[:1])
    assert one.offsets(ll[:1], np.array([0]))[0, 0] - one.shift[0] == pytest.approx(math.log(rate[0] + le.SURVEY_FLOOR),
                                                                                     abs=TOL)
    with pytest.raises(TrainerError, match=r"bandwidth of at least 0\.2"):
        build_local_evidence(ll, np.array([0, 1]), 2, bandwidth_deg=0.1)
    with pytest.raises(TrainerError, match="weights >= 0"):
        build_local_evidence(ll, np.array([0, 1]), 2, record_weight=-1.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train_le")
    data = write_csv(folder / "obs.csv.gz")
    out = folder / "m.sinr"
    from training.cli import main

    assert main(["train", "--data", str(data), "--out", str(out), "--cap", "100", "--pos-weight", "3", *FAST]) == 0
    return data, out


def test_the_command_adds_the_component_with_the_lpt_r_of_the_combined_score(trained, tmp_path, capsys):
    data, out = trained
    code, _, err = run_main(capsys, "local-evidence", out, "--data", data, "--out", tmp_path / "le.sinr",
                            "--source-column", "source", "--bandwidth", "0.5")
    assert code == 0, err
    new, old = ModelBundle.load(tmp_path / "le.sinr"), ModelBundle.load(out)
    assert "le.sinr: local evidence: SINR logit + 1 x log record density + 2 x log local detection rate, " \
           "Gaussian kernel 0.5 deg" in err
    assert new.local_evidence.bandwidth_deg == 0.5 and "Local evidence" in new.card()
    with zipfile.ZipFile(tmp_path / "le.sinr") as zn, zipfile.ZipFile(out) as zo:
        for member in ("species.csv", "encoder.onnx", "weights.npz", "footprint.npz"):
            assert zn.read(member) == zo.read(member), member  # the network and its footprint untouched
    # LPT-R of the combined score at the model's own records (cap 100 of 150 per species, seed 0)
    from sinr_qgis.core.occurrences import read_occurrences
    from training.data import prepare_training_data

    sel = prepare_training_data(read_occurrences(data), cap=100, seed=0)
    logits = point_logits(Predictor(new), sel.lonlat, new.species)
    own = logits[np.arange(len(sel.species)), sel.species].astype(np.float64)
    want = lpt_r_per_species(1 / (1 + np.exp(-own)), sel.species, new.n_species)
    np.testing.assert_allclose(new.local_evidence.lpt_r, want, rtol=1e-5)
    assert not np.allclose(want, [s.threshold for s in old.species])


def test_the_command_refuses_what_it_cannot_do(trained, tmp_path, capsys):
    data, out = trained
    other = write_csv(tmp_path / "other.csv", n_per=80)
    code, _, err = run_main(capsys, "local-evidence", out, "--data", other, "--out", tmp_path / "x.sinr")
    assert code == 2 and "The records are not those the model was trained on" in err
    code, _, err = run_main(capsys, "local-evidence", out, "--data", data, "--bandwidth", "0.05",
                            "--out", tmp_path / "x.sinr")
    assert code == 2 and "bandwidth of at least 0.2 degrees" in err
    assert not (tmp_path / "x.sinr").exists()
