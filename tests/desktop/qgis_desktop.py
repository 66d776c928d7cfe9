"""Start the real QGIS desktop under Xvfb with an isolated profile and a --code script.

Shared by the end-to-end desktop tests and the package install test. The code script runs inside
QGIS after start-up, writes its findings as JSON to a file, and quits QGIS itself; this module
only starts and waits. Nothing here touches the user's own QGIS profile.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from qgis_profile import prepare_profile  # noqa: E402

SCREEN = "1600x1200x24"


def require_desktop() -> None:
    """Fail (not skip) when the desktop cannot run here: `make setup` installs QGIS, Xvfb and
    xauth, so a missing one is a broken set-up that must show, never a silently skipped walk."""
    for exe in ("qgis", "xvfb-run", "Xvfb", "xauth"):
        if shutil.which(exe) is None:
            pytest.fail(f"{exe} is not installed: run `make setup` (scripts/setup.sh installs it)")


def build_plugin_zip(out_dir: Path) -> Path:
    """Build the plugin zip as `make package` does (scripts/package.sh) into ``out_dir``; its path."""
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "package.sh")], cwd=ROOT,
                          env=dict(os.environ, SINR_PACKAGE_DIR=str(out_dir)),
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/package.sh failed:\n{proc.stdout}{proc.stderr}")
    zips = list(out_dir.glob("sinr_qgis.*.zip"))
    if len(zips) != 1:
        raise RuntimeError(f"scripts/package.sh left {len(zips)} zips in {out_dir}")
    return zips[0]


def unzip_plugin(plugin_zip: Path, plugins_dir: Path) -> Path:
    """Unzip into ``plugins_dir`` as the Plugin Manager's "Install from ZIP" does; the plugin folder."""
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(plugins_dir)
    return plugins_dir / "sinr_qgis"


def venv_site_packages() -> str:
    """The project's venv site-packages, which desktop QGIS sees only through PYTHONPATH."""
    return sysconfig.get_paths()["purelib"]


def clean_env(home: Path, with_venv: bool) -> dict[str, str]:
    """A minimal environment: no offscreen platform, no inherited plugin paths, a private HOME."""
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR")}
    home.mkdir(parents=True, exist_ok=True)
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime), LANG=env.get("LANG", "C.UTF-8"),
               QT_QPA_PLATFORM="xcb", PYTHONDONTWRITEBYTECODE="1", QT_ACCESSIBILITY="0",
               NO_AT_BRIDGE="1")
    if with_venv:
        env["PYTHONPATH"] = venv_site_packages()
    return env


BOOTSTRAP = """
# Written by tests/desktop/qgis_desktop.py: a watchdog that always ends QGIS, then the script.
import json, os, traceback
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QTimer

_sinr_result = os.environ["SINR_DESKTOP_RESULT"]


def _sinr_watchdog():
    if not os.path.exists(_sinr_result):
        with open(_sinr_result, "w") as f:
            json.dump({{"error": "watchdog: the script did not finish in time"}}, f)
    QgsApplication.exit(3)


_sinr_watchdog_timer = QTimer()
_sinr_watchdog_timer.setSingleShot(True)
_sinr_watchdog_timer.timeout.connect(_sinr_watchdog)
_sinr_watchdog_timer.start({watchdog_ms})
try:
    _sinr_globals = {{"__name__": "__sinr_code__", "__file__": {script!r}}}
    with open({script!r}) as _f:
        exec(compile(_f.read(), {script!r}, "exec"), _sinr_globals)
except Exception:
    with open(_sinr_result, "w") as f:
        json.dump({{"error": traceback.format_exc()}}, f)
    QgsApplication.exit(2)
"""


@dataclass
class DesktopRun:
    returncode: int
    result: dict
    log: str


def run_desktop(profiles: Path, plugin_source: Path, code: Path, result_file: Path, *,
                with_venv: bool = True, copy: bool = False, settings: dict | None = None,
                timeout: float = 240.0, profile: str = "sinr-test",
                extra_env: dict[str, str] | None = None) -> DesktopRun:
    """Prepare the profile, run QGIS with ``--code code`` under Xvfb, return the JSON result."""
    prepare_profile(profiles, profile, plugin_source, copy=copy, extra=settings)
    env = clean_env(profiles / "home", with_venv)
    env.update(extra_env or {})
    env["SINR_DESKTOP_RESULT"] = str(result_file)
    # The script runs through a bootstrap whose watchdog quits QGIS before our hard timeout, so a
    # script error or a stuck step gives a result file instead of a killed process.
    bootstrap = profiles / f"{profile}-bootstrap.py"
    bootstrap.write_text(BOOTSTRAP.format(script=str(code), watchdog_ms=int(max(timeout - 20, 10) * 1000)))
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN} -nolisten tcp",
           "qgis", "--profiles-path", str(profiles), "--profile", profile, "--nologo",
           "--noversioncheck", "--code", str(bootstrap)]
    log_path = profiles / f"{profile}-qgis.log"
    with open(log_path, "w") as log_file:
        # Own process group, so a hung QGIS and its Xvfb are both stopped on timeout.
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                cwd=str(profiles), start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = -9
    log = log_path.read_text(errors="replace")
    if rc == -9:
        log += f"\nQGIS did not quit within {timeout:.0f} s"
    result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    return DesktopRun(rc, result, log)
