"""tests/core runs where torch is not installed (the plugin's stock-QGIS case): core test modules
that need a model load the committed fixture bundles (tests/data/bundles), never torch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.import_blocker import blocking_site, env_with_site

ROOT = Path(__file__).resolve().parents[2]
# core test modules that use a model bundle, all of it from the committed fixtures
TORCH_FREE_MODULES = ("test_fixture_bundles.py", "test_bundle.py", "test_reliability.py", "test_scoring.py",
                      "test_species_index_scale.py", "test_file_names.py")
# the child checks the blocker before the tests, so a passing run cannot have had torch
CHILD = """
import sys
try:
    import torch  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    sys.exit("torch is importable: the blocker did not work")
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def test_core_modules_that_need_a_bundle_pass_with_torch_unimportable(tmp_path):
    site = blocking_site(tmp_path / "site", ("torch",))
    env = env_with_site(dict(os.environ, QT_QPA_PLATFORM="offscreen"), site)
    modules = [str(Path("tests") / "core" / m) for m in TORCH_FREE_MODULES]
    proc = subprocess.run([sys.executable, "-c", CHILD, "-q", "-p", "no:cacheprovider", *modules],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report
    assert " passed" in report and " failed" not in report and " error" not in report, report
