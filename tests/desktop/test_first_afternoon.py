"""A new user's first afternoon (issue 15) in the real QGIS desktop: the plugin installed from its
zip into a clean profile, QGIS's own Python (no onnxruntime, no torch). tests/desktop/first_afternoon.py
walks it in one QGIS session; each test here checks one step's findings and screenshots, which are
kept as artifacts in build/screenshots/afternoon/ (the README's come from there). The walk ends with
the rest of the job (issue 10): PyTorch set up from the Train dialog, a model trained from a point
layer and an official-layout checkpoint imported, each mapping a species pixel for pixel as the model
itself computes it.
"""
from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from qgis.PyQt.QtGui import QImage

from tests.desktop.official_checkpoint import TAXA, fit_official_checkpoint
from tests.desktop.qgis_desktop import ROOT, build_plugin_zip, require_desktop, run_desktop, unzip_plugin
from tests.helpers.desktop_shots import (
    assert_paints_its_data,
    check_window_shot,
    colour_fraction,
    non_background_fraction,
    publish_artifacts,
    step,
)
from tests.helpers.setup_helpers import local_torch_source

pytestmark = [pytest.mark.desktop, pytest.mark.slow]


@pytest.fixture(scope="module")
def afternoon(tmp_path_factory, little_ranges, shared_data):
    require_desktop()
    tmp = tmp_path_factory.mktemp("afternoon")
    plugin = unzip_plugin(build_plugin_zip(tmp / "package"), tmp / "installed")
    shots, temp = tmp / "screenshots", tmp / "temp"
    temp.mkdir()
    # "Set up PyTorch for me" from the torch wheel already on this machine's disk (no download),
    # and an official-layout checkpoint made here, where torch is, before QGIS starts.
    wheels = local_torch_source(tmp / "wheels")
    official = fit_official_checkpoint(tmp / "official", shared_data)
    # QGIS's own Python (no venv on its path) and /usr/bin/python3 for training: a stock machine.
    run = run_desktop(
        tmp / "profiles", plugin, ROOT / "tests" / "desktop" / "first_afternoon.py", tmp / "result.json",
        with_venv=False, copy=True, timeout=600, profile="afternoon",
        settings={"sinr_qgis/training/python": "/usr/bin/python3"},
        extra_env={"SINR_SCREENSHOTS": str(shots), "SINR_E2E_RANGES": str(little_ranges),
                   "SINR_SHARED_DATA": str(shared_data), "SINR_E2E_WHEELS": str(wheels or ""),
                   "SINR_E2E_CHECKPOINT": str(official.path), "SINR_E2E_NAMES": str(official.names),
                   "SINR_E2E_WORK": str(tmp / "work"), "TMPDIR": str(temp), "SINR_E2E_DEADLINE_S": "560"})
    shots.mkdir(exist_ok=True)
    (shots / "qgis.log").write_text(run.log)
    (shots / "e2e_result.json").write_text(json.dumps(run.result, indent=1))
    publish_artifacts(shots, "afternoon")
    assert run.result, f"QGIS gave no result (rc {run.returncode}):\n{run.log[-4000:]}"
    assert run.result.get("finished") == "done", run.result
    profile = tmp / "profiles" / "profiles" / "afternoon"
    yield {**run.result, "tmp": tmp, "temp": temp, "profiles": tmp / "profiles", "profile": profile,
           "wheels": wheels, "official": official}
    # the training Python is ~1 GB: not left behind in pytest's kept temporary folders
    shutil.rmtree(profile / "python" / "dependencies" / "sinr_qgis" / "training-python", ignore_errors=True)


def test_the_zip_install_runs_on_qgis_own_python_with_a_narrow_dock(afternoon):
    start = step(afternoon, "start")
    assert start["plugin_file"].startswith(str(afternoon["profiles"] / "profiles" / "afternoon")), start
    assert start["importable"] == {"onnxruntime": False, "torch": False, "training": False}
    assert start["dock"] == "SinrDock" and start["dock_visible"]
    assert 0 < start["dock_width"] <= 300
    # Predict on QGIS's start page (no map shown yet): one message saying what to do, nothing started
    page = start["start_page"]
    assert not page["canvas_visible"] and not page["task"]
    assert page["status"].startswith("The map shows no area yet (QGIS's start page is open): create or open"), page
    check_window_shot(afternoon, "01_start")


