"""Supervise a training run in a child process: the one place that starts, reads and stops it.

PyTorch never runs inside QGIS. The plugin starts the project's training CLI
(``python -m training train ... --jsonl``) with an interpreter that has torch, reads its JSON
lines (progress events and a final ``done``), and stops it on cancel. The QgsTask of the dock
and the ``sinr:train_model`` Processing algorithm both call :func:`run_training`, so the logic
exists once.

- Cancel: SIGTERM to the child's whole process group, then SIGKILL after a grace period, so no
  worker or grandchild survives (on Windows: terminate, then kill).
- Crash: :class:`TrainingCrashError` with the tail of the child's stderr.
- User error (exit status 2): :class:`TrainingInputError` with the CLI's one-line message.
- Outputs: the CLI writes the bundle atomically; leftover temporary ``.part`` files of a killed
  child are removed; a lock file refuses a second training to the same output while one runs.

Pure Python (no qgis, no torch).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import check_writable
from .encoding import ENCODINGS
from .errors import CancelledError, OutputError, SinrError
from .occurrence_terms import drop_reason_text
from .train_setup import PLUGIN_DIR, README_INSTALL, TrainingCode, setup_steps, training_code

LOSSES = ("an_full", "an_ssdl", "an_slds", "me_full", "me_ssdl", "gp")
LOSS_LABELS = {
    "an_full": "Assume negative, full (AN-full)",
    "an_ssdl": "Assume negative, same species (AN-SSDL)",
    "an_slds": "Assume negative, same location (AN-SLDS)",
    "me_full": "Maximum entropy, full (ME-full)",
    "me_ssdl": "Maximum entropy, same species (ME-SSDL)",
    "gp": "Generative / pseudo-absence (GP)",
}
# What the dialog and the algorithm show before the user changes anything: the recipe of the
# bundled model (resources/models/na_trees_coords_v1.md; a test checks it against the bundle's
# model.json): AN-full with lambda = the number of species, no per-species cap, 20 epochs, random
# absences on land, the paper's network. With a source column, source-aware negatives are added
# (cli_arguments). The CLI's own defaults stay the paper's recipe.
DEFAULTS: dict[str, Any] = {"loss": "an_full", "cap": 0, "epochs": 20, "width": 256, "depth": 4,
                            "seed": 0, "min_records": 1, "batch_size": 2048, "pos_weight": "species",
                            "pseudo_negatives": "land"}
PSEUDO_NEGATIVES = ("land", "sphere")
# losses with negatives at observed locations, where source-aware negatives act (training/cli.py)
ROW_NEGATIVE_LOSSES = ("an_full", "me_full", "gp", "an_slds")
# One line per loss for the dialog and the help: what it takes as absences (training/losses.py).
LOSS_HELP = {
    "an_full": "Assume negative, full: at each record's place every other species, and at random places every "
               "species, count as absent; the presence weighs lambda. The paper's best and the bundled model's.",
    "an_ssdl": "Assume negative, same species: each record's species counts as absent at one random place; "
               "other species' records are never used as absences.",
    "an_slds": "Assume negative, same location: at each record's place one other species, drawn at random, "
               "counts as absent; no random places.",
    "me_full": "Maximum entropy, full: AN-full, but the assumed absences pull a score towards 'unknown' (0.5) "
               "instead of towards 0.",
    "me_ssdl": "Maximum entropy, same species: AN-SSDL, with the random places pulling towards 'unknown' "
               "instead of 0.",
    "gp": "Generative / pseudo-absence (Mac Aodha et al. 2019): AN-full with lambda fixed to the number of "
          "species.",
}
TERM_GRACE_S = 5.0
STDERR_TAIL_LINES = 20
# what the probe checks besides torch, as a message names it
_NEEDED_WITH_TORCH = {"onnx": "onnx (it writes the model file)",
                      "osgeo.gdal": "GDAL's Python bindings (osgeo; they read the land mask)",
                      # GDAL reads rasters into numpy through it; it fails when numpy is not the
                      # major version GDAL was built for (numpy 2 beside a GDAL built for numpy 1)
                      "osgeo.gdal_array": "a numpy that its GDAL works with (osgeo.gdal_array does not import)"}


class TrainingError(SinrError):
    """Training could not start or did not finish."""


class TrainingInputError(TrainingError):
    """The training CLI refused its input (exit status 2) or the options are invalid."""


class TrainingCrashError(TrainingError):
    """The training process died unexpectedly; the message carries its stderr tail."""


class TrainingEnvironmentError(TrainingError):
    """The Python interpreter for training is missing or lacks torch."""


class OutputBusyError(OutputError):
    """Another training is writing to the same output right now."""


# ---- options and command ---------------------------------------------------------------------
@dataclass
class TrainOptions:
    """What one training run needs. ``None`` leaves an option to the CLI's default."""

    data: str
    out: str
    loss: str = DEFAULTS["loss"]
    cap: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    width: int | None = None
    depth: int | None = None
    seed: int | None = None
    min_records: int | None = None
    encoding: str | None = None
    covariates: list[str] | None = None  # raster files; each band is one covariate
    categorical: list[str] | None = None  # covariate band names that hold classes (nearest cell, one-hot)
    species_column: str | None = None
    lat_column: str | None = None
    lon_column: str | None = None
    source_column: str | None = None
    name: str | None = None
    resume: bool = False
    threads: int | None = None  # torch CPU threads in the child (None: torch's choice)
    pos_weight: float | str | None = None  # lambda of the full losses; "species" = the number of species
    pseudo_negatives: str | None = None  # where random absences are drawn: "land" or "sphere" (the paper)

    def check(self) -> None:
        """Refuse invalid options up front with a message that says what to change."""
        if self.loss not in LOSSES:
            raise TrainingInputError(f"Unknown loss {self.loss!r}. Choose one of {', '.join(LOSSES)}.")
        for key, low in (("cap", 0), ("epochs", 1), ("batch_size", 1), ("width", 1), ("depth", 0),
                         ("seed", 0), ("min_records", 1), ("threads", 1)):
            v = getattr(self, key)
            if v is not None and (int(v) != v or v < low):
                raise TrainingInputError(f"{key.replace('_', ' ').capitalize()} must be a whole number "
                                         f">= {low}; got {v}.")
        if self.pos_weight is not None and self.pos_weight != "species" and not (
                isinstance(self.pos_weight, (int, float)) and self.pos_weight > 0):
            raise TrainingInputError(f"The positive weight must be a positive number or 'species'; "
                                     f"got {self.pos_weight!r}.")
        if self.pseudo_negatives is not None and self.pseudo_negatives not in PSEUDO_NEGATIVES:
            raise TrainingInputError(f"Random absences are drawn on 'land' or on the whole 'sphere'; "
                                     f"got {self.pseudo_negatives!r}.")
        if self.encoding is not None and self.encoding not in ENCODINGS:
            raise TrainingInputError(f"Unknown encoding {self.encoding!r}. Choose one of {', '.join(ENCODINGS)}.")
        if self.encoding in ("env", "sin_cos_env") and not self.covariates:
            raise TrainingInputError(f"Encoding {self.encoding!r} needs covariate rasters. Add them or "
                                     "choose the coordinates-only encoding 'sin_cos'.")
        if self.categorical and not self.covariates:
            raise TrainingInputError(f"Categorical covariates ({', '.join(self.categorical)}) are bands of covariate "
                                     "rasters: add the rasters, or leave the categorical covariates empty.")
        if not Path(self.data).is_file():
            raise TrainingInputError(f"Observation file {self.data} does not exist.")
        for raster in self.covariates or []:
            if not Path(raster).is_file():
                raise TrainingInputError(f"Covariate raster {raster} does not exist. Choose a raster file.")
        if not str(self.out).strip():
            raise OutputError("No output file given. Choose where to save the model (.sinr).")
        check_writable(self.out)


