"""``qgis --code`` script for the end-to-end desktop test: use the plugin as a user would.

Runs inside the real QGIS desktop (under Xvfb). The steps run one after the other from the Qt
event loop (each step is a generator that yields "wait until" conditions, so QGIS keeps drawing
and background tasks keep running while a step waits). Every step takes a screenshot into
$SINR_SCREENSHOTS and records what it saw; the findings go as JSON to $SINR_DESKTOP_RESULT and
QGIS quits. The pytest side (test_desktop_e2e.py) asserts on the JSON and the PNGs.
first_afternoon.py (the zip install's walk) loads this file for its helpers and runner.

Inputs (environment): SINR_SCREENSHOTS, SINR_DESKTOP_RESULT, SINR_SHARED_DATA, SINR_E2E_RANGES
(a private copy of the Little ranges GeoPackage), SINR_E2E_MODEL
(a .sinr to predict with; empty = the bundled model), SINR_E2E_SPECIES, SINR_E2E_WORK (a folder
for outputs), SINR_E2E_DEADLINE_S.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import qgis.utils
from qgis.core import (
    QgsApplication,
    QgsMapLayer,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize, Qt, QTimer
from qgis.PyQt.QtGui import QColor, QImage
from qgis.PyQt.QtWidgets import QApplication, QDockWidget

iface = qgis.utils.iface
ENV = os.environ
SHOTS = Path(ENV["SINR_SCREENSHOTS"])
SHOTS.mkdir(parents=True, exist_ok=True)
WORK = Path(ENV.get("SINR_E2E_WORK", SHOTS))
WORK.mkdir(parents=True, exist_ok=True)
SHARED = Path(ENV.get("SINR_SHARED_DATA", ""))
# A private copy of the Little ranges: QGIS/OGR may open a GeoPackage in update mode, which rewrites
# its header, and the shared data must never be written.
RANGES = Path(ENV["SINR_E2E_RANGES"])
SPECIES = ENV.get("SINR_E2E_SPECIES", "Acer rubrum")
SPECIES_CODE = ENV.get("SINR_E2E_SPECIES_CODE", "acerrubr")
TRAIN_CODES = ("acerrubr", "queralba", "lirituli", "acersacr", "fagugran")
TRAIN_SPECIES = "Liriodendron tulipifera"
MODEL = ENV.get("SINR_E2E_MODEL", "")
DEADLINE_S = float(ENV.get("SINR_E2E_DEADLINE_S", "170"))
# Eastern North America, in lon/lat (the project's CRS in a new project is EPSG:4326).
EXTENT = QgsRectangle(-100.0, 24.0, -60.0, 50.0)

RESULT: dict = {"steps": {}, "screenshots": {}, "started": time.time()}


# ---- small helpers ---------------------------------------------------------------------------
class Wait:
    """Yielded by a step: resume when ``cond()`` is true, fail after ``timeout`` seconds."""

    def __init__(self, cond, timeout: float, what: str) -> None:
        self.cond, self.deadline, self.what = cond, time.time() + timeout, what


def sleep(seconds: float) -> Wait:
    end = time.time() + seconds
    return Wait(lambda: time.time() >= end, seconds + 5, f"sleep {seconds}")


def process_events(n: int = 5) -> None:
    for _ in range(n):
        QApplication.processEvents()


class CanvasWatcher:
    """Counts finished canvas renders, so a step can wait for the next complete one."""

    def __init__(self) -> None:
        self.count = 0
        iface.mapCanvas().mapCanvasRefreshed.connect(self._done)

    def _done(self) -> None:
        self.count += 1

    def refresh_and_wait(self, timeout: float = 60):
        canvas = iface.mapCanvas()
        start = self.count
        canvas.refreshAllLayers()
        yield Wait(lambda: self.count > start and not canvas.isDrawing(), timeout, "canvas render")
        process_events()


WATCHER = None


def shot(name: str) -> str:
    """Screenshot of the whole QGIS window, plus where the canvas is inside it."""
    process_events()
    window = iface.mainWindow()
    path = SHOTS / f"{name}.png"
    window.grab().save(str(path))
    canvas = iface.mapCanvas()
    top_left = canvas.mapTo(window, canvas.rect().topLeft())
    RESULT["screenshots"][name] = {
        "path": str(path), "window": [window.width(), window.height()],
        "canvas_rect": [top_left.x(), top_left.y(), canvas.width(), canvas.height()],
        "canvas_background": canvas.canvasColor().name()}
    return str(path)


def render_layer_alone(layer: QgsMapLayer, extent: QgsRectangle, size: int = 400) -> dict:
    """Render one layer on a transparent image over ``extent``; count the pixels it painted."""
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(iface.mapCanvas().mapSettings().destinationCrs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(size, size))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image: QImage = job.renderedImage().convertToFormat(QImage.Format_ARGB32)
    painted = 0
    colours = set()
    step = 4
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            c = image.pixelColor(x, y)
            if c.alpha() > 0:
                painted += 1
                colours.add(c.rgb())
    total = ((image.height() + step - 1) // step) * ((image.width() + step - 1) // step)
    return {"painted_fraction": painted / total, "distinct_colours": len(colours),
            "data_fraction": data_fraction(layer)}


def data_fraction(layer: QgsMapLayer) -> float:
    """The fraction of the layer's raster cells (band 1) that hold a value: outside land and the
    model's data footprint a prediction is nodata, so this is what a render of the whole raster paints."""
    from osgeo import gdal

    ds = gdal.Open(layer.source())
    mask = ds.GetRasterBand(1).GetMaskBand().ReadAsArray()
    return float((mask > 0).mean())


