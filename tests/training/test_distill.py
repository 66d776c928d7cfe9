"""Knowledge distillation (``train --distill-from``, training/distill.py): the distillation term, its
weight, the teachers' matching by species code and covariate name, their record in the bundle, resume.

The teachers are the committed fixture bundles (random weights, species ``sp000``..), copied into
tmp_path; the student trains on records of those species generated here."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sinr_qgis.core import network
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.runtime import Predictor
from sinr_qgis.core.scoring import point_logits
from sinr_qgis.core.training.options import checkpoint_path
from tests.factories import fixture_bundle
from tests.helpers.cli_helpers import ROOT, run_main
from tests.helpers.trainer_helpers import small_config
from tests.tolerances import F32_EPS, f32_atol, logit_atol
from training.cli import main
from training.data import TrainingData
from training.distill import Teachers, batch_locations, distillation_loss, distilled_loss
from training.errors import TrainerError
from training.negatives import PseudoNegativePool
from training.trainer import Trainer

CODES = [f"sp{i:03d}" for i in range(6)]  # the fixture bundles' species
FAST = ["--epochs", "1", "--batch-size", "128", "--width", "16", "--depth", "1", "--threads", "2", "--no-progress",
        "--pos-weight", "3", "--precision", "fp32"]


def records(n_species: int, n_per: int = 60, seed: int = 0) -> TrainingData:
    """``n_per`` records of each of the first ``n_species`` fixture species, in North America."""
    rng = np.random.default_rng(seed)
    n = n_species * n_per
    lonlat = np.c_[rng.uniform(-120, -70, n), rng.uniform(25, 50, n)].astype(np.float32)
    return TrainingData(lonlat=lonlat, species=np.repeat(np.arange(n_species), n_per), codes=CODES[:n_species],
                        names=[f"Species number{i}" for i in range(n_species)])


def write_records(path, n_species: int = 4, n_per: int = 60, seed: int = 0):
    """The same records as a CSV the ``train`` command reads (codes in the ``code`` column)."""
    d = records(n_species, n_per, seed)
    rows = [f"{d.names[s]},{d.codes[s]},{lat:.5f},{lon:.5f}" for (lon, lat), s in zip(d.lonlat, d.species)]
    path.write_text("species,code,latitude,longitude\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def teachers(tmp_path):
    """Two teachers with different encodings: sin_cos (6 species) and sin_cos_multi (4)."""
    return (fixture_bundle(tmp_path / "a.sinr", "sin_cos").path,
            fixture_bundle(tmp_path / "b.sinr", "sin_cos_multi").path)


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


# ---- the loss ----------------------------------------------------------------------------------
def test_the_distillation_term_is_the_mean_binary_cross_entropy_with_the_teachers_probabilities():
    s = torch.tensor([[2.0, -1.0], [0.0, 3.0], [-4.0, 0.5]])
    t = torch.tensor([[0.9, 0.2], [0.5, 0.7], [0.0, 1.0]])
    # by hand: -(t log sigmoid(s) + (1 - t) log sigmoid(-s)), mean over the 3 x 2 terms
    sd, td = s.double().numpy(), t.double().numpy()
    hand = float(np.mean(-(td * _log_sigmoid(sd) + (1 - td) * _log_sigmoid(-sd))))
    # each term is softplus(s) - t s: 2.126928 - 1.8, 0.313262 + 0.2, log 2, 3.048587 - 2.1, 0.018150 - 0,
    # 0.974077 - 0.5; their mean:
    assert hand == pytest.approx((0.326928 + 0.513262 + 0.693147 + 0.948587 + 0.018150 + 0.474077) / 6, abs=1e-6)
    # float32 against float64: a few eps of the terms (each below 5)
    assert distillation_loss(s, t).item() == pytest.approx(hand, abs=64 * F32_EPS * 5)
    sinr = torch.tensor(0.25)
    assert distilled_loss(sinr, s, t, 0.3).item() == pytest.approx(0.7 * 0.25 + 0.3 * hand, abs=64 * F32_EPS * 5)
    assert distilled_loss(sinr, s, t, 0.0).item() == 0.25


def test_a_training_step_blends_the_sinr_loss_with_the_teachers_term_at_records_and_pseudo_negatives(teachers):
    data = records(4)
    beta = 0.3
    tr = Trainer(data, small_config(dropout=0.0, width=16, depth=1, distill_weight=beta),
                 teachers=Teachers.load(teachers, data.codes))
    idx = torch.arange(10)
    tr.neg_gen.manual_seed(5)
    state = tr.neg_gen.get_state()
    x_rand, where = tr.random_draw(10)  # the step draws the same pseudo-negatives again
    tr.neg_gen.set_state(state)
    with torch.no_grad():
        logits = tr.model(torch.cat([tr.features[idx], x_rand]))
        sinr = tr.loss_fn(logits[:10], logits[10:], tr.labels[idx], None, pos_weight=3.0).item()
    # the teachers by hand: each bundle's numpy predictor (float64 products), the mean of their
    # logits at the 10 records then the 10 pseudo-negatives, its sigmoid, the BCE in float64
    pts = np.r_[data.lonlat[:10], where.numpy()]
    bundles = [ModelBundle.load(p) for p in teachers]
    each = [point_logits(Predictor(b, "numpy"), pts, [b.find_species(c) for c in data.codes]) for b in bundles]
    target = 1 / (1 + np.exp(-np.mean(each, axis=0, dtype=np.float64)))
    s = logits.double().numpy()
    term = float(np.mean(-(target * _log_sigmoid(s) + (1 - target) * _log_sigmoid(-s))))
    got = tr.train_step(idx).item()
    # the teachers' logits agree across backends to logit_atol; the term moves by at most
    # 0.25 max|s| per unit of teacher logit (the sigmoid's slope times |d BCE / d t| = |s|); plus the
    # float32 rounding of the loss itself
    emb = [Predictor(b, "numpy").embed(pts) for b in bundles]
    t_tol = max(logit_atol(e, b.head) for e, b in zip(emb, bundles))
    tol = beta * 0.25 * np.abs(s).max() * t_tol + f32_atol(np.array([sinr, term]))
    assert got == pytest.approx((1 - beta) * sinr + beta * term, abs=tol)
    assert term > 0.6  # the term is there: a random student against random teachers is near log 2


@pytest.mark.parametrize("pseudo_negatives, loss", [("sphere", "an_full"), ("land", "an_full"), ("sphere", "an_slds")])
def test_a_zero_weight_trains_bit_identical_weights_to_a_run_without_teachers(teachers, pseudo_negatives, loss):
    # the teachers draw no random numbers: pseudo-negatives (sphere draws, pool rows), dropout masks,
    # the permutation and a loss's own draws (an_slds: no pseudo-negatives, the records alone) are
    # those of the run without them, and (1 - 0) x loss + 0 x term is the loss exactly
    data = records(4)
    cfg = small_config(width=16, depth=1, pseudo_negatives=pseudo_negatives, env_pool=5000, loss=loss)
    plain = Trainer(data, cfg).fit(progress=False)
    tr = Trainer(data, dataclasses.replace(cfg, distill_weight=0.0), teachers=Teachers.load(teachers, data.codes))
    taught = tr.fit(progress=False)
    assert tr.teacher_seconds > 0  # the teachers did run
    assert taught.epoch_losses == plain.epoch_losses
    for (name, a), b in zip(plain.model.state_dict().items(), taught.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_pure_distillation_moves_a_student_of_the_teachers_shape_toward_it(tmp_path, capsys):
    teacher = fixture_bundle(tmp_path / "t.sinr", "sin_cos")  # 6 species, width 16, one block
    data = records(6, n_per=100)
    teachers = Teachers.load([teacher.path], data.codes)
    rng = np.random.default_rng(1)
    pts = np.c_[rng.uniform(-180, 180, 2000), np.degrees(np.arcsin(rng.uniform(-1, 1, 2000)))]
    wanted = teachers.logits(pts).ravel()

    def correlation(tr: Trainer) -> float:
        with torch.no_grad():
            s = tr.model.eval()(tr.model.features(torch.as_tensor(pts, dtype=torch.float32)))
        return float(np.corrcoef(s.numpy().ravel(), wanted)[0, 1])

    # another seed than the fixture's: the student starts as another network of the same shape
    tr = Trainer(data, small_config(width=16, depth=1, dropout=0.0, seed=11, lr=1e-2, epochs=5, distill_weight=1.0),
                 teachers=teachers)
    before = correlation(tr)
    result = tr.fit(progress=False)
    after = correlation(tr)
    # measured: -0.03 before, 0.91 after 25 steps; the loss fell from 0.694 to 0.689 (its floor is
    # the teachers' own entropy, near log 2 for these random weights)
    assert abs(before) < 0.2 and after > 0.8
    assert result.epoch_losses[-1] < result.epoch_losses[0] - 1e-3
    err = capsys.readouterr().err
    assert err.count("distillation: the teachers' inference takes") == 1 and "of the step time" in err


# ---- matching teachers to the run ---------------------------------------------------------------
def test_teachers_are_matched_by_species_code_whatever_their_head_order(tmp_path):
    src = fixture_bundle(tmp_path / "a.sinr", "sin_cos")
    order = [4, 2, 0, 5, 3, 1]  # the shuffled bundle's head row k is the original's row order[k]
    shuffled = ModelBundle.load(src.path)
    shuffled.species = [dataclasses.replace(src.species[j], index=k) for k, j in enumerate(order)]
    shuffled.weights[network.HEAD] = src.head[order].copy()
    shuffled.write(tmp_path / "shuffled.sinr")
    codes = ["sp001", "sp003", "sp005"]  # a run with three of the teacher's six species
    pts = np.array([[-100.0, 40.0], [10.0, 50.0], [130.0, -25.0]])
    straight = Teachers.load([src.path], codes)
    assert straight.heads[0].tolist() == [1, 3, 5]
    assert Teachers.load([tmp_path / "shuffled.sinr"], codes).heads[0].tolist() == [5, 4, 3]
    direct = Predictor(src).predict_points(pts, [1, 3, 5])
    tol = logit_atol(Predictor(src).embed(pts), src.head)
    np.testing.assert_allclose(torch.sigmoid(torch.from_numpy(straight.logits(pts))).numpy(), direct, atol=tol)
    np.testing.assert_allclose(Teachers.load([tmp_path / "shuffled.sinr"], codes).logits(pts), straight.logits(pts),
                               atol=tol)


def test_a_teacher_without_a_trained_species_is_refused_naming_it(teachers):
    with pytest.raises(TrainerError, match=r"teacher b \(b.sinr\) has no species sp004, sp005 of the 6 trained: a "
                                           r"teacher must know every trained species \(matched by code\)"):
        Teachers.load(teachers, CODES)


@pytest.mark.parametrize("run_covariates, categorical, message", [
    ([], [], r"needs the covariates elev, temp; this run reads no covariates\. Train with --covariates"),
    (["temp", "rain"], [False, False], r"needs the covariates elev; this run reads temp, rain"),
    (["temp", "elev"], [False, True], r"read elev differently \(one as classes, the other as a continuous value\)"),
])
def test_a_teacher_needing_covariates_the_run_lacks_is_refused(tmp_path, run_covariates, categorical, message):
    env = fixture_bundle(tmp_path / "env.sinr", "sin_cos_env")  # reads elev, temp
    with pytest.raises(TrainerError, match=message):
        Teachers.load([env.path], CODES[:4], run_covariates, categorical)
    # a run reading them in another order, among others, gives the teacher its own columns
    t = Teachers.load([env.path], CODES[:4], ["rain", "temp", "elev"], [False] * 3)
    assert t.env_columns[0].tolist() == [2, 1]
    # a location without a value is refused, never a NaN target
    with pytest.raises(TrainerError, match="gave no value at some training locations"):
        t.logits(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[5.0, 10.0, 300.0], [5.0, np.nan, 300.0]]))


def test_an_official_environmental_teacher_and_a_file_that_is_no_bundle_are_refused(tmp_path):
    env = fixture_bundle(tmp_path / "env.sinr", "sin_cos_env")
    env.meta["encoding"]["covariate_sampling"] = {"method": "sinr_official", "grid": [2160, 4320]}
    env.write(tmp_path / "official.sinr")
    with pytest.raises(TrainerError, match="imported from an official SINR environmental checkpoint"):
        Teachers.load([tmp_path / "official.sinr"], CODES[:4], ["elev", "temp"], [False, False])
    (tmp_path / "junk.sinr").write_bytes(b"junk")
    with pytest.raises(TrainerError, match=r"^--distill-from: junk.sinr is not a SINR model bundle"):
        Teachers.load([tmp_path / "junk.sinr"], CODES[:4])
    with pytest.raises(TrainerError, match="names no teacher"):
        Teachers.load([], CODES[:4])


def test_the_trainer_refuses_settings_that_name_other_teachers(teachers):
    data = records(4)
    loaded = Teachers.load(teachers, data.codes)
    with pytest.raises(TrainerError, match="not given"):
        Trainer(data, small_config(distill_from=loaded.record, distill_weight=0.5))
    with pytest.raises(TrainerError, match=r"not those the settings name \(a.sinr\)"):
        Trainer(data, small_config(distill_from=loaded.record[:1], distill_weight=0.5), teachers=loaded)
    with pytest.raises(TrainerError, match=r"within \[0, 1\]"):
        Trainer(data, small_config(distill_weight=1.5), teachers=loaded)


def test_pseudo_negatives_from_a_pool_reach_the_teachers_with_their_covariates():
    data = records(2, n_per=3)
    data.env = np.arange(12, dtype=np.float32).reshape(6, 2)
    pool = PseudoNegativePool(lonlat=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
                              env=np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]]))
    lonlat, env = batch_locations(data, torch.tensor([4, 1]), pool, torch.tensor([2, 0, 2]))
    np.testing.assert_array_equal(lonlat, np.r_[data.lonlat[[4, 1]], [[5, 6], [1, 2], [5, 6]]])
    np.testing.assert_array_equal(env, [[8, 9], [2, 3], [50, 60], [10, 20], [50, 60]])
    # sphere draws carry their own coordinates; records only (losses without pseudo-negatives)
    drawn = torch.tensor([[-10.0, 5.0]])
    assert batch_locations(data, torch.tensor([0]), None, drawn)[0].tolist() == [data.lonlat[0].tolist(), [-10, 5]]
    assert batch_locations(data, torch.tensor([0]), None, None)[0].shape == (1, 2)


# ---- the train command ----------------------------------------------------------------------------
def test_train_records_its_teachers_in_the_bundle_and_its_card(tmp_path, capsys, teachers):
    data = write_records(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    code, stdout, err = run_main(capsys, "train", "--data", data, "--out", out, *FAST, "--jsonl",
                                 "--distill-from", f"{teachers[0]},{teachers[1]}", "--distill-weight", "0.7")
    assert code == 0, err
    bundle = ModelBundle.load(out)
    t = bundle.meta["training"]
    sums = [ModelBundle.load(p).sha256 for p in teachers]
    assert t["distill_from"] == [{"file": "a.sinr", "sha256": sums[0]}, {"file": "b.sinr", "sha256": sums[1]}]
    assert t["distill_weight"] == 0.7
    assert f"Distilled from: a.sinr (SHA-256 {sums[0][:12]}), b.sinr (SHA-256 {sums[1][:12]}), weight 0.7" \
        in bundle.card()
    notes = [e["message"] for e in map(json.loads, stdout.splitlines()) if e["event"] == "note"]
    assert sum(n.startswith("distillation: the teachers' inference takes") for n in notes) == 1
    # without teachers: no distillation recorded, and no card line
    code, _, err = run_main(capsys, "train", "--data", data, "--out", tmp_path / "plain.sinr", *FAST)
    plain = ModelBundle.load(tmp_path / "plain.sinr")
    assert plain.meta["training"]["distill_from"] is None and plain.meta["training"]["distill_weight"] == 0.0
    assert "Distilled" not in plain.card()


@pytest.mark.parametrize("args, message", [
    (["--distill-from", "{tmp}/none.sinr"], "--distill-from: teacher model {tmp}/none.sinr does not exist"),
    (["--distill-from", "{a}", "--distill-weight", "1.5"], "--distill-weight must be within [0, 1]"),
    (["--distill-weight", "0.5"], "--distill-weight and --distill-from need teacher models"),
    (["--distill-from", ","], "--distill-weight and --distill-from need teacher models"),
    (["--distill-from", "{a}", "--out", "{a}"], "would replace the teacher model"),
    (["--distill-from", "{a},{b}", "--data", "{tmp}/six.csv"],
     "teacher b (b.sinr) has no species sp004, sp005 of the 6 trained"),
    (["--distill-from", "{env}"], "teacher env (env.sinr) needs the covariates elev, temp; this run reads no "
                                  "covariates"),
])
def test_train_refuses_teachers_that_do_not_fit_with_one_line(tmp_path, capsys, teachers, args, message):
    write_records(tmp_path / "six.csv", n_species=6)
    fixture_bundle(tmp_path / "env.sinr", "sin_cos_env")
    fill = {"{tmp}": str(tmp_path), "{a}": str(teachers[0]), "{b}": str(teachers[1]),
            "{env}": str(tmp_path / "env.sinr")}

    def filled(text: str) -> str:
        for k, v in fill.items():
            text = text.replace(k, v)
        return text

    args = [filled(a) for a in args]
    base = ["--data", str(write_records(tmp_path / "obs.csv")), "--out", str(tmp_path / "m.sinr")]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, err = run_main(capsys, "train", *base, *args, *FAST, "--jsonl")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: ") and filled(message) in err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert json.loads(stdout.strip().splitlines()[-1])["event"] == "error"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, the teachers untouched


def write_covariates(path):
    """A 1-degree global raster of two smooth bands named elev and temp (the env fixture's covariates)."""
    from osgeo import gdal

    ds = gdal.GetDriverByName("GTiff").Create(str(path), 360, 180, 2, gdal.GDT_Float32)
    ds.SetGeoTransform((-180, 1, 0, 90, 0, -1))
    ds.SetProjection('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
                     'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]')
    rows, cols = np.mgrid[0:180, 0:360].astype(np.float32)
    for i, (name, values) in enumerate([("elev", cols * 3), ("temp", 30 - rows / 4)], start=1):
        ds.GetRasterBand(i).SetDescription(name)
        ds.GetRasterBand(i).WriteArray(values)
    ds = None
    return path


def test_a_covariate_student_distils_covariate_and_coordinate_teachers_at_its_pool(tmp_path, capsys, teachers):
    env = fixture_bundle(tmp_path / "env.sinr", "sin_cos_env")  # reads elev, temp
    out = tmp_path / "m.sinr"
    code, _, err = run_main(capsys, "train", "--data", write_records(tmp_path / "obs.csv"), "--out", out, *FAST,
                            "--encoding", "sin_cos_env", "--covariates", write_covariates(tmp_path / "cov.tif"),
                            "--distill-from", f"{env.path},{teachers[0]}", "--distill-weight", "1")
    assert code == 0, err
    t = ModelBundle.load(out).meta["training"]
    assert [r["file"] for r in t["distill_from"]] == ["env.sinr", "a.sinr"] and t["distill_weight"] == 1.0
    assert "distillation: the teachers' inference takes" in err


# ---- resume -------------------------------------------------------------------------------------
def test_a_distilled_run_resumes_exactly(tmp_path, teachers):
    data = records(4)
    cfg = small_config(width=16, depth=1, distill_weight=0.5)
    straight = Trainer(data, cfg, teachers=Teachers.load(teachers, data.codes)).fit(progress=False)
    ck = tmp_path / "ck.pt"
    Trainer(data, dataclasses.replace(cfg, epochs=1), teachers=Teachers.load(teachers, data.codes)).fit(
        checkpoint=ck, progress=False)
    tr = Trainer(data, cfg, teachers=Teachers.load(teachers, data.codes))
    tr.load_checkpoint(ck)
    resumed = tr.fit(progress=False)
    # the same steps on the same teachers' targets: as test_trainer's resume, up to float order
    assert resumed.epoch_losses == pytest.approx(straight.epoch_losses)
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    # a checkpoint trained without teachers does not continue with them, nor the reverse
    Trainer(data, dataclasses.replace(cfg, epochs=1, distill_weight=0.0)).fit(checkpoint=ck, progress=False)
    with pytest.raises(TrainerError, match=r"was trained with the teachers none, not a\.sinr, b\.sinr"):
        Trainer(data, cfg, teachers=Teachers.load(teachers, data.codes)).load_checkpoint(ck)


def test_resume_reads_the_teachers_again_and_refuses_one_that_changed(tmp_path, capsys, teachers):
    data = write_records(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    opts = ["--data", data, "--out", out, *FAST, "--keep-checkpoint", "--distill-from", f"{teachers[0]},{teachers[1]}"]
    assert run_main(capsys, "train", *opts)[0] == 0
    code, _, err = run_main(capsys, "train", *opts[:-1], str(teachers[0]), "--epochs", "2", "--resume")
    assert code == 2 and "was trained with the teachers a.sinr, b.sinr, not a.sinr; give the same --distill-from" in err
    old = ModelBundle.load(teachers[1]).sha256
    fixture_bundle(teachers[1], "sin_cos_multi", n_species=4, seed=9)  # another b.sinr under the same name
    new = ModelBundle.load(teachers[1]).sha256
    code, _, err = run_main(capsys, "train", *opts, "--epochs", "2", "--resume")
    assert code == 2, err
    assert (f"The teacher b.sinr (SHA-256 {old[:12]}... then, {new[:12]}... now) changed since checkpoint "
            f"{checkpoint_path(out).name} was written; restore the file it was trained with") in err
    assert ModelBundle.load(out).meta["training"]["epochs"] == 1  # the first run's bundle stays


# ---- several processes --------------------------------------------------------------------------
@pytest.mark.slow
def test_two_processes_distil_like_one_process(tmp_path, teachers):
    # each process computes the teachers for its own rows (records and land pseudo-negatives drawn
    # from the pool every process shares): the runs differ by float order alone
    data = write_records(tmp_path / "obs.csv", n_per=100)
    opts = ["--data", str(data), *FAST[2:], "--epochs", "2", "--batch-size", "100", "--pseudo-negatives", "land",
            "--distill-from", f"{teachers[0]},{teachers[1]}", "--no-progress"]
    assert main(["train", *opts, "--out", str(tmp_path / "one.sinr")]) == 0
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2", "-m", "training",
           "train", *opts, "--out", str(tmp_path / "two.sinr")]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    one, two = ModelBundle.load(tmp_path / "one.sinr"), ModelBundle.load(tmp_path / "two.sinr")
    assert one.meta["training"]["distill_from"] == two.meta["training"]["distill_from"]
    # as tests/training/test_distributed.py: the float32 order of the gradient sums moved the
    # weights by ~1e-6 of their size over 15 steps; 1e-4 leaves a wide margin and is far below
    # what a wrong target row would change
    rtol = 1e-4
    np.testing.assert_allclose(one.meta["training"]["epoch_losses"], two.meta["training"]["epoch_losses"], rtol=rtol)
    for name in one.weights:
        w = np.asarray(one.weights[name], np.float64)
        np.testing.assert_allclose(two.weights[name], w, rtol=0, atol=rtol * np.abs(w).max(), err_msg=name)
    assert proc.stderr.count("distillation: the teachers' inference takes") == 1  # rank 0 alone reports
