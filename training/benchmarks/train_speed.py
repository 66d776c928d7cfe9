"""Training speed: our trainer vs a straightforward DataLoader loop, side by side in one run.

    .venv/bin/python -m training.benchmarks.train_speed [--data FILE] [--steps 20] [--rounds 5]

Both loops train the same network (``SinrModel``, paper width/depth/dropout) with the same loss
(AN-full, lambda 2048), batch size (2048 positives + 2048 random pseudo-negatives), optimiser
(Adam 5e-4) and data (the shared NA-trees file, cap 1000 per species), with the same number of
torch threads. The baseline has the reference implementation's structure: a ``Dataset`` whose
``__getitem__`` returns one (features, location, label) item, a shuffling ``DataLoader`` that
collates ``batch_size`` items per step, random sphere locations drawn and encoded per batch,
positives and randoms through the model in one concatenated batch, ``nn.Dropout``.

The machine may be shared, so the two loops run interleaved in rounds (``--steps`` steps each
per round) and the median per-round rate of each is reported; the ratio is of the medians.
Samples are positive training records (the randoms are not counted). "ours bf16" is our
trainer with ``precision="bf16"`` (bfloat16 autocast for the network; the paper trains in fp32);
the CLI's default ``--precision auto`` picks it on CPUs with native bfloat16 (this machine).

Measured 2026-11-27 on the project's 2-core Xeon (AMX, AVX512-BF16; shared with other jobs),
``--steps 10 --rounds 6 --threads 1``, medians: ours fp32 13,165 samples/s, ours bf16 21,649,
DataLoader loop 9,832: 1.34x (fp32) and 2.20x (bf16). In fp32 one step is bound by its matrix
products (about 14 GFLOP per 4,096-row step, run near the core's fp32 peak), which both loops
share; what we remove is the per-item batching, torch's slow Bernoulli dropout and other
elementwise overhead, worth about 1.3-1.5x. With ``--threads 2`` on the oversubscribed machine
both loops were dominated by OpenMP threads spinning on busy cores (steps 5-10x slower, ratios
0.97x / 1.65x): compare only runs made on an idle machine or with one thread.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sinr_qgis.core.encoding import sin_cos
from sinr_qgis.core.occurrences import read_occurrences
from training.data import prepare_training_data, sphere_lonlat
from training.losses import an_full
from training.model import SinrModel
from training.trainer import TrainConfig, Trainer, resolve_precision

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "occurrences" / "na_trees.csv.gz"


class LocationDataset(Dataset):
    """One item per record, as the reference: (encoded features, raw location, species index)."""

    def __init__(self, lonlat: np.ndarray, labels: np.ndarray) -> None:
        self.locs = torch.as_tensor(lonlat, dtype=torch.float32)
        self.feats = sin_cos(self.locs, torch)
        self.labels = torch.as_tensor(labels, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.feats[i, :], self.locs[i, :], self.labels[i]


class DataLoaderLoop:
    """The straightforward loop: iterate a shuffling DataLoader, one optimisation step per batch."""

    def __init__(self, lonlat: np.ndarray, labels: np.ndarray, n_species: int, cfg: TrainConfig,
                 workers: int) -> None:
        torch.manual_seed(cfg.seed)
        self.model = SinrModel(n_species, "sin_cos", width=cfg.width, depth=cfg.depth, dropout=cfg.dropout)
        self.model.train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.loader = DataLoader(LocationDataset(lonlat, labels), batch_size=cfg.batch_size, shuffle=True,
                                 num_workers=workers, drop_last=False, persistent_workers=workers > 0)
        self.pos_weight = cfg.pos_weight
        self._it = iter(self.loader)

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            return next(self._it)

    def run(self, steps: int) -> tuple[int, float]:
        """Run ``steps`` optimisation steps; returns (records processed, wall seconds)."""
        samples = 0
        t0 = time.perf_counter()
        for _ in range(steps):
            feats, _locs, labels = self._next_batch()
            b = len(labels)
            rand = sin_cos(sphere_lonlat(torch.rand(b), torch.rand(b), torch), torch)
            logits = self.model(torch.cat([feats, rand], 0))
            loss = an_full(logits[:b], logits[b:], labels, pos_weight=self.pos_weight)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            samples += b
        return samples, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--steps", type=int, default=20, help="steps per loop per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes for the baseline")
    ap.add_argument("--batch-size", type=int, default=2048)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)

    occ = read_occurrences(a.data)
    data = prepare_training_data(occ, cap=1000, seed=0)
    cfg = TrainConfig(batch_size=a.batch_size, epochs=10**6)
    ours = Trainer(data, cfg)
    ours_bf16 = Trainer(data, TrainConfig(batch_size=a.batch_size, epochs=10**6, precision="bf16"))
    base = DataLoaderLoop(data.lonlat, data.species, data.n_species, cfg, a.workers)
    print(f"data: {Path(a.data).name}, {data.n_records} records, {data.n_species} species; batch "
          f"{cfg.batch_size}; width {cfg.width}, depth {cfg.depth}; loss an_full; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; DataLoader workers {a.workers}", flush=True)
    # warm-up (allocator, first-call overheads) for both
    ours.fit(progress=False, max_steps=2)
    ours_bf16.fit(progress=False, max_steps=2)
    base.run(2)
    rates: dict[str, list[float]] = {"ours": [], "ours_bf16": [], "dataloader": []}
    for r in range(a.rounds):
        res = ours.fit(progress=False, max_steps=a.steps)
        rates["ours"].append(res.samples / res.seconds)
        n, sec = base.run(a.steps)
        rates["dataloader"].append(n / sec)
        res = ours_bf16.fit(progress=False, max_steps=a.steps)
        rates["ours_bf16"].append(res.samples / res.seconds)
        print(f"round {r + 1}: ours fp32 {rates['ours'][-1]:7.0f}  ours bf16 {rates['ours_bf16'][-1]:7.0f}  "
              f"DataLoader loop {rates['dataloader'][-1]:7.0f} samples/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"median samples/s: ours fp32 {med['ours']:.0f}, ours bf16 {med['ours_bf16']:.0f}, "
          f"DataLoader loop (fp32) {med['dataloader']:.0f}")
    print(f"ratio ours fp32 / DataLoader loop: {med['ours'] / med['dataloader']:.2f}x")
    print(f"ratio ours bf16 / DataLoader loop: {med['ours_bf16'] / med['dataloader']:.2f}x")
    default = resolve_precision("auto")
    key = "ours_bf16" if default == "bf16" else "ours"
    print(f"ratio ours (CLI default --precision auto = {default} here) / DataLoader loop: "
          f"{med[key] / med['dataloader']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