def find_dock() -> QDockWidget | None:
    """The plugin's dock, found by its object name or title."""
    for dock in iface.mainWindow().findChildren(QDockWidget):
        name = (dock.objectName() + " " + dock.windowTitle()).lower()
        if "sinr" in name:
            return dock
    return None


def scroll_dock_to_top(dock: QDockWidget) -> None:
    from qgis.PyQt.QtWidgets import QScrollArea

    area = dock.widget()
    if isinstance(area, QScrollArea):
        area.verticalScrollBar().setValue(0)


def plugin_menu_actions() -> list[str]:
    for action in iface.pluginMenu().actions():
        if action.menu() is not None and "SINR" in action.text():
            return [a.text() for a in action.menu().actions()]
    return []


def plugin_action(text_part: str):
    for action in iface.pluginMenu().actions():
        if action.menu() is not None and "SINR" in action.text():
            for sub in action.menu().actions():
                if text_part.lower() in sub.text().lower():
                    return sub
    return None


def raster_layers() -> list[QgsRasterLayer]:
    return [lyr for lyr in QgsProject.instance().mapLayers().values() if isinstance(lyr, QgsRasterLayer)]


def describe_raster(layer: QgsRasterLayer) -> dict:
    renderer = layer.renderer()
    return {"name": layer.name(), "source": layer.source(), "valid": layer.isValid(),
            "renderer": renderer.type() if renderer else None, "crs": layer.crs().authid(),
            "bands": layer.bandCount(), "opacity": layer.renderer().opacity() if renderer else None}


# ---- the steps -------------------------------------------------------------------------------
def step_start():
    window = iface.mainWindow()
    window.setGeometry(0, 0, 1600, 1200)  # Xvfb has no window manager to maximise it
    browser = window.findChild(QDockWidget, "Browser")
    if browser is not None:
        browser.hide()  # more room for the layers panel and the map in the screenshots
    yield sleep(1.0)
    plugins = sorted(qgis.utils.plugins)
    provider = QgsApplication.processingRegistry().providerById("sinr")
    dock_before = find_dock()
    panel = plugin_action("panel")
    if panel is not None:
        panel.setChecked(True)  # the user opens the panel from the Plugins menu
    yield sleep(0.5)
    dock = find_dock()
    shot("01_start")
    return {"plugins": plugins, "window_visible": window.isVisible(),
            "window_size": [window.width(), window.height()],
            "provider": provider is not None,
            "algorithms": sorted(a.id() for a in provider.algorithms()) if provider else [],
            "menu": plugin_menu_actions(), "dock": dock.objectName() if dock else None,
            "dock_created_at_start": dock_before is not None,
            "dock_visible": bool(dock and dock.isVisible()),
            "torch_loaded": "torch" in sys.modules}


