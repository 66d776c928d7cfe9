"""The training QgsTask: trains in a child process, cancels without orphans, resumes, refuses a second run."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from qgis.core import QgsProject

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.errors import OutputBusyError
from sinr_qgis.core.training.lock import lock_path
from sinr_qgis.core.training.options import TrainOptions, checkpoint_path
from sinr_qgis.core.training.process import TrainingCli
from sinr_qgis.qgis_bridge.observations import export_observations
from sinr_qgis.tasks.train_task import TrainTask, active_tasks, start_training, training_busy_message
from sinr_qgis.toolbelt import model_registry
from sinr_qgis.toolbelt.interpreter import training_interpreter
from tests.helpers.train_helpers import isolated_model_list, point_layer  # noqa: F401
from training.checkpoint import read_checkpoint

pytestmark = pytest.mark.usefixtures("isolated_model_list")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone); /proc and os.kill, no psutil."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return not stat.parent.exists() and True


def _observations(tmp_path: Path) -> Path:
    """The dock's path: the layer is exported on the main thread before the task starts."""
    layer = point_layer("EPSG:3857")
    return export_observations(layer, "taxon", tmp_path / "obs.csv", source_field="dataset",
                               transform_context=QgsProject.instance().transformContext()).path


def _opts(tmp_path: Path, **kw) -> TrainOptions:
    base = {"epochs": 3, "batch_size": 64, "width": 32, "depth": 1, "cap": 0, "threads": 1,
            "species_column": "species", "source_column": "source"}
    return TrainOptions(data=str(_observations(tmp_path)), out=str(tmp_path / "mine.sinr"), **(base | kw))


def _wait(qtbot, task: TrainTask, timeout_ms: int = 120_000) -> None:
    # the task manager deletes the C++ task when it ends: wait on the Python-side state
    qtbot.waitUntil(lambda: task.ended and task not in active_tasks(), timeout=timeout_ms)


def test_task_trains_to_completion_and_the_model_is_listed(qgis_app, qtbot, tmp_path):
    done: list[bool] = []
    opts = _opts(tmp_path)
    task = start_training(TrainTask(opts, training_interpreter(), input_label="observations",
                                    on_done=lambda t, ok: done.append(ok)))
    # a second training to the same output while the first is queued or running is refused
    with pytest.raises(OutputBusyError, match=r"^A training is already writing mine\.sinr \(SINR: training mine\.sinr, "
                                              r"in QGIS's task manager\)\. Wait for it to finish or cancel it, "
                                              r"or choose another output file\.$"):
        start_training(TrainTask(opts, training_interpreter()))
    _wait(qtbot, task)
    assert done == [True], task.error
    assert task.ok and task.last_progress == 100
    bundle = ModelBundle.load(opts.out)
    assert bundle.n_species == 3 and bundle.meta["training"]["epochs"] == 3
    listed = model_registry.list_models()
    assert [e.path for e in listed] == [str(Path(opts.out).resolve())] and listed[0].n_species == 3
    assert task.result.summary().startswith("Trained mine.sinr: 3 species, 300 records used of 300 read, 3 epochs")
    assert task.start_event["n_records"] == 300 and task.child_pid and not _alive(task.child_pid)
    assert training_busy_message(opts.out) is None and not lock_path(opts.out).exists()
    assert not checkpoint_path(opts.out).exists()


def test_cancel_mid_way_leaves_no_bundle_and_no_child(qgis_app, qtbot, tmp_path):
    done: list[bool] = []
    opts = _opts(tmp_path, epochs=400, batch_size=4)
    task = start_training(TrainTask(opts, training_interpreter(), on_done=lambda t, ok: done.append(ok)))
    qtbot.waitUntil(lambda: task.last_event.get("event") == "step" and task.last_event["step"] >= 100,
                    timeout=120_000)
    pid = task.child_pid
    assert pid and _alive(pid)
    task.cancel()
    _wait(qtbot, task)
    assert done == [False] and task.cancelled
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    assert not Path(opts.out).exists()
    assert [p.name for p in tmp_path.iterdir() if ".part" in p.name] == []
    assert model_registry.list_models() == []
    assert training_busy_message(opts.out) is None


def test_resume_continues_from_the_saved_epoch(qgis_app, qtbot, tmp_path):
    opts = _opts(tmp_path, epochs=200, batch_size=32)
    first = start_training(TrainTask(opts, training_interpreter()))
    qtbot.waitUntil(lambda: first.last_event.get("event") == "epoch" and first.last_event["epoch"] >= 1,
                    timeout=120_000)
    first.cancel()
    _wait(qtbot, first)
    assert first.cancelled and checkpoint_path(opts.out).is_file() and not Path(opts.out).exists()
    # the epoch the checkpoint holds: the task may stop reading the child's output before its last
    # epoch line arrives, so the messages can lag the checkpoint by one epoch
    saved = int(read_checkpoint(checkpoint_path(opts.out))["epoch"])
    assert saved >= max(int(m.split()[1].split("/")[0]) for m in first.messages if m.startswith("Epoch "))
    opts.resume = True
    opts.epochs = saved + 2  # a short finish: only the epochs after the checkpoint run
    second = start_training(TrainTask(opts, training_interpreter()))
    _wait(qtbot, second)
    assert second.error is None and second.ok
    assert second.start_event["start_epoch"] == saved + 1
    assert any(f"resuming at epoch {saved + 1}" in m for m in second.messages)
    bundle = ModelBundle.load(opts.out)
    assert bundle.meta["training"]["resumed"] is True
    assert len(bundle.meta["training"]["epoch_losses"]) == saved + 2


FAKE_CLI = Path(__file__).resolve().parents[1] / "core" / "fake_train_cli.py"


@pytest.mark.parametrize(("mode", "expected"), [
    ("crash", r"exited with status 1\. Last lines of its error output:\nTraceback .*\nRuntimeError: CUDA out"),
    ("no_torch", r"cannot import 'torch'.*-m pip install torch"),
    ("user_error", r"^too few records: 3 records, at least 20 are needed$"),
])
def test_a_failing_child_is_reported_with_its_reason(qgis_app, qtbot, tmp_path, mode, expected):
    import re
    import sys

    done: list[bool] = []
    opts = _opts(tmp_path)
    fake = TrainingCli(script=(str(FAKE_CLI), "--mode", mode), folder=FAKE_CLI.parent)
    task = start_training(TrainTask(opts, sys.executable, cli=fake, on_done=lambda t, ok: done.append(ok)))
    _wait(qtbot, task)
    assert done == [False] and not task.cancelled
    assert re.search(expected, str(task.error), re.S), str(task.error)
    assert not Path(opts.out).exists() and model_registry.list_models() == []


def test_a_task_cancelled_before_it_runs_reports_and_cleans_up(qgis_app, qtbot, tmp_path):
    done: list[bool] = []
    opts = _opts(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    task = TrainTask(opts, training_interpreter(), temp_paths=[scratch], on_done=lambda t, ok: done.append(ok))
    task.hold()  # queued, never started
    start_training(task)
    task.cancel()
    _wait(qtbot, task, 20_000)
    assert done == [False] and task.cancelled and task.child_pid is None
    assert not scratch.exists() and training_busy_message(opts.out) is None
