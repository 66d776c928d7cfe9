"""``qgis --code`` script: a new user's first afternoon (issue 15), in the real QGIS desktop.

The plugin is installed from its zip into a clean profile and QGIS runs with its own Python only
(no onnxruntime, no torch), as the issue's tester had it. The walk, in a user's order: predict
with the numpy backend and read Diagnostics; type species (a near miss, a poorly mapped one, the
species list); predict two species, pan and predict again, change the opacity, read the legend
and the reliability metadata; Zoom Full; "what lives here" on water and on land; Compare with
Little's ranges; the Processing dialogs; Train (unavailable here); save the project and move the
temporary maps; Help. Then the rest of the job (issue 10): "Set up PyTorch for me" (from a local
package source), training from a point layer with the Python it made, and "Import SINR checkpoint…"
of an official-layout checkpoint with the web app's names file, each new model mapping a species.

The step runner, the waits and the screenshot helpers are e2e_script.py's (loaded from its file:
the repository itself must not be on this QGIS's path, or the training code would be found).
Findings go to $SINR_DESKTOP_RESULT in the same shape; tests/desktop/test_first_afternoon.py
asserts on them. Inputs (environment): those of e2e_script.py, TMPDIR (a private temporary
folder, so that the dock's managed folder and any training export can be inspected),
SINR_E2E_WHEELS (a folder of wheels for the set-up; empty: its steps are skipped), SINR_E2E_CHECKPOINT
and SINR_E2E_NAMES (the checkpoint to import and its names file).
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import qgis.utils
from osgeo import gdal
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QPoint, Qt, QTimer
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QPushButton, QWidget

_spec = importlib.util.spec_from_file_location("sinr_e2e_walk", Path(__file__).with_name("e2e_script.py"))
walk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(walk)
Wait, sleep, shot = walk.Wait, walk.sleep, walk.shot

iface = qgis.utils.iface
WORK = walk.WORK
EAST = QgsRectangle(-100.0, 24.0, -60.0, 50.0)     # eastern North America, lon/lat
WEST = QgsRectangle(-126.0, 30.0, -100.0, 50.0)    # the Douglas-fir's real range and its Wyoming records
PANNED = QgsRectangle(-92.0, 28.0, -52.0, 54.0)    # EAST panned to the north-east
ATLANTIC = QgsRectangle(-100.0, 15.0, -25.0, 55.0)
MID_ATLANTIC = (-40.0, 35.0)
PENNSYLVANIA = (-77.5, 40.8)
TWO_SPECIES = "Acer rubrum, Quercus alba"
DOUGLAS_FIR = "Pseudotsuga menziesii"


# ---- helpers ---------------------------------------------------------------------------------
def dock():
    return walk.find_dock()


def type_species(text: str) -> None:
    """Type into the dock's species field as a user does (key by key), then close the completer."""
    edit = dock().species_edit
    edit.clear()
    edit.setFocus()
    QTest.keyClicks(edit, text)
    edit.completer().popup().hide()


def show_extent(extent: QgsRectangle):
    iface.mapCanvas().setExtent(extent)
    yield from walk.WATCHER.refresh_and_wait()


def predict(extent: QgsRectangle | None, species: str):
    """Press "Predict on canvas extent" for ``species`` over ``extent`` (None: the current view);
    wait for the task to end (not for a new layer id: a repeated prediction keeps its layer)."""
    d = dock()
    if extent is not None:
        yield from show_extent(extent)
    type_species(species)
    t0 = time.time()
    QTest.mouseClick(d.predict_button, Qt.LeftButton)
    started = d.task is not None
    yield Wait(lambda: d.task is None, 240, f"the prediction of {species}")
    seconds = time.time() - t0
    yield from walk.WATCHER.refresh_and_wait()
    layer = d.prediction_layer()
    return {"task_started": started, "seconds": seconds, "status": d.status_label.text(),
            "layer_ids": list(d.layer_ids), "layer": walk.describe_raster(layer) if layer is not None else None}


def rect_in(widget: QWidget, ancestor: QWidget) -> list[int]:
    top_left = widget.mapTo(ancestor, QPoint(0, 0))
    return [top_left.x(), top_left.y(), widget.width(), widget.height()]


