"""One training from an occurrence file to a ``.sinr`` bundle: ``train_bundle(request)``.

The ``train`` command of ``training/cli.py`` is argparse in front of it; benchmarks and tests can
call it without a subprocess. Its steps: check the request, read the records (and the covariates
at them), choose the records, train (one process, or several under torchrun:
``training/distributed.py``), compute the LPT-R thresholds and export the bundle (with
``--local-evidence``, its local-evidence component: ``training/local_evidence.py``).
"""
from __future__ import annotations

import contextlib
import functools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from sinr_qgis.core.atomic import check_writable
from sinr_qgis.core.bundle import ModelBundle, Species, file_sha256
from sinr_qgis.core.categories import covariate_class_lists
from sinr_qgis.core.covariates import CovariateStack
from sinr_qgis.core.encoding import (
    DEFAULT_FREQUENCIES,
    DEFAULT_SH_DEGREE,
    check_frequencies,
    check_sh_degree,
    covariate_features,
    input_dim,
    powers_of_two,
    uses_covariates,
)
from sinr_qgis.core.errors import BundleError, SinrError
from sinr_qgis.core.occurrences import Occurrences
from sinr_qgis.core.thresholds import LPT_R_PERCENTILE, lpt_r_per_species
from sinr_qgis.core.train_checks import check_memory_budget, training_memory
from sinr_qgis.core.training.defaults import LOSSES, PAPER_RECIPE, USES_NEG_MASK
from sinr_qgis.core.training.events import write_event
from sinr_qgis.core.training.options import checkpoint_path

from .columnar import read_training_occurrences
from .data import CoveredRecords, TrainingData, keep_covered, prepare_training_data
from .distill import DEFAULT_DISTILL_WEIGHT, Teachers, check_distill_weight, teacher_paths
from .distributed import TrainingSession
from .export import build_bundle
from .losses import NEEDS_RANDOM
from .negatives import CoveredArea, SourceNegatives
from .trainer import FitResult, TrainConfig, Trainer, resolve_precision

DEFAULT_LICENCE = ("This model is derived from its training data ({file}); it carries the terms of "
                   "that data's licences. Check them before redistributing the model.")


@dataclass
class TrainRequest:
    """One training: the ``train`` command's options, each named as its ``--option`` (``--batch-size``:
    ``batch_size``); the defaults are the paper's recipe (``PAPER_RECIPE``)."""

    data: str  # occurrence file
    out: str  # the bundle to write (.sinr)
    loss: str = PAPER_RECIPE["loss"]
    cap: int = PAPER_RECIPE["cap"]
    epochs: int = PAPER_RECIPE["epochs"]
    batch_size: int = PAPER_RECIPE["batch_size"]
    lr: float = PAPER_RECIPE["lr"]
    width: int = PAPER_RECIPE["width"]
    depth: int = PAPER_RECIPE["depth"]
    dropout: float = PAPER_RECIPE["dropout"]
    seed: int = PAPER_RECIPE["seed"]
    pos_weight: float | str = PAPER_RECIPE["pos_weight"]  # or "species" (the number of species trained) or "row"
    thin_deg: float | None = None
    min_records: int = PAPER_RECIPE["min_records"]
    encoding: str = PAPER_RECIPE["encoding"]
    covariates: list[str] = field(default_factory=list)  # raster files
    categorical: list[str] = field(default_factory=list)  # covariate band names holding classes
    frequencies: str | None = None  # sin_cos_multi: "1,2,4,8" as on the command line
    n_frequencies: int | None = None  # sin_cos_multi: 1, 2, 4, ..., 2^(L-1)
    sh_degree: int | None = None  # spherical_harmonics: degrees 0..L-1 (None: DEFAULT_SH_DEGREE)
    species_column: str | None = None
    name_column: str | None = None
    lat_column: str | None = None
    lon_column: str | None = None
    source_column: str | None = None
    negatives: str = PAPER_RECIPE["negatives"]
    pseudo_negatives: str = PAPER_RECIPE["pseudo_negatives"]
    distill_from: str | None = None  # teacher bundles "A.sinr,B.sinr" (training/distill.py)
    distill_weight: float | None = None  # beta (None: DEFAULT_DISTILL_WEIGHT with teachers)
    name: str | None = None  # the model's name (None: the output file's stem)
    licence: str | None = None  # None: DEFAULT_LICENCE
    head_float16: bool = False
    local_evidence: bool = False  # add the local-evidence component at export (coordinates models only)
    threads: int | None = None  # torch CPU threads (None: torch's choice)
    device: str = "auto"
    precision: str = "auto"
    jsonl_every: int = 20  # steps between JSON step events
    no_progress: bool = False  # no progress bar on stderr
    resume: bool = False  # continue from the output's checkpoint
    keep_checkpoint: bool = False