def step_predict_processing():
    """Predict through the toolbox algorithm, loaded and styled as the toolbox would."""
    import processing

    if QgsApplication.processingRegistry().algorithmById("sinr:predict_range") is None:
        return {"skipped": "sinr:predict_range is not registered"}
    canvas = iface.mapCanvas()
    canvas.setExtent(EXTENT)
    yield from WATCHER.refresh_and_wait()
    before = {lyr.id() for lyr in raster_layers()}
    t0 = time.time()
    results = processing.runAndLoadResults("sinr:predict_range", {
        "MODEL": MODEL, "SPECIES": SPECIES, "EXTENT": EXTENT, "PIXEL_SIZE": 0.1,
        "MASK_OCEAN": True, "OUTPUT": str(WORK / "processing_prediction.tif")})
    seconds = time.time() - t0
    added = [lyr for lyr in raster_layers() if lyr.id() not in before]
    if not added:
        raise AssertionError(f"no layer added by sinr:predict_range ({results})")
    layer = added[0]
    yield from WATCHER.refresh_and_wait()
    shot("02_predict_processing")
    out = {"seconds": seconds, "layer": describe_raster(layer),
           "rendered": render_layer_alone(layer, EXTENT)}
    QgsProject.instance().layerTreeRoot().findLayer(layer.id()).setItemVisibilityChecked(False)
    return out


def step_predict_dock():
    """Type a species in the dock and press "Predict on canvas extent"; a styled layer appears."""
    from qgis.PyQt.QtTest import QTest

    dock = find_dock()
    if dock is None or not hasattr(dock, "predict_button"):
        return {"skipped": "no prediction dock"}
    if MODEL:
        dock.choose_model(MODEL)
    yield Wait(lambda: dock.bundle is not None, 60, "the dock to load the model")
    canvas = iface.mapCanvas()
    canvas.setExtent(EXTENT)
    yield from WATCHER.refresh_and_wait()
    dock.species_edit.clear()
    dock.species_edit.setFocus()
    QTest.keyClicks(dock.species_edit, SPECIES)
    yield sleep(0.3)
    completions = dock.species_edit.completer().completionCount()
    dock.species_edit.completer().popup().hide()
    before = {lyr.id() for lyr in raster_layers()}
    t0 = time.time()
    QTest.mouseClick(dock.predict_button, Qt.LeftButton)
    yield Wait(lambda: dock.task is None and dock.layer_id is not None and dock.layer_id not in before,
               120, "the prediction task to add its layer")
    seconds = time.time() - t0
    layer = QgsProject.instance().mapLayer(dock.layer_id)
    yield from WATCHER.refresh_and_wait()
    shot("02_predict_dock")
    return {"seconds": seconds, "completions": completions, "layer": describe_raster(layer),
            "rendered": render_layer_alone(layer, canvas.extent()), "status": dock.status_label.text(),
            "model_label": dock.model_label.text(), "progress": dock.progress.value()}


def step_what_lives_here():
    """Turn on the map tool and click the map: the dock lists the ranked species there."""
    from qgis.PyQt.QtCore import QPoint
    from qgis.PyQt.QtTest import QTest

    dock = find_dock()
    if dock is None or not hasattr(dock, "here_button"):
        return {"skipped": "no prediction dock"}
    canvas = iface.mapCanvas()
    QTest.mouseClick(dock.here_button, Qt.LeftButton)
    yield sleep(0.2)
    # A point in the eastern deciduous forest (Pennsylvania), in canvas pixels.
    from qgis.core import QgsPointXY

    pixel = canvas.getCoordinateTransform().transform(QgsPointXY(-77.5, 40.8))
    pos = QPoint(int(pixel.x()), int(pixel.y()))
    QTest.mousePress(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, pos)
    QTest.mouseRelease(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, pos)
    yield Wait(lambda: dock.species_list.count() > 0, 30, "the species list")
    shot("03_what_lives_here")
    items = [dock.species_list.item(i).text() for i in range(dock.species_list.count())]
    QTest.mouseClick(dock.here_button, Qt.LeftButton)
    return {"items": items, "label": dock.here_label.text()}


def little_ranges_layer(code: str) -> QgsVectorLayer:
    """The shared Little range polygons, filtered to one species (as a user would filter them)."""
    layer = QgsVectorLayer(f"{RANGES}|layername=ranges", "Little ranges", "ogr")
    if not layer.isValid():
        raise AssertionError(f"cannot open the Little ranges {RANGES}")
    layer.setSubsetString(f"\"code\" = '{code}'")
    symbol = layer.renderer().symbol()
    symbol.setColor(QColor(0, 0, 0, 0))  # outline only, over the prediction
    symbol.symbolLayer(0).setStrokeColor(QColor(20, 20, 20))
    symbol.symbolLayer(0).setStrokeWidth(0.6)
    return layer


