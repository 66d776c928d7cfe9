"""The training CLI's JSON-line events in words: one text for the Train dialog's task and for
``sinr:train_model``, so both logs read the same.

The events are those of ``training/trainer.py`` (module docstring) and ``training/cli.py``:
``start``, ``note``, ``step``, ``epoch``, ``done``, ``error``, ``cancelled``. Pure Python (no qgis, no torch).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


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
    (``train_runner.run_training``: the summary, or the error it raises), so they give ``None``.
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
