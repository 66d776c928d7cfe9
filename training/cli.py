"""Command line: ``python -m training train ...``, ``python -m training import-official ...`` and
``python -m training annotate MODEL --data FILE`` (record extents for a bundle of an older version).

User errors (bad files, columns, options) print one line ``error: ...`` on stderr and exit with
code 2; with ``--jsonl`` an ``{"event": "error", "message": ...}`` line is also written to stdout.
The JSON-lines schema is documented in ``training/trainer.py``.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sinr_qgis.core.atomic import check_writable
from sinr_qgis.core.bundle import Species, file_sha256
from sinr_qgis.core.encoding import DEFAULT_FREQUENCIES, ENCODINGS, check_frequencies, powers_of_two, uses_covariates
from sinr_qgis.core.errors import BundleError, CancelledError, SinrError

from .losses import LOSSES
from .negatives import NEGATIVES, PSEUDO_NEGATIVES

EXIT_USER_ERROR = 2
DEFAULT_LICENCE = ("This model is derived from its training data ({file}); it carries the terms of "
                   "that data's licences. Check them before redistributing the model.")


def checkpoint_path(out: str | Path) -> Path:
    """Where ``train`` keeps its per-epoch checkpoint for ``out``: ``OUT.ckpt.pt`` beside it."""
    p = Path(out)
    return p.with_name(p.name + ".ckpt.pt")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training", description="Train SINR species range models.")
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on presence-only records and write a .sinr bundle")
    t.add_argument("--data", required=True, help="occurrence file (CSV/CSV.gz, GBIF, iNat export, DwC-A zip)")
    t.add_argument("--out", required=True, help="output model bundle (.sinr)")
    t.add_argument("--loss", default="an_full", choices=sorted(LOSSES))
    t.add_argument("--cap", type=int, default=1000, help="max records per species (<= 0: no cap)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=2048)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--width", type=int, default=256)
    t.add_argument("--depth", type=int, default=4)
    t.add_argument("--dropout", type=float, default=0.5)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--pos-weight", type=_pos_weight, default=2048.0,
                   help="lambda of the full losses; 'species' = the number of species trained (the bundled "
                   "model's recipe)")
    t.add_argument("--thin-deg", type=float, default=None,
                   help="keep one record per species per grid cell of this size (degrees)")
    t.add_argument("--min-records", type=int, default=1, help="drop species with fewer records")
    t.add_argument("--encoding", default="sin_cos", choices=ENCODINGS)
    t.add_argument("--covariates", nargs="+", default=[], metavar="RASTER",
                   help="lon/lat covariate raster(s) for --encoding env or sin_cos_env")
    t.add_argument("--frequencies", metavar="K,K,...",
                   help="--encoding sin_cos_multi: whole-number frequencies, e.g. 1,2,4,8 "
                   "(k: k periods around the globe; default 1,2,4,...,32)")
    t.add_argument("--n-frequencies", type=int, metavar="L",
                   help="--encoding sin_cos_multi: the frequencies 1,2,4,...,2^(L-1)")
    t.add_argument("--species-column")
    t.add_argument("--name-column")
    t.add_argument("--lat-column")
    t.add_argument("--lon-column")
    t.add_argument("--source-column", help="column naming each record's source (dataset, survey); "
                   "auto-detected as source/datasetKey/datasetID")
    t.add_argument("--negatives", default="all", choices=NEGATIVES,
                   help="which species a record speaks against at its location: all (the paper), "
                   "source (only species its own source records), site (not species the same source "
                   "recorded at the same place), source_site (both); see training/negatives.py")
    t.add_argument("--pseudo-negatives", default="sphere", choices=PSEUDO_NEGATIVES,
                   help="where random pseudo-negatives are drawn: sphere (the paper) or land")
    t.add_argument("--name", help="model name (default: the output file's stem)")
    t.add_argument("--licence", help="licence text stored in the bundle")
    t.add_argument("--head-float16", action="store_true",
                   help="store the species head in float16: about half the file for thousands of species; "
                        "refused when a probability would move by more than 0.001")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="bf16: bfloat16 autocast for the network; auto (default): bf16 on CPUs with "
                        "native bfloat16 (AMX/AVX512-BF16), else fp32 (the paper)")
    t.add_argument("--jsonl", action="store_true", help="JSON-lines progress on stdout")
    t.add_argument("--jsonl-every", type=int, default=20, help="steps between JSON step events")
    t.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    t.add_argument("--resume", action="store_true", help="continue from OUT.ckpt.pt")
    t.add_argument("--keep-checkpoint", action="store_true", help="keep OUT.ckpt.pt after export")

    o = sub.add_parser("import-official", help="convert an official SINR checkpoint to a .sinr bundle")
    o.add_argument("checkpoint", help="official SINR checkpoint (.pt)")
    o.add_argument("--taxa", help="taxon names: the SINR web app's id<TAB>name file, iNaturalist's taxa.csv(.gz), "
                                  "GBIF's Taxon.tsv, a CSV with taxon_id and name, or JSON (layout sniffed from "
                                  "the content); without it every class keeps its taxon id as name")
    o.add_argument("--out", required=True, help="output model bundle (.sinr)")
    o.add_argument("--name", help="model name (default: the output file's stem)")
    env = o.add_mutually_exclusive_group()
    env.add_argument("--covariates", nargs="+", metavar="RASTER",
                     help="environmental checkpoints (input_enc env, sin_cos_env): the global WorldClim 2.1 rasters "
                          "at 5 arc-minutes, elevation and bio1..bio19 (any order: WorldClim names are sorted as the "
                          "official code sorts them); their statistics are computed as the official code did")
    env.add_argument("--covariate-stats", metavar="JSON",
                     help="instead of --covariates: those statistics as the plugin computed them from the rasters")
    o.add_argument("--jsonl", action="store_true", help="JSON-lines progress on stdout")
    o.add_argument("--head-float16", action="store_true",
                   help="store the species head in float16 (a 47,375-species model: 29 instead of 53 MB); "
                        "refused when a probability would move by more than 0.001")

    n = sub.add_parser("annotate", help="add where each species' training records are (shown as its reliability) "
                                        "to a .sinr bundle written by an older version")
    n.add_argument("model", help="model bundle (.sinr) to annotate")
    n.add_argument("--data", required=True, help="the occurrence file the model was trained on")
    n.add_argument("--out", help="write the annotated bundle here (default: replace MODEL)")
    for col in ("species", "name", "lat", "lon"):
        n.add_argument(f"--{col}-column")
    return ap


def _pos_weight(text: str) -> float | str:
    """``--pos-weight``: a positive number, or ``species`` (resolved once the species are known)."""
    if text.strip().lower() == "species":
        return "species"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'species', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _check_options(a: argparse.Namespace) -> None:
    if a.epochs < 1 or a.batch_size < 1:
        raise SinrError("--epochs and --batch-size must be at least 1.")
    if a.lr <= 0 or a.width < 1 or a.depth < 0 or not 0.0 <= a.dropout < 1.0:
        raise SinrError("--lr and --width must be positive, --depth >= 0 and --dropout within [0, 1).")
    if a.thin_deg is not None and a.thin_deg <= 0:
        raise SinrError("--thin-deg must be a positive cell size in degrees.")
    if not uses_covariates(a.encoding) and a.covariates:
        raise SinrError("--covariates needs --encoding env or sin_cos_env.")
    if uses_covariates(a.encoding) and not a.covariates:
        raise SinrError(f"--encoding {a.encoding} needs --covariates RASTER.")
    a.frequencies = _frequencies(a)
    if getattr(a, "negatives", "all") != "all" and not _has_row_negatives(a):
        raise SinrError(f"--negatives {a.negatives} needs a loss with negatives at observed locations "
                        "(an_full, me_full, gp, an_slds).")
    if not Path(a.data).is_file():
        raise SinrError(f"data file {a.data} does not exist.")


def _frequencies(a: argparse.Namespace) -> list[int] | None:
    """The ``sin_cos_multi`` frequency list from ``--frequencies`` / ``--n-frequencies``."""
    given = getattr(a, "frequencies", None)
    n = getattr(a, "n_frequencies", None)
    if given is None and n is None:  # recorded in the bundle's training settings too
        return list(DEFAULT_FREQUENCIES) if a.encoding == "sin_cos_multi" else None
    if a.encoding != "sin_cos_multi":
        raise SinrError("--frequencies and --n-frequencies need --encoding sin_cos_multi.")
    if given is not None and n is not None:
        raise SinrError("give either --frequencies or --n-frequencies, not both.")
    try:
        freqs = powers_of_two(n) if n is not None else check_frequencies(
            [float(k) for k in str(given).split(",") if k.strip()])
    except ValueError as exc:
        raise SinrError(f"--frequencies: {exc}.") from None
    return list(freqs)


def _has_row_negatives(a: argparse.Namespace) -> bool:
    """Whether ``a.loss`` uses negatives at observed locations (where ``--negatives`` acts)."""
    return a.loss in ("an_full", "me_full", "gp", "an_slds")


def run_train(a: argparse.Namespace, jsonl: Any) -> dict[str, Any]:
    """The ``train`` command; returns the summary that goes into the ``done`` event."""
    import torch

    from sinr_qgis.core.covariates import CovariateStack
    from sinr_qgis.core.occurrences import read_occurrences
    from sinr_qgis.core.thresholds import lpt_r_per_species

    from .data import prepare_training_data
    from .export import export_bundle
    from .negatives import SourceNegatives
    from .trainer import TrainConfig, Trainer, resolve_precision

    _check_options(a)
    out = check_writable(a.out)
    if a.threads:
        torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    occ = read_occurrences(a.data, species_column=a.species_column, name_column=a.name_column,
                           lat_column=a.lat_column, lon_column=a.lon_column, source_column=a.source_column)
    print(occ.summary(), file=sys.stderr)  # what was read and what was dropped, per reason
    stack = None
    n_no_cov = 0
    if a.covariates:
        stack = CovariateStack.open(a.covariates)
        if a.encoding == "env":
            # an env-only model cannot place a record without covariates: leave those out
            vals = stack.sample(np.stack([occ.lon, occ.lat], 1))
            ok = np.isfinite(vals).any(1)
            n_no_cov = int((~ok).sum())
            if not ok.any():
                raise SinrError(f"no record of {Path(a.data).name} falls on a valid cell of the covariates.")
            occ = dataclasses.replace(occ, lon=occ.lon[ok], lat=occ.lat[ok], species=occ.species[ok],
                                      source=None if occ.source is None else occ.source[ok])
    if a.negatives in ("source", "source_site") and occ.source is None:
        raise SinrError(f"--negatives {a.negatives} needs each record's source: name its column with "
                        "--source-column (e.g. source or datasetKey).")
    data = prepare_training_data(occ, cap=a.cap, seed=a.seed, thin_deg=a.thin_deg, min_records=a.min_records)
    env_mean = env_std = None
    if stack is not None:
        data.env = stack.sample(data.lonlat.astype(np.float64)).astype(np.float32)
        env_mean, env_std = stack.stats()
        data.provenance["n_removed_no_covariates"] = n_no_cov
    cfg = TrainConfig(loss=a.loss, cap=a.cap, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                      width=a.width, depth=a.depth, dropout=a.dropout, seed=a.seed,
                      pos_weight=float(data.n_species) if a.pos_weight == "species" else a.pos_weight,
                      thin_deg=a.thin_deg, min_records=a.min_records, encoding=a.encoding,
                      frequencies=a.frequencies,
                      covariates=[Path(c).name for c in a.covariates], negatives=a.negatives,
                      pseudo_negatives=a.pseudo_negatives, precision=resolve_precision(a.precision))
    # source/site lists from every record of the file, not only the capped ones
    neg_mask = SourceNegatives.build(a.negatives, data.codes, data.lonlat, data.source,
                                     np.stack([occ.lon, occ.lat], 1), np.asarray(occ.species).astype(str),
                                     occ.source)
    trainer = Trainer(data, cfg, env_mean=env_mean, env_std=env_std,
                      rand_env=None if stack is None else stack.sample, neg_mask=neg_mask)
    ckpt = checkpoint_path(out)
    if a.resume:
        trainer.load_checkpoint(ckpt)
        print(f"resuming from {ckpt.name} after epoch {trainer.epoch}", file=sys.stderr)
    print(f"training on {data.n_records} records of {data.n_species} species "
          f"({cfg.loss}, {cfg.encoding}, {cfg.epochs} epochs)", file=sys.stderr)
    result = trainer.fit(checkpoint=ckpt, progress=not a.no_progress, jsonl=jsonl, jsonl_every=a.jsonl_every)
    train_seconds = result.seconds

    probs = trainer.own_species_probabilities()
    thresholds = lpt_r_per_species(probs, data.species, data.n_species)
    n_train = data.n_train()
    species = [Species(i, c, n, int(n_train[i]), float(thresholds[i]))
               for i, (c, n) in enumerate(zip(data.codes, data.names))]
    prov = dict(data.provenance)
    prov["file"] = Path(a.data).name
    prov["sha256"] = file_sha256(a.data)
    prov["n_records_used"] = prov["n_used"]
    training = cfg.to_dict() | {"optimizer": "Adam", "lr_schedule": f"ExponentialLR(gamma={cfg.lr_decay}) per epoch",
                                "epoch_losses": result.epoch_losses, "final_loss": result.final_loss,
                                "train_seconds": round(train_seconds, 1), "resumed": bool(a.resume),
                                "threshold": "LPT-R: 5th percentile of the probability at the species' "
                                             "training records", "torch": torch.__version__}
    export = functools.partial(export_bundle, trainer.model, species, out, name=a.name or out.stem,
                               covariate_names=stack.names if stack is not None else (),
                               training=training, data=prov, records=(data.lonlat, data.species),
                               licence=a.licence or DEFAULT_LICENCE.format(file=Path(a.data).name))
    try:
        bundle = export(head_dtype="float16" if a.head_float16 else "float32")
    except BundleError as exc:
        if not a.head_float16:
            raise
        # the trained model is kept: only its head's storage falls back, and the user is told
        print(f"{exc} It was stored with a float32 head instead.", file=sys.stderr)
        bundle = export()
    if not a.keep_checkpoint:
        with contextlib.suppress(FileNotFoundError):
            ckpt.unlink()
    summary = {"out": str(out), "n_species": data.n_species, "n_records": data.n_records,
               "final_loss": result.final_loss, "epochs": cfg.epochs, "train_seconds": round(train_seconds, 2),
               "elapsed_s": round(time.perf_counter() - t_start, 2), "sha256": bundle.sha256}
    print(f"wrote {out} ({data.n_species} species, final loss {result.final_loss:.4f}, "
          f"training {train_seconds:.1f} s)", file=sys.stderr)
    return summary


def run_annotate(a: argparse.Namespace) -> dict[str, Any]:
    """The ``annotate`` command: re-select the model's training records from ``--data`` with the
    selection recorded in its model.json (cap, seed, thinning, minimum records) and store each
    species' record extent and cell count; the weights are untouched."""
    from sinr_qgis.core.bundle import ModelBundle
    from sinr_qgis.core.occurrences import read_occurrences

    from .data import prepare_training_data
    from .export import annotate_bundle

    bundle = ModelBundle.load(a.model)
    out = check_writable(a.out or a.model)
    t = bundle.meta.get("training", {})
    occ = read_occurrences(a.data, species_column=a.species_column, name_column=a.name_column,
                           lat_column=a.lat_column, lon_column=a.lon_column)
    data = prepare_training_data(occ, cap=int(t.get("cap", 1000)), seed=int(t.get("seed", 0)),
                                 thin_deg=t.get("thin_deg"), min_records=int(t.get("min_records", 1)))
    annotate_bundle(bundle, data.codes, data.lonlat, data.species).write(out)
    print(f"wrote {out} (record extents of {bundle.n_species} species)", file=sys.stderr)
    return {"out": str(out), "n_species": bundle.n_species, "sha256": bundle.sha256}


