"""The "Diagnostics" report: versions, backend, training interpreter and models, as plain text.

Made for bug reports: every line is collected on its own, and a part that fails says why in its
line instead of breaking the report. PyTorch is never imported here: its version is asked of the
training interpreter in a subprocess (importing torch inside QGIS is what the plugin avoids).
The prediction speed is measured here, in QGIS's own process (about 1 s, see ``core/speed.py``):
what slows numpy down inside QGIS does not show in any other Python.
"""
from __future__ import annotations

import configparser
import importlib
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.resources import BUNDLED_MODEL, PLUGIN_DIR, check_bundled_model

if TYPE_CHECKING:
    from ..core.runtime import Predictor

Entry = tuple[str, str]


def _safe(fn: Callable[[], str]) -> str:
    """``fn()``, or the error it raised, as one line (a diagnostics line must never raise)."""
    try:
        return fn()
    except Exception as exc:
        return f"unavailable ({type(exc).__name__}: {exc})"


def plugin_version() -> str:
    """``version`` from the plugin's metadata.txt."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(PLUGIN_DIR / "metadata.txt", encoding="utf-8")
    return cfg["general"]["version"]


def _qgis_version() -> str:
    from qgis.core import Qgis
    from qgis.PyQt.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

    return f"{Qgis.QGIS_VERSION} (Qt {QT_VERSION_STR}, PyQt {PYQT_VERSION_STR})"


def _gdal_version() -> str:
    from osgeo import gdal

    return gdal.__version__


def module_version(name: str) -> str:
    """Version of an importable module, or why it cannot be imported (e.g. 'not installed')."""
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError:
        return "not installed"
    except Exception as exc:
        return f"broken ({type(exc).__name__}: {exc})"
    version = getattr(module, "__version__", "unknown version")
    where = Path(getattr(module, "__file__", "") or "").parent
    return f"{version} ({where})" if str(where) not in ("", ".") else version


def onnxruntime_providers() -> str:
    """The execution providers onnxruntime offers here (GPU ones appear only if installed)."""
    try:
        import onnxruntime
    except ImportError:
        return "-"
    return ", ".join(onnxruntime.get_available_providers())


def _bundled_predictor() -> Predictor:
    from ..core.bundle import ModelBundle
    from ..core.runtime import Predictor

    return Predictor(ModelBundle.load(BUNDLED_MODEL))


def inference_backend(predictor: Predictor | None = None) -> str:
    """The backend prediction really uses: the bundled model is loaded as the panel would load it."""
    from ..core.runtime import onnxruntime_available
    from ..core.speed import INSTALL_HINT

    note = "" if onnxruntime_available() else (
        f" (onnxruntime is not installed: same results, slower; {INSTALL_HINT} installs it)")
    if not BUNDLED_MODEL.is_file():
        return ("onnxruntime" if not note else "numpy") + note + "; bundled model missing"
    predictor = predictor or _bundled_predictor()
    warnings = "; ".join(predictor.warnings)
    return predictor.backend_name + note + (f" ({warnings})" if warnings else "")


def speed_entries(predictor: Predictor | None = None) -> list[Entry]:
    """The bundled model's real speed in this process (about 1 s) and its matrix products."""
    from ..core.speed import speed_report

    try:
        report = speed_report(predictor or _bundled_predictor())
    except Exception as exc:
        why = f"unavailable ({type(exc).__name__}: {exc})"
        return [("prediction speed", why), ("matrix products", why)]
    return [("prediction speed", report.speed_line()), ("matrix products", report.product_line())]


def onnxruntime_install() -> str:
    """The private onnxruntime folder and its state; when onnxruntime is missing, the manual command
    that installs it there safely (QGIS's Python, no numpy change)."""
    from .dependencies import ONNXRUNTIME, InstallState, find_interpreter, read_marker
    from .private_packages import onnxruntime_folder, onnxruntime_install_state

    folder = onnxruntime_folder()
    state = onnxruntime_install_state()
    marker = read_marker(folder)
    where = f"{folder} ({'installed by the plugin' if marker else 'not created' if not folder.is_dir() else 'present'})"
    if state == InstallState.CURRENT:
        return f"{state.value}; private folder {where}"
    try:
        python = find_interpreter().path
        command = (f'"{python}" -m pip install --no-deps --only-binary=:all: --target "{folder}" '
                   + " ".join(ONNXRUNTIME.requirements))
    except Exception as exc:
        command = f"unavailable ({exc})"
    return f"{state.value}; private folder {where}; manual install (safe for QGIS's numpy): {command}"