def train_bundle(request: TrainRequest, jsonl: IO[str] | None = None) -> dict[str, Any]:
    """Train the model ``request`` describes and write its bundle; JSON-lines events to ``jsonl``.

    Returns the summary that goes into the ``done`` event (empty in the processes other than
    rank 0 under torchrun). Raises ``SinrError`` (and its kinds) for inputs or options that
    cannot train, ``CancelledError`` when cancelled.
    """
    with TrainingSession.start(request.device) as session:
        if not session.env.is_leader:
            return _follow(request, session)
        return _lead(request, jsonl, session)


def _follow(r: TrainRequest, session: TrainingSession) -> dict[str, Any]:
    """A process other than rank 0: trains on rank 0's shared records and settings, silently."""
    if r.threads:
        torch.set_num_threads(r.threads)
    data, neg_mask, s = session.receive()
    # the teachers are read here too: each process computes them for its own rows
    teachers = Teachers.load(codes=data.codes, **s["teachers"]) if s["teachers"] else None
    trainer = Trainer(data, TrainConfig(**s["config"]), env_mean=s["env_mean"], env_std=s["env_std"],
                      neg_mask=neg_mask, device=session.device, dist=session.env, teachers=teachers)
    if s["resume"]:
        trainer.load_checkpoint(s["checkpoint"])
    trainer.fit(progress=False, jsonl_every=r.jsonl_every)
    return {}