def test_the_first_map_comes_with_numpy_and_the_install_button_sits_by_the_backend(afternoon):
    pred = step(afternoon, "predict_numpy")
    assert pred["task_started"] and pred["backend"] == "numpy", pred
    assert pred["status"].startswith("Added Acer rubrum ("), pred["status"]  # done within the step's timeout
    assert pred["layer"]["valid"] and pred["layer"]["renderer"] == "singlebandpseudocolor"
    assert_paints_its_data(pred["rendered"])
    assert "numpy" in pred["backend_text"]
    assert pred["install_visible"] and pred["install_text"] == "Install onnxruntime"
    bx, by, bw, bh = pred["backend_rect"]
    ix, iy, _iw, ih = pred["install_rect"]
    assert ix >= bx + bw - 1 and iy < by + bh and by < iy + ih  # right of the backend line, on its row
    assert pred["dock_width"] <= 300
    info = check_window_shot(afternoon, "a01_predict_numpy")
    assert non_background_fraction(info["path"], info["canvas_rect"], info["canvas_background"]) > 0.15


def test_diagnostics_measure_numpy_in_qgis_and_name_the_blas_it_avoids(afternoon):
    text = step(afternoon, "diagnostics")["clipboard"]
    lines = dict(re.findall(r"^(\S[^:\n]*?)\s+: (.*)$", text, re.M))
    assert lines["onnxruntime"] == "not installed"
    speed = lines["prediction speed"]
    assert re.fullmatch(r"[\d,]+ locations/s with numpy \([\d,]+ points in [\d.]+ s, [\d.]+ GFLOP/s\): normal; "
                        r"onnxruntime is usually faster still: .*", speed), speed
    products = lines["matrix products"]
    assert products.startswith("scipy BLAS: ") and "libgslcblas.so" in products, products
    assert products.endswith("; the plugin uses scipy's BLAS instead)"), products
    assert QImage(afternoon["screenshots"]["06_diagnostics"]["path"]).width() > 400


def test_species_field_suggests_near_misses_warns_of_poor_maps_and_lists_species(afternoon):
    sp = step(afternoon, "species")
    assert "“Acer rubra” is not in this model. Did you mean: " in sp["typo_text"]
    assert "<a href='s0'>Acer rubrum (acerrubr)</a>" in sp["typo_text"], sp["typo_text"]
    assert sp["corrected"] == "Acer rubrum"  # the link corrects the field
    assert "color:#b00020" in sp["poor_text"] and "⚠ Poor map" in sp["poor_text"]
    assert "(AP 12.5%)" in sp["poor_text"], sp["poor_text"]
    assert sp["list_rows"] == 169 and sp["list_filtered"] == ["pseumenz"]
    assert sp["list_title"] == "Species of na_trees_coords_v2"
    assert QImage(afternoon["screenshots"]["a02_species_list"]["path"]).height() > 300
    check_window_shot(afternoon, "a02_poor_warning")


def test_each_species_gets_its_layer_and_predicting_again_replaces_it(afternoon):
    lay = step(afternoon, "layers")
    assert lay["two_names"] == ["Acer rubrum", "Quercus alba"]
    assert lay["group_exclusive"] is True
    children = {c["name"]: c["checked"] for c in lay["group_children"]}
    assert children == {"Acer rubrum": True, "Quercus alba": False}, lay["group_children"]
    again = lay["again"]
    assert again["task_started"] and again["status"].startswith("Updated Acer rubrum"), again
    assert again["after"]["id"] == again["before"]["id"] and again["after"]["index"] == again["before"]["index"]
    assert again["after"]["extent"] != again["before"]["extent"]
    assert lay["opacity"]["layers"] == {"Acer rubrum": 0.4, "Quercus alba": 0.4}
    assert lay["legend"]["ends"] == ["0 low relative score", "1 high relative score"]
    assert not any("absent" in i or "present" in i for i in lay["legend"]["items"])
    meta = lay["douglas"]["metadata"]
    assert lay["douglas"]["name"] == "Pseudotsuga menziesii"
    assert (meta["RELIABILITY"], meta["N_TRAIN"], meta["RANGES_AP"]) == ("poor", "106", "0.1254")
    info = check_window_shot(afternoon, "a03_two_species")
    assert non_background_fraction(info["path"], info["canvas_rect"], info["canvas_background"]) > 0.15


def test_zoom_full_predicts_the_part_on_the_globe_with_a_note(afternoon):
    zf = step(afternoon, "zoom_full")
    assert zf["crs"] == "EPSG:4326" and zf["view"][3] > 90  # Zoom Full on the world map reaches past the pole
    assert "lies off the globe" in zf["status"] and "left empty (nodata)" in zf["status"], zf["status"]
    raster = zf["raster"]
    assert raster["empty_top_rows"] >= 1 and raster["valid"] > 1000, raster
    check_window_shot(afternoon, "a04_zoom_full")


