"""Package sources for the "Set up PyTorch for me" tests, made in tmp_path without any download.

- :func:`fake_torch_source`: tiny wheels named torch, onnx and ml_dtypes (pure Python, a few
  hundred bytes), so the whole set-up (venv, pip, import check, marker, replacing) runs in seconds.
- :func:`local_torch_source`: the real CPU PyTorch wheel and its companions, gathered by
  ``pip download`` from the package files already on this machine's disk (the find-links folders
  and ``file://`` indexes of pip's configuration, else the wheels ``make setup`` keeps in
  ``build/torch-wheels``), never from the network.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from sinr_qgis.toolbelt.training_python import COMPANIONS, TORCH, BasePython, probe_base

FAKE_TORCH = """__version__ = "2.5.0+fake"
from . import backends, cuda  # noqa: E402,F401  (what the interpreter probe reads)
"""


def wheel(folder: Path, name: str, version: str, files: dict[str, str], tag: str = "py3-none-any",
          requires: tuple[str, ...] = ()) -> Path:
    """A minimal valid wheel (PEP 427): the files, METADATA, WHEEL and a RECORD with hashes."""
    dist = f"{name}-{version}.dist-info"
    meta = "".join(f"Requires-Dist: {r}\n" for r in requires)
    members = {**files,
               f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{meta}",
               f"{dist}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: sinr-tests\nRoot-Is-Purelib: "
                                 f"{'true' if tag.endswith('none-any') else 'false'}\nTag: {tag}\n")}
    record = []
    for path, text in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    members[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    whl = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(whl, "w") as z:
        for path, text in members.items():
            z.writestr(path, text)
    return whl


def fake_torch_source(folder: Path, torch_init: str = FAKE_TORCH, torch_requires: tuple[str, ...] = ()) -> Path:
    """A folder of fake torch 2.5.0, onnx 1.16.0 and ml_dtypes 0.4.0 wheels (they satisfy the pins)."""
    wheel(folder, "torch", "2.5.0", {"torch/__init__.py": torch_init,
                                     "torch/cuda.py": "def is_available():\n    return False\n",
                                     "torch/backends/__init__.py": ""}, requires=torch_requires)
    wheel(folder, "onnx", "1.16.0", {"onnx/__init__.py": "__version__ = '1.16.0'\n"})
    wheel(folder, "ml_dtypes", "0.4.0", {"ml_dtypes/__init__.py": "__version__ = '0.4.0'\n"})
    return folder


def quick_base() -> BasePython:
    """This machine's base Python (the venv's base), made to build environments without ensurepip:
    the base's own pip installs into them (the Debian-without-python3-venv path), in a second."""
    base = probe_base(sys.executable, "QGIS's Python")
    assert isinstance(base, BasePython), base
    assert base.pip, "the base Python needs pip for these tests"
    return dataclasses.replace(base, has_ensurepip=False)


def _pip_config() -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                          timeout=60)
    out = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        out[key.split(".", 1)[-1]] = value.strip().strip("'\"")
    return out


# make setup keeps the wheels here (scripts/setup.sh), from whatever registry pip uses
SETUP_WHEELS = Path(__file__).resolve().parents[2] / "build" / "torch-wheels"


def local_torch_source(folder: Path) -> Path:
    """``folder`` filled with the CPU torch wheel and the companions' wheels from files on this
    machine's disk: pip's configured local sources when they hold torch, else the wheels
    ``make setup`` keeps in ``build/torch-wheels``. Fails (never skips) when neither has them."""
    config = _pip_config()
    links = [p for p in (config.get("find-links", "") + " " + os.environ.get("PIP_FIND_LINKS", "")).split()
             if Path(p).is_dir()]
    indexes = [u for u in (config.get("extra-index-url", "") + " " + config.get("index-url", "")).split()
               if u.startswith("file://")]
    if indexes and any(Path(p).glob("torch-*.whl") for p in links):
        source = ["--index-url", indexes[0], *[a for u in indexes[1:] for a in ("--extra-index-url", u)],
                  *[a for p in links for a in ("--find-links", p)]]
    else:
        assert any(SETUP_WHEELS.glob("torch-*.whl")), f"no torch wheel in {SETUP_WHEELS}: run make setup"
        source = ["--no-index", "--find-links", str(SETUP_WHEELS)]
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(folder), *source,
           "--constraint", "/dev/stdin", TORCH, *COMPANIONS]
    # the companions as numpy 1 allows (the venv keeps the base's numpy 1.x, for its GDAL)
    proc = subprocess.run(cmd, input="numpy<2\n", capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PIP_CONFIG_FILE=os.devnull))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return folder
