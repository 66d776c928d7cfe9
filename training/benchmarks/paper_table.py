"""The paper's main table (reference section 5.5) reproduced on NA-Trees, and the study that
makes SINR win there: train every committed config, evaluate it with the harness, write tables.

    python -m training.benchmarks.paper_table --out build/paper_table            # paper table
    python -m training.benchmarks.paper_table --out build/paper_table --table study

One config per row in ``training/benchmarks/configs/*.json``::

    {"row": "AN-full, coords, cap 1000",   # the label in the table
     "table": "paper",                     # "paper" or "study"
     "subset": "full",                     # "full" protocol, or "covered" (see below)
     "seeds": [0, 1],
     "args": ["--loss", "an_full", "--cap", "1000"],   # ``python -m training train`` options
     "same_as": "NAME"}                    # optional: the same training as config NAME

or a local-evidence row: the networks of config NAME (trained first when missing) with the
component added by ``python -m training local-evidence`` (``training/local_evidence.py``)::

    {"row": "...", "table": "study", "seeds": [0, 1], "local_evidence_on": "NAME",
     "local_evidence": ["--bandwidth", "0.25", "--record-weight", "0.5", "--survey-weight", "1"]}

Its report has the pure SINR MAPs beside (``pure_sinr``).

Each (config, seed) is trained with ``python -m training train`` in a child process (wall and
CPU seconds measured), evaluated with ``na_trees.evaluate`` and its report kept as
``OUT/runs/NAME_sSEED.json``; an existing report is reused unless ``--force`` (so an interrupted
run continues where it stopped). The baselines come from ``baselines.py`` (grid sizes, KDE
bandwidths, LR on the sin/cos encoding).

"covered" subset (the env rows): the covariate grid ``sa_bioclim_0p5deg.tif`` covers only
lat < 40 N. Its 8 continuous bioclim bands are used (the categorical ``biome`` band is left out);
a point is *covered* when all 8 bands have a value there (bilinear sampling as the trainer). The
covered rows train on the covered training records only, and are evaluated on the covered range
points and plots, for the species with at least ``MIN_COVERED_RECORDS`` covered training records
(and at least one positive point, as the protocol). Coords-only and the KDE/grid baselines are
trained and evaluated on the same subset, so the rows are comparable.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.benchmarks import na_trees as nt

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
DEFAULT_OCCURRENCES = nt.DEFAULT_DATA / "occurrences" / "na_trees.csv.gz"
DEFAULT_COVARIATES = nt.DEFAULT_DATA / "covariates" / "sa_bioclim_0p5deg.tif"
CONTINUOUS_BANDS = [1, 2, 3, 4, 5, 6, 7, 8]  # bio1..bio17; band 9 (biome) is categorical
MIN_COVERED_RECORDS = 10


# ---- configs -----------------------------------------------------------------------------------

def load_configs(folder: str | Path = CONFIGS) -> list[dict[str, Any]]:
    """Every ``*.json`` config of ``folder`` (sorted by file name), with ``name`` = file stem."""
    out = []
    for p in sorted(Path(folder).glob("*.json")):
        cfg = json.loads(p.read_text(encoding="utf-8"))
        cfg["name"] = p.stem
        cfg.setdefault("table", "paper")
        cfg.setdefault("subset", "full")
        cfg.setdefault("seeds", [0])
        out.append(cfg)
    return out


# ---- the covered subset ------------------------------------------------------------------------

def continuous_covariates(src: str | Path, out_dir: Path) -> Path:
    """The 8 continuous bands of the bioclim grid as their own GeoTIFF (built once in ``out_dir``)."""
    from osgeo import gdal

    dst = out_dir / "sa_bioclim_0p5deg_8bands.tif"
    if not dst.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp.tif")
        gdal.Translate(str(tmp), str(src), bandList=CONTINUOUS_BANDS)
        os.replace(tmp, dst)
    return dst


def covered(lonlat: np.ndarray, covariates: Path) -> np.ndarray:
    """Bool [N]: all covariates have a value at the point."""
    from sinr_qgis.core.covariates import CovariateStack

    return np.isfinite(CovariateStack.open([covariates]).sample(lonlat)).all(axis=1)


def covered_occurrences(occurrences: Path, covariates: Path, out_dir: Path) -> Path:
    """The training records on covered points, as a CSV.gz (written once in ``out_dir``)."""
    dst = out_dir / "na_trees_covered.csv.gz"
    if dst.is_file():
        return dst
    with gzip.open(occurrences, "rt", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    ilat, ilon = header.index("latitude"), header.index("longitude")
    ll = np.array([[float(r[ilon]), float(r[ilat])] for r in rows])
    keep = covered(ll, covariates)
    tmp = dst.with_suffix(".tmp")
    with gzip.open(tmp, "wt", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(r for r, k in zip(rows, keep) if k)
    os.replace(tmp, dst)
    return dst


def covered_tasks(tasks: Sequence[nt.Task], covariates: Path, covered_csv: Path) -> list[nt.Task]:
    """The tasks restricted to covered points and to species with enough covered records."""
    from sinr_qgis.core.occurrences import read_occurrences

    occ = read_occurrences(covered_csv)
    codes, counts = np.unique(np.asarray(occ.species).astype(str), return_counts=True)
    enough = {str(c) for c, n in zip(codes, counts) if n >= MIN_COVERED_RECORDS}
    out = []
    for t in tasks:
        pts = covered(t.lonlat, covariates)
        cols = [j for j, c in enumerate(t.codes) if c in enough]
        out.append(nt.Task(t.name, t.lonlat[pts], [t.codes[j] for j in cols], [t.names[j] for j in cols],
                           t.labels[np.ix_(pts, cols)]))
    return out


# ---- scoring a bundle (coords or covariates) ---------------------------------------------------

def bundle_scorer(path: Path, covariates: Path | None = None) -> tuple[nt.ScoreFn, list[str]]:
    """Scorer and species codes of a ``.sinr`` bundle (``na_trees.bundle_scorer``); a covariate
    model reads ``covariates`` (the raster it was trained with), its bands matched by name."""
    from sinr_qgis.core.bundle import ModelBundle

    bundle = ModelBundle.load(path)
    codes = [s.code for s in bundle.species]
    rasters = [str(covariates)] if bundle.covariates and covariates is not None else None
    return nt.bundle_scorer(bundle, rasters), codes


# ---- running -----------------------------------------------------------------------------------

def train_and_evaluate(cfg: dict[str, Any], seed: int, data: Path, covariates: Path, tasks: list[nt.Task],
                       run_dir: Path, threads: int, force: bool,
                       log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train one config with one seed (child process) and evaluate it; reuses an existing report.

    A config with ``same_as`` is the same training as another config (e.g. the study's lambda = C
    is the paper table's GP row): that config's run is used."""
    if cfg.get("same_as"):
        cfg = dict(cfg, name=cfg["same_as"])
    if cfg.get("local_evidence_on"):
        return _with_local_evidence(cfg, seed, data, covariates, tasks, run_dir, threads, force, log)
    rep_path = run_dir / f"{cfg['name']}_s{seed}.json"
    if rep_path.is_file() and not force:
        return json.loads(rep_path.read_text(encoding="utf-8"))
    model = run_dir / f"{cfg['name']}_s{seed}.sinr"
    args = [a.replace("{covariates}", str(covariates)) for a in cfg["args"]]
    cmd = [sys.executable, "-m", "training", "train", "--data", str(data), "--out", str(model),
           "--seed", str(seed), "--no-progress", "--threads", str(threads), "--precision", "fp32", *args]
    wall = cpu = None
    if force or not model.is_file():  # a bundle is written atomically: one that exists is complete
        log(f"[{time.strftime('%H:%M:%S')}] {cfg['name']} seed {seed}: {' '.join(cmd[2:])}")
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        with open(run_dir / f"{cfg['name']}_s{seed}.log", "w", encoding="utf-8") as errlog:
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=errlog, cwd=nt.REPO_ROOT, check=False)
        wall = round(time.perf_counter() - t0, 1)
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = round((cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime), 1)
        if proc.returncode != 0:
            raise RuntimeError(f"training {cfg['name']} seed {seed} failed; see {run_dir}/{cfg['name']}_s{seed}.log")
    score, codes = bundle_scorer(model, covariates)
    results = nt.evaluate(score, codes, tasks)
    meta = json.loads(_bundle_member(model, "model.json"))
    rep = nt.report(results, model, extra={
        "config": cfg["name"], "row": cfg["row"], "seed": seed, "subset": cfg["subset"], "command": cmd[1:],
        "train_seconds": meta["training"]["train_seconds"], "process_wall_seconds": wall,
        "process_cpu_seconds": cpu,
        "n_records_used": meta["data"].get("n_records_used")})
    nt.write_report(rep, rep_path)
    log(nt.summary_line(f"  {cfg['name']} s{seed}", rep) + f" [train {rep['train_seconds']} s]")
    return rep


