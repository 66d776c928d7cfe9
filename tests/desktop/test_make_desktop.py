"""`make desktop` (scripts/desktop.sh): QGIS starts with this checkout's plugin, enabled, in an
isolated profile, and QGIS's Python sees the project's venv (onnxruntime)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest

from tests.desktop.qgis_desktop import ROOT, require_desktop

pytestmark = pytest.mark.desktop


def test_make_desktop_starts_qgis_with_the_plugin_in_an_isolated_profile(tmp_path):
    require_desktop()
    result = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYTHONPATH")}
    env.update(SINR_PROFILES=str(tmp_path / "profiles"), SINR_PROFILE="dev", HOME=str(tmp_path),
               SINR_DESKTOP_RESULT=str(result), QT_QPA_PLATFORM="offscreen")  # the script must unset it
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "desktop.sh"), "--code",
                             str(ROOT / "tests" / "desktop" / "load_check.py")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
    assert result.is_file(), log[-3000:]
    res = json.loads(result.read_text())
    assert "error" not in res, res["error"]
    plugin_dir = tmp_path / "profiles" / "profiles" / "dev" / "python" / "plugins" / "sinr_qgis"
    assert plugin_dir.is_symlink() and plugin_dir.resolve() == (ROOT / "sinr_qgis").resolve()
    assert "sinr_qgis" in res["active"] and res["provider"]
    assert res["importable"]["onnxruntime"], "the venv is not on QGIS's Python path"
    assert not res["torch_loaded"]
    ini = (tmp_path / "profiles" / "profiles" / "dev" / "QGIS" / "QGIS3.ini").read_text()
    assert re.search(r"\[PythonPlugins\][^\[]*\nsinr_qgis=true", ini), ini
