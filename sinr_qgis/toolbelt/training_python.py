""""Set up PyTorch for me": a private Python for training, made with venv and pip, no terminal.

Pure logic, no QGIS (the QGIS side: ``tasks/setup_training_task.py``, ``processing/setup_training.py``,
``gui/setup_training_button.py``). PyTorch never loads inside QGIS; this makes the interpreter the
training child process runs with.

- The base is QGIS's own Python (found as for the onnxruntime install), else a system Python 3.9+
  found on the machine; it must have ``venv``, pip (its own or ensurepip) and GDAL's Python
  bindings, which the training code imports through ``sinr_qgis.core`` (the land mask).
- The virtual environment uses ``--system-site-packages``, so it sees the base's GDAL and numpy.
  pip runs with a constraint that keeps the base's numpy (a numpy 2 beside a GDAL built for
  numpy 1 breaks ``osgeo.gdal_array``; the reverse breaks too).
- CPU PyTorch comes from PyTorch's CPU index (a fraction of PyPI's Linux wheel with CUDA), falling
  back to PyPI when that index cannot be reached; on macOS PyPI's wheel is the CPU/MPS one. onnx
  and ml_dtypes come from PyPI (a pip configuration's mirror or wheel folder applies). A package
  source (a folder of wheels or an index URL) replaces them all, pip's configuration included, for
  offline sites and tests.
- The environment is built in a temporary folder beside the final one, checked by importing
  torch, onnx and GDAL in it, and only then renamed into place: a failure or a cancel leaves the
  previous environment, if any, as it was and no partial folder.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import DependencyInstallError, TrainingEnvironmentError
from ..core.train_setup import CPU_INDEX
from ..core.training.interpreter import check_python, describe_python
from .dependencies import (
    PROBE_TIMEOUT_S,
    CancelFn,
    LineFn,
    _no_window,
    check_install_folder,
    clean_environment,
    failure_message,
    failure_reason,
    interpreter_candidates,
    run_logged,
)

MARKER = "sinr_training.json"
PYPI = "https://pypi.org/simple"
# Ranges the training code is tested with (training/export.py: onnx writes the model file; onnx
# needs ml_dtypes); upper bounds keep a future major release from breaking a set-up.
TORCH = "torch>=2.2,<3"
COMPANIONS = ("onnx>=1.16,<2", "ml_dtypes>=0.4,<1")
SIZE_MB = 1500  # CPU torch installed is ~0.9 GB; pip needs room to unpack beside it
TORCH_TIMEOUT_S = 3600.0  # ~200 MB on a slow line
MIN_PYTHON = (3, 9)
_RUNNING: set[str] = set()  # folders being set up in this QGIS
_RUNNING_LOCK = threading.Lock()

_PROBE = ("import json, sys\n"
          "info = {'version': list(sys.version_info[:2]), 'executable': sys.executable}\n"
          # a virtual environment's packages are not what a new one built on it sees: its base's are
          "if sys.prefix != sys.base_prefix:\n"
          "    info['base'] = getattr(sys, '_base_executable', '')\n"
          "for key, name in (('venv', 'venv'), ('ensurepip', 'ensurepip'), ('pip', 'pip'), ('numpy', 'numpy'),"
          " ('gdal', 'osgeo.gdal')):\n"
          "    try:\n"
          "        m = __import__(name, fromlist=['_'])\n"
          "        info[key] = str(getattr(m, '__version__', '') or 'yes')\n"
          "    except Exception:\n"
          "        info[key] = None\n"
          "print(json.dumps(info))\n")


@dataclass(frozen=True)
class BasePython:
    """An interpreter the training environment can be made from, and what it has."""

    path: Path
    version: tuple[int, int]
    origin: str  # "QGIS's Python" or "a system Python", for messages
    has_ensurepip: bool
    pip: str | None
    numpy: str | None
    gdal: str | None

    def describe(self) -> str:
        return (f"{self.origin} {self.version[0]}.{self.version[1]} ({self.path}; GDAL {self.gdal}, "
                f"numpy {self.numpy})")


def probe_base(path: str | Path, origin: str, env: Mapping[str, str] | None = None) -> BasePython | str:
    """What ``path`` has (a :class:`BasePython`), or why it cannot be the base (a sentence)."""
    path = Path(path)
    try:
        proc = subprocess.run([str(path), "-I", "-c", _PROBE], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, env=clean_environment(env), **_no_window())
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return f"{path} does not run as Python"
    base = info.get("base")
    if base and Path(base).is_file() and Path(base) != path:
        return probe_base(base, origin, env)
    version = tuple(int(v) for v in info.get("version", (0, 0)))[:2]
    if version < MIN_PYTHON:
        return f"{path} is Python {version[0]}.{version[1]}; PyTorch needs 3.9 or newer"
    if not info.get("venv"):
        return f"{path} has no venv module"
    if not info.get("ensurepip") and not info.get("pip"):
        return f"{path} has neither pip nor ensurepip"
    if not info.get("gdal"):
        return f"{path} has no GDAL Python bindings (osgeo), which training needs"
    return BasePython(path, (version[0], version[1]), origin, bool(info.get("ensurepip")), info.get("pip"),
                      info.get("numpy"), info.get("gdal"))


def system_python_candidates(system: str = sys.platform, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Python 3 interpreters installed on the machine besides QGIS's, newest names first.

    Never macOS's ``/usr/bin/python3``: it is a stub that may open the developer-tools installer.
    """
    environ = os.environ if environ is None else environ
    names = [f"python3.{minor}" for minor in range(14, MIN_PYTHON[1] - 1, -1)] + ["python3", "python"]
    found = [Path(p) for p in (shutil.which(n, path=environ.get("PATH")) for n in names) if p]
    if system.startswith("win") and environ.get("LOCALAPPDATA"):  # python.org's installer, for one user
        local = Path(environ["LOCALAPPDATA"]) / "Programs" / "Python"
        found += sorted(local.glob("Python3*/python.exe"), reverse=True)
    elif system == "darwin":
        found += [Path("/opt/homebrew/bin/python3"), Path("/usr/local/bin/python3"),
                  *sorted(Path("/Library/Frameworks/Python.framework/Versions").glob("3.*/bin/python3"),
                          reverse=True)]
        found = [p for p in found if p != Path("/usr/bin/python3")]
    return [p for p in dict.fromkeys(found) if p.is_file()]


