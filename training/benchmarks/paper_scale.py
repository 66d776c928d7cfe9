"""A paper-scale model (47,375 species) in the plugin: load, search, "what lives here", richness memory.

Builds a random-weight bundle the size of the official SINR models (47,375 species, width 256,
depth 4) with made-up Latin names (a fifth with authorship), iNaturalist-like numeric codes and
common names for a third, then measures side by side in one run:

- core (this interpreter): ``ModelBundle.load`` of the bundle as written now (weights stored),
  with a float16 head, and with every member deflated (as bundles were written before); building
  the species lookup; ranking every species at 1 and 1,000 points; species richness on a block of
  ``--pixels`` pixels the old way (probabilities of every species at once) and the new way
  (``Predictor.count_above``), time and peak traced memory;
- the dock (a child process in QGIS's interpreter, offscreen): choosing the model (load, completer,
  lookup, card), completion and the species line per keystroke while a name is typed, the species
  list (open, filter per keystroke, sort), "What lives here?" at a click;
- issue 12, printed beside its targets: a ``--canvas`` x ``--canvas`` species-richness GeoTIFF of every
  species (EPSG:3857 over North America, ocean mask on, the encoder included) against the bare
  encoder on the canvas's land pixels, interleaved rounds in this process; the richness run's peak
  memory (peak resident set of a fresh child process doing only that); "what lives here" at a click.

    .venv/bin/python -m training.benchmarks.paper_scale               # ~1 minute on 2 cores
    .venv/bin/python -m training.benchmarks.paper_scale --rounds 5 --pixels 4000 --keep /tmp/paper
    # the dock of another version side by side (a source tree, e.g. from `git archive`)
    git archive <commit> | tar -x -C /tmp/before
    .venv/bin/python -m training.benchmarks.paper_scale --compare-with /tmp/before
    .venv/bin/python -m training.benchmarks.paper_scale --only-issue12 --rounds 2   # the issue 12 rows only

Figures are the best (and median) of ``--rounds`` rounds; record them with the machine and the
load average in README.md. Not timed assertions: the test suite checks the behaviour and the memory
bounds (tests/core/test_paper_scale.py, tests/gui/test_paper_scale_dock.py).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sinr_qgis.core.bundle import ModelBundle, Species
from sinr_qgis.core.metrics import sigmoid
from sinr_qgis.core.runtime import Predictor
from sinr_qgis.core.species_names import SpeciesIndex

from ..export import export_bundle
from ..model import SinrModel

ROOT = Path(__file__).resolve().parents[2]
N_SPECIES = 47_375
_SYLLABLES = ("ca", "ra", "lo", "mi", "pe", "the", "qua", "ru", "sa", "ni", "to", "ve", "la", "do", "phy", "ge",
              "ma", "ter", "cu", "ri", "bu", "zo", "an", "el", "pin", "quer", "ace", "sal", "ly", "co")
_AUTHORS = ("L.", "(L.) Mill.", "Nutt.", "Sm., 1806", "(Pall.) Benth.", "Michx.", "Linnaeus, 1758")
_COMMON = (("red", "white", "lesser", "common", "mountain", "swamp", "spotted", "northern"),
           ("maple", "oak", "warbler", "frog", "beetle", "fern", "orchid", "snail", "sparrow", "moth"))


def paper_species(n: int = N_SPECIES, seed: int = 0) -> list[Species]:
    """``n`` species with made-up but name-shaped scientific names, numeric codes and some common names."""
    rng = np.random.default_rng(seed)

    def word(k: int, ends: tuple[str, ...]) -> str:
        return "".join(rng.choice(_SYLLABLES, k)) + rng.choice(ends)

    genera = sorted({word(int(rng.integers(2, 4)), ("us", "a", "ia", "um", "is")).capitalize()
                     for _ in range(n // 8)})
    names: dict[str, None] = {}
    while len(names) < n:
        name = f"{rng.choice(genera)} {word(int(rng.integers(2, 4)), ('a', 'us', 'um', 'is', 'ensis', 'ii', 'ae'))}"
        if rng.random() < 0.2:
            name += f" {rng.choice(_AUTHORS)}"
        names[name] = None
    codes = rng.choice(np.arange(1, 1_500_000), n, replace=False)
    return [Species(i, str(int(c)), name, 0,
                    common_name=f"{rng.choice(_COMMON[0])} {rng.choice(_COMMON[1])} {i}" if rng.random() < 0.3 else "")
            for i, (c, name) in enumerate(zip(codes, names))]


def build(folder: Path, n: int, width: int, depth: int) -> dict[str, Path]:
    """The bundle as written now (float32 and float16 head) and as written before (all deflated)."""
    torch.manual_seed(0)
    model = SinrModel(n, "sin_cos", 0, width=width, depth=depth)
    species = paper_species(n)
    paths = {"float32": folder / "paper.sinr", "float16": folder / "paper_f16.sinr",
             "deflated (before)": folder / "paper_deflated.sinr"}
    export_bundle(model, species, paths["float32"], name="paper_scale")
    export_bundle(model, species, paths["float16"], name="paper_scale_f16", head_dtype="float16")
    with zipfile.ZipFile(paths["float32"]) as zin, \
            zipfile.ZipFile(paths["deflated (before)"], "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    return paths


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    """(best, median) seconds of ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def peak_bytes(fn: Callable[[], object]) -> tuple[float, int]:
    """(seconds, peak traced bytes) of one call."""
    tracemalloc.start()
    t = time.perf_counter()
    try:
        fn()
        return time.perf_counter() - t, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def core_figures(paths: dict[str, Path], rounds: int, pixels: int) -> dict[str, object]:
    """In-process figures for the bundles in ``paths`` (keyed by precision): file MB, load, lookup
    and prediction seconds over ``rounds`` rounds, and richness time and peak MiB on ``pixels`` cells."""
    out: dict[str, object] = {"file MB": {k: round(p.stat().st_size / 1e6, 1) for k, p in paths.items()}}
    out["load s"] = {k: timed(lambda p=p: ModelBundle.load(p), rounds) for k, p in paths.items()}
    bundle = ModelBundle.load(paths["float32"])
    out["lookup index s"] = timed(lambda: SpeciesIndex(bundle.species, bundle.name), rounds)
    index = bundle.species_index()
    name = bundle.species[12_345].name
    out["find exact name s"] = timed(lambda: index.find(name), rounds)
    out["suggestions for a typo s"] = timed(lambda: index.suggestions(name[:-2] + name[-1:]), rounds)
    predictor = Predictor(bundle, "numpy")
    rng = np.random.default_rng(0)
    point = np.array([[-75.0, 40.0]])
    many = np.c_[rng.uniform(-180, 180, 1000), rng.uniform(-60, 75, 1000)]
    out["what lives here, 1 point s"] = timed(lambda: predictor.top_species(point, k=10), rounds)
    out["top 10 at 1,000 points s"] = timed(lambda: predictor.top_species(many, k=10), max(1, rounds // 2))
    emb = predictor.embed(np.c_[rng.uniform(-100, -70, pixels), rng.uniform(30, 45, pixels)])
    thr = rng.uniform(0.3, 0.7, bundle.n_species).astype(np.float32)
    idx = np.arange(bundle.n_species)
    old_s, old_peak = peak_bytes(lambda: (sigmoid(emb @ bundle.head.T, np.float32) >= thr).sum(axis=1))
    new_s, new_peak = peak_bytes(lambda: predictor.count_above(emb, idx, thr))
    out[f"richness of {pixels:,} pixels"] = {"before: all species at once": (round(old_s, 2), old_peak >> 20),
                                             "now: count_above": (round(new_s, 2), new_peak >> 20)}
    return out


# Issue 12's targets, printed beside the figures
RICHNESS_MAX_RATIO = 25.0  # richness raster of every species / bare encoder on the same canvas
RICHNESS_MAX_PEAK_GB = 2.0  # peak resident memory of the richness run
CLICK_MAX_S = 0.050  # "what lives here" over every species at one point

# A fresh interpreter that makes one richness raster: argv = repo root, bundle path, side, extent JSON,
# output. Prints the peak resident set (KiB) after loading (imports, bundle, predictor) and after the
# raster: VmHWM, this process's own peak (getrusage's would include the parent's at the fork).
RICHNESS_CHILD = r'''
import json, sys
def peak_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
sys.path.insert(0, sys.argv[1])
import numpy as np
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.runtime import Predictor
from sinr_qgis.core.products import species_richness_raster
bundle = ModelBundle.load(sys.argv[2])
side = int(sys.argv[3])
predictor = Predictor(bundle)
grid = Grid(tuple(json.loads(sys.argv[4])), "EPSG:3857", side, side)
thr = np.random.default_rng(0).uniform(0.3, 0.7, bundle.n_species).astype(np.float32)
loaded = peak_kib()
species_richness_raster(predictor, grid, bundle.species, thr, sys.argv[5])
print(json.dumps({"loaded KiB": loaded, "peak KiB": peak_kib()}))
'''


def issue12_figures(path: Path, rounds: int, side: int, python: str) -> dict[str, object]:
    """Issue 12's rows: a ``side`` x ``side`` richness GeoTIFF of every species (ocean mask on, the
    canvas encoded afresh each round) against the bare encoder on that canvas's land pixels,
    interleaved, best of ``rounds``; its peak memory in a fresh child; "what lives here" at one point."""
    from sinr_qgis.core.grid import Grid
    from sinr_qgis.core.landmask import load_land_mask
    from sinr_qgis.core.products import species_richness_raster

    from .predict_speed import CANVAS_EXTENT

    bundle = ModelBundle.load(path)
    predictor = Predictor(bundle)
    grid = Grid(CANVAS_EXTENT, "EPSG:3857", side, side)
    lonlat, ok = grid.lonlat()
    land = lonlat[ok & load_land_mask().is_land(lonlat)].astype(np.float32)  # what the raster encodes
    thr = np.random.default_rng(0).uniform(0.3, 0.7, bundle.n_species).astype(np.float32)
    out: dict[str, object] = {"canvas": f"{side} x {side} EPSG:3857 over North America, {len(land):,} land pixels, "
                                        f"{bundle.n_species:,} species, {predictor.backend_name}"}
    with tempfile.TemporaryDirectory() as tmp:
        def richness() -> None:
            predictor.clear_cache()  # the encoder is part of the raster's cost
            species_richness_raster(predictor, grid, bundle.species, thr, Path(tmp) / "richness.tif")

        times: dict[str, list[float]] = {"encoder": [], "richness": []}
        for _ in range(rounds):  # interleaved: load from other processes hurts both alike
            for name, fn in (("encoder", lambda: predictor.embed(land)), ("richness", richness)):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        enc, rich = min(times["encoder"]), min(times["richness"])
        out["bare encoder on the land pixels s (best, median)"] = (round(enc, 3), round(statistics.median(
            times["encoder"]), 3))
        out["richness raster s (best, median)"] = (round(rich, 2), round(statistics.median(times["richness"]), 2))
        out["richness / encoder"] = f"{rich / enc:.1f}x (target < {RICHNESS_MAX_RATIO:g}x): " + \
            ("PASS" if rich < RICHNESS_MAX_RATIO * enc else "MISS")
        proc = subprocess.run([python, "-c", RICHNESS_CHILD, str(ROOT), str(path), str(side),
                               json.dumps(list(CANVAS_EXTENT)), str(Path(tmp) / "child.tif")],
                              capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"the richness memory run failed:\n{proc.stderr[-3000:]}")
    mem = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_gb = mem["peak KiB"] * 1024 / 1e9
    out["richness peak memory (whole process)"] = f"{peak_gb:.2f} GB (target < {RICHNESS_MAX_PEAK_GB:g} GB): " + \
        ("PASS" if peak_gb < RICHNESS_MAX_PEAK_GB else "MISS") + \
        f"; {mem['loaded KiB'] * 1024 / 1e9:.2f} GB after loading the model"
    point = np.array([[-75.0, 40.0]])
    predictor.top_species(point, k=10)  # the first call pays for onnxruntime's first run
    click, _ = timed(lambda: predictor.top_species(point, k=10), max(5, rounds))
    out["what lives here at a click, top 10 of all species"] = f"{click * 1e3:.1f} ms (target < " + \
        f"{CLICK_MAX_S * 1e3:g} ms): " + ("PASS" if click < CLICK_MAX_S else "MISS")
    return out


# Runs in QGIS's interpreter (the child): argv = repo root, bundle path, rounds; prints one JSON line
CHILD = r'''
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from qgis.core import QgsApplication, QgsCoordinateReferenceSystem, QgsPointXY, QgsRectangle
from qgis.gui import QgsMapCanvas
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QMainWindow
app = QgsApplication([], True)
app.initQgis()
from sinr_qgis.core import species_names
from sinr_qgis.gui.dock import SinrDock
from sinr_qgis.core import model_cache

path, rounds = sys.argv[2], int(sys.argv[3])

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

iface = Iface()
iface.canvas.resize(600, 400)
iface.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
iface.canvas.setExtent(QgsRectangle(-80, 35, -70, 45))
dock = SinrDock(iface)
out = {}

def stats(times):
    return [round(min(times), 4), round(statistics.median(times), 4), round(max(times), 4)]

loads = []
for _ in range(rounds):
    model_cache._cache.clear()
    species_names._last_index = None
    dock.species_edit.setText("")
    t = time.perf_counter()
    assert dock.choose_model(path)
    loads.append(time.perf_counter() - t)
out["dock: choose the model s (min, median, max)"] = stats(loads)
name = dock.bundle.species[12345].name
completion, info = [], []
for i in range(1, len(name) + 1):
    text = name[:i]
    dock.species_edit.setText(text)
    t = time.perf_counter()
    c = dock.species_completer
    c.setCompletionPrefix(c.splitPath(text)[0])
    c.completionCount()
    completion.append(time.perf_counter() - t)
    t = time.perf_counter()
    dock.update_species_info()
    info.append(time.perf_counter() - t)
out[f"keystroke: completion s (typing {name!r})"] = stats(completion)
out["keystroke: species line s (after the 300 ms pause)"] = stats(info)
t = time.perf_counter()
dialog = dock.show_species_list()
app.processEvents()
out["species list: open s"] = round(time.perf_counter() - t, 4)
typing = []
for i in range(1, 6):
    t = time.perf_counter()
    dialog.filter_edit.setText(name[:i])
    typing.append(time.perf_counter() - t)
out["species list: filter keystroke s"] = stats(typing)
t = time.perf_counter()
dialog.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
out["species list: sort s"] = round(time.perf_counter() - t, 4)
dialog.close()
for k in (10, 1000):
    dock.top_k.setValue(k)
    here = []
    for _ in range(rounds):
        t = time.perf_counter()
        dock.show_species_at(QgsPointXY(-75.0, 40.0))
        here.append(time.perf_counter() - t)
    out[f"what lives here, top {k} s"] = stats(here)
print(json.dumps(out))
'''


def dock_figures(path: Path, rounds: int, python: str, root: Path = ROOT) -> dict[str, object]:
    """The dock's figures with the plugin from source tree ``root``."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([python, "-c", CHILD, str(root), str(path), str(rounds)], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        sys.exit(f"the dock run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--species", type=int, default=N_SPECIES)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3, help="rounds per timing (best and median shown)")
    ap.add_argument("--pixels", type=int, default=2000, help="pixels of the richness block")
    ap.add_argument("--python", default=sys.executable, help="an interpreter that imports qgis (for the dock)")
    ap.add_argument("--keep", type=Path, help="write the bundles here and keep them (default: a temporary folder)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--compare-with", type=Path, metavar="TREE",
                    help="also time the dock of the plugin in this source tree (another version)")
    ap.add_argument("--canvas", type=int, default=512, help="side in pixels of the issue 12 richness canvas")
    ap.add_argument("--only-issue12", action="store_true", help="only the issue 12 rows (richness canvas, click)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        paths = build(folder, args.species, args.width, args.depth)
        print(f"{args.species:,} species, width {args.width}, depth {args.depth}: built in "
              f"{time.perf_counter() - t:.1f} s; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")
        figures = {"issue 12": issue12_figures(paths["float32"], args.rounds, args.canvas, sys.executable)}
        if not args.only_issue12:
            figures["core"] = core_figures(paths, args.rounds, args.pixels)
            figures["dock"] = dock_figures(paths["float32"], args.rounds, args.python)
        if args.compare_with:
            figures[f"dock of {args.compare_with}"] = dock_figures(paths["float32"], args.rounds, args.python,
                                                                   args.compare_with.resolve())
    for part, values in figures.items():
        print(f"\n[{part}]")
        for k, v in values.items():
            print(f"  {k}: {v}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
