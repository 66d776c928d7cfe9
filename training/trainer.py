"""The SINR trainer: paper defaults, seeded, fast on CPU and GPU, checkpointed each epoch, resumable.

Speed: all features are encoded once into one tensor on the training device; a batch is an index
slice of a seeded permutation (no DataLoader, no per-item Python); random pseudo-negatives are
drawn on the device (coords) or from a pre-sampled pool of random sphere points with their
covariates (env encodings); positives and negatives go through the network as one concatenated
batch; the step losses stay on the device and are read every ``jsonl_every`` steps (no host
round trip per step). On the CPU dropout uses a mask built from random bits (same distribution as
``nn.Dropout``, several times faster than torch's Bernoulli sampler: ``training/dropout.py``).

Randomness is drawn from streams seeded by (seed, epoch), so an epoch is the same whatever the
device, the number of processes or where a ``--resume`` started: the permutation (on the CPU,
shared by all processes), the pseudo-negatives and the dropout masks (drawn for the whole batch by
every process, each taking its shard's rows) and, per process, the SLDS losses' draws.

Several processes (``training.distributed``, under torchrun): each epoch's permutation is cut
into the single-process batches and each batch into one disjoint shard per process, so the global
batch is ``batch_size`` whatever the number of processes; DistributedDataParallel all-reduces the
gradients, each shard's loss weighted so that their average is the whole batch's gradient; the
step losses are summed over the processes; rank 0 alone logs and writes checkpoints. On the CPU
the processes read the shared memory-mapped records and encode each batch (pre-encoded features
would be one more copy of the data per process).

JSON-lines progress (``jsonl`` stream): the ``start``, ``step`` and ``epoch`` events of
``sinr_qgis/core/training/events.py``, where every event of the CLI is defined.
"""
from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sinr_qgis.core.encoding import uses_covariates
from sinr_qgis.core.errors import CancelledError
from sinr_qgis.core.training.defaults import NEGATIVES, PAPER_RECIPE, PSEUDO_NEGATIVES
from sinr_qgis.core.training.events import write_event

from .checkpoint import read_checkpoint, write_checkpoint
from .data import TrainingData, sphere_lonlat
from .distill import TeacherRecord, Teachers, batch_locations, bind_teachers, check_resumed_teachers, distilled_loss
from .distributed import SINGLE, DistEnv, DistributedError, leader_made
from .dropout import set_dropout_rows, use_fast_dropout
from .errors import TrainerError
from .losses import NEEDS_RANDOM, get_loss
from .model import SinrModel
from .negatives import PseudoNegativePool, SourceNegatives, pseudo_negative_pool
from .progress import ProgressBar

