"""One training run, supervised: the one place the dock's task and ``sinr:train_model`` call.

Checks the options (and, if asked, the observations) before anything starts, holds the output's
lock, starts the child (:mod:`.process`), passes its events on (:mod:`.events`) and turns how it
ended into a result (:mod:`.summary`) or one typed error:

- Cancel: :class:`CancelledError`, after the child's whole process group is stopped.
- User error (exit status ``EXIT_USER_ERROR``): :class:`TrainingInputError` with the CLI's one-line message.
- Crash: :class:`TrainingCrashError` with the tail of the child's stderr; a missing module:
  :class:`TrainingEnvironmentError` saying how to install it.
- Outputs: the CLI writes the bundle atomically; leftover ``.part`` files of a killed child are
  removed; the lock refuses a second training to the same output while one runs.

Pure Python (no qgis, no torch).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import remove_partial_outputs
from ..errors import (
    CancelledError,
    OutputBusyError,
    TrainingCrashError,
    TrainingEnvironmentError,
    TrainingError,
    TrainingInputError,
)
from ..train_setup import setup_steps
from .defaults import EXIT_OK, EXIT_USER_ERROR
from .events import event_progress
from .lock import output_busy_message, output_lock
from .options import TrainOptions
from .process import CANCELLED, PLUGIN_CLI, TrainingCli, TrainingProcess, child_environment, missing_module
from .summary import TrainResult, bundle_provenance


def run_training(opts: TrainOptions, python: str, *,
                 on_event: Callable[[dict[str, Any]], None] | None = None,
                 on_progress: Callable[[float], None] | None = None,
                 is_cancelled: Callable[[], bool] | None = None,
                 on_start: Callable[[TrainingProcess], None] | None = None,
                 on_log: Callable[[str], None] | None = None,
                 check_input: bool = False, input_label: str | None = None, species_label: str = "species",
                 cli: TrainingCli = PLUGIN_CLI) -> TrainResult:
    """Train ``opts`` in a child process and return the written bundle's path and summary.

    With ``check_input`` the observation file (and covariates) are checked first, so bad data
    fails in seconds (``input_label`` and ``species_label`` name them in messages, the summary
    goes to ``on_log``). ``on_event`` gets every event, ``on_progress`` the percent done (0-100).
    ``cli`` is what runs (the plugin's training code; tests hand a fake CLI).
    Raises :class:`CancelledError`, :class:`TrainingInputError`, :class:`TrainingCrashError`,
    :class:`OutputBusyError`, :class:`TrainingEnvironmentError`, or the checks' ``OccurrenceError``
    and ``CovariateError``; never leaves a partial bundle under the final name.
    """
    root = _check_before_start(opts, cli, check_input, input_label, species_label, on_log)
    if is_cancelled is not None and is_cancelled():
        raise CancelledError(CANCELLED)
    started = time.monotonic()
    with output_lock(opts.out):
        proc = TrainingProcess(cli.command(python, opts), cwd=root, env=child_environment(root))
        proc.start()
        if on_start is not None:
            on_start(proc)
        try:
            last, rc = _follow(proc, is_cancelled, on_event, on_progress)
        except BaseException:
            proc.stop()
            remove_partial_outputs(opts.out)
            raise
        if rc != EXIT_OK or "done" not in last:
            remove_partial_outputs(opts.out)
            raise _failure(proc, rc, last.get("error"), python)
        done = last["done"]
        path = Path(str(done.get("path") or done.get("out") or opts.out))
        if not path.is_file():
            raise TrainingCrashError(f"The training process reported success but {path} does not exist.\n"
                                     + proc.stderr_tail())
        return TrainResult(path=path, done=done, seconds=time.monotonic() - started, pid=proc.pid,
                           start=last.get("start", {}), provenance=bundle_provenance(path))


def _check_before_start(opts: TrainOptions, cli: TrainingCli, check_input: bool, input_label: str | None,
                        species_label: str, on_log: Callable[[str], None] | None) -> Path:
    """Refuse bad options, a busy output, a missing training code and (``check_input``) bad
    observations before a process starts; returns the folder the child runs in."""
    opts.check()
    busy = output_busy_message(opts.out)
    if busy:
        raise OutputBusyError(busy)
    root = cli.working_folder()
    if check_input:
        from ..train_checks import check_training_input

        summary = check_training_input(
            opts.data, min_records=opts.min_records or 1, covariates=opts.covariates or (),
            species_column=opts.species_column, lat_column=opts.lat_column, lon_column=opts.lon_column,
            source_column=opts.source_column, species_label=species_label, origin=input_label)
        if on_log is not None:
            on_log(summary.text())
    return root


def _follow(proc: TrainingProcess, is_cancelled: Callable[[], bool] | None,
            on_event: Callable[[dict[str, Any]], None] | None,
            on_progress: Callable[[float], None] | None) -> tuple[dict[str, dict[str, Any]], int]:
    """Pass the child's events on until it closes its stdout; returns its last ``start``, ``done``
    and ``error`` events by kind, and its exit status."""
    last: dict[str, dict[str, Any]] = {}
    for event in proc.events(is_cancelled):
        if event.get("event") in ("start", "done", "error"):
            last[event["event"]] = event
        if on_event is not None:
            on_event(event)
        pct = event_progress(event)
        if pct is not None and on_progress is not None:
            on_progress(pct)
    return last, proc.wait_cancellable(is_cancelled)  # stdout closed: the child is exiting


def _failure(proc: TrainingProcess, rc: int, error_event: dict[str, Any] | None, python: str) -> TrainingError:
    """The error a child that ended with ``rc`` (or without a ``done`` event) stands for."""
    if error_event is not None and error_event.get("message"):
        return (TrainingInputError if rc == EXIT_USER_ERROR else TrainingCrashError)(str(error_event["message"]))
    if rc == EXIT_USER_ERROR:
        line = proc.last_error_line()
        return TrainingInputError(line.removeprefix("error: ") or "The training CLI refused its input.")
    missing = missing_module(proc.stderr_tail())
    if missing:
        how = (setup_steps(python) if missing == "torch" else
               f"Install it for that interpreter: `{python} -m pip install {missing}`.")
        return TrainingEnvironmentError(f"The Python interpreter {python} cannot import {missing!r}, "
                                        f"which training needs. {how}")
    if rc is not None and rc < 0:
        why = f"was killed by signal {-rc}"
    else:
        why = f"exited with status {rc}" if rc != EXIT_OK else "ended without reporting a finished model"
    tail = proc.stderr_tail() or "\n".join(proc.other_output) or "(no error output)"
    return TrainingCrashError(f"The training process {why}. Last lines of its error output:\n{tail}")
