"""The Diagnostics report and the plugin action that copies and shows it."""
from __future__ import annotations

import dataclasses

import numpy as np
from osgeo import gdal
from qgis.core import Qgis
from qgis.PyQt.QtGui import QGuiApplication

import sinr_qgis
from sinr_qgis.core import resources
from sinr_qgis.toolbelt import diagnostics

LABELS = ("SINR plugin", "QGIS", "OS", "Python", "GDAL", "numpy", "scipy", "onnxruntime", "onnxruntime install",
          "prediction backend", "prediction speed", "matrix products", "training interpreter",
          "torch (training interpreter)", "training code", "bundled model")


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


def test_report_says_when_the_bundled_file_is_not_the_catalogued_one(monkeypatch):
    entry = resources.BUNDLED
    monkeypatch.setattr(resources, "BUNDLED", dataclasses.replace(entry, sha256="ab" * 32))
    assert diagnostics.model_lines()[0] == ("bundled model", (
        f"unavailable (BundleError: The bundled model {resources.BUNDLED_MODEL} is not the file the plugin shipped "
        f"(SHA-256 {entry.sha256[:12]}…, expected abababababab…): it was changed or damaged. Reinstall the "
        "plugin, or choose another .sinr model file.)"))


def test_report_text_is_aligned_plain_text():
    text = diagnostics.format_report([("a", "1"), ("longer label", "2")])
    assert text.splitlines()[2:] == ["a            : 1", "longer label : 2"]


def test_missing_interpreter_gives_reason_and_install_instructions(tmp_path):
    line = diagnostics.torch_report(str(tmp_path / "no-such-python"))
    assert line.startswith("unavailable:")
    assert "was not found" in line and "click 'Set up PyTorch for me'" in line and " -m pip install " in line


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
        assert dialog.isVisible() and dialog.report == ""  # shown at once, collected in a task
        assert "Collecting" in dialog.text.toPlainText() and not dialog.copy_button.isEnabled()
        qtbot.waitUntil(lambda: dialog.report != "", timeout=60_000)
        text = QGuiApplication.clipboard().text()
        assert text == dialog.report == dialog.text.toPlainText()
        assert "SINR for QGIS diagnostics" in text and "torch (training interpreter)" in text
        assert "not checked" not in text  # the action asks the training interpreter
        dialog.close()
    finally:
        plugin.unload()
    assert plugin.diagnostics_action is None


def test_report_measures_the_real_speed_in_this_process():
    import re
    import time

    start = time.perf_counter()
    entries = diagnostics.as_dict(diagnostics.speed_entries())
    print(f"\nspeed check: {time.perf_counter() - start:.2f} s; {entries}")
    speed = re.fullmatch(r"([\d,]+) locations/s with (numpy|onnxruntime) \(([\d,]+) points in ([\d.]+) s, "
                         r"([\d.]+) GFLOP/s\): (normal.*|SLOW, .+)", entries["prediction speed"])
    assert speed, entries["prediction speed"]
    rate, points, seconds = (float(speed[1].replace(",", "")), int(speed[3].replace(",", "")), float(speed[4]))
    # the seconds are printed to 0.01 s: rate x seconds gives the points to within rate x 0.005 s
    assert 0 < points <= 20_000 and abs(rate * seconds - points) <= rate * 0.005 + 1
    assert re.fullmatch(r"scipy BLAS: [\d.]+ GFLOP/s; numpy matmul [\d.]+ GFLOP/s", entries["matrix products"])


def test_backend_line_offers_the_button_not_a_pip_command(monkeypatch):
    from sinr_qgis.core import runtime

    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: False)
    line = diagnostics.inference_backend()
    assert line.startswith("numpy (onnxruntime is not installed: same results, slower; the Install onnxruntime "
                           "button of the SINR panel (or of this dialog) installs it)")
    assert "pip install" not in line


def test_missing_onnxruntime_gives_the_safe_manual_command(qgis_app, monkeypatch, tmp_path):
    from sinr_qgis.core import runtime
    from sinr_qgis.toolbelt import private_packages
    from sinr_qgis.toolbelt.dependencies import ONNXRUNTIME

    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: False)
    monkeypatch.setattr(private_packages, "private_packages_root", lambda: tmp_path)
    folder = private_packages.onnxruntime_folder()
    line = diagnostics.onnxruntime_install()
    head, command = line.split("; manual install (safe for QGIS's numpy): ")
    assert head == f"missing; private folder {folder} (not created)"
    assert command.endswith(f'-m pip install --no-deps --only-binary=:all: --target "{folder}" '
                            + " ".join(ONNXRUNTIME.requirements))
    assert "numpy" not in command.split("--target")[1].replace(str(folder), "")


def test_dialog_offers_the_install_button_only_without_onnxruntime(qgis_app, qtbot, monkeypatch):
    from sinr_qgis.gui import install_button
    from sinr_qgis.gui.diagnostics_dialog import DiagnosticsDialog
    from sinr_qgis.toolbelt.dependencies import InstallState

    for state, hidden in [(InstallState.MISSING, False), (InstallState.CURRENT, True)]:
        monkeypatch.setattr(install_button, "onnxruntime_install_state", lambda s=state: s)
        dialog = DiagnosticsDialog("report")
        qtbot.addWidget(dialog)
        button = dialog.findChild(install_button.OnnxruntimeInstallButton, "SinrInstallOnnxruntimeButton")
        assert button is dialog.install_button and button.isHidden() is hidden