def run_import_official(a: argparse.Namespace, jsonl: Any) -> dict[str, Any]:
    """The ``import-official`` command; returns the summary that goes into the ``done`` event."""
    from sinr_qgis.core.official_env import OfficialEnv, read_official_env

    from .official import convert_official

    out = check_writable(a.out)
    env = None
    if a.covariates:
        env = read_official_env(a.covariates)
    elif a.covariate_stats:
        env = OfficialEnv.from_json(a.covariate_stats)
    for warning in env.warnings if env is not None else []:
        print(f"warning: {warning}", file=sys.stderr)

    def progress(fraction: float, what: str) -> None:
        _event(jsonl, {"event": "progress", "progress": fraction, "message": what})

    bundle = convert_official(a.checkpoint, a.taxa, out, name=a.name, env=env, progress=progress,
                              head_dtype="float16" if a.head_float16 else "float32")
    names = bundle.meta["data"]["taxa_names"]
    notes = list(bundle.meta["training"].get("warnings", []))
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    print(f"wrote {out} ({bundle.n_species} taxa, {bundle.meta['training']['architecture']}, input "
          f"{bundle.encoding})\n{names['summary']}", file=sys.stderr)
    return {"out": str(out), "n_species": bundle.n_species, "sha256": bundle.sha256, "encoding": bundle.encoding,
            "architecture": bundle.meta["training"]["architecture"], "names_summary": names["summary"],
            "warnings": (env.warnings if env is not None else []) + notes,
            "taxa_names": {k: v for k, v in names.items() if k != "summary"}}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    jsonl = sys.stdout if getattr(args, "jsonl", False) else None
    try:
        run = {"train": run_train, "import-official": run_import_official, "annotate": run_annotate}[args.command]
        summary = run(args, jsonl) if args.command in ("train", "import-official") else run(args)
    except CancelledError as exc:
        _event(jsonl, {"event": "cancelled", "message": str(exc)})
        print(f"cancelled: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _event(jsonl, {"event": "cancelled", "message": "interrupted"})
        print("interrupted; the last completed epoch is in the checkpoint (use --resume)", file=sys.stderr)
        return 130
    except SinrError as exc:
        _event(jsonl, {"event": "error", "message": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    _event(jsonl, {"event": "done"} | summary)
    return 0


def _event(stream: Any, obj: dict[str, Any]) -> None:
    if stream is not None:
        stream.write(json.dumps(obj) + "\n")
        stream.flush()
