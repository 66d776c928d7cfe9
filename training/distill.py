"""Knowledge distillation: trained models (teachers) guide the one being trained.

The mean logits of two models with different encodings rank species better than either model
alone (issue 13), but a bundle ships one network. ``train --distill-from A.sinr,B.sinr`` adds the
teachers' view of every batch: at each record location and each pseudo-negative location of the
batch, the target is sigmoid(mean of the teachers' logits) for every trained species [rows, C],
and the step's loss becomes::

    (1 - beta) * the run's SINR loss + beta * mean over (rows, species) of BCE(student logit, target)

with beta = ``--distill-weight`` (default 0.5; 1 is pure distillation, 0 leaves the run as it was).

The teachers run on the plugin's own inference (:class:`sinr_qgis.core.runtime.Predictor`,
onnxruntime or numpy, on the CPU): a teacher is scored exactly as the plugin predicts with it, and
no torch copy of it is needed. They are matched to the run by species code (any head order; a
teacher's other species are ignored) and by covariate name (raw values, as the run reads them).
The run records each teacher's file name and SHA-256 (``TrainConfig.distill_from``): a ``--resume``
re-reads the files and refuses one that changed.

Under several processes each one computes the teachers for its own shard's rows only; a row's
target does not depend on the other rows, so the run is the one-process run up to float order.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.errors import BundleError
from sinr_qgis.core.runtime import Predictor

from .data import TrainingData
from .errors import TrainerError
from .negatives import PseudoNegativePool

if TYPE_CHECKING:
    from .trainer import TrainConfig

DEFAULT_DISTILL_WEIGHT = 0.5
TeacherRecord = dict[str, str]  # {"file": name, "sha256": hex digest}, as model.json records it


class Teachers:
    """Teacher models matched to a run's species (and covariates); see the module docstring."""

    def __init__(self, predictors: list[Predictor], heads: list[np.ndarray], env_columns: list[np.ndarray]) -> None:
        """Use :meth:`load`. ``heads``: per teacher, its head index of each trained species [C];
        ``env_columns``: per teacher, the run's covariate column of each of its covariates [k_t]."""
        self.predictors = predictors
        self.heads = heads
        self.env_columns = env_columns

    @classmethod
    def load(cls, paths: Sequence[str | Path], codes: Sequence[str], covariates: Sequence[str] = (),
             categorical: Sequence[bool] | None = None, *, backend: str = "auto",
             threads: int | None = None) -> Teachers:
        """The teacher bundles at ``paths`` for a run that trains the species ``codes`` (head order)
        on the raw covariates ``covariates`` (names, the run's column order; ``categorical``: which
        of them the run reads as classes). ``threads``: the teachers' CPU threads (default: torch's).

        Raises ``TrainerError`` when there is no teacher, a file is not a model bundle, a trained
        species is missing from a teacher, or a teacher needs covariates the run does not read
        (or reads another way)."""
        if not paths:
            raise TrainerError("--distill-from names no teacher model: give one or more .sinr files, "
                               "separated by commas.")
        flags = list(categorical) if categorical is not None else [False] * len(covariates)
        threads = threads or torch.get_num_threads()
        predictors, heads, env_columns = [], [], []
        for path in paths:
            try:
                bundle = ModelBundle.load(path)
            except BundleError as exc:
                raise TrainerError(f"--distill-from: {exc}") from None
            heads.append(_species_columns(bundle, codes))
            env_columns.append(_covariate_columns(bundle, list(covariates), flags))
            # the teachers' networks: a student network learns from networks, not from record offsets
            predictors.append(Predictor(bundle, backend, threads=threads, local_evidence=False))
        return cls(predictors, heads, env_columns)

    @property
    def record(self) -> list[TeacherRecord]:
        """What the run records of its teachers: file name and SHA-256 of each, in the order given."""
        return [{"file": Path(p.bundle.path or p.bundle.name).name, "sha256": p.bundle.sha256}
                for p in self.predictors]

    def logits(self, lonlat: np.ndarray, env: np.ndarray | None = None) -> np.ndarray:
        """Mean of the teachers' logits, float32 [n, C] (C: the run's species, its head order), at
        (lon, lat) degrees [n, 2] with the run's raw covariates ``env`` [n, k] (None without).

        Raises ``TrainerError`` when a teacher gives no value at a location (a covariate missing)."""
        total = np.zeros((len(lonlat), len(self.heads[0])), dtype=np.float32)
        for predictor, head, cols in zip(self.predictors, self.heads, self.env_columns):
            teacher_env = env[:, cols] if len(cols) else None
            total += predictor.logits(predictor.embed(lonlat, teacher_env), head)
        total /= len(self.predictors)
        if not np.isfinite(total).all():
            raise TrainerError("a teacher model gave no value at some training locations (a covariate without a "
                               "value there); give teachers whose covariates cover the training records.")
        return total

    def targets(self, lonlat: np.ndarray, env: np.ndarray | None = None) -> torch.Tensor:
        """The distillation targets: sigmoid of :meth:`logits`, a float32 tensor [n, C] on the CPU."""
        return torch.sigmoid(torch.from_numpy(self.logits(lonlat, env)))


