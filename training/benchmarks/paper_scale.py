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
  list (open, filter per keystroke, sort), "What lives here?" at a click.

    .venv/bin/python -m training.benchmarks.paper_scale               # ~1 minute on 2 cores
    .venv/bin/python -m training.benchmarks.paper_scale --rounds 5 --pixels 4000 --keep /tmp/paper
    # the dock of another version side by side (a source tree, e.g. from `git archive`)
    git archive <commit> | tar -x -C /tmp/before
    .venv/bin/python -m training.benchmarks.paper_scale --compare-with /tmp/before

Figures are the best (and median) of ``--rounds`` rounds; record them with the machine and the
load average in README.md. Not timed assertions: the test suite checks the behaviour and the memory
bounds (tests/core/test_paper_scale.py, tests/qgis/test_paper_scale_dock.py).
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
from sinr_qgis.core.runtime import Predictor, _sigmoid
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
    old_s, old_peak = peak_bytes(lambda: (_sigmoid(emb @ bundle.head.T) >= thr).sum(axis=1))
    new_s, new_peak = peak_bytes(lambda: predictor.count_above(emb, idx, thr))
    out[f"richness of {pixels:,} pixels"] = {"before: all species at once": (round(old_s, 2), old_peak >> 20),
                                             "now: count_above": (round(new_s, 2), new_peak >> 20)}
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
from sinr_qgis.qgis_bridge import model as model_cache

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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        paths = build(folder, args.species, args.width, args.depth)
        print(f"{args.species:,} species, width {args.width}, depth {args.depth}: built in "
              f"{time.perf_counter() - t:.1f} s; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")
        figures = {"core": core_figures(paths, args.rounds, args.pixels),
                   "dock": dock_figures(paths["float32"], args.rounds, args.python)}
        if args.compare_with:
            figures[f"dock of {args.compare_with}"] = dock_figures(paths["float32"], args.rounds, args.python,
                                                                   args.compare_with.resolve())
    for part, values in figures.items():
        print(f"\n[{part}]")
        for k, v in values.items():
            print(f"  {k}: {v}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
