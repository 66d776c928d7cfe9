"""Command line: ``python -m training train ...``, ``python -m training import-official ...`` and
``python -m training annotate MODEL --data FILE`` (record extents for a bundle of an older version).

User errors (bad files, columns, options) print one line ``error: ...`` on stderr and exit with
code 2; with ``--jsonl`` an ``{"event": "error", "message": ...}`` line is also written to stdout.
The JSON-lines events are defined in ``sinr_qgis/core/training/events.py``; the exit statuses, the
options' names and their defaults (the paper's recipe) in ``sinr_qgis/core/training/defaults.py``.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
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
from sinr_qgis.core.training.defaults import (
    EXIT_CANCELLED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER_ERROR,
    LOSSES,
    NEGATIVES,
    PAPER_RECIPE,
    PSEUDO_NEGATIVES,
    USES_NEG_MASK,
)
from sinr_qgis.core.training.events import write_event
from sinr_qgis.core.training.options import checkpoint_path

from .distributed import LeaderFailed, RunStopped, TrainingSession

DEFAULT_LICENCE = ("This model is derived from its training data ({file}); it carries the terms of "
                   "that data's licences. Check them before redistributing the model.")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's parser: ``train``, ``import-official`` and ``annotate``; the training defaults are
    the paper's recipe (``PAPER_RECIPE``)."""
    d = PAPER_RECIPE
    ap = argparse.ArgumentParser(prog="python -m training", description="Train SINR species range models.")
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on presence-only records and write a .sinr bundle")
    t.add_argument("--data", required=True,
                   help="occurrence file (CSV/CSV.gz, GBIF, iNat export, DwC-A zip; with pyarrow also Parquet, "
                        "a file or a folder of parts): read column-wise in bounded memory when pyarrow is installed")
    t.add_argument("--out", required=True, help="output model bundle (.sinr)")
    t.add_argument("--loss", default=d["loss"], choices=sorted(LOSSES))
    t.add_argument("--cap", type=int, default=d["cap"], help="max records per species (<= 0: no cap)")
    t.add_argument("--epochs", type=int, default=d["epochs"])
    t.add_argument("--batch-size", type=int, default=d["batch_size"])
    t.add_argument("--lr", type=float, default=d["lr"])
    t.add_argument("--width", type=int, default=d["width"])
    t.add_argument("--depth", type=int, default=d["depth"])
    t.add_argument("--dropout", type=float, default=d["dropout"])
    t.add_argument("--seed", type=int, default=d["seed"])
    t.add_argument("--pos-weight", type=_pos_weight, default=d["pos_weight"],
                   help="lambda of the full losses; 'species' = the number of species trained (the bundled "
                   "model's recipe)")
    t.add_argument("--thin-deg", type=float, default=None,
                   help="keep one record per species per grid cell of this size (degrees)")
    t.add_argument("--min-records", type=int, default=d["min_records"], help="drop species with fewer records")
    t.add_argument("--encoding", default=d["encoding"], choices=ENCODINGS)
    t.add_argument("--covariates", nargs="+", default=[], metavar="RASTER",
                   help="lon/lat covariate raster(s) for --encoding env or sin_cos_env")
    t.add_argument("--categorical", nargs="+", default=[], metavar="NAME",
                   help="covariate bands (by name) that hold classes (land cover, biome): read at the nearest "
                   "cell and one-hot encoded; bands with GDAL category names, a thematic attribute table or a "
                   "colour table are categorical without it")
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
    t.add_argument("--negatives", default=d["negatives"], choices=NEGATIVES,
                   help="which species a record speaks against at its location: all (the paper), "
                   "source (only species its own source records), site (not species the same source "
                   "recorded at the same place), source_site (both); see training/negatives.py")
    t.add_argument("--pseudo-negatives", default=d["pseudo_negatives"], choices=PSEUDO_NEGATIVES,
                   help="where random pseudo-negatives are drawn: sphere (the paper) or land")
    t.add_argument("--name", help="model name (default: the output file's stem)")
    t.add_argument("--licence", help="licence text stored in the bundle")
    t.add_argument("--head-float16", action="store_true",
                   help="store the species head in float16: about half the file for thousands of species; "
                        "refused when a probability would move by more than 0.001")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="where to train: auto (default) takes a CUDA GPU, else an Apple GPU (MPS), else the "
                        "CPU; under torchrun each process of a machine takes the GPU of its LOCAL_RANK")
    t.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="bf16/fp16: bfloat16/float16 autocast for the network (fp16: GPUs only); auto "
                        "(default): bf16 on CPUs with native bfloat16 (AMX/AVX512-BF16) and on GPUs that have "
                        "it, fp16 on older CUDA GPUs, else fp32 (the paper)")
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
    if getattr(a, "categorical", None) and not a.covariates:
        raise SinrError("--categorical names covariate bands: give their rasters with --covariates.")
    a.frequencies = _frequencies(a)
    if getattr(a, "negatives", "all") != "all" and a.loss not in USES_NEG_MASK:
        raise SinrError(f"--negatives {a.negatives} needs a loss with negatives at observed locations "
                        f"({', '.join(n for n in LOSSES if n in USES_NEG_MASK)}).")
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


