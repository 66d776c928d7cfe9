"""Choose the local-evidence weights on held-out TRAINING records, never on the evaluation data.

    python -m training.benchmarks.local_evidence_select --config v09_sh10_e20 --out build/le_select

Two validation splits of the training file, each with its own validation model (the config's
``python -m training train`` options, seed ``--seed``):

- **A (surveys)**: the records of the survey source (``--survey-source``, the FIA plots) in the
  odd cells of a 0.5-degree checkerboard (floor(2 lon) + floor(2 lat) odd) are held out, so that
  held-out plots lie as far from the kept plots as the protocol's evaluation plots lie from the
  training plots (its 1-degree checkerboard, whose odd cells hold no training plot): distance to the
  nearest training plot, quantiles 10/25/50/75/90 %, 0.058/0.102/0.184/0.297/0.403 degrees for the
  evaluation plots, 0.055/0.097/0.174/0.274/0.374 for split A (printed). Holding out whole 1-degree
  cells of the training half instead puts them 2.5 times farther (median 0.459). Task: the
  held-out plots (distinct locations) x the survey's species, present = recorded there (every
  plot of the file recorded at least one species, so absences are survey absences).
- **B (presences)**: every record in the cells with (floor(lon) + 3 floor(lat)) mod 5 = 0 (a fifth
  of the cells, spread evenly) is held out. Task: per species with at least 5 held-out locations,
  those locations against background land points (a 0.2-degree grid) in the held-out cells.

For each bandwidth the two terms are built from the split's training records
(``training/local_evidence.py``; a = 1, b = 0 and a = 0, b = 1: the offsets are linear in a and b)
and added to the validation model's logits; the (bandwidth, a, b) with the largest MAP(A) + MAP(B)
wins. Prints the table and writes ``OUT/selection.json``.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sinr_qgis.core import metrics
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.landmask import load_land_mask
from training.benchmarks import na_trees as nt
from training.benchmarks.paper_table import CONFIGS, DEFAULT_OCCURRENCES
from training.local_evidence import build_local_evidence

BANDWIDTHS = (0.25, 0.5, 1.0)
RECORD_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)
SURVEY_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0)
SURVEY_SOURCE = "FIA_Doser2025_SE"
MIN_HELD_OUT = 5
BACKGROUND_STEP = 0.2


def held_out_a(lon: float, lat: float, source: str, survey: str) -> bool:
    """Split A: the survey's records in the odd cells of a 0.5-degree checkerboard."""
    return source == survey and (math.floor(2 * lon) + math.floor(2 * lat)) % 2 == 1


def nearest_kept_quantiles(held: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Quantiles 10/25/50/75/90 % of the distance (degrees) from each held-out location [n, 2]
    to the nearest kept one [m, 2]."""
    from scipy.spatial import cKDTree

    return np.percentile(cKDTree(kept).query(held)[0], [10, 25, 50, 75, 90])


def cell_b(lon: float, lat: float) -> bool:
    """Split B: the 1-degree cells held out whole."""
    return (math.floor(lon) + 3 * math.floor(lat)) % 5 == 0


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV(.gz) as dicts."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_rows(rows: list[dict[str, str]], path: Path) -> None:
    """``rows`` as a CSV with their own header."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def train(rows: list[dict[str, str]], args: list[str], seed: int, out: Path) -> ModelBundle:
    """The validation model of a split (reused when ``out`` exists)."""
    if not out.exists():
        data = out.with_suffix(".csv")
        write_rows(rows, data)
        subprocess.run([sys.executable, "-m", "training", "train", "--data", str(data), "--out", str(out),
                        "--seed", str(seed), *args], check=True, cwd=nt.REPO_ROOT, stdout=subprocess.DEVNULL)
    return ModelBundle.load(out)


def records(rows: list[dict[str, str]], bundle: ModelBundle) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lon, lat) [N, 2], head index [N] and source [N] of ``rows`` of the bundle's species."""
    index = {s.code: s.index for s in bundle.species}
    rows = [r for r in rows if r["code"] in index]
    return (np.array([(float(r["longitude"]), float(r["latitude"])) for r in rows]),
            np.array([index[r["code"]] for r in rows]), np.array([r["source"] for r in rows]))


