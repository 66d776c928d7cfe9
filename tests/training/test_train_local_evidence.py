"""``python -m training train --local-evidence``: the bundle is written once, with the local evidence
``build_local_evidence`` + ``attach`` make from the same selected records; a covariate model is
refused before anything is read or trained."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.resources import BUNDLED_MODEL
from tests.helpers.cli_helpers import FAST, run_main
from training.columnar import read_training_occurrences
from training.data import prepare_training_data
from training.local_evidence import (
    DEFAULT_BANDWIDTH,
    DEFAULT_RECORD_WEIGHT,
    DEFAULT_SURVEY_WEIGHT,
    attach,
    build_local_evidence,
)

# three species, 60 records each, from two surveys: Alpha's survey never recorded Gamma, so its
# sites beside Gamma's are no non-detections of Gamma (they would be with one source)
CENTRES = {"Alpha a": (-75.5, 42.0), "Beta b": (-100.0, 40.0), "Gamma c": (-75.0, 42.0)}
SOURCES = {"Alpha a": ("survey0",), "Beta b": ("survey0", "survey1"), "Gamma c": ("survey1",)}


def _records(path):
    rng = np.random.default_rng(3)
    rows = ["species,latitude,longitude,source"]
    for name, (x, y) in CENTRES.items():
        for i in range(60):
            source = SOURCES[name][i % len(SOURCES[name])]
            rows.append(f"{name},{y + rng.normal(0, 1.5):.4f},{x + rng.normal(0, 1.5):.4f},{source}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_train_adds_the_local_evidence_built_from_its_own_records(tmp_path, capsys):
    data = _records(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    code, stdout, err = run_main(capsys, "train", "--data", data, "--out", out, "--cap", "40", "--pos-weight", "3",
                                 "--jsonl", "--local-evidence", *FAST)
    assert code == 0, err
    described = ("local evidence: SINR logit + 1 x log record density + 2 x log local detection rate, Gaussian "
                 "kernel 0.25 deg")
    notes = [e["message"] for e in map(json.loads, stdout.splitlines()) if e["event"] == "note"]
    assert notes[-2:] == ["adding local evidence from 120 records of 3 species", described]
    assert err.count(described) == 1  # both logs, once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.sinr", "obs.csv"]  # no checkpoint, no .part
    trained = ModelBundle.load(out)
    got = trained.local_evidence
    assert got is not None and trained.footprint is not None
    # the same selection (cap 40 of 60 per species, seed 0, the file's sources) through the command's functions
    occ, _ = read_training_occurrences(str(data))
    sel = prepare_training_data(occ, cap=40, seed=0)
    assert sel.source is not None and sorted(set(np.asarray(sel.source).astype(str))) == ["survey0", "survey1"]
    plain = ModelBundle.load(out)
    plain.local_evidence = None
    want = attach(plain, build_local_evidence(sel.lonlat, sel.species, plain.n_species, sel.source),
                  sel.lonlat, sel.species).local_evidence
    assert (got.bandwidth_deg, got.record_weight, got.survey_weight) == (0.25, 1.0, 2.0)
    for name in ("window", "start", "values", "scale", "shift"):  # from the records alone: exact
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    # LPT-R of the combined score: float32 logits from the same weights; 1e-6 allows a thread
    # count's different float order in the encoder's sums (probabilities near 0.5 move by ~1e-7)
    np.testing.assert_allclose(got.lpt_r, want.lpt_r, rtol=0, atol=1e-6)
    assert np.isfinite(got.lpt_r).all()
    # the sources count: one source would give other detection rates
    one = build_local_evidence(sel.lonlat, sel.species, plain.n_species, None)
    assert not np.array_equal(one.values, got.values)


@pytest.mark.parametrize("encoding", ["sin_cos_env", "env"])
def test_local_evidence_for_a_covariate_model_is_refused_before_training(tmp_path, capsys, encoding):
    data = _records(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    # the raster is never opened: the options are refused first
    code, stdout, err = run_main(capsys, "train", "--data", data, "--out", out, "--encoding", encoding,
                                 "--covariates", tmp_path / "bio.tif", "--local-evidence", "--jsonl", *FAST)
    message = (f"--local-evidence is for models that read coordinates only; --encoding {encoding} reads covariates. "
               "Leave out --local-evidence, or train on coordinates (no --covariates).")
    assert code == 2 and err == f"error: {message}\n"
    assert [json.loads(line) for line in stdout.splitlines()] == [{"event": "error", "message": message}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.csv"]  # no bundle, no checkpoint


def test_the_defaults_are_the_bundled_models_local_evidence():
    # `train --local-evidence` has no weights of its own: the bundled model's are the chosen ones
    le = ModelBundle.load(BUNDLED_MODEL).local_evidence
    assert (le.bandwidth_deg, le.record_weight, le.survey_weight) == (
        DEFAULT_BANDWIDTH, DEFAULT_RECORD_WEIGHT, DEFAULT_SURVEY_WEIGHT) == (0.25, 1.0, 2.0)


def test_memory_for_local_evidence_is_counted_before_training(tmp_path, capsys, monkeypatch):
    from sinr_qgis.core import train_checks
    from training import local_evidence

    data = _records(tmp_path / "obs.csv")
    monkeypatch.setattr(train_checks, "available_memory", lambda: (8 * 2**30, "available memory"))

    monkeypatch.setattr(local_evidence, "peak_bytes", lambda lonlat, species, n: 9 * 2**30)
    code, _, err = run_main(capsys, "train", "--data", data, "--out", tmp_path / "m.sinr", "--local-evidence", *FAST)
    assert code == 2 and err.splitlines()[-1].startswith("error: Not enough memory: about 9.")
    assert "local evidence 9.00); 8.00 GiB available (available memory)." in err
    assert err.splitlines()[-1].endswith("or records (--cap), leave out --local-evidence, or train on a machine with "
                                         "more memory.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.csv"]  # refused before training: nothing written


def test_the_local_evidence_memory_estimate_covers_the_windows_it_builds(tmp_path):
    from training.local_evidence import peak_bytes

    # one record at (0, 0): its stored window is the node holding it +- 10 nodes of kernel reach
    # (0.25 deg x 4 / 0.1): 21 x 21 nodes; the smoothing grid reaches one more kernel:
    # (20 + 20) x 2 + 1 = 81 fine nodes a side. 2 bytes per stored node, its float64 offsets,
    # 3 float64 smoothing arrays
    assert peak_bytes(np.array([[0.0, 0.0]]), np.array([0]), 2) == 2 * 21 * 21 + 8 * 21 * 21 + 24 * 81 * 81
    occ, _ = read_training_occurrences(str(_records(tmp_path / "obs.csv")))
    sel = prepare_training_data(occ, cap=0, seed=0)
    comp = build_local_evidence(sel.lonlat, sel.species, sel.n_species, sel.source)
    built = int((comp.window[:, 2].astype(np.int64) * comp.window[:, 3]).sum())  # the stored nodes
    assert built == comp.values.size and 2 * built < peak_bytes(sel.lonlat, sel.species, sel.n_species)
    # a species recorded all over the globe: its smoothing grid alone is half a gigabyte
    lonlat = np.array([[-180.0, -80.0], [180.0, 80.0]])
    assert peak_bytes(lonlat, np.array([0, 0]), 1) > 0.5 * 2**30