def canvas_point_in_window(lon: float, lat: float) -> list[int]:
    """Where map point (lon, lat) of a lon/lat canvas is drawn, in main-window pixels."""
    canvas = iface.mapCanvas()
    pixel = canvas.getCoordinateTransform().transform(QgsPointXY(lon, lat))
    top_left = canvas.mapTo(iface.mainWindow(), QPoint(0, 0))
    return [top_left.x() + round(pixel.x()), top_left.y() + round(pixel.y())]


def click_map(lon: float, lat: float) -> None:
    canvas = iface.mapCanvas()
    pixel = canvas.getCoordinateTransform().transform(QgsPointXY(lon, lat))
    pos = QPoint(round(pixel.x()), round(pixel.y()))
    QTest.mousePress(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, pos)
    QTest.mouseRelease(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, pos)


def predictions_group():
    return QgsProject.instance().layerTreeRoot().findGroup("SINR predictions")


def tree_children(group) -> list[dict]:
    return [{"name": child.name(), "checked": child.itemVisibilityChecked(),
             "layer_id": child.layerId() if hasattr(child, "layerId") else None} for child in group.children()]


def first_row_nodata(path: str) -> dict:
    """How many rows at the top of a raster are nodata only, and how many valid pixels it holds."""
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    data = band.ReadAsArray().astype(np.float64)
    nodata = band.GetNoDataValue()
    empty = np.isnan(data) if nodata is None or np.isnan(nodata) else (data == nodata) | np.isnan(data)
    rows = 0
    while rows < data.shape[0] and empty[rows].all():
        rows += 1
    return {"height": int(data.shape[0]), "empty_top_rows": rows, "valid": int((~empty).sum())}


def grab(widget: QWidget, name: str) -> None:
    path = walk.SHOTS / f"{name}.png"
    widget.grab().save(str(path))
    walk.RESULT["screenshots"][name] = {"path": str(path), "window": [widget.width(), widget.height()]}


def message_bar_item(name: str):
    return next((w for w in iface.messageBar().items() if w.objectName() == name), None)


# ---- the afternoon -----------------------------------------------------------------------------
def step_start():
    out = yield from walk.step_start()
    d = dock()
    out.update(plugin_file=sys.modules["sinr_qgis"].__file__, dock_width=d.width(),
               importable={m: importlib.util.find_spec(m) is not None for m in ("onnxruntime", "torch", "training")})
    # QGIS opens on its start page, where the map canvas is hidden: Predict says what to do first
    type_species("Acer rubrum")
    QTest.mouseClick(d.predict_button, Qt.LeftButton)
    out["start_page"] = {"canvas_visible": iface.mapCanvas().isVisible(), "task": d.task is not None,
                         "status": d.status_label.text()}
    iface.newProject(False)  # "New Empty Project" on the start page
    yield Wait(lambda: iface.mapCanvas().isVisible(), 20, "the map canvas of the new project")
    return out


def step_predict_numpy():
    """1. The first map, with the numpy backend; the install button sits next to the backend line."""
    d = dock()
    yield Wait(lambda: d.bundle is not None, 60, "the bundled model")
    out = yield from predict(EAST, "Acer rubrum")
    dock_widget = d.widget()
    out.update(backend=d.backend_name, backend_text=d.backend_label.text(),
               install_visible=d.install_button.isVisible(), install_text=d.install_button.text(),
               backend_rect=rect_in(d.backend_label, dock_widget), install_rect=rect_in(d.install_button, dock_widget),
               model_label=d.model_label.text(), dock_width=d.width())
    layer = d.prediction_layer()
    out["rendered"] = walk.render_layer_alone(layer, iface.mapCanvas().extent()) if layer else None
    shot("a01_predict_numpy")
    return out


