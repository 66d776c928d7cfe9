"""The official SINR checkpoint layout and networks, written from their published structure (no
official code), for the import tests: a random checkpoint, the ResidualFCNet and LinNet, their input."""
from __future__ import annotations

import collections
import math
from pathlib import Path

import numpy as np
import torch

W, DEPTH, TAXA = 32, 3, [3017, 48484, 12, 777]


def official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The official ResidualFCNet layout: feats = Sequential(Linear, ReLU, ResLayer x depth)."""
    g = torch.Generator().manual_seed(seed)
    st = {"feats.0.weight": torch.randn(W, 4, generator=g), "feats.0.bias": torch.randn(W, generator=g)}
    for i in range(DEPTH):
        for lin in ("w1", "w2"):
            st[f"feats.{i + 2}.{lin}.weight"] = torch.randn(W, W, generator=g) * 0.2
            st[f"feats.{i + 2}.{lin}.bias"] = torch.randn(W, generator=g) * 0.2
    st["class_emb.weight"] = torch.randn(len(TAXA), W, generator=g)
    return st


def write_checkpoint(path: Path, state=None, **params) -> Path:
    p = {"class_to_taxa": TAXA, "input_enc": "sin_cos", "num_filts": W, "depth": DEPTH,
         "num_classes": len(TAXA), "input_dim": 4, "loss": "an_full"} | params
    torch.save({"state_dict": collections.OrderedDict(state or official_state()), "params": p}, path)
    return path


# Attribute names are those the official code gives (feats, class_emb, w1, w2), so their
# state_dict() is a checkpoint's state_dict key for key, and strict loading proves the layout.
class OfficialResLayer(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.nonlin1, self.nonlin2 = torch.nn.ReLU(), torch.nn.ReLU()
        self.dropout1 = torch.nn.Dropout()
        self.w1, self.w2 = torch.nn.Linear(width, width), torch.nn.Linear(width, width)

    def forward(self, x):
        return x + self.nonlin2(self.w2(self.dropout1(self.nonlin1(self.w1(x)))))


class OfficialResidualFCNet(torch.nn.Module):
    def __init__(self, d_in: int, n_classes: int, width: int, depth: int) -> None:
        super().__init__()
        self.class_emb = torch.nn.Linear(width, n_classes, bias=False)
        self.feats = torch.nn.Sequential(torch.nn.Linear(d_in, width), torch.nn.ReLU(),
                                         *[OfficialResLayer(width) for _ in range(depth)])

    def forward(self, x):
        return torch.sigmoid(self.class_emb(self.feats(x)))


class OfficialLinNet(torch.nn.Module):
    def __init__(self, d_in: int, n_classes: int) -> None:
        super().__init__()
        self.class_emb = torch.nn.Linear(d_in, n_classes, bias=False)
        self.feats = torch.nn.Identity()

    def forward(self, x):
        return torch.sigmoid(self.class_emb(self.feats(x)))


def official_encode(lonlat: np.ndarray) -> torch.Tensor:
    """The official 'sin_cos' input: lon/180 and lat/90, then [sin(pi x), cos(pi x)] concatenated."""
    x = torch.from_numpy(lonlat.copy()) / torch.tensor([180.0, 90.0])
    return torch.cat([torch.sin(math.pi * x), torch.cos(math.pi * x)], 1)


def official_params(model: str, n_classes: int, **kw) -> dict:
    # the official defaults stay in params whatever the model (a LinNet still says depth 4, 256 filters)
    return {"device": "cuda", "model": model, "num_filts": 256, "depth": 4, "input_enc": "sin_cos",
            "loss": "an_full", "input_dim": 4, "num_classes": n_classes,
            "class_to_taxa": list(range(1001, 1001 + n_classes))} | kw