def cli_arguments(opts: TrainOptions) -> list[str]:
    """``train`` and its flags for ``opts`` (always ``--jsonl``: the supervisor reads JSON lines)."""
    args = ["train", "--data", str(opts.data), "--out", str(opts.out), "--loss", opts.loss]
    flags = (("cap", "--cap"), ("epochs", "--epochs"), ("batch_size", "--batch-size"),
             ("width", "--width"), ("depth", "--depth"), ("seed", "--seed"),
             ("min_records", "--min-records"), ("encoding", "--encoding"),
             ("species_column", "--species-column"),
             ("lat_column", "--lat-column"), ("lon_column", "--lon-column"),
             ("source_column", "--source-column"), ("name", "--name"), ("threads", "--threads"),
             ("pos_weight", "--pos-weight"))
    for key, flag in flags:
        v = getattr(opts, key)
        if v is not None and v != "":
            args += [flag, str(v)]
    if opts.source_column and opts.loss in ROW_NEGATIVE_LOSSES:
        # a record speaks only for the species its own source records, with land pseudo-negatives:
        # the study's winning combination (training/benchmarks/README.md, issue 4 section 5)
        args += ["--negatives", "source_site"]
    pseudo = opts.pseudo_negatives or ("land" if opts.source_column else None)
    if pseudo:
        args += ["--pseudo-negatives", pseudo]
    if opts.covariates:
        args += ["--covariates", *[str(c) for c in opts.covariates]]
    if opts.categorical:
        args += ["--categorical", *[str(c) for c in opts.categorical]]
    # one JSON line per step drives the progress bar; no text progress bar to fill the stderr tail
    args += ["--jsonl", "--jsonl-every", "1", "--no-progress"]
    if opts.resume:
        args.append("--resume")
    return args


