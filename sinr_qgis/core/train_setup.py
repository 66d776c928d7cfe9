"""Where the training code is, and how to make training available: the one locating function
every caller uses (the training run, the checkpoint importer, Diagnostics) and the steps every
"training is unavailable" message gives (the Train dialog, ``sinr:train_model``, Diagnostics).

The plugin zip carries the training code (``sinr_qgis/training``, pure Python); a checkout has it
at the repository's top level (``training``). PyTorch never runs inside QGIS: a child process runs
the code with a Python interpreter that has PyTorch (and onnx, which writes the model file) and
GDAL (the land mask of the pseudo-absences). "Set up PyTorch for me" (``sinr:setup_training``)
makes such a Python: a private virtual environment built on QGIS's own Python, which has GDAL.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from .resources import PLUGIN_DIR

REPOSITORY = "https://github.com/sinr-qgis/sinr-qgis"
README_INSTALL = REPOSITORY + "#install"
PACKAGES = 'torch onnx "numpy<2"'  # for a manual install into QGIS's Python, whose GDAL needs numpy 1
CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # CPU-only PyTorch wheels: a fraction of the size


@dataclass(frozen=True)
class TrainingCode:
    """Where the training package is and how a child process runs it.

    ``package``: the ``training`` package folder. ``module``: what ``python -m`` runs
    (``training`` in a checkout, ``sinr_qgis.training`` in an installed plugin). ``path``: the one
    folder the child needs on ``PYTHONPATH`` and runs in (it holds ``module`` and ``sinr_qgis``,
    which the training code imports); never the user's working folder, and never the plugin
    folder itself, whose ``core``, ``processing``... would shadow other packages.
    """

    package: Path
    module: str
    path: Path


def training_code(plugin_dir: str | Path | None = None) -> TrainingCode | None:
    """The training code of the plugin in ``plugin_dir`` (default: this one), or ``None``.

    The copy inside the plugin (an installed zip) comes first; else the repository checkout the
    plugin package lives in (its top-level ``training``, not a plugin of that name beside ours).
    """
    plugin = Path(plugin_dir).resolve() if plugin_dir is not None else PLUGIN_DIR
    bundled = plugin / "training"
    if (bundled / "__init__.py").is_file() and (bundled / "cli.py").is_file():
        return TrainingCode(bundled, f"{plugin.name}.training", plugin.parent)
    checkout = plugin.parent / "training"
    if ((checkout / "__init__.py").is_file() and (checkout / "cli.py").is_file()
            and not (checkout / "metadata.txt").exists()):
        return TrainingCode(checkout, "training", plugin.parent)
    return None


def training_code_dir(plugin_dir: str | Path | None = None) -> Path | None:
    """The ``training`` package folder the plugin runs (see :func:`training_code`), or ``None``."""
    code = training_code(plugin_dir)
    return code.package if code is not None else None


# (interpreter to install into and choose, where to type the command) per platform.system()
_PYTHONS = {
    "Windows": ("python", "in the OSGeo4W Shell (Start menu, QGIS folder)"),
    "Darwin": ("/Applications/QGIS.app/Contents/MacOS/bin/python3", "in Terminal"),
    "Linux": ("/usr/bin/python3", "in a terminal"),
}
_NAMES = {"Windows": "Windows", "Darwin": "macOS", "Linux": "Linux"}


def install_command(python: str, system: str | None = None) -> str:
    """The pip command that gives ``python`` what training needs (numpy kept below 2)."""
    system = system or platform.system()
    user = " --user --break-system-packages" if system == "Linux" and python.startswith("/usr/") else ""
    return f"{python} -m pip install{user} {PACKAGES} --extra-index-url {CPU_INDEX}"


def setup_steps(python: str | None = None, system: str | None = None) -> str:
    """What makes training available on ``system`` (a ``platform.system()`` value; default: this
    one), in one paragraph: "Set up PyTorch for me", else the pip command that gives ``python``
    (default: the platform's QGIS Python) PyTorch."""
    system = system or platform.system()
    system = system if system in _PYTHONS else "Linux"  # other Unix systems: the Linux steps apply
    default, where = _PYTHONS[system]
    python = python or default
    return (f"To set up training on {_NAMES[system]}, click 'Set up PyTorch for me' in the Train dialog, or run "
            "'Set up PyTorch for training' (sinr:setup_training) in the Processing Toolbox: it makes a private "
            "Python with PyTorch in your QGIS profile, no terminal needed. Or give PyTorch to a Python that has "
            f"GDAL yourself ({where}: {install_command(python, system)}) and choose it as 'Python with "
            f"PyTorch' in the Train dialog. The Help's 'Training your own model' and the README "
            f"({README_INSTALL}) say more.")