def step_compare_processing():
    """Compare with the expert range through sinr:evaluate_ranges (the toolbox path)."""
    import processing

    if QgsApplication.processingRegistry().algorithmById("sinr:evaluate_ranges") is None:
        return {"skipped": "sinr:evaluate_ranges is not registered"}
    ranges = little_ranges_layer(SPECIES_CODE)
    t0 = time.time()
    results = processing.run("sinr:evaluate_ranges", {
        "MODEL": MODEL, "RANGES": ranges, "SPECIES_FIELD": "code", "PIXEL_SIZE": 0.5,
        "AREA_WEIGHTED": True, "OUTPUT_TABLE": "memory:", "OUTPUT_REPORT": str(WORK / "compare_report.html")})
    return {"seconds": time.time() - t0, "MAP": results.get("MAP"), "N_SPECIES": results.get("N_SPECIES"),
            "features": ranges.featureCount(), "report": results.get("OUTPUT_REPORT")}


def step_compare_dock():
    """Load the Little ranges, open "Compare with an expert range", press Compare: AP, curve, outline."""
    from qgis.PyQt.QtTest import QTest

    dock = find_dock()
    panel = getattr(dock, "compare_panel", None)
    if panel is None:
        return {"skipped": "no compare panel in the dock"}
    ranges = QgsVectorLayer(f"{RANGES}|layername=ranges", "Little ranges", "ogr")
    if not ranges.isValid():
        raise AssertionError(f"cannot open the Little ranges {RANGES}")
    QgsProject.instance().addMapLayer(ranges)
    # All 134 ranges drawn at once hide the map: the user unticks the layer; the panel draws the outline.
    QgsProject.instance().layerTreeRoot().findLayer(ranges.id()).setItemVisibilityChecked(False)
    dock.species_edit.setText(SPECIES)
    panel.setCollapsed(False)
    panel.layer_combo.setLayer(ranges)
    yield sleep(0.2)
    field = panel.field_combo.currentField()
    t0 = time.time()
    QTest.mouseClick(panel.compare_button, Qt.LeftButton)
    yield Wait(lambda: panel.task is None, 120, "the comparison task")
    seconds = time.time() - t0
    outline = panel.outline_layer()
    yield from WATCHER.refresh_and_wait()
    iface.messageBar().clearWidgets()  # QGIS's NAD27 -> WGS 84 transform notice would cover the map
    shot("04_compare")
    ev = panel.comparison.evaluation if panel.comparison is not None else None
    return {"seconds": seconds, "field": field, "text": panel.result_label.text(),
            "ap_percent": ev.ap_percent if ev is not None else None,
            "prevalence": ev.prevalence if ev is not None else None,
            "curve_visible": panel.curve.isVisible(),
            "outline": outline.name() if outline is not None else None,
            "outline_features": outline.featureCount() if outline is not None else 0}


def training_observations() -> Path:
    """A small CSV of real records of a few species from the shared data (what a user brings)."""
    import csv
    import gzip

    wanted = {c: 0 for c in TRAIN_CODES}
    path = WORK / "my_tree_observations.csv"
    with gzip.open(SHARED / "occurrences" / "na_trees.csv.gz", "rt", encoding="utf-8") as src, \
            open(path, "w", newline="", encoding="utf-8") as dst:
        reader = csv.DictReader(src)
        writer = csv.writer(dst)
        writer.writerow(["species", "latitude", "longitude", "source"])
        for row in reader:
            code = row["code"]
            # Every 7th record, up to 200 per species: spread over each range, small and quick.
            if code in wanted and wanted[code] < 200 and reader.line_num % 7 == 0:
                wanted[code] += 1
                writer.writerow([row["species"], row["latitude"], row["longitude"], row["source"]])
    return path


def training_layer() -> QgsVectorLayer:
    """training_observations() as a point layer (delimited text, EPSG:4326), as a user loads a CSV."""
    csv_path = training_observations()
    uri = (f"file://{csv_path}?type=csv&delimiter=,&xField=longitude&yField=latitude&crs=EPSG:4326"
           "&spatialIndex=no&subsetIndex=no&watchFile=no")
    points = QgsVectorLayer(uri, "My tree observations", "delimitedtext")
    if not points.isValid():
        raise AssertionError(f"the observation CSV did not load: {csv_path}")
    return points


def small_training_settings(dialog) -> None:
    """Small and quick, but enough optimiser steps (1000 records / 128 = 8 per epoch) to learn ranges.
    AN-SSDL: with only 5 species the default AN-full (positive weight 2048, set for thousands of
    species) scores about 1 everywhere; AN-SSDL gives a range-like map in the same time."""
    dialog.loss.setCurrentIndex(dialog.loss.findData("an_ssdl"))
    dialog.epochs.setValue(20)
    dialog.batch_size.setValue(128)
    dialog.width_spin.setValue(64)
    dialog.depth.setValue(2)