def clicked(label: str) -> tuple[float, float]:
    """(lat, lon) that "what lives here" reports: the clicked pixel's map point, within a pixel (about
    0.08 degrees at this view) of the point the script aimed at."""
    lat, lon = re.match(r"At lat ([-\d.]+), lon ([-\d.]+)", label).groups()
    return float(lat), float(lon)


def test_what_lives_here_marks_water_and_lists_species_on_land(afternoon):
    here = step(afternoon, "what_lives_here")
    water = here["water"]
    assert clicked(water["label"]) == pytest.approx((35.0, -40.0), abs=0.1)
    assert "This point is on water (sea or ocean" in water["label"], water
    assert water["items"] == 0 and water["marker_visible"]
    x, y = water["marker_window_pos"]
    # the red cross is drawn in the screenshot where the user clicked (ocean is blank there)
    assert colour_fraction(afternoon["screenshots"]["a05_here_water"]["path"], [x - 10, y - 10, 20, 20],
                           "#dc1e1e") > 0.05
    land = here["land"]
    scores = [float(item.rsplit(" ", 1)[1]) for item in land["items"]]
    assert 1 <= len(scores) <= 10 and scores == sorted(scores, reverse=True)
    assert clicked(land["label"]) == pytest.approx((40.8, -77.5), abs=0.1) and land["marker_visible"]
    assert here["tool_off_marker"]  # the marker goes with the tool
    check_window_shot(afternoon, "a05_here_list")


def test_compare_preselects_the_ranges_and_compares_both_species_in_a_task(afternoon):
    comp = step(afternoon, "compare")
    assert (comp["preselected_layer"], comp["preselected_field"]) == ("Little ranges", "code")
    assert comp["running_after_click"] and comp["ticks_during"] >= 3, comp  # the main thread kept running
    assert comp["table_visible"]
    assert [r[0] for r in comp["rows"]] == ["Acer rubrum (acerrubr)", "Quercus alba (queralba)"]
    for _name, ap in comp["rows"]:
        assert re.fullmatch(r"\d{1,3}\.\d %( ⚠)?", ap), comp["rows"]
        assert 50.0 < float(ap.split()[0]) <= 100.0
    info = check_window_shot(afternoon, "a06_compare")
    assert colour_fraction(info["path"], info["canvas_rect"], "#e0115f") > 0.002  # the expert outline


def test_processing_opens_on_the_map_lists_species_and_names_richness_honestly(afternoon):
    proc = step(afternoon, "processing")
    assert proc["dialog_pixel_size"] == 0.0
    match = re.fullmatch(r"([-\d.e]+),([-\d.e]+),([-\d.e]+),([-\d.e]+) \[(.+)\]", proc["dialog_extent"])
    assert match, proc["dialog_extent"]
    assert [float(v) for v in match.groups()[:4]] == pytest.approx(proc["canvas_extent"], abs=1e-6)
    assert match[5] == proc["canvas_crs"] == "EPSG:4326"
    assert proc["model_species"]["N_SPECIES"] == 169
    assert proc["richness_layers"] == ["Species richness (follows sampling effort too)"]
    assert QImage(afternoon["screenshots"]["a07_predict_dialog"]["path"]).width() > 300


def test_train_says_at_once_that_it_is_unavailable_and_starts_nothing(afternoon):
    from sinr_qgis.core.training.defaults import LOSS_HELP

    train = step(afternoon, "train_unavailable")
    # the zip carries the training code; the stock Python has no PyTorch: said, and the set-up offered
    message = html.unescape(train["message_at_once"])
    assert ">PyTorch is missing: the Python interpreter /usr/bin/python3 " in message, message
    assert "To set up training on Linux, click 'Set up PyTorch for me'" in message
    assert train["setup_button"] == [True, "Set up PyTorch for me"]
    assert train["message_after_train"] == train["message_at_once"]
    assert not train["task"] and train["dialog_visible"] and train["active_tasks"] == 0
    assert train["exports"] == [] and not train["output_exists"]
    assert train["temp"] == str(afternoon["temp"])  # the private TMPDIR, where an export would have gone
    helps = dict(train["loss_help"])
    assert helps == LOSS_HELP and len(set(helps.values())) == len(helps)  # the help follows the combo
    assert QImage(afternoon["screenshots"]["a08_train_unavailable"]["path"]).height() > 400