def find_base_python(qgis: Sequence[Path] | None = None, system: Sequence[Path] | None = None,
                     env: Mapping[str, str] | None = None) -> BasePython:
    """QGIS's own Python when it can make the environment, else a system Python that can.

    Raises ``DependencyInstallError`` (reason "no_interpreter") naming every interpreter tried and
    what it lacked, and what to do instead.
    """
    tried: list[str] = []
    seen: set[Path] = set()
    for origin, paths in (("QGIS's Python", interpreter_candidates() if qgis is None else qgis),
                          ("a system Python", system_python_candidates() if system is None else system)):
        for path in map(Path, paths):
            if path in seen or not path.is_file():
                continue
            seen.add(path)
            base = probe_base(path, origin, env)
            if isinstance(base, BasePython):
                return base
            tried.append(base)
    raise DependencyInstallError(
        "No Python on this computer can hold PyTorch for training: "
        + ("; ".join(tried) if tried else "no Python 3 interpreter was found") + ". Choose an existing Python "
        "that has PyTorch, onnx and GDAL under 'Use an existing Python' in the Train dialog (or the PYTHON "
        "parameter of sinr:train_model), or install QGIS from its official installer, whose Python has "
        "venv and pip, then set up again.", "no_interpreter")


# ---- the package source --------------------------------------------------------------------------
def source_steps(source: str | None, system: str = sys.platform) -> list[tuple[str, list[str]]]:
    """(label, pip's index arguments) for each pip run: torch first, then onnx and ml_dtypes.

    ``source``: a folder of wheels (``--no-index --find-links``) or an index URL; ``None``: PyTorch's
    CPU index for torch (PyPI on macOS) and PyPI for the rest.
    """
    if source:
        # an index URL (https://..., file:///.../simple) or a folder of wheel files
        args = ["--index-url", source] if "://" in source else ["--no-index", "--find-links", source]
        return [(source, args)]
    torch_index = PYPI if system == "darwin" else CPU_INDEX
    return [(torch_index, ["--index-url", torch_index]), (PYPI, ["--index-url", PYPI])]