def checkpoint_path(out: str | Path) -> Path:
    """The CLI's per-epoch checkpoint for ``out`` (``OUT.ckpt.pt``; the rule of ``training.cli``)."""
    p = Path(out)
    return p.with_name(p.name + ".ckpt.pt")


def training_root() -> Path:
    """The folder the training child runs in and has on its ``PYTHONPATH`` (see
    :func:`~sinr_qgis.core.train_setup.training_code`); raises :class:`TrainingEnvironmentError`
    when the plugin has no training code (a damaged install)."""
    return _training_code().path


def _training_code() -> TrainingCode:
    code = training_code()
    if code is None:
        raise TrainingEnvironmentError(
            f"Training is unavailable: the training code (package 'training') was not found in the plugin's "
            f"folder, {PLUGIN_DIR}. Prediction and comparison work without it. Reinstall the plugin from its "
            f"zip or the plugin repository (Plugins > Manage and Install Plugins), which carries it; "
            f"the README ({README_INSTALL}) says more.")
    return code


def build_command(python: str, opts: TrainOptions, entry: list[str] | None = None) -> list[str]:
    """The child's argv: ``python -m training train ...`` (``entry`` replaces ``-m training``)."""
    return [str(python), "-u", *(entry if entry is not None else ["-m", _training_code().module]),
            *cli_arguments(opts)]


def training_cli(python: str, args: list[str]) -> tuple[list[str], Path, dict[str, str]]:
    """What runs the training CLI's ``args`` (e.g. ``["import-official", ...]``) with ``python``:
    its argv, working folder and environment, for ``subprocess`` or :class:`TrainingProcess`.
    Raises :class:`TrainingEnvironmentError` when the plugin has no training code."""
    code = _training_code()
    return [str(python), "-u", "-m", code.module, *args], code.path, child_environment(code.path)


def child_environment(root: Path | None) -> dict[str, str]:
    """The child's environment: unbuffered; PYTHONPATH = ``root`` and the folder holding ``sinr_qgis``.

    QGIS's own PYTHONHOME/PYTHONPATH are not passed on: they point at QGIS's Python and its
    packages, which would break an interpreter of another version.
    """
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONHOME", None)
    env.pop("PYTHONPATH", None)
    if root is not None:
        package_parent = PLUGIN_DIR.parent  # training imports sinr_qgis.core
        paths = [str(root)] + ([str(package_parent)] if package_parent != root else [])
        env["PYTHONPATH"] = os.pathsep.join(paths)
    # the outputs this process holds: the child CLI writes them under this lock (output_lock)
    env[LOCK_TOKENS_ENV] = ",".join(_HELD_TOKENS.values())
    return env


# ---- the interpreter -------------------------------------------------------------------------
def candidate_pythons(repo_root: Path | None = None) -> list[str]:
    """Interpreters worth trying, best first: the repository's venv, this Python, python3 on PATH."""
    out: list[str] = []
    if repo_root is not None:
        for rel in (".venv/bin/python", ".venv/Scripts/python.exe"):
            p = repo_root / rel
            if p.is_file():
                out.append(str(p))
    exe = Path(sys.executable or "")
    # Inside QGIS sys.executable is often the qgis binary, not a Python: only take a real python.
    if exe.name.lower().startswith("python") and exe.is_file():
        out.append(str(exe))
    for name in ("python3", "python"):
        found = shutil.which(name)
        if found:
            out.append(found)
    seen: list[str] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def default_python(repo_root: Path | None = None) -> str:
    """A sensible default interpreter for training (the first candidate), or ``python3``."""
    cands = candidate_pythons(repo_root)
    return cands[0] if cands else "python3"


