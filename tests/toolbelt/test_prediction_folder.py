"""The dock's managed output folder: one per session, stale sessions removed, files in use kept."""
from __future__ import annotations

import getpass
import os
import tempfile
import time

import pytest

from sinr_qgis.core.errors import OutputError
from sinr_qgis.toolbelt import prediction_folder
from sinr_qgis.toolbelt.prediction_folder import (
    LOCK_NAME,
    UNLOCKED_GRACE_S,
    PredictionFolder,
    is_managed,
    predictions_root,
    remove_stale_sessions,
)


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_ended_sessions_are_removed_but_running_ones_and_files_in_use_are_kept(tmp_path):
    root = tmp_path / "sinr_qgis_predictions"
    running = PredictionFolder(root)
    _touch(running.path / "1.tif")
    ended = root / "session-ended"  # its QGIS has quit: the lock file is there but nobody holds it
    for name in (LOCK_NAME, "2.tif", "2.tif.aux.xml", "3.tif", "3.qml", "3.tif.aux.xml"):
        _touch(ended / name)
    crashed = root / "session-crashed"  # crashed before writing its lock, long ago
    _touch(crashed / "4.tif")
    old = time.time() - 10 * UNLOCKED_GRACE_S
    os.utime(crashed, (old, old))
    starting = root / "session-starting"  # another QGIS that has just made its folder
    _touch(starting / "5.tif")
    users_file = _touch(tmp_path / "my_range.tif")

    removed = remove_stale_sessions(in_use=[ended / "3.tif", users_file], root=root)

    assert removed == 3  # 2.tif, its .aux.xml and 4.tif
    assert sorted(os.listdir(ended)) == sorted([LOCK_NAME, "3.qml", "3.tif", "3.tif.aux.xml"])  # 3.tif is shown
    assert not crashed.exists()
    assert (starting / "5.tif").is_file() and (running.path / "1.tif").is_file() and users_file.is_file()
    running.close([])


def test_a_session_removes_unused_files_and_on_close_keeps_what_layers_still_show(tmp_path):
    root = tmp_path / "root"
    folder = PredictionFolder(root)
    assert folder.path.parent == root and (folder.path / LOCK_NAME).is_file()
    shown = _touch(folder.path / "2.tif")
    _touch(folder.path / "2.qml")
    _touch(folder.path / "1.tif")  # a replaced map
    _touch(folder.path / "3.tif")  # the map of a layer the user removed
    assert folder.remove_unused([shown]) == 2
    assert sorted(os.listdir(folder.path)) == sorted(["2.qml", "2.tif", LOCK_NAME])
    session = folder.path
    folder.close([shown])
    assert shown.is_file()  # still on the map after unload
    assert remove_stale_sessions([], root) == 2 and not session.exists()  # next start: the lock is free
    empty = PredictionFolder(root)
    session = empty.path
    empty.close([])
    assert not session.exists() and os.listdir(root) == []


def test_only_paths_inside_the_managed_folder_count_as_managed(tmp_path):
    root = tmp_path / "sinr_qgis_predictions"
    assert is_managed(root / "session-1" / "1.tif", root)
    assert not is_managed(root / ".." / "1.tif", root)
    assert not is_managed(tmp_path / "sinr_qgis_predictions_old" / "1.tif", root)
    assert not is_managed("", root)


def test_each_user_has_a_folder_of_their_own(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(getpass, "getuser", lambda: "alice b")
    assert predictions_root() == tmp_path / "sinr_qgis_predictions-alice_b"

    def no_login():
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(getpass, "getuser", no_login)
    assert predictions_root() == tmp_path / "sinr_qgis_predictions-user"


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path):
    blocker = _touch(tmp_path / "not_a_folder")  # fails for root too, unlike permission bits
    folder = PredictionFolder(blocker / "root")
    with pytest.raises(OutputError, match=r"Cannot create a folder for the dock's maps in .*not_a_folder"):
        _ = folder.path


def test_a_folder_that_cannot_be_cleaned_does_not_stop_the_others(tmp_path, monkeypatch):
    root = tmp_path / "root"
    for name in ("session-a", "session-b"):
        _touch(root / name / LOCK_NAME)
        _touch(root / name / "1.tif")
    real = prediction_folder._remove_files

    def refuse_a(folder, keep):
        if folder.name == "session-a":
            raise PermissionError(13, "Permission denied", str(folder))
        return real(folder, keep)

    monkeypatch.setattr(prediction_folder, "_remove_files", refuse_a)
    assert remove_stale_sessions([], root) == 1
    assert (root / "session-a" / "1.tif").is_file() and not (root / "session-b").exists()