def _own_cells(stack: Any, lonlat: np.ndarray) -> np.ndarray:
    """[N, k]: the value of each record's own cell in every covariate (no interpolation, which would
    blur class codes into fractions): what the hint about unmarked class bands looks at."""
    return np.concatenate([r.sample(lonlat, nearest=[True] * r.n_bands) for r in stack.rasters], axis=1)


def run_train(a: argparse.Namespace, jsonl: Any) -> dict[str, Any]:
    """The ``train`` command; returns the summary that goes into the ``done`` event (empty in
    the processes other than rank 0 under torchrun: see ``training/distributed.py``)."""
    with TrainingSession.start(a.device) as session:
        if not session.env.is_leader:
            return _follow_train(a, session)
        return _lead_train(a, jsonl, session)


def _follow_train(a: argparse.Namespace, session: TrainingSession) -> dict[str, Any]:
    """A process other than rank 0: trains on rank 0's shared records and settings, silently."""
    import torch

    from .trainer import TrainConfig, Trainer

    if a.threads:
        torch.set_num_threads(a.threads)
    data, neg_mask, s = session.receive()
    trainer = Trainer(data, TrainConfig(**s["config"]), env_mean=s["env_mean"], env_std=s["env_std"],
                      neg_mask=neg_mask, device=session.device, dist=session.env)
    if s["resume"]:
        trainer.load_checkpoint(s["checkpoint"])
    trainer.fit(progress=False, jsonl_every=a.jsonl_every)
    return {}


