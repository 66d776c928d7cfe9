"""A short real training on the shared North American tree data (slow)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from global_land_mask import globe

from sinr_qgis.core.occurrences import read_occurrences
from training.data import prepare_training_data
from training.trainer import TrainConfig, Trainer

HELD_BACK = ("pinutaed", "abiebals", "pinumont")  # south-east, north-east and western species


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a held-back record scores above a random land point."""
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


@pytest.fixture
def one_thread():
    # one thread: on a busy 2-core machine two spinning OpenMP threads can be 20x slower
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_short_training_learns_ranges_of_held_back_records(shared_data, one_thread):
    occ = read_occurrences(shared_data / "occurrences" / "na_trees.csv.gz")
    rng = np.random.default_rng(0)
    held = np.zeros(len(occ.lon), dtype=bool)
    for code in HELD_BACK:
        idx = np.flatnonzero(occ.species == code)
        held[rng.choice(idx, 200, replace=False)] = True
    train_occ = dataclasses.replace(occ, lon=occ.lon[~held], lat=occ.lat[~held], species=occ.species[~held],
                                    source=None if occ.source is None else occ.source[~held])
    data = prepare_training_data(train_occ, cap=1000, seed=0)
    # a smaller network and batch than the paper's, so a few hundred steps take seconds
    cfg = TrainConfig(epochs=3, batch_size=512, width=128, depth=4, seed=0)
    trainer = Trainer(data, cfg)
    losses: list[float] = []
    step = trainer.train_step

    def recording_step(idx):
        loss = step(idx)
        losses.append(float(loss))  # the step's loss tensor, read here on purpose
        return loss

    trainer.train_step = recording_step
    result = trainer.fit(progress=False)
    assert len(losses) >= 200  # a few hundred steps
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:5])
    assert result.epoch_losses[-1] < result.epoch_losses[0]

    # random land points in North America
    pts = np.c_[rng.uniform(-130, -60, 20000), rng.uniform(15, 60, 20000)]
    land = pts[globe.is_land(pts[:, 1], pts[:, 0])][:3000]
    model = result.model.eval()

    def logits(lonlat: np.ndarray, j: int) -> np.ndarray:
        with torch.no_grad():
            emb = model.embed(torch.tensor(lonlat, dtype=torch.float32))
            return (emb @ model.head.weight[j]).numpy()

    for code in HELD_BACK:
        j = data.codes.index(code)
        held_pts = np.c_[occ.lon[held & (occ.species == code)], occ.lat[held & (occ.species == code)]]
        a = auc(logits(held_pts, j), logits(land, j))
        assert a > 0.8, f"{code}: held-back records vs random land points AUC {a:.3f}"
