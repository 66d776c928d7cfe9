"""How to make training available on the user's operating system: the steps every "training is
unavailable" message gives (the Train dialog, ``sinr:train_model``, Diagnostics).

Training needs two things the plugin zip does not carry: the ``training`` package of the
project's source, and a Python interpreter with PyTorch (and onnx, which writes the model file)
that also has GDAL, for the land mask of the pseudo-absences. QGIS's own Python has GDAL, so the
steps install PyTorch into it (it only runs in the training process, never inside QGIS) and pin
numpy below 2, which QGIS's GDAL needs.
"""
from __future__ import annotations

import platform
from pathlib import Path

REPOSITORY = "https://github.com/sinr-qgis/sinr-qgis"
SOURCE_ZIP = REPOSITORY + "/archive/refs/heads/main.zip"
README_INSTALL = REPOSITORY + "#install"
PACKAGES = 'torch onnx "numpy<2"'
CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # CPU-only PyTorch wheels: a fraction of the size

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


def setup_steps(plugin_dir: str | Path, system: str | None = None) -> str:
    """Numbered steps, in one paragraph, that make training available on ``system`` (a
    ``platform.system()`` value; default: this one) for the plugin installed in ``plugin_dir``."""
    system = system or platform.system()
    system = system if system in _PYTHONS else "Linux"  # other Unix systems: the Linux steps apply
    python, where = _PYTHONS[system]
    chosen = "the python.exe that `where python` shows in that shell" if system == "Windows" else python
    return (f"To set up training on {_NAMES[system]}: 1) download the plugin's source ({SOURCE_ZIP}, or "
            f"git clone {REPOSITORY}) and unzip it; 2) copy its 'training' folder into the plugin's "
            f"folder, {plugin_dir}; "
            f"3) {where}, run: {install_command(python, system)}; "
            f"4) in the Train dialog choose {chosen} as 'Python with PyTorch' and press Check. "
            f"The Help's 'Training your own model' and the README ({README_INSTALL}) say more.")
