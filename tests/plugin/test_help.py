"""Help for an ecologist new to SINR: every algorithm's panel, its Help button, the plugin's guide."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from qgis.core import QgsApplication

import sinr_qgis
from sinr_qgis.core.resources import HELP_PAGE
from sinr_qgis.processing.help_text import HELP_SECTIONS
from sinr_qgis.processing.provider import SinrProvider

PREDICTIVE = ("predict_range", "species_at_points", "species_richness")
EVALUATION = ("evaluate_ranges", "evaluate_presence_absence")
CREDITS = ("FIA", "PalEON", "Doser", "FIESTA", "BIEN", "GBIF", "Little", "Cole")


def page_text() -> str:
    return HELP_PAGE.read_text(encoding="utf-8")


def anchors() -> set[str]:
    return set(re.findall(r'<a name="([^"]+)"', page_text()))


@pytest.fixture(scope="module")
def algorithms(qgis_app):
    provider = SinrProvider()
    provider.loadAlgorithms()
    algs = {alg.name(): alg for alg in provider.algorithms()}
    assert algs, "no algorithms registered"
    return algs


def test_every_algorithm_explains_the_model_and_points_to_the_guide(algorithms):
    for name, alg in algorithms.items():
        text = alg.shortHelpString()
        assert "About the model" in text and "presence-only" in text, name
        assert "<b>Help</b> button" in text, name
        url = urlparse(alg.helpUrl())
        assert url.scheme == "file" and Path(unquote(url.path)) == HELP_PAGE, (name, alg.helpUrl())
        assert url.fragment in anchors(), (name, url.fragment)


def test_predictions_say_the_score_is_relative_and_credit_the_data(algorithms):
    for name in PREDICTIVE:
        text = algorithms[name].shortHelpString()
        assert "not calibrated" in text and "relative" in text, name
        for credit in ("FIA", "BIEN", "GBIF", "Cole et al."):
            assert credit in text, (name, credit)


def test_evaluations_say_what_expert_ranges_are_good_and_bad_at(algorithms):
    for name in EVALUATION:
        text = algorithms[name].shortHelpString()
        assert "Expert ranges" in text and "good at" in text and "bad at" in text, name
        assert "prevalence" in text, name


def test_the_guide_covers_the_model_numbers_ranges_ap_training_and_credits():
    text = page_text()
    assert {"model", "numbers", "ranges", "ap", "training", "credits", "problems"} <= anchors()
    assert set(HELP_SECTIONS.values()) <= anchors()
    assert "not a calibrated chance of occupancy" in text
    assert "Good at:" in text and "Bad at:" in text
    for credit in CREDITS:
        assert credit in text, credit
    # Qt's rich text shows it: no scripts, no external resources.
    assert "<script" not in text and "src=" not in text


def test_help_action_opens_the_guide(qgis_iface, qgis_processing, qtbot):
    plugin = sinr_qgis.classFactory(qgis_iface)
    plugin.initGui()
    try:
        plugin.help_action.trigger()
        dialog = plugin._help_dialog
        qtbot.addWidget(dialog)
        assert dialog.isVisible()
        shown = dialog.browser.toPlainText()
        assert "What the model is" in shown and "Data credits of the bundled model" in shown
        dialog.close()
    finally:
        plugin.unload()
    assert plugin.help_action is None
    assert QgsApplication.processingRegistry().providerById("sinr") is None


def test_dock_help_button_opens_the_guide_at_reading_the_numbers(qgis_iface, qgis_processing, qtbot):
    plugin = sinr_qgis.classFactory(qgis_iface)
    plugin.initGui()
    try:
        plugin.show_dock(True)
        dock = plugin.dock
        dock.help_button.click()
        dialog = dock._help_dialog
        qtbot.addWidget(dialog)
        assert dialog.isVisible()
        assert "Reading the numbers" in dialog.browser.toPlainText()
        assert dialog.browser.verticalScrollBar().value() > 0  # scrolled to the section
        dialog.close()
    finally:
        plugin.unload()