def step_species():
    """2. A near miss gets a suggestion link; a poorly mapped species a red warning; List… opens."""
    d = dock()
    type_species("Acer rubra")
    yield Wait(lambda: "Did you mean" in d.species_info.text(), 10, "a suggestion for Acer rubra")
    typo = d.species_info.text()
    shot("a02_did_you_mean")
    links = re.findall(r"href='([^']+)'", typo)
    d.species_info.linkActivated.emit(links[0])  # what QLabel emits when the link is clicked
    corrected = d.species_edit.text()
    type_species(DOUGLAS_FIR)
    yield Wait(lambda: "Poor map" in d.species_info.text(), 10, "the Douglas-fir's reliability")
    poor = d.species_info.text()
    shot("a02_poor_warning")
    QTest.mouseClick(d.species_list_button, Qt.LeftButton)
    yield Wait(lambda: any(w.objectName() == "SinrSpeciesListDialog" and w.isVisible()
                           for w in QApplication.topLevelWidgets()), 10, "the species list")
    dialog = next(w for w in QApplication.topLevelWidgets()
                  if w.objectName() == "SinrSpeciesListDialog" and w.isVisible())
    rows = dialog.proxy.rowCount()
    dialog.filter_edit.setText("pseudotsuga")
    filtered = dialog.visible_codes()
    yield sleep(0.2)
    grab(dialog, "a02_species_list")
    dialog.close()
    return {"typo_text": typo, "links": links, "corrected": corrected, "poor_text": poor,
            "list_rows": rows, "list_filtered": filtered, "list_title": dialog.windowTitle()}


def step_layers():
    """3. Two species, one layer each; pan and predict one again; opacity; legend; reliability metadata."""
    d = dock()
    two = yield from predict(EAST, TWO_SPECIES)
    group = predictions_group()
    out = {"two": two, "group_exclusive": group.isMutuallyExclusive() if group else None,
           "group_children": tree_children(group) if group else [],
           "two_names": [QgsProject.instance().mapLayer(i).name() for i in two["layer_ids"]]}
    shot("a03_two_species")
    acer = QgsProject.instance().mapLayer(two["layer_ids"][0])
    node = QgsProject.instance().layerTreeRoot().findLayer(acer.id())
    before = {"id": acer.id(), "index": node.parent().children().index(node), "extent": acer.extent().toString(2)}
    again = yield from predict(PANNED, "Acer rubrum")
    acer_after = d.prediction_layer()
    node = QgsProject.instance().layerTreeRoot().findLayer(acer_after.id())
    out["again"] = {"before": before, "status": again["status"], "task_started": again["task_started"],
                    "after": {"id": acer_after.id(), "index": node.parent().children().index(node),
                              "extent": acer_after.extent().toString(2)}}
    start_value = d.opacity_slider.value()
    d.opacity_slider.setValue(40)
    out["opacity"] = {"slider": 40, "layers": {lyr.name(): lyr.renderer().opacity() for lyr in d.prediction_layers()}}
    d.opacity_slider.setValue(start_value)
    fcn = acer_after.renderer().shader().rasterShaderFunction()
    out["legend"] = {"ends": [fcn.legendSettings().minimumLabel(), fcn.legendSettings().maximumLabel()],
                     "items": [str(label) for label, _colour in acer_after.renderer().legendSymbologyItems()]}
    douglas = yield from predict(WEST, DOUGLAS_FIR)
    layer = d.prediction_layer()
    ds = gdal.Open(layer.source())
    out["douglas"] = {"name": layer.name(), "status": douglas["status"],
                      "metadata": ds.GetRasterBand(1).GetMetadata(), "species_info": d.species_info.text()}
    ds = None
    shot("a03_douglas_fir")
    return out


def step_zoom_full():
    """4. QGIS's world map, Zoom Full (beyond the poles in EPSG:4326), predict: a note, nodata rows."""
    d = dock()
    world_copy = WORK / "world_map.gpkg"  # a copy: OGR may rewrite a GeoPackage's header on opening
    shutil.copyfile(Path(QgsApplication.pkgDataPath()) / "resources" / "data" / "world_map.gpkg", world_copy)
    world = QgsVectorLayer(f"{world_copy}|layername=countries", "World", "ogr")
    if not world.isValid():
        raise AssertionError(f"QGIS's world map did not open: {world_copy}")
    QgsProject.instance().addMapLayer(world)
    QgsProject.instance().setCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    iface.zoomFull()
    yield from walk.WATCHER.refresh_and_wait()
    view = iface.mapCanvas().extent()
    out = yield from predict(None, "Acer rubrum")
    out["view"] = [view.xMinimum(), view.yMinimum(), view.xMaximum(), view.yMaximum()]
    out["crs"] = iface.mapCanvas().mapSettings().destinationCrs().authid()
    out["raster"] = first_row_nodata(d.prediction_layer().source())
    shot("a04_zoom_full")
    QgsProject.instance().layerTreeRoot().findLayer(world.id()).setItemVisibilityChecked(False)
    return out


