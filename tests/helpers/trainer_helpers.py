"""Small training data and settings for the trainer tests (three species in three boxes)."""
from __future__ import annotations

import numpy as np

from training.data import TrainingData
from training.trainer import TrainConfig


def synthetic(n_per: int = 300, seed: int = 0) -> TrainingData:
    """Three species in three separate boxes."""
    rng = np.random.default_rng(seed)
    boxes = [(-100, -90, 30, 40), (0, 10, 40, 50), (120, 130, -30, -20)]
    lon = np.concatenate([rng.uniform(a, b, n_per) for a, b, _, _ in boxes])
    lat = np.concatenate([rng.uniform(c, d, n_per) for _, _, c, d in boxes])
    sp = np.repeat(np.arange(3), n_per)
    return TrainingData(lonlat=np.c_[lon, lat].astype(np.float32), species=sp, codes=["a", "b", "c"],
                        names=["A", "B", "C"])


def small_config(**kw) -> TrainConfig:
    # lambda = 2048 is tuned for thousands of species; with 3 it would call every species present.
    # fp32 pinned: the tests compare trained numbers, which bf16 autocast (the CLI's "auto" on AMX
    # CPUs) would change
    base = {"epochs": 2, "batch_size": 128, "width": 32, "depth": 2, "lr": 2e-3, "seed": 3, "pos_weight": 3.0,
            "precision": "fp32"}
    return TrainConfig(**(base | kw))
