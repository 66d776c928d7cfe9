"""Small generated model bundles for tests (random weights; no training, no shared data)."""
from __future__ import annotations

from pathlib import Path

import torch

from sinr_qgis.core.bundle import ModelBundle, Species
from training.export import export_bundle
from training.model import SinrModel


def make_bundle(path: Path, n_species: int = 5, encoding: str = "sin_cos",
                covariate_names: tuple[str, ...] = (), width: int = 32, depth: int = 2,
                seed: int = 0, env_mean: list[float] | None = None,
                env_std: list[float] | None = None,
                classes: list[list[float] | None] | None = None) -> ModelBundle:
    """Write a random-weight bundle to ``path`` and return it loaded back; ``classes``: per
    covariate, the class codes of a categorical one (one-hot inputs) or None."""
    torch.manual_seed(seed)
    model = SinrModel(n_species, encoding, len(covariate_names), width=width, depth=depth, classes=classes)
    if covariate_names:
        model.env_mean[:] = torch.tensor(env_mean or [0.0] * len(covariate_names))
        model.env_std[:] = torch.tensor(env_std or [1.0] * len(covariate_names))
    species = [Species(i, f"sp{i:03d}", f"Species number{i}", 10 + i) for i in range(n_species)]
    export_bundle(model, species, path, name=Path(path).stem, covariate_names=covariate_names)
    return ModelBundle.load(path)
