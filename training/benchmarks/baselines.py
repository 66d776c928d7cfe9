"""Baselines for the NA-Trees benchmark, each scored by the same harness (``na_trees.evaluate``).

- ``grid``: best discretized grid (Berg et al. 2014, the paper's baseline): a species' score at a
  point is the number of its training records in the lon/lat cell holding the point (cells of
  0.25, 0.5, 1, 2 or 4 degrees, aligned to (-180, -90)).
- ``kde``: per-species Gaussian kernel density of the training records on lon/lat degrees
  (isotropic, bandwidth 0.5 or 1 degree). Computed exactly in log space; see ``kde_log_density``.
- ``lr``: logistic regression on SINR's 4-d sin/cos encoding (the paper's LR baseline): a
  bias-free linear head trained by the SINR trainer with the AN-full loss and the paper's
  optimiser settings (the encoder replaced by the identity).

All records of a species are used for grid and KDE (no cap, duplicates kept); LR uses the
trainer's data preparation (cap 1000 per species by default).

    python -m training.benchmarks.baselines --out-dir training/benchmarks/results
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinr_qgis.core.bundle import file_sha256
from sinr_qgis.core.occurrences import Occurrences, read_occurrences
from training.benchmarks import na_trees as nt

DEFAULT_OCCURRENCES = nt.DEFAULT_DATA / "occurrences" / "na_trees.csv.gz"
GRID_SIZES = (0.25, 0.5, 1.0, 2.0, 4.0)
KDE_BANDWIDTHS = (0.5, 1.0)


@dataclass
class Records:
    """Training records grouped by species code (``lonlat[code]`` is float64 [n, 2])."""

    codes: list[str]
    lonlat: dict[str, np.ndarray]
    occurrences: Occurrences


def read_training_records(path: str | Path = DEFAULT_OCCURRENCES) -> Records:
    """Read an occurrence file; records grouped per species code as lon/lat degrees [n, 2].

    Raises the reader's ``SinrError`` for a missing or malformed file.
    """
    occ = read_occurrences(path)
    species = np.asarray(occ.species).astype(str)
    ll = np.column_stack([np.asarray(occ.lon, np.float64), np.asarray(occ.lat, np.float64)])
    order = np.argsort(species, kind="stable")
    codes, start = np.unique(species[order], return_index=True)
    bounds = [*start.tolist(), len(order)]
    groups = {str(c): ll[order[bounds[i]:bounds[i + 1]]] for i, c in enumerate(codes)}
    return Records([str(c) for c in codes], groups, occ)


# ---- discretized grid --------------------------------------------------------------------------

def _cell_keys(lonlat: np.ndarray, size: float) -> np.ndarray:
    ix = np.floor((lonlat[:, 0] + 180.0) / size).astype(np.int64)
    iy = np.floor((lonlat[:, 1] + 90.0) / size).astype(np.int64)
    return ix * 1_000_000 + iy


def grid_scorer(records: Records, size: float) -> nt.ScoreFn:
    """Score = the species' record count in the ``size``-degree cell holding the point."""
    tables = {}
    for code, ll in records.lonlat.items():
        keys, counts = np.unique(_cell_keys(ll, size), return_counts=True)
        tables[code] = (keys, counts)

    def score(lonlat: np.ndarray, codes: list[str]) -> np.ndarray:
        pk = _cell_keys(np.asarray(lonlat, np.float64), size)
        out = np.zeros((len(pk), len(codes)), dtype=np.float64)
        for j, code in enumerate(codes):
            keys, counts = tables[code]
            pos = np.clip(np.searchsorted(keys, pk), 0, len(keys) - 1)
            hit = keys[pos] == pk
            out[hit, j] = counts[pos[hit]]
        return out

    return score


# ---- Gaussian kernel density -----------------------------------------------------------------------

