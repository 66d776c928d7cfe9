"""An official-layout SINR checkpoint with the web app's names file, for the installed-plugin walks.

The official models are far too large for a test, so this fits a small network of the official
layout (``ResidualFCNet``: state-dict keys ``feats.*`` and ``class_emb.weight``, a ``params`` dict
with ``class_to_taxa``, ``input_enc``, ``num_filts``, ``depth``) to the shared real records of three
trees with distinct ranges, in the test process (which has torch) before QGIS starts: its maps look
like ranges in the screenshots, and its eval-mode output is the reference the imported model must
reproduce. The names file is the web app's layout: ``id<TAB>name``, no header, one extra taxon the
model lacks (the web app lists more taxa than a checkpoint holds).
"""
from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tests.helpers.official_reference import OfficialResidualFCNet, official_encode, official_params

# (taxon id, Little's scientific name, Little code): a south-eastern pine, a boreal fir, an aspen
# of the north and the west
TAXA = ((41001, "Pinus taeda", "pinutaed"), (41002, "Abies balsamea", "abiebals"),
        (41003, "Populus tremuloides", "poputrem"))
NOT_IN_MODEL = (49999, "Sequoia sempervirens")
WIDTH, DEPTH = 32, 2


@dataclass
class OfficialCheckpoint:
    """The checkpoint file, its names file and the official network it holds (eval mode)."""

    path: Path
    names: Path
    net: OfficialResidualFCNet

    def probabilities(self, lonlat: np.ndarray, taxon_index: int) -> np.ndarray:
        """The official model's output for class ``taxon_index`` at ``lonlat`` [N, 2] (degrees): [N]."""
        with torch.no_grad():
            return self.net(official_encode(np.asarray(lonlat, dtype=np.float32))).numpy()[:, taxon_index]


def _records(shared_data: Path, per_species: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``per_species`` records of each taxon, spread over the file: lon/lat [N, 2], class [N]."""
    codes = {code: i for i, (_taxon, _name, code) in enumerate(TAXA)}
    rows: dict[int, list[tuple[float, float]]] = {i: [] for i in codes.values()}
    with gzip.open(shared_data / "occurrences" / "na_trees.csv.gz", "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["code"] in codes:
                rows[codes[row["code"]]].append((float(row["longitude"]), float(row["latitude"])))
    lonlat, label = [], []
    for i, points in rows.items():
        step = max(1, len(points) // per_species)
        take = points[::step][:per_species]
        lonlat += take
        label += [i] * len(take)
    return np.asarray(lonlat, dtype=np.float32), np.asarray(label, dtype=np.int64)


def fit_official_checkpoint(folder: Path, shared_data: Path, steps: int = 400) -> OfficialCheckpoint:
    """Fit and save ``folder/model_an_full_input_enc_sin_cos.pt`` (the official file name pattern) and
    ``folder/taxa_names.txt``; about two seconds on one CPU core.

    The loss is the paper's "assume negative, full": each record's taxon is a presence there, the
    other taxa absences, and every taxon an absence at a random place on the globe."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    lonlat, label = _records(shared_data)
    net = OfficialResidualFCNet(4, len(TAXA), WIDTH, DEPTH)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x_all, y_all = official_encode(lonlat), torch.from_numpy(label)
    net.train()
    for _ in range(steps):
        idx = torch.from_numpy(rng.integers(0, len(label), 256))
        background = np.c_[rng.uniform(-180, 180, 256), np.degrees(np.arcsin(rng.uniform(-1, 1, 256)))]
        p = net(x_all[idx]).clamp(1e-5, 1 - 1e-5)
        q = net(official_encode(background.astype(np.float32))).clamp(1e-5, 1 - 1e-5)
        target = torch.nn.functional.one_hot(y_all[idx], len(TAXA)).float()
        loss = (-(len(TAXA) * target * p.log() + (1 - target) * (1 - p).log()).mean()
                - (1 - q).log().mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model_an_full_input_enc_sin_cos.pt"
    params = official_params("ResidualFCNet", len(TAXA), num_filts=WIDTH, depth=DEPTH,
                             class_to_taxa=[taxon for taxon, _name, _code in TAXA])
    torch.save({"state_dict": net.state_dict(), "params": params}, path)
    names = folder / "taxa_names.txt"
    names.write_text("".join(f"{taxon}\t{name}\n" for taxon, name, _code in (*TAXA, (*NOT_IN_MODEL, ""))),
                     encoding="utf-8")
    return OfficialCheckpoint(path, names, net)