PRECISIONS = ("fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
DEVICES = ("auto", "cpu", "cuda", "mps")
# random streams of an epoch (see the module docstring)
PERMUTATION_STREAM, NEGATIVES_STREAM, DROPOUT_STREAM, LOSS_STREAM = range(4)


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 natively (AMX or AVX512-BF16; Linux /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_device(name: str, dist: DistEnv = SINGLE) -> torch.device:
    """The training device for ``--device`` ``name`` (one of ``DEVICES``).

    ``auto``: CUDA, then MPS (one process only: it has no process-group backend), then the CPU.
    Under torchrun each process of a machine takes the GPU of its ``LOCAL_RANK``. Raises
    ``TrainerError`` when the device asked for is not there.
    """
    if name not in DEVICES:
        raise TrainerError(f"device must be one of {', '.join(DEVICES)}, not {name!r}.")
    mps = torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if mps and not dist.is_distributed else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            build = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise TrainerError(f"--device cuda: PyTorch sees no CUDA GPU (torch {torch.__version__}, {build}); "
                                "use --device cpu, or auto to take a GPU only where there is one.")
        n = torch.cuda.device_count()
        if dist.local_rank >= n:
            raise TrainerError(f"--device cuda: process {dist.local_rank} of this machine has no GPU of its own "
                                f"({n} visible); start at most {n} processes per machine (--nproc_per_node).")
        return torch.device("cuda", dist.local_rank)
    if name == "mps":
        if not mps:
            raise TrainerError("--device mps: PyTorch sees no Apple GPU (MPS); use --device cpu or auto.")
        if dist.is_distributed:
            raise TrainerError("--device mps trains in one process: run it without torchrun, or use --device cpu.")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device | str = "cpu") -> str:
    """The precision for ``--precision`` ``name`` on ``device``; ``auto``:

    - CPU: ``bf16`` where it has native bfloat16 matrix units, else ``fp32``. bf16 autocast trains
      about 2x faster there with the same benchmark quality (measured: 46.90 / 31.77 MAP against
      46.62 / 31.34 in fp32, paper recipe); elsewhere it would be slower.
    - CUDA: ``bf16`` where the GPU has it (Ampere and later), else ``fp16`` (with loss scaling).
    - MPS: ``fp32`` (the precision its kernels are checked in).

    Raises ``TrainerError`` for a precision the device cannot run.
    """
    kind = torch.device(device).type
    if name == "auto":
        if kind == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if kind == "cpu" and cpu_has_native_bf16() and torch.backends.mkldnn.is_available():
            return "bf16"
        return "fp32"
    if name not in PRECISIONS:
        raise TrainerError(f"precision must be one of {', '.join(PRECISIONS)}, not {name!r}.")
    if name == "fp16" and kind == "cpu":
        raise TrainerError("--precision fp16 needs a GPU (--device cuda or mps); on the CPU use bf16 or fp32.")
    if name == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise TrainerError("this GPU has no bfloat16 arithmetic: use --precision fp16 or auto.")
    return name


def stream_seed(seed: int, epoch: int, stream: int, rank: int = 0) -> int:
    """The seed of random ``stream`` in 0-based ``epoch`` (of process ``rank``): independent streams
    from one ``seed`` (numpy's SeedSequence), the same on every device and in every process."""
    words = np.random.SeedSequence([seed % 2**63, epoch, stream, rank]).generate_state(2, np.uint32)
    return int(words[0]) << 32 | int(words[1])


def shard_bounds(n: int, world: int, rank: int) -> tuple[int, int]:
    """[lo, hi) of process ``rank``'s shard of a batch of ``n``: ``world`` contiguous, disjoint
    shards covering the batch, their sizes differing by at most one."""
    q, r = divmod(n, world)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (rank < r)


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint and the bundle); the
    defaults are the paper's recipe (``core.training.defaults.PAPER_RECIPE``)."""

    loss: str = PAPER_RECIPE["loss"]
    cap: int = PAPER_RECIPE["cap"]
    epochs: int = PAPER_RECIPE["epochs"]
    batch_size: int = PAPER_RECIPE["batch_size"]
    lr: float = PAPER_RECIPE["lr"]
    lr_decay: float = PAPER_RECIPE["lr_decay"]  # ExponentialLR, stepped per epoch
    width: int = PAPER_RECIPE["width"]
    depth: int = PAPER_RECIPE["depth"]
    dropout: float = PAPER_RECIPE["dropout"]
    seed: int = PAPER_RECIPE["seed"]
    pos_weight: float | str = PAPER_RECIPE["pos_weight"]  # or "row": losses.row_pos_weight
    thin_deg: float | None = None
    min_records: int = PAPER_RECIPE["min_records"]
    encoding: str = PAPER_RECIPE["encoding"]
    frequencies: list[int] | None = None  # sin_cos_multi only (None: its default list)
    sh_degree: int | None = None  # spherical_harmonics only (None: its default degree)
    covariates: list[str] = field(default_factory=list)  # raster file names, env encodings only
    # per covariate: the class codes of a categorical one (one-hot inputs), None for a continuous one
    covariate_classes: list[list[float] | None] | None = None
    env_pool: int = 200_000  # random sphere points pre-sampled with covariates (env encodings)
    # "fp32" (the paper), "bf16" or "fp16" (GPUs, with loss scaling): the network's forward under
    # autocast (fp32 master weights, loss in fp32); bf16 is about 2x faster on CPUs with AMX /
    # AVX512-BF16. A device's choice, not the model's: a checkpoint resumes in another precision
    precision: str = "fp32"
    # which negatives a record speaks for at its location (``NEGATIVES``) and where the
    # pseudo-negatives are drawn (``PSEUDO_NEGATIVES``); the paper: all, sphere
    negatives: str = PAPER_RECIPE["negatives"]
    pseudo_negatives: str = PAPER_RECIPE["pseudo_negatives"]
    # knowledge distillation (training/distill.py): the teachers' files and SHA-256 (None: none) and
    # beta, the distillation term's weight in the loss
    distill_from: list[TeacherRecord] | None = None
    distill_weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Every setting as a JSON-ready dict (stored in checkpoints and bundles)."""
        return asdict(self)

    def resume_key(self) -> dict[str, Any]:
        """The settings that must match to continue a checkpoint (``epochs`` may grow; the
        precision follows the device, so a GPU checkpoint resumes on a CPU and back)."""
        d = self.to_dict()
        d.pop("epochs")
        d.pop("precision")
        return d


@dataclass
class FitResult:
    """What one :meth:`Trainer.fit` call produced: the model and its loss per epoch (the plugin's
    :class:`sinr_qgis.core.training.summary.TrainResult` is a whole supervised run)."""

    model: SinrModel
    epoch_losses: list[float]
    seconds: float  # wall time of the epochs run in this call
    steps: int  # optimisation steps run in this call
    samples: int  # positive records processed in this call

    @property
    def final_loss(self) -> float:
        """Mean loss of the last epoch (NaN when no epoch ran)."""
        return self.epoch_losses[-1] if self.epoch_losses else float("nan")

    @property
    def samples_per_s(self) -> float:
        """Positive records per wall-clock second (NaN when no time elapsed)."""
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


def _new_model(data: TrainingData, config: TrainConfig, env_mean: np.ndarray | None,
               env_std: np.ndarray | None) -> SinrModel:
    """A model initialised from ``config.seed`` on the CPU (the same start on every device), with the
    covariate statistics [k] of env encodings and the fast dropout."""
    uses_env = uses_covariates(config.encoding)
    n_cov = data.env.shape[1] if uses_env and data.env is not None else 0
    torch.manual_seed(config.seed)
    model = SinrModel(data.n_species, config.encoding, n_cov, width=config.width,
                      depth=config.depth, dropout=config.dropout, frequencies=config.frequencies,
                      sh_degree=config.sh_degree,
                      classes=config.covariate_classes if uses_env else None)
    if uses_env:
        model.env_mean[:] = torch.as_tensor(np.asarray(env_mean), dtype=torch.float32)
        model.env_std[:] = torch.as_tensor(np.asarray(env_std), dtype=torch.float32)
    return use_fast_dropout(model)


@dataclass
class _FitRun:
    """Where one ``Trainer.fit`` call stands, across its epochs."""

    t0: float  # perf_counter at the start of the call
    total: int  # steps of the whole run, epochs before a resume included
    done_steps: int  # of those, done
    jsonl: IO[str] | None  # rank 0's event stream
    jsonl_every: int
    bar: ProgressBar | None
    steps: int = 0  # run in this call
    samples: int = 0  # positive records processed in this call
    window: list[float] = field(default_factory=list)  # step losses since the last step event
    last: float = float("nan")  # the latest step loss read
    teachers_noted: bool = False  # the teachers' share of the step time was reported


# ---- the trainer -------------------------------------------------------------------------------
class Trainer:
    """Trains a ``SinrModel`` on ``TrainingData`` with ``TrainConfig``.

    For env encodings pass ``env_mean``/``env_std`` (covariate statistics) and ``rand_env``: a
    callable mapping random (lon, lat) points [n, 2] to raw covariates [n, k] (NaN = missing),
    used once to build the pseudo-negative pool where every covariate has a value (a
    ``negatives.CoveredArea``: drawn inside its ``bounds``).
    """

    teacher_seconds: float = 0.0  # the teachers' inference in this process (their share is noted once)
    pool_points: PseudoNegativePool | None = None  # the pool's locations and raw covariates, for the teachers

    def __init__(self, data: TrainingData, config: TrainConfig, *,
                 env_mean: np.ndarray | None = None, env_std: np.ndarray | None = None,
                 rand_env: Callable[[np.ndarray], np.ndarray] | None = None,
                 neg_mask: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 device: str | torch.device = "cpu", dist: DistEnv = SINGLE, teachers: Teachers | None = None) -> None:
        """``device``: where the model, the encoded records and the pseudo-negatives live. ``dist``: this
        process's rank among several (``training.distributed``; its process group started), each passing
        the same ``data`` and ``config``. ``teachers``: models to distil (``training.distill``)."""
        if config.batch_size < 1 or config.epochs < 1:
            raise TrainerError("batch size and epochs must be at least 1.")
        if data.n_records == 0:
            raise TrainerError("no training records.")
        self.config = config = bind_teachers(config, teachers, data.n_species)
        self.teachers = teachers
        self.loss_fn = get_loss(config.loss)
        self.data = data
        self.needs_random = config.loss in NEEDS_RANDOM
        self.device = torch.device(device)
        self.dist = dist
        if config.precision not in PRECISIONS:  # "auto" is resolved before, by resolve_precision
            raise TrainerError(f"precision must be one of {', '.join(PRECISIONS)}, not {config.precision!r}.")
        resolve_precision(config.precision, self.device)  # refuses one this device cannot run
        if config.pseudo_negatives not in PSEUDO_NEGATIVES or config.negatives not in NEGATIVES:
            raise TrainerError(f"pseudo-negatives must be one of {', '.join(PSEUDO_NEGATIVES)} and "
                                f"negatives one of {', '.join(NEGATIVES)}.")
        self.neg_mask = self._negatives_mask(neg_mask)
        uses_env = uses_covariates(config.encoding)
        # (the other processes of a distributed run get the leader's pool: they need no rand_env)
        if uses_env and (data.env is None or env_mean is None or env_std is None
                         or (rand_env is None and dist.is_leader)):
            raise TrainerError(f"encoding {config.encoding!r} needs covariates (--covariates RASTER).")
        self.model = _new_model(data, config, env_mean, env_std)
        # seeded per epoch (_begin_epoch); the pseudo-negatives are drawn on the device
        self.neg_gen = torch.Generator(device=self.device)
        self.loss_gen = torch.Generator(device=self.device)
        # several processes on the CPU encode each batch from the shared records: one feature
        # tensor per process would be one more copy of the data each
        encode_batches = dist.is_distributed and self.device.type == "cpu"

        with torch.no_grad():
            # float32 / int64 records (memory-mapped ones too) are used without a copy
            self.lonlat = torch.as_tensor(data.lonlat, dtype=torch.float32)
            self.env = torch.as_tensor(data.env, dtype=torch.float32) if uses_env else None
            self.features = (None if encode_batches
                             else self.model.features(self.lonlat, self.env).contiguous().to(self.device))
            self.labels = torch.as_tensor(data.species, dtype=torch.int64).to(self.device)
        # pool_info: what drawing the pool took, for the bundle's provenance
        self.rand_pool, self.pool_info = self._pseudo_negative_pool(rand_env if uses_env else None)
        # initialised on the CPU, then moved: the same start on every device
        self.model.to(self.device)
        self.net: nn.Module = self.model  # what the step runs; self.model stays the plain model
        if dist.is_distributed:
            self.net = DistributedDataParallel(self.model,
                                               device_ids=[self.device] if self.device.type == "cuda" else None)
        self.scaler = torch.amp.GradScaler(self.device.type) if config.precision == "fp16" else None
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=config.lr_decay)
        self.epoch = 0  # completed epochs
        self.history: list[float] = []

    def _negatives_mask(self, given: Callable[[torch.Tensor], torch.Tensor] | None
                        ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The batch's neg_mask builder, on the device: ``given``, else (negatives other than
        ``all``) one built from the training records alone (the CLI passes one built from every
        record of the file, see negatives.py)."""
        config, data = self.config, self.data
        if given is None and config.negatives != "all":
            src = data.source
            given = SourceNegatives.build(config.negatives, data.codes, data.lonlat, src,
                                          data.lonlat, np.asarray(data.codes, dtype=object)[data.species], src)
        return given.to(self.device) if isinstance(given, SourceNegatives) else given

    @torch.no_grad()
    def _pseudo_negative_pool(self, rand_env: Callable[[np.ndarray], np.ndarray] | None
                              ) -> tuple[torch.Tensor | None, dict[str, Any]]:
        """The encoded pool of pseudo-negative locations [n, d] on the device (None: drawn on the
        sphere each step instead) and its provenance. Covariate models (``rand_env`` given) draw
        only where every covariate has a value (negatives.pseudo_negative_pool); under several
        processes every one gets the leader's pool."""
        config = self.config
        if not ((uses_covariates(config.encoding) or config.pseudo_negatives == "land") and self.needs_random):
            return None, {}
        pool = leader_made(self.dist, lambda: pseudo_negative_pool(
            config.env_pool, np.random.default_rng(config.seed + 1), config.pseudo_negatives, rand_env))
        self.pool_points = pool if self.teachers is not None else None
        pool_env = None if pool.env is None else torch.as_tensor(pool.env, dtype=torch.float32)
        features = self.model.features(torch.as_tensor(pool.lonlat, dtype=torch.float32), pool_env).contiguous()
        return features.to(self.device), pool.provenance()

    @property
    def steps_per_epoch(self) -> int:
        """Optimisation steps in one pass over the records."""
        return math.ceil(self.data.n_records / self.config.batch_size)

    def random_draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random pseudo-negative locations: their encoded features [n, d] and where they are
        (for the teachers): rows of the pre-sampled pool [n] int64, or (lon, lat) degrees [n, 2]
        drawn area-uniform on the sphere."""
        if self.rand_pool is not None:
            idx = torch.randint(0, len(self.rand_pool), (n,), generator=self.neg_gen, device=self.device)
            return self.rand_pool[idx], idx
        u = torch.rand(n, generator=self.neg_gen, device=self.device)
        v = torch.rand(n, generator=self.neg_gen, device=self.device)
        with torch.no_grad():
            lonlat = sphere_lonlat(u, v, torch)
            return self.model.features(lonlat), lonlat

    def _inputs(self, idx: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded features [b, d] and species [b] of the records ``idx``, on the device."""
        if self.features is not None:
            return self.features[idx], self.labels[idx]
        env = None if self.env is None else self.env[idx]
        return self.model.features(self.lonlat[idx], env), self.labels[idx]

    def train_step(self, idx: torch.Tensor) -> torch.Tensor:
        """One optimisation step on the batch ``idx`` (record indices [B] on the device), of which
        this process takes its shard. Returns this process's share of the batch loss, 0-d on the
        device, without waiting for it (summed over the processes: the batch loss)."""
        world = self.dist.world_size
        lo, hi = shard_bounds(len(idx), world, self.dist.rank)
        # each process's loss is a mean over its shard and DDP averages the gradients: weighting
        # a shard by its share of the batch makes that average the whole batch's gradient
        weight = (hi - lo) * world / len(idx)
        if hi == lo:  # a last batch with fewer records than processes: a weightless row keeps DDP in step
            lo, hi = 0, 1
        shard = idx[lo:hi]
        b = hi - lo
        x_pos, y = self._inputs(shard)
        # the pseudo-negatives of the whole batch, the same in every process: row i of a shard
        # meets the random location it meets in one process
        x, where = x_pos, None
        if self.needs_random:
            x_rand, where = self.random_draw(len(idx))
            x, where = torch.cat([x_pos, x_rand[lo:hi]], 0), where[lo:hi]
        if world > 1:  # this shard's rows of the whole batch's [positives; pseudo-negatives]
            rows = torch.arange(lo, hi, device=self.device)
            rows = torch.cat([rows, rows + len(idx)]) if self.needs_random else rows
            set_dropout_rows(self.model, rows, len(idx) * (2 if self.needs_random else 1))
        amp = AUTOCAST_DTYPES.get(self.config.precision)
        with torch.autocast(self.device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            logits = self.net(x)
        logits = logits.float()
        logits_pos, logits_rand = (logits[:b], logits[b:]) if self.needs_random else (logits, None)
        neg_mask = self.neg_mask(shard) if self.neg_mask is not None else None
        loss = self.loss_fn(logits_pos, logits_rand, y, neg_mask, pos_weight=self.config.pos_weight,
                            generator=self.loss_gen)
        if self.teachers is not None:
            loss = distilled_loss(loss, logits, self._teacher_targets(shard, where), self.config.distill_weight)
        self.optimizer.zero_grad(set_to_none=True)
        weighted = loss * weight if world > 1 else loss
        if self.scaler is None:
            weighted.backward()
            self.optimizer.step()
        else:  # fp16: scaled so that small gradients do not underflow
            self.scaler.scale(weighted).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss.detach() * (weight / world)

    def _teacher_targets(self, shard: torch.Tensor, where: torch.Tensor | None) -> torch.Tensor:
        """The teachers' targets [rows, C] on the device for this shard's rows: its records, then its
        pseudo-negatives (``where``, as ``random_draw`` gives them); the time taken is counted."""
        if self.device.type == "cuda":  # the time counted is the teachers' alone, not the queued GPU work
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        lonlat, env = batch_locations(self.data, shard, self.pool_points, where)
        targets = self.teachers.targets(lonlat, env).to(self.device)
        self.teacher_seconds += time.perf_counter() - t0
        return targets

    def _begin_epoch(self) -> torch.Tensor:
        """Seed the random streams of the coming epoch; its permutation of the records, on the device."""
        seed, epoch, rank = self.config.seed, self.epoch, self.dist.rank
        self.neg_gen.manual_seed(stream_seed(seed, epoch, NEGATIVES_STREAM))
        self.loss_gen.manual_seed(stream_seed(seed, epoch, LOSS_STREAM, rank))
        # dropout draws from the default generator, the same in every process (set_dropout_rows)
        torch.manual_seed(stream_seed(seed, epoch, DROPOUT_STREAM))
        # on the CPU: the same permutation on every device
        perm_gen = torch.Generator().manual_seed(stream_seed(seed, epoch, PERMUTATION_STREAM))
        return torch.randperm(self.data.n_records, generator=perm_gen).to(self.device)

    def _read_losses(self, shares: torch.Tensor) -> list[float]:
        """The step losses whose shares ``shares`` [s] (on the device) this process holds: summed
        over the processes, on the host. Raises ``TrainerError`` for a loss that is not finite."""
        if self.dist.is_distributed:
            tdist.all_reduce(shares)
        values = shares.tolist()
        bad = next((v for v in values if not math.isfinite(v)), None)
        if bad is not None:
            raise TrainerError(f"the loss became {bad} at epoch {self.epoch + 1}; lower the learning rate (--lr).")
        return values

    # ---- checkpoints ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What a checkpoint holds. Tensors keep their device; loading maps them to the CPU, then
        to the device of the trainer that resumes (any device, any number of processes)."""
        state = {"epoch": self.epoch, "config": self.config.to_dict(), "data_fingerprint": self.data.fingerprint(),
                 "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "history": list(self.history)}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_checkpoint(self, path: str | Path) -> None:
        """Continue from the checkpoint at ``path``. Raises ``TrainerError`` when it cannot be read
        (``read_checkpoint``) or was made with other settings or data."""
        p = Path(path)
        ck = read_checkpoint(p)
        # the teachers are read again from their files: one that changed is named
        check_resumed_teachers(ck["config"].get("distill_from"), self.config.distill_from, p.name)
        saved = TrainConfig(**ck["config"]).resume_key()
        now = self.config.resume_key()
        diff = sorted(k for k in now if saved.get(k) != now[k])
        if diff:
            raise TrainerError(f"Checkpoint {p.name} was made with other settings ("
                                + ", ".join(f"{k}: {saved.get(k)!r} vs {now[k]!r}" for k in diff)
                                + "); use the same options or train without --resume.")
        if ck["data_fingerprint"] != self.data.fingerprint():
            raise TrainerError(f"Checkpoint {p.name} was trained on different data; "
                                "use the same data file and options or train without --resume.")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        if self.scaler is not None and "scaler" in ck:  # fp16 on a GPU, after fp16 on a GPU
            self.scaler.load_state_dict(ck["scaler"])
        self.epoch = int(ck["epoch"])
        self.history = [float(v) for v in ck["history"]]

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self, *, checkpoint: str | Path | None = None, progress: bool = True,
            jsonl: IO[str] | None = None, jsonl_every: int = 20,
            should_cancel: Callable[[], bool] | None = None,
            max_steps: int | None = None) -> FitResult:
        """Run the remaining epochs. ``should_cancel`` is checked between steps (raises
        ``CancelledError``; the last epoch checkpoint stays). ``max_steps`` stops early (tests).
        Under several processes every one calls ``fit`` with the same ``jsonl_every`` (the step
        losses are summed over the processes every ``jsonl_every`` steps); rank 0 alone reports
        and writes ``checkpoint``. Raises ``DistributedError`` when another process is lost."""
        try:
            return self._fit(checkpoint, progress, jsonl, jsonl_every, should_cancel, max_steps)
        except RuntimeError as exc:  # a collective whose peer died: gloo and NCCL raise RuntimeError
            if not self.dist.is_distributed:
                raise
            # gloo's text starts with its source line: keep the first sentence after it
            first = (str(exc).strip().splitlines() or [""])[0]
            cause = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0] or type(exc).__name__
            raise DistributedError(
                f"training process {self.dist.rank} of {self.dist.world_size} lost the others ({cause}): one of "
                "them stopped, see its error. No bundle was written; the last completed epoch is in the "
                "checkpoint: fix the cause and rerun with --resume.") from None

    def _fit(self, checkpoint: str | Path | None, progress: bool, jsonl: IO[str] | None, jsonl_every: int,
             should_cancel: Callable[[], bool] | None, max_steps: int | None) -> FitResult:
        cfg = self.config
        spe = self.steps_per_epoch
        total = spe * cfg.epochs
        lead = self.dist.is_leader
        jsonl = jsonl if lead else None
        write_event(jsonl, {"event": "start", "n_records": self.data.n_records, "n_species": self.data.n_species,
                      "epochs": cfg.epochs, "start_epoch": self.epoch + 1, "steps_per_epoch": spe,
                      "steps_total": total, "device": self.device.type, "processes": self.dist.world_size,
                      "config": cfg.to_dict()})
        run = _FitRun(t0=time.perf_counter(), total=total, done_steps=spe * self.epoch, jsonl=jsonl,
                      jsonl_every=jsonl_every, bar=ProgressBar(total) if progress and lead else None)
        self.model.train()
        while self.epoch < cfg.epochs:
            epoch_losses = self._run_epoch(run, should_cancel, max_steps)
            if epoch_losses is None:
                break
            self.epoch += 1
            self.scheduler.step()
            self.history.append(sum(epoch_losses) / len(epoch_losses))
            ck = str(write_checkpoint(self.state(), checkpoint)) if checkpoint is not None and lead else None
            write_event(jsonl, {"event": "epoch", "epoch": self.epoch, "epochs": cfg.epochs,
                          "loss": self.history[-1], "lr": self.optimizer.param_groups[0]["lr"],
                          "progress": run.done_steps / total,
                          "elapsed_s": round(time.perf_counter() - run.t0, 3), "checkpoint": ck})
        self.model.eval()
        return FitResult(model=self.model, epoch_losses=list(self.history),
                           seconds=time.perf_counter() - run.t0, steps=run.steps, samples=run.samples)

    def _run_epoch(self, run: _FitRun, should_cancel: Callable[[], bool] | None,
                   max_steps: int | None) -> list[float] | None:
        """The steps of the coming epoch, reported through ``run``: their losses, or None when
        ``max_steps`` stopped it. Raises ``CancelledError`` when ``should_cancel`` says so."""
        cfg = self.config
        spe = self.steps_per_epoch
        perm = self._begin_epoch()
        shares = torch.zeros(spe, device=self.device)  # step losses, read every jsonl_every steps
        read = 0
        epoch_losses: list[float] = []
        for s in range(spe):
            if should_cancel is not None and should_cancel():
                raise CancelledError("Training cancelled; the last completed epoch is in the checkpoint.")
            idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            shares[s] = self.train_step(idx)
            run.steps += 1
            run.samples += len(idx)
            run.done_steps += 1
            stop = max_steps is not None and run.steps >= max_steps
            if run.done_steps % run.jsonl_every == 0 or s + 1 == spe or stop:  # the same steps in every process
                values = self._read_losses(shares[read:s + 1])
                read = s + 1
                epoch_losses += values
                run.window += values if run.jsonl is not None else []
                run.last = values[-1]
                self._note_teacher_share(run)  # once: reading the losses waited for the device
            elapsed = time.perf_counter() - run.t0
            if run.jsonl is not None and (run.done_steps % run.jsonl_every == 0):
                write_event(run.jsonl, {"event": "step", "epoch": self.epoch + 1, "step": run.done_steps,
                                        "steps_total": run.total, "loss": sum(run.window) / len(run.window),
                                        "progress": run.done_steps / run.total,
                                        "samples_per_s": run.samples / elapsed if elapsed > 0 else None,
                                        "elapsed_s": round(elapsed, 3)})
                run.window = []
            if run.bar is not None:
                run.bar.update(run.done_steps, f"epoch {self.epoch + 1}/{cfg.epochs} loss {run.last:.4f}")
            if stop:
                return None
        return epoch_losses

    def _note_teacher_share(self, run: _FitRun) -> None:
        """Once per ``fit``, on rank 0 with teachers: their inference time per step and its share of
        the step time so far, on stderr and as a ``note`` event."""
        if self.teachers is None or run.teachers_noted or not self.dist.is_leader or run.steps == 0:
            return
        run.teachers_noted = True
        elapsed = time.perf_counter() - run.t0
        # this process's rows of a step: its shard of the records, and as many pseudo-negatives
        rows = -(-min(self.config.batch_size, self.data.n_records) // self.dist.world_size) * (1 + self.needs_random)
        msg = (f"distillation: the teachers' inference takes {1000 * self.teacher_seconds / run.steps:.1f} ms per "
               f"step of about {rows:,} locations, {self.teacher_seconds / elapsed:.0%} of the step time "
               f"(first {run.steps} steps)")
        print(("\n" if run.bar is not None and run.bar.tty else "") + msg, file=sys.stderr)
        write_event(run.jsonl, {"event": "note", "message": msg})

    @torch.no_grad()
    def own_species_probabilities(self, batch: int = 65536) -> np.ndarray:
        """Sigmoid probability of each training record's own species, [N] (eval mode)."""
        self.model.eval()
        out = np.empty(self.data.n_records, dtype=np.float64)
        for i in range(0, self.data.n_records, batch):
            x, y = self._inputs(slice(i, i + batch))
            emb = self.model.encoder(x)
            w = self.model.head.weight[y]
            out[i:i + batch] = torch.sigmoid((emb * w).sum(1)).cpu().numpy()
        return out
