"""One training per output at a time: a lock file beside the bundle, shared by the plugin and the CLI.

The plugin holds an output's lock while its training child runs; the child (the same CLI that
takes the lock when run by hand) finds the lock's token in :data:`LOCK_TOKENS_ENV` and works
under its parent's lock instead of refusing it. A lock whose process ended is stale and replaced.
Pure Python.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import OutputBusyError

_RUNNING: set[str] = set()
_RUNNING_LOCK = threading.Lock()
LOCK_TOKENS_ENV = "SINR_OUTPUT_LOCK_TOKENS"  # the lock tokens a parent hands its child (see above)
_HELD_TOKENS: dict[str, str] = {}  # lock file -> token, locks this process holds
_NEW_LOCK_GRACE_S = 5.0  # an empty lock file this young is being written by its owner


def lock_path(out: str | Path) -> Path:
    """The lock file of the bundle ``out``: ``.OUT.lock`` beside it."""
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


def busy_message(out: str | Path, holder: str = "", stale_lock: Path | None = None) -> str:
    """The one wording of "a training is writing ``out``", for each layer that refuses a second one
    (the task manager's queue, this process, the lock file of any process).

    ``holder`` says who, when known (a task's description, a process id); ``stale_lock`` is the lock
    file to delete should no training be running after all."""
    text = (f"A training is already writing {Path(out).name}{f' ({holder})' if holder else ''}. Wait for it "
            "to finish or cancel it, or choose another output file.")
    return text + (f" If no training is running, delete {stale_lock}." if stale_lock is not None else "")


def _busy_text(out: str | Path, info: dict[str, Any] | None = None) -> str:
    """:func:`busy_message` for the owner ``info`` recorded in the lock file (None: this process)."""
    if not info:
        return busy_message(out)
    host = f" on {info['host']}" if info.get("host") not in (None, socket.gethostname()) else ""
    return busy_message(out, f"process {info.get('pid')}{host}, started {info.get('started', '?')}", lock_path(out))


def held_lock_tokens() -> list[str]:
    """Tokens of the locks this process holds, for the environment of the children it starts."""
    return list(_HELD_TOKENS.values())


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
    used as it is. Child processes started meanwhile get this lock's token
    (:func:`~sinr_qgis.core.training.process.child_environment`)."""
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
