"""The house's rooms and arrows (STYLE.md), checked on every module's imports (parsed, not run).

``gui``, ``processing``, ``tasks`` -> ``qgis_bridge`` -> ``core`` <- ``training``: ``core`` imports no
QGIS, Qt, torch or other room of the plugin, and onnxruntime only lazily; no room of the plugin
imports torch or ``training`` (the QGIS process must never load torch; training runs in its own
interpreter); ``training`` imports no QGIS or Qt and of the plugin only ``core``;
``sinr_qgis/__init__.py`` imports nothing at load (``classFactory`` does). tests/core, like core, runs
without torch: it imports neither torch nor training, nor a test helper that does.
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


# tests/core runs where torch is not installed (stock QGIS; tests/core/test_without_torch.py runs it
# so): its modules and the conftest it runs under import neither torch nor training, directly or
# through a module of tests/ that does (tests/training's helpers, tests.factories.make_bundle).
TORCH_SIDE = ("torch", "training")


def _tests_source(module: str) -> tuple[Path, str | None] | None:
    """The file of ``tests.…`` module ``module`` and None, or the file of the module holding the
    name ``module`` ends with (a function, class or constant imported from it) and that name."""
    parts = module.split(".")
    for n, name in ((len(parts), None), (len(parts) - 1, parts[-1])):
        for path in (ROOT.joinpath(*parts[:n]).with_suffix(".py"), ROOT.joinpath(*parts[:n], "__init__.py")):
            if path.is_file():
                return path, name
    return None


def torch_route(module: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """The modules importing ``module`` goes through to torch or training (``module`` first), or []:
    a module of tests/ counts every import it holds, a function of one its own imports and the
    module's imports at load, any other name only the module's imports at load."""
    if module.split(".")[0] in TORCH_SIDE:
        return [module]
    source = _tests_source(module) if module.split(".")[0] == "tests" and module not in seen else None
    if source is None:
        return []
    path, name = source
    tree = ast.parse(path.read_text(encoding="utf-8"))
    spans = [(f.lineno, f.end_lineno) for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == name]
    counted = [i for i in imports_of(path) if name is None or i.at_load or any(a <= i.line <= b for a, b in spans)]
    for imp in counted:
        if route := torch_route(imp.module, seen | {module}):
            return [module, *route]
    return []


def torch_imports_of_core_tests() -> list[str]:
    """Every import of a tests/core module or of tests/conftest.py that loads torch or training, as
    ``file:line: imports X (which loads Y -> torch)`` lines."""
    wrong = []
    for path in [ROOT / "tests" / "conftest.py", *sorted((ROOT / "tests" / "core").rglob("*.py"))]:
        for imp in imports_of(path):
            if route := torch_route(imp.module):
                loads = f" (which loads {' -> '.join(route[1:])})" if len(route) > 1 else ""
                wrong.append(f"{path.relative_to(ROOT)}:{imp.line}: imports {imp.module}{loads}")
    return wrong


def test_core_tests_import_neither_torch_nor_training():
    assert len(list((ROOT / "tests" / "core").glob("test_*.py"))) > 40  # the scan sees the room
    wrong = torch_imports_of_core_tests()
    assert wrong == [], "tests/core must run without torch; use tests.factories.fixture_bundle:\n" + "\n".join(wrong)


@pytest.mark.parametrize(("source", "reason"), [
    ("import torch\n", "imports torch"),
    ("def test_x():\n    from training.cli import main\n", "imports training.cli.main"),
    ("from tests.factories import make_bundle\n", "imports tests.factories.make_bundle (which loads torch)"),
    ("from tests.training.data import stack\n",
     "imports tests.training.data.stack (which loads tests.helpers.rasters.write -> training.model.SinrModel)"),
    ("from tests import factories\n", "imports tests.factories (which loads torch)"),
])
def test_a_torch_import_of_a_core_test_is_named_with_its_route(tmp_path, monkeypatch, source, reason):
    """The checker itself can fail: torch reached directly, in a function, or through test helpers."""
    files = {"tests/conftest.py": "import pytest\n", "tests/core/test_x.py": source,
             "tests/factories.py": "import numpy\n\n\ndef fixture_bundle():\n    pass\n\n\n"
                                   "def make_bundle():\n    import torch\n",
             "tests/training/data.py": "from tests.helpers.rasters import write\n\n\ndef stack():\n    pass\n",
             "tests/helpers/rasters.py": "from training.model import SinrModel\n\n\ndef write():\n    pass\n"}
    for file, text in files.items():
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text(text)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    wrong = torch_imports_of_core_tests()
    assert wrong == [f"tests/core/test_x.py:{source.count(chr(10))}: {reason}"], wrong


def test_a_torch_free_helper_of_a_module_that_has_a_torch_builder_is_allowed(tmp_path, monkeypatch):
    (tmp_path / "tests" / "core").mkdir(parents=True)
    (tmp_path / "tests" / "conftest.py").write_text("def paper():\n    from tests.factories import fixture_bundle\n")
    (tmp_path / "tests" / "core" / "test_x.py").write_text("from tests.factories import fixture_bundle\n")
    (tmp_path / "tests" / "factories.py").write_text("def fixture_bundle():\n    pass\n\n\n"
                                                     "def make_bundle():\n    import torch\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert torch_imports_of_core_tests() == []
