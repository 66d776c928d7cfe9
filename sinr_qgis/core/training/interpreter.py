"""The Python interpreter that trains: candidates, and a probe that it has torch, onnx and GDAL.

PyTorch never loads in QGIS: the probe runs the interpreter in a subprocess and reads one JSON
line of versions back. Pure Python (no qgis, no torch).
"""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import TrainingEnvironmentError
from ..train_setup import setup_steps
from .process import child_environment, training_root

# what the probe checks besides torch, as a message names it
_NEEDED_WITH_TORCH = {"onnx": "onnx (it writes the model file)",
                      "osgeo.gdal": "GDAL's Python bindings (osgeo; they read the land mask)",
                      # GDAL reads rasters into numpy through it; it fails when numpy is not the
                      # major version GDAL was built for (numpy 2 beside a GDAL built for numpy 1)
                      "osgeo.gdal_array": "a numpy that its GDAL works with (osgeo.gdal_array does not import)"}


def candidate_pythons(repo_root: Path | None = None) -> list[str]:
    """Interpreters worth trying, best first: the repository's venv, this Python, python3 on PATH."""
    out: list[str] = []
    if repo_root is not None:
        for rel in (".venv/bin/python", ".venv/Scripts/python.exe"):
            p = repo_root / rel
            if p.is_file():
                out.append(str(p))
    exe = Path(sys.executable or "")
    # Inside QGIS sys.executable is often the qgis binary, not a Python: only take a real python.
    if exe.name.lower().startswith("python") and exe.is_file():
        out.append(str(exe))
    for name in ("python3", "python"):
        found = shutil.which(name)
        if found:
            out.append(found)
    seen: list[str] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def default_python(repo_root: Path | None = None) -> str:
    """A sensible default interpreter for training (the first candidate), or ``python3``."""
    cands = candidate_pythons(repo_root)
    return cands[0] if cands else "python3"


_PROBE = ("import json, sys\n"
          "info = {'python': sys.version.split()[0], 'executable': sys.executable}\n"
          "try:\n"
          "    import torch\n"
          "    info['torch'] = torch.__version__\n"
          # what the user may train on besides the CPU (shown when the interpreter is checked)
          "    info['cuda'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''\n"
          "    mps = getattr(torch.backends, 'mps', None)\n"
          "    info['mps'] = bool(mps is not None and mps.is_available())\n"
          "except Exception as exc:\n"
          "    info['error'] = f'{type(exc).__name__}: {exc}'\n"
          "info['missing'] = []\n"
          "for name in ('onnx', 'osgeo.gdal', 'osgeo.gdal_array'):\n"  # onnx writes the model; GDAL reads rasters
          "    try:\n"
          "        __import__(name)\n"
          "    except Exception:\n"
          "        info['missing'].append(name)\n"
          "print(json.dumps(info))\n")


def check_python(python: str, timeout: float = 120.0) -> dict[str, Any]:
    """Check that ``python`` runs and imports torch, onnx and GDAL, in a subprocess (PyTorch never
    loads in QGIS). Returns ``python`` and ``torch`` (versions), ``executable``, ``cuda`` (the GPU's
    name, '' without CUDA) and ``mps`` (Apple GPU, bool); raises :class:`TrainingEnvironmentError`
    with install help."""
    python = str(python or "").strip()
    if not python:
        raise TrainingEnvironmentError("No Python interpreter is set for training. " + setup_steps())
    resolved = shutil.which(python) or (python if Path(python).is_file() else None)
    if resolved is None:
        raise TrainingEnvironmentError(
            f"The Python interpreter {python!r} for training was not found. " + setup_steps())
    try:
        proc = subprocess.run([resolved, "-c", _PROBE], capture_output=True, text=True, timeout=timeout,
                              env=child_environment(None))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TrainingEnvironmentError(f"Could not run the Python interpreter {python!r} ({exc}). "
                                       "Choose another interpreter in the SINR training settings.") from None
    info: dict[str, str] = {}
    for line in proc.stdout.splitlines()[::-1]:
        with contextlib.suppress(ValueError):
            info = json.loads(line)
            break
    if not info:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise TrainingEnvironmentError(f"{python!r} did not run as a Python 3 interpreter ({tail or 'no output'}). "
                                       "Choose a Python 3 executable in the SINR training settings.")
    if "torch" not in info:
        raise TrainingEnvironmentError(
            f"PyTorch is missing: the Python interpreter {python} (Python {info.get('python', '?')}) cannot "
            f"import torch ({info.get('error', 'unknown error')}). " + setup_steps(python))
    missing = [m for m in info.get("missing") or [] if m in _NEEDED_WITH_TORCH]
    if "osgeo.gdal" in missing and "osgeo.gdal_array" in missing:
        missing.remove("osgeo.gdal_array")  # no GDAL at all: that one message says it
    if missing:
        raise TrainingEnvironmentError(
            f"The Python interpreter {python} has PyTorch but lacks "
            + " and ".join(_NEEDED_WITH_TORCH[m] for m in missing) + ", which training needs. "
            + (f"Install it: `{python} -m pip install onnx \"numpy<2\"`. " if "onnx" in missing else "")
            + ("Choose QGIS's own Python, which has GDAL, or install GDAL's Python bindings there. "
               if "osgeo.gdal" in missing else "")
            + (f"Install the numpy its GDAL was built for (usually `{python} -m pip install \"numpy<2\"`), or "
               "click 'Set up PyTorch for me', whose environment keeps QGIS's own numpy. "
               if "osgeo.gdal_array" in missing else ""))
    return info


def describe_python(python: str, info: dict[str, Any]) -> str:
    """One line for the user from :func:`check_python`'s answer: versions and GPUs."""
    gpu = f"CUDA: {info['cuda']}" if info.get("cuda") else "CUDA: no"
    return (f"{python}: Python {info.get('python', '?')}, torch {info.get('torch', '?')}, {gpu}, "
            f"Apple MPS: {'yes' if info.get('mps') else 'no'}")


def check_training_available(python: str) -> dict[str, Any]:
    """Raise :class:`TrainingEnvironmentError`, saying how to set it up on this system, unless
    training can run here: the training code is next to the plugin and ``python`` has PyTorch,
    onnx and GDAL. Returns :func:`check_python`'s versions. Takes seconds (the probe imports torch).
    When both are missing, the message says both."""
    problems = []
    info: dict[str, str] = {}
    for check in (training_root, lambda: info.update(check_python(python))):
        try:
            check()
        except TrainingEnvironmentError as exc:
            problems.append(str(exc))
    if problems:
        raise TrainingEnvironmentError(" Also: ".join(problems))
    return info