def _lead_train(a: argparse.Namespace, jsonl: Any, session: TrainingSession) -> dict[str, Any]:
    """Rank 0, or the only process: reads the data, trains, writes the bundle."""
    import torch

    from sinr_qgis.core.categories import covariate_class_lists
    from sinr_qgis.core.covariates import CovariateStack
    from sinr_qgis.core.thresholds import LPT_R_PERCENTILE, lpt_r_per_species

    from .columnar import read_training_occurrences
    from .data import keep_covered, prepare_training_data
    from .export import export_bundle
    from .negatives import CoveredArea, SourceNegatives
    from .trainer import TrainConfig, Trainer, resolve_precision

    _check_options(a)
    out = check_writable(a.out)
    if a.threads:
        torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    # column-wise in bounded memory whenever pyarrow is installed (the same records and messages)
    occ, reader = read_training_occurrences(a.data, species_column=a.species_column, name_column=a.name_column,
                                            lat_column=a.lat_column, lon_column=a.lon_column,
                                            source_column=a.source_column)
    print(occ.summary(), file=sys.stderr)  # what was read and what was dropped, per reason
    print(f"{occ.origin}: {reader}", file=sys.stderr)
    stack = covered = None
    occ_all = occ  # every usable record: the negatives' source and site lists
    if a.covariates:
        # read as prediction reads them, windows and points only: never a whole raster in memory
        stack = CovariateStack.open(a.covariates, categorical=a.categorical)
        # a record without a value in every covariate has no environment to learn: left out, counted
        covered = keep_covered(occ, stack)
        occ = covered.occ
        _note(jsonl, covered.text(", ".join(Path(c).name for c in a.covariates)))
    if a.negatives in ("source", "source_site") and occ.source is None:
        raise SinrError(f"--negatives {a.negatives} needs each record's source: name its column with "
                        "--source-column (e.g. source or datasetKey).")
    data = prepare_training_data(occ, cap=a.cap, seed=a.seed, thin_deg=a.thin_deg, min_records=a.min_records,
                                 env=None if covered is None else covered.env)
    env_mean = env_std = classes = None
    if stack is not None:
        env_mean, env_std = stack.stats()
        # categorical covariates: their classes at the records become one-hot inputs
        classes, notes = covariate_class_lists(stack.names, stack.categorical, data.env,
                                               _own_cells(stack, data.lonlat))
        # the rasters' reading notes (fill values, an assumed CRS, 0..360 longitudes), then the classes';
        # in the terminal's log and the plugin's (a "note" event)
        for note in stack.warnings + notes:
            print(note, file=sys.stderr)
            write_event(jsonl, {"event": "note", "message": note})
        data.provenance.update(covered.provenance())
    cfg = TrainConfig(loss=a.loss, cap=a.cap, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                      width=a.width, depth=a.depth, dropout=a.dropout, seed=a.seed,
                      pos_weight=float(data.n_species) if a.pos_weight == "species" else a.pos_weight,
                      thin_deg=a.thin_deg, min_records=a.min_records, encoding=a.encoding,
                      frequencies=a.frequencies,
                      covariates=[Path(c).name for c in a.covariates],
                      covariate_classes=None if classes is None else [c and list(c) for c in classes],
                      negatives=a.negatives,
                      pseudo_negatives=a.pseudo_negatives, precision=resolve_precision(a.precision, session.device))
    _note(jsonl, _memory_budget(data, cfg))  # refused here, before anything big is allocated
    # source/site lists from every record of the file, not only the capped ones
    neg_mask = SourceNegatives.build(a.negatives, data.codes, data.lonlat, data.source,
                                     np.stack([occ_all.lon, occ_all.lat], 1),
                                     np.asarray(occ_all.species).astype(str), occ_all.source)
    # random absences are drawn inside the covariates' extent, where every covariate has a value
    # what every process trains on: under torchrun memory-mapped from one copy beside the output
    shared = session.share(data, out, neg_mask, {"config": cfg.to_dict(), "env_mean": env_mean, "env_std": env_std,
                                                 "checkpoint": str(checkpoint_path(out)), "resume": a.resume})
    trainer = Trainer(shared, cfg, env_mean=env_mean, env_std=env_std,
                      rand_env=None if stack is None else CoveredArea.of(stack), neg_mask=neg_mask,
                      device=session.device, dist=session.env)
    data.provenance.update(trainer.pool_info)
    if trainer.pool_info:
        _note(jsonl, f"random absences: {trainer.pool_info['n_random_absences']:,} drawn where every covariate has a "
                     f"value ({trainer.pool_info['n_random_redrawn_no_covariates']:,} random points without one drawn "
                     "again)")
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
                                "threshold": f"LPT-R: {LPT_R_PERCENTILE:g}th percentile of the probability at the "
                                             "species' training records", "torch": torch.__version__,
                                "device": session.device.type, "processes": session.env.world_size}
    # exported from the CPU: the same bundle whatever the training device
    export = functools.partial(export_bundle, trainer.model.cpu(), species, out, name=a.name or out.stem,
                               covariate_names=stack.names if stack is not None else (),
                               class_names={n: d.names for n, d in zip(stack.names, stack.categorical) if d}
                               if stack is not None else None,
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
               "elapsed_s": round(time.perf_counter() - t_start, 2), "sha256": bundle.sha256, "reader": reader}
    print(f"wrote {out} ({data.n_species} species, final loss {result.final_loss:.4f}, "
          f"training {train_seconds:.1f} s)", file=sys.stderr)
    return summary


