"""Where model files come from and go to in QGIS: the file dialogs' filters, the user's models folder.

Shared by the Processing algorithms and the dock's dialogs, so both offer the same files and keep
a model meant to last out of QGIS's temporary folder the same way.
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication

from ..core.bundle import EXTENSION
from ..core.file_names import safe_file_stem

MODEL_FILTER = f"SINR model (*{EXTENSION})"
CHECKPOINT_FILTER = "PyTorch checkpoint (*.pt *.pth *.tar);;All files (*)"
TAXA_FILTER = "Names table (*.txt *.csv *.tsv *.json *.gz *.zip);;All files (*)"


def models_folder() -> Path:
    """Where a model trained to a temporary output is kept: ``<QGIS profile>/sinr_qgis/models``."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "sinr_qgis" / "models"


def lasting_model_path(name: str) -> Path:
    """A new ``.sinr`` path named after ``name`` in :func:`models_folder` (created), never an
    existing file's."""
    folder = models_folder()
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_file_stem(name, fallback="model")
    path, n = folder / f"{stem}{EXTENSION}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}_{n}{EXTENSION}"
    return path


def in_folder(path: str, folder: str) -> bool:
    """Whether ``path`` lies inside ``folder`` (both resolved); False for an empty folder or an
    unresolvable path."""
    try:
        return bool(folder) and Path(path).resolve().is_relative_to(Path(folder).resolve())
    except OSError:
        return False