def step_train():
    """Train a small model from a point layer in the background; it appears in the model list."""
    from qgis.PyQt.QtTest import QTest

    dock = find_dock()
    model_list = getattr(dock, "model_chooser", None)
    if model_list is None or not hasattr(model_list, "train_button"):
        return {"skipped": "no Train model button in the dock"}
    points = training_layer()
    QgsProject.instance().addMapLayer(points)
    QTest.mouseClick(model_list.train_button, Qt.LeftButton)
    yield Wait(lambda: model_list.dialog is not None and model_list.dialog.isVisible(), 20, "the training dialog")
    dialog = model_list.dialog
    dialog.use_layer.setChecked(True)
    dialog.layer_combo.setLayer(points)
    dialog.species_field.setField("species")
    small_training_settings(dialog)
    dialog.output.setFilePath(str(WORK / "my_trees.sinr"))
    dialog.model_name.setText("My trees")
    dialog.python.setFilePath(ENV.get("SINR_E2E_PYTHON", ""))
    dialog.move(420, 90)
    yield sleep(0.5)
    path = SHOTS / "05_train_dialog.png"
    dialog.grab().save(str(path))
    RESULT["screenshots"]["05_train_dialog"] = {"path": str(path), "window": [dialog.width(), dialog.height()]}
    t0 = time.time()
    QTest.mouseClick(dialog.train_button, Qt.LeftButton)
    yield Wait(lambda: not dialog.isVisible() or "Ready" in dialog.message.text(), 30, "the dialog to start")
    if dialog.isVisible():  # a bad input keeps it open with the reason
        raise AssertionError(f"training did not start: {dialog.message.text()}")
    task = dialog.task
    # (the chooser holds the bundled model, a separator, "Open model file…" and "Import SINR checkpoint…"
    # before any model of the user)
    yield Wait(lambda: task.progress() > 0 or model_list.combo.count() > 4, 90, "training progress")
    shot("05_training_running")
    running = {"progress": task.progress(), "description": task.description()}
    yield Wait(lambda: dock.bundle is not None and dock.bundle.name == "My trees", 150,
               "the trained model to be listed and chosen")
    seconds = time.time() - t0
    items = [model_list.combo.itemText(i) for i in range(model_list.combo.count())]
    # Predict with the new model at once.
    dock.species_edit.setText(TRAIN_SPECIES)
    before = dock.layer_id
    QTest.mouseClick(dock.predict_button, Qt.LeftButton)
    yield Wait(lambda: dock.task is None and dock.layer_id not in (None, before), 120,
               "a prediction with the new model")
    layer = QgsProject.instance().mapLayer(dock.layer_id)
    root = QgsProject.instance().layerTreeRoot()
    for other in QgsProject.instance().mapLayers().values():  # show the new map and its records only
        if other.id() not in (layer.id(), points.id()):
            root.findLayer(other.id()).setItemVisibilityChecked(False)
    points.renderer().symbol().setSize(1.2)
    points.setOpacity(0.7)
    if getattr(dock, "compare_panel", None) is not None:
        dock.compare_panel.setCollapsed(True)
    scroll_dock_to_top(dock)  # the new model in "My models" and its card
    yield from WATCHER.refresh_and_wait()
    shot("05_trained_model")
    return {"seconds": seconds, "loss": dialog.loss.currentData(), "running": running, "items": items,
            "current": model_list.combo.currentText(),
            "model_label": dock.model_label.text(), "n_species": dock.bundle.n_species,
            "records": points.featureCount(), "layer": describe_raster(layer),
            "rendered": render_layer_alone(layer, iface.mapCanvas().extent())}


def step_diagnostics():
    action = plugin_action("diagnostics")
    if action is None:
        return {"skipped": "no Diagnostics action"}
    QApplication.clipboard().clear()
    action.trigger()
    yield Wait(lambda: any(w.objectName() == "SinrDiagnosticsDialog" and w.isVisible()
                           for w in QApplication.topLevelWidgets()), 90, "diagnostics dialog")
    dialog = next(w for w in QApplication.topLevelWidgets()
                  if w.objectName() == "SinrDiagnosticsDialog" and w.isVisible())
    yield Wait(lambda: bool(getattr(dialog, "report", "x")), 90, "diagnostics report collected in its task")
    yield sleep(0.3)
    path = SHOTS / "06_diagnostics.png"
    dialog.grab().save(str(path))
    RESULT["screenshots"]["06_diagnostics"] = {"path": str(path), "window": [dialog.width(), dialog.height()]}
    text = QApplication.clipboard().text()
    dialog.close()
    return {"clipboard": text}