def test_saving_the_project_moves_the_temporary_maps_next_to_it(afternoon):
    save = step(afternoon, "save_project")
    assert save["saved"]
    names = {"Acer rubrum", "Quercus alba", "Pseudotsuga menziesii"}
    assert set(save["before"]) == names
    for source in save["before"].values():
        assert Path(source).resolve().is_relative_to(afternoon["temp"].resolve()), source
    assert "kept in a temporary folder that is emptied when QGIS closes" in save["message"]
    folder = Path(save["folder"])
    assert folder.name == "afternoon_sinr_predictions"
    assert {Path(s).parent for s in save["after"].values()} == {folder}
    assert sorted(save["files"]) == sorted(f"{n.replace(' ', '_')}.tif" for n in names)  # named after the layers
    assert all(save["valid"].values()) and not save["dirty"]
    check_window_shot(afternoon, "a09_save_warning")


def test_help_opens_the_guide(afternoon):
    help_ = step(afternoon, "help")
    assert help_["has_numbers"] and help_["has_credits"] and help_["scrolled"]


# ---- the rest of the job (issue 10): set up PyTorch, train, import an official checkpoint ----------
# The maps of the dock against the models' own numbers: the same float32 network along two paths (the
# dock's grid blocks in QGIS, the points here; numpy here, torch for the official model) agrees to
# ~1e-7 (tests/tolerances.py); 1e-5 leaves a margin, while a pixel read at the wrong place or a
# wrong input moves a value by 1e-3 or more.
PIXEL_ATOL = 1e-5
EAST_BOX = (-100.0, 24.0, -60.0, 50.0)  # first_afternoon.EAST: the map shown when predicting


def training_python(afternoon) -> Path:
    return afternoon["profile"] / "python" / "dependencies" / "sinr_qgis" / "training-python"


def torch_wheel_version(wheels: Path) -> str:
    """The version of the torch wheel in the package source, e.g. ``2.13.0+cpu``."""
    (wheel,) = wheels.glob("torch-*.whl")
    return wheel.name.split("-")[1]


def check_pixels(pixels: dict, expected) -> None:
    """The sampled pixels are lon/lat cell centres over the predicted view and equal ``expected``."""
    assert pixels["crs"] == "EPSG:4326" and len(pixels["values"]) == 40 and pixels["n_valid"] > 1000, pixels
    x0, dx, _r1, y0, _r2, dy = pixels["geotransform"]
    assert dx == pytest.approx(-dy, rel=1e-6) and 0.005 < dx < 0.2  # square cells, about one per screen pixel
    lonlat = np.asarray(pixels["lonlat"])
    west, south, east, north = EAST_BOX
    # the view holds EAST (QGIS widens one side to the canvas's shape)
    width, height = pixels["size"]
    assert x0 <= west + dx and x0 + dx * width >= east - dx and y0 >= north - dx and y0 + dy * height <= south + dx
    assert (lonlat[:, 0] > x0).all() and (lonlat[:, 1] < y0).all()
    np.testing.assert_allclose(pixels["values"], expected(lonlat), rtol=0, atol=PIXEL_ATOL)


def test_set_up_pytorch_for_me_builds_the_training_python_in_the_profile(afternoon):
    setup = step(afternoon, "setup_training")
    offered = setup["offered"]
    assert offered["availability"] is False and not offered["train_enabled"]
    assert offered["python"] == "/usr/bin/python3"
    assert "PyTorch is missing: the Python interpreter /usr/bin/python3" in html.unescape(offered["message"])
    assert (offered["button"], offered["row"]) == ("Set up PyTorch for me", "SinrTrainSetupRow")
    running = setup["running"]
    assert running["description"] == "SINR: setting up PyTorch for training" and running["active_tasks"] >= 1
    assert (running["button"], running["button_enabled"]) == ("Setting up PyTorch…", False)
    assert 60 <= running["progress"] < 100 and running["log_tab"], running  # pip's lines in the SINR tab
    venv = training_python(afternoon)
    python = str(venv / "bin" / "python")
    assert setup["folder"] == str(venv) and setup["ready"] == [python] and setup["setting"] == python
    version = torch_wheel_version(afternoon["wheels"])
    marker = json.loads(setup["marker"])
    assert (marker["torch"], marker["source"], marker["base_origin"]) == (version, str(afternoon["wheels"]),
                                                                          "QGIS's Python")
    log = setup["log"]
    assert log[0].startswith("Base interpreter: QGIS's Python 3.") and "GDAL " in log[0], log[0]
    pip = next(line for line in log if " -m pip install " in line)
    assert f"--no-index --find-links {afternoon['wheels']}" in pip  # the local source only: no download
    assert any(line.startswith("Successfully installed") and f"torch-{version}" in line for line in log)
    assert log[-1].startswith(f"PyTorch is set up for training in {venv}, made from QGIS's Python 3.")
    # the dialog turns ready with the new Python, without a restart; torch never entered QGIS
    message = html.unescape(setup["message"])
    assert f"Ready to train: {python}: Python 3." in message and f"torch {version}, CUDA: no" in message
    assert not setup["button_visible"] and setup["train_enabled"] and setup["dialog_python"] == python
    assert not setup["torch_in_qgis"]
    assert setup["seconds"] < 300
    for name in ("a10_setup_offered", "a11_setup_ready"):
        assert QImage(afternoon["screenshots"][name]["path"]).height() > 400, name
    check_window_shot(afternoon, "a10_setup_running")