def _memory_budget(data: Any, cfg: Any) -> str:
    """The one ``memory:`` line of a training of ``data`` (``TrainingData``) with ``cfg``
    (``TrainConfig``); raises ``MemoryBudgetError`` when the estimate exceeds the memory available."""
    from sinr_qgis.core.encoding import covariate_features, input_dim
    from sinr_qgis.core.train_checks import check_memory_budget, training_memory

    from .losses import NEEDS_RANDOM

    k = 0 if data.env is None else int(data.env.shape[1])
    random = cfg.loss in NEEDS_RANDOM
    parts = training_memory(
        n_records=data.n_records, n_covariates=k, n_species=data.n_species, batch_size=cfg.batch_size,
        n_features=input_dim(cfg.encoding, covariate_features(k, cfg.covariate_classes) if k else 0, cfg.frequencies),
        width=cfg.width, depth=cfg.depth, random_negatives=random,
        pool=cfg.env_pool if random and (k or cfg.pseudo_negatives == "land") else 0)
    return check_memory_budget(parts, advice="Lower --batch-size or --width, train fewer species (--min-records) "
                                             "or records (--cap), or train on a machine with more memory.")


def run_annotate(a: argparse.Namespace) -> dict[str, Any]:
    """The ``annotate`` command: re-select the model's training records from ``--data`` with the
    selection recorded in its model.json (cap, seed, thinning, minimum records) and store each
    species' record extent and cell count; the weights are untouched."""
    from sinr_qgis.core.bundle import ModelBundle

    from .columnar import read_training_occurrences
    from .data import prepare_training_data
    from .export import annotate_bundle

    bundle = ModelBundle.load(a.model)
    out = check_writable(a.out or a.model)
    t = bundle.meta.get("training", {})
    occ, _ = read_training_occurrences(a.data, species_column=a.species_column, name_column=a.name_column,
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
        write_event(jsonl, {"event": "progress", "progress": fraction, "message": what})

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
    # under torchrun rank 0 alone reports; the others' own errors name their process
    rank = int(os.environ.get("RANK", "0")) if args.command == "train" and os.environ.get("RANK", "").isdigit() else 0
    jsonl = sys.stdout if getattr(args, "jsonl", False) and rank == 0 else None
    try:
        run = {"train": run_train, "import-official": run_import_official, "annotate": run_annotate}[args.command]
        with _output_lock(args):
            summary = run(args, jsonl) if args.command in ("train", "import-official") else run(args)
    except CancelledError as exc:
        write_event(jsonl, {"event": "cancelled", "message": str(exc)})
        print(f"cancelled: {exc}", file=sys.stderr)
        return EXIT_CANCELLED
    except LeaderFailed:  # rank 0 reported it
        return EXIT_USER_ERROR
    except RunStopped:  # torchrun ends every process when one fails
        message = (f"training process {rank} was ended because another one stopped (see its error); no bundle was "
                   "written; the last completed epoch is in the checkpoint (use --resume)")
        write_event(jsonl, {"event": "error", "message": message})
        print(f"stopped: {message}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        write_event(jsonl, {"event": "cancelled", "message": "interrupted"})
        print("interrupted; the last completed epoch is in the checkpoint (use --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SinrError as exc:
        write_event(jsonl, {"event": "error", "message": str(exc)})
        print(f"error: {exc}" if rank == 0 else f"error (training process {rank}): {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:  # beyond the up-front estimate: one line, never a traceback inside QGIS
        message = ("Out of memory. Lower --batch-size or --width, train fewer species (--min-records) or records "
                   "(--cap), or train on a machine with more memory.")
        write_event(jsonl, {"event": "error", "message": message})
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    write_event(jsonl, {"event": "done"} | summary)
    return EXIT_OK


def _output_lock(args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """The plugin's lock on the bundle this command writes (``core.training.lock.output_lock``): a
    second command, or a plugin training, to the same output refuses (``OutputBusyError``) instead
    of silently replacing the first one's model. Under the plugin the child uses its parent's lock;
    under torchrun only rank 0, which writes the bundle, takes it."""
    from sinr_qgis.core.training.lock import inherited_lock_tokens, output_lock

    out = getattr(args, "out", None) or getattr(args, "model", None)
    if not out or os.environ.get("RANK", "0") not in ("", "0"):  # a bad RANK is refused by the session
        return contextlib.nullcontext()
    return output_lock(out, inherited_lock_tokens())


def _note(jsonl: Any, line: str) -> None:
    """A line about the inputs for both logs: the terminal's (stderr) and the plugin's (a ``note`` event)."""
    print(line, file=sys.stderr)
    write_event(jsonl, {"event": "note", "message": line})