def terms(train_rows: list[dict[str, str]], bundle: ModelBundle, h: float, points: np.ndarray,
          idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The record term and the survey term (float64 [P, S']) of species ``idx`` at ``points``."""
    ll, sp, src = records(train_rows, bundle)
    k = build_local_evidence(ll, sp, bundle.n_species, src, bandwidth_deg=h, record_weight=1.0, survey_weight=0.0)
    s = build_local_evidence(ll, sp, bundle.n_species, src, bandwidth_deg=h, record_weight=0.0, survey_weight=1.0)
    return k.offsets(points, idx).astype(np.float64), s.offsets(points, idx).astype(np.float64)


def task_a(held: list[dict[str, str]], bundle: ModelBundle) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out plots [P, 2], head indices [S'] and presence labels bool [P, S']."""
    plots = sorted({(float(r["longitude"]), float(r["latitude"])) for r in held})
    where = {p: i for i, p in enumerate(plots)}
    index = {s.code: s.index for s in bundle.species}
    codes = sorted({r["code"] for r in held if r["code"] in index})
    labels = np.zeros((len(plots), len(codes)), bool)
    for r in held:
        if r["code"] in index:
            labels[where[(float(r["longitude"]), float(r["latitude"]))], codes.index(r["code"])] = True
    return np.array(plots), np.array([index[c] for c in codes]), labels


def task_b(held: list[dict[str, str]], bundle: ModelBundle) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points [P, 2] (held-out presences, then background), head indices [S'] and labels [P, S']
    (a species' rows: its own presences and the background; other presences are dropped by AP)."""
    index = {s.code: s.index for s in bundle.species}
    by = defaultdict(set)
    for r in held:
        if r["code"] in index:
            by[r["code"]].add((float(r["longitude"]), float(r["latitude"])))
    codes = sorted(c for c, v in by.items() if len(v) >= MIN_HELD_OUT)
    pres = sorted(set().union(*(by[c] for c in codes)))
    lon = np.arange(-180 + BACKGROUND_STEP / 2, 180, BACKGROUND_STEP)
    lat = np.arange(-90 + BACKGROUND_STEP / 2, 90, BACKGROUND_STEP)
    lo = np.array(pres).min(axis=0) - 1, np.array(pres).max(axis=0) + 1
    g = np.array([(x, y) for x in lon[(lon > lo[0][0]) & (lon < lo[1][0])]
                  for y in lat[(lat > lo[0][1]) & (lat < lo[1][1])] if cell_b(x, y)])
    bg = g[load_land_mask().is_land(g)]
    where = {p: i for i, p in enumerate(pres)}
    labels = np.zeros((len(pres) + len(bg), len(codes)), np.int8)
    labels[:len(pres)] = -1  # another species' presence: not scored for this species
    for j, c in enumerate(codes):
        for p in by[c]:
            labels[where[p], j] = 1
    return np.vstack([np.array(pres), bg]), np.array([index[c] for c in codes]), labels


def mean_ap(labels: np.ndarray, scores: np.ndarray) -> float:
    """100 x mean AP over the columns (rows labelled -1 left out of that column)."""
    aps = []
    for j in range(labels.shape[1]):
        keep = labels[:, j] >= 0
        if labels[keep, j].any():
            aps.append(metrics.average_precision(labels[keep, j] > 0, scores[keep, j]))
    return 100.0 * float(np.mean(aps))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m training.benchmarks.local_evidence_select",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="config name in training/benchmarks/configs (its train options)")
    ap.add_argument("--out", required=True, help="folder for the splits, validation models and selection.json")
    ap.add_argument("--data", default=str(DEFAULT_OCCURRENCES), help="the training file (columns code, longitude, "
                                                                    "latitude, source)")
    ap.add_argument("--survey-source", default=SURVEY_SOURCE, help="the source whose plots split A holds out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    args = json.loads((CONFIGS / f"{a.config}.json").read_text(encoding="utf-8"))["args"]
    rows = read_rows(a.data)
    results: list[dict[str, Any]] = []
    scores: dict[str, dict[tuple, float]] = {}
    for split in ("A", "B"):
        held_fn = (lambda r: held_out_a(float(r["longitude"]), float(r["latitude"]), r["source"], a.survey_source)) \
            if split == "A" else (lambda r: cell_b(float(r["longitude"]), float(r["latitude"])))
        held = [r for r in rows if held_fn(r)]
        kept = [r for r in rows if not held_fn(r)]
        bundle = train(kept, args, a.seed, out / f"split{split}_{a.config}_s{a.seed}.sinr")
        if split == "A":
            plots = [np.unique(np.array([(float(r["longitude"]), float(r["latitude"])) for r in part
                                         if r["source"] == a.survey_source]), axis=0) for part in (held, kept)]
            print("split A: distance to the nearest kept plot, quantiles 10/25/50/75/90 %: "
                  + "/".join(f"{q:.3f}" for q in nearest_kept_quantiles(*plots)) + " degrees", flush=True)
        points, idx, labels = (task_a if split == "A" else task_b)(held, bundle)
        logits = nt.bundle_scorer(bundle, local_evidence=False)(points, [bundle.species[i].code for i in idx])
        logits = np.asarray(logits, np.float64)
        if split == "A":
            labels = labels.astype(np.int8)
        print(f"split {split}: {len(held):,} records held out, {points.shape[0]:,} points, {len(idx)} species; "
              f"SINR alone {mean_ap(labels, logits):.2f}", flush=True)
        scores[split] = {}
        for h in BANDWIDTHS:
            k, s = terms(kept, bundle, h, points, idx)
            for wa in RECORD_WEIGHTS:
                for wb in SURVEY_WEIGHTS:
                    scores[split][(h, wa, wb)] = mean_ap(labels, logits + wa * k + wb * s)
    for key in scores["A"]:
        results.append({"bandwidth_deg": key[0], "record_weight": key[1], "survey_weight": key[2],
                        "map_a": round(scores["A"][key], 3), "map_b": round(scores["B"][key], 3)})
    best = max(results, key=lambda r: r["map_a"] + r["map_b"])
    for r in results:
        mark = "  <- chosen" if r is best else ""
        print(f"h {r['bandwidth_deg']:g}  a {r['record_weight']:g}  b {r['survey_weight']:g}:  A {r['map_a']:.2f}  "
              f"B {r['map_b']:.2f}  sum {r['map_a'] + r['map_b']:.2f}{mark}")
    (out / "selection.json").write_text(json.dumps({"config": a.config, "seed": a.seed, "chosen": best,
                                                    "grid": results}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
