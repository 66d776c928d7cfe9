"""Command line: ``python -m training train ...``, ``python -m training import-official ...``,
``python -m training annotate MODEL --data FILE`` (record extents for a bundle of an older version)
``python -m training footprint MODEL --data FILE`` (the data footprint, for the same) and
``python -m training local-evidence MODEL --data FILE`` (the local-evidence component, for a model
trained without ``train --local-evidence``).

The ``train`` command is argparse in front of ``training/pipeline.train_bundle``.
User errors (bad files, columns, options) print one line ``error: ...`` on stderr and exit with
code 2; with ``--jsonl`` an ``{"event": "error", "message": ...}`` line is also written to stdout.
The JSON-lines events are defined in ``sinr_qgis/core/training/events.py``; the exit statuses, the
options' names and their defaults (the paper's recipe) in ``sinr_qgis/core/training/defaults.py``.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from sinr_qgis.core.atomic import check_writable
from sinr_qgis.core.encoding import DEFAULT_SH_DEGREE, ENCODINGS, MAX_SH_DEGREE
from sinr_qgis.core.errors import CancelledError, SinrError
from sinr_qgis.core.footprint import DEFAULT_K, DEFAULT_RESOLUTION
from sinr_qgis.core.training.defaults import (
    EXIT_CANCELLED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER_ERROR,
    LOSSES,
    NEGATIVES,
    PAPER_RECIPE,
    PSEUDO_NEGATIVES,
)
from sinr_qgis.core.training.events import write_event

from .distill import DEFAULT_DISTILL_WEIGHT
from .distributed import LeaderFailed, RunStopped


def build_parser() -> argparse.ArgumentParser:
    """The CLI's parser: ``train``, ``import-official``, ``annotate``, ``footprint`` and
    ``local-evidence``; the training defaults are
    the paper's recipe (``PAPER_RECIPE``)."""
    ap = argparse.ArgumentParser(prog="python -m training", description="Train SINR species range models.")
    sub = ap.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_import_official(sub)
    _add_annotate(sub)
    _add_footprint(sub)
    _add_local_evidence(sub)
    return ap


def _add_train(sub: Any) -> None:
    """The ``train`` command's options: the fields of ``pipeline.TrainRequest`` (and ``--jsonl``)."""
    d = PAPER_RECIPE
    t = sub.add_parser("train", help="train a model on presence-only records and write a .sinr bundle")
    t.add_argument("--data", required=True,
                   help="occurrence file (CSV/CSV.gz, GBIF, iNat export, DwC-A zip; with pyarrow also Parquet, "
                        "a file or a folder of parts): read column-wise in bounded memory when pyarrow is installed")
    t.add_argument("--out", required=True, help="output model bundle (.sinr)")
    _add_train_recipe(t, d)
    _add_train_inputs(t, d)
    _add_train_bundle_and_run(t)


def _add_train_recipe(t: argparse.ArgumentParser, d: dict[str, Any]) -> None:
    """The training recipe: loss, network size, optimiser, which records and species are kept."""
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
                   "model's recipe); 'row' = each record's own number of terms (its usable negatives + 1)")
    t.add_argument("--thin-deg", type=float, default=None,
                   help="keep one record per species per grid cell of this size (degrees)")
    t.add_argument("--min-records", type=int, default=d["min_records"], help="drop species with fewer records")


def _add_train_inputs(t: argparse.ArgumentParser, d: dict[str, Any]) -> None:
    """What the model sees: encoding, covariates, the data file's columns, where absences come from."""
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
    t.add_argument("--sh-degree", type=int, metavar="L",
                   help=f"--encoding spherical_harmonics: real spherical harmonics of degrees 0..L-1 (L^2 "
                   f"features; 1 to {MAX_SH_DEGREE}, default {DEFAULT_SH_DEGREE}: the shortest wavelength is "
                   "360/(L-1) degrees)")
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
    t.add_argument("--distill-from", metavar="A.sinr,B.sinr",
                   help="teacher models to distil into this one (knowledge distillation, training/distill.py): at "
                   "every batch's record and pseudo-negative locations the target is sigmoid(mean of their logits); "
                   "they must know every trained species (matched by code) and read only covariates this run reads")
    t.add_argument("--distill-weight", type=float, metavar="BETA",
                   help=f"with --distill-from: loss = (1 - BETA) x the SINR loss + BETA x the distillation term "
                   f"(default {DEFAULT_DISTILL_WEIGHT}; 1: only the teachers)")


def _add_train_bundle_and_run(t: argparse.ArgumentParser) -> None:
    """What the bundle records, and how the run uses the machine and reports progress."""
    t.add_argument("--name", help="model name (default: the output file's stem)")
    t.add_argument("--licence", help="licence text stored in the bundle")
    t.add_argument("--head-float16", action="store_true",
                   help="store the species head in float16: about half the file for thousands of species; "
                        "refused when a probability would move by more than 0.001")
    t.add_argument("--local-evidence", action="store_true",
                   help="add the local-evidence component to the bundle (each species' record density and local "
                        "detection rate near its training records, added to the logit: "
                        "sinr_qgis/core/local_evidence.py), as the bundled model has; coordinates models only")
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


