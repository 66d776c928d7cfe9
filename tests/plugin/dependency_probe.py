"""Run in a fresh interpreter by test_dependencies.py: load the plugin, predict, compare, report.

Prints one JSON object on the last stdout line. The parent decides (through a sitecustomize on
PYTHONPATH) whether onnxruntime and torch can be imported here; this script only observes.

    python tests/plugin/dependency_probe.py BUNDLE.sinr WORK_DIR
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


class StubInterface:
    """Just enough of QgisInterface for the plugin's initGui/unload; the rest are mocks."""

    def __init__(self, window, canvas) -> None:
        from unittest.mock import MagicMock

        from qgis.gui import QgsMessageBar

        self._window, self._canvas, self._bar = window, canvas, QgsMessageBar(window)
        self._mock = MagicMock()

    def mainWindow(self):
        return self._window

    def mapCanvas(self):
        return self._canvas

    def messageBar(self):
        return self._bar

    def __getattr__(self, name):
        return getattr(self._mock, name)


def start_qgis() -> tuple:
    """A headless QGIS with Processing (its application, to keep alive) and the plugin loaded into a
    stub interface."""
    from qgis.core import QgsApplication
    from qgis.gui import QgsMapCanvas
    from qgis.PyQt.QtWidgets import QMainWindow

    app = QgsApplication([], True)
    app.initQgis()
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    import qgis.utils

    window = QMainWindow()
    iface = StubInterface(window, QgsMapCanvas(window))
    qgis.utils.iface = iface

    import sinr_qgis

    plugin = sinr_qgis.classFactory(iface)
    plugin.initGui()
    return app, plugin


def check_training(out: dict) -> None:
    """The diagnostics, and whether the configured training interpreter has torch (asked in a subprocess)."""
    from sinr_qgis.toolbelt.interpreter import set_training_interpreter

    set_training_interpreter(os.environ["SINR_PROBE_TRAINING_PYTHON"])
    from sinr_qgis.toolbelt.diagnostics import as_dict, collect_diagnostics

    out["diagnostics"] = as_dict(collect_diagnostics(probe_torch=True))
    from sinr_qgis.core.training.interpreter import check_python
    from sinr_qgis.toolbelt.diagnostics import training_interpreter

    try:
        check_python(training_interpreter())
        out["training"] = "available"
    except Exception as exc:
        out["training"] = f"unavailable: {exc}"


def probe_predict(out: dict, bundle: Path, work: Path) -> None:
    """Predict two species into a GeoTIFF and describe it (or the traceback) in ``out["predict"]``."""
    import processing
    from qgis.core import QgsRasterLayer

    if "sinr:predict_range" in out["algorithms"]:
        try:
            res = processing.run("sinr:predict_range", {
                "MODEL": str(bundle), "SPECIES": "sp000,sp001",
                "EXTENT": "-100,-80,30,45 [EPSG:4326]", "PIXEL_SIZE": 0.5, "MASK_OCEAN": True,
                "OUTPUT": str(work / "pred.tif")})
            layer = QgsRasterLayer(res["OUTPUT"], "pred")
            from osgeo import gdal

            ds = gdal.Open(res["OUTPUT"])
            band = ds.GetRasterBand(1)
            arr = band.ReadAsArray()
            nodata = band.GetNoDataValue()
            valid = arr[arr != nodata] if nodata is not None else arr.ravel()
            out["predict"] = {"valid": layer.isValid(), "bands": ds.RasterCount,
                              "size": [ds.RasterXSize, ds.RasterYSize], "n_valid": int(valid.size),
                              "min": float(valid.min()) if valid.size else None,
                              "max": float(valid.max()) if valid.size else None,
                              "mean": float(valid.astype("float64").mean()) if valid.size else None}
        except Exception:
            out["predict"] = {"error": traceback.format_exc()}


def probe_compare(out: dict, bundle: Path, work: Path) -> None:
    """Compare with one range polygon and keep the MAP (or the traceback) in ``out["compare"]``."""
    import processing
    from qgis.core import QgsProject, QgsVectorLayer

    if "sinr:evaluate_ranges" in out["algorithms"]:
        try:
            ranges = QgsVectorLayer("Polygon?crs=EPSG:4326&field=species:string", "ranges", "memory")
            from qgis.core import QgsFeature, QgsGeometry

            feat = QgsFeature(ranges.fields())
            feat.setAttribute("species", "sp000")
            feat.setGeometry(QgsGeometry.fromWkt("POLYGON((-95 32,-85 32,-85 42,-95 42,-95 32))"))
            ranges.dataProvider().addFeatures([feat])
            QgsProject.instance().addMapLayer(ranges)
            res = processing.run("sinr:evaluate_ranges", {
                "MODEL": str(bundle), "RANGES": ranges, "SPECIES_FIELD": "species",
                "EXTENT": "-100,-80,30,45 [EPSG:4326]", "PIXEL_SIZE": 0.5,
                "OUTPUT_TABLE": str(work / "table.csv"), "OUTPUT_REPORT": str(work / "report.html")})
            out["compare"] = {"MAP": res.get("MAP")}
        except Exception:
            out["compare"] = {"error": traceback.format_exc()}


def main() -> dict:
    bundle, work = Path(sys.argv[1]), Path(sys.argv[2])
    out: dict = {"importable": {m: importable(m) for m in ("onnxruntime", "torch")}}
    for m in ("onnxruntime", "torch"):  # the import test above must not leave them loaded
        sys.modules.pop(m, None)
    _app, plugin = start_qgis()  # held: QGIS lives as long as the Python object of its application
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("sinr")
    out["provider"] = provider is not None
    out["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
    check_training(out)
    probe_predict(out, bundle, work)
    probe_compare(out, bundle, work)
    # The plugin must never pull torch into the QGIS process, whatever is installed.
    out["torch_loaded_in_qgis"] = "torch" in sys.modules
    out["onnxruntime_loaded"] = "onnxruntime" in sys.modules
    plugin.unload()
    out["provider_after_unload"] = QgsApplication.processingRegistry().providerById("sinr") is not None
    return out


if __name__ == "__main__":
    result = main()
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip QGIS's exit-time teardown, which can crash a headless process
