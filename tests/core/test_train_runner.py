"""The training supervisor against a fake CLI: events, progress, cancel, crash, locks, partials."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sinr_qgis.core.encoding import DEFAULT_SH_DEGREE
from sinr_qgis.core.errors import (
    CancelledError,
    OccurrenceError,
    OutputBusyError,
    OutputError,
    TrainingCrashError,
    TrainingEnvironmentError,
    TrainingError,
    TrainingInputError,
)
from sinr_qgis.core.training import interpreter, lock, process
from sinr_qgis.core.training.defaults import DEFAULTS, LOSS_HELP, LOSSES
from sinr_qgis.core.training.events import event_progress
from sinr_qgis.core.training.interpreter import (
    candidate_pythons,
    check_python,
    check_training_available,
    default_python,
    describe_python,
)
from sinr_qgis.core.training.lock import LOCK_TOKENS_ENV, lock_path, output_busy_message, output_lock
from sinr_qgis.core.training.options import LOCAL_EVIDENCE_COVARIATES, TrainOptions, checkpoint_path
from sinr_qgis.core.training.process import TrainingCli, child_environment, cli_arguments, training_root
from sinr_qgis.core.training.run import run_training
from sinr_qgis.core.training.summary import training_summary

FAKE = str(Path(__file__).with_name("fake_train_cli.py"))


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (read from /proc, no psutil)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.is_file():
        try:
            return stat.read_text().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False
    return True


@pytest.fixture
def opts(tmp_path: Path) -> TrainOptions:
    data = tmp_path / "obs.csv"
    data.write_text("species,latitude,longitude\na,1,2\n")
    return TrainOptions(data=str(data), out=str(tmp_path / "model.sinr"), epochs=2)


def _run(opts, mode="ok", delay=0.0, extra=(), **kw):
    fake = TrainingCli(script=(FAKE, "--mode", mode, "--delay", str(delay), *extra), folder=Path(FAKE).parent)
    return run_training(opts, sys.executable, cli=fake, **kw)


def test_command_carries_every_option(tmp_path):
    o = TrainOptions(data="d.csv", out="m.sinr", loss="me_ssdl", cap=50, epochs=3, batch_size=64, width=32,
                        depth=1, seed=7, min_records=5, encoding="sin_cos_env", covariates=["c.tif", "d.tif"],
                        categorical=["biome", "soil"], species_column="sp", lat_column="y", lon_column="x",
                        source_column="src",
                        name="My model", resume=True, threads=1, pos_weight="species", pseudo_negatives="sphere")
    cmd = TrainingCli().command("/usr/bin/python3", o)
    assert cmd[:5] == ["/usr/bin/python3", "-u", "-m", "training", "train"]
    i = cmd.index("--covariates")
    assert cmd[i:i + 3] == ["--covariates", "c.tif", "d.tif"]
    del cmd[i:i + 3]
    i = cmd.index("--categorical")
    assert cmd[i:i + 3] == ["--categorical", "biome", "soil"]
    del cmd[i:i + 3]
    assert cmd[-5:] == ["--jsonl", "--jsonl-every", "1", "--no-progress", "--resume"]
    pairs = dict(zip(cmd[5:-5:2], cmd[6:-5:2]))
    assert pairs == {"--data": "d.csv", "--out": "m.sinr", "--loss": "me_ssdl", "--cap": "50", "--epochs": "3",
                     "--batch-size": "64", "--width": "32", "--depth": "1", "--seed": "7", "--min-records": "5",
                     "--encoding": "sin_cos_env", "--species-column": "sp",
                     "--lat-column": "y", "--lon-column": "x", "--source-column": "src", "--name": "My model",
                     "--threads": "1", "--pos-weight": "species", "--pseudo-negatives": "sphere"}
    # ME-SSDL has no negatives at observed places: no source-aware negatives, which the CLI would refuse
    assert "--negatives" not in cmd
    plain = TrainingCli().command("py", TrainOptions(data="d", out="o"))
    assert plain[-1] == "--no-progress" and "--cap" not in plain and "--resume" not in plain
    # without a source column the paper's negatives stay (every other species, sphere randoms)
    assert "--negatives" not in plain and "--pseudo-negatives" not in plain and "--pos-weight" not in plain
    sourced = TrainingCli().command("py", TrainOptions(data="d", out="o", source_column="src"))
    pairs = dict(zip(sourced[5::2], sourced[6::2]))
    assert pairs["--negatives"] == "source_site" and pairs["--pseudo-negatives"] == "land"
    assert "--local-evidence" not in plain  # off unless asked for, as in the CLI
    assert TrainingCli().command("py", TrainOptions(data="d", out="o", local_evidence=True))[-1] == "--local-evidence"


@pytest.mark.parametrize("encoding, covariates", [("sin_cos_env", ["bio.tif"]), ("env", ["bio.tif"]),
                                                  (None, ["bio.tif"]), ("env", None)])
def test_local_evidence_for_a_covariate_model_is_refused_before_a_process_starts(tmp_path, encoding, covariates):
    data = tmp_path / "obs.csv"
    data.write_text("species,latitude,longitude\na,1,2\n")
    (tmp_path / "bio.tif").write_bytes(b"")
    opts = TrainOptions(data=str(data), out=str(tmp_path / "m.sinr"), encoding=encoding, local_evidence=True,
                        covariates=[str(tmp_path / c) for c in covariates] if covariates else None)
    with pytest.raises(TrainingInputError) as err:
        opts.check()
    # "env" without rasters is refused first for the missing rasters
    assert str(err.value) == (LOCAL_EVIDENCE_COVARIATES if covariates else
                              "Encoding 'env' needs covariate rasters. Add them or choose the coordinates-only "
                              "encoding 'sin_cos'.")
    assert LOCAL_EVIDENCE_COVARIATES == (
        "Local evidence is for models that read coordinates only, and this one reads covariate rasters. Untick "
        "'Add local evidence' (ADD_LOCAL_EVIDENCE false), or train on coordinates only.")
    opts.covariates, opts.encoding = None, "spherical_harmonics"
    opts.check()  # a coordinates model may have it


def test_all_six_losses_accepted_and_bad_options_refused(opts):
    for loss in LOSSES:
        opts.loss = loss
        opts.check()
    assert len(LOSSES) == 6
    opts.loss = "hinge"
    with pytest.raises(TrainingInputError, match="an_full"):
        opts.check()
    opts.loss = "an_full"
    opts.epochs = 0
    with pytest.raises(TrainingInputError, match="Epochs must be a whole number >= 1"):
        opts.check()
    opts.epochs = 2
    opts.encoding = "env"
    with pytest.raises(TrainingInputError, match="needs covariate rasters"):
        opts.check()
    opts.encoding, opts.categorical = "sin_cos", ["biome"]
    with pytest.raises(TrainingInputError, match=r"^Categorical covariates \(biome\) are bands of covariate "
                                                    r"rasters: add the rasters, or leave the categorical"):
        opts.check()


def test_unwritable_output_refused_before_start(opts, tmp_path, read_only_folder):
    opts.out = str(tmp_path / "no_such_folder" / "m.sinr")
    with pytest.raises(OutputError, match="does not exist"):
        _run(opts)
    opts.out = str(read_only_folder / "m.sinr")
    with pytest.raises(OutputError, match="not writable"):
        _run(opts)
    assert list(read_only_folder.iterdir()) == []  # refused before start: no lock, no checkpoint


def test_progress_events_and_summary(opts):
    events, progress = [], []
    result = _run(opts, on_event=events.append, on_progress=progress.append)
    assert result.path == Path(opts.out) and result.path.is_file()
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 8 and steps[-1]["step"] == 8
    assert sorted(set(progress)) == pytest.approx([12.5 * i for i in range(1, 9)])
    assert progress == sorted(progress)
    s = result.summary()
    assert s == ("Trained model.sinr: 4 species, 120 records used of 130 read, 2 epochs, final loss 0.2500, "
                 "time 2s; dropped 3 unusable rows (2 missing, 1 null island), 5 of species below the minimum "
                 "records.")
    assert not checkpoint_path(opts.out).exists()
    assert not lock_path(opts.out).exists()


def test_event_progress_reads_fraction_or_steps():
    assert event_progress({"progress": 0.5}) == 50.0
    assert event_progress({"step": 3, "steps_total": 12}) == 25.0
    assert event_progress({"event": "start"}) is None


def test_user_error_gives_the_cli_message(opts):
    with pytest.raises(TrainingInputError, match="at least 20 are needed"):
        _run(opts, mode="user_error")
    with pytest.raises(TrainingInputError, match="one value only"):
        _run(opts, mode="error_event")
    assert not Path(opts.out).exists()


def test_crash_reports_stderr_tail(opts):
    with pytest.raises(TrainingCrashError) as err:
        _run(opts, mode="crash")
    msg = str(err.value)
    assert "exited with status 1" in msg and "CUDA out of memory (fake)" in msg and "Traceback" in msg
    assert not Path(opts.out).exists()
    with pytest.raises(TrainingCrashError, match="without reporting a finished model"):
        _run(opts, mode="silent_ok")


def test_missing_torch_in_the_child_says_how_to_install(opts):
    with pytest.raises(TrainingEnvironmentError, match=r"cannot import 'torch'.*-m pip install torch"):
        _run(opts, mode="no_torch")


def test_bad_data_is_refused_before_the_child_starts(opts):
    Path(opts.data).write_text("species,latitude,longitude\n" + "a,45,5\n" * 30)
    with pytest.raises(OccurrenceError, match=r"Plants.*one value only"):
        _run(opts, check_input=True, input_label="Plants")
    log: list[str] = []
    Path(opts.data).write_text("species,latitude,longitude\n" + "".join(f"s{i % 3},{40 + i % 7},{i % 11}\n"
                                                                         for i in range(30)))
    assert _run(opts, check_input=True, on_log=log.append).path.is_file()
    assert log == ["obs.csv: 30 records of 3 species will be used (30 rows read)."]


def test_cancel_stops_child_and_grandchild(opts, tmp_path):
    pid_file = tmp_path / "pids"
    cancel = threading.Event()
    seen = []

    def on_event(e):
        if e["event"] == "step":
            seen.append(e["step"])
            if e["step"] == 2:
                cancel.set()

    with pytest.raises(CancelledError):
        _run(opts, mode="grandchild", delay=0.3, extra=["--pid-file", str(pid_file)],
             on_event=on_event, is_cancelled=cancel.is_set)
    child, grandchild = (int(p) for p in pid_file.read_text().split())
    deadline = time.monotonic() + 5
    while (_alive(child) or _alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child) and not _alive(grandchild)
    assert max(seen) < 8
    assert not Path(opts.out).exists()
    assert not lock_path(opts.out).exists()


def test_cancel_kills_a_child_that_ignores_sigterm_and_removes_partials(opts, tmp_path, monkeypatch):
    monkeypatch.setattr(process, "TERM_GRACE_S", 0.5)
    pid_file = tmp_path / "pid"
    started = threading.Event()

    def on_event(e):
        started.set()

    with pytest.raises(CancelledError):
        _run(opts, mode="stubborn", delay=0.5, extra=["--pid-file", str(pid_file)], on_event=on_event,
             is_cancelled=started.is_set)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    assert list(tmp_path.glob(".model.sinr.*")) == []
    assert not Path(opts.out).exists()


def test_second_training_to_same_output_is_refused(opts):
    release = threading.Event()
    errors: list[Exception] = []

    def first():
        try:
            _run(opts, delay=0.1, is_cancelled=release.is_set)
        except CancelledError:
            pass
        except Exception as exc:  # surfaced below
            errors.append(exc)

    t = threading.Thread(target=first)
    t.start()
    deadline = time.monotonic() + 10
    while not lock_path(opts.out).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert output_busy_message(opts.out)
        with pytest.raises(OutputBusyError, match=r"already writing model\.sinr"):
            _run(opts)
    finally:
        release.set()
        t.join(20)
    assert not errors
    assert output_busy_message(opts.out) is None


def test_stale_lock_of_a_dead_process_is_taken_over(opts):
    lock_path(opts.out).write_text('{"pid": 999999999, "started": "yesterday"}')
    assert output_busy_message(opts.out) is None
    assert _run(opts).path.is_file()


def test_resume_continues_from_checkpoint(opts):
    cancel = threading.Event()

    def on_event(e):
        if e["event"] == "epoch" and e["epoch"] == 1:  # the first epoch's checkpoint is written
            cancel.set()

    with pytest.raises(CancelledError):
        _run(opts, delay=0.2, on_event=on_event, is_cancelled=cancel.is_set)
    assert checkpoint_path(opts.out).is_file() and not Path(opts.out).exists()
    opts.resume = True
    events: list[dict] = []
    result = _run(opts, on_event=events.append)
    assert result.start["start_epoch"] == 2
    assert [e["step"] for e in events if e["event"] == "step"] == [5, 6, 7, 8]
    with pytest.raises(TrainingInputError, match="No checkpoint to resume"):
        _run(opts)


def test_a_source_column_chooses_source_aware_negatives_as_visible_options(tmp_path):
    """The policy is in the options, not in the argv: what ``cli_arguments`` writes is what they hold."""
    sourced = TrainOptions(data="d", out="o", source_column="src")
    assert (sourced.negatives, sourced.pseudo_negatives) == ("source_site", "land")
    # AN-SSDL has no negatives at observed places: no source-aware negatives, land randoms still
    ssdl = TrainOptions(data="d", out="o", loss="an_ssdl", source_column="src")
    assert (ssdl.negatives, ssdl.pseudo_negatives) == (None, "land")
    plain = TrainOptions(data="d", out="o")
    assert (plain.negatives, plain.pseudo_negatives) == (None, None)  # the CLI's paper defaults
    # what the user chose is kept, and passed on as it is
    chosen = TrainOptions(data="d", out="o", source_column="src", negatives="all", pseudo_negatives="sphere")
    args = cli_arguments(chosen)
    assert args[args.index("--negatives") + 1] == "all" and args[args.index("--pseudo-negatives") + 1] == "sphere"
    data = tmp_path / "obs.csv"
    data.write_text("species,latitude,longitude\na,1,2\n")
    bad = TrainOptions(data=str(data), out=str(tmp_path / "m.sinr"), loss="me_ssdl", negatives="source")
    with pytest.raises(TrainingInputError) as err:
        bad.check()
    assert str(err.value) == ("Negatives 'source' need a loss with negatives at observed places "
                              "(an_full, an_slds, me_full, gp); me_ssdl has none.")
    bad.loss, bad.negatives = "an_full", "everything"
    with pytest.raises(TrainingInputError, match=r"^Unknown negatives 'everything'. Choose one of all, source, "):
        bad.check()


def test_defaults_are_the_bundled_models_recipe():
    """The dialog's and the algorithm's defaults train as the bundled model was trained. (That the
    training CLI understands each of them: tests/training/test_train_runner.py.)"""
    from sinr_qgis.core.bundle import ModelBundle
    from sinr_qgis.core.resources import BUNDLED_MODEL

    bundle = ModelBundle.load(BUNDLED_MODEL)
    recipe = bundle.meta["training"]
    assert recipe["pos_weight"] == bundle.n_species == 169  # lambda = the number of species
    expected = {k: recipe[k] for k in ("loss", "cap", "epochs", "width", "depth", "seed", "min_records",
                                       "batch_size", "pseudo_negatives", "encoding")} | {
        "pos_weight": "species", "local_evidence": bundle.local_evidence is not None}
    assert DEFAULTS == expected == {"loss": "an_full", "cap": 0, "epochs": 20, "width": 256, "depth": 4,
                                       "seed": 0, "min_records": 1, "batch_size": 2048, "pos_weight": "species",
                                       "pseudo_negatives": "land", "encoding": "spherical_harmonics",
                                       "local_evidence": True}
    # the degree the CLI takes when none is given (its local evidence's weights: tests/training)
    assert recipe["sh_degree"] == bundle.sh_degree == DEFAULT_SH_DEGREE == 10
    assert recipe["negatives"] == "source_site"  # what TrainOptions chooses when a source column is given
    assert sorted(LOSSES) == sorted(LOSS_HELP)


def test_check_python_reports_missing_torch_with_install_help(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho '{\"python\": \"3.11.0\", \"error\": \"ModuleNotFoundError: torch\"}'\n")
    fake.chmod(0o755)
    with pytest.raises(TrainingEnvironmentError) as err:
        check_python(str(fake))
    assert "PyTorch is missing" in str(err.value) and "-m pip install torch" in str(err.value)
    with pytest.raises(TrainingEnvironmentError, match="was not found"):
        check_python(str(tmp_path / "nope"))
    with pytest.raises(TrainingEnvironmentError, match="No Python interpreter"):
        check_python("")


def test_default_python_prefers_the_repository_venv(tmp_path):
    venv_py = tmp_path / ".venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    venv_py.write_text("")
    assert default_python(tmp_path) == str(venv_py)
    assert candidate_pythons(None)  # python3 on PATH at least


def test_child_environment_drops_qgis_python_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONHOME", "/qgis/apps/Python39")
    monkeypatch.setenv("PYTHONPATH", "/qgis/python")
    env = child_environment(tmp_path)
    assert "PYTHONHOME" not in env and env["PYTHONUNBUFFERED"] == "1"
    repo = Path(process.__file__).resolve().parents[3]
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path), str(repo)]
    assert child_environment(repo)["PYTHONPATH"] == str(repo)
    assert training_root() == repo


def test_cancel_still_works_after_the_child_closed_stdout(opts, tmp_path):
    pid_file = tmp_path / "pid"
    t0 = time.monotonic()
    with pytest.raises(CancelledError):
        _run(opts, mode="mute", extra=["--pid-file", str(pid_file)],
             is_cancelled=lambda: pid_file.exists() and time.monotonic() - t0 > 0.5)
    assert time.monotonic() - t0 < 20
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


@pytest.mark.parametrize("mode", ["ok", "crash", "user_error"])
def test_the_childs_pipes_are_closed_when_it_ends(opts, mode):
    """Pipes left to the garbage collector are "unclosed file" ResourceWarnings on the command line."""
    started = []
    try:
        _run(opts, mode=mode, on_start=started.append)
    except TrainingError:
        assert mode != "ok"
    proc = started[0].proc
    assert proc.stdout.closed and proc.stderr.closed and proc.returncode is not None


def test_check_training_available_names_every_missing_piece(tmp_path, monkeypatch):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho '{\"python\": \"3.11.0\", \"torch\": \"2.3\", \"missing\": [\"osgeo.gdal\"]}'\n")
    fake.chmod(0o755)
    with pytest.raises(TrainingEnvironmentError, match=r"has PyTorch but lacks GDAL's Python bindings \(osgeo"):
        check_training_available(str(fake))

    def missing():
        raise TrainingEnvironmentError("Training is unavailable: the training code was not found.")

    monkeypatch.setattr(interpreter, "training_root", missing)
    with pytest.raises(TrainingEnvironmentError) as err:
        check_training_available(str(fake))
    assert str(err.value).startswith("Training is unavailable: the training code was not found. Also: The Python "
                                     f"interpreter {fake} has PyTorch but lacks GDAL")


def test_a_numpy_that_breaks_gdal_is_named_with_the_fix(tmp_path):
    """numpy 2 beside a GDAL built for numpy 1: osgeo.gdal imports, gdal_array (rasters -> arrays) does not."""
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho '{\"python\": \"3.12.1\", \"torch\": \"2.5.0\", \"missing\": "
                    "[\"osgeo.gdal_array\"]}'\n")
    fake.chmod(0o755)
    with pytest.raises(TrainingEnvironmentError) as err:
        check_python(str(fake))
    assert str(err.value) == (
        f"The Python interpreter {fake} has PyTorch but lacks a numpy that its GDAL works with (osgeo.gdal_array "
        "does not import), which training needs. Install the numpy its GDAL was built for (usually "
        f"`{fake} -m pip install \"numpy<2\"`), or click 'Set up PyTorch for me', whose environment keeps QGIS's "
        "own numpy. ")
    # without GDAL at all, only that is said
    fake.write_text("#!/bin/sh\necho '{\"python\": \"3.12.1\", \"torch\": \"2.5.0\", \"missing\": "
                    "[\"osgeo.gdal\", \"osgeo.gdal_array\"]}'\n")
    with pytest.raises(TrainingEnvironmentError) as err:
        check_python(str(fake))
    assert "lacks GDAL's Python bindings (osgeo; they read the land mask), which" in str(err.value)
    assert "gdal_array" not in str(err.value)


def test_a_python_is_described_by_its_versions_and_devices():
    """(The probe of a real Python with torch: tests/training/test_train_runner.py.)"""
    assert describe_python("py", {"python": "3.12.1", "torch": "2.5.0", "cuda": "NVIDIA H200", "mps": False}) == (
        "py: Python 3.12.1, torch 2.5.0, CUDA: NVIDIA H200, Apple MPS: no")


def test_lock_file_is_taken_exclusively_and_stale_ones_replaced(tmp_path):
    out = tmp_path / "m.sinr"
    lp = lock_path(out)
    lp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "now", "token": "x"}))
    assert not lock._create_lock(lp, "y")  # a live owner keeps it
    assert json.loads(lp.read_text())["token"] == "x"
    lp.write_text(json.dumps({"pid": 999999999, "host": socket.gethostname(), "started": "yesterday"}))
    assert lock._create_lock(lp, "z")  # its process ended: replaced
    info = json.loads(lp.read_text())
    assert (info["pid"], info["token"]) == (os.getpid(), "z")
    lp.write_text("")  # an owner writing it right now
    assert output_busy_message(out) is not None
    old = time.time() - 60
    os.utime(lp, (old, old))  # an empty file left by a crash long ago
    assert output_busy_message(out) is None
    lp.write_text(json.dumps({"pid": 1, "host": "another-machine", "started": "today"}))
    assert "process 1 on another-machine" in output_busy_message(out)  # cannot be checked from here


def test_child_process_works_under_its_parents_lock(tmp_path):
    out = tmp_path / "m.sinr"
    take = ("import sys; from sinr_qgis.core.training.lock import inherited_lock_tokens, output_lock\n"
            "from sinr_qgis.core.errors import OutputBusyError\n"
            "try:\n    with output_lock(sys.argv[1], inherited_lock_tokens()):\n        print('held')\n"
            "except OutputBusyError as exc:\n    print('busy:', exc)\n")
    repo = Path(__file__).resolve().parents[2]
    with output_lock(out) as lp:
        env = child_environment(repo)  # what the plugin gives its training child
        child = subprocess.run([sys.executable, "-c", take, str(out)], env=env, capture_output=True, text=True,
                               check=True)
        assert child.stdout.strip() == "held"
        assert lp.is_file()  # the child left its parent's lock in place
        env.pop(LOCK_TOKENS_ENV)  # a process that is not the holder's child: refused
        other = subprocess.run([sys.executable, "-c", take, str(out)], env=env, capture_output=True, text=True,
                               check=True)
        assert other.stdout.startswith(f"busy: A training is already writing m.sinr (process {os.getpid()}, started ")
        assert other.stdout.strip().endswith(f"If no training is running, delete {lp}.")
    assert not lp.exists()


def test_summary_counts_what_covariates_left_out_and_where_absences_were_drawn():
    prov = {"n_used": 1500, "n_read": 2000, "n_removed_no_covariates": 500, "n_species_no_covariates": 2,
            "n_random_absences": 200_000, "n_random_redrawn_no_covariates": 509_619}
    assert training_summary({"n_species": 5, "epochs": 1}, "north.sinr", 4, prov) == (
        "Trained north.sinr: 5 species, 1,500 records used of 2,000 read, 1 epochs, time 4s; dropped 500 without "
        "covariate values; 2 species had no record with covariate values; 200,000 random absences drawn where every "
        "covariate has a value (509,619 random points without one drawn again).")
    # a coordinates model's bundle has none of these counts: its summary is unchanged
    assert training_summary({"n_species": 5}, "m.sinr", 4, {"n_used": 10, "n_read": 10}) == (
        "Trained m.sinr: 5 species, 10 records used of 10 read, time 4s; no records dropped.")


def test_every_busy_output_guard_speaks_through_one_message(tmp_path):
    """The task registry, this process's set and the lock file refuse a second training to an output
    in one wording (``lock.busy_message``), with who holds it when known."""
    out = tmp_path / "m.sinr"
    plain = "A training is already writing m.sinr. Wait for it to finish or cancel it, or choose another output file."
    assert lock.busy_message(out) == plain
    assert lock.busy_message(out, "SINR: training m.sinr, in QGIS's task manager") == plain.replace(
        "m.sinr.", "m.sinr (SINR: training m.sinr, in QGIS's task manager).")
    lock_path(out).write_text(json.dumps({"pid": os.getpid(), "host": "another-machine", "started": "noon"}))
    held = f"m.sinr (process {os.getpid()} on another-machine, started noon)."
    assert output_busy_message(out) == plain.replace("m.sinr.", held) + (
        f" If no training is running, delete {lock_path(out)}.")