def _with_local_evidence(cfg: dict[str, Any], seed: int, data: Path, covariates: Path, tasks: list[nt.Task],
                         run_dir: Path, threads: int, force: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """A local-evidence row: a copy of config ``local_evidence_on``'s bundle with the component
    added by the training CLI, evaluated with it and as pure SINR (``pure_sinr``)."""
    import shutil

    rep_path = run_dir / f"{cfg['name']}_s{seed}.json"
    if rep_path.is_file() and not force:
        return json.loads(rep_path.read_text(encoding="utf-8"))
    base = next(c for c in load_configs() if c["name"] == cfg["local_evidence_on"])
    base_rep = train_and_evaluate(base, seed, data, covariates, tasks, run_dir, threads, force, log)
    model = run_dir / f"{cfg['name']}_s{seed}.sinr"
    tmp = model.with_suffix(".tmp.sinr")
    shutil.copyfile(run_dir / f"{base['name']}_s{seed}.sinr", tmp)
    cmd = [sys.executable, "-m", "training", "local-evidence", str(tmp), "--data", str(data),
           "--source-column", "source", *cfg["local_evidence"]]
    log(f"[{time.strftime('%H:%M:%S')}] {cfg['name']} seed {seed}: {' '.join(cmd[2:])}")
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, cwd=nt.REPO_ROOT)
    os.replace(tmp, model)
    from sinr_qgis.core.bundle import ModelBundle

    bundle = ModelBundle.load(model)
    codes = [s.code for s in bundle.species]
    results = nt.evaluate(nt.bundle_scorer(bundle), codes, tasks)
    pure = nt.evaluate(nt.bundle_scorer(bundle, local_evidence=False), codes, tasks)
    rep = nt.report(results, model, extra={
        "config": cfg["name"], "row": cfg["row"], "seed": seed, "subset": cfg["subset"],
        "command": base_rep["command"] + ["&&", *cmd[1:]], "train_seconds": base_rep["train_seconds"],
        "process_wall_seconds": base_rep.get("process_wall_seconds"),
        "process_cpu_seconds": base_rep.get("process_cpu_seconds"), "n_records_used": base_rep.get("n_records_used"),
        "local_evidence": bundle.local_evidence.describe(), "pure_sinr": {t: r["map"] for t, r in pure.items()}})
    nt.write_report(rep, rep_path)
    log(nt.summary_line(f"  {cfg['name']} s{seed}", rep))
    return rep