_PROBE = ("import json, sys\n"
          "info = {'python': sys.version.split()[0], 'executable': sys.executable}\n"
          "try:\n"
          "    import torch\n"
          "    info['torch'] = torch.__version__\n"
          # what the user may train on besides the CPU (shown when the interpreter is checked)
          "    info['cuda'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''\n"
          "    mps = getattr(torch.backends, 'mps', None)\n"
          "    info['mps'] = bool(mps is not None and mps.is_available())\n"
          "except Exception as exc:\n"
          "    info['error'] = f'{type(exc).__name__}: {exc}'\n"
          "info['missing'] = []\n"
          "for name in ('onnx', 'osgeo.gdal', 'osgeo.gdal_array'):\n"  # onnx writes the model; GDAL reads rasters
          "    try:\n"
          "        __import__(name)\n"
          "    except Exception:\n"
          "        info['missing'].append(name)\n"
          "print(json.dumps(info))\n")


def check_python(python: str, timeout: float = 120.0) -> dict[str, Any]:
    """Check that ``python`` runs and imports torch, onnx and GDAL, in a subprocess (PyTorch never
    loads in QGIS). Returns ``python`` and ``torch`` (versions), ``executable``, ``cuda`` (the GPU's
    name, '' without CUDA) and ``mps`` (Apple GPU, bool); raises :class:`TrainingEnvironmentError`
    with install help."""
    python = str(python or "").strip()
    if not python:
        raise TrainingEnvironmentError("No Python interpreter is set for training. " + setup_steps())
    resolved = shutil.which(python) or (python if Path(python).is_file() else None)
    if resolved is None:
        raise TrainingEnvironmentError(
            f"The Python interpreter {python!r} for training was not found. " + setup_steps())
    try:
        proc = subprocess.run([resolved, "-c", _PROBE], capture_output=True, text=True, timeout=timeout,
                              env=child_environment(None))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TrainingEnvironmentError(f"Could not run the Python interpreter {python!r} ({exc}). "
                                       "Choose another interpreter in the SINR training settings.") from None
    info: dict[str, str] = {}
    for line in proc.stdout.splitlines()[::-1]:
        with contextlib.suppress(ValueError):
            info = json.loads(line)
            break
    if not info:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise TrainingEnvironmentError(f"{python!r} did not run as a Python 3 interpreter ({tail or 'no output'}). "
                                       "Choose a Python 3 executable in the SINR training settings.")
    if "torch" not in info:
        raise TrainingEnvironmentError(
            f"PyTorch is missing: the Python interpreter {python} (Python {info.get('python', '?')}) cannot "
            f"import torch ({info.get('error', 'unknown error')}). " + setup_steps(python))
    missing = [m for m in info.get("missing") or [] if m in _NEEDED_WITH_TORCH]
    if "osgeo.gdal" in missing and "osgeo.gdal_array" in missing:
        missing.remove("osgeo.gdal_array")  # no GDAL at all: that one message says it
    if missing:
        raise TrainingEnvironmentError(
            f"The Python interpreter {python} has PyTorch but lacks "
            + " and ".join(_NEEDED_WITH_TORCH[m] for m in missing) + ", which training needs. "
            + (f"Install it: `{python} -m pip install onnx \"numpy<2\"`. " if "onnx" in missing else "")
            + ("Choose QGIS's own Python, which has GDAL, or install GDAL's Python bindings there. "
               if "osgeo.gdal" in missing else "")
            + (f"Install the numpy its GDAL was built for (usually `{python} -m pip install \"numpy<2\"`), or "
               "click 'Set up PyTorch for me', whose environment keeps QGIS's own numpy. "
               if "osgeo.gdal_array" in missing else ""))
    return info


def describe_python(python: str, info: dict[str, Any]) -> str:
    """One line for the user from :func:`check_python`'s answer: versions and GPUs."""
    gpu = f"CUDA: {info['cuda']}" if info.get("cuda") else "CUDA: no"
    return (f"{python}: Python {info.get('python', '?')}, torch {info.get('torch', '?')}, {gpu}, "
            f"Apple MPS: {'yes' if info.get('mps') else 'no'}")


