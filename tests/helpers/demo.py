"""scripts/demo.py (``make demo``) run as a user runs it: its own standalone QGIS in a private profile."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The demo with ``args``, its QGIS profile and runtime folder under ``tmp_path``."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"),
               XDG_RUNTIME_DIR=str(tmp_path))
    return subprocess.run([sys.executable, str(DEMO), *args], env=env, capture_output=True, text=True,
                          timeout=300)