def _species_columns(bundle: ModelBundle, codes: Sequence[str]) -> np.ndarray:
    """int64 [C]: ``bundle``'s head index of each species code in ``codes``; ``TrainerError`` when
    one is missing."""
    index = {s.code: s.index for s in bundle.species}
    missing = [c for c in codes if c not in index]
    if missing:
        raise TrainerError(f"teacher {bundle.name} ({_file(bundle)}) has no species {', '.join(missing[:5])}"
                           + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
                           + f" of the {len(codes)} trained: a teacher must know every trained species (matched "
                             "by code); train it on the same species, or leave it out of --distill-from.")
    return np.array([index[c] for c in codes], dtype=np.int64)


def _covariate_columns(bundle: ModelBundle, names: list[str], categorical: list[bool]) -> np.ndarray:
    """int64 [k_t]: the run's column (of ``names``) of each covariate ``bundle`` reads; ``TrainerError``
    when the run does not read one, reads it another way, or the teacher standardises them as an
    official SINR checkpoint did."""
    if bundle.meta["encoding"].get("covariate_sampling"):
        raise TrainerError(f"teacher {bundle.name} ({_file(bundle)}) was imported from an official SINR "
                           "environmental checkpoint, which reads its covariates as the official code did, not "
                           "as training does: it cannot teach; leave it out of --distill-from.")
    missing = [n for n in bundle.covariate_names if n not in names]
    if missing:
        have = f"this run reads {', '.join(names)}" if names else "this run reads no covariates"
        raise TrainerError(f"teacher {bundle.name} ({_file(bundle)}) needs the covariates {', '.join(missing)}; "
                           f"{have}. Train with --covariates rasters holding them, or leave the teacher out of "
                           "--distill-from.")
    cols = np.array([names.index(n) for n in bundle.covariate_names], dtype=np.int64)
    classes = bundle.covariate_classes or [None] * len(cols)
    other = [n for n, c, j in zip(bundle.covariate_names, classes, cols) if (c is not None) != categorical[j]]
    if other:
        raise TrainerError(f"teacher {bundle.name} ({_file(bundle)}) and this run read {', '.join(other)} "
                           "differently (one as classes, the other as a continuous value): mark the same bands "
                           "with --categorical as the teacher's training did.")
    return cols


def _file(bundle: ModelBundle) -> str:
    return bundle.path.name if bundle.path is not None else "in memory"


def teacher_paths(text: str | None) -> list[str]:
    """The teacher files of ``--distill-from`` ``text`` (comma-separated; empty items ignored)."""
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def check_distill_weight(weight: float) -> float:
    """``weight`` (beta) when within [0, 1], else ``TrainerError``."""
    if not 0.0 <= weight <= 1.0:
        raise TrainerError(f"--distill-weight must be within [0, 1] (0: no distillation, 1: only the teachers), "
                           f"not {weight:g}.")
    return float(weight)


