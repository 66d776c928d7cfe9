"""The house's rooms and arrows (STYLE.md), checked on every module's imports (parsed, not run).

``gui``, ``processing``, ``tasks`` -> ``qgis_bridge`` -> ``core`` <- ``training``: ``core`` imports no
QGIS, Qt, torch or other room of the plugin, and onnxruntime only lazily; no room of the plugin
imports torch or ``training`` (the QGIS process must never load torch; training runs in its own
interpreter); ``training`` imports no QGIS or Qt and of the plugin only ``core``;
``sinr_qgis/__init__.py`` imports nothing at load (``classFactory`` does).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QT = ("PyQt5", "PyQt6", "sip")
# per room of sinr_qgis: the plugin rooms it may import (toolbelt: logging, settings, paths)
ALLOWED_ROOMS = {
    "core": {"core"},
    "toolbelt": {"core", "toolbelt"},
    "qgis_bridge": {"core", "toolbelt", "qgis_bridge"},
    "tasks": {"core", "toolbelt", "qgis_bridge", "tasks"},
    "processing": {"core", "toolbelt", "qgis_bridge", "processing"},
    "gui": {"core", "toolbelt", "qgis_bridge", "tasks", "processing", "gui"},
}
# per room: top-level packages it never imports (anywhere in a module)
FORBIDDEN_PACKAGES = {
    "core": ("qgis", *QT, "torch", "training"),
    "training": ("qgis", *QT),
} | {room: ("torch", "training") for room in ALLOWED_ROOMS if room != "core"} | {"plugin": ("torch", "training")}
LAZY_ONLY = {"core": ("onnxruntime",)}  # optional at run time: imported inside the function that needs it


@dataclass(frozen=True)
class Import:
    """One imported module, absolute (a relative import resolved against its file's package)."""

    module: str
    line: int
    at_load: bool  # a statement of the module body (also inside a module-level if/try), not in a function


def imports_of(path: Path) -> list[Import]:
    """Every import in ``path``; ``from x import y`` counts as ``x.y`` (y may be a module)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1]
    found: list[Import] = []

    def visit(node: ast.AST, at_load: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(a.name, child.lineno, at_load) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = (package[: len(package) - child.level + 1] if child.level else [])
                stem = ".".join(base + ([child.module] if child.module else []))
                found.extend(Import(f"{stem}.{a.name}" if a.name != "*" else stem, child.lineno, at_load)
                             for a in child.names)
            visit(child, at_load and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), True)
    return found


def room_of(path: Path) -> str:
    """``core``, ``gui``, … for sinr_qgis/<room>/…; ``plugin`` for the package's own modules;
    ``training`` for training/ (benchmarks included)."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "training":
        return "training"
    return parts[1] if len(parts) > 2 else "plugin"


def wrong_arrows(path: Path) -> list[str]:
    """What ``path`` imports against the rules above, as ``file:line: reason`` lines."""
    room, where = room_of(path), path.relative_to(ROOT)
    wrong = []
    for imp in imports_of(path):
        names = imp.module.split(".")
        top = names[0]
        if top in FORBIDDEN_PACKAGES.get(room, ()):
            wrong.append(f"{where}:{imp.line}: {room} imports {imp.module}")
        elif top in LAZY_ONLY.get(room, ()) and imp.at_load:
            wrong.append(f"{where}:{imp.line}: {room} imports {imp.module} at load (import it where it is used)")
        elif top == "sinr_qgis" and len(names) > 1:
            target = names[1]
            if room == "training" and target != "core":
                wrong.append(f"{where}:{imp.line}: training imports {imp.module} (only sinr_qgis.core)")
            elif room in ALLOWED_ROOMS and target in {*ALLOWED_ROOMS, "plugin"} - ALLOWED_ROOMS[room]:
                wrong.append(f"{where}:{imp.line}: {room} imports {imp.module}")
    if where == Path("sinr_qgis/__init__.py"):
        wrong += [f"{where}:{i.line}: imports {i.module} at load (classFactory should)"
                  for i in imports_of(path) if i.at_load and i.module != "__future__.annotations"]
    return wrong


def modules() -> list[Path]:
    """Every Python module of the plugin and of training (benchmarks included)."""
    return sorted([*(ROOT / "sinr_qgis").rglob("*.py"), *(ROOT / "training").rglob("*.py")])


def test_every_module_imports_along_the_arrows():
    assert len(modules()) > 100  # the scan sees the whole tree
    wrong = [line for path in modules() for line in wrong_arrows(path)]
    assert wrong == [], "wrong import arrows:\n" + "\n".join(wrong)


@pytest.mark.parametrize(("file", "source", "reason"), [
    ("sinr_qgis/core/x.py", "from qgis.core import QgsProject\n", "core imports qgis.core.QgsProject"),
    ("sinr_qgis/core/x.py", "def f():\n    import torch\n", "core imports torch"),
    ("sinr_qgis/core/x.py", "from ..toolbelt import settings\n", "core imports sinr_qgis.toolbelt.settings"),
    ("sinr_qgis/core/x.py", "try:\n    import onnxruntime\nexcept ImportError:\n    pass\n",
     "core imports onnxruntime at load"),
    ("sinr_qgis/qgis_bridge/x.py", "from ..gui.dock import SinrDock\n", "qgis_bridge imports sinr_qgis.gui.dock"),
    ("sinr_qgis/tasks/x.py", "from sinr_qgis.processing import base\n",
     "tasks imports sinr_qgis.processing.base"),
    ("sinr_qgis/gui/x.py", "from training import cli\n", "gui imports training.cli"),
    ("training/x.py", "from qgis.PyQt.QtCore import QSettings\n", "training imports qgis.PyQt.QtCore.QSettings"),
    ("training/benchmarks/x.py", "from sinr_qgis.qgis_bridge import layers\n",
     "training imports sinr_qgis.qgis_bridge.layers"),
])
def test_a_wrong_arrow_is_named_with_its_file_and_line(tmp_path, monkeypatch, file, source, reason):
    """The checker itself can fail: each rule, broken once in a made-up module."""
    path = tmp_path / file
    path.parent.mkdir(parents=True)
    path.write_text(source)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    wrong = wrong_arrows(path)
    assert len(wrong) == 1 and wrong[0].startswith(f"{file}:") and reason in wrong[0], wrong


def test_allowed_imports_are_not_reported(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    cases = {"sinr_qgis/core/x.py": "from . import encoding\nimport numpy\ndef f():\n    import onnxruntime\n",
             "sinr_qgis/gui/x.py": "from ..tasks.predict_task import PredictTask\nfrom qgis.core import QgsProject\n",
             "training/x.py": "import torch\nfrom sinr_qgis.core.bundle import ModelBundle\n"}
    for file, source in cases.items():
        path = tmp_path / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        assert wrong_arrows(path) == [], file