def step_what_lives_here():
    """5. "What lives here?" in the mid-Atlantic (water: no list, a marker) and in Pennsylvania (a list)."""
    d = dock()
    yield from predict(ATLANTIC, "Acer rubrum")  # after Zoom Full the user zooms in and predicts again
    iface.messageBar().clearWidgets()  # the earlier notes would cover the top of the map in the screenshots
    QTest.mouseClick(d.here_button, Qt.LeftButton)
    yield sleep(0.2)
    click_map(*MID_ATLANTIC)
    yield Wait(lambda: d.here_label.text().startswith("At lat"), 20, "the answer on water")
    marker = d.map_tool.marker
    water = {"label": d.here_label.text(), "items": d.species_list.count(),
             "marker_visible": bool(marker is not None and marker.isVisible()),
             "marker_window_pos": canvas_point_in_window(*MID_ATLANTIC)}
    shot("a05_here_water")
    click_map(*PENNSYLVANIA)
    yield Wait(lambda: d.species_list.count() > 0, 30, "the species list in Pennsylvania")
    land = {"label": d.here_label.text(),
            "items": [d.species_list.item(i).text() for i in range(d.species_list.count())],
            "marker_visible": bool(d.map_tool.marker is not None and d.map_tool.marker.isVisible()),
            "marker_window_pos": canvas_point_in_window(*PENNSYLVANIA)}
    shot("a05_here_list")
    QTest.mouseClick(d.here_button, Qt.LeftButton)
    return {"water": water, "land": land, "tool_off_marker": d.map_tool.marker is None}


def step_compare():
    """6. Little's ranges loaded: the panel preselects them; Compare two species in a task."""
    d = dock()
    panel = d.compare_panel
    yield from show_extent(EAST)
    ranges = QgsVectorLayer(f"{walk.RANGES}|layername=ranges", "Little ranges", "ogr")
    if not ranges.isValid():
        raise AssertionError(f"cannot open the Little ranges {walk.RANGES}")
    QgsProject.instance().addMapLayer(ranges)
    QgsProject.instance().layerTreeRoot().findLayer(ranges.id()).setItemVisibilityChecked(False)
    type_species(TWO_SPECIES)
    panel.setCollapsed(False)
    yield sleep(0.3)
    chosen = panel.layer_combo.currentLayer()
    ticks = []
    ticker = QTimer()
    ticker.timeout.connect(lambda: ticks.append(time.time()))
    ticker.start(20)
    QTest.mouseClick(panel.compare_button, Qt.LeftButton)
    running_after_click = panel.task is not None
    clicked = time.time()
    yield Wait(lambda: panel.task is None, 120, "the comparison task")
    done = time.time()
    ticker.stop()
    during = [t for t in ticks if clicked <= t <= done]
    gaps = np.diff([clicked, *during, done]) if during else [done - clicked]
    rows = [[panel.table.item(r, c).text() for c in range(2)] for r in range(panel.table.rowCount())]
    yield from walk.WATCHER.refresh_and_wait()
    iface.messageBar().clearWidgets()  # QGIS's NAD27 -> WGS 84 transform notice would cover the map
    d.widget().ensureWidgetVisible(panel.curve)  # the user scrolls the dock down to the curve
    shot("a06_compare")
    return {"preselected_layer": chosen.name() if chosen else None,
            "preselected_field": panel.field_combo.currentField(),
            "running_after_click": running_after_click, "seconds": done - clicked, "ticks_during": len(during),
            "longest_gap_s": float(max(gaps)), "rows": rows, "table_visible": panel.table.isVisible(),
            "result_text": panel.result_label.text()}


