"""The SINR trainer: paper defaults, seeded, fast on CPU, checkpointed each epoch, resumable.

Speed: all features are encoded once into one tensor; a batch is an index slice of a seeded
permutation (no DataLoader, no per-item Python); random pseudo-negatives are drawn in torch
(coords) or from a pre-sampled pool of random sphere points with their covariates (env
encodings); positives and negatives go through the network as one concatenated batch; dropout
uses a mask built from random bits (same distribution as ``nn.Dropout``, several times faster on
CPU than torch's Bernoulli sampler).

JSON-lines progress (``jsonl`` stream, one JSON object per line, flushed; the QGIS training task
parses these). ``epoch`` is 1-based, ``step`` is the global 1-based step, ``progress`` is 0..1:

- ``{"event": "start", "n_records", "n_species", "epochs", "start_epoch", "steps_per_epoch",
  "steps_total", "config": {...}}`` (``start_epoch`` > 1 after ``--resume``)
- ``{"event": "step", "epoch", "step", "steps_total", "loss", "progress", "samples_per_s",
  "elapsed_s"}`` every ``jsonl_every`` steps (``loss``: mean over the steps since the last one)
- ``{"event": "epoch", "epoch", "epochs", "loss", "lr", "progress", "elapsed_s", "checkpoint"}``
  after each epoch (``loss``: the epoch's mean step loss; ``checkpoint``: path or null)
- the CLI adds ``{"event": "done", "out", "n_species", "final_loss", "elapsed_s", ...}`` after the
  bundle is written, or ``{"event": "error", "message"}`` when it stops on a user error.
"""
from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from sinr_qgis.core.atomic import atomic_path
from sinr_qgis.core.encoding import uses_covariates
from sinr_qgis.core.errors import CancelledError, SinrError

from .data import TrainingData, random_sphere_points, sphere_lonlat
from .losses import NEEDS_RANDOM, get_loss
from .model import SinrModel
from .negatives import NEGATIVES, PSEUDO_NEGATIVES, SourceNegatives, random_land_points