def kde_log_density(records: np.ndarray, points: np.ndarray, bandwidth: float,
                    tile: float = 1.0, cutoff: float = 30.0) -> np.ndarray:
    """log sum_i exp(-|x - r_i|^2 / (2 h^2)) at every point x (the normalising constant dropped).

    Exact up to a relative error below n * exp(-cutoff) (~1e-9 for n = 15,000) at every point,
    including far from all records, where a plain density underflows to 0 and would tie. How:
    with d0(x) the distance to the nearest record (KD-tree), a record farther than
    sqrt(d0^2 + 2 h^2 cutoff) contributes less than exp(-cutoff) times the nearest one, so it is
    dropped; the rest is summed relative to the nearest term (log-sum-exp). Points are processed
    in ``tile``-degree tiles against the records inside the tile's search square.
    """
    from scipy.spatial import cKDTree

    records = np.asarray(records, np.float64)
    points = np.asarray(points, np.float64)
    # duplicate locations: one term with a count (exact, and cheaper)
    uniq, counts = np.unique(records, axis=0, return_counts=True)
    log_counts = np.log(counts.astype(np.float64))
    by_lon = np.argsort(uniq[:, 0], kind="stable")
    uniq, log_counts = uniq[by_lon], log_counts[by_lon]
    inv = 1.0 / (2.0 * bandwidth * bandwidth)
    d0, _ = cKDTree(uniq).query(points)
    base = -(d0 * d0) * inv

    tx = np.floor(points[:, 0] / tile).astype(np.int64)
    ty = np.floor(points[:, 1] / tile).astype(np.int64)
    _, tile_of = np.unique(np.column_stack([tx, ty]), axis=0, return_inverse=True)
    tile_of = tile_of.ravel()
    order = np.argsort(tile_of, kind="stable")
    splits = np.flatnonzero(np.diff(tile_of[order])) + 1
    out = np.empty(len(points), dtype=np.float64)
    for idx in np.split(order, splits):
        p = points[idx]
        # every record that can matter for any point of the tile lies within this square
        reach = math.sqrt(float(d0[idx].max()) ** 2 + cutoff / inv)
        lo, hi = p.min(axis=0) - reach, p.max(axis=0) + reach
        a = np.searchsorted(uniq[:, 0], lo[0], side="left")
        b = np.searchsorted(uniq[:, 0], hi[0], side="right")
        cand = np.arange(a, b)
        cand = cand[(uniq[cand, 1] >= lo[1]) & (uniq[cand, 1] <= hi[1])]
        c = uniq[cand]
        d2 = (p[:, 0:1] - c[None, :, 0]) ** 2
        d2 += (p[:, 1:2] - c[None, :, 1]) ** 2
        # each term relative to the nearest record's kernel: exponent <= log(count), no underflow
        rel = log_counts[None, cand] - d2 * inv - base[idx, None]
        out[idx] = base[idx] + np.log(np.exp(rel).sum(axis=1))
    return out


def kde_scorer(records: Records, bandwidth: float) -> nt.ScoreFn:
    """Score = log of the species' Gaussian KDE (bandwidth in degrees) at the point."""

    def score(lonlat: np.ndarray, codes: list[str]) -> np.ndarray:
        out = np.empty((len(lonlat), len(codes)), dtype=np.float64)
        for j, code in enumerate(codes):
            out[:, j] = kde_log_density(records.lonlat[code], lonlat, bandwidth)
        return out

    return score


# ---- logistic regression on the sin/cos encoding -----------------------------------------------------

def train_logistic_regression(occ: Occurrences, *, cap: int = 1000, epochs: int = 10, seed: int = 0,
                              batch_size: int = 2048, lr: float = 5e-4, lr_decay: float = 0.98,
                              pos_weight: float = 2048.0) -> tuple[list[str], np.ndarray]:
    """Fit a bias-free linear head W [S, 4] on sin/cos features with AN-full; returns (codes, W).

    This is the SINR trainer itself (data preparation, AN-full loss, area-uniform
    pseudo-negatives, Adam with per-epoch decay) with the location encoder replaced by the
    identity, so the head sees the 4-d encoding directly: the paper's "LR" row.
    """
    from torch import nn

    from training.data import prepare_training_data
    from training.trainer import TrainConfig, Trainer

    data = prepare_training_data(occ, cap=cap, seed=seed)
    config = TrainConfig(loss="an_full", cap=cap, epochs=epochs, batch_size=batch_size, lr=lr,
                         lr_decay=lr_decay, width=4, depth=0, dropout=0.0, seed=seed, pos_weight=pos_weight)
    trainer = Trainer(data, config)
    # width 4 = the sin/cos input size, so the head fits the features once the encoder is gone;
    # the encoder's unused parameters get no gradient and Adam leaves them alone
    trainer.model.encoder = nn.Identity()
    trainer.fit(progress=False)
    return list(data.codes), trainer.model.head.weight.detach().numpy().astype(np.float64)


def linear_scorer(codes: list[str], weights: np.ndarray) -> nt.ScoreFn:
    """Score = W[species] . sin_cos(lon, lat) (a logit)."""
    from sinr_qgis.core.encoding import sin_cos

    row = {c: i for i, c in enumerate(codes)}

    def score(lonlat: np.ndarray, wanted: list[str]) -> np.ndarray:
        return sin_cos(np.asarray(lonlat, np.float64)) @ weights[[row[c] for c in wanted]].T

    return score