def training_interpreter() -> str:
    """The Python interpreter the plugin would start for training (setting, else default)."""
    from .interpreter import training_interpreter as configured

    return configured()


def torch_report(python: str) -> str:
    """torch's version in ``python`` (a subprocess), or the reason training is unavailable."""
    from ..core.training.interpreter import check_python

    try:
        info = check_python(python, timeout=60.0)
    except Exception as exc:
        return f"unavailable: {exc}"
    return f"{info['torch']} (Python {info.get('python', '?')} at {info.get('executable', python)})"


def training_code() -> str:
    """Where the training package is, or why training cannot run from this installation."""
    from ..core.errors import TrainingEnvironmentError
    from ..core.train_setup import training_code_dir
    from ..core.training.process import training_root

    try:
        training_root()  # raises, saying what to do, when the plugin has none
    except TrainingEnvironmentError as exc:
        return f"not found: {exc}"
    return str(training_code_dir())


def _describe_model(path: str | Path) -> str:
    from ..core.bundle import ModelBundle

    path = Path(path)
    if not path.is_file():
        return f"{path} (missing)"
    bundle = ModelBundle.load(path)
    check_bundled_model(bundle)  # a replaced or damaged bundled file is worth a line in a bug report
    return (f"{bundle.name}: {bundle.n_species} species, encoding {bundle.encoding_label()}, "
            f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


def user_model_paths() -> list[str]:
    """Paths of the user's own models remembered in the settings (the dock's model list)."""
    from .model_registry import list_models

    return [entry.path for entry in list_models(prune=False)]


def model_lines() -> list[Entry]:
    """One line per model: the bundled one, then the user's."""
    lines: list[Entry] = [("bundled model", _safe(lambda: _describe_model(BUNDLED_MODEL)))]
    try:
        users = user_model_paths()
    except Exception as exc:
        return [*lines, ("user models", f"unavailable ({exc})")]
    if not users:
        lines.append(("user models", "none"))
    for i, path in enumerate(users, 1):
        lines.append((f"user model {i}", _safe(lambda p=path: _describe_model(p))))
    return lines


def collect_diagnostics(probe_torch: bool = True) -> list[Entry]:
    """Every line of the report as (label, value). ``probe_torch`` starts the interpreter (~2 s)."""
    entries: list[Entry] = [
        ("SINR plugin", _safe(lambda: f"{plugin_version()} ({PLUGIN_DIR})")),
        ("QGIS", _safe(_qgis_version)),
        ("OS", _safe(platform.platform)),
        # Inside QGIS sys.executable is a guess from PATH, not the embedded Python; the prefix is.
        ("Python", f"{sys.version.split()[0]} (prefix {sys.prefix})"),
        ("GDAL", _safe(_gdal_version)),
        ("numpy", module_version("numpy")),
        ("scipy", module_version("scipy")),
        ("onnxruntime", module_version("onnxruntime")),
        ("onnxruntime providers", _safe(onnxruntime_providers)),
        ("onnxruntime install", _safe(onnxruntime_install)),
    ]
    predictor = None
    if BUNDLED_MODEL.is_file():  # one load for the backend line and the speed check
        try:
            predictor = _bundled_predictor()
        except Exception as exc:
            entries.append(("prediction backend", f"unavailable ({type(exc).__name__}: {exc})"))
    if predictor is not None or not BUNDLED_MODEL.is_file():
        entries.append(("prediction backend", _safe(lambda: inference_backend(predictor))))
    if predictor is not None:
        entries.extend(speed_entries(predictor))
    python = _safe(training_interpreter)
    entries.append(("training interpreter", python))
    entries.append(("torch (training interpreter)",
                    _safe(lambda: torch_report(python)) if probe_torch else "not checked"))
    entries.append(("training code", _safe(training_code)))
    entries.extend(model_lines())
    return entries


def format_report(entries: list[Entry]) -> str:
    """The entries as aligned plain text, ready to paste into an issue."""
    width = max(len(label) for label, _ in entries)
    lines = ["SINR for QGIS diagnostics", ""]
    lines += [f"{label.ljust(width)} : {value}" for label, value in entries]
    return "\n".join(lines) + "\n"


def diagnostics_report(probe_torch: bool = True) -> str:
    """The whole report as text."""
    return format_report(collect_diagnostics(probe_torch=probe_torch))


def as_dict(entries: list[Entry]) -> dict[str, Any]:
    """The entries as a dict (for tests and scripts)."""
    return dict(entries)
