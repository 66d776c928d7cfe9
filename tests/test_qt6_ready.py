"""The plugin's Python runs on QGIS 4 (Qt 6, PyQt6) as well as on QGIS 3.22+ (Qt 5, PyQt5).

QGIS's own migration script (``scripts/pyqt5_to_pyqt6`` in the QGIS repository) is neither on a
package registry nor reachable from CI, and its code may not be copied here, so this file applies
the same rules, rebuilt from facts about Qt 6, PyQt6 and QGIS 4:

* PyQt6 has only scoped enums: ``Qt.WaitCursor`` is gone, ``Qt.CursorShape.WaitCursor`` is the one
  spelling that works on both. Which enum each member belongs to is read from the Qt and QGIS
  modules loaded here (PyQt5 sip enums are types nested in their class; their members are also
  class attributes), subclasses included (``QFileDialog.Accepted`` is ``QDialog.DialogCode``).
* ``QVariant.Int`` etc. stay unscoped: QGIS 4 keeps them as aliases, ``QVariant.Type`` is gone.
* Removed in Qt 6 / PyQt6: ``exec_``, ``QRegExp``, ``QDesktopWidget``, ``qApp``,
  ``QFontMetrics.width``, ``activated[str]``-style overloads, compiled resources (``resources_rc``),
  ``QVariant()`` as NULL, ``QDateTime`` from eight numbers, a few renamed enum members, and
  ``int()`` of a flag (PyQt6 flags are ``enum.Flag``).
* Imports go through ``qgis.PyQt`` (never ``PyQt5``/``sip``; ``PyQt6`` only as an ``except
  ImportError`` fallback); ``QAction`` and friends are imported from ``qgis.PyQt.QtWidgets``, which
  QGIS 4 keeps for them, because QGIS 3.22's ``qgis.PyQt.QtGui`` does not have them; classes Qt 6
  moved to a module qgis.PyQt does not mirror (``QSvgWidget`` to ``QtSvgWidgets``) need a fallback.
* The scoped spellings the plugin writes must exist on the QGIS here (3.22), not only on newer ones.

The checker runs over every ``.py`` under ``sinr_qgis/`` and fails listing ``file:line`` and the form
to write instead; other tests prove it does fail on such code.
"""
from __future__ import annotations

import ast
import configparser
import enum
import functools
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sinr_qgis"

# The modules whose classes the plugin may name (QGIS's script scans the same set).
_INTROSPECTED = ("qgis.PyQt.QtCore", "qgis.PyQt.QtGui", "qgis.PyQt.QtWidgets", "qgis.PyQt.QtXml",
                 "qgis.PyQt.QtNetwork", "qgis.PyQt.QtSvg", "qgis.PyQt.QtPrintSupport", "qgis.PyQt.QtSql",
                 "qgis.PyQt.QtTest", "qgis.core", "qgis.gui", "qgis.analysis")

# Enum members that Qt 6 removed under their Qt 5 name: (class, member) -> scoped replacement.
_RENAMED_MEMBERS = {
    ("Qt", "MidButton"): "Qt.MouseButton.MiddleButton",
    ("Qt", "TextColorRole"): "Qt.ItemDataRole.ForegroundRole",
    ("Qt", "BackgroundColorRole"): "Qt.ItemDataRole.BackgroundRole",
    ("QPainter", "HighQualityAntialiasing"): "QPainter.RenderHint.Antialiasing",
    ("Qt", "ItemIsTristate"): "Qt.ItemFlag.ItemIsAutoTristate",
}

# Names that do not exist in Qt 6 / PyQt6 at all.
_REMOVED_NAMES = {
    "QRegExp": "QRegularExpression",
    "QRegExpValidator": "QRegularExpressionValidator",
    "QDesktopWidget": "QGuiApplication.primaryScreen() / QWidget.screen()",
    "qApp": "QApplication.instance()",
}

# Classes moved from QtWidgets to QtGui in Qt 6: QGIS 4 still serves them from qgis.PyQt.QtWidgets,
# while QGIS 3.22's qgis.PyQt.QtGui lacks them, so QtWidgets is the import that works on both.
_MOVED_TO_QTGUI = {"QAction", "QActionGroup", "QShortcut"}

# Classes Qt 6 moved to another module that qgis.PyQt does not re-export under the Qt 5 one: importing
# them needs a fallback (``try: <Qt 5 import> except ImportError: <Qt 6 import>``).
_MOVED_IN_QT6 = {
    ("qgis.PyQt.QtSvg", "QSvgWidget"): "QtSvgWidgets",
    ("qgis.PyQt.QtSvg", "QGraphicsSvgItem"): "QtSvgWidgets",
    ("qgis.PyQt.QtWidgets", "QOpenGLWidget"): "QtOpenGLWidgets",
    ("qgis.PyQt.QtWidgets", "QFileSystemModel"): "QtGui",
    ("qgis.PyQt.QtWidgets", "QUndoCommand"): "QtGui",
    ("qgis.PyQt.QtWidgets", "QUndoStack"): "QtGui",
}

# Signal overloads selected by type, removed with Qt 6's single-signature signals.
_STR_OVERLOADS = {"activated": "textActivated", "highlighted": "textHighlighted",
                  "currentIndexChanged": "currentTextChanged"}


def _is_enum_type(obj: object) -> bool:
    # PyQt5's sip enums have their own metaclass (not exported by name); PyQt6 and QGIS's
    # scoped enums are Python enums.
    from qgis.PyQt.QtCore import Qt

    return isinstance(obj, type) and (isinstance(obj, type(Qt.CursorShape)) or issubclass(obj, enum.Enum))


def _scoped_form(cls: type, name: str, value: object) -> str | None:
    """The scoped spelling of ``cls.<name>`` if that is an enum value, else None."""
    kind = type(value)
    if not _is_enum_type(kind):
        return None
    if isinstance(value, enum.Enum):
        return f"{kind.__qualname__}.{value.name}"
    scope = kind.__name__ if getattr(cls, kind.__name__, None) is kind else next(
        (a for a in dir(cls) if getattr(cls, a, None) is kind), None)
    if scope is None or scope == name:
        return None
    return f"{cls.__name__}.{scope}.{name}"


def _visit(cls: type, seen: set[type], forms: dict[tuple[str, str], set[str]]) -> None:
    """Add the scoped forms of the enum members ``cls`` and its nested classes reach to ``forms``."""
    if cls in seen:
        return
    seen.add(cls)
    for name in dir(cls):
        try:
            value = getattr(cls, name)
        except Exception:  # some sip descriptors raise on class access: not enums
            continue
        if (isinstance(value, type) and not _is_enum_type(value)
                and value.__qualname__.startswith(cls.__qualname__ + ".")):
            _visit(value, seen, forms)  # a nested class, such as QgsColorRampShader.ColorRampItem
            continue
        form = _scoped_form(cls, name, value)
        if form is not None:
            forms.setdefault((cls.__name__, name), set()).add(form)


@functools.lru_cache(maxsize=1)
def scoped_forms() -> dict[tuple[str, str], frozenset[str]]:
    """(class name, member name) -> the scoped spelling(s) of ``Class.member`` that Qt 5 and Qt 6 share.

    Built by introspecting every class (nested ones too) of the Qt and QGIS modules: a class reaches
    a member if ``getattr(cls, member)`` is an enum value, inherited ones included, so subclasses
    are covered. For a sip (PyQt5) enum the scope is the class attribute that is the value's enum
    type (``Qt.WaitCursor`` -> ``Qt.CursorShape.WaitCursor``). A Python enum value reached through a
    class attribute is a QGIS compatibility alias for an enum moved to ``Qgis``
    (``QgsCoordinateTransform.ReverseTransform``): its scoped spelling is the enum's own
    (``Qgis.TransformDirection.Reverse``). QVariant's types are left out: see :func:`qt6_problems`.
    """
    forms: dict[tuple[str, str], set[str]] = {}
    seen: set[type] = set()
    for module_name in _INTROSPECTED:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # an optional Qt module this build lacks: the plugin cannot use it either
        for obj in vars(module).values():
            if isinstance(obj, type) and not _is_enum_type(obj):
                _visit(obj, seen, forms)
    return {key: frozenset(value) for key, value in forms.items() if key[0] != "QVariant"}


@functools.lru_cache(maxsize=1)
def _all_forms() -> frozenset[str]:
    return frozenset(form for found in scoped_forms().values() for form in found)


@functools.lru_cache(maxsize=1)
def _qt_and_qgis_names() -> dict[str, object]:
    namespace: dict[str, object] = {}
    for module_name in _INTROSPECTED:
        try:
            namespace.update(vars(importlib.import_module(module_name)))
        except ImportError:
            continue
    return namespace


def _dotted(node: ast.expr) -> str | None:
    """``"Qt.CursorShape.WaitCursor"`` for that attribute chain; None for anything but names."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _class_name(node: ast.expr) -> str | None:
    """``Qt`` for ``Qt`` and for ``QtCore.Qt``: the class a dotted access starts from."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id.startswith("Qt"):
        return node.attr
    return None


def _unscoped_enum(node: ast.Attribute, scopes) -> str | None:
    owner = _class_name(node.value)
    if owner is None:
        return None
    if (owner, node.attr) in _RENAMED_MEMBERS:
        return f"{owner}.{node.attr} was removed in Qt 6: write {_RENAMED_MEMBERS[owner, node.attr]}"
    if owner == "QVariant" and node.attr == "Type":
        return "QVariant.Type is gone in PyQt6: write QVariant.Int etc. (QGIS 4 keeps those)"
    forms = scopes.get((owner, node.attr))
    if not forms:
        return None
    return f"unscoped enum {owner}.{node.attr}: write {' or '.join(sorted(forms))}"


def _renamed_scoped_member(node: ast.Attribute) -> str | None:
    # Qt.MouseButton.MidButton: scoped, but still the removed name.
    if isinstance(node.value, ast.Attribute):
        owner = _class_name(node.value.value)
        if (owner, node.attr) in _RENAMED_MEMBERS:
            return (f"{owner}.{node.value.attr}.{node.attr} was removed in Qt 6: "
                    f"write {_RENAMED_MEMBERS[owner, node.attr]}")
    return None


def _call_problem(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name) and func.id == "QVariant" and (
            not node.args or (len(node.args) == 1 and isinstance(node.args[0], ast.Attribute)
                              and _class_name(node.args[0].value) == "QVariant")):
        return "QVariant() as NULL does not work with PyQt6: use qgis.core.NULL"
    if isinstance(func, ast.Name) and func.id == "QDateTime":
        if len(node.args) == 8:
            return ("QDateTime(y, m, d, h, min, s, ms, spec) is gone in Qt 6: "
                    "write QDateTime(QDate(...), QTime(...), spec)")
        if (len(node.args) == 1 and isinstance(node.args[0], ast.Call)
                and isinstance(node.args[0].func, ast.Name) and node.args[0].func.id == "QDate"):
            return "QDateTime(QDate(...)) is gone in Qt 6: write QDateTime(QDate(...), QTime(0, 0, 0))"
    if isinstance(func, ast.Attribute) and func.attr == "desktop" and not node.args:
        return "QApplication.desktop() (QDesktopWidget) is gone in Qt 6: use QGuiApplication.primaryScreen()"
    return None


def _attribute_problem(node: ast.Attribute) -> str | None:
    if node.attr == "exec_":
        return "exec_ is gone in PyQt6: write exec()"
    if node.attr == "width" and isinstance(node.value, ast.Call):
        called = node.value.func
        if ((isinstance(called, ast.Attribute) and called.attr == "fontMetrics")
                or (isinstance(called, ast.Name) and called.id in ("QFontMetrics", "QFontMetricsF"))):
            return "QFontMetrics.width() is gone in Qt 6: write horizontalAdvance()"
    return None


def _import_problems(node: ast.Import | ast.ImportFrom, has_fallback: bool, is_fallback: bool) -> list[str]:
    problems = []
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        names = {alias.name for alias in node.names}
        modules = [module]
    else:
        names = set()
        modules = [alias.name for alias in node.names]
    for module in modules:
        root = module.split(".")[0]
        if root == "PyQt5":
            problems.append(f"import from {module}: import from qgis.PyQt instead")
        elif root == "PyQt6" and not is_fallback:
            problems.append(f"import from {module} fails on QGIS 3: import from qgis.PyQt, or only in an "
                            "`except ImportError:` fallback")
        elif root == "sip":
            problems.append("import sip: write `from qgis.PyQt import sip`")
        elif module == "qgis.PyQt.Qt":
            problems.append("qgis.PyQt.Qt is gone in QGIS 4: import Qt from qgis.PyQt.QtCore")
        if "resources_rc" in module.split(".") or "resources_rc" in names:
            problems.append("compiled resources (resources_rc) are gone in Qt 6: load icons by file path")
        if module == "qgis.PyQt.QtGui" and names & _MOVED_TO_QTGUI:
            moved = ", ".join(sorted(names & _MOVED_TO_QTGUI))
            problems.append(f"{moved} from qgis.PyQt.QtGui fails on QGIS 3.22: import from qgis.PyQt.QtWidgets")
        for name in sorted(names):
            if (module, name) in _MOVED_IN_QT6 and not has_fallback:
                problems.append(f"{name} is not in {module} on Qt 6 (it moved to {_MOVED_IN_QT6[module, name]}): "
                                "import it in `try:` with an `except ImportError:` fallback")
    return problems


def _guarded_imports(tree: ast.AST) -> tuple[set[int], set[int]]:
    """ids of the import nodes in a ``try:`` that has an ``except ImportError`` fallback, and in
    that fallback."""
    tried, fallbacks = set(), set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        handlers = [h for h in node.handlers if h.type is None or any(
            isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in ast.walk(h.type))]
        if handlers:
            tried |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
            fallbacks |= {id(n) for h in handlers for stmt in h.body for n in ast.walk(stmt)}
    return tried, fallbacks


def _int_of_enum(node: ast.Call, scopes) -> str | None:
    # PyQt6 flag enums are enum.Flag, which int() rejects; the Qt 5 and Qt 6 APIs take the enum itself.
    if not (isinstance(node.func, ast.Name) and node.func.id == "int" and len(node.args) == 1):
        return None
    for sub in ast.walk(node.args[0]):
        if not isinstance(sub, ast.Attribute):
            continue
        if (_class_name(sub.value), sub.attr) in scopes or _dotted(sub) in _all_forms():
            return "int() of a Qt enum fails on PyQt6 (flags are enum.Flag): pass the enum itself"
    return None


def qt6_problems(source: str, filename: str) -> list[str]:
    """Every line of ``source`` that would break on QGIS 4 / PyQt6, as ``"file:line: what to write"``."""
    scopes = scoped_forms()
    problems: list[tuple[int, str]] = []
    tree = ast.parse(source, filename=filename)
    tried, fallbacks = _guarded_imports(tree)
    for node in ast.walk(tree):
        found: list[str] = []
        if isinstance(node, ast.Attribute):
            found += filter(None, [_unscoped_enum(node, scopes), _renamed_scoped_member(node),
                                   _attribute_problem(node)])
        elif isinstance(node, ast.Call):
            found += filter(None, [_call_problem(node), _int_of_enum(node, scopes)])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found += _import_problems(node, id(node) in tried, id(node) in fallbacks)
            found += [f"{alias.name} is gone in Qt 6: use {_REMOVED_NAMES[alias.name]}"
                      for alias in node.names if alias.name in _REMOVED_NAMES]
        elif isinstance(node, ast.Name) and node.id in _REMOVED_NAMES:
            found.append(f"{node.id} is gone in Qt 6: use {_REMOVED_NAMES[node.id]}")
        elif isinstance(node, ast.FunctionDef) and node.name == "exec_":
            found.append("def exec_: name it exec (PyQt6 has no exec_)")
        elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
              and node.value.attr in _STR_OVERLOADS and isinstance(node.slice, ast.Name)
              and node.slice.id == "str"):
            found.append(f"{node.value.attr}[str] is gone in Qt 6: connect {_STR_OVERLOADS[node.value.attr]}")
        problems += [(node.lineno, text) for text in found]
    return [f"{filename}:{line}: {text}" for line, text in sorted(set(problems))]