def check_training_available(python: str) -> dict[str, Any]:
    """Raise :class:`TrainingEnvironmentError`, saying how to set it up on this system, unless
    training can run here: the training code is next to the plugin and ``python`` has PyTorch,
    onnx and GDAL. Returns :func:`check_python`'s versions. Takes seconds (the probe imports torch).
    When both are missing, the message says both."""
    problems = []
    info: dict[str, str] = {}
    for check in (training_root, lambda: info.update(check_python(python))):
        try:
            check()
        except TrainingEnvironmentError as exc:
            problems.append(str(exc))
    if problems:
        raise TrainingEnvironmentError(" Also: ".join(problems))
    return info


# ---- one output at a time --------------------------------------------------------------------
_RUNNING: set[str] = set()
_RUNNING_LOCK = threading.Lock()
# The plugin holds an output's lock while its training child runs; the child (the same CLI that
# takes the lock when run by hand) finds the token of the lock file in this variable and works
# under its parent's lock instead of refusing it.
LOCK_TOKENS_ENV = "SINR_OUTPUT_LOCK_TOKENS"
_HELD_TOKENS: dict[str, str] = {}  # lock file -> token, locks this process holds
_NEW_LOCK_GRACE_S = 5.0  # an empty lock file this young is being written by its owner


def lock_path(out: str | Path) -> Path:
    p = Path(out)
    return p.with_name(f".{p.name}.lock")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _lock_owner(lp: Path) -> dict[str, Any] | None:
    """The live owner recorded in lock file ``lp`` (pid, host, started, token), or ``None`` when
    the file is absent or stale (its process ended on this machine)."""
    try:
        text = lp.read_text(encoding="utf-8")
        age = time.time() - lp.stat().st_mtime
    except OSError:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    if not isinstance(info, dict):  # being written right now, or garbage left by a crash
        return {"pid": "?", "started": "just now"} if age < _NEW_LOCK_GRACE_S else None
    if info.get("host", socket.gethostname()) != socket.gethostname():
        return info  # a process on another machine (shared folder): its pid cannot be checked here
    try:
        pid = int(info.get("pid", -1))
    except (TypeError, ValueError):
        return None
    return info if _pid_alive(pid) else None


def _busy_text(out: str | Path, info: dict[str, Any] | None = None) -> str:
    who = (f" (process {info.get('pid')}" + (f" on {info['host']}" if info.get("host") not in
                                             (None, socket.gethostname()) else "")
           + f", started {info.get('started', '?')})") if info else ""
    text = (f"A training is already writing {Path(out).name}{who}. Wait for it to finish or cancel it, "
            "or choose another output file.")
    return text + (f" If no training is running, delete {lock_path(out)}." if info else "")


def inherited_lock_tokens() -> set[str]:
    """Tokens of the locks the parent process holds for this one (:data:`LOCK_TOKENS_ENV`)."""
    return {t for t in os.environ.get(LOCK_TOKENS_ENV, "").split(",") if t}


def output_busy_message(out: str | Path, inherited: set[str] | frozenset[str] = frozenset()) -> str | None:
    """Why ``out`` cannot be trained now (another training writes it), or ``None`` if it is free.

    ``inherited``: lock tokens handed down by a parent that holds the lock for this process."""
    key = str(Path(out).resolve())
    with _RUNNING_LOCK:
        if key in _RUNNING:
            return _busy_text(out)
    info = _lock_owner(lock_path(out))
    if info is None or info.get("token") in inherited:
        return None
    return _busy_text(out, info)


@contextlib.contextmanager
def output_lock(out: str | Path, inherited: set[str] | frozenset[str] = frozenset()) -> Iterator[Path]:
    """Hold ``out`` for this training: refused with :class:`OutputBusyError` while another process
    (the plugin, or the CLI run by hand) or thread holds it. The lock file is created exclusively,
    so of two trainings started at once one refuses. With a token of the current lock in
    ``inherited`` (a child of the holder, see :func:`inherited_lock_tokens`) the parent's lock is
    used as it is. Child processes started meanwhile get this lock's token (:func:`child_environment`)."""
    key = str(Path(out).resolve())
    lp = lock_path(out)
    with _RUNNING_LOCK:
        if key in _RUNNING:
            raise OutputBusyError(_busy_text(out))
        _RUNNING.add(key)
    created = False
    try:
        info = _lock_owner(lp)
        if info is not None and info.get("token") in inherited:
            yield lp  # the parent's lock; it removes the file
            return
        token = uuid.uuid4().hex
        created = _create_lock(lp, token)
        if not created and _lock_owner(lp) is not None:
            raise OutputBusyError(_busy_text(out, _lock_owner(lp)))
        if created:
            _HELD_TOKENS[str(lp)] = token
        yield lp
    finally:
        if created:
            _HELD_TOKENS.pop(str(lp), None)
            with contextlib.suppress(OSError):
                lp.unlink()
        with _RUNNING_LOCK:
            _RUNNING.discard(key)


