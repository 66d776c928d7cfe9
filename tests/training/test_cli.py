"""``python -m training``: user errors exit 2 with one line, training writes a full bundle, resume."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from sinr_qgis.core.bundle import ModelBundle, file_sha256
from sinr_qgis.core.training.defaults import EXIT_USER_ERROR, PAPER_RECIPE
from sinr_qgis.core.training.options import checkpoint_path
from tests.helpers.cli_helpers import FAST, ROOT, run_main, write_csv
from tests.tolerances import logit_atol, prob_atol
from training.cli import build_parser, main


def test_train_writes_a_complete_bundle(tmp_path, capsys):
    data = write_csv(tmp_path / "obs.csv.gz")
    out = tmp_path / "m.sinr"
    code, stdout, err = run_main(capsys, "train", "--data", data, "--out", out, "--jsonl", "--cap", "100",
                                 "--pos-weight", "3", *FAST)
    assert code == 0, err
    events = [json.loads(line) for line in stdout.splitlines()]
    # the memory budget's line comes first (a "note" for the plugin's log), then the training's events
    assert events[0]["event"] == "note" and events[0]["message"].startswith("memory: about ")
    assert events[1]["event"] == "start" and events[-1]["event"] == "done"
    assert events[-1]["out"] == str(out) and events[-1]["n_species"] == 3
    b = ModelBundle.load(out)
    assert [s.code for s in b.species] == ["aaa", "bbb", "ccc"]
    assert [s.name for s in b.species] == ["Alpha a", "Beta b", "Gamma c"]
    assert [s.n_train for s in b.species] == [100, 100, 100]
    assert all(s.threshold is not None and 0 < s.threshold < 1 for s in b.species)
    d = b.meta["data"]
    assert d["file"] == "obs.csv.gz" and d["sha256"] == file_sha256(data)
    assert d["n_read"] == 452 and d["n_used"] == 300 and sum(d["dropped"].values()) == 2
    t = b.meta["training"]
    assert t["loss"] == "an_full" and t["pos_weight"] == 3 and t["cap"] == 100 and t["seed"] == 0
    assert len(t["epoch_losses"]) == 1 and b.meta["licence"] and b.meta["citation"]
    assert not checkpoint_path(out).exists()  # removed after a successful export


def test_threshold_is_lpt_r_of_own_training_records(tmp_path, capsys):
    from sinr_qgis.core import network
    from sinr_qgis.core.occurrences import read_occurrences
    from training.data import prepare_training_data

    data = write_csv(tmp_path / "obs.csv", extra_bad=False)
    out = tmp_path / "m.sinr"
    assert run_main(capsys, "train", "--data", data, "--out", out, "--cap", "50", "--pos-weight", "3", *FAST)[0] == 0
    b = ModelBundle.load(out)
    td = prepare_training_data(read_occurrences(data), cap=50, seed=0)
    emb = network.embed(b.weights, "sin_cos", td.lonlat)
    logit = (emb * b.head[td.species]).sum(1)
    p = 1 / (1 + np.exp(-logit.astype(np.float64)))
    # the CLI computes the probabilities with torch in fp32 after training (whatever --precision
    # trained the weights), here numpy: float32 rounding, which a percentile passes on unchanged
    # (it moves by at most the largest move of its inputs); species.csv keeps 6 digits (5e-7)
    tol = prob_atol(logit_atol(emb, b.head)) + 5e-7
    for j, s in enumerate(b.species):
        assert s.threshold == pytest.approx(np.percentile(p[td.species == j], 5), abs=tol)


@pytest.mark.parametrize("args, message", [
    (["--data", "{tmp}/missing.csv"], "does not exist"),
    (["--species-column", "nope"], "nope"),
    (["--encoding", "env"], "needs --covariates"),
    (["--covariates", "{tmp}/x.tif"], "needs --encoding env"),
    (["--out", "{tmp}/no/such/dir/m.sinr"], "does not exist"),
    (["--resume"], "No checkpoint"),
    (["--thin-deg", "-1"], "thin-deg"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    data = write_csv(tmp_path / "obs.csv")
    base = {"--data": str(data), "--out": str(tmp_path / "m.sinr")}
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    for i in range(0, len(args) - 1):
        if args[i] in base:
            base[args[i]] = args[i + 1]
    rest = [a for i, a in enumerate(args) if a not in base and (i == 0 or args[i - 1] not in base)]
    code, stdout, err = run_main(capsys, "train", *[x for kv in base.items() for x in kv], *rest, *FAST, "--jsonl")
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in err
    assert json.loads(stdout.strip().splitlines()[-1])["event"] == "error"
    assert not (tmp_path / "m.sinr").exists()


def test_module_entry_point_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "training", "train", "--data", str(tmp_path / "none.csv"),
                           "--out", str(tmp_path / "m.sinr")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: data file {tmp_path / 'none.csv'} does not exist."]


def test_resume_continues_from_the_saved_epoch(tmp_path, capsys):
    data = write_csv(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    opts = ["--data", data, "--out", out, "--batch-size", "256", "--width", "16", "--depth", "1",
            "--threads", "2", "--no-progress", "--pos-weight", "3", "--jsonl", "--keep-checkpoint"]
    assert run_main(capsys, "train", *opts, "--epochs", "1")[0] == 0
    first = ModelBundle.load(out).meta["training"]["epoch_losses"]
    assert checkpoint_path(out).is_file()
    code, stdout, err = run_main(capsys, "train", *opts, "--epochs", "2", "--resume")
    assert code == 0, err
    events = [json.loads(line) for line in stdout.splitlines()]
    assert next(e for e in events if e["event"] == "start")["start_epoch"] == 2
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [2]
    losses = ModelBundle.load(out).meta["training"]["epoch_losses"]
    assert len(losses) == 2 and losses[0] == pytest.approx(first[0])
    # a different setting refuses to resume
    code, _, err = run_main(capsys, "train", *opts, "--epochs", "3", "--resume", "--lr", "0.01")
    assert code == 2 and "other settings" in err


def test_interrupted_export_leaves_no_partial_bundle(tmp_path, capsys, monkeypatch):
    data = write_csv(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail)
    with pytest.raises(OSError):
        main(["train", "--data", str(data), "--out", str(out), *FAST])
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.sinr")]


def test_pos_weight_species_is_the_number_of_species_trained(tmp_path, capsys):
    """``--pos-weight species``: lambda = C, the bundled model's recipe (the plugin's default)."""
    data = write_csv(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    code, _, err = run_main(capsys, "train", "--data", data, "--out", out, "--pos-weight", "species",
                            "--min-records", "1", *FAST)
    assert code == 0, err
    assert ModelBundle.load(out).meta["training"]["pos_weight"] == 3.0  # three species in the file
    with pytest.raises(SystemExit) as exit_info:  # argparse: a usage error, exit status 2
        main(["train", "--data", str(data), "--out", str(out), "--pos-weight", "many"])
    assert exit_info.value.code == 2
    assert "expected a positive number, 'species' or 'row', got 'many'" in capsys.readouterr().err


def test_pos_weight_row_trains_and_is_recorded(tmp_path, capsys):
    """``--pos-weight row``: each record's own lambda (losses.row_pos_weight), stored as "row"."""
    data = write_csv(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    code, _, err = run_main(capsys, "train", "--data", data, "--out", out, "--pos-weight", "row",
                            "--min-records", "1", *FAST)
    assert code == 0, err
    assert ModelBundle.load(out).meta["training"]["pos_weight"] == "row"


def test_the_cli_and_the_trainer_default_to_the_papers_recipe_in_core(tmp_path):
    """One recipe (``core.training.defaults.PAPER_RECIPE``) behind ``train``'s options and ``TrainConfig``."""
    from training.trainer import TrainConfig

    args = vars(build_parser().parse_args(["train", "--data", "d.csv", "--out", "m.sinr"]))
    config = TrainConfig().to_dict()
    assert {k: args[k] for k in PAPER_RECIPE if k in args} == {k: v for k, v in PAPER_RECIPE.items() if k != "lr_decay"}
    assert {k: config[k] for k in PAPER_RECIPE} == PAPER_RECIPE
    assert PAPER_RECIPE == {  # the paper's numbers (Cole et al. 2023, supplementary)
        "loss": "an_full", "cap": 1000, "epochs": 10, "batch_size": 2048, "lr": 5e-4, "lr_decay": 0.98, "width": 256,
        "depth": 4, "dropout": 0.5, "seed": 0, "pos_weight": 2048.0, "min_records": 1, "encoding": "sin_cos",
        "negatives": "all", "pseudo_negatives": "sphere"}
    missing = ["train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m.sinr")]
    assert main(missing) == EXIT_USER_ERROR
