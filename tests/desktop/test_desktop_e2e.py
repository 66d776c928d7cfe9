"""End-to-end: the real QGIS desktop, under Xvfb, used as a user would (tests/desktop/e2e_script.py).

One QGIS session runs every step; this module starts it once, then each test checks one step's
findings and screenshots. Screenshots are kept as artifacts in build/screenshots/checkout/. This walk
runs the plugin from the checkout with the project's venv (onnxruntime, and torch for training);
test_first_afternoon.py walks a zip install on QGIS's own Python.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from qgis.PyQt.QtGui import QImage

from sinr_qgis.core.resources import BUNDLED_MODEL
from tests.conftest import SHARED_DATA
from tests.desktop.qgis_desktop import ROOT, require_desktop, run_desktop
from tests.helpers.desktop_shots import (
    assert_paints_its_data,
    check_window_shot,
    colour_fraction,
    non_background_fraction,
    publish_artifacts,
    step,
)

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

SPECIES = "Acer rubrum"


STAND_IN_SPECIES = (("acerrubr", "Acer rubrum"), ("queralba", "Quercus alba"), ("lirituli", "Liriodendron tulipifera"),
                    ("acersacr", "Acer saccharum"), ("fagugran", "Fagus grandifolia"))


def make_stand_in_model(path: Path) -> Path:
    """A small random-weight bundle with real species codes, used until the bundled model exists."""
    import torch

    from sinr_qgis.core.bundle import Species
    from training.export import export_bundle
    from training.model import SinrModel

    torch.manual_seed(0)
    model = SinrModel(len(STAND_IN_SPECIES), "sin_cos", 0, width=32, depth=2)
    species = [Species(i, code, name, 100) for i, (code, name) in enumerate(STAND_IN_SPECIES)]
    export_bundle(model, species, path, name="Stand-in (random weights)")
    return path


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, little_ranges):
    require_desktop()
    tmp = tmp_path_factory.mktemp("desktop")
    # Screenshots are taken and checked in this run's own folder, then published as artifacts, so
    # two test runs at the same time (a shared checkout) never read each other's images.
    shots = tmp / "screenshots"
    model = ""
    if not BUNDLED_MODEL.is_file():
        model = str(make_stand_in_model(tmp / "stand_in.sinr"))  # until the bundled model lands
    run = run_desktop(
        tmp / "profiles", ROOT / "sinr_qgis", ROOT / "tests" / "desktop" / "e2e_script.py",
        tmp / "result.json", with_venv=True, timeout=240,
        settings={"sinr_qgis/training/python": str(ROOT / ".venv" / "bin" / "python")},
        extra_env={"SINR_SCREENSHOTS": str(shots), "SINR_SHARED_DATA": str(SHARED_DATA),
                   "SINR_E2E_RANGES": str(little_ranges),
                   "SINR_E2E_WORK": str(tmp / "work"), "SINR_E2E_MODEL": model,
                   "SINR_E2E_SPECIES": SPECIES, "SINR_E2E_PYTHON": str(ROOT / ".venv" / "bin" / "python"),
                   "SINR_E2E_DEADLINE_S": os.environ.get("SINR_E2E_DEADLINE_S", "190")})
    shots.mkdir(exist_ok=True)
    (shots / "qgis.log").write_text(run.log)
    (shots / "e2e_result.json").write_text(json.dumps(run.result, indent=1))
    publish_artifacts(shots, "checkout")
    assert run.result, f"QGIS gave no result (rc {run.returncode}):\n{run.log[-4000:]}"
    assert run.result.get("finished") == "done", run.result
    return run.result


def test_the_plugin_is_loaded_with_its_actions(e2e):
    start = step(e2e, "start")
    assert "sinr_qgis" in start["plugins"]
    assert start["window_visible"] and start["provider"]
    assert "sinr:predict_range" in start["algorithms"]
    assert any("Diagnostics" in t for t in start["menu"]), start["menu"]
    assert not start["torch_loaded"] and not e2e["torch_loaded_at_end"]
    check_window_shot(e2e, "01_start")


def test_prediction_from_the_toolbox_adds_a_styled_layer_that_renders(e2e):
    pred = step(e2e, "predict_processing")
    layer = pred["layer"]
    assert layer["valid"] and layer["renderer"] == "singlebandpseudocolor", layer
    assert layer["crs"] == "EPSG:4326"
    # Land east of -100 degrees fills well over a third of the extent; ocean is transparent.
    assert 0.3 < pred["rendered"]["painted_fraction"] < 0.95, pred["rendered"]
    assert pred["rendered"]["distinct_colours"] > 10
    info = check_window_shot(e2e, "02_predict_processing")
    assert non_background_fraction(info["path"], info["canvas_rect"], info["canvas_background"]) > 0.15


def test_the_dock_predicts_the_canvas_extent_and_adds_a_styled_layer(e2e):
    start = step(e2e, "start")
    assert start["dock"] == "SinrDock" and start["dock_visible"]
    assert not start["dock_created_at_start"]  # the model is loaded on first use, not at QGIS start
    pred = step(e2e, "predict_dock")
    assert pred["completions"] >= 1  # the species completer offered the typed species
    layer = pred["layer"]
    assert layer["valid"] and layer["renderer"] == "singlebandpseudocolor", layer
    assert 0.0 < layer["opacity"] <= 1.0
    assert pred["progress"] == 100 and pred["status"].startswith("Added"), pred["status"]
    assert_paints_its_data(pred["rendered"])
    info = check_window_shot(e2e, "02_predict_dock")
    assert non_background_fraction(info["path"], info["canvas_rect"], info["canvas_background"]) > 0.15


def test_what_lives_here_lists_ranked_species(e2e):
    here = step(e2e, "what_lives_here")
    items = here["items"]
    assert 1 <= len(items) <= 10
    probs = [float(item.rsplit(" ", 1)[1]) for item in items]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    assert "40.8" in here["label"] and "-77.5" in here["label"]
    check_window_shot(e2e, "03_what_lives_here")


def test_comparison_from_the_toolbox_gives_a_mean_ap(e2e):
    comp = step(e2e, "compare_processing")
    assert comp["features"] == 1 and comp["N_SPECIES"] == 1
    assert 0.0 < comp["MAP"] <= 100.0


def test_comparison_in_the_dock_shows_ap_curve_and_the_expert_outline(e2e):
    comp = step(e2e, "compare_dock")
    assert comp["field"] == "code"  # the species field was found by matching the model's species
    assert 0.0 < comp["ap_percent"] <= 100.0 and 0.0 < comp["prevalence"] < 1.0
    assert f"AP <b>{comp['ap_percent']:.2f} %</b>" in comp["text"]
    assert comp["curve_visible"]
    assert comp["outline"].startswith("Expert range") and comp["outline_features"] == 1
    info = check_window_shot(e2e, "04_compare")
    # The outline (#e0115f) is drawn over the prediction inside the canvas.
    assert colour_fraction(info["path"], info["canvas_rect"], "#e0115f") > 0.002
    assert non_background_fraction(info["path"], info["canvas_rect"], info["canvas_background"]) > 0.15


def test_training_from_a_point_layer_runs_in_the_background_and_lists_the_model(e2e):
    train = step(e2e, "train")
    assert train["records"] == 1000 and train["loss"] == "an_ssdl"
    assert 0 < train["running"]["progress"] <= 100  # seen while QGIS stayed responsive
    assert "training my_trees.sinr" in train["running"]["description"]
    assert any(item.startswith("My trees (5 species") for item in train["items"]), train["items"]
    assert train["current"].startswith("My trees") and train["n_species"] == 5
    assert train["model_label"].startswith("My trees")
    layer = train["layer"]
    assert layer["valid"] and layer["renderer"] == "singlebandpseudocolor"
    assert_paints_its_data(train["rendered"], colours=1)
    check_window_shot(e2e, "05_training_running")
    info = check_window_shot(e2e, "05_trained_model")
    assert non_background_fraction(info["path"], info["canvas_rect"], info["canvas_background"]) > 0.15
    assert QImage(e2e["screenshots"]["05_train_dialog"]["path"]).height() > 400


def test_the_dock_help_opens_the_guide(e2e):
    help_ = step(e2e, "help")
    assert help_["has_numbers"] and help_["has_credits"] and help_["scrolled"]
    assert QImage(e2e["screenshots"]["07_help"]["path"]).width() > 400


def test_diagnostics_report_is_copied(e2e):
    diag = step(e2e, "diagnostics")
    text = diag["clipboard"]
    assert text.startswith("SINR for QGIS diagnostics")
    for label in ("QGIS", "GDAL", "numpy", "onnxruntime", "torch (training interpreter)", "bundled model"):
        assert label in text
    assert QImage(e2e["screenshots"]["06_diagnostics"]["path"]).width() > 400
