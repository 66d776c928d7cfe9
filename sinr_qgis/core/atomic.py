"""Atomic file writing: a crash or a cancel never leaves a half-written file under the final name."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, with a clear message, when ``path`` cannot be written."""
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"Cannot write {p}: folder {folder} does not exist. Choose an existing folder.")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"Cannot write {p}: folder {folder} is not writable. Choose another folder.")
    if p.is_dir():
        raise OutputError(f"Cannot write {p}: it is a folder. Give a file name.")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    final = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part" + final.suffix,
                               dir=final.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); results are ordinary readable files
        # (a fixed mode: reading the umask means changing it, which is not thread-safe)
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def remove_partial_outputs(out: str | os.PathLike) -> list[Path]:
    """Delete the temporary ``.part`` files (:func:`atomic_path`'s names) a killed writer left beside
    ``out``, never ``out`` itself; returns the files removed."""
    p = Path(out)
    removed = []
    if p.parent.is_dir():
        for tmp in p.parent.glob(f".{p.name}.*.part*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed
