"""The dock, the train dialog, the compare panel, the model list and the plugin menu show their words
through Qt's translation (a translator installed is used), and the whole plugin translates fixed
templates only: the values are put in after translating, never translated with them."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from qgis.core import QgsCoordinateReferenceSystem
from qgis.PyQt.QtCore import QCoreApplication, QTranslator

import sinr_qgis
from sinr_qgis.core import resources
from sinr_qgis.gui.compare_panel import ComparePanel, CompareSource
from sinr_qgis.gui.model_list import ACTION_ROLE, IMPORT_CHECKPOINT, OPEN_FILE, ModelChooser, model_summary
from sinr_qgis.gui.train_dialog import TrainDialog
from tests.helpers.prediction_helpers import bundle, model_file  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401

PACKAGE = Path(sinr_qgis.__file__).parent
MODULES = [PACKAGE / "gui" / n for n in ("dock.py", "train_dialog.py", "compare_panel.py", "model_list.py")] + [
    PACKAGE / "plugin.py"]
CONTEXTS = {"SinrDock", "TrainDialog", "ComparePanel", "ModelChooser", "SinrPlugin"}
# Qt calls that put a text on screen, and which of their arguments is the text
SETTERS = {"setText": 0, "setToolTip": 0, "setPlaceholderText": 0, "setWindowTitle": 0, "setTitle": 0,
           "setDefaultText": 0, "setSpecialValueText": 0, "addRow": 0, "addButton": 0, "addItem": 0,
           "QPushButton": 0, "QLabel": 0, "QCheckBox": 0, "QRadioButton": 0, "QGroupBox": 0,
           "QgsCollapsibleGroupBox": 0, "QAction": 1}


class _Marking(QTranslator):
    """Translates every text of the five contexts into «text», so a shown text tells whether it went through tr()."""

    def translate(self, context, source, disambiguation=None, n=-1):  # Qt override
        return f"«{source}»" if context in CONTEXTS else ""


@pytest.fixture
def marking(qgis_app):
    translator = _Marking()
    QCoreApplication.installTranslator(translator)
    yield
    QCoreApplication.removeTranslator(translator)


def _name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def _has_words(arg: ast.expr) -> bool:
    """Whether a literal or f-string has words of its own (outside HTML tags and placeholders)."""
    parts = arg.values if isinstance(arg, ast.JoinedStr) else [arg]
    text = "".join(p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str))
    return any(c.isalpha() for c in re.sub(r"<[^>]*>", "", text))


def _literal_texts(path: Path) -> list[str]:
    """``line: text`` of every literal with words given straight to a Qt text setter in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and _name(node) in SETTERS and len(node.args) > SETTERS[_name(node)]:
            arg = node.args[SETTERS[_name(node)]]
            if isinstance(arg, ast.JoinedStr | ast.Constant) and _has_words(arg):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(arg)[:60]}")
    return found


def _runtime_translations(path: Path) -> list[str]:
    """``line: text`` of every tr()/translate() of a text built at run time (f-string, +, %)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and _name(node) in ("tr", "_tr", "translate") and node.args:
            arg = node.args[-1] if _name(node) == "translate" else node.args[0]
            if isinstance(arg, ast.JoinedStr | ast.BinOp):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(arg)[:60]}")
    return found


def test_every_text_given_to_a_widget_goes_through_tr():
    assert [t for p in MODULES for t in _literal_texts(p)] == []


def test_no_text_built_at_run_time_is_translated():
    """Anywhere in the plugin (the Processing help too): a translator sees fixed templates only."""
    assert [t for p in sorted(PACKAGE.rglob("*.py")) for t in _runtime_translations(p)] == []


def test_the_scans_find_what_they_guard(tmp_path):
    """Proof that the two scans above can fail."""
    bad = tmp_path / "bad.py"
    bad.write_text('b = QPushButton("Train", self)\nlabel.setText(f"Predicting {n}")\n'
                   'x = self.tr(f"Comparing {n} species")\ny = self.tr("a " + name)\n'
                   'ok = QPushButton(self.tr("Train"), self)\nform.addRow("", widget)\n'
                   'label.setText(f"<b>{name}</b>: {value}")\n', encoding="utf-8")
    assert _literal_texts(bad) == ['bad.py:1: \'Train\'', "bad.py:2: f'Predicting {n}'"]
    assert _runtime_translations(bad) == ["bad.py:3: f'Comparing {n} species'", "bad.py:4: 'a ' + name"]


def test_the_model_list_shows_translated_entries_and_keeps_its_action_keys(marking, bundle, qtbot):  # noqa: F811
    chooser = ModelChooser(choose=lambda _path: True)
    qtbot.addWidget(chooser)
    combo = chooser.combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert texts[0] == f"«Bundled model ({resources.BUNDLED.label})»"  # the label put in after translating
    assert texts[-2:] == ["«Open model file…»", "«Import SINR checkpoint…»"]
    assert [combo.itemData(combo.count() - k, ACTION_ROLE) for k in (2, 1)] == [OPEN_FILE, IMPORT_CHECKPOINT]
    assert chooser.train_button.text() == "«Train…»"
    summary = model_summary(bundle)
    assert summary.startswith(f"«{bundle.n_species:,} species»")
    assert "«. It maps them from the location alone (no climate or land-cover layers).»" in summary


def test_the_train_dialog_and_compare_panel_are_translated(marking, qgis_canvas, bundle, qtbot):  # noqa: F811
    dialog = TrainDialog()
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "«Train a SINR model»" and dialog.train_button.text() == "«Train»"
    assert dialog.species_column.placeholderText().startswith("«detected (e.g. ")
    # two fragments: the note is translated on its own, then put in the hint's template
    assert dialog.source_column.placeholderText().endswith(")«; optional»»")
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    panel = ComparePanel(CompareSource(bundle=lambda: bundle, species_text=lambda: "sp001", covariates=lambda: None,
                                       canvas=lambda: qgis_canvas, clear_status=lambda: None))
    qtbot.addWidget(panel)
    assert panel.title() == "«Compare with range maps»" and panel.compare_button.text() == "«Compare»"
    panel.zoom_to_ranges()  # no range layer: the panel's own message, translated
    assert panel.result_label.text().startswith("«Choose a model, a range layer")
    panel.shutdown()


def test_the_plugin_menu_is_translated(marking, qgis_iface, qgis_processing):
    plugin = sinr_qgis.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert plugin.menu == "«&SINR Species Ranges»"
        assert [a.text() for a in (plugin.dock_action, plugin.diagnostics_action, plugin.help_action)] == [
            "«Species ranges panel»", "«Diagnostics…»", "«Help…»"]
    finally:
        plugin.unload()
