"""The test tree mirrors the packages, and the default run leaves out what spawns QGIS: every test
that boots qgis_process or a QGIS interpreter, packages the plugin or runs the demo is marked."""
from __future__ import annotations

import ast
import configparser
import re
import shlex
from pathlib import Path

from tests.conftest import ROOT

TESTS = ROOT / "tests"
# Rooms that are not a package: whole-plugin tests, the real desktop, shared helpers, fixtures
OTHER_ROOMS = {"plugin", "desktop", "helpers", "data"}
# What starts another QGIS (or packages the plugin): helper calls and the scripts they run
SPAWNERS = {"run_qgis_process", "qgis_process", "run_demo", "run_probe", "run_desktop"}
SCRIPTS = {"package.sh", "demo.py", "desktop.sh", "dependency_probe.py"}
SPAWN_NAMES = {"QGIS_PROCESS"}
DEFAULT_OUT = {"slow", "integration", "desktop"}


def _rooms() -> list[Path]:
    return sorted(p for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__")


def test_each_room_mirrors_a_package_and_is_importable():
    names = {room.name for room in _rooms()}
    assert "qgis" not in names  # the old mixed room
    for room in _rooms():
        assert (room / "__init__.py").is_file(), room
        if room.name not in OTHER_ROOMS:
            assert (ROOT / "sinr_qgis" / room.name).is_dir() or (ROOT / room.name).is_dir(), room.name
    assert {"core", "qgis_bridge", "processing", "gui", "tasks", "toolbelt", "training"} <= names


def _marks(decorators: list[ast.expr]) -> set[str]:
    """Names of ``pytest.mark.X`` in a decorator list or a ``pytestmark`` value."""
    return {node.attr for d in decorators for node in ast.walk(d)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "mark"}


def _spawns_directly(func: ast.AST) -> bool:
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SPAWNERS:
            return True
        if isinstance(node, ast.Name) and node.id in SPAWN_NAMES:
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in SCRIPTS:
            return True
    return False


def _unmarked_spawning_tests(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    module_marks = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            module_marks = _marks([node.value])
    # a function or fixture spawns if it spawns itself, or calls or asks for one of this module that does
    spawning = {f.name for f in funcs if _spawns_directly(f)} | {"qgis_process_profile"}  # tests/helpers' fixture
    grew = True
    while grew:
        more = {f.name for f in funcs if {a.arg for a in f.args.args} & spawning
                or any(isinstance(n, ast.Name) and n.id in spawning for n in ast.walk(f))} - spawning
        spawning |= more
        grew = bool(more)
    return [f.name for f in funcs if f.name.startswith("test_")
            and f.name in spawning
            and not (_marks(f.decorator_list) | module_marks) & {"integration", "desktop"}]


def test_every_test_that_spawns_qgis_or_packages_is_marked():
    unmarked = {p.relative_to(TESTS).as_posix(): names for p in sorted(TESTS.rglob("test_*.py"))
                if p.name != Path(__file__).name and (names := _unmarked_spawning_tests(p))}
    assert unmarked == {}


def test_the_scan_finds_the_spawning_tests_it_guards(tmp_path):
    """Proof that the scan above can fail: an unmarked copy of test_qgis_process.py is caught."""
    text = (TESTS / "plugin" / "test_qgis_process.py").read_text(encoding="utf-8")
    copy = tmp_path / "test_copy.py"
    copy.write_text(text.replace("pytestmark = pytest.mark.integration", ""), encoding="utf-8")
    assert _unmarked_spawning_tests(copy) == [
        "test_predict_range_runs_from_qgis_process",
        "test_qgis_process_reports_an_unknown_species_once_with_suggestions",
        "test_qgis_process_reports_a_failed_training_once_and_closes_its_pipes",
        "test_qgis_process_names_the_extent_it_needs"]


def test_the_default_run_leaves_out_slow_integration_and_desktop_and_make_test_runs_all():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "pytest.ini", encoding="utf-8")
    addopts = shlex.split(ini["pytest"]["addopts"])
    expression = addopts[addopts.index("-m") + 1]
    assert set(re.findall(r"not (\w+)", expression)) == DEFAULT_OUT
    declared = {line.split(":")[0].strip() for line in ini["pytest"]["markers"].strip().splitlines()}
    assert declared >= DEFAULT_OUT
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipes = dict(re.findall(r"^([\w-]+):.*\n\t(.*)$", makefile, re.M))
    assert recipes["test"].endswith('pytest -q -m ""')  # CI (.ci/run) runs `make test`: everything
    assert recipes["test-fast"].endswith("pytest -q")  # pytest.ini's default selection
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _test_module_imports(path: Path) -> list[str]:
    """The test modules (``test_*``) that ``path`` imports from, absolute or relative."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if base.split(".")[-1].startswith("test_"):
                found.append(base)
            found += [f"{base}.{a.name}" if node.module else base + a.name
                      for a in node.names if a.name.startswith("test_")]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[-1].startswith("test_")]
    return found


def test_shared_test_code_lives_in_helpers_not_in_test_modules():
    """A test module importing another runs (and collects) that one's module code: shared names go to
    tests/helpers/."""
    importers = {p.relative_to(TESTS).as_posix(): names for p in sorted(TESTS.rglob("*.py"))
                 if (names := _test_module_imports(p))}
    assert importers == {}


def test_the_import_scan_finds_absolute_and_relative_imports_of_test_modules(tmp_path):
    module = tmp_path / "test_x.py"
    module.write_text("from .test_cli import FAST\nfrom tests.gui.test_dock_layers import MapView\n"
                      "import tests.core.test_bundle\nfrom . import test_trainer\n"
                      "from tests.helpers.cli_helpers import write_csv\n", encoding="utf-8")
    assert _test_module_imports(module) == [".test_cli", "tests.gui.test_dock_layers", "tests.core.test_bundle",
                                            ".test_trainer"]