def check_source(source: str | None) -> str | None:
    """``source`` cleaned (``None`` when empty); raises when a folder source does not exist."""
    source = (source or "").strip() or None
    if source and "://" not in source and not Path(source).is_dir():
        raise DependencyInstallError(f"The package source {source} is neither a folder nor an index URL. Give a "
                                     "folder of wheel files (.whl) or an index URL such as https://pypi.org/simple.",
                                     "source")
    return source


# ---- the environment -----------------------------------------------------------------------------
def venv_python(folder: str | Path, system: str = sys.platform) -> Path:
    """The interpreter of the virtual environment in ``folder``."""
    return Path(folder) / ("Scripts/python.exe" if system.startswith("win") else "bin/python")


def read_marker(folder: str | Path) -> dict | None:
    """What a finished set-up wrote in ``folder`` (see :func:`setup_training_python`), or None."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def marked_python(python: str | Path) -> dict | None:
    """The set-up marker of the environment ``python`` belongs to, if this plugin made it and it
    still holds that interpreter (a cheap "is it set up" test; the real test imports torch)."""
    path = Path(python)
    folder = path.parent.parent
    marker = read_marker(folder)
    return marker if marker is not None and venv_python(folder).is_file() and path.is_file() else None


@dataclass
class TrainingPython:
    """A finished set-up: the interpreter to train with, where, made from what, and what it has
    (:func:`~sinr_qgis.core.training.interpreter.check_python`'s answer)."""

    python: Path
    folder: Path
    base: BasePython
    info: dict

    def summary(self) -> str:
        return (f"PyTorch is set up for training in {self.folder}, made from {self.base.describe()}. "
                f"{describe_python(str(self.python), self.info)}.")


# the progress bar's stops: the environment, pip's runs and installs, the import check
_STAGES = (("Making a Python environment", 3.0), ("$ ", 8.0), ("Installing collected packages", 60.0),
           ("Checking that PyTorch", 90.0))


def setup_progress(text: str, current: float) -> float:
    """Percent done after the set-up's log line ``text``, ``current`` before it: the stage's stop,
    creeping on along pip's lines (a few per package) up to 88 until the import check."""
    stop = max((pct for prefix, pct in _STAGES if text.startswith(prefix)), default=0.0)
    if max(stop, current) >= 90.0:
        return max(stop, current)
    return min(88.0, max(current + 0.5, stop))


def setup_training(folder: str | Path, *, source: str | None = None, base_python: str | Path | None = None,
                   proxy: str | None = None, on_line: LineFn | None = None, is_cancelled: CancelFn | None = None,
                   env: Mapping[str, str] | None = None) -> TrainingPython:
    """"Set up PyTorch for me": find the base (``base_python``, else :func:`find_base_python`), say
    which, and make the environment ``folder`` with :func:`setup_training_python` (same errors)."""
    if base_python:
        base = probe_base(base_python, "the chosen Python", env)
        if not isinstance(base, BasePython):
            raise DependencyInstallError(f"The chosen Python cannot hold PyTorch for training: {base}. Choose "
                                         "another, or leave it empty to use QGIS's own Python.", "no_interpreter")
    else:
        base = find_base_python(env=env)
    if on_line is not None:
        on_line(f"Base interpreter: {base.describe()}")
    return setup_training_python(folder, base, source=source, proxy=proxy, on_line=on_line,
                                 is_cancelled=is_cancelled, env=env)


def setup_training_python(folder: str | Path, base: BasePython, *, source: str | None = None,
                          proxy: str | None = None, on_line: LineFn | None = None,
                          is_cancelled: CancelFn | None = None,
                          env: Mapping[str, str] | None = None) -> TrainingPython:
    """Make the training environment ``folder`` from ``base`` and install PyTorch, onnx and
    ml_dtypes (see the module docstring); ``folder`` is replaced only once the new one works.

    Raises ``DependencyInstallError`` (its ``reason``: "source", "folder", "disk", "permission",
    "busy", "venv", "network", "proxy", "ssl", "platform", "conflict", "pip", "verify", "in_use")
    or ``CancelledError``.
    """
    folder = Path(folder)
    source = check_source(source)
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and read_marker(folder) is None)):
        # the folder is replaced as a whole: never someone's files
        raise DependencyInstallError(f"{folder} already holds other files, and the training environment replaces "
                                     "its folder as a whole. Choose a new or empty folder.", "folder")
    def line(text: str) -> None:
        if on_line is not None:
            on_line(text)

    check_install_folder(folder.parent, "PyTorch", SIZE_MB, again="set up again (or choose a folder on another disk)")
    with _one_at_a_time(folder):
        return _setup(folder, base, source, proxy, line, is_cancelled, env)