def check_resumed_teachers(saved: list[TeacherRecord] | None, now: list[TeacherRecord] | None,
                           checkpoint: str) -> None:
    """Refuse (``TrainerError``) to continue ``checkpoint``, trained with the teachers ``saved``,
    with the teachers ``now``: other files, or a file whose content changed (SHA-256)."""
    if (saved or []) == (now or []):
        return
    names = ([r["file"] for r in saved or []], [r["file"] for r in now or []])
    if names[0] != names[1]:
        raise TrainerError(f"Checkpoint {checkpoint} was trained with the teachers {', '.join(names[0]) or 'none'}, "
                           f"not {', '.join(names[1]) or 'none'}; give the same --distill-from or train without "
                           "--resume.")
    changed = [f"{a['file']} (SHA-256 {a['sha256'][:12]}... then, {b['sha256'][:12]}... now)"
               for a, b in zip(saved or [], now or []) if a["sha256"] != b["sha256"]]
    raise TrainerError(f"The teacher {', '.join(changed)} changed since checkpoint {checkpoint} was written; "
                       "restore the file it was trained with, or train without --resume.")


def bind_teachers(config: TrainConfig, teachers: Teachers | None, n_species: int) -> TrainConfig:
    """The trainer's ``config`` (a ``TrainConfig``) with ``distill_from`` recording ``teachers``.

    Raises ``TrainerError`` when the config names teachers that are not given, or others, when
    the weight is outside [0, 1], or when the teachers score another number of species."""
    if teachers is None:
        if config.distill_from:
            raise TrainerError("the settings distil from teacher models that were not given: load them "
                               "(training.distill.Teachers) or clear distill_from.")
        return config
    check_distill_weight(config.distill_weight)
    if len(teachers.heads[0]) != n_species:
        raise TrainerError(f"the teachers score {len(teachers.heads[0])} species, the run trains {n_species}.")
    if config.distill_from is None:
        return dataclasses.replace(config, distill_from=teachers.record)
    if config.distill_from != teachers.record:
        raise TrainerError("the teacher models given are not those the settings name "
                           f"({', '.join(r['file'] for r in config.distill_from)}).")
    return config


def batch_locations(data: TrainingData, rows: torch.Tensor, pool: PseudoNegativePool | None,
                    random: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Where a shard's rows lie, for the teachers: (lon, lat) degrees [n, 2] and raw covariates
    [n, k] (None without) of the records ``rows`` [b], followed by those of the pseudo-negatives
    ``random``: rows of ``pool`` [b'] (int64) or, without a pool, (lon, lat) degrees drawn on the
    sphere [b', 2]."""
    idx = rows.cpu().numpy()
    lonlat = [np.asarray(data.lonlat[idx], dtype=np.float64)]
    env = None if data.env is None else [np.asarray(data.env[idx], dtype=np.float64)]
    if random is not None:
        where = random.cpu().numpy()
        if pool is not None:  # rows of the pre-sampled pool (covariate models, land absences)
            lonlat.append(pool.lonlat[where])
            if env is not None:
                env.append(pool.env[where])
        else:
            lonlat.append(where.astype(np.float64))
    return np.concatenate(lonlat), None if env is None else np.concatenate(env)


def distillation_loss(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows and species of the binary cross-entropy between the student's probabilities
    (from its logits [n, C]) and the teachers' ``targets`` [n, C] in [0, 1]; a 0-d float32 tensor."""
    # binary_cross_entropy_with_logits takes soft targets and computes log-sigmoid from the logit:
    # no log(0) where the student saturates (no eps, unlike the SINR losses' l(p)), and its gradient,
    # sigmoid(s) - t, is zero exactly at the teachers' mean logit
    return F.binary_cross_entropy_with_logits(student_logits.float(), targets, reduction="mean")


def distilled_loss(sinr_loss: torch.Tensor, student_logits: torch.Tensor, targets: torch.Tensor,
                   weight: float) -> torch.Tensor:
    """(1 - ``weight``) x ``sinr_loss`` + ``weight`` x :func:`distillation_loss`; 0-d."""
    return (1.0 - weight) * sinr_loss + weight * distillation_loss(student_logits, targets)