def test_training_after_the_set_up_uses_the_new_python_and_maps_a_species(afternoon):
    from sinr_qgis.core.bundle import ModelBundle
    from sinr_qgis.core.runtime import Predictor

    train = step(afternoon, "train_after_setup")
    assert train["python"] == str(training_python(afternoon) / "bin" / "python")
    assert train["description"] == "SINR: training my_trees.sinr" and train["records"] == 1000
    model = afternoon["tmp"] / "work" / "my_trees.sinr"
    assert train["model_path"] == str(model) and train["current"].startswith("My trees (5 species")
    assert any(item.startswith("My trees (5 species") for item in train["items"]), train["items"]
    assert train["status"].startswith("Added Liriodendron tulipifera"), train["status"]
    assert train["layer"]["valid"] and train["layer"]["renderer"] == "singlebandpseudocolor"
    bundle = ModelBundle.load(model)
    assert sorted(s.name for s in bundle.species) == ["Acer rubrum", "Acer saccharum", "Fagus grandifolia",
                                                     "Liriodendron tulipifera", "Quercus alba"]
    index = train["species_index"]
    assert bundle.species[index].name == "Liriodendron tulipifera"
    predictor = Predictor(bundle, "numpy")
    check_pixels(train["pixels"], lambda lonlat: predictor.predict_points(lonlat.astype(np.float32))[:, index])
    assert train["pixels"]["max"] > 0.5  # a range, not a flat map
    info = check_window_shot(afternoon, "a12_trained_model")
    assert non_background_fraction(info["path"], info["canvas_rect"], info["canvas_background"]) > 0.15
    assert QImage(afternoon["screenshots"]["a12_train_dialog"]["path"]).height() > 400


def test_an_official_checkpoint_imports_with_its_names_and_maps_as_the_official_model(afternoon):
    from sinr_qgis.core.bundle import ModelBundle

    imp = step(afternoon, "import_checkpoint")
    assert imp["ok"], imp["import_error"]
    # "Save as" left empty: the plugin's models folder in the profile, named after the checkpoint
    path = afternoon["profile"] / "sinr_qgis" / "models" / "model_an_full_input_enc_sin_cos.sinr"
    assert imp["path"] == str(path) and imp["model_path"] == str(path)
    python = str(training_python(afternoon) / "bin" / "python")
    assert imp["python"] == f"With PyTorch from {python} (the training Python)"
    assert imp["status"].startswith("Imported model_an_full_input_enc_sin_cos.sinr: 3 species, ResidualFCNet "
                                     "reading the location."), imp["status"]
    assert imp["status"].endswith("It is now in <i>My models</i>.") and imp["progress"] == 100
    assert imp["n_species"] == 3 and imp["combo_current"] in imp["items"]
    bundle = ModelBundle.load(path)
    assert [(s.code, s.name) for s in bundle.species] == [(str(t), n) for t, n, _c in TAXA]
    assert bundle.meta["data"]["taxa_names"]["n_ignored"] == 1  # the names file's taxon the model lacks
    assert imp["status_predict"].startswith("Added Abies balsamea"), imp["status_predict"]
    assert imp["species_index"] == 1 and imp["layer"]["valid"]
    check_pixels(imp["pixels"], lambda lonlat: afternoon["official"].probabilities(lonlat, 1))
    assert imp["pixels"]["max"] > 0.5
    assert not imp["torch_in_qgis"]  # the conversion ran in the training Python
    info = check_window_shot(afternoon, "a14_imported_map")
    assert non_background_fraction(info["path"], info["canvas_rect"], info["canvas_background"]) > 0.15
    assert QImage(afternoon["screenshots"]["a13_import_done"]["path"]).height() > 200
