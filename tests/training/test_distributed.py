"""``torchrun --nproc_per_node 2 -m training train``: two CPU processes (gloo) on tiny data write
one bundle that matches a one-process training, resume in another number of processes, and end
clearly when a process dies."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.training.options import checkpoint_path
from tests.helpers.cli_helpers import ROOT, write_csv
from training.cli import main

TORCHRUN = Path(sys.executable).with_name("torchrun")
# dropout 0.5 (the default): every process draws the whole batch's dropout masks and takes its
# shard's rows, so the runs differ by the float order of the gradient sums alone
OPTS = ["--batch-size", "200", "--width", "16", "--depth", "1", "--threads", "1", "--dropout", "0.5",
        "--pos-weight", "3", "--precision", "fp32", "--no-progress", "--jsonl", "--jsonl-every", "2"]
# Relative tolerance on the epoch losses and weights of 1 vs 2 processes. The only difference is
# the float32 order of sums: a shard's gradient is a mean over half the batch, all-reduced, where
# one process sums the whole batch. Each step's update moves by a few float32 eps (1.2e-7) of the
# weights; over 15 Adam steps that grew to 1.6e-6 of the loss when measured. 1e-4 leaves a 60x
# margin and stays far below what a wrong batch would change: one epoch lowers the loss by ~1e-2.
RTOL = 1e-4


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "training", "train", *args]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> tuple[Path, ModelBundle]:
    """The one-process reference: 3 epochs of 5 batches of 200."""
    folder = tmp_path_factory.mktemp("one")
    data = write_csv(folder / "obs.csv", n_per=300)
    assert main(["train", "--data", str(data), "--out", str(folder / "m.sinr"), "--epochs", "3", *OPTS]) == 0
    return data, ModelBundle.load(folder / "m.sinr")


def assert_same_training(a: ModelBundle, b: ModelBundle) -> None:
    np.testing.assert_allclose(a.meta["training"]["epoch_losses"], b.meta["training"]["epoch_losses"], rtol=RTOL)
    for name in a.weights:
        w = np.asarray(a.weights[name], np.float64)
        np.testing.assert_allclose(b.weights[name], w, rtol=0, atol=RTOL * np.abs(w).max(), err_msg=name)


@pytest.mark.slow
def test_two_processes_write_one_bundle_like_one_process(one_process, tmp_path):
    data, reference = one_process
    out = tmp_path / "m.sinr"
    run = torchrun("--data", str(data), "--out", str(out), "--epochs", "3", "--local-evidence", *OPTS)
    assert run.returncode == 0, run.stderr
    ev = events(run.stdout)
    # rank 0 alone reports: one start, 3 epochs, one done; it alone exports (local evidence included)
    starts = [e for e in ev if e["event"] == "start"]
    assert len(starts) == 1 and ev[-1]["event"] == "done"
    assert starts[0]["processes"] == 2 and starts[0]["device"] == "cpu" and starts[0]["steps_per_epoch"] == 5
    assert [e["epoch"] for e in ev if e["event"] == "epoch"] == [1, 2, 3]
    assert run.stderr.count("training on 900 records") == 1
    assert run.stderr.count("local evidence: SINR logit") == 1
    assert [e["message"] for e in ev if e["event"] == "note"][-1].startswith("local evidence: SINR logit")
    # one bundle; the shared records and the checkpoint are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.sinr"]
    bundle = ModelBundle.load(out)
    assert bundle.meta["training"]["processes"] == 2 and bundle.meta["training"]["device"] == "cpu"
    assert [s.n_train for s in bundle.species] == [s.n_train for s in reference.species] == [300, 300, 300]
    assert bundle.local_evidence is not None and reference.local_evidence is None
    assert_same_training(reference, bundle)


@pytest.mark.slow
def test_a_two_process_checkpoint_resumes_in_one_process(one_process, tmp_path, capsys):
    data, reference = one_process
    out = tmp_path / "m.sinr"
    run = torchrun("--data", str(data), "--out", str(out), "--epochs", "2", "--keep-checkpoint", *OPTS)
    assert run.returncode == 0, run.stderr
    assert checkpoint_path(out).is_file()
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "3", "--resume", *OPTS]) == 0
    start = next(e for e in events(capsys.readouterr().out) if e["event"] == "start")
    assert start["start_epoch"] == 3 and start["processes"] == 1
    bundle = ModelBundle.load(out)
    assert bundle.meta["training"]["resumed"] is True
    assert_same_training(reference, bundle)


@pytest.mark.slow
def test_a_process_that_dies_ends_the_run_without_a_bundle(tmp_path):
    data = write_csv(tmp_path / "obs.csv", n_per=300)
    out = tmp_path / "m.sinr"
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "training", "train", "--data", str(data),
           "--out", str(out), "--epochs", "100000", *OPTS]
    run = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        for line in run.stdout:  # wait for the first epoch's checkpoint
            if json.loads(line)["event"] == "epoch":
                break
        os.kill(_rank_pid(run.pid, 1), signal.SIGKILL)
        rest, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode != 0
    # rank 0 meets the loss in its next collective (within a step), unless torchrun, which watches
    # its workers, ends it first: either way one clear line, no bundle
    lost = ("error: training process 0 of 2 lost the others (", "): one of them stopped, see its error. No bundle "
            "was written; the last completed epoch is in the checkpoint: fix the cause and rerun with --resume.")
    ended = ("stopped: training process 0 was ended because another one stopped (see its error); no bundle was "
             "written; the last completed epoch is in the checkpoint (use --resume)")
    assert (lost[0] in err and lost[1] in err) or ended in err, err
    assert events(rest)[-1]["event"] == "error"
    # no bundle, no temporary file, no shared records: only the last epoch's checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.sinr.ckpt.pt", "obs.csv"]


def write_covariates(path: Path) -> Path:
    """A 1-degree global lon/lat raster of two smooth bands (x / 10, y / 5 in cells)."""
    from osgeo import gdal

    ds = gdal.GetDriverByName("GTiff").Create(str(path), 360, 180, 2, gdal.GDT_Float32)
    ds.SetGeoTransform((-180, 1, 0, 90, 0, -1))
    ds.SetProjection('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
                     'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]')
    rows, cols = np.mgrid[0:180, 0:360].astype(np.float32)
    ds.GetRasterBand(1).WriteArray(cols / 10)
    ds.GetRasterBand(2).WriteArray(rows / 5)
    ds = None
    return path


@pytest.mark.slow
def test_covariates_and_source_negatives_train_alike_in_two_processes(one_process, tmp_path, capsys):
    # what rank 0 alone can make reaches the other rank: the random absences drawn where the
    # covariates have values, and the negative masks built from every record's source
    data, _ = one_process
    opts = ["--data", str(data), "--covariates", str(write_covariates(tmp_path / "cov.tif")), "--encoding",
            "sin_cos_env", "--negatives", "source", "--source-column", "source", "--epochs", "2", *OPTS]
    assert main(["train", "--out", str(tmp_path / "one.sinr"), *opts]) == 0, capsys.readouterr().err
    run = torchrun("--out", str(tmp_path / "two.sinr"), *opts)
    assert run.returncode == 0, run.stderr
    one, two = ModelBundle.load(tmp_path / "one.sinr"), ModelBundle.load(tmp_path / "two.sinr")
    assert two.meta["training"]["processes"] == 2 and two.covariate_names == one.covariate_names
    assert two.meta["data"]["n_random_absences"] == one.meta["data"]["n_random_absences"] == 200_000
    assert_same_training(one, two)


@pytest.mark.slow
def test_a_user_error_on_rank_0_is_reported_once_and_ends_every_process(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    run = torchrun("--data", str(bad), "--out", str(tmp_path / "m.sinr"), *OPTS)
    assert run.returncode != 0
    message = "bad.csv: cannot find the latitude and longitude and species columns"
    # rank 0 says it once, on stderr and as the JSON error event; rank 1 stops silently
    assert run.stderr.count(f"error: {message}") == 1 and "training process 1" not in run.stderr
    kinds = [e["event"] for e in events(run.stdout)]
    assert kinds.count("error") == 1 and kinds[-1] == "error" and "start" not in kinds and message in run.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def _rank_pid(launcher: int, rank: int) -> int:
    """The process id of torchrun's worker ``rank`` (Linux: its parent and environment in /proc)."""
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and f"PPid:\t{launcher}\n" in (entry / "status").read_text()
                    and f"RANK={rank}".encode() in (entry / "environ").read_bytes().split(b"\0")):
                return int(entry.name)
        except OSError:  # a process that ended meanwhile
            continue
    raise AssertionError(f"no worker of rank {rank} under torchrun {launcher}")
