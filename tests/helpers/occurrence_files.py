"""Small occurrence files written into tmp_path (nothing binary is committed) and a look at drops."""
from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

from sinr_qgis.core.occurrences import DROP_REASONS


def write_text(path: Path, text: str, *, gz: bool = False, bom: bool = False) -> Path:
    data = (("\ufeff" if bom else "") + text).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def nonzero(dropped: dict[str, int]) -> dict[str, int]:
    """The reasons that dropped rows (``Occurrences.dropped`` lists every reason, zeros too)."""
    assert list(dropped) == list(DROP_REASONS)
    return {reason: n for reason, n in dropped.items() if n}