def _lead(r: TrainRequest, jsonl: IO[str] | None, session: TrainingSession) -> dict[str, Any]:
    """Rank 0, or the only process: reads the data, trains, writes the bundle."""
    frequencies = _check_request(r)
    out = check_writable(r.out)
    if r.threads:
        torch.set_num_threads(r.threads)
    t_start = time.perf_counter()
    occ_all, reader, stack, covered = _read_records(r, jsonl)
    occ = occ_all if covered is None else covered.occ
    if r.negatives in ("source", "source_site") and occ.source is None:
        raise SinrError(f"--negatives {r.negatives} needs each record's source: name its column with "
                        "--source-column (e.g. source or datasetKey).")
    data = prepare_training_data(occ, cap=r.cap, seed=r.seed, thin_deg=r.thin_deg, min_records=r.min_records,
                                 env=None if covered is None else covered.env)
    env_mean = env_std = classes = None
    if stack is not None:
        env_mean, env_std = stack.stats()
        classes = _covariate_classes(stack, data, jsonl)
        data.provenance.update(covered.provenance())
    teacher_spec = _teacher_spec(r, stack)
    teachers = Teachers.load(codes=data.codes, **teacher_spec) if teacher_spec else None
    cfg = _train_config(r, data.n_species, frequencies, classes, resolve_precision(r.precision, session.device),
                        teachers)
    _note(jsonl, _memory_budget(data, cfg, r.local_evidence))  # refused here, before anything big is allocated
    # source/site lists from every record of the file, not only the capped ones
    neg_mask = SourceNegatives.build(r.negatives, data.codes, data.lonlat, data.source,
                                     np.stack([occ_all.lon, occ_all.lat], 1),
                                     np.asarray(occ_all.species).astype(str), occ_all.source)
    # random absences are drawn inside the covariates' extent, where every covariate has a value
    # what every process trains on: under torchrun memory-mapped from one copy beside the output
    shared = session.share(data, out, neg_mask, {"config": cfg.to_dict(), "env_mean": env_mean, "env_std": env_std,
                                                 "checkpoint": str(checkpoint_path(out)), "resume": r.resume,
                                                 "teachers": teacher_spec})
    trainer = Trainer(shared, cfg, env_mean=env_mean, env_std=env_std,
                      rand_env=None if stack is None else CoveredArea.of(stack), neg_mask=neg_mask,
                      device=session.device, dist=session.env, teachers=teachers)
    data.provenance.update(trainer.pool_info)
    if trainer.pool_info:
        _note(jsonl, f"random absences: {trainer.pool_info['n_random_absences']:,} drawn where every covariate has a "
                     f"value ({trainer.pool_info['n_random_redrawn_no_covariates']:,} random points without one drawn "
                     "again)")
    ckpt = checkpoint_path(out)
    if r.resume:
        trainer.load_checkpoint(ckpt)
        print(f"resuming from {ckpt.name} after epoch {trainer.epoch}", file=sys.stderr)
    print(f"training on {data.n_records} records of {data.n_species} species "
          f"({cfg.loss}, {cfg.encoding}, {cfg.epochs} epochs)", file=sys.stderr)
    result = trainer.fit(checkpoint=ckpt, progress=not r.no_progress, jsonl=jsonl, jsonl_every=r.jsonl_every)
    bundle = _export(r, out, trainer, data, result, stack, session, jsonl)
    if not r.keep_checkpoint:
        with contextlib.suppress(FileNotFoundError):
            ckpt.unlink()
    print(f"wrote {out} ({data.n_species} species, final loss {result.final_loss:.4f}, "
          f"training {result.seconds:.1f} s)", file=sys.stderr)
    return {"out": str(out), "n_species": data.n_species, "n_records": data.n_records,
            "final_loss": result.final_loss, "epochs": cfg.epochs, "train_seconds": round(result.seconds, 2),
            "elapsed_s": round(time.perf_counter() - t_start, 2), "sha256": bundle.sha256,
            "reader": reader}


def _check_request(r: TrainRequest) -> list[int] | None:
    """Refuse options that cannot train together (``SinrError`` naming the ``--options``);
    returns the ``sin_cos_multi`` frequency list (None for other encodings)."""
    if r.epochs < 1 or r.batch_size < 1:
        raise SinrError("--epochs and --batch-size must be at least 1.")
    if r.lr <= 0 or r.width < 1 or r.depth < 0 or not 0.0 <= r.dropout < 1.0:
        raise SinrError("--lr and --width must be positive, --depth >= 0 and --dropout within [0, 1).")
    if r.thin_deg is not None and r.thin_deg <= 0:
        raise SinrError("--thin-deg must be a positive cell size in degrees.")
    if not uses_covariates(r.encoding) and r.covariates:
        raise SinrError("--covariates needs --encoding env or sin_cos_env.")
    if uses_covariates(r.encoding) and not r.covariates:
        raise SinrError(f"--encoding {r.encoding} needs --covariates RASTER.")
    if r.categorical and not r.covariates:
        raise SinrError("--categorical names covariate bands: give their rasters with --covariates.")
    if r.local_evidence and uses_covariates(r.encoding):  # refused now, not after the training
        raise SinrError(f"--local-evidence is for models that read coordinates only; --encoding {r.encoding} reads "
                        "covariates. Leave out --local-evidence, or train on coordinates (no --covariates).")
    frequencies = _frequencies(r)
    _sh_degree(r)  # refused here, before any record is read
    if r.negatives != "all" and r.loss not in USES_NEG_MASK:
        raise SinrError(f"--negatives {r.negatives} needs a loss with negatives at observed locations "
                        f"({', '.join(n for n in LOSSES if n in USES_NEG_MASK)}).")
    if not Path(r.data).is_file():
        raise SinrError(f"data file {r.data} does not exist.")
    _check_teachers(r)
    return frequencies