def _bundle_member(path: Path, member: str) -> str:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return z.read(member).decode("utf-8")


def run_baselines(out: Path, occurrences: Path, covered_csv: Path, tasks_cov: list[nt.Task],
                  force: bool, reports_dir: Path | None = None,
                  log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Grid (all sizes), KDE (0.5, 1 deg) and LR via ``baselines.py`` on the full protocol, plus
    the grid sizes and KDE trained and evaluated on the covered subset. ``reports_dir``: use the
    full-protocol reports ``baselines.py --out-dir`` wrote there instead of recomputing them."""
    from training.benchmarks import baselines as bl

    path = out / "baselines.json"
    if path.is_file() and not force:
        return json.loads(path.read_text(encoding="utf-8"))
    found = sorted(Path(reports_dir).glob("baseline_*.json")) if reports_dir else []
    if found:
        reps = [json.loads(f.read_text(encoding="utf-8")) for f in found]
        log(f"baselines: {len(reps)} reports from {reports_dir}")
    else:
        reps = bl.run_baselines(["grid", "kde", "lr"], occurrences, log=log)
    for r in reps:
        r["subset"] = "full"
    recs = bl.read_training_records(covered_csv)
    for name, settings, make in ([("grid", {"cell_deg": s}, lambda s=s: bl.grid_scorer(recs, s)) for s in bl.GRID_SIZES]
                                 + [("kde", {"bandwidth_deg": b}, lambda b=b: bl.kde_scorer(recs, b))
                                    for b in bl.KDE_BANDWIDTHS]):
        t0 = time.perf_counter()
        score = make()
        rep = nt.report(nt.evaluate(score, recs.codes, tasks_cov),
                        extra={"baseline": name, "settings": settings, "subset": "covered",
                               "fit_seconds": round(time.perf_counter() - t0, 2)})
        reps.append(rep)
        log(nt.summary_line(f"{name} {settings} (covered)", rep))
    nt.write_report(reps, path)  # a list, written atomically like a report
    return reps


# ---- tables ------------------------------------------------------------------------------------

def _mean_sd(values: Sequence[float]) -> str:
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 1:
        return f"{v[0]:.1f}"
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}"


def summarise(cfg: dict[str, Any], reps: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row for a config: its seeds' ranges and plots MAP and training seconds."""
    r = [x["ranges"]["map"] for x in reps]
    p = [x["plots"]["map"] for x in reps]
    t = [x["train_seconds"] for x in reps]
    return {"config": cfg["name"], "row": cfg["row"], "table": cfg["table"], "subset": cfg["subset"],
            "seeds": [x["seed"] for x in reps], "ranges": r, "plots": p, "train_seconds": t,
            "ranges_mean": float(np.mean(r)), "plots_mean": float(np.mean(p)),
            "n_species": {k: reps[0][k]["n_species"] for k in ("ranges", "plots")},
            "args": cfg.get("args") or [f"{cfg['local_evidence_on']} + local-evidence", *cfg["local_evidence"]],
            **({"pure_sinr": {t: [x["pure_sinr"][t] for x in reps] for t in ("ranges", "plots")}}
               if all("pure_sinr" in x for x in reps) else {})}


def baseline_rows(baselines: list[dict[str, Any]], subset: str) -> list[dict[str, Any]]:
    """LR (mean over its seeds), best grid (by ranges MAP, size reported), KDE 0.5 and 1.0."""
    rows = []
    mine = [b for b in baselines if b.get("subset") == subset]
    lr = [b for b in mine if b["baseline"] == "lr" and b["settings"].get("epochs", 10) == 10]
    if lr:
        rows.append({"row": "LR on sin/cos (AN-full, cap 1000)", "ranges": [b["ranges"]["map"] for b in lr],
                     "plots": [b["plots"]["map"] for b in lr], "train_seconds": [b["fit_seconds"] for b in lr]})
    grids = [b for b in mine if b["baseline"] == "grid"]
    if grids:
        # the best cell size per task, as the reference reports it
        best_r = max(grids, key=lambda b: b["ranges"]["map"])
        best_p = max(grids, key=lambda b: b["plots"]["map"])
        rows.append({"row": f"best grid ({best_r['settings']['cell_deg']}° for ranges, "
                            f"{best_p['settings']['cell_deg']}° for plots)",
                     "ranges": [best_r["ranges"]["map"]], "plots": [best_p["plots"]["map"]],
                     "train_seconds": [max(best_r["fit_seconds"], best_p["fit_seconds"])]})
    for b in mine:
        if b["baseline"] == "kde":
            rows.append({"row": f"KDE, bandwidth {b['settings']['bandwidth_deg']}°", "ranges": [b["ranges"]["map"]],
                         "plots": [b["plots"]["map"]], "train_seconds": [b["fit_seconds"]]})
    return rows


def markdown(rows: list[dict[str, Any]], title: str) -> str:
    """The rows as a Markdown table (MAP as mean ± sample SD over seeds, time as mean seconds)."""
    lines = [f"#### {title}", "", "| row | seeds | ranges MAP | plots MAP | training time (s) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['row']} | {len(r['ranges'])} | {_mean_sd(r['ranges'])} | {_mean_sd(r['plots'])} | "
                     f"{np.mean(r['train_seconds']):.0f} |")
    return "\n".join(lines) + "\n"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m training.benchmarks.paper_table", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="build/paper_table", help="folder for models, reports and tables")
    ap.add_argument("--table", default="paper", choices=("paper", "study", "all"))
    ap.add_argument("--only", help="comma-separated config names (default: every config of the table)")
    ap.add_argument("--seeds", help="comma-separated seeds, overriding the configs'")
    ap.add_argument("--occurrences", default=str(DEFAULT_OCCURRENCES))
    ap.add_argument("--covariates", default=str(DEFAULT_COVARIATES), help="the 9-band bioclim test grid")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of each training (1: two spinning threads are much slower on a busy machine)")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--baselines-from", help="folder of baselines.py reports to reuse (full protocol)")
    ap.add_argument("--force", action="store_true", help="retrain even where a report exists")
    return ap.parse_args(argv)