def step_help():
    """The dock's Help button opens the guide at "Reading the numbers"."""
    dock = find_dock()
    if dock is None or not hasattr(dock, "help_button"):
        return {"skipped": "no help button in the dock"}
    dock.help_button.click()
    yield Wait(lambda: any(w.objectName() == "SinrHelpDialog" and w.isVisible()
                           for w in QApplication.topLevelWidgets()), 20, "the help dialog")
    dialog = next(w for w in QApplication.topLevelWidgets() if w.objectName() == "SinrHelpDialog" and w.isVisible())
    yield sleep(0.3)
    path = SHOTS / "07_help.png"
    dialog.grab().save(str(path))
    RESULT["screenshots"]["07_help"] = {"path": str(path), "window": [dialog.width(), dialog.height()]}
    text = dialog.browser.toPlainText()
    dialog.close()
    return {"has_numbers": "Reading the numbers" in text, "has_credits": "Data credits" in text,
            "scrolled": dialog.browser.verticalScrollBar().value() > 0}


STEPS = [("start", step_start), ("predict_processing", step_predict_processing),
         ("predict_dock", step_predict_dock), ("what_lives_here", step_what_lives_here),
         ("compare_processing", step_compare_processing), ("compare_dock", step_compare_dock),
         ("train", step_train),
         ("help", step_help), ("diagnostics", step_diagnostics)]


# ---- the runner ------------------------------------------------------------------------------
def finish(reason: str) -> None:
    RESULT["finished"] = reason
    RESULT["seconds"] = time.time() - RESULT["started"]
    RESULT["torch_loaded_at_end"] = "torch" in sys.modules
    with open(ENV["SINR_DESKTOP_RESULT"], "w") as f:
        json.dump(RESULT, f, indent=1, default=str)
    # Quit as a user does (File > Exit) after closing the project: QGIS 3.22 can crash in its
    # destructor when it tears down a project with layers after QgsApplication.exit().
    QgsProject.instance().clear()
    QgsProject.instance().setDirty(False)
    QTimer.singleShot(300, iface.actionExit().trigger)


class Runner:
    """Drives the step generators from a QTimer."""

    def __init__(self, steps: list | None = None) -> None:
        self.steps = list(STEPS if steps is None else steps)
        self.gen = None
        self.name = None
        self.wait: Wait | None = None
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.timer.start(100)
        self.deadline = time.time() + DEADLINE_S

    def tick(self) -> None:
        if time.time() > self.deadline:
            if self.name:
                RESULT["steps"][self.name] = {"error": f"global deadline of {DEADLINE_S:.0f} s reached"}
            self.timer.stop()
            finish("deadline")
            return
        self.timer.stop()  # no re-entry while a step works
        try:
            self._advance()
        finally:
            if "finished" not in RESULT:
                self.timer.start(100)

    def _advance(self) -> None:
        if self.gen is None:
            if not self.steps:
                finish("done")
                return
            self.name, fn = self.steps.pop(0)
            RESULT["steps"][self.name] = {"started": time.time() - RESULT["started"]}
            self.gen = fn()
            self.wait = None
            if not hasattr(self.gen, "send"):  # a plain function: its return value is the result
                self._record(self.gen)
                return
        try:
            if self.wait is not None:
                if self.wait.cond():
                    self.wait = None
                elif time.time() > self.wait.deadline:
                    what, self.wait = self.wait.what, None
                    self.wait = self.gen.throw(TimeoutError(f"timed out waiting for {what}"))
                    return
                else:
                    return
            self.wait = next(self.gen)
        except StopIteration as stop:
            self._record(stop.value)
        except Exception:
            RESULT["steps"][self.name]["error"] = traceback.format_exc()
            self.gen = None

    def _record(self, value) -> None:
        entry = RESULT["steps"][self.name]
        entry.update(value or {})
        entry["ended"] = time.time() - RESULT["started"]
        self.gen = None


_KEEP: list = []  # Python references that must outlive main()


def main() -> None:
    global WATCHER
    WATCHER = CanvasWatcher()
    _KEEP.append(Runner())


if __name__ == "__sinr_code__":  # run by QGIS; first_afternoon.py loads this file for its helpers only
    QTimer.singleShot(500, main)
