"""NA-Trees benchmark, protocol "na-trees-v1" (``../shared/reference/benchmark-protocol.md``).

Two tasks on open North American tree data, both scored with the plugin's own metric code
(``sinr_qgis.core.metrics``):

- "ranges" (IUCN-style): H3 resolution-5 cell centres over the conterminous-US box, on land,
  labelled by Little's expert range polygons;
- "plots" (S&T-style): presence/absence of 20 species on 23,530 FIA evaluation plots.

Species are matched with the plugin's matcher (``core.evaluation.match_species``, by code only as
the protocol says) and a bundle is scored as the plugin scores it (:func:`bundle_scorer`:
``core.runtime.Predictor`` + ``core.scoring.point_logits``, covariates read with the plugin's
samplers), so the harness and ``sinr:evaluate_ranges`` / ``sinr:evaluate_presence_absence`` report
the same APs on the same locations.

Any scorer can be evaluated, not only a model bundle: ``evaluate(score, known_codes, tasks)``
takes a callable ``score(lonlat [N, 2], codes) -> [N, len(codes)]`` (higher = more likely
present), so the baselines go through the very same code path.

    python -m training.benchmarks.na_trees --model MODEL.sinr --out REPORT.json [--store-in-model]

``--store-in-model`` also writes the MAPs and each species' ranges AP into the bundle's
``model.json`` ``evaluation`` (:func:`model_evaluation`), where the plugin shows them as the
species' reliability (:mod:`sinr_qgis.core.reliability`); the weights are untouched, so the report
(with the re-saved file's SHA-256) still holds.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinr_qgis.core import evaluation, metrics, scoring
from sinr_qgis.core.atomic import atomic_path
from sinr_qgis.core.bundle import Species, file_sha256
from sinr_qgis.core.covariate_match import SourceSpec, covariate_samplers

PROTOCOL = "na-trees-v1"
H3_RESOLUTION = 5
FILL_BOX = (-126.0, 23.0, -65.0, 51.0)  # lon_min, lat_min, lon_max, lat_max: the area filled with cells
KEEP_BOX = (-125.0, 24.0, -66.0, 50.0)  # centres kept inside this box (inclusive) and on land
RANGES_LAYER = "ranges"
RANGES_REFERENCE = "Little's range maps over the conterminous US"  # the ranges task's labels, in the plugin's words

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path(os.environ.get("SINR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
DEFAULT_RANGES = DEFAULT_DATA / "ranges" / "little_ranges.gpkg"
DEFAULT_PLOTS = DEFAULT_DATA / "presence_absence" / "se_fia_eval_plots.csv.gz"
DEFAULT_CACHE = Path(os.environ.get("SINR_CACHE", Path.home() / ".cache" / "sinr_qgis"))

ScoreFn = Callable[[np.ndarray, list[str]], np.ndarray]


@dataclass
class Task:
    """Evaluation points with one 0/1 label column per species."""

    name: str
    lonlat: np.ndarray  # [N, 2] float64 degrees
    codes: list[str]  # species codes, one per label column
    names: list[str]  # scientific names ('' where unknown)
    labels: np.ndarray  # [N, S] bool

    @property
    def n_points(self) -> int:
        """Number of evaluation locations (rows of ``lonlat`` and ``labels``)."""
        return int(self.lonlat.shape[0])


# ---- task "ranges" --------------------------------------------------------------------------

def h3_points() -> tuple[list[str], np.ndarray]:
    """The protocol's evaluation points: H3 cells (sorted) and their centres as lon/lat [N, 2]."""
    import h3
    from global_land_mask import globe

    lon0, lat0, lon1, lat1 = FILL_BOX
    poly = h3.LatLngPoly([(lat0, lon0), (lat0, lon1), (lat1, lon1), (lat1, lon0)])
    cells = sorted(h3.polygon_to_cells(poly, H3_RESOLUTION))
    latlng = np.array([h3.cell_to_latlng(c) for c in cells], dtype=np.float64)
    lat, lon = latlng[:, 0], latlng[:, 1]
    k0, k1, k2, k3 = KEEP_BOX
    keep = (lon >= k0) & (lon <= k2) & (lat >= k1) & (lat <= k3)
    keep &= np.asarray(globe.is_land(lat, lon), dtype=bool)
    idx = np.flatnonzero(keep)
    return [cells[i] for i in idx], np.column_stack([lon[idx], lat[idx]])


