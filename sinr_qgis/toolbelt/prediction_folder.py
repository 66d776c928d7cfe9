"""The dock's managed output folder: one per QGIS session, in the system temp folder, kept clean.

Layout: ``<temp>/sinr_qgis_predictions-<user>/session-XXXX/`` holding the dock's GeoTIFFs and a
``session.lock`` file that the owning QGIS keeps locked while it runs. The system temp folder is
used (not the profile) because QGIS itself treats layers there as temporary: the layer tree marks
them and QGIS warns before closing a project that holds them; the plugin also offers to move them
next to a saved project (``gui/temporary_predictions.py``).

The folder is per user (a shared ``/tmp`` must not let one user's folder block another's).
Cleaning never touches anything outside it (never the user's data), nor a file that a layer of
the open project still reads, and a failure to clean is logged, never raised:

- at start, :func:`remove_stale_sessions` deletes the folders of sessions whose lock is free (their
  QGIS has ended or crashed);
- each prediction and unload call :meth:`PredictionFolder.remove_unused`, which deletes this
  session's files that no layer uses (a replaced prediction's old file, a removed layer's file).
"""
from __future__ import annotations

import contextlib
import getpass
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from ..core.errors import OutputError
from ..core.file_names import safe_file_stem

LOG = logging.getLogger("sinr_qgis")
ROOT_NAME = "sinr_qgis_predictions"
LOCK_NAME = "session.lock"
UNLOCKED_GRACE_S = 60.0  # a session folder without a lock file this young may still be starting


def predictions_root() -> Path:
    """``<system temp>/sinr_qgis_predictions-<user>``: where this user's session folders live."""
    try:
        user = safe_file_stem(getpass.getuser(), max_bytes=40)
    except (KeyError, OSError):  # no login name in the environment nor the password database
        user = "user"
    return Path(tempfile.gettempdir()) / f"{ROOT_NAME}-{user}"


def is_managed(path: str | Path, root: Path | None = None) -> bool:
    """True when ``path`` lies inside the managed folder ``root`` (default :func:`predictions_root`)."""
    try:
        Path(path).resolve().relative_to((root or predictions_root()).resolve())
    except (ValueError, OSError):
        return False
    return True


def _lock(handle) -> bool:
    """Lock an open file without waiting; False when another open handle holds it."""
    try:
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _resolved(paths: Iterable[str | Path]) -> set[Path]:
    out = set()
    for p in paths:
        with contextlib.suppress(OSError):
            out.add(Path(p).resolve())
    return out


def _remove_files(folder: Path, keep: set[Path]) -> int:
    """Delete the files of ``folder`` not in ``keep`` (nor the lock); the folder too once empty.
    Returns how many files were deleted; a file the system refuses to delete (open on Windows)
    is left for a later clean-up."""
    removed = 0
    kept_names = {k.name for k in keep if k.parent == folder.resolve()}
    for f in folder.iterdir():
        # sidecars go with their raster: "x.tif.aux.xml" and "x.qml" belong to "x.tif"
        if f.name == LOCK_NAME or f.name in kept_names or any(
                f.name.startswith(k + ".") or f.stem == Path(k).stem for k in kept_names):
            continue
        try:
            shutil.rmtree(f) if f.is_dir() else f.unlink()
            removed += 1
        except OSError as exc:
            LOG.info("Could not delete %s yet: %s", f, exc)
    return removed


def remove_stale_sessions(in_use: Iterable[str | Path] = (), root: Path | None = None) -> int:
    """Delete the folders of sessions that have ended (their lock is free), keeping any file in
    ``in_use`` (the sources of the open project's layers). Returns the number of files deleted."""
    root = root or predictions_root()
    if not root.is_dir():
        return 0
    keep = _resolved(in_use)
    removed = 0
    for folder in root.iterdir():
        try:
            removed += _remove_if_ended(folder, keep)
        except OSError as exc:  # cleaning is a courtesy: it must never stop QGIS from starting
            LOG.info("Could not clean %s: %s", folder, exc)
    return removed


def _remove_if_ended(folder: Path, keep: set[Path]) -> int:
    if not folder.is_dir():
        return 0
    lock = folder / LOCK_NAME
    if lock.is_file():
        with open(lock, "a+b") as handle:
            if not _lock(handle):
                return 0  # a running QGIS owns it
    elif time.time() - folder.stat().st_mtime < UNLOCKED_GRACE_S:
        return 0
    removed = _remove_files(folder, keep)
    if not any(p.name != LOCK_NAME for p in folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)
    return removed


class PredictionFolder:
    """This session's folder for the dock's predictions, created (and locked) on first use."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or predictions_root()
        self._path: Path | None = None
        self._lock_handle = None

    @property
    def path(self) -> Path:
        """The session folder; created with its lock on first access (``OutputError`` if it cannot be)."""
        if self._path is None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                path = Path(tempfile.mkdtemp(prefix="session-", dir=self.root))
                handle = open(path / LOCK_NAME, "a+b")  # noqa: SIM115 (held open for the whole session)
            except OSError as exc:
                raise OutputError(f"Cannot create a folder for the dock's maps in {self.root} ({exc}). "
                                  "Free some disk space or make the system temp folder writable.") from None
            _lock(handle)
            self._path, self._lock_handle = path, handle
        return self._path

    def remove_unused(self, in_use: Iterable[str | Path]) -> int:
        """Delete this session's files that are not in ``in_use``; returns how many were deleted."""
        if self._path is None or not self._path.is_dir():
            return 0
        return _remove_files(self._path, _resolved(in_use))

    def close(self, in_use: Iterable[str | Path]) -> None:
        """Unload: delete the unused files, release the lock, and remove the folder when nothing is left.
        Files still in use stay until a later session finds the lock free."""
        if self._path is None:
            return
        self.remove_unused(in_use)
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None
        if not any(p.name != LOCK_NAME for p in self._path.iterdir()):
            shutil.rmtree(self._path, ignore_errors=True)
        self._path = None
