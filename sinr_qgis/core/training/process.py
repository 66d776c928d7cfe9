"""The training child: its command, its environment, and the process that runs it.

The plugin starts the project's training CLI (``python -m training train ... --jsonl``) with an
interpreter that has torch, reads its JSON lines (:mod:`.events`) and stops it on cancel: SIGTERM
to the child's whole process group, then SIGKILL after a grace period, so no worker or grandchild
survives (on Windows: terminate, then kill). Pure Python (no qgis, no torch).
"""
from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CancelledError, TrainingEnvironmentError
from ..resources import PLUGIN_DIR
from ..train_setup import README_INSTALL, TrainingCode, training_code
from .events import read_event
from .lock import LOCK_TOKENS_ENV, held_lock_tokens
from .options import TrainOptions

TERM_GRACE_S = 5.0
STDERR_TAIL_LINES = 20
CANCELLED = "Training was cancelled; no model was written."


def cli_arguments(opts: TrainOptions) -> list[str]:
    """``train`` and its flags for ``opts`` (always ``--jsonl``: the supervisor reads JSON lines)."""
    args = ["train", "--data", str(opts.data), "--out", str(opts.out), "--loss", opts.loss]
    flags = (("cap", "--cap"), ("epochs", "--epochs"), ("batch_size", "--batch-size"),
             ("width", "--width"), ("depth", "--depth"), ("seed", "--seed"),
             ("min_records", "--min-records"), ("encoding", "--encoding"),
             ("species_column", "--species-column"),
             ("lat_column", "--lat-column"), ("lon_column", "--lon-column"),
             ("source_column", "--source-column"), ("name", "--name"), ("threads", "--threads"),
             ("pos_weight", "--pos-weight"), ("negatives", "--negatives"),
             ("pseudo_negatives", "--pseudo-negatives"))
    for key, flag in flags:
        v = getattr(opts, key)
        if v is not None and v != "":
            args += [flag, str(v)]
    if opts.covariates:
        args += ["--covariates", *[str(c) for c in opts.covariates]]
    if opts.categorical:
        args += ["--categorical", *[str(c) for c in opts.categorical]]
    # one JSON line per step drives the progress bar; no text progress bar to fill the stderr tail
    args += ["--jsonl", "--jsonl-every", "1", "--no-progress"]
    if opts.resume:
        args.append("--resume")
    if opts.local_evidence:
        args.append("--local-evidence")
    return args


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


@dataclass(frozen=True)
class TrainingCli:
    """What the training child runs: the plugin's training code (the default), or a stand-in.

    ``script``: the arguments that replace ``-m training`` (a test's fake CLI and its flags);
    ``folder``: where the child runs and what its ``PYTHONPATH`` starts with (default: the
    training code's folder, :func:`training_root`).
    """

    script: tuple[str, ...] = ()
    folder: Path | None = None

    def command(self, python: str, opts: TrainOptions) -> list[str]:
        """The child's argv: ``python -u -m training train ...`` (or ``python -u SCRIPT... train ...``);
        raises :class:`TrainingEnvironmentError` when the plugin has no training code."""
        head = list(self.script) if self.script else ["-m", _training_code().module]
        return [str(python), "-u", *head, *cli_arguments(opts)]

    def working_folder(self) -> Path:
        """The folder the child runs in (see ``folder``)."""
        return Path(self.folder) if self.folder is not None else training_root()


PLUGIN_CLI = TrainingCli()  # ``python -m training`` from the plugin's own training code


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
    env[LOCK_TOKENS_ENV] = ",".join(held_lock_tokens())
    return env


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
        """The child's process id once started, else ``None``."""
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        """Start the child in its own process group, with threads that read its stdout and stderr;
        raises :class:`TrainingEnvironmentError` when it cannot be started."""
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
                raise CancelledError(CANCELLED)
            try:
                line = self._lines.get(timeout=poll_s)
            except queue.Empty:
                continue
            if line is None:
                return
            text = line.strip()
            if not text:
                continue
            event = read_event(text)
            if event is None:
                self.other_output.append(text)
            else:
                yield event

    def wait(self, timeout: float | None = None) -> int:
        """The exit status, waiting up to ``timeout`` s (``subprocess.TimeoutExpired`` after it)."""
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
                    raise CancelledError(CANCELLED) from None

    def stderr_tail(self, n: int = STDERR_TAIL_LINES) -> str:
        """The last ``n`` lines of the child's stderr."""
        return "\n".join(list(self._stderr)[-n:])

    def last_error_line(self) -> str:
        """The last non-blank line of the child's stderr (the CLI's ``error: ...``), or ``""``."""
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




def missing_module(stderr: str) -> str | None:
    """The top-level module a child could not import (``No module named 'torch'``), if that is why it died."""
    marker = "No module named "
    for line in reversed(stderr.splitlines()):
        if "ModuleNotFoundError" in line and marker in line:
            return line.split(marker, 1)[1].strip().strip("'\"").split(".")[0] or None
    return None