@contextlib.contextmanager
def _one_at_a_time(folder: Path) -> Iterator[None]:
    """Refuse a second set-up of ``folder`` while one runs (the Train and Import dialogs both offer it)."""
    key = str(folder.resolve())
    with _RUNNING_LOCK:
        if key in _RUNNING:
            raise DependencyInstallError(f"PyTorch is already being set up in {folder}. Wait for it to finish "
                                         "(QGIS's task manager shows its progress).", "busy")
        _RUNNING.add(key)
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(key)


def _setup(folder: Path, base: BasePython, source: str | None, proxy: str | None, line: LineFn,
           is_cancelled: CancelFn | None, env: Mapping[str, str] | None) -> TrainingPython:
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-partial-", dir=folder.parent))
    try:
        line(f"Making a Python environment from {base.describe()} in {folder}")
        _make_venv(base, staging, env, line, is_cancelled)
        python = venv_python(staging)
        pip_env = clean_environment(env, proxy)
        if source:  # what the user gave is all pip uses: no index or wheel folder of pip's own configuration
            pip_env = {k: v for k, v in pip_env.items()
                       if k not in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX")}
            pip_env["PIP_CONFIG_FILE"] = os.devnull
        constraints = staging / "sinr-constraints.txt"
        # the base's numpy stays: its GDAL was built against it
        constraints.write_text(f"numpy=={base.numpy}\n" if base.numpy else "", encoding="utf-8")
        _install(python, base, constraints, source, pip_env, line, is_cancelled)
        line("Checking that PyTorch, onnx and GDAL import in the new environment…")
        try:
            info = check_python(str(python), timeout=300.0)
        except TrainingEnvironmentError as exc:
            raise DependencyInstallError(f"PyTorch was installed but the new environment does not work ({exc}). "
                                         "Nothing was kept.", "verify") from None
        marker = {"base": str(base.path), "base_origin": base.origin, "source": source or "default",
                  "requirements": [TORCH, *COMPANIONS], "numpy": base.numpy, "python": info.get("python"),
                  "torch": info.get("torch"), "installed": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (staging / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        _replace_environment(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    info["executable"] = str(venv_python(folder))
    result = TrainingPython(venv_python(folder), folder, base, info)
    line(result.summary())
    return result


def _make_venv(base: BasePython, staging: Path, env: Mapping[str, str] | None, line: LineFn,
               is_cancelled: CancelFn | None) -> None:
    # without ensurepip (Debian's python3 without python3-venv) the base's own pip, seen through
    # the system site-packages, installs into the environment
    cmd = [str(base.path), "-I", "-m", "venv", "--system-site-packages", "--clear",
           *([] if base.has_ensurepip else ["--without-pip"]), str(staging)]
    line("$ " + " ".join(cmd))
    code, output = run_logged(cmd, clean_environment(env), line, is_cancelled, timeout=600.0)
    if code != 0 or not venv_python(staging).is_file():
        tail = "\n".join(output.strip().splitlines()[-3:])
        raise DependencyInstallError(f"{base.describe()} could not make a virtual environment in "
                                     f"{staging.parent} ({tail or f'exit code {code}'}). Choose another folder, "
                                     "or an existing Python with PyTorch.", "venv")


def pip_command(python: str | Path, constraints: str | Path, index_args: Sequence[str],
                requirements: Sequence[str]) -> list[str]:
    """The pip run that installs ``requirements`` into the environment of ``python``, binaries only."""
    return [str(python), "-m", "pip", "install", "--only-binary=:all:", "--no-input", "--disable-pip-version-check",
            "--no-warn-script-location", "--no-cache-dir", "--progress-bar", "off", "-c", str(constraints),
            *index_args, *requirements]


def _install(python: Path, base: BasePython, constraints: Path, source: str | None, env: Mapping[str, str],
             line: LineFn, is_cancelled: CancelFn | None) -> None:
    steps = source_steps(source)
    runs = ([(steps[0], [TORCH, *COMPANIONS])] if source else
            [(steps[0], [TORCH]), (steps[1], list(COMPANIONS))])
    for (where, index_args), requirements in runs:
        what = ", ".join(r.split(">")[0] for r in requirements)
        code, output = _pip(python, constraints, index_args, requirements, env, line, is_cancelled)
        reason = failure_reason(output) if code != 0 else ""
        if reason in ("network", "ssl", "platform") and not source and where == CPU_INDEX:
            line(f"PyTorch's CPU index ({CPU_INDEX}) did not answer ({reason}); trying PyPI instead "
                 "(on Linux PyPI's PyTorch carries CUDA libraries: a larger download).")
            code, output = _pip(python, constraints, ["--index-url", PYPI], requirements, env, line, is_cancelled)
            where = PYPI
            reason = failure_reason(output) if code != 0 else ""
        if code != 0:
            raise DependencyInstallError(_pip_failure(reason, code, output, what, where, base, python), reason)


def _pip(python: Path, constraints: Path, index_args: Sequence[str], requirements: Sequence[str],
         env: Mapping[str, str], line: LineFn, is_cancelled: CancelFn | None) -> tuple[int, str]:
    cmd = pip_command(python, constraints, index_args, requirements)
    line("$ " + " ".join(cmd))
    return run_logged(cmd, env, line, is_cancelled, timeout=TORCH_TIMEOUT_S)


def _pip_failure(reason: str, code: int, output: str, what: str, where: str, base: BasePython,
                 python: Path) -> str:
    keep = "Nothing was kept; training keeps its previous Python."
    if reason == "conflict":
        return (f"pip found no {what} that works with this Python's numpy (the one its GDAL was built for) "
                f"in {where}. Its last lines:\n" + "\n".join(output.strip().splitlines()[-4:]) + f"\n{keep}")
    if reason == "platform":
        return (f"{where} has no {what} for this system (Python {base.version[0]}.{base.version[1]}, "
                f"{platform.system()} {platform.machine()}). Give a package source that has it, or choose an "
                f"existing Python with PyTorch. {keep}")
    return failure_message(reason, code, output, what=what, index=where, size_mb=SIZE_MB, target=python.parent,
                           keep=keep, again="set up again")


def _replace_environment(staging: Path, folder: Path) -> None:
    old = None
    try:
        if folder.exists():
            old = folder.with_name(f".{folder.name}-old-{os.getpid()}-{time.monotonic_ns()}")
            folder.rename(old)
        staging.rename(folder)
    except OSError as exc:
        if old is not None and not folder.exists():
            old.rename(folder)  # keep the previous environment usable
        raise DependencyInstallError(f"The training Python in {folder} is in use (a training may be running: "
                                     f"{exc.strerror or exc}). Wait for it to finish, then set up again.",
                                     "in_use") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