CHECKPOINT_FORMAT = "sinr-qgis-training-checkpoint"
PRECISIONS = ("fp32", "bf16")


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 natively (AMX or AVX512-BF16; Linux /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(name: str) -> str:
    """``auto`` -> ``bf16`` where the CPU has native bfloat16 matrix units, else ``fp32``.

    bf16 autocast trains about 2x faster there with the same benchmark quality (measured:
    46.90 / 31.77 MAP against 46.62 / 31.34 in fp32, paper recipe); elsewhere it would be slower.
    """
    if name == "auto":
        return "bf16" if cpu_has_native_bf16() and torch.backends.mkldnn.is_available() else "fp32"
    return name
CHECKPOINT_VERSION = 1


class TrainingError(SinrError):
    """Training cannot start or resume with the given data, configuration or checkpoint."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint and the bundle)."""

    loss: str = "an_full"
    cap: int = 1000
    epochs: int = 10
    batch_size: int = 2048
    lr: float = 5e-4
    lr_decay: float = 0.98  # ExponentialLR, stepped per epoch
    width: int = 256
    depth: int = 4
    dropout: float = 0.5
    seed: int = 0
    pos_weight: float = 2048.0
    thin_deg: float | None = None
    min_records: int = 1
    encoding: str = "sin_cos"
    frequencies: list[int] | None = None  # sin_cos_multi only (None: its default list)
    covariates: list[str] = field(default_factory=list)  # raster file names, env encodings only
    env_pool: int = 200_000  # random sphere points pre-sampled with covariates (env encodings)
    # "fp32" (the paper) or "bf16": the network's forward under CPU bfloat16 autocast (fp32 master
    # weights, loss in fp32); about 2x faster on CPUs with AMX / AVX512-BF16
    precision: str = "fp32"
    # which negatives a record speaks for at its location (``negatives.NEGATIVES``) and where
    # the pseudo-negatives are drawn (``negatives.PSEUDO_NEGATIVES``); the paper: all, sphere
    negatives: str = "all"
    pseudo_negatives: str = "sphere"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resume_key(self) -> dict[str, Any]:
        """The settings that must match to continue a checkpoint (``epochs`` may grow)."""
        d = self.to_dict()
        d.pop("epochs")
        return d


@dataclass
class TrainResult:
    model: SinrModel
    epoch_losses: list[float]
    seconds: float  # wall time of the epochs run in this call
    steps: int  # optimisation steps run in this call
    samples: int  # positive records processed in this call

    @property
    def final_loss(self) -> float:
        return self.epoch_losses[-1] if self.epoch_losses else float("nan")

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


# ---- fast dropout ------------------------------------------------------------------------------
class BitDropout(nn.Module):
    """``nn.Dropout`` with the keep mask built from the four 16-bit lanes of random 64-bit words.

    Each element is zeroed with probability round(p * 65536) / 65536 and the kept ones are
    scaled by 1 / (1 - p), like ``nn.Dropout``; identity in eval mode. Has no parameters, so a
    model's state dict is unchanged when it replaces ``nn.Dropout``.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        # int16 lane value v is uniform on [-32768, 32767]; keep when v >= threshold
        self._threshold = round(self.p * 65536) - 32768

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0.0:
            return x
        if self.p >= 1.0:
            return torch.zeros_like(x)
        n = x.numel()
        # full-range int64 words: all 64 bits uniform, so every 16-bit lane is (no copy needed)
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
        lanes = words.view(torch.int16)[:n].view_as(x)
        # one float mask with the scale folded in: a single multiply forward and backward
        mask = (lanes >= self._threshold).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * mask


def use_fast_dropout(model: nn.Module) -> nn.Module:
    """Replace every ``nn.Dropout`` of ``model`` by ``BitDropout`` (same p), in place."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Dropout):
            setattr(model, name, BitDropout(child.p))
        else:
            use_fast_dropout(child)
    return model


# ---- progress ----------------------------------------------------------------------------------
class ProgressBar:
    """A small text progress bar on stderr (no tqdm): redrawn in place on a terminal, a line
    every 10 % otherwise."""

    def __init__(self, total: int, stream: IO[str] | None = None, width: int = 30) -> None:
        self.total = max(1, total)
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._last_decile = -1

    def update(self, done: int, text: str = "", force: bool = False) -> None:
        frac = min(1.0, done / self.total)
        now = time.monotonic()
        if self.tty:
            if not force and now - self._last_draw < 0.2 and done < self.total:
                return
            filled = round(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {100 * frac:5.1f}% {done}/{self.total} {text}   ")
            if done >= self.total:
                self.stream.write("\n")
        else:
            decile = int(frac * 10)
            if decile == self._last_decile and not force:
                return
            self._last_decile = decile
            self.stream.write(f"{100 * frac:5.1f}% {done}/{self.total} {text}\n")
        self._last_draw = now
        self.stream.flush()


def _emit(stream: IO[str] | None, obj: dict[str, Any]) -> None:
    if stream is not None:
        stream.write(json.dumps(obj) + "\n")
        stream.flush()


# ---- the trainer -------------------------------------------------------------------------------
class Trainer:
    """Trains a ``SinrModel`` on ``TrainingData`` with ``TrainConfig``.

    For env encodings pass ``env_mean``/``env_std`` (covariate statistics) and ``rand_env``: a
    callable mapping random (lon, lat) points [n, 2] to raw covariates [n, k] (NaN = missing),
    used once to build the pseudo-negative pool.
    """

    def __init__(self, data: TrainingData, config: TrainConfig, *,
                 env_mean: np.ndarray | None = None, env_std: np.ndarray | None = None,
                 rand_env: Callable[[np.ndarray], np.ndarray] | None = None,
                 neg_mask: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if config.batch_size < 1 or config.epochs < 1:
            raise TrainingError("batch size and epochs must be at least 1.")
        if data.n_records == 0:
            raise TrainingError("no training records.")
        self.loss_fn = get_loss(config.loss)
        self.data = data
        self.config = config
        self.needs_random = config.loss in NEEDS_RANDOM
        if config.precision not in PRECISIONS:
            raise TrainingError(f"precision must be one of {', '.join(PRECISIONS)}, not {config.precision!r}.")
        if config.pseudo_negatives not in PSEUDO_NEGATIVES or config.negatives not in NEGATIVES:
            raise TrainingError(f"pseudo-negatives must be one of {', '.join(PSEUDO_NEGATIVES)} and "
                                f"negatives one of {', '.join(NEGATIVES)}.")
        # the batch's neg_mask builder; built from the training records alone unless given
        # (the CLI passes one built from every record of the file, see negatives.py)
        if neg_mask is None and config.negatives != "all":
            src = data.source
            neg_mask = SourceNegatives.build(config.negatives, data.codes, data.lonlat, src,
                                             data.lonlat, np.asarray(data.codes, dtype=object)[data.species], src)
        self.neg_mask = neg_mask
        uses_env = uses_covariates(config.encoding)
        if uses_env and (data.env is None or env_mean is None or env_std is None or rand_env is None):
            raise TrainingError(f"encoding {config.encoding!r} needs covariates (--covariates RASTER).")
        n_cov = data.env.shape[1] if uses_env and data.env is not None else 0

        torch.manual_seed(config.seed)
        self.model = SinrModel(data.n_species, config.encoding, n_cov, width=config.width,
                               depth=config.depth, dropout=config.dropout, frequencies=config.frequencies)
        if uses_env:
            self.model.env_mean[:] = torch.as_tensor(np.asarray(env_mean), dtype=torch.float32)
            self.model.env_std[:] = torch.as_tensor(np.asarray(env_std), dtype=torch.float32)
        use_fast_dropout(self.model)
        self.gen = torch.Generator().manual_seed(config.seed)

        with torch.no_grad():
            lonlat = torch.as_tensor(data.lonlat, dtype=torch.float32)
            env = torch.as_tensor(data.env, dtype=torch.float32) if uses_env else None
            self.features = self.model.features(lonlat, env).contiguous()
            self.labels = torch.as_tensor(data.species, dtype=torch.int64)
            self.rand_pool: torch.Tensor | None = None
            if (uses_env or config.pseudo_negatives == "land") and self.needs_random:
                rng = np.random.default_rng(config.seed + 1)
                pts = (random_land_points(config.env_pool, rng) if config.pseudo_negatives == "land"
                       else random_sphere_points(config.env_pool, rng))
                pool_env = (torch.as_tensor(np.asarray(rand_env(pts)), dtype=torch.float32)
                            if uses_env else None)
                self.rand_pool = self.model.features(torch.as_tensor(pts, dtype=torch.float32),
                                                     pool_env).contiguous()

        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=config.lr_decay)
        self.epoch = 0  # completed epochs
        self.history: list[float] = []

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.data.n_records / self.config.batch_size)

    def random_features(self, n: int) -> torch.Tensor:
        """Encoded features of ``n`` random pseudo-negative locations (area-uniform on the sphere)."""
        if self.rand_pool is not None:
            idx = torch.randint(0, len(self.rand_pool), (n,), generator=self.gen)
            return self.rand_pool[idx]
        u = torch.rand(n, generator=self.gen)
        v = torch.rand(n, generator=self.gen)
        with torch.no_grad():
            return self.model.features(sphere_lonlat(u, v, torch))

    def train_step(self, idx: torch.Tensor) -> float:
        x_pos = self.features[idx]
        y = self.labels[idx]
        b = len(idx)
        x = torch.cat([x_pos, self.random_features(b)], 0) if self.needs_random else x_pos
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
            logits = self.model(x)
        logits = logits.float()
        logits_pos, logits_rand = (logits[:b], logits[b:]) if self.needs_random else (logits, None)
        neg_mask = self.neg_mask(idx) if self.neg_mask is not None else None
        loss = self.loss_fn(logits_pos, logits_rand, y, neg_mask, pos_weight=self.config.pos_weight,
                            generator=self.gen)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    # ---- checkpoints ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": self.epoch,
                "config": self.config.to_dict(), "data_fingerprint": self.data.fingerprint(),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "generator": self.gen.get_state(),
                "torch_rng": torch.get_rng_state(), "history": list(self.history)}

    def save_checkpoint(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)
        return Path(path)

    def load_checkpoint(self, path: str | Path) -> None:
        p = Path(path)
        if not p.is_file():
            raise TrainingError(f"No checkpoint to resume at {p}. Run without --resume first.")
        try:
            ck = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged file in any way torch can report it
            raise TrainingError(f"Checkpoint {p.name} cannot be read ({type(exc).__name__}); "
                                "delete it and train without --resume.") from None
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise TrainingError(f"{p.name} is not a training checkpoint of this trainer.")
        saved = TrainConfig(**ck["config"]).resume_key()
        now = self.config.resume_key()
        diff = sorted(k for k in now if saved.get(k) != now[k])
        if diff:
            raise TrainingError(f"Checkpoint {p.name} was made with other settings ("
                                + ", ".join(f"{k}: {saved.get(k)!r} vs {now[k]!r}" for k in diff)
                                + "); use the same options or train without --resume.")
        if ck["data_fingerprint"] != self.data.fingerprint():
            raise TrainingError(f"Checkpoint {p.name} was trained on different data; "
                                "use the same data file and options or train without --resume.")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        self.epoch = int(ck["epoch"])
        self.history = [float(v) for v in ck["history"]]

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self, *, checkpoint: str | Path | None = None, progress: bool = True,
            jsonl: IO[str] | None = None, jsonl_every: int = 20,
            should_cancel: Callable[[], bool] | None = None,
            max_steps: int | None = None) -> TrainResult:
        """Run the remaining epochs. ``should_cancel`` is checked between steps (raises
        ``CancelledError``; the last epoch checkpoint stays). ``max_steps`` stops early (tests)."""
        cfg = self.config
        spe = self.steps_per_epoch
        total = spe * cfg.epochs
        done_steps = spe * self.epoch
        _emit(jsonl, {"event": "start", "n_records": self.data.n_records, "n_species": self.data.n_species,
                      "epochs": cfg.epochs, "start_epoch": self.epoch + 1, "steps_per_epoch": spe,
                      "steps_total": total, "config": cfg.to_dict()})
        bar = ProgressBar(total) if progress else None
        self.model.train()
        t0 = time.perf_counter()
        steps = samples = 0
        n = self.data.n_records
        window: list[float] = []
        stop = False
        while self.epoch < cfg.epochs and not stop:
            perm = torch.randperm(n, generator=self.gen)
            epoch_loss = 0.0
            epoch_steps = 0
            for s in range(spe):
                if should_cancel is not None and should_cancel():
                    raise CancelledError("Training cancelled; the last completed epoch is in the checkpoint.")
                idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
                loss = self.train_step(idx)
                if not math.isfinite(loss):
                    raise TrainingError(f"the loss became {loss} at epoch {self.epoch + 1}; "
                                        "lower the learning rate (--lr).")
                epoch_loss += loss
                epoch_steps += 1
                window.append(loss)
                steps += 1
                samples += len(idx)
                done_steps += 1
                elapsed = time.perf_counter() - t0
                if jsonl is not None and (done_steps % jsonl_every == 0):
                    _emit(jsonl, {"event": "step", "epoch": self.epoch + 1, "step": done_steps,
                                  "steps_total": total, "loss": sum(window) / len(window),
                                  "progress": done_steps / total,
                                  "samples_per_s": samples / elapsed if elapsed > 0 else None,
                                  "elapsed_s": round(elapsed, 3)})
                    window = []
                if bar is not None:
                    bar.update(done_steps, f"epoch {self.epoch + 1}/{cfg.epochs} loss {loss:.4f}")
                if max_steps is not None and steps >= max_steps:
                    stop = True
                    break
            if stop:
                break
            self.epoch += 1
            self.scheduler.step()
            self.history.append(epoch_loss / max(1, epoch_steps))
            ck = str(self.save_checkpoint(checkpoint)) if checkpoint is not None else None
            _emit(jsonl, {"event": "epoch", "epoch": self.epoch, "epochs": cfg.epochs,
                          "loss": self.history[-1], "lr": self.optimizer.param_groups[0]["lr"],
                          "progress": done_steps / total,
                          "elapsed_s": round(time.perf_counter() - t0, 3), "checkpoint": ck})
        self.model.eval()
        return TrainResult(model=self.model, epoch_losses=list(self.history),
                           seconds=time.perf_counter() - t0, steps=steps, samples=samples)

    @torch.no_grad()
    def own_species_probabilities(self, batch: int = 65536) -> np.ndarray:
        """Sigmoid probability of each training record's own species, [N] (eval mode)."""
        self.model.eval()
        out = np.empty(self.data.n_records, dtype=np.float64)
        for i in range(0, self.data.n_records, batch):
            x = self.features[i:i + batch]
            emb = self.model.encoder(x)
            w = self.model.head.weight[self.labels[i:i + batch]]
            out[i:i + batch] = torch.sigmoid((emb * w).sum(1)).numpy()
        return out
