"""The Python interpreter that runs training (it needs torch; QGIS's own Python usually has none).

Stored under ``sinr_qgis/training/python``; empty means "the default guess" (see
:func:`default_interpreter`: the environment "Set up PyTorch for me" made, this repository's venv,
then a Python on PATH).
"""
from __future__ import annotations

from pathlib import Path

from ..core.train_setup import training_code
from ..core.training.interpreter import check_training_available, default_python, describe_python
from .private_packages import training_python_folder
from .settings import get_value, set_value
from .training_python import marked_python, venv_python

# File filter for choosing an interpreter: on Linux and macOS it has no extension (python3), on
# Windows python.exe. "All files (*)", not QGIS's default "*.*", which needs a dot in the name.
INTERPRETER_FILE_FILTER = "Python interpreter (python python3 python3.* python.exe python3.exe);;All files (*)"


def _repo_root() -> Path | None:
    """The repository checkout the plugin runs from (its .venv has torch), or None (an installed zip)."""
    code = training_code()
    return code.path if code is not None and code.module == "training" else None


def default_interpreter() -> str:
    """The guess used when the user has not chosen an interpreter: the environment "Set up
    PyTorch for me" made, else the checkout's venv, else a Python on PATH."""
    made = venv_python(training_python_folder())
    if marked_python(made) is not None:
        return str(made)
    return default_python(_repo_root())


def training_interpreter() -> str:
    """The interpreter to train with: the user's choice, else the default guess."""
    chosen = get_value("training/python").strip()
    return chosen or default_interpreter()


def set_training_interpreter(path: str) -> None:
    """Remember ``path`` (empty string: go back to the default guess)."""
    set_value("training/python", str(path or "").strip())


def check_training_interpreter(path: str | None = None) -> str:
    """A one-line description of a working interpreter (Python and torch versions, CUDA and MPS), or
    ``TrainingEnvironmentError`` saying how to fix what is missing (the training code, torch, onnx or
    GDAL) on this system. Runs ``path`` in a subprocess: seconds."""
    python = path or training_interpreter()
    return describe_python(python, check_training_available(python))
