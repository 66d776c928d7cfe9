"""The training CLI's JSON-lines events, defined once: written by the trainer and the CLI, read by
the supervisor (:mod:`.run`) and put into words for the Train dialog's task and ``sinr:train_model``.

One JSON object per line on the child's stdout, flushed. ``epoch`` is 1-based, ``step`` the
global 1-based step, ``progress`` 0..1. The kinds, in the order a run writes them:

- ``start`` (:class:`StartEvent`, the trainer): what is trained; ``start_epoch`` > 1 after ``--resume``
- ``note`` (:class:`NoteEvent`, the CLI): a line about the inputs (a categorical covariate, coverage)
- ``step`` (:class:`StepEvent`, the trainer): every ``--jsonl-every`` steps
- ``epoch`` (:class:`EpochEvent`, the trainer): after each epoch
- ``progress`` (:class:`ProgressEvent`, ``import-official``): a fraction done and what is being done
- then one of ``done`` (:class:`DoneEvent`, the bundle is written), ``error`` (:class:`ErrorEvent`,
  a user error; exit status 2) or ``cancelled`` (:class:`CancelledEvent`).

Pure Python (no qgis, no torch).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import IO, Any, Literal, NotRequired, TypedDict


class StartEvent(TypedDict):
    """Training begins: ``device`` is ``cpu``, ``cuda`` or ``mps``; ``processes`` the number of
    training processes; ``config`` the trainer's ``TrainConfig`` as a dict."""

    event: Literal["start"]
    n_records: int
    n_species: int
    epochs: int
    start_epoch: int
    steps_per_epoch: int
    steps_total: int
    device: str
    processes: int
    config: dict[str, Any]


class StepEvent(TypedDict):
    """``loss``: the mean step loss since the last step event; ``samples_per_s`` ``None`` at 0 s."""

    event: Literal["step"]
    epoch: int
    step: int
    steps_total: int
    loss: float
    progress: float
    samples_per_s: float | None
    elapsed_s: float


class EpochEvent(TypedDict):
    """``loss``: the epoch's mean step loss; ``checkpoint``: its path, or ``None`` when none is kept."""

    event: Literal["epoch"]
    epoch: int
    epochs: int
    loss: float
    lr: float
    progress: float
    elapsed_s: float
    checkpoint: str | None


class NoteEvent(TypedDict):
    event: Literal["note"]
    message: str


class ProgressEvent(TypedDict):
    event: Literal["progress"]
    progress: float
    message: str


class DoneEvent(TypedDict):
    """The bundle ``out`` is written; ``train`` adds its records, loss and times, ``import-official``
    what the checkpoint held."""

    event: Literal["done"]
    out: str
    n_species: int
    sha256: str
    n_records: NotRequired[int]
    final_loss: NotRequired[float]
    epochs: NotRequired[int]
    train_seconds: NotRequired[float]
    elapsed_s: NotRequired[float]
    reader: NotRequired[str]
    encoding: NotRequired[str]
    architecture: NotRequired[str]
    names_summary: NotRequired[str]
    warnings: NotRequired[list[str]]
    taxa_names: NotRequired[dict[str, Any]]


class ErrorEvent(TypedDict):
    event: Literal["error"]
    message: str


class CancelledEvent(TypedDict):
    event: Literal["cancelled"]
    message: str


TrainingEvent = (StartEvent | StepEvent | EpochEvent | NoteEvent | ProgressEvent | DoneEvent | ErrorEvent
                 | CancelledEvent)


def write_event(stream: IO[str] | None, event: TrainingEvent) -> None:
    """Write ``event`` as one JSON line to ``stream`` and flush it (nothing when ``stream`` is None)."""
    if stream is not None:
        stream.write(json.dumps(event) + "\n")
        stream.flush()


def read_event(line: str) -> dict[str, Any] | None:
    """The event a line of the child's stdout holds, or ``None`` for a line that is not a JSON object."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> str:
    """A whole number with thousands separators, or ``?`` for a field the CLI left out."""
    return f"{int(value):,}" if _finite(value) and float(value).is_integer() else "?"


def describe_event(event: Mapping[str, Any]) -> str | None:
    """One log line for a training event, or ``None`` for an event that has no line of its own.

    ``start`` -> "Training 300 records of 3 species for 20 epochs" (", resuming at epoch 4" after
    ``--resume``); ``epoch`` -> "Epoch 3/20: loss 0.1234"; ``note`` -> its message (what the CLI
    tells about its inputs, e.g. how a categorical covariate is read). ``step`` events only move the progress
    bar, and ``done``, ``error`` and ``cancelled`` are reported by the supervisor
    (:func:`~sinr_qgis.core.training.run.run_training`: the summary, or the error it raises), so they give ``None``.
    """
    kind = event.get("event")
    if kind == "start":
        first = event.get("start_epoch", 1)
        resuming = f", resuming at epoch {first}" if isinstance(first, int) and first > 1 else ""
        return (f"Training {_count(event.get('n_records'))} records of {_count(event.get('n_species'))} species "
                f"for {_count(event.get('epochs'))} epochs{resuming}")
    if kind == "epoch":
        loss = event.get("loss")
        return (f"Epoch {_count(event.get('epoch'))}/{_count(event.get('epochs'))}: "
                f"loss {f'{loss:.4f}' if _finite(loss) else '?'}")
    if kind == "note" and event.get("message"):
        return str(event["message"])
    return None


def event_progress(event: Mapping[str, Any]) -> float | None:
    """Percent done (0-100) of a progress event (``progress`` is 0..1), or ``None`` when it carries none."""
    p = event.get("progress")
    if isinstance(p, (int, float)) and math.isfinite(p):
        return max(0.0, min(100.0, 100.0 * float(p)))
    step, total = event.get("step"), event.get("steps_total")
    if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
        return max(0.0, min(100.0, 100.0 * step / total))
    return None
