"""Train a model in the background: a QgsTask supervising the training CLI in a child process.

PyTorch never runs inside QGIS: ``run()`` calls :func:`sinr_qgis.core.training.run.run_training`
(the same call as ``sinr:train_model``), which starts ``python -m training train --jsonl`` with
the configured interpreter. JSON lines drive ``setProgress``; cancelling the task stops the
child's whole process group. On success ``finished()`` (main thread) adds the model to the
user's model list and calls ``on_done(task, ok)``.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qgis.core import QgsApplication

from ..core.errors import CancelledError, OutputBusyError, SinrError
from ..core.training.events import describe_event
from ..core.training.lock import busy_message, output_busy_message
from ..core.training.options import TrainOptions
from ..core.training.process import PLUGIN_CLI, TrainingCli
from ..core.training.run import run_training
from ..core.training.summary import TrainResult
from ..toolbelt import model_registry
from .base import SinrTask

LOG = logging.getLogger("sinr_qgis")

# Tasks started through ``start_training`` and not finished yet, by output path. Holding them
# here also keeps the Python objects alive while the task manager runs them.
_ACTIVE: dict[str, TrainTask] = {}


def _key(out: str | Path) -> str:
    return str(Path(out).expanduser().resolve())


class TrainTask(SinrTask):
    """One training run. Inputs are plain values (options, an interpreter path); no layers.

    ``warnings``: what the inputs could not take as asked (``qgis_bridge.training_inputs``), kept
    with the task's messages so its report can repeat them.
    """

    kind = "Training"

    def __init__(self, opts: TrainOptions, python: str, *, input_label: str | None = None,
                 species_label: str = "species", temp_paths: Sequence[str | Path] = (),
                 on_done: Callable[[TrainTask, bool], None] | None = None, register: bool = True,
                 description: str = "", cli: TrainingCli = PLUGIN_CLI, warnings: Sequence[str] = ()) -> None:
        verb = "resuming" if opts.resume else "training"
        super().__init__(description or f"SINR: {verb} {Path(opts.out).name}", on_done)
        self.opts = opts
        self.python = python
        self.input_label = input_label
        self.species_label = species_label
        self.temp_paths = [Path(p) for p in temp_paths]  # removed when the task ends (exported layer CSVs)
        self.register = register
        self.cli = cli  # what the child runs: the plugin's training code (tests: a fake CLI)
        self.result: TrainResult | None = None
        self.child_pid: int | None = None
        self.last_event: dict[str, Any] = {}
        self.start_event: dict[str, Any] = {}  # the CLI's "start" (n_records, start_epoch, ...)
        self.last_progress = 0.0
        # Plain Python state that outlives the C++ task (the task manager deletes it when done):
        self.ended = False
        self.ok = False
        self.warnings = list(warnings)
        self.messages: list[str] = list(self.warnings)

    # ---- worker thread ------------------------------------------------------------------------
    def work(self) -> bool:
        """Worker thread: supervise the child (its crashes and refusals raise ``SinrError``)."""
        self.result = run_training(
            self.opts, self.python, on_progress=self._progress, is_cancelled=self.isCanceled,
            on_start=self._on_start, on_event=self._on_event, on_log=self._log, check_input=True,
            input_label=self.input_label, species_label=self.species_label, cli=self.cli)
        return True

    def _progress(self, percent: float) -> None:
        self.last_progress = percent
        self.setProgress(percent)

    def _on_start(self, proc) -> None:
        self.child_pid = proc.pid
        self._log(f"Training process {proc.pid} started: {' '.join(proc.command)}")

    def _on_event(self, event: dict[str, Any]) -> None:
        self.last_event = event
        if event.get("event") == "start":
            self.start_event = event
        text = describe_event(event)
        if text is not None:
            self._log(text)

    def _log(self, text: str) -> None:
        self.messages.append(text)
        LOG.info(text)

    # ---- main thread --------------------------------------------------------------------------
    def finished(self, result: bool) -> None:
        """Main thread: clean up, list the new model, report; ``self.ok`` and ``self.ended`` are set."""
        _release(self)
        for p in self.temp_paths:
            with contextlib.suppress(OSError):
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()
        ok = bool(result) and self.result is not None
        if ok:
            LOG.info(self.result.summary())
            if self.register:
                try:
                    entry = model_registry.add_model(self.result.path)
                    LOG.info("Model %s added to the model list.", entry.label)
                except SinrError as exc:
                    self.error = exc
                    ok = False
        if not ok:
            if self.error is None:
                self.error = CancelledError("Training was cancelled; no model was written.")
            if self.cancelled:
                LOG.info("Training of %s cancelled; no model was written.", Path(self.opts.out).name)
            else:
                LOG.warning("Training of %s failed: %s", Path(self.opts.out).name, self.error)
        self.ok = ok
        self.ended = True
        super().finished(ok)


def _release(task: TrainTask) -> None:
    key = _key(task.opts.out)
    if _ACTIVE.get(key) is task:
        del _ACTIVE[key]


def training_busy_message(out: str | Path) -> str | None:
    """Why a training to ``out`` cannot start now (one is queued or running), or ``None``."""
    task = _ACTIVE.get(_key(out))
    if task is not None:
        return busy_message(out, f"{task.description()}, in QGIS's task manager")
    return output_busy_message(out)


def start_training(task: TrainTask) -> TrainTask:
    """Queue ``task`` in QGIS's task manager; refused (``OutputBusyError``) while its output is being trained."""
    busy = training_busy_message(task.opts.out)
    if busy:
        raise OutputBusyError(busy)
    _ACTIVE[_key(task.opts.out)] = task
    # a task cancelled before it ran never gets finished(): release its output anyway
    task.taskTerminated.connect(lambda t=task: _release(t))
    QgsApplication.taskManager().addTask(task)
    return task


def active_tasks() -> list[TrainTask]:
    """Training tasks queued or running."""
    return list(_ACTIVE.values())