def _package_sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_plugin_code_needs_no_qt6_migration():
    problems = []
    for path in _package_sources():
        problems += qt6_problems(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert problems == [], "Not QGIS 4 / PyQt6 ready:\n" + "\n".join(problems)


def test_every_scoped_enum_in_the_plugin_exists_on_this_qgis():
    """Each ``Class.Enum.member`` the plugin writes resolves here (QGIS 3.22), and to an enum value:
    a scoped spelling this QGIS lacks (``QgsCoordinateTransform.TransformDirection.ReverseTransform``:
    3.22 moved that enum to ``Qgis``) passes the scan above and fails at run time."""
    namespace = _qt_and_qgis_names()
    checked, missing = 0, []
    for path in _package_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            dotted = (_dotted(node) or "").split(".") if isinstance(node, ast.Attribute) else []
            if len(dotted) != 3 or not isinstance(namespace.get(dotted[0]), type):
                continue
            owner, scope, member = dotted
            if not _is_enum_type(getattr(namespace[owner], scope, None)):
                continue  # Class.attribute.method and the like
            checked += 1
            if not _is_enum_type(type(getattr(getattr(namespace[owner], scope), member, None))):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {owner}.{scope}.{member}")
    assert missing == []
    assert checked > 90  # the plugin writes about a hundred; none would mean the scan found nothing


@pytest.mark.parametrize(("owner", "member", "form"), [
    ("Qt", "WaitCursor", "Qt.CursorShape.WaitCursor"),
    ("QgsProcessing", "TypeVectorPoint", "QgsProcessing.SourceType.TypeVectorPoint"),
    ("QgsWkbTypes", "PointGeometry", "QgsWkbTypes.GeometryType.PointGeometry"),
    ("QgsWkbTypes", "NoGeometry", "QgsWkbTypes.Type.NoGeometry"),
    ("QgsTask", "CanCancel", "QgsTask.Flag.CanCancel"),
    ("QMessageBox", "Yes", "QMessageBox.StandardButton.Yes"),
    ("QSizePolicy", "Expanding", "QSizePolicy.Policy.Expanding"),
    ("QFont", "Bold", "QFont.Weight.Bold"),
    ("QFileDialog", "Accepted", "QFileDialog.DialogCode.Accepted"),  # inherited from QDialog
    ("QgsProcessingParameterNumber", "Double", "QgsProcessingParameterNumber.Type.Double"),
    ("QgsProcessingAlgorithm", "FlagNoThreading", "QgsProcessingAlgorithm.Flag.FlagNoThreading"),
    ("Qgis", "Warning", "Qgis.MessageLevel.Warning"),
    # QGIS 3.22 moved this enum to Qgis and left an alias on the class
    ("QgsCoordinateTransform", "ReverseTransform", "Qgis.TransformDirection.Reverse"),
])
def test_enum_map_is_read_from_the_modules(owner, member, form):
    assert scoped_forms()[owner, member] == {form}
    namespace = _qt_and_qgis_names()
    assert eval(form, {}, namespace) == getattr(namespace[owner], member)  # our own literals


def test_checker_flags_each_rule():
    snippet = "\n".join([
        "from PyQt5.QtCore import QRegExp",                                   # 1
        "from qgis.PyQt.QtWidgets import qApp",                               # 2
        "from qgis.PyQt.QtGui import QAction, QIcon",                         # 3
        "from . import resources_rc",                                         # 4
        "import sip",                                                         # 5
        "QApplication.setOverrideCursor(Qt.WaitCursor)",                      # 6
        "t = QgsProcessing.TypeVectorPoint; g = QgsWkbTypes.PointGeometry",   # 7
        "if dialog.exec_() == QDialog.Accepted: pass",                        # 8
        "box.setStandardButtons(QMessageBox.Yes | QMessageBox.No)",           # 9
        "w = self.fontMetrics().width('x')",                                  # 10
        "combo.activated[str].connect(f)",                                    # 11
        "v = QVariant(); u = QVariant(QVariant.Int)",                         # 12
        "d = QDateTime(2024, 1, 2, 3, 4, 5, 6, Qt.UTC)",                      # 13
        "b = Qt.MidButton; c = Qt.MouseButton.MidButton",                     # 14
        "r = QVariant.Type.String",                                           # 15
        "class D(QDialog):",                                                  # 16
        "    def exec_(self): return QtCore.Qt.AlignLeft",                    # 17
        "n = QgsProcessingParameterNumber(name, type=QgsProcessingParameterNumber.Double)",  # 18
        "s = QApplication.desktop().screenGeometry()",                        # 19
        "from qgis.PyQt.QtSvg import QSvgRenderer, QSvgWidget",               # 20
        "from PyQt6.QtSvgWidgets import QSvgWidget",                          # 21
        "item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop))",  # 22
    ])
    found = qt6_problems(snippet, "x.py")
    assert found == [
        "x.py:1: QRegExp is gone in Qt 6: use QRegularExpression",
        "x.py:1: import from PyQt5.QtCore: import from qgis.PyQt instead",
        "x.py:2: qApp is gone in Qt 6: use QApplication.instance()",
        "x.py:3: QAction from qgis.PyQt.QtGui fails on QGIS 3.22: import from qgis.PyQt.QtWidgets",
        "x.py:4: compiled resources (resources_rc) are gone in Qt 6: load icons by file path",
        "x.py:5: import sip: write `from qgis.PyQt import sip`",
        "x.py:6: unscoped enum Qt.WaitCursor: write Qt.CursorShape.WaitCursor",
        "x.py:7: unscoped enum QgsProcessing.TypeVectorPoint: write QgsProcessing.SourceType.TypeVectorPoint",
        "x.py:7: unscoped enum QgsWkbTypes.PointGeometry: write QgsWkbTypes.GeometryType.PointGeometry",
        "x.py:8: exec_ is gone in PyQt6: write exec()",
        "x.py:8: unscoped enum QDialog.Accepted: write QDialog.DialogCode.Accepted",
        "x.py:9: unscoped enum QMessageBox.No: write QMessageBox.StandardButton.No",
        "x.py:9: unscoped enum QMessageBox.Yes: write QMessageBox.StandardButton.Yes",
        "x.py:10: QFontMetrics.width() is gone in Qt 6: write horizontalAdvance()",
        "x.py:11: activated[str] is gone in Qt 6: connect textActivated",
        "x.py:12: QVariant() as NULL does not work with PyQt6: use qgis.core.NULL",
        "x.py:13: QDateTime(y, m, d, h, min, s, ms, spec) is gone in Qt 6: "
        "write QDateTime(QDate(...), QTime(...), spec)",
        "x.py:13: unscoped enum Qt.UTC: write Qt.TimeSpec.UTC",
        "x.py:14: Qt.MidButton was removed in Qt 6: write Qt.MouseButton.MiddleButton",
        "x.py:14: Qt.MouseButton.MidButton was removed in Qt 6: write Qt.MouseButton.MiddleButton",
        "x.py:15: QVariant.Type is gone in PyQt6: write QVariant.Int etc. (QGIS 4 keeps those)",
        "x.py:17: def exec_: name it exec (PyQt6 has no exec_)",
        "x.py:17: unscoped enum Qt.AlignLeft: write Qt.AlignmentFlag.AlignLeft",
        "x.py:18: unscoped enum QgsProcessingParameterNumber.Double: write QgsProcessingParameterNumber.Type.Double",
        "x.py:19: QApplication.desktop() (QDesktopWidget) is gone in Qt 6: use QGuiApplication.primaryScreen()",
        "x.py:20: QSvgWidget is not in qgis.PyQt.QtSvg on Qt 6 (it moved to QtSvgWidgets): "
        "import it in `try:` with an `except ImportError:` fallback",
        "x.py:21: import from PyQt6.QtSvgWidgets fails on QGIS 3: import from qgis.PyQt, "
        "or only in an `except ImportError:` fallback",
        "x.py:22: int() of a Qt enum fails on PyQt6 (flags are enum.Flag): pass the enum itself",
    ]


def test_checker_accepts_the_forms_that_work_on_both():
    snippet = "\n".join([
        "from qgis.PyQt.QtCore import Qt, QVariant, QDateTime, QDate, QTime",
        "from qgis.PyQt.QtWidgets import QAction, QApplication, QDialog, QMessageBox",
        "from qgis.PyQt import sip",
        "from qgis.core import NULL, QgsField, QgsProcessing, QgsWkbTypes",
        "QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)",
        "t = QgsProcessing.SourceType.TypeVectorPoint; g = QgsWkbTypes.GeometryType.PointGeometry",
        "if dialog.exec() == QDialog.DialogCode.Accepted: pass",
        "box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)",
        "f = QgsField('n', QVariant.Int); v = NULL",
        "w = self.fontMetrics().horizontalAdvance('x'); app = QApplication.instance()",
        "combo.textActivated.connect(f); combo.activated.connect(g)",
        "d = QDateTime(QDate(2024, 1, 2), QTime(3, 4, 5, 6), Qt.TimeSpec.UTC)",
        "m = Qt.MouseButton.MiddleButton; kind = QgsWkbTypes.geometryType(layer.wkbType())",
        "x = QgsProcessing.SourceType; y = dialog.Accepted",  # an enum type itself; no class name known
        "item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop); n = int(count)",
        "try:",
        "    from qgis.PyQt.QtSvg import QSvgWidget",
        "except ImportError:",
        "    from PyQt6.QtSvgWidgets import QSvgWidget",
    ])
    assert qt6_problems(snippet, "ok.py") == []


def test_metadata_lets_qgis_3_and_4_install_the_plugin():
    meta = configparser.ConfigParser()
    meta.optionxform = str  # keys are camelCase
    meta.read(PACKAGE / "metadata.txt", encoding="utf-8")
    general = meta["general"]
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["qgisMaximumVersion"] == "4.99"
    assert general["supportsQt6"] == "True"