def _selected_configs(table: str, only: str | None) -> list[dict[str, Any]]:
    """The configs of ``table`` ("all": every table), narrowed to the comma-separated names ``only``."""
    configs = [c for c in load_configs() if table in ("all", c["table"])]
    if only:
        wanted = {s.strip() for s in only.split(",")}
        configs = [c for c in configs if c["name"] in wanted]
    return configs


def _tables_text(rows: list[dict[str, Any]], baselines: list[dict[str, Any]],
                 tasks_cov: list[nt.Task]) -> tuple[str, dict[str, tuple[int, int]]]:
    """The Markdown tables (paper then study; full then covered) with the covered subset's size
    line, and that size: task name -> (points, species)."""
    doc = []
    for table in ("paper", "study"):
        for subset, title in (("full", "full protocol"), ("covered", "covered subset (lat < 40 N)")):
            sel = [r for r in rows if r["table"] == table and r["subset"] == subset]
            if table == "paper":
                sel = sel + baseline_rows(baselines, subset)
            if sel:
                doc.append(markdown(sel, f"{table}: {title}"))
    cov_n = {t.name: (t.n_points, len(t.codes)) for t in tasks_cov}
    doc.append(f"covered subset: ranges {cov_n['ranges'][0]} points / {cov_n['ranges'][1]} species with >= "
               f"{MIN_COVERED_RECORDS} covered records; plots {cov_n['plots'][0]} plots / "
               f"{cov_n['plots'][1]} species.\n")
    return "\n".join(doc), cov_n


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit code."""
    args = _parse_args(argv)
    out = Path(args.out)
    run_dir = out / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    occurrences = Path(args.occurrences)
    covariates = continuous_covariates(args.covariates, out)
    covered_csv = covered_occurrences(occurrences, covariates, out)
    tasks = nt.load_tasks()
    tasks_cov = covered_tasks(tasks, covariates, covered_csv)

    configs = _selected_configs(args.table, args.only)
    t0 = time.perf_counter()
    rows = []
    for cfg in configs:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else cfg["seeds"]
        cov = cfg["subset"] == "covered"
        reps = [train_and_evaluate(cfg, s, covered_csv if cov else occurrences, covariates,
                                   tasks_cov if cov else tasks, run_dir, args.threads, args.force)
                for s in seeds]
        rows.append(summarise(cfg, reps))
    baselines = [] if args.no_baselines else run_baselines(out, occurrences, covered_csv, tasks_cov, args.force,
                                                         args.baselines_from)
    text, cov_n = _tables_text(rows, baselines, tasks_cov)
    name = "paper_table" if args.table == "paper" else f"{args.table}_table"
    (out / f"{name}.md").write_text(text, encoding="utf-8")
    nt.write_report({"rows": rows, "baselines": baseline_rows(baselines, "full"),
                     "baselines_covered": baseline_rows(baselines, "covered"), "covered": cov_n,
                     "seconds": round(time.perf_counter() - t0, 1)}, out / f"{name}.json")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
