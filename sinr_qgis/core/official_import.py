"""Import an official SINR checkpoint into a ``.sinr`` bundle from QGIS: the one call the
Processing algorithm ``sinr:import_sinr_checkpoint`` and the dock's import task make.

PyTorch never runs inside QGIS and the checkpoint (a pickle) is never opened here: the training
code's ``import-official`` command runs in a child process with the training Python (there
``torch.load(weights_only=True)``, so no code stored in the file can run), supervised as a training
run is (:class:`~sinr_qgis.core.training.process.TrainingProcess`: JSON-line progress, cancel stops the
whole process group). The covariate statistics of an environmental checkpoint are computed here
(:mod:`~sinr_qgis.core.official_env`, numpy + GDAL) and handed over as JSON, so the child needs
no GDAL. Pure Python (no qgis, no torch).
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import check_writable, remove_partial_outputs
from .errors import (
    CancelledError,
    CheckpointImportError,
    OutputError,
    TrainingCrashError,
    TrainingEnvironmentError,
)
from .official_env import read_official_env
from .training.events import event_progress
from .training.lock import output_lock
from .training.options import sinr_path
from .training.process import TrainingProcess, missing_module, training_cli

STATS_SHARE = 40.0  # percent of the progress bar for reading the covariate rasters
SETUP_HINT = ("Choose a Python that has PyTorch, or let the plugin make one: 'Set up PyTorch for me' in the Train "
              "dialog, or the Processing algorithm 'Set up PyTorch for training' (sinr:setup_training).")


@dataclass
class ImportResult:
    """An imported checkpoint: the bundle, what it holds, and what the user should know."""

    path: Path
    n_species: int
    encoding: str
    architecture: str
    names_summary: str  # what the names table named (one line)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log and the dock."""
        inputs = "the location" if self.encoding == "sin_cos" else {
            "env": "WorldClim covariates", "sin_cos_env": "the location and WorldClim covariates"}[self.encoding]
        return (f"Imported {self.path.name}: {self.n_species:,} species, {self.architecture} reading {inputs}. "
                f"{self.names_summary[0].upper()}{self.names_summary[1:]}")


def check_checkpoint_file(path: str | Path) -> Path:
    """``path`` if it can be a PyTorch checkpoint (a torch zip with a ``data.pkl``, or the older
    pickle format), judged from its container only: nothing is unpickled here. Raises
    ``CheckpointImportError`` saying what the file is instead."""
    p = Path(path)
    if not str(path).strip() or not p.is_file():
        raise CheckpointImportError(f"Checkpoint {p} does not exist. Choose the .pt file of an official SINR model.")
    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            raise CheckpointImportError(f"{p.name} cannot be read ({exc}). Choose an official SINR checkpoint "
                                        "(.pt).") from None
        if "model.json" in names and "weights.npz" in names:
            raise CheckpointImportError(f"{p.name} is a SINR model bundle already, not a checkpoint: open it with "
                                        "'Open model file…' in the dock's model list.")
        if any(n.endswith("data.pkl") for n in names):
            return p
    else:
        with open(p, "rb") as f:
            if f.read(1) == b"\x80":  # a pickle (protocol 2 or later): torch's format before its zip
                return p
    raise CheckpointImportError(f"{p.name} is not a PyTorch checkpoint. Choose the .pt file of an official SINR "
                                "model (from the SINR release's pretrained models).")