def read_range_polygons(gpkg: str | Path, layer: str = RANGES_LAYER) -> list[tuple[str, str, Any]]:
    """(code, species name, shapely geometry) per feature, in layer order.

    Coordinates are used as they are (EPSG:4267 lon/lat treated as WGS84, as the protocol says).
    """
    import shapely
    from osgeo import ogr

    ds = ogr.Open(str(gpkg))
    if ds is None:
        raise FileNotFoundError(f"cannot open range layer file {gpkg}")
    lyr = ds.GetLayerByName(layer)
    if lyr is None:
        raise ValueError(f"{gpkg} has no layer {layer!r}")
    out = []
    for feat in lyr:
        geom = feat.GetGeometryRef()
        if geom is None or geom.IsEmpty():
            continue
        out.append((str(feat.GetField("code")).strip(), str(feat.GetField("species") or "").strip(),
                    shapely.from_wkb(bytes(geom.ExportToIsoWkb()))))
    return out


def polygon_labels(lonlat: np.ndarray, geometries: Sequence[Any]) -> np.ndarray:
    """[N, S] bool: point inside or on the boundary of each geometry (``intersects`` semantics)."""
    import shapely

    x, y = lonlat[:, 0], lonlat[:, 1]
    labels = np.zeros((lonlat.shape[0], len(geometries)), dtype=bool)
    for j, geom in enumerate(geometries):
        xmin, ymin, xmax, ymax = geom.bounds
        inside_box = np.flatnonzero((x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax))
        if inside_box.size:
            shapely.prepare(geom)
            labels[inside_box, j] = shapely.intersects_xy(geom, x[inside_box], y[inside_box])
    return labels


def features_digest(features: Sequence[tuple[str, str, Any]]) -> str:
    """sha256 of the features' codes, names and geometries (WKB).

    The cache key: unlike the file's own hash it does not change when a program opens the
    GeoPackage for update and SQLite rewrites its header without touching the data.
    """
    import shapely

    h = hashlib.sha256()
    for code, name, geom in features:
        h.update(code.encode() + b"\0" + name.encode() + b"\0")
        h.update(shapely.to_wkb(geom, byte_order=1))
    return h.hexdigest()


def ranges_task(gpkg: str | Path = DEFAULT_RANGES, cache_dir: str | Path | None = DEFAULT_CACHE) -> Task:
    """Build (or load from the cache) the "ranges" task; the cache is keyed by the layer's content."""
    features = read_range_polygons(gpkg)
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"{PROTOCOL}_ranges_{features_digest(features)[:20]}.npz"
        if cache.is_file():
            with np.load(cache, allow_pickle=False) as z:
                n = int(z["n_points"])
                labels = np.unpackbits(z["labels_packed"], axis=0, count=n).astype(bool)
                return Task("ranges", z["lonlat"], [str(c) for c in z["codes"]],
                            [str(s) for s in z["names"]], labels)
    _cells, lonlat = h3_points()
    labels = polygon_labels(lonlat, [g for _, _, g in features])
    task = Task("ranges", lonlat, [c for c, _, _ in features], [s for _, s, _ in features], labels)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, lonlat=lonlat, codes=np.array(task.codes), names=np.array(task.names),
                                labels_packed=np.packbits(labels, axis=0), n_points=lonlat.shape[0])
    return task


# ---- task "plots" ---------------------------------------------------------------------------

