"""The Python interpreter that runs training (it needs torch; QGIS's own Python usually has none).

Stored under ``sinr_qgis/training/python``; empty means "the default guess" (see
:func:`sinr_qgis.core.train_runner.default_python`: this repository's venv, then a Python on PATH).
"""
from __future__ import annotations

from qgis.core import QgsSettings

from ..core.train_runner import TrainingEnvironmentError, check_training_available, default_python, training_root
from .settings import PREFIX

KEY = PREFIX + "training/python"
# File filter for choosing an interpreter: on Linux and macOS it has no extension (python3), on
# Windows python.exe. "All files (*)", not QGIS's default "*.*", which needs a dot in the name.
INTERPRETER_FILE_FILTER = "Python interpreter (python python3 python3.* python.exe python3.exe);;All files (*)"


def _repo_root():
    try:
        return training_root()
    except TrainingEnvironmentError:
        return None


def default_interpreter() -> str:
    """The guess used when the user has not chosen an interpreter."""
    return default_python(_repo_root())


def training_interpreter() -> str:
    """The interpreter to train with: the user's choice, else the default guess."""
    chosen = str(QgsSettings().value(KEY, "", str) or "").strip()
    return chosen or default_interpreter()


def set_training_interpreter(path: str) -> None:
    """Remember ``path`` (empty string: go back to the default guess)."""
    QgsSettings().setValue(KEY, str(path or "").strip())


def check_training_interpreter(path: str | None = None) -> str:
    """A one-line description of a working interpreter, or ``TrainingEnvironmentError`` saying how
    to fix what is missing (the training code, torch, onnx or GDAL) on this system."""
    python = path or training_interpreter()
    info = check_training_available(python)
    return f"{python}: Python {info.get('python', '?')}, torch {info.get('torch', '?')}"
