"""The Diagnostics report and the plugin action that copies and shows it."""
from __future__ import annotations

import numpy as np
from osgeo import gdal
from qgis.core import Qgis
from qgis.PyQt.QtGui import QGuiApplication

import sinr_qgis
from sinr_qgis.toolbelt import diagnostics

LABELS = ("SINR plugin", "QGIS", "OS", "Python", "GDAL", "numpy", "onnxruntime", "prediction backend",
          "training interpreter", "torch (training interpreter)", "training code", "bundled model")


def test_report_names_every_version_and_the_models():
    entries = diagnostics.as_dict(diagnostics.collect_diagnostics(probe_torch=False))
    for label in LABELS:
        assert label in entries, label
    assert entries["QGIS"].startswith(Qgis.QGIS_VERSION)
    assert entries["GDAL"] == gdal.__version__
    assert entries["numpy"].startswith(np.__version__)
    assert entries["SINR plugin"].startswith(diagnostics.plugin_version())
    assert entries["torch (training interpreter)"] == "not checked"
    assert "na_trees" in entries["bundled model"]


def test_report_text_is_aligned_plain_text():
    text = diagnostics.format_report([("a", "1"), ("longer label", "2")])
    assert text.splitlines()[2:] == ["a            : 1", "longer label : 2"]


def test_missing_interpreter_gives_reason_and_install_instructions(tmp_path):
    line = diagnostics.torch_report(str(tmp_path / "no-such-python"))
    assert line.startswith("unavailable:")
    assert "was not found" in line and "pip install torch" in line


def test_a_failing_part_reports_its_error_instead_of_raising():
    def broken() -> str:
        raise RuntimeError("boom")

    assert diagnostics._safe(broken) == "unavailable (RuntimeError: boom)"


def test_diagnostics_action_copies_and_shows_the_report(qgis_iface, qgis_processing, qtbot):
    plugin = sinr_qgis.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert plugin.diagnostics_action is not None
        QGuiApplication.clipboard().clear()
        plugin.diagnostics_action.trigger()
        dialog = plugin._diagnostics_dialog
        qtbot.addWidget(dialog)
        assert dialog.isVisible()
        text = QGuiApplication.clipboard().text()
        assert text == dialog.report == dialog.text.toPlainText()
        assert "SINR for QGIS diagnostics" in text and "torch (training interpreter)" in text
        assert "not checked" not in text  # the action asks the training interpreter
        dialog.close()
    finally:
        plugin.unload()
    assert plugin.diagnostics_action is None