def import_official_checkpoint(checkpoint: str | Path, out: str | Path, python: str, *,
                               taxa: str | Path | None = None, covariates: Sequence[str | Path] = (),
                               name: str | None = None, on_progress: Callable[[float], None] | None = None,
                               on_log: Callable[[str], None] | None = None,
                               is_cancelled: Callable[[], bool] | None = None) -> ImportResult:
    """Convert an official SINR ``checkpoint`` (.pt) into a bundle at ``out`` (``.sinr`` added when
    missing) with the training ``python``.

    ``taxa``: a names table (the SINR web app's names file, iNaturalist's taxa.csv, a CSV; None: the
    taxon ids are the names). ``covariates``: the global rasters of an environmental checkpoint
    (WorldClim 2.1, 5 arc-minutes: elevation and bio1..bio19, any order). ``on_progress`` gets
    0..100; ``on_log`` gets what the user should know (warnings about the rasters, the names).
    Raises ``CheckpointImportError`` (not a checkpoint, or the converter refused it with its one-line
    reason), ``CovariateError``, ``TrainingEnvironmentError`` (no usable Python), ``TrainingCrashError``,
    ``OutputError`` or ``CancelledError``; never leaves a partial bundle under ``out``."""
    cp = check_checkpoint_file(checkpoint)
    if taxa and not Path(taxa).is_file():
        raise CheckpointImportError(f"Names table {taxa} does not exist. Choose the names file (e.g. the SINR web "
                                    "app's taxa names, or iNaturalist's taxa.csv), or leave it empty.")
    out = Path(str(out).strip())
    if not str(out).strip() or out.name == "":
        raise OutputError("No output file given. Choose where to save the model (.sinr).")
    out = check_writable(Path(sinr_path(out)))
    if not (shutil.which(python) or Path(python).is_file()):
        raise TrainingEnvironmentError(f"The Python interpreter {python!r} was not found. {SETUP_HINT}")
    logs: list[str] = []

    def log(text: str) -> None:
        logs.append(text)
        if on_log is not None:
            on_log(text)

    def progress(base: float, span: float) -> Callable[[float], None]:
        return lambda pct: on_progress(base + span * pct / 100.0) if on_progress is not None else None

    with output_lock(out), tempfile.TemporaryDirectory(prefix="sinr_import_") as tmp:
        args = ["import-official", str(cp), "--out", str(out), "--jsonl"]
        args += ["--taxa", str(taxa)] if taxa else []
        args += ["--name", name] if name else []
        share = 0.0
        if covariates:
            share = STATS_SHARE
            env = read_official_env(list(covariates), progress(0.0, share), is_cancelled)
            for warning in env.warnings:
                log(warning)
            args += ["--covariate-stats", str(env.to_json(Path(tmp) / "covariates.json"))]
        done = _run_converter(python, args, out, progress(share, 100.0 - share), is_cancelled)
    for warning in done.get("warnings") or []:  # the converter's own (the rasters' were logged above)
        if warning not in logs:
            log(str(warning))
    result = ImportResult(path=Path(str(done.get("out") or out)), n_species=int(done.get("n_species", 0)),
                          encoding=str(done.get("encoding", "sin_cos")),
                          architecture=str(done.get("architecture", "?")),
                          names_summary=str(done.get("names_summary", "")), warnings=logs)
    if not result.path.is_file():
        raise TrainingCrashError(f"The import reported success but {result.path} does not exist.")
    return result


def _run_converter(python: str, args: list[str], out: Path, progress: Callable[[float], None],
                   is_cancelled: Callable[[], bool] | None) -> dict[str, Any]:
    """Run ``python -m training <args>``; its ``done`` event, or the error it reported."""
    argv, cwd, env = training_cli(python, args)
    proc = TrainingProcess(argv, cwd=cwd, env=env)
    proc.start()
    done: dict[str, Any] | None = None
    error: str | None = None
    try:
        for event in proc.events(is_cancelled):
            if event.get("event") == "done":
                done = event
            elif event.get("event") == "error":
                error = str(event.get("message") or "")
            pct = event_progress(event)
            if pct is not None:
                progress(pct)
        rc = proc.wait_cancellable(is_cancelled)
    except CancelledError:
        proc.stop()
        remove_partial_outputs(out)
        raise CancelledError("Import cancelled; no model was written.") from None
    except BaseException:
        proc.stop()
        remove_partial_outputs(out)
        raise
    if rc == 0 and done is not None:
        progress(100.0)
        return done
    remove_partial_outputs(out)
    if rc == 2:
        raise CheckpointImportError(error or proc.last_error_line().removeprefix("error: ")
                                    or "The converter refused the checkpoint.")
    missing = missing_module(proc.stderr_tail())
    if missing:
        raise TrainingEnvironmentError(f"The Python interpreter {python} cannot import {missing!r}, which the "
                                       f"import needs (it runs the official network's weights through PyTorch). "
                                       f"{SETUP_HINT}")
    why = f"was killed by signal {-rc}" if rc is not None and rc < 0 else f"exited with status {rc}"
    raise TrainingCrashError(f"The import process {why}. Last lines of its error output:\n"
                             + (proc.stderr_tail() or "(no error output)"))