def _create_lock(lp: Path, token: str) -> bool:
    """Create ``lp`` exclusively with this process as owner; a stale lock (its process ended) is
    replaced. False when a live owner holds it, or the folder refuses files (the output check reports
    that)."""
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": _now(), "token": token})
    for _attempt in range(2):
        try:
            fd = os.open(lp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _lock_owner(lp) is not None:
                return False
            with contextlib.suppress(OSError):
                lp.unlink()  # stale: its process ended
            continue
        except OSError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(record)
        return True
    return False


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def remove_partial_outputs(out: str | Path) -> list[Path]:
    """Delete temporary ``.part`` files a killed writer left beside ``out`` (never ``out`` itself)."""
    p = Path(out)
    removed = []
    if p.parent.is_dir():
        for tmp in p.parent.glob(f".{p.name}.*.part*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


# ---- the child process -----------------------------------------------------------------------
class TrainingProcess:
    """One running child: JSON lines from stdout, a bounded stderr tail, group-wide stop."""

    def __init__(self, command: list[str], cwd: str | Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.env = env
        self.proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=200)
        self._threads: list[threading.Thread] = []
        self.other_output: deque[str] = deque(maxlen=50)  # non-JSON lines on stdout

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # own process group: a cancel reaches every descendant
        else:
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(
                subprocess, "CREATE_NO_WINDOW", 0)
        try:
            self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         encoding="utf-8", errors="replace", bufsize=1, **kwargs)
        except OSError as exc:
            raise TrainingEnvironmentError(f"Could not start the training process {self.command[0]!r}: {exc}. "
                                           "Check the Python interpreter in the SINR training settings.") from None
        out = threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True)
        err = threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True)
        self._threads = [out, err]
        out.start()
        err.start()

    def _pump(self, stream: Any, is_stdout: bool) -> None:
        try:
            for line in stream:
                if is_stdout:
                    self._lines.put(line)
                else:
                    self._stderr.append(line.rstrip("\n"))
        except (OSError, ValueError):
            pass
        finally:
            # the pipe is done with: close it here, or it stays open until garbage collection
            # (a ResourceWarning on the command line)
            with contextlib.suppress(OSError):
                stream.close()
            if is_stdout:
                self._lines.put(None)

    def events(self, is_cancelled: Callable[[], bool] | None = None,
               poll_s: float = 0.1) -> Iterator[dict[str, Any]]:
        """JSON events as they come; raises :class:`CancelledError` (after stopping) on cancel."""
        while True:
            if is_cancelled is not None and is_cancelled():
                self.stop()
                raise CancelledError("Training was cancelled; no model was written.")
            try:
                line = self._lines.get(timeout=poll_s)
            except queue.Empty:
                continue
            if line is None:
                return
            text = line.strip()
            if not text:
                continue
            try:
                event = json.loads(text)
            except ValueError:
                self.other_output.append(text)
                continue
            if isinstance(event, dict):
                yield event
            else:
                self.other_output.append(text)

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(timeout=2.0)
        return rc

    def wait_cancellable(self, is_cancelled: Callable[[], bool] | None = None, poll_s: float = 0.2) -> int:
        """Wait for the exit status, still honouring a cancel (raises :class:`CancelledError`)."""
        assert self.proc is not None
        while True:
            try:
                return self.wait(poll_s)
            except subprocess.TimeoutExpired:
                if is_cancelled is not None and is_cancelled():
                    self.stop()
                    raise CancelledError("Training was cancelled; no model was written.") from None

    def stderr_tail(self, n: int = STDERR_TAIL_LINES) -> str:
        return "\n".join(list(self._stderr)[-n:])

    def last_error_line(self) -> str:
        for line in reversed(self._stderr):
            if line.strip():
                return line.strip()
        return ""

    def stop(self, grace_s: float | None = None) -> None:
        """Terminate the child and its process group; kill whatever is left after ``grace_s``."""
        if self.proc is None:
            return
        grace_s = TERM_GRACE_S if grace_s is None else grace_s
        self._signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(grace_s)
        # SIGKILL the group even when the leader has exited: a grandchild may have ignored SIGTERM
        self._signal(getattr(signal, "SIGKILL", signal.SIGTERM))
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(grace_s)
        for t in self._threads:
            t.join(timeout=1.0)

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        if os.name == "posix":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)  # pgid == pid: start_new_session made it the leader
        elif self.proc.poll() is None:
            with contextlib.suppress(OSError):
                if sig == signal.SIGTERM:
                    self.proc.terminate()
                else:
                    self.proc.kill()