def step_processing():
    """7. predict_range's dialog opens on the map's extent with pixel size 0; model_species; richness."""
    import processing

    yield from show_extent(EAST)
    dialog = processing.createAlgorithmDialog("sinr:predict_range")
    dialog.show()
    yield sleep(0.5)
    wrappers = dialog.mainWidget().wrappers
    e = iface.mapCanvas().extent()
    out = {"dialog_extent": str(wrappers["EXTENT"].parameterValue()),
           "dialog_pixel_size": wrappers["PIXEL_SIZE"].parameterValue(),
           "canvas_extent": [e.xMinimum(), e.xMaximum(), e.yMinimum(), e.yMaximum()],
           "canvas_crs": iface.mapCanvas().mapSettings().destinationCrs().authid()}
    grab(dialog, "a07_predict_dialog")
    dialog.close()
    species = processing.run("sinr:model_species", {"OUTPUT": str(WORK / "model_species.csv")})
    out["model_species"] = {"N_SPECIES": species["N_SPECIES"]}
    before = set(QgsProject.instance().mapLayers())
    processing.runAndLoadResults("sinr:species_richness", {
        "EXTENT": "-100,-60,24,50 [EPSG:4326]", "PIXEL_SIZE": 0.5, "OUTPUT": str(WORK / "richness.tif")})
    added = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    out["richness_layers"] = [lyr.name() for lyr in added if isinstance(lyr, QgsRasterLayer)]
    for lyr in added:  # the next screenshots show the dock's maps
        QgsProject.instance().layerTreeRoot().findLayer(lyr.id()).setItemVisibilityChecked(False)
    return out


