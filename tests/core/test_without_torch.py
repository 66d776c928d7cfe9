"""tests/core runs where torch is not installed (the plugin's stock-QGIS case): core test modules
that need a model load the committed fixture bundles (tests/data/bundles), never torch; the parity
of torch with numpy and ONNX is tested in tests/training. (tests/test_architecture.py checks the
imports of tests/core on every run; this runs the whole room, so it is slow.)"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.import_blocker import blocking_site, env_with_site

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("torch", "training")
# the child checks the blocker before the tests, so a passing run cannot have had torch
CHILD = f"""
import sys
for name in {BLOCKED!r}:
    try:
        __import__(name)
    except ModuleNotFoundError:
        pass
    else:
        sys.exit(name + " is importable: the blocker did not work")
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_every_core_test_passes_with_torch_and_training_unimportable(tmp_path):
    site = blocking_site(tmp_path / "site", BLOCKED)
    env = env_with_site(dict(os.environ, QT_QPA_PLATFORM="offscreen"), site)
    # everything in tests/core (-m "": slow ones too) but this module, which would start itself again
    args = ["-q", "-p", "no:cacheprovider", "-m", "", "tests/core", f"--ignore={Path(__file__).resolve()}"]
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    assert " passed" in report and " failed" not in report and " error" not in report, report