def _check_teachers(r: TrainRequest) -> None:
    """Refuse ``--distill-from`` / ``--distill-weight`` that cannot train (``SinrError``), before any
    record is read; whether the teachers fit the species and covariates is checked once those are known."""
    paths = teacher_paths(r.distill_from)
    if not paths:
        if r.distill_from is not None or r.distill_weight is not None:
            raise SinrError("--distill-weight and --distill-from need teacher models: --distill-from A.sinr,B.sinr.")
        return
    if r.distill_weight is not None:
        check_distill_weight(r.distill_weight)
    for p in paths:
        if not Path(p).is_file():
            raise SinrError(f"--distill-from: teacher model {p} does not exist. Give .sinr bundles, separated by "
                            "commas.")
        if Path(p).resolve() == Path(r.out).resolve():
            raise SinrError(f"--out {r.out} would replace the teacher model {p}: write the student to another file.")


def _teacher_spec(r: TrainRequest, stack: CovariateStack | None) -> dict[str, Any] | None:
    """What ``Teachers.load`` needs besides the species codes (sent to every process): the teacher
    files (absolute) and the run's covariate names and which are categorical; None without teachers."""
    paths = teacher_paths(r.distill_from)
    if not paths:
        return None
    return {"paths": [str(Path(p).resolve()) for p in paths],
            "covariates": [] if stack is None else list(stack.names),
            "categorical": [] if stack is None else [c is not None for c in stack.categorical],
            "threads": r.threads}


def _train_config(r: TrainRequest, n_species: int, frequencies: list[int] | None, classes: list[Any] | None,
                  precision: str, teachers: Teachers | None = None) -> TrainConfig:
    """The trainer's settings for ``r``, once the species, the frequencies, the covariates' classes,
    the device's precision and the teachers are known."""
    return TrainConfig(loss=r.loss, cap=r.cap, epochs=r.epochs, batch_size=r.batch_size, lr=r.lr,
                       width=r.width, depth=r.depth, dropout=r.dropout, seed=r.seed,
                       pos_weight=float(n_species) if r.pos_weight == "species" else r.pos_weight,
                       thin_deg=r.thin_deg, min_records=r.min_records, encoding=r.encoding,
                       frequencies=frequencies, sh_degree=_sh_degree(r),
                       covariates=[Path(c).name for c in r.covariates],
                       covariate_classes=None if classes is None else [c and list(c) for c in classes],
                       negatives=r.negatives, pseudo_negatives=r.pseudo_negatives, precision=precision,
                       distill_from=None if teachers is None else teachers.record,
                       distill_weight=0.0 if teachers is None else DEFAULT_DISTILL_WEIGHT if r.distill_weight is None
                       else r.distill_weight)


def _sh_degree(r: TrainRequest) -> int | None:
    """The ``spherical_harmonics`` degree from ``--sh-degree`` (its default when not given, so the
    bundle's training settings record it); None for other encodings. ``SinrError`` when invalid."""
    if r.encoding != "spherical_harmonics":
        if r.sh_degree is not None:
            raise SinrError("--sh-degree needs --encoding spherical_harmonics.")
        return None
    try:
        return check_sh_degree(DEFAULT_SH_DEGREE if r.sh_degree is None else r.sh_degree)
    except ValueError as exc:
        raise SinrError(f"--sh-degree: {exc}.") from None