def _add_import_official(sub: Any) -> None:
    """The ``import-official`` command's options."""
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


def _add_annotate(sub: Any) -> None:
    """The ``annotate`` command's options."""
    n = sub.add_parser("annotate", help="add where each species' training records are (shown as its reliability) "
                                        "to a .sinr bundle written by an older version")
    n.add_argument("model", help="model bundle (.sinr) to annotate")
    n.add_argument("--data", required=True, help="the occurrence file the model was trained on")
    n.add_argument("--out", help="write the annotated bundle here (default: replace MODEL)")
    _add_column_options(n)


def _add_column_options(n: Any) -> None:
    """The column options of the commands that re-read a model's training file."""
    for col in ("species", "name", "lat", "lon"):
        n.add_argument(f"--{col}-column")


def _add_footprint(sub: Any) -> None:
    """The ``footprint`` command's options."""
    n = sub.add_parser("footprint", help="add the model's data footprint (where maps are not extrapolation) to a "
                                         ".sinr bundle written by an older version; the weights are untouched")
    n.add_argument("model", help="model bundle (.sinr)")
    n.add_argument("--data", required=True, help="the occurrence file the model was trained on")
    n.add_argument("--out", help="write the bundle here (default: replace MODEL)")
    n.add_argument("--covariates", nargs="+", default=[], metavar="RASTER",
                   help="covariate models: the rasters the model was trained with (their ranges at the records)")
    n.add_argument("--categorical", nargs="+", default=[], metavar="NAME", help="as for train")
    n.add_argument("--k", type=int, default=DEFAULT_K,
                   help="distance to the k-th nearest distinct training location (default %(default)s)")
    n.add_argument("--resolution", type=float, default=DEFAULT_RESOLUTION,
                   help="grid node spacing in degrees; must divide 180 (default %(default)s)")
    _add_column_options(n)


def _add_local_evidence(sub: Any) -> None:
    """The ``local-evidence`` command's options."""
    from .local_evidence import DEFAULT_BANDWIDTH, DEFAULT_RECORD_WEIGHT, DEFAULT_SURVEY_WEIGHT

    n = sub.add_parser("local-evidence", help="add the local-evidence component (record density and local detection "
                                              "rate added to the logit: sinr_qgis/core/local_evidence.py) to a "
                                              "coordinates model; the weights are untouched")
    n.add_argument("model", help="model bundle (.sinr)")
    n.add_argument("--data", required=True, help="the occurrence file the model was trained on")
    n.add_argument("--out", help="write the bundle here (default: replace MODEL)")
    n.add_argument("--bandwidth", type=float, default=DEFAULT_BANDWIDTH,
                   help="Gaussian kernel, degrees (default %(default)s)")
    n.add_argument("--record-weight", type=float, default=DEFAULT_RECORD_WEIGHT,
                   help="weight a of the log record density (default %(default)s)")
    n.add_argument("--survey-weight", type=float, default=DEFAULT_SURVEY_WEIGHT,
                   help="weight b of the log local detection rate (default %(default)s)")
    n.add_argument("--source-column", help="the records' source (survey, atlas, dataset): detection rates are per "
                                           "source; without it all records are one source")
    _add_column_options(n)


def _pos_weight(text: str) -> float | str:
    """``--pos-weight``: a positive number, ``species`` (resolved once the species are known) or
    ``row`` (each row's own number of terms: ``losses.row_pos_weight``)."""
    if text.strip().lower() in ("species", "row"):
        return text.strip().lower()
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number, 'species' or 'row', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def run_train(a: argparse.Namespace, jsonl: Any) -> dict[str, Any]:
    """The ``train`` command: ``training/pipeline.train_bundle`` with the parsed options; returns the
    summary that goes into the ``done`` event (empty in the processes other than rank 0 under
    torchrun: see ``training/distributed.py``)."""
    from .pipeline import TrainRequest, train_bundle

    request = TrainRequest(**{f.name: getattr(a, f.name) for f in dataclasses.fields(TrainRequest)})
    return train_bundle(request, jsonl)


def run_annotate(a: argparse.Namespace) -> dict[str, Any]:
    """The ``annotate`` command: re-select the model's training records from ``--data`` with the
    selection recorded in its model.json (cap, seed, thinning, minimum records) and store each
    species' record extent and cell count; the weights are untouched."""
    from sinr_qgis.core.bundle import ModelBundle

    bundle = ModelBundle.load(a.model)
    out = check_writable(a.out or a.model)
    _model_records(bundle, _read_data(a))  # stores the record extents
    bundle.write(out)
    print(f"wrote {out} (record extents of {bundle.n_species} species)", file=sys.stderr)
    return {"out": str(out), "n_species": bundle.n_species, "sha256": bundle.sha256}


def _read_data(a: argparse.Namespace, **columns: Any) -> Any:
    """The records of ``--data`` with the command's column options (and ``columns``)."""
    from .columnar import read_training_occurrences

    occ, _ = read_training_occurrences(a.data, species_column=a.species_column, name_column=a.name_column,
                                       lat_column=a.lat_column, lon_column=a.lon_column, **columns)
    return occ