def observations_layer() -> QgsVectorLayer:
    """A small point layer of three species, as a user would have before trying Train."""
    points = QgsVectorLayer("Point?crs=EPSG:4326&field=species:string", "My observations", "memory")
    feats = []
    for i in range(60):
        f = QgsFeature(points.fields())
        f.setAttribute("species", ["Acer rubrum", "Quercus alba", "Fagus grandifolia"][i % 3])
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(-90 + (i % 10), 35 + (i // 10))))
        feats.append(f)
    points.dataProvider().addFeatures(feats)
    return points


def step_train_unavailable():
    """8. Train in a zip install without torch: said as soon as the interpreter is checked, with "Set up
    PyTorch for me" offered (the zip carries the training code); Train starts nothing, exports nothing."""
    d = dock()
    points = observations_layer()
    QgsProject.instance().addMapLayer(points)
    chooser = d.model_chooser
    QTest.mouseClick(chooser.train_button, Qt.LeftButton)
    yield Wait(lambda: chooser.dialog is not None and chooser.dialog.isVisible(), 20, "the training dialog")
    dialog = chooser.dialog
    yield Wait(lambda: dialog.availability is not None, 60, "the interpreter check")
    at_once = dialog.message.text()
    setup = dialog.findChild(QPushButton, "SinrSetupTrainingButton")
    yield Wait(lambda: setup.isVisible(), 60, "the set-up button")
    helps = []
    for i in range(dialog.loss.count()):
        dialog.loss.setCurrentIndex(i)
        helps.append([dialog.loss.currentData(), dialog.loss_help.text()])
    dialog.loss.setCurrentIndex(0)
    dialog.use_layer.setChecked(True)
    dialog.layer_combo.setLayer(points)
    dialog.species_field.setField("species")
    output = WORK / "my_model.sinr"
    dialog.output.setFilePath(str(output))
    temp = Path(tempfile.gettempdir())
    QTest.mouseClick(dialog.train_button, Qt.LeftButton)
    yield sleep(0.5)
    grab(dialog, "a08_train_unavailable")
    out = {"message_at_once": at_once, "message_after_train": dialog.message.text(), "loss_help": helps,
           "task": dialog.task is not None, "dialog_visible": dialog.isVisible(),
           "setup_button": [setup.isVisible(), setup.text()],
           "active_tasks": QgsApplication.taskManager().countActiveTasks(),
           "exports": sorted(p.name for p in temp.glob("sinr_train_*")), "output_exists": output.exists(),
           "temp": str(temp)}
    dialog.close()
    QgsProject.instance().removeMapLayer(points.id())
    yield from walk.WATCHER.refresh_and_wait()
    return out


def step_save_project():
    """9. Saving the project warns about the temporary maps; "Move next to the project" moves them."""
    d = dock()
    project = QgsProject.instance()
    path = WORK / "afternoon.qgz"
    before = {lyr.name(): lyr.source() for lyr in d.prediction_layers()}
    saved = project.write(str(path))  # what Project > Save As does once the name is chosen
    yield Wait(lambda: message_bar_item("SinrTemporaryPredictionsMessage") is not None, 10, "the warning")
    message = message_bar_item("SinrTemporaryPredictionsMessage")
    text = message.text()
    shot("a09_save_warning")
    button = message.findChild(QPushButton, "SinrMovePredictionsButton")
    QTest.mouseClick(button, Qt.LeftButton)
    yield sleep(0.5)
    after = {lyr.name(): lyr.source() for lyr in d.prediction_layers()}
    folder = WORK / "afternoon_sinr_predictions"
    shot("a09_moved")
    return {"saved": saved, "project": str(path), "before": before, "after": after, "message": text,
            "folder": str(folder), "files": sorted(p.name for p in folder.glob("*")) if folder.is_dir() else [],
            "dirty": project.isDirty(), "valid": {lyr.name(): lyr.isValid() for lyr in d.prediction_layers()}}


# ---- the rest of the job (issue 10): set up PyTorch, train, import an official checkpoint -----
WHEELS = walk.ENV.get("SINR_E2E_WHEELS", "")  # a folder of wheels: "Set up PyTorch for me" offline
CHECKPOINT = walk.ENV.get("SINR_E2E_CHECKPOINT", "")  # an official-layout .pt and the web app's names file
NAMES = walk.ENV.get("SINR_E2E_NAMES", "")
TRAINED_SPECIES = "Liriodendron tulipifera"
IMPORTED_SPECIES = "Abies balsamea"
_SETUP: dict = {}  # the Train dialog and the point layer, kept open from the set-up to the training


def sample_pixels(layer: QgsRasterLayer, n: int = 40) -> dict:
    """``n`` valid pixels of band 1 spread over the raster: their centres (layer CRS) and values, with
    the georeferencing, so the test can recompute them from the model."""
    ds = gdal.Open(layer.source())
    band = ds.GetRasterBand(1)
    data = band.ReadAsArray().astype(np.float64)
    nodata = band.GetNoDataValue()
    valid = ~np.isnan(data) if nodata is None or np.isnan(nodata) else (data != nodata) & ~np.isnan(data)
    cells = np.argwhere(valid)
    pick = cells[np.linspace(0, len(cells) - 1, min(n, len(cells))).astype(int)] if len(cells) else cells
    gt = ds.GetGeoTransform()
    return {"crs": layer.crs().authid(), "geotransform": list(gt), "size": [ds.RasterXSize, ds.RasterYSize],
            "n_valid": int(valid.sum()), "max": float(np.nanmax(np.where(valid, data, np.nan))),
            "lonlat": [[gt[0] + (c + 0.5) * gt[1], gt[3] + (r + 0.5) * gt[5]] for r, c in pick],
            "values": [float(data[r, c]) for r, c in pick]}


def show_only(*keep) -> None:
    """Untick every layer but ``keep`` (the screenshot shows the new map and its records)."""
    root = QgsProject.instance().layerTreeRoot()
    ids = {lyr.id() for lyr in keep}
    for layer in QgsProject.instance().mapLayers().values():
        node = root.findLayer(layer.id())
        if node is not None:
            node.setItemVisibilityChecked(layer.id() in ids)


def show_log_tab(tag: str) -> bool:
    """Open View > Panels > Log Messages on its ``tag`` tab; whether the tab was there."""
    from qgis.PyQt.QtWidgets import QTabWidget

    iface.openMessageLog()
    for tabs in iface.mainWindow().findChildren(QTabWidget):
        for i in range(tabs.count()):
            if tabs.tabText(i) == tag:
                tabs.setCurrentIndex(i)
                return True
    return False


def step_setup_training():
    """10. Train with QGIS's own Python: "Set up PyTorch for me" builds the training Python in the
    profile (from a local package source: no download), the log shows pip, the dialog turns ready."""
    if not WHEELS:
        return {"skipped": "no local package source (SINR_E2E_WHEELS)"}
    from qgis.core import QgsSettings

    from sinr_qgis.toolbelt.interpreter import training_interpreter
    from sinr_qgis.toolbelt.private_packages import training_python_folder

    d = dock()
    points = walk.training_layer()
    QgsProject.instance().addMapLayer(points)
    chooser = d.model_chooser
    QTest.mouseClick(chooser.train_button, Qt.LeftButton)
    yield Wait(lambda: chooser.dialog is not None and chooser.dialog.isVisible(), 20, "the training dialog")
    dialog = chooser.dialog
    _SETUP.update(dialog=dialog, points=points)
    yield Wait(lambda: dialog.availability is not None, 60, "the interpreter check")
    button = dialog.findChild(QPushButton, "SinrSetupTrainingButton")
    yield Wait(lambda: button.isVisible(), 60, "the set-up button")
    offered = {"availability": dialog.availability, "message": dialog.message.text(),
               "train_enabled": dialog.train_button.isEnabled(), "button": button.text(),
               "row": button.parent().objectName(), "python": training_interpreter()}
    dialog.move(700, 60)
    yield sleep(0.3)
    grab(dialog, "a10_setup_offered")
    ready: list[str] = []
    button.ready.connect(ready.append)
    button.quiet = True  # the confirmation box (download size, folder) is answered "Yes"
    button.source = WHEELS
    t0 = time.time()
    task = button.start_setup()
    iface.messageBar().clearWidgets()
    log_tab = show_log_tab("SINR")
    yield Wait(lambda: task.progress() >= 60 or button.task is None, 240, "pip installing the packages")
    running = {"progress": task.progress(), "description": task.description(), "button": button.text(),
               "button_enabled": button.isEnabled(), "log_tab": log_tab,
               "active_tasks": QgsApplication.taskManager().countActiveTasks()}
    shot("a10_setup_running")
    log_dock = iface.mainWindow().findChild(QDockWidget, "MessageLog")
    if log_dock is not None:
        log_dock.hide()  # the user closes the log again: the maps need the room
    yield Wait(lambda: bool(ready) or bool(button.last_error), 600, "the set-up to finish")
    if button.last_error:
        raise AssertionError(f"the set-up failed: {button.last_error}")
    seconds = time.time() - t0
    yield Wait(lambda: dialog.availability is True, 120, "the new Python's check")
    yield sleep(0.3)
    grab(dialog, "a11_setup_ready")
    folder = training_python_folder()
    marker = folder / "sinr_training.json"
    return {"offered": offered, "running": running, "seconds": seconds, "ready": ready,
            "log": list(task.log), "folder": str(folder), "setting": QgsSettings().value("sinr_qgis/training/python"),
            "marker": marker.read_text(encoding="utf-8") if marker.is_file() else None,
            "message": dialog.message.text(), "button_visible": button.isVisible(),
            "train_enabled": dialog.train_button.isEnabled(), "dialog_python": dialog.python.filePath(),
            "torch_in_qgis": "torch" in sys.modules}


def step_train_after_setup():
    """11. Train from the point layer with the new Python; the model joins My models and maps a species."""
    if "dialog" not in _SETUP:
        return {"skipped": "PyTorch was not set up"}
    d = dock()
    chooser = d.model_chooser
    dialog, points = _SETUP["dialog"], _SETUP["points"]
    dialog.use_layer.setChecked(True)
    dialog.layer_combo.setLayer(points)
    dialog.species_field.setField("species")
    walk.small_training_settings(dialog)
    dialog.output.setFilePath(str(WORK / "my_trees.sinr"))
    dialog.model_name.setText("My trees")
    yield sleep(0.3)
    grab(dialog, "a12_train_dialog")
    t0 = time.time()
    QTest.mouseClick(dialog.train_button, Qt.LeftButton)
    yield Wait(lambda: not dialog.isVisible(), 30, "the dialog to start the training")
    task = dialog.task
    description = task.description()
    yield Wait(lambda: d.bundle is not None and d.bundle.name == "My trees", 300,
               "the trained model to be listed and chosen")
    seconds = time.time() - t0
    items = [chooser.combo.itemText(i) for i in range(chooser.combo.count())]
    pred = yield from predict(EAST, TRAINED_SPECIES)
    layer = d.prediction_layer()
    show_only(layer, points)
    points.renderer().symbol().setSize(1.2)
    points.setOpacity(0.7)
    d.compare_panel.setCollapsed(True)  # the model's card and the map in sight
    walk.scroll_dock_to_top(d)
    yield from walk.WATCHER.refresh_and_wait()
    shot("a12_trained_model")
    return {"seconds": seconds, "description": description, "items": items, "current": chooser.combo.currentText(),
            "model_path": d.model_path, "model_label": d.model_label.text(), "records": points.featureCount(),
            "species_index": d.bundle.find_species(TRAINED_SPECIES).index, "status": pred["status"],
            "layer": pred["layer"], "pixels": sample_pixels(layer), "python": task.python}


def step_import_checkpoint():
    """12. "Import SINR checkpoint…" from the model list: an official-layout checkpoint and the web
    app's names file, into the profile's models folder; the model is chosen and maps a species."""
    if not CHECKPOINT or "dialog" not in _SETUP:
        return {"skipped": "no checkpoint (SINR_E2E_CHECKPOINT) or PyTorch was not set up"}
    from sinr_qgis.gui.model_list import ACTION_ROLE, IMPORT_CHECKPOINT

    d = dock()
    chooser = d.model_chooser
    combo = chooser.combo
    entry = next(i for i in range(combo.count()) if combo.itemData(i, ACTION_ROLE) == IMPORT_CHECKPOINT)
    combo.setCurrentIndex(entry)
    combo.activated.emit(entry)  # what choosing the entry emits
    yield Wait(lambda: chooser.import_dialog is not None and chooser.import_dialog.isVisible(), 20,
               "the import dialog")
    dialog = chooser.import_dialog
    dialog.set_inputs(CHECKPOINT, NAMES)  # "Save as" left empty: the plugin's models folder in the profile
    dialog.move(700, 60)
    task = dialog.start()
    yield Wait(lambda: task.ended, 180, "the import")
    yield sleep(0.3)
    grab(dialog, "a13_import_done")
    out = {"ok": task.ok, "import_error": str(task.error) if task.error else None, "status": dialog.status.text(),
           "progress": dialog.progress.value(), "path": str(task.result.path) if task.result else None,
           "python": dialog.python_label.text(), "combo_current": combo.currentText(),
           "items": [combo.itemText(i) for i in range(combo.count())], "model_path": d.model_path,
           "model_label": d.model_label.text(), "n_species": d.bundle.n_species if d.bundle else None}
    dialog.close()
    pred = yield from predict(EAST, IMPORTED_SPECIES)
    layer = d.prediction_layer()
    show_only(layer)
    iface.messageBar().clearWidgets()
    walk.scroll_dock_to_top(d)
    yield from walk.WATCHER.refresh_and_wait()
    shot("a14_imported_map")
    out.update(status_predict=pred["status"], layer=pred["layer"], pixels=sample_pixels(layer),
               species_index=d.bundle.find_species(IMPORTED_SPECIES).index,
               species_info=d.species_info.text(), torch_in_qgis="torch" in sys.modules)
    return out


STEPS = [("start", step_start), ("predict_numpy", step_predict_numpy), ("diagnostics", walk.step_diagnostics),
         ("species", step_species), ("layers", step_layers), ("zoom_full", step_zoom_full),
         ("what_lives_here", step_what_lives_here), ("compare", step_compare), ("processing", step_processing),
         ("train_unavailable", step_train_unavailable), ("save_project", step_save_project),
         ("help", walk.step_help), ("setup_training", step_setup_training),
         ("train_after_setup", step_train_after_setup), ("import_checkpoint", step_import_checkpoint)]


def main() -> None:
    walk.WATCHER = walk.CanvasWatcher()
    walk._KEEP.append(walk.Runner(STEPS))


QTimer.singleShot(500, main)