def _frequencies(r: TrainRequest) -> list[int] | None:
    """The ``sin_cos_multi`` frequency list from ``--frequencies`` / ``--n-frequencies``."""
    given, n = r.frequencies, r.n_frequencies
    if given is None and n is None:  # recorded in the bundle's training settings too
        return list(DEFAULT_FREQUENCIES) if r.encoding == "sin_cos_multi" else None
    if r.encoding != "sin_cos_multi":
        raise SinrError("--frequencies and --n-frequencies need --encoding sin_cos_multi.")
    if given is not None and n is not None:
        raise SinrError("give either --frequencies or --n-frequencies, not both.")
    try:
        freqs = powers_of_two(n) if n is not None else check_frequencies(
            [float(k) for k in str(given).split(",") if k.strip()])
    except ValueError as exc:
        raise SinrError(f"--frequencies: {exc}.") from None
    return list(freqs)


def _read_records(r: TrainRequest, jsonl: IO[str] | None
                  ) -> tuple[Occurrences, str, CovariateStack | None, CoveredRecords | None]:
    """Every usable record of ``r.data`` (the negatives' source and site lists), the line naming
    the reader that read them, the covariate stack and the records with a value in every covariate
    (both None without covariates)."""
    # column-wise in bounded memory whenever pyarrow is installed (the same records and messages)
    occ, reader = read_training_occurrences(r.data, species_column=r.species_column, name_column=r.name_column,
                                            lat_column=r.lat_column, lon_column=r.lon_column,
                                            source_column=r.source_column)
    print(occ.summary(), file=sys.stderr)  # what was read and what was dropped, per reason
    print(f"{occ.origin}: {reader}", file=sys.stderr)
    if not r.covariates:
        return occ, reader, None, None
    # read as prediction reads them, windows and points only: never a whole raster in memory
    stack = CovariateStack.open(r.covariates, categorical=r.categorical)
    # a record without a value in every covariate has no environment to learn: left out, counted
    covered = keep_covered(occ, stack)
    _note(jsonl, covered.text(", ".join(Path(c).name for c in r.covariates)))
    return occ, reader, stack, covered


def _covariate_classes(stack: CovariateStack, data: TrainingData, jsonl: IO[str] | None
                       ) -> list[Any] | None:
    """Per covariate of ``stack``: the classes of a categorical one at the records of ``data``
    (they become one-hot inputs), None for a continuous one. The rasters' reading notes (fill
    values, an assumed CRS, 0..360 longitudes), then the classes', go to both logs."""
    classes, notes = covariate_class_lists(stack.names, stack.categorical, data.env,
                                           _own_cells(stack, data.lonlat))
    # in the terminal's log and the plugin's (a "note" event)
    for note in stack.warnings + notes:
        print(note, file=sys.stderr)
        write_event(jsonl, {"event": "note", "message": note})
    return classes


def _own_cells(stack: CovariateStack, lonlat: np.ndarray) -> np.ndarray:
    """[N, k]: the value of each record's own cell in every covariate (no interpolation, which would
    blur class codes into fractions): what the hint about unmarked class bands looks at."""
    return np.concatenate([r.sample(lonlat, nearest=[True] * r.n_bands) for r in stack.rasters], axis=1)


def _memory_budget(data: TrainingData, cfg: TrainConfig, local_evidence: bool = False) -> str:
    """The one ``memory:`` line of a training of ``data`` with ``cfg`` (and the local evidence built
    at its export, still beside the trainer); raises ``MemoryBudgetError`` when the estimate exceeds
    the memory available."""
    k = 0 if data.env is None else int(data.env.shape[1])
    random = cfg.loss in NEEDS_RANDOM
    parts = training_memory(
        n_records=data.n_records, n_covariates=k, n_species=data.n_species, batch_size=cfg.batch_size,
        n_features=input_dim(cfg.encoding, covariate_features(k, cfg.covariate_classes) if k else 0, cfg.frequencies,
                             cfg.sh_degree),
        width=cfg.width, depth=cfg.depth, random_negatives=random,
        pool=cfg.env_pool if random and (k or cfg.pseudo_negatives == "land") else 0)
    if local_evidence:
        from .local_evidence import peak_bytes

        parts["local evidence"] = peak_bytes(data.lonlat, data.species, data.n_species)
    return check_memory_budget(parts, advice="Lower --batch-size or --width, train fewer species (--min-records) "
                                             "or records (--cap)" + (", leave out --local-evidence" if local_evidence
                                                                     else "")
                                             + ", or train on a machine with more memory.")