def plots_task(path: str | Path = DEFAULT_PLOTS) -> Task:
    """Read the presence/absence plots: ``latitude, longitude`` then one 0/1 column per code."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        rows = np.array([[float(v) for v in row] for row in reader if row], dtype=np.float64)
    try:
        ilat, ilon = header.index("latitude"), header.index("longitude")
    except ValueError:
        raise ValueError(f"{path}: needs 'latitude' and 'longitude' columns, found {header[:4]}...") from None
    species_cols = [i for i in range(len(header)) if i not in (ilat, ilon)]
    lonlat = rows[:, [ilon, ilat]]
    labels = rows[:, species_cols] > 0
    return Task("plots", lonlat, [header[i] for i in species_cols], [""] * len(species_cols), labels)


# ---- species matching and scoring ---------------------------------------------------------------

def match_species(task_codes: Sequence[str], model_codes: Iterable[str],
                  task_names: Sequence[str] | None = None,
                  model_names: Sequence[str] | None = None) -> tuple[list[tuple[int, str]], list[str]]:
    """Pair task columns with model species, with the plugin's matcher (``core.evaluation.match_species``).

    Matching is by code (the protocol; case, Unicode form and spacing ignored); if both name lists
    are given, a column whose code is unknown may also match a model species by scientific name,
    by the plugin's name rules. A code or name that fits several model species matches none.
    Returns ``([(column index, model code), ...], [unmatched task codes])``.
    """
    model_codes = list(model_codes)
    names = list(model_names) if model_names is not None else [""] * len(model_codes)
    species = [Species(i, c, n or c, 0) for i, (c, n) in enumerate(zip(model_codes, names))]
    by_code = evaluation.match_species(task_codes, species, by_code_only=True).matched
    by_name: dict[str, Species] = {}
    if model_names is not None and task_names is not None:
        by_name = evaluation.match_species([n for n in task_names if n], species).matched
    matched: list[tuple[int, str]] = []
    unmatched: list[str] = []
    for j, code in enumerate(task_codes):
        hit = by_code.get(code)
        if hit is None and by_name and task_names is not None and task_names[j]:
            hit = by_name.get(task_names[j])
        if hit is None:
            unmatched.append(code)
        else:
            matched.append((j, hit.code))
    return matched, unmatched


def evaluate_task(task: Task, score: ScoreFn, known_codes: Iterable[str],
                  model_names: Sequence[str] | None = None, match_names: bool = False,
                  weights: np.ndarray | None = None) -> dict[str, Any]:
    """Per-species AP of ``score`` on ``task``; MAP = 100 x mean AP over the species evaluated.

    Species whose labels make AP meaningless are skipped (``n_skipped``; ``skipped`` {code: reason})
    and not scored, by the plugin's one rule (``metrics.ap_undefined_reason``): no positive point
    (the protocol's rule), and also no negative point, where every ranking scores 1. No species of
    the protocol's data is positive everywhere, so its numbers are the protocol's.
    ``n_species`` counts the species with an AP.
    """
    matched, unmatched = match_species(task.codes, known_codes, task.names if match_names else None,
                                       model_names if match_names else None)
    reasons = {j: metrics.ap_undefined_reason(task.labels[:, j], weights) for j, _code in matched}
    used = [(j, code) for j, code in matched if reasons[j] is None]
    skipped = {task.codes[j]: reasons[j] for j, _code in matched if reasons[j] is not None}
    n_skipped = len(skipped)
    per_species: dict[str, float] = {}
    if used:
        scores = np.asarray(score(task.lonlat, [code for _, code in used]))
        if scores.shape != (task.n_points, len(used)):
            raise ValueError(f"scorer returned shape {scores.shape}, expected {(task.n_points, len(used))}")
        for k, (j, _code) in enumerate(used):
            per_species[task.codes[j]] = metrics.average_precision(task.labels[:, j], scores[:, k], weights)
    mean = metrics.mean_average_precision(per_species)
    return {"map": round(100.0 * mean, 6) if per_species else None, "n_species": len(per_species),
            "n_skipped": n_skipped, "n_points": task.n_points, "n_unmatched": len(unmatched),
            "per_species": per_species, "skipped": skipped}


def evaluate(score: ScoreFn, known_codes: Iterable[str], tasks: Sequence[Task]) -> dict[str, dict[str, Any]]:
    """Evaluate one scorer on several tasks: ``{task name: result}`` (see ``evaluate_task``)."""
    known = list(known_codes)
    return {t.name: evaluate_task(t, score, known) for t in tasks}


def load_tasks(ranges: str | Path = DEFAULT_RANGES, plots: str | Path = DEFAULT_PLOTS,
               cache_dir: str | Path | None = DEFAULT_CACHE) -> list[Task]:
    """Both protocol tasks, in report order."""
    return [ranges_task(ranges, cache_dir), plots_task(plots)]


def bundle_scorer(bundle: Any, covariates: SourceSpec | None = None, *, local_evidence: bool = True) -> ScoreFn:
    """A scorer for a ``ModelBundle``, as the plugin scores it: logits float32 [N, S] of the float64
    product embedding . head[species] (``core.scoring.point_logits`` on ``core.runtime.Predictor``).

    An environmental model reads ``covariates`` (its rasters: paths or (path, band), matched to its
    covariates by name) with the plugin's samplers (``core.covariate_match.covariate_samplers``):
    a point without a value scores NaN. ``local_evidence``: add the bundle's local-evidence offsets
    where it stores them (:mod:`sinr_qgis.core.local_evidence`; False: pure SINR). Raises
    ``ValueError`` when such a model gets none, and
    ``CovariateError`` when the bands do not fit its covariates."""
    from sinr_qgis.core.runtime import Predictor

    samplers = []
    if bundle.covariates:
        if not covariates:
            raise ValueError(f"model {bundle.name!r} needs covariates ({', '.join(bundle.covariate_names)}); "
                             "give the rasters it was trained with.")
        samplers = covariate_samplers(bundle.meta["encoding"], covariates)
    predictor = Predictor(bundle, local_evidence=local_evidence)
    by_code = {s.code: s for s in bundle.species}

    def score(lonlat: np.ndarray, codes: list[str]) -> np.ndarray:
        env = np.stack([s.sample(lonlat) for s in samplers], axis=1) if samplers else None
        return scoring.point_logits(predictor, lonlat, [by_code[c] for c in codes], env)

    return score


def report(results: dict[str, dict[str, Any]], model_file: str | Path | None = None,
           sha256: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The protocol's JSON report."""
    out: dict[str, Any] = {"protocol": PROTOCOL}
    if model_file is not None:
        out["model"] = {"file": Path(model_file).name, "sha256": sha256 or file_sha256(model_file)}
    if extra:
        out.update(extra)
    out.update(results)
    return out


def write_report(rep: dict[str, Any], path: str | Path) -> None:
    """Write the JSON report atomically (a crash never leaves half a file under ``path``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(rep, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def evaluate_model(model: str | Path, ranges: str | Path = DEFAULT_RANGES, plots: str | Path = DEFAULT_PLOTS,
                   cache_dir: str | Path | None = DEFAULT_CACHE) -> dict[str, Any]:
    """Load a ``.sinr`` bundle, run both tasks and return the protocol report. A bundle with local
    evidence is scored as the plugin scores it (with it), and as pure SINR beside: ``pure_sinr``
    {task: MAP} and ``local_evidence`` (its description)."""
    from sinr_qgis.core.bundle import ModelBundle

    bundle = ModelBundle.load(model)
    tasks = load_tasks(ranges, plots, cache_dir)
    codes = [s.code for s in bundle.species]
    extra: dict[str, Any] = {"data": data_identity(ranges, plots)}
    if bundle.local_evidence is not None:
        pure = evaluate(bundle_scorer(bundle, local_evidence=False), codes, tasks)
        extra["local_evidence"] = bundle.local_evidence.describe()
        extra["pure_sinr"] = {t: r["map"] for t, r in pure.items()}
    return report(evaluate(bundle_scorer(bundle), codes, tasks), model, bundle.sha256 or None, extra)


def data_identity(ranges: str | Path, plots: str | Path) -> dict[str, str]:
    """File names and hashes of the evaluation data, for the report.

    ``ranges_features_sha256`` identifies the range layer's content; the file hash alone can change
    when a program opens the GeoPackage for update without changing any feature.
    """
    return {"ranges": Path(ranges).name, "ranges_sha256": file_sha256(ranges),
            "ranges_features_sha256": features_digest(read_range_polygons(ranges)),
            "plots": Path(plots).name, "plots_sha256": file_sha256(plots)}


def model_evaluation(rep: dict[str, Any]) -> dict[str, Any]:
    """``model.json`` ``evaluation`` from a protocol report: the protocol, both MAPs (percent) and
    ``ranges_ap`` {code: AP 0-1, rounded to 4 decimals} of every species the ranges task scored."""
    out = {"protocol": rep["protocol"], "ranges_reference": RANGES_REFERENCE,
           "ranges_map": rep["ranges"]["map"], "plots_map": rep["plots"]["map"]}
    if "pure_sinr" in rep:  # a model with local evidence: the network alone beside it
        out.update({f"pure_sinr_{t}_map": m for t, m in rep["pure_sinr"].items()})
    out["ranges_ap"] = {c: round(float(ap), 4) for c, ap in rep["ranges"]["per_species"].items()}
    return out


def store_in_model(model: str | Path, rep: dict[str, Any]) -> str:
    """Write :func:`model_evaluation` of ``rep`` into the bundle at ``model`` (atomically, with new
    member checksums) and point ``rep`` at the re-saved file; returns its SHA-256."""
    from sinr_qgis.core.bundle import ModelBundle

    bundle = ModelBundle.load(model)
    if rep.get("model", {}).get("sha256") != bundle.sha256:
        raise ValueError(f"the report is not about {Path(model).name} (other SHA-256)")
    bundle.meta["evaluation"] = model_evaluation(rep)
    bundle.write(model)
    rep["model"]["sha256"] = bundle.sha256
    return bundle.sha256


def summary_line(label: str, rep: dict[str, Any]) -> str:
    """One line per report: each task's MAP (percent) with its species and skipped counts."""
    parts = [f"{t} MAP {rep[t]['map']:.2f} ({rep[t]['n_species']} species, {rep[t]['n_skipped']} skipped)"
             for t in ("ranges", "plots") if t in rep]
    pure = "".join(f"; pure SINR {t} MAP {m:.2f}" for t, m in rep.get("pure_sinr", {}).items())
    return f"{label}: " + "; ".join(parts) + pure


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m training.benchmarks.na_trees", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model bundle (.sinr) to evaluate")
    ap.add_argument("--ranges", default=str(DEFAULT_RANGES), help="expert ranges GeoPackage (layer 'ranges')")
    ap.add_argument("--plots", default=str(DEFAULT_PLOTS), help="presence/absence plots CSV(.gz)")
    ap.add_argument("--out", help="write the JSON report here")
    ap.add_argument("--cache", default=str(DEFAULT_CACHE), help="folder for the cached points and range labels")
    ap.add_argument("--no-cache", action="store_true", help="rebuild the range labels, write no cache")
    ap.add_argument("--store-in-model", action="store_true",
                    help="also store the MAPs and per-species ranges AP in the model's model.json (re-saves it)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rep = evaluate_model(args.model, args.ranges, args.plots, None if args.no_cache else args.cache)
    rep["eval_seconds"] = round(time.perf_counter() - t0, 2)
    if args.store_in_model:
        store_in_model(args.model, rep)
    if args.out:
        write_report(rep, args.out)
    print(summary_line(Path(args.model).name, rep))
    print(f"ranges MAP {rep['ranges']['map']:.2f}")
    print(f"plots MAP {rep['plots']['map']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
