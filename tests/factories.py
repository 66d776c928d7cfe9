"""Small model bundles for tests (random weights; no training, no shared data).

:func:`fixture_bundle` copies a committed fixture (``tests/data/bundles``) without torch, for tests
that need a bundle (tests/core uses only this: it runs without torch); :func:`make_bundle` builds one
of any size with torch, for the tests of other rooms.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sinr_qgis.core import network
from sinr_qgis.core.bundle import ModelBundle
from tests.data.bundles.make_bundles import HERE as FIXTURE_DIR
from tests.data.bundles.make_bundles import fixture_species


def fixture_bundle(path: Path, kind: str = "sin_cos", n_species: int | None = None, seed: int = 0,
                   covariate_names: tuple[str, ...] = ()) -> ModelBundle:
    """Write a copy of the committed fixture ``tests/data/bundles/<kind>.sinr`` to ``path`` (named
    after its stem, as :func:`make_bundle` names its bundles) and return it loaded back; no torch.

    ``kind``: one of ``make_bundles.FIXTURES`` (sin_cos, sin_cos_env, sin_cos_multi, env_categorical,
    and the wider sin_cos_w32, sin_cos_w64, sin_cos_w256 and env: see there).
    ``n_species``: a new head of that many rows, drawn from ``seed`` as torch inits a linear layer
    (uniform in +-1/sqrt(width)), with species ``sp000``.. as the fixtures have; None keeps the
    fixture's head and species. ``covariate_names``: new names for the covariates (labels only: their
    means, stds and classes are traced into the encoder, so they stay the fixture's)."""
    bundle = ModelBundle.load(FIXTURE_DIR / f"{kind}.sinr")
    bundle.meta["name"] = Path(path).stem
    if n_species is not None:
        bound = 1.0 / math.sqrt(bundle.embedding_dim)
        rng = np.random.default_rng(seed)
        bundle.weights[network.HEAD] = rng.uniform(-bound, bound, (n_species, bundle.embedding_dim)).astype(np.float32)
        bundle.species = fixture_species(n_species)
        bundle.meta["n_species"] = n_species
    if covariate_names:
        covariates = bundle.meta["encoding"]["covariates"]
        if len(covariate_names) != len(covariates):
            raise ValueError(f"fixture {kind} has {len(covariates)} covariates, {len(covariate_names)} names given")
        for entry, name in zip(covariates, covariate_names):
            entry["name"] = name
    bundle.write(path)
    return ModelBundle.load(path)


def make_bundle(path: Path, n_species: int = 5, encoding: str = "sin_cos",
                covariate_names: tuple[str, ...] = (), width: int = 32, depth: int = 2,
                seed: int = 0, env_mean: list[float] | None = None,
                env_std: list[float] | None = None,
                classes: list[list[float] | None] | None = None) -> ModelBundle:
    """Write a random-weight bundle to ``path`` and return it loaded back; ``classes``: per
    covariate, the class codes of a categorical one (one-hot inputs) or None. Needs torch."""
    import torch  # here, not at the top: tests/core imports this module without torch

    from training.export import export_bundle
    from training.model import SinrModel

    torch.manual_seed(seed)
    model = SinrModel(n_species, encoding, len(covariate_names), width=width, depth=depth, classes=classes)
    if covariate_names:
        model.env_mean[:] = torch.tensor(env_mean or [0.0] * len(covariate_names))
        model.env_std[:] = torch.tensor(env_std or [1.0] * len(covariate_names))
    export_bundle(model, fixture_species(n_species), path, name=Path(path).stem, covariate_names=covariate_names)
    return ModelBundle.load(path)
