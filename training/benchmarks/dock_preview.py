"""The dock's progressive rendering: when the coarse preview shows, and what it adds to the full map.

Drives the real dock (QGIS's interpreter, offscreen, a stub ``iface``) on the bundled model over a
1024 x 1024 EPSG:3857 map view of North America with the ocean mask on, as a user pressing
"Predict on canvas extent" does, and times, interleaved round by round (best and median kept):

- ``one pass``: the dock without a preview (``products.PREVIEW_MIN_PIXELS`` set out of reach);
- ``progressive``: the dock as shipped: a 128 x 128 preview in the species' layer, then the full map
  in its place. Timed at the preview's layer (click -> preview shown) and at the full map's. The
  preview is computed before the full map, so "preview shown" also bounds what it adds.

Every round starts with the embedding caches emptied (a first species on a new view). Both runs'
final GeoTIFFs are compared byte for byte. Targets (issue 12): the preview within about 1 s, and
the progressive total at most 1.10x the one-pass total. Canvas painting is not included (offscreen).

    .venv/bin/python training/benchmarks/dock_preview.py              # ~1 minute on 2 cores
    .venv/bin/python training/benchmarks/dock_preview.py --rounds 5 --side 1024
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: the plugin package sits at the top level

from sinr_qgis.core.resources import BUNDLED  # noqa: E402

CANVAS_EXTENT = (-1.45e7, 1.6e6, -6.0e6, 1.01e7)  # North America in Web Mercator (predict_speed.py's)

# Runs in QGIS's interpreter: argv = repo root, rounds, side, extent (4 numbers); prints one JSON line
CHILD = r'''
import hashlib, json, sys, time
sys.path.insert(0, sys.argv[1])
from qgis.core import QgsApplication, QgsCoordinateReferenceSystem, QgsMapSettings, QgsRectangle
from qgis.gui import QgsMapCanvas
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtWidgets import QMainWindow
app = QgsApplication([], True)
app.initQgis()
from sinr_qgis.gui.dock import SinrDock
from sinr_qgis.core import products

rounds, side = int(sys.argv[2]), int(sys.argv[3])
extent = QgsRectangle(*map(float, sys.argv[4:8]))

class Bar:
    def pushMessage(self, *args, **kwargs):
        pass

class Iface:
    def __init__(self):
        self.canvas, self.bar, self.window = QgsMapCanvas(), Bar(), QMainWindow()
    def mapCanvas(self):
        return self.canvas
    def messageBar(self):
        return self.bar
    def mainWindow(self):
        return self.window

class View:  # what the dock reads of the canvas: a map view of a known size
    def __init__(self):
        self.settings = QgsMapSettings()
        self.settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
        self.settings.setOutputSize(QSize(side, side))
        self.settings.setExtent(extent)
    def mapSettings(self):
        return self.settings

dock = SinrDock(Iface())
assert dock.choose_model("")
dock.canvas = View()
dock.mask_check.setChecked(True)
dock.species_edit.setText("Quercus alba")
shown_at = []
real_show = SinrDock._show_preview
def show(self):
    real_show(self)
    shown_at.append(time.perf_counter())
SinrDock._show_preview = show
reach = products.PREVIEW_MIN_PIXELS

def run(progressive):
    products.PREVIEW_MIN_PIXELS = reach if progressive else 1 << 62
    dock._cached_view = None  # a first species on a new view: nothing cached
    dock.grid_predictor.clear_cache()
    dock.preview_predictor.clear_cache()
    shown_at.clear()
    t = time.perf_counter()
    task = dock.predict_canvas_extent()
    while dock.task is not None:
        app.processEvents()
        time.sleep(0.001)
    total = time.perf_counter() - t
    assert task.error is None, task.error
    digest = hashlib.sha256(task.files[0].read_bytes()).hexdigest()
    return total, (shown_at[0] - t if shown_at else None), digest, task

run(True)  # warm up: the land mask, onnxruntime's first runs
times = {"one pass": [], "progressive": [], "preview shown": []}
digests = set()
for _ in range(rounds):
    total, _, d1, _ = run(False)
    times["one pass"].append(total)
    total, first, d2, task = run(True)
    times["progressive"].append(total)
    times["preview shown"].append(first)
    digests |= {d1, d2}
print(json.dumps({"times": times, "identical": len(digests) == 1, "grid": [task.grid.width, task.grid.height],
                  "preview": [task.preview.grid.width, task.preview.grid.height],
                  "backend": dock.backend_name}))
'''


def main() -> None:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best and median shown)")
    ap.add_argument("--side", type=int, default=1024, help="map view side in pixels (square)")
    ap.add_argument("--python", default=sys.executable, help="an interpreter that imports qgis")
    args = ap.parse_args()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    load = os.getloadavg()[0]
    proc = subprocess.run([args.python, "-c", CHILD, str(ROOT), str(args.rounds), str(args.side),
                           *map(str, CANVAS_EXTENT)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"the dock run failed:\n{proc.stderr[-3000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    t = r["times"]
    best = {k: min(v) for k, v in t.items()}
    med = {k: sorted(v)[len(v) // 2] for k, v in t.items()}
    print(f"model {BUNDLED.file} ({r['backend']}); map view {r['grid'][0]} x {r['grid'][1]} EPSG:3857, ocean mask "
          f"on; preview {r['preview'][0]} x {r['preview'][1]}; best (median) of {args.rounds} interleaved rounds; "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    for k in ("one pass", "preview shown", "progressive"):
        print(f"  {k:<14} {best[k]:7.2f} s ({med[k]:.2f} s)")
    print(f"preview shown after {best['preview shown']:.2f} s (target: about 1 s)")
    print(f"progressive / one pass: {best['progressive'] / best['one pass']:.3f}x best, "
          f"{med['progressive'] / med['one pass']:.3f}x median (target: at most 1.10x)")
    # the preview runs before the full map, so click -> preview shown bounds what it adds, with less noise
    print(f"preview shown / one pass: {best['preview shown'] / best['one pass']:.3f} best, "
          f"{med['preview shown'] / med['one pass']:.3f} median (its upper bound on the added time)")
    print(f"final GeoTIFFs byte-identical across all runs: {r['identical']}")


if __name__ == "__main__":
    main()