def _export(r: TrainRequest, out: Path, trainer: Trainer, data: TrainingData, result: FitResult,
            stack: CovariateStack | None, session: TrainingSession, jsonl: IO[str] | None) -> ModelBundle:
    """Write the trained model's bundle to ``out`` (rank 0 alone, as every export): its species with
    their LPT-R thresholds, the training settings, the data's provenance and, with
    ``--local-evidence``, the local-evidence component. A float16 head that would move a
    probability too far falls back to float32 (the user is told)."""
    cfg = trainer.config
    probs = trainer.own_species_probabilities()
    thresholds = lpt_r_per_species(probs, data.species, data.n_species)
    n_train = data.n_train()
    species = [Species(i, c, n, int(n_train[i]), float(thresholds[i]))
               for i, (c, n) in enumerate(zip(data.codes, data.names))]
    prov = dict(data.provenance)
    prov["file"] = Path(r.data).name
    prov["sha256"] = file_sha256(r.data)
    prov["n_records_used"] = prov["n_used"]
    training = cfg.to_dict() | {"optimizer": "Adam", "lr_schedule": f"ExponentialLR(gamma={cfg.lr_decay}) per epoch",
                                "epoch_losses": result.epoch_losses, "final_loss": result.final_loss,
                                "train_seconds": round(result.seconds, 1), "resumed": bool(r.resume),
                                "threshold": f"LPT-R: {LPT_R_PERCENTILE:g}th percentile of the probability at the "
                                             "species' training records", "torch": torch.__version__,
                                "device": session.device.type, "processes": session.env.world_size}
    # exported from the CPU: the same bundle whatever the training device
    build = functools.partial(build_bundle, trainer.model.cpu(), species, name=r.name or out.stem,
                              covariate_names=stack.names if stack is not None else (),
                              class_names={n: d.names for n, d in zip(stack.names, stack.categorical) if d}
                              if stack is not None else None,
                              training=training, data=prov, records=(data.lonlat, data.species),
                              record_env=data.env,
                              licence=r.licence or DEFAULT_LICENCE.format(file=Path(r.data).name))
    try:
        bundle = build(head_dtype="float16" if r.head_float16 else "float32")
    except BundleError as exc:
        if not r.head_float16:
            raise
        # the trained model is kept: only its head's storage falls back, and the user is told
        print(f"{exc} It was stored with a float32 head instead.", file=sys.stderr)
        bundle = build()
    if r.local_evidence:
        _add_local_evidence(bundle, data, jsonl)
    # written once, complete: no bundle without its local evidence under the final name
    bundle.write(out)
    return bundle


def _add_local_evidence(bundle: ModelBundle, data: TrainingData, jsonl: IO[str] | None) -> None:
    """Store in ``bundle`` the local-evidence component of its training records ``data`` (the
    defaults of ``training/local_evidence.py``, the records' sources when the file names them), with
    the LPT-R of the combined score; what it adds goes to both logs."""
    from .local_evidence import attach, build_local_evidence

    # after the last epoch, so the user knows what the run is still doing (minutes for many wide-ranging species)
    _note(jsonl, f"adding local evidence from {data.n_records:,} records of {data.n_species:,} species")
    component = build_local_evidence(data.lonlat, data.species, data.n_species, data.source)
    attach(bundle, component, data.lonlat, data.species)
    _note(jsonl, component.describe())


def _note(jsonl: IO[str] | None, line: str) -> None:
    """A line about the inputs for both logs: the terminal's (stderr) and the plugin's (a ``note`` event)."""
    print(line, file=sys.stderr)
    write_event(jsonl, {"event": "note", "message": line})
