"""A class name means one thing across the plugin and the training package: two ``TrainingError``s
or two ``TrainResult``s (the supervisor's and the trainer's) made every reader ask which one."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import ROOT


def _classes(paths, base: Path) -> dict[str, list[str]]:
    """Class name -> the modules (paths relative to ``base``) defining it at top level."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                found[node.name].append(path.relative_to(base).as_posix())
    return found


def test_no_class_name_is_defined_twice():
    paths = sorted([*(ROOT / "sinr_qgis").rglob("*.py"), *(ROOT / "training").rglob("*.py")])
    assert {n: m for n, m in _classes(paths, ROOT).items() if len(m) > 1} == {}


def test_the_scan_finds_a_name_defined_twice(tmp_path: Path):
    for part in ("a", "b"):
        (tmp_path / "pkg" / part).mkdir(parents=True)
        (tmp_path / "pkg" / part / "errors.py").write_text("class TrainingError(Exception):\n    pass\n")
    found = _classes(sorted((tmp_path / "pkg").rglob("*.py")), tmp_path / "pkg")
    assert found == {"TrainingError": ["a/errors.py", "b/errors.py"]}