def _model_records(bundle: Any, occ: Any, env: Any = None) -> Any:
    """``occ``'s records selected as ``bundle`` recorded its training (cap, seed, thinning, minimum
    records: ``prepare_training_data``), with ``env`` [N, k] for a covariate model. Raises
    ``SinrError`` when they are not the model's records (``annotate_bundle``: it also stores
    each species' record extent in ``bundle``)."""
    from .data import prepare_training_data
    from .export import annotate_bundle

    t = bundle.meta.get("training", {})
    data = prepare_training_data(occ, cap=int(t.get("cap", 1000)), seed=int(t.get("seed", 0)),
                                 thin_deg=t.get("thin_deg"), min_records=int(t.get("min_records", 1)), env=env)
    annotate_bundle(bundle, data.codes, data.lonlat, data.species)
    return data


def _refuse_official(bundle: Any, what: str) -> None:
    """``SinrError`` for a model imported from an official checkpoint: its records are not known."""
    if bundle.meta.get("training", {}).get("origin") == "official SINR checkpoint":
        raise SinrError(f"{bundle.name} was imported from an official SINR checkpoint: its training records are not "
                        f"known, so {what}.")


def run_footprint(a: argparse.Namespace) -> dict[str, Any]:
    """The ``footprint`` command: re-select the model's training records from ``--data`` as
    ``annotate`` does (and checks that they are the model's), read the covariates there for a
    covariate model, and store the data footprint (``training/footprint.py``); the weights are
    untouched. An imported official model is refused: its training records are not known."""
    from sinr_qgis.core.bundle import ModelBundle
    from sinr_qgis.core.covariates import CovariateStack

    from .data import keep_covered
    from .footprint import model_footprint

    if a.k < 1 or not (a.resolution > 0 and (180.0 / a.resolution).is_integer()):
        raise SinrError("--k must be at least 1 and --resolution a number of degrees that divides 180 (e.g. 0.25).")
    bundle = ModelBundle.load(a.model)
    _refuse_official(bundle, "no footprint can be made for it")
    if bundle.covariates and not a.covariates:
        raise SinrError(f"{bundle.name} reads covariates ({', '.join(bundle.covariate_names)}): give the rasters it "
                        "was trained with (--covariates).")
    out = check_writable(a.out or a.model)
    occ = _read_data(a)
    env = None
    if bundle.covariates:
        stack = CovariateStack.open(a.covariates, categorical=a.categorical)
        if stack.names != bundle.covariate_names:
            raise SinrError(f"The rasters hold {', '.join(stack.names)}; {bundle.name} reads "
                            f"{', '.join(bundle.covariate_names)}. Give its rasters in that order.")
        covered = keep_covered(occ, stack)
        occ, env = covered.occ, covered.env
    data = _model_records(bundle, occ, env)
    bundle.footprint = model_footprint(bundle.encoding, data.lonlat, data.env, bundle.covariate_names,
                                       bundle.covariate_classes, k=a.k, resolution=a.resolution)
    bundle.write(out)
    rule = bundle.footprint.rule() if bundle.footprint else "no footprint (fewer than two distinct locations)"
    print(f"wrote {out}: {rule}", file=sys.stderr)
    return {"out": str(out), "footprint": rule, "sha256": bundle.sha256}


def run_local_evidence(a: argparse.Namespace) -> dict[str, Any]:
    """The ``local-evidence`` command: re-select the model's training records from ``--data`` as
    ``annotate`` does (and checks that they are the model's), build the component from them
    (``training/local_evidence.py``) with the LPT-R of the combined score, and store it."""
    from sinr_qgis.core.bundle import ModelBundle

    from .local_evidence import attach, build_local_evidence

    bundle = ModelBundle.load(a.model)
    _refuse_official(bundle, "it can have no local evidence")
    if bundle.covariates:
        raise SinrError(f"{bundle.name} reads covariates: local evidence is for models that read coordinates only.")
    out = check_writable(a.out or a.model)
    data = _model_records(bundle, _read_data(a, source_column=a.source_column))
    component = build_local_evidence(data.lonlat, data.species, bundle.n_species, data.source,
                                     bandwidth_deg=a.bandwidth, record_weight=a.record_weight,
                                     survey_weight=a.survey_weight)
    attach(bundle, component, data.lonlat, data.species).write(out)
    print(f"wrote {out}: {component.describe()}", file=sys.stderr)
    return {"out": str(out), "local_evidence": component.describe(), "sha256": bundle.sha256}


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
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the process exit code."""
    args = build_parser().parse_args(argv)
    # under torchrun rank 0 alone reports; the others' own errors name their process
    rank = int(os.environ.get("RANK", "0")) if args.command == "train" and os.environ.get("RANK", "").isdigit() else 0
    jsonl = sys.stdout if getattr(args, "jsonl", False) and rank == 0 else None
    try:
        run = {"train": run_train, "import-official": run_import_official, "annotate": run_annotate,
               "footprint": run_footprint, "local-evidence": run_local_evidence}[args.command]
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
