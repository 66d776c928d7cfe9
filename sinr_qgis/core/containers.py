"""Where an observation table sits: a plain or compressed file, a zip or tar archive, or a folder
(an unzipped Darwin Core Archive). What archivers and operating systems put beside the data
(``__MACOSX/`` resource forks, ``._*`` and other hidden files, ``.DS_Store``, ``Thumbs.db``,
``desktop.ini``, folder entries) is never taken for data. Formats that hold tables but are not
text (7-Zip, RAR, Excel, OpenDocument, Parquet, GeoPackage, shapefile) are refused with what to
do instead of a parse error. stdlib only.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import posixpath
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from .errors import OccurrenceError

# Errors of a damaged or truncated file, whatever the container or compression.
DAMAGED = (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError)
_CLUTTER_NAMES = {"thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"}
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_SAVE_AS_CSV = "save the sheet as CSV (File > Save As > CSV UTF-8) and choose that file"
_LAYER_INSTEAD = "load it in QGIS and train from the layer, or export the layer as CSV"
_MAGIC_REFUSALS = (
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract it and choose the table inside, or pack it as .zip"),
    (b"Rar!\x1a\x07", "a RAR archive", "extract it and choose the table inside, or pack it as .zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)", _SAVE_AS_CSV),
    (b"PAR1", "a Parquet file", "convert it to CSV, or download the data as CSV (e.g. GBIF's Simple format)"),
    (b"SQLite format 3\x00", "a GeoPackage or SQLite database", _LAYER_INSTEAD),
    (b"\x00\x00\x27\x0a", "a shapefile", _LAYER_INSTEAD),
)


def is_clutter(member: str) -> bool:
    """Whether an archive member is something archivers or operating systems added, not data."""
    if member.endswith("/"):
        return True
    parts = member.split("/")
    name = parts[-1]
    return "__MACOSX" in parts or name.startswith(".") or name.lower() in _CLUTTER_NAMES or not name


def refuse_other_formats(head: bytes, label: str) -> None:
    """Raise a clear :class:`OccurrenceError` for a binary table format ``head`` (first bytes) shows."""
    for magic, what, todo in _MAGIC_REFUSALS:
        if head.startswith(magic):
            raise OccurrenceError(f"{label} is {what}, not a text table; {todo}.")


def refuse_packaged_formats(container: Container, label: str) -> None:
    """Raise for a zip that is an Excel (.xlsx) or OpenDocument spreadsheet, or holds Parquet files."""
    files = container.files()
    if "[Content_Types].xml" in files and any(f.startswith("xl/") for f in files):
        raise OccurrenceError(f"{label} is an Excel workbook (.xlsx), not a text table; {_SAVE_AS_CSV}.")
    if "mimetype" in files and b"opendocument.spreadsheet" in container.read("mimetype")[:100]:
        raise OccurrenceError(f"{label} is an OpenDocument spreadsheet (.ods), not a text table; {_SAVE_AS_CSV}.")
    if any(f.endswith(".parquet") or ".parquet/" in f for f in files):
        raise OccurrenceError(
            f"{label} holds Parquet files, not text tables; convert them to CSV, or download the data as CSV "
            "(e.g. GBIF's Simple format)."
        )


class Container:
    """Files inside a zip, a tar or a folder, by posix path relative to its root."""

    kind = "archive"  # what messages call it

    def files(self) -> list[str]:
        """The data files (clutter left out), sorted."""
        raise NotImplementedError

    def open(self, member: str) -> IO[bytes]:
        raise NotImplementedError

    def find(self, member: str) -> str | None:
        """``member`` as stored, matched exactly or else case-insensitively; None if absent."""
        files = self.files()
        if member in files:
            return member
        return next((f for f in files if f.lower() == member.lower()), None)

    def read(self, member: str) -> bytes:
        with self.open(member) as f:
            return f.read()

    def close(self) -> None:
        """Release the archive (nothing to do for a folder)."""

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ZipContainer(Container):
    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path)
        self._files = sorted(m for m in self._zip.namelist() if not is_clutter(m))

    def files(self) -> list[str]:
        return self._files

    def open(self, member: str) -> IO[bytes]:
        return self._zip.open(member)

    def close(self) -> None:
        self._zip.close()


class TarContainer(Container):
    def __init__(self, path: Path) -> None:
        self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by close(), as a Container)
        self._members = {
            posixpath.normpath(m.name): m for m in self._tar.getmembers() if m.isfile() and not is_clutter(m.name)
        }

    def files(self) -> list[str]:
        return sorted(self._members)

    def open(self, member: str) -> IO[bytes]:
        f = self._tar.extractfile(self._members[member])
        if f is None:  # not a regular file; files() lists regular files only
            raise OccurrenceError(f"{member} is not a regular file in the archive.")
        return f

    def close(self) -> None:
        self._tar.close()


class FolderContainer(Container):
    """A folder's own files (not its subfolders': they are read only when meta.xml names them)."""

    kind = "folder"

    def __init__(self, path: Path) -> None:
        self._root = path
        self._files = sorted(p.name for p in path.iterdir() if p.is_file() and not is_clutter(p.name))

    def files(self) -> list[str]:
        return self._files

    def find(self, member: str) -> str | None:
        return member if (self._root / member).is_file() else super().find(member)

    def open(self, member: str) -> IO[bytes]:
        return (self._root / member).open("rb")


def is_tar(path: Path, head: bytes) -> bool:
    """A tar archive, plain or compressed (by its name, or by the ustar mark inside)."""
    if path.name.lower().endswith(_TAR_SUFFIXES) or head[257:262] == b"ustar":
        return True
    if not head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ")):
        return False
    try:
        with decompressed(path, head) as f:
            return f.read(512)[257:262] == b"ustar"
    except DAMAGED:
        return False  # the caller reads it and reports the damage


def decompressed(path: Path, head: bytes) -> IO[bytes]:
    """The file's bytes, through gzip, bzip2 or xz when its first bytes say so."""
    if head.startswith(b"\x1f\x8b"):
        return gzip.open(path, "rb")
    if head.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if head.startswith(b"\xfd7zXZ"):
        return lzma.open(path, "rb")
    return path.open("rb")