# ---- one training run ------------------------------------------------------------------------
@dataclass
class TrainResult:
    """A finished training: the bundle path, the CLI's ``done`` event and the wall time."""

    path: Path
    done: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    pid: int | None = None
    start: dict[str, Any] = field(default_factory=dict)  # the CLI's ``start`` event
    provenance: dict[str, Any] = field(default_factory=dict)  # the bundle's ``data`` section

    def summary(self) -> str:
        """One paragraph for the log: records used/dropped, species, final loss, time."""
        return training_summary({**self.start, **self.done}, self.path, self.seconds, self.provenance)


def _fmt_duration(seconds: float) -> str:
    seconds = round(float(seconds))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def training_summary(done: dict[str, Any], path: str | Path, seconds: float,
                     provenance: dict[str, Any] | None = None) -> str:
    """Human summary of the CLI's events and the bundle's data provenance (missing keys are left out)."""
    prov = provenance or {}
    used = prov.get("n_used", done.get("n_records"))
    species = done.get("n_species", prov.get("n_species"))
    loss = done.get("final_loss")
    epochs = done.get("epochs")
    secs = done.get("elapsed_s", seconds)
    parts = []
    if species is not None:
        parts.append(f"{species:,} species")
    if used is not None:
        parts.append(f"{used:,} records used" + (f" of {prov['n_read']:,} read" if "n_read" in prov else ""))
    if epochs is not None:
        parts.append(f"{epochs} epochs")
    if isinstance(loss, (int, float)) and math.isfinite(loss):
        parts.append(f"final loss {loss:.4f}")
    parts.append(f"time {_fmt_duration(secs or 0)}")
    text = f"Trained {Path(path).name}: " + ", ".join(parts)
    dropped = []
    unusable = {k: int(v) for k, v in (prov.get("dropped") or {}).items() if v}
    if unusable:
        dropped.append(f"{sum(unusable.values()):,} unusable rows ("
                       + ", ".join(f"{v:,} {drop_reason_text(k)}" for k, v in unusable.items()) + ")")
    for key, what in (("n_removed_by_thinning", "by thinning"),
                      ("n_removed_below_min_records", "of species below the minimum records"),
                      ("n_removed_no_covariates", "without covariate values"),
                      ("n_removed_by_cap", "over the per-species cap")):
        if prov.get(key):
            dropped.append(f"{int(prov[key]):,} {what}")
    if dropped:
        text += "; dropped " + ", ".join(dropped)
    elif prov:
        text += "; no records dropped"
    if prov.get("n_species_no_covariates"):
        text += f"; {int(prov['n_species_no_covariates']):,} species had no record with covariate values"
    if prov.get("n_random_absences"):  # a covariate model's absences lie where every covariate has a value
        text += (f"; {int(prov['n_random_absences']):,} random absences drawn where every covariate has a value "
                 f"({int(prov.get('n_random_redrawn_no_covariates', 0)):,} random points without one drawn again)")
    return text + "."


def _missing_module(stderr: str) -> str | None:
    """The top-level module a child could not import (``No module named 'torch'``), if that is why it died."""
    marker = "No module named "
    for line in reversed(stderr.splitlines()):
        if "ModuleNotFoundError" in line and marker in line:
            return line.split(marker, 1)[1].strip().strip("'\"").split(".")[0] or None
    return None


def bundle_provenance(path: str | Path) -> dict[str, Any]:
    """The ``data`` section of a bundle's model.json (records read, used, dropped); ``{}`` if unreadable."""
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("model.json").decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}
    data = meta.get("data") if isinstance(meta, dict) else None
    return data if isinstance(data, dict) else {}


def event_progress(event: dict[str, Any]) -> float | None:
    """Percent done (0-100) of a progress event (``progress`` is 0..1), or ``None`` when it carries none."""
    p = event.get("progress")
    if isinstance(p, (int, float)) and math.isfinite(p):
        return max(0.0, min(100.0, 100.0 * float(p)))
    step, total = event.get("step"), event.get("steps_total")
    if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
        return max(0.0, min(100.0, 100.0 * step / total))
    return None


def run_training(opts: TrainOptions, python: str, *,
                 on_event: Callable[[dict[str, Any]], None] | None = None,
                 on_progress: Callable[[float], None] | None = None,
                 is_cancelled: Callable[[], bool] | None = None,
                 on_start: Callable[[TrainingProcess], None] | None = None,
                 on_log: Callable[[str], None] | None = None,
                 check_input: bool = False, input_label: str | None = None, species_label: str = "species",
                 entry: list[str] | None = None, cwd: str | Path | None = None) -> TrainResult:
    """Train ``opts`` in a child process and return the written bundle's path and summary.

    With ``check_input`` the observation file (and covariates) are checked first, so bad data
    fails in seconds (``input_label`` and ``species_label`` name them in messages).
    ``entry`` and ``cwd`` replace ``-m training`` and the repository root (tests use a fake CLI).
    Raises :class:`CancelledError`, :class:`TrainingInputError`, :class:`TrainingCrashError`,
    :class:`OutputBusyError`, :class:`TrainingEnvironmentError`, or the checks' ``OccurrenceError``
    and ``CovariateError``; never leaves a partial bundle under the final name.
    """
    opts.check()
    busy = output_busy_message(opts.out)
    if busy:
        raise OutputBusyError(busy)
    root = Path(cwd) if cwd is not None else training_root()
    if check_input:
        from .train_checks import check_training_input

        summary = check_training_input(
            opts.data, min_records=opts.min_records or 1, covariates=opts.covariates or (),
            species_column=opts.species_column, lat_column=opts.lat_column, lon_column=opts.lon_column,
            source_column=opts.source_column, species_label=species_label, origin=input_label)
        if on_log is not None:
            on_log(summary.text())
    if is_cancelled is not None and is_cancelled():
        raise CancelledError("Training was cancelled; no model was written.")
    started = time.monotonic()
    with output_lock(opts.out):
        proc = TrainingProcess(build_command(python, opts, entry), cwd=root, env=child_environment(root))
        proc.start()
        if on_start is not None:
            on_start(proc)
        done: dict[str, Any] | None = None
        start: dict[str, Any] = {}
        error_event: dict[str, Any] | None = None
        try:
            for event in proc.events(is_cancelled):
                kind = event.get("event")
                if kind == "done":
                    done = event
                elif kind == "start":
                    start = event
                elif kind == "error":
                    error_event = event
                if on_event is not None:
                    on_event(event)
                pct = event_progress(event)
                if pct is not None and on_progress is not None:
                    on_progress(pct)
            rc = proc.wait_cancellable(is_cancelled)  # stdout closed: the child is exiting
        except BaseException:
            proc.stop()
            remove_partial_outputs(opts.out)
            raise
        if rc != 0 or done is None:
            remove_partial_outputs(opts.out)
            if error_event is not None and error_event.get("message"):
                raise (TrainingInputError if rc == 2 else TrainingCrashError)(str(error_event["message"]))
            if rc == 2:
                line = proc.last_error_line()
                raise TrainingInputError(line.removeprefix("error: ") or "The training CLI refused its input.")
            missing = _missing_module(proc.stderr_tail())
            if missing:
                how = (setup_steps(python) if missing == "torch" else
                       f"Install it for that interpreter: `{python} -m pip install {missing}`.")
                raise TrainingEnvironmentError(f"The Python interpreter {python} cannot import {missing!r}, "
                                               f"which training needs. {how}")
            if rc is not None and rc < 0:
                why = f"was killed by signal {-rc}"
            else:
                why = f"exited with status {rc}" if rc != 0 else "ended without reporting a finished model"
            tail = proc.stderr_tail() or "\n".join(proc.other_output) or "(no error output)"
            raise TrainingCrashError(f"The training process {why}. Last lines of its error output:\n{tail}")
        path = Path(str(done.get("path") or done.get("out") or opts.out))
        if not path.is_file():
            raise TrainingCrashError(f"The training process reported success but {path} does not exist.\n"
                                     + proc.stderr_tail())
        return TrainResult(path=path, done=done, seconds=time.monotonic() - started, pid=proc.pid, start=start,
                           provenance=bundle_provenance(path))