# ---- running them all --------------------------------------------------------------------------------

def run_baselines(which: Sequence[str], occurrences: str | Path = DEFAULT_OCCURRENCES,
                  ranges: str | Path = nt.DEFAULT_RANGES, plots: str | Path = nt.DEFAULT_PLOTS,
                  cache_dir: str | Path | None = nt.DEFAULT_CACHE, lr_seeds: Sequence[int] = (0,),
                  lr_epochs: Sequence[int] = (10,),
                  log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Evaluate the chosen baselines; one protocol report per variant, with fit/score seconds."""
    tasks = nt.load_tasks(ranges, plots, cache_dir)
    records = read_training_records(occurrences)
    data_meta = {**nt.data_identity(ranges, plots), "occurrences": Path(occurrences).name,
                 "occurrences_sha256": file_sha256(occurrences)}
    out: list[dict[str, Any]] = []

    def run(name: str, settings: dict[str, Any], make: Callable[[], tuple[nt.ScoreFn, list[str]]]) -> None:
        # wall and CPU seconds: the CPU time is the steadier number on a shared machine
        t0, c0 = time.perf_counter(), time.process_time()
        score, codes = make()
        t_fit, c_fit = time.perf_counter() - t0, time.process_time() - c0
        results = nt.evaluate(score, codes, tasks)
        t_all, c_all = time.perf_counter() - t0, time.process_time() - c0
        rep = nt.report(results, extra={"baseline": name, "settings": settings, "data": data_meta,
                                        "fit_seconds": round(t_fit, 2), "total_seconds": round(t_all, 2),
                                        "fit_cpu_seconds": round(c_fit, 2), "total_cpu_seconds": round(c_all, 2)})
        out.append(rep)
        log(nt.summary_line(f"{name} {settings}", rep)
            + f" [fit {t_fit:.1f} s (cpu {c_fit:.1f}), fit+score {t_all:.1f} s (cpu {c_all:.1f})]")

    if "grid" in which:
        for size in GRID_SIZES:
            run("grid", {"cell_deg": size}, lambda s=size: (grid_scorer(records, s), records.codes))
    if "kde" in which:
        for bw in KDE_BANDWIDTHS:
            run("kde", {"bandwidth_deg": bw}, lambda b=bw: (kde_scorer(records, b), records.codes))
    if "lr" in which:
        for epochs in lr_epochs:
            for seed in lr_seeds:
                def fit(e: int = epochs, s: int = seed) -> tuple[nt.ScoreFn, list[str]]:
                    codes, w = train_logistic_regression(records.occurrences, epochs=e, seed=s)
                    return linear_scorer(codes, w), codes
                run("lr", {"loss": "an_full", "cap": 1000, "epochs": epochs, "seed": seed}, fit)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m training.benchmarks.baselines",
                                 description="Evaluate the grid, KDE and LR baselines on NA-Trees (na-trees-v1).")
    ap.add_argument("--which", default="grid,kde,lr", help="comma-separated subset of grid,kde,lr")
    ap.add_argument("--occurrences", default=str(DEFAULT_OCCURRENCES))
    ap.add_argument("--ranges", default=str(nt.DEFAULT_RANGES))
    ap.add_argument("--plots", default=str(nt.DEFAULT_PLOTS))
    ap.add_argument("--cache", default=str(nt.DEFAULT_CACHE))
    ap.add_argument("--lr-seeds", default="0", help="comma-separated seeds for LR")
    ap.add_argument("--lr-epochs", default="10", help="comma-separated epoch counts for LR")
    ap.add_argument("--out-dir", help="write one JSON report per variant here")
    args = ap.parse_args(argv)
    which = [w.strip() for w in args.which.split(",") if w.strip()]
    reps = run_baselines(which, args.occurrences, args.ranges, args.plots, args.cache,
                         [int(s) for s in args.lr_seeds.split(",")], [int(e) for e in args.lr_epochs.split(",")])
    if args.out_dir:
        folder = Path(args.out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for rep in reps:
            tag = "_".join(f"{k}{v}" for k, v in rep["settings"].items() if k != "loss")
            nt.write_report(rep, folder / f"baseline_{rep['baseline']}_{tag}.json")
    print(json.dumps([{"baseline": r["baseline"], **r["settings"], "ranges": r["ranges"]["map"],
                       "plots": r["plots"]["map"], "fit_s": r["fit_seconds"], "total_s": r["total_seconds"],
                       "total_cpu_s": r["total_cpu_seconds"]} for r in reps], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
