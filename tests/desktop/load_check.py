"""``qgis --code`` script: report whether the SINR plugin loaded in this desktop, then quit.

Writes JSON to $SINR_DESKTOP_RESULT: loaded plugins, where sinr_qgis was imported from, the
Processing provider and its algorithms, the plugin's menu actions, and which optional packages
this QGIS's Python can import. With SINR_LOAD_CHECK_DEEP=1 it also uses the installed plugin:
the panel with the bundled model, a small prediction, and training (which must say why it is
unavailable and how to install what is missing).
"""
import json
import os
import sys
import time

import qgis.utils
from qgis.core import Qgis, QgsApplication, QgsFeature, QgsGeometry, QgsPointXY, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication

MESSAGES = []
QgsApplication.messageLog().messageReceived.connect(
    lambda msg, tag, level: MESSAGES.append(msg) if tag == "SINR" and level >= Qgis.Warning else None)


def plugin_menu_actions() -> list:
    iface = qgis.utils.iface
    for action in iface.pluginMenu().actions():
        menu = action.menu()
        if menu is not None and "SINR" in action.text():
            return menu.actions()
    return []


def importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def wait_until(cond, timeout: float) -> bool:
    end = time.time() + timeout
    while not cond() and time.time() < end:
        QApplication.processEvents()
        time.sleep(0.05)
    return bool(cond())


def deep_checks(out: dict) -> None:
    import processing

    plugin = qgis.utils.plugins["sinr_qgis"]
    panel = next(a for a in plugin_menu_actions() if "panel" in a.text().lower())
    panel.setChecked(True)
    dock = plugin.dock
    out["dock_model"] = dock.model_label.text()
    out["dock_backend"] = dock.backend_name
    res = processing.run("sinr:predict_range", {
        "SPECIES": "Acer rubrum", "EXTENT": "-100,-60,24,50 [EPSG:4326]", "PIXEL_SIZE": 0.5,
        "MASK_OCEAN": True, "OUTPUT": os.path.join(os.environ["SINR_LOAD_CHECK_WORK"], "acru.tif")})
    from osgeo import gdal

    ds = gdal.Open(res["OUTPUT"])  # keep the dataset alive while its band is read
    band = ds.GetRasterBand(1)
    arr = band.ReadAsArray()
    valid = arr[arr != band.GetNoDataValue()]
    out["predict"] = {"n_valid": int(valid.size), "max": float(valid.max()), "min": float(valid.min())}

    # Training from the panel: Check names the missing piece, Train reports why it cannot run.
    points = QgsVectorLayer("Point?crs=EPSG:4326&field=species:string", "obs", "memory")
    feats = []
    for i in range(60):
        f = QgsFeature(points.fields())
        f.setAttribute("species", ["Acer rubrum", "Quercus alba", "Fagus grandifolia"][i % 3])
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(-90 + (i % 10), 35 + (i // 10))))
        feats.append(f)
    points.dataProvider().addFeatures(feats)
    QgsProject.instance().addMapLayer(points)
    dock.model_chooser.train_button.click()
    dialog = dock.model_chooser.dialog
    dialog.check_button.click()
    out["check_message"] = dialog.message.text()
    dialog.use_layer.setChecked(True)
    dialog.layer_combo.setLayer(points)
    dialog.species_field.setField("species")
    dialog.output.setFilePath(os.path.join(os.environ["SINR_LOAD_CHECK_WORK"], "mine.sinr"))
    dialog.train_button.click()
    out["train_dialog_open"] = dialog.isVisible()
    out["train_dialog_message"] = dialog.message.text()
    wait_until(lambda: any("raining" in m for m in MESSAGES), 60)
    out["log_messages"] = list(MESSAGES)
    out["bar_messages"] = [w.text() for w in qgis.utils.iface.messageBar().items()]


def report() -> None:
    out = {}
    try:
        out["plugins"] = sorted(qgis.utils.plugins)
        out["active"] = sorted(qgis.utils.active_plugins)
        module = sys.modules.get("sinr_qgis")
        out["plugin_file"] = getattr(module, "__file__", None)
        provider = QgsApplication.processingRegistry().providerById("sinr")
        out["provider"] = provider is not None
        out["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
        out["menu"] = [a.text() for a in plugin_menu_actions()]
        out["importable"] = {m: importable(m) for m in ("onnxruntime", "torch")}
        out["window_visible"] = qgis.utils.iface.mainWindow().isVisible()
        if os.environ.get("SINR_LOAD_CHECK_DEEP") == "1":
            deep_checks(out)
        out["torch_loaded"] = "torch" in sys.modules
    except Exception:  # reported to the test
        import traceback

        out["error"] = traceback.format_exc()
    finally:
        with open(os.environ["SINR_DESKTOP_RESULT"], "w") as f:
            json.dump(out, f)
        QgsProject.instance().clear()
        QgsProject.instance().setDirty(False)
        QTimer.singleShot(300, qgis.utils.iface.actionExit().trigger)


QTimer.singleShot(1000, report)
