"""SinrTask: the one run() template of every background task (store user errors, log bugs, tell on_done)."""
from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from sinr_qgis.core.errors import CancelledError, CovariateError, SinrError
from sinr_qgis.tasks import base
from sinr_qgis.tasks.base import SinrTask
from sinr_qgis.tasks.install_task import InstallTask
from sinr_qgis.tasks.setup_training_task import SetupTrainingTask
from sinr_qgis.toolbelt.dependencies import ONNXRUNTIME

TASKS = Path(base.__file__).parent


class _Task(SinrTask):
    kind = "Test"

    def __init__(self, outcome, on_done=None) -> None:
        super().__init__("SINR: test", on_done)
        self.outcome = outcome

    def work(self) -> bool:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def test_a_user_error_is_stored_for_finished_and_not_logged_as_a_bug(qgis_app, caplog):
    done = []
    task = _Task(CovariateError("The raster does not cover the points."), on_done=lambda t, ok: done.append((t, ok)))
    with caplog.at_level(logging.ERROR, logger="sinr_qgis"):
        assert task.run() is False
    assert str(task.error) == "The raster does not cover the points." and not task.cancelled
    assert caplog.records == []
    task.finished(False)
    assert done == [(task, False)]


def test_a_cancel_is_a_stored_cancelled_error(qgis_app):
    task = _Task(CancelledError("Prediction cancelled."))
    assert task.run() is False and task.cancelled and str(task.error) == "Prediction cancelled."


def test_a_bug_is_logged_with_its_traceback_and_stored(qgis_app, caplog):
    done = []
    task = _Task(KeyError("band"), on_done=lambda t, ok: done.append(ok))
    with caplog.at_level(logging.ERROR, logger="sinr_qgis"):
        assert task.run() is False
    assert isinstance(task.error, KeyError) and not task.cancelled
    [record] = caplog.records
    assert record.getMessage() == "Test task failed" and record.exc_info[0] is KeyError
    task.finished(task.run())
    assert done == [False]


def test_success_passes_work_result_to_on_done(qgis_app):
    done = []
    task = _Task(True, on_done=lambda t, ok: done.append(ok))
    assert task.run() is True and task.error is None
    task.finished(True)
    assert done == [True]


@pytest.mark.parametrize(("task", "words"), [
    (lambda: InstallTask(ONNXRUNTIME, root="/nonexistent"), "The install"),
    (lambda: SetupTrainingTask(folder="/nonexistent"), "Setting up PyTorch"),
])
def test_installers_report_a_bug_in_words_the_dialog_shows(qgis_app, monkeypatch, task, words):
    t = task()
    monkeypatch.setattr(t, "work", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert t.run() is False
    assert type(t.error) is SinrError
    assert str(t.error) == (f"{words} failed unexpectedly (RuntimeError: boom). "
                            "Please report it with the Diagnostics report.")


def test_every_task_of_the_package_uses_the_template():
    """A task module whose QgsTask does not derive from SinrTask, or overrides run(), would have its
    own copy of the error handling: the scan lists them (none)."""
    own = {}
    for path in sorted(TASKS.glob("*_task.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith("Task"):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                runs = any(isinstance(n, ast.FunctionDef) and n.name == "run" for n in node.body)
                if bases != {"SinrTask"} or runs:
                    own[f"{path.name}:{node.name}"] = sorted(bases)
    names = {p.name for p in TASKS.glob("*_task.py")}
    assert names == {"compare_task.py", "import_task.py", "install_task.py", "predict_task.py",
                     "setup_training_task.py", "train_task.py"}
    assert own == {}
