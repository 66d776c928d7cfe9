"""Make the tiny committed fixture bundles (random weights, no data) and their SHA-256 sums.

Run from the repository root after a change of the bundle format or of the export::

    .venv/bin/python -m tests.data.bundles.make_bundles

It writes each ``FIXTURES`` bundle and ``SHA256SUMS`` (``sha256sum -c`` format) beside this file.
Tests in ``tests/core`` load these bundles instead of building one, so they run without torch; the
weights come from a seeded torch init and ``model.json`` ``created`` is fixed, so the members are
the same on every run (the zip's own member times are not, hence the sums are of the files made
once and committed). ``tests/training/test_fixture_bundles.py`` rebuilds them and compares.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sinr_qgis.core.bundle import ModelBundle, Species

HERE = Path(__file__).resolve().parent
SUMS_FILE = "SHA256SUMS"
CREATED = "2026-11-01T00:00:00+00:00"  # fixed, so model.json is the same on every run


@dataclass(frozen=True)
class FixtureSpec:
    """One fixture bundle: its encoding, covariates (name, mean, std, class codes of a
    categorical one or None), number of species and network size."""

    name: str
    encoding: str
    n_species: int
    width: int = 16
    depth: int = 1
    seed: int = 0
    covariates: tuple[tuple[str, float, float, tuple[float, ...] | None], ...] = ()


FIXTURES = (
    FixtureSpec("sin_cos", "sin_cos", n_species=6, seed=3),
    FixtureSpec("sin_cos_env", "sin_cos_env", n_species=4, seed=5,
                covariates=(("elev", 500.0, 300.0, None), ("temp", 10.0, 5.0, None))),
    FixtureSpec("sin_cos_multi", "sin_cos_multi", n_species=4, seed=7),
    # the "env" encoding with a categorical covariate (land cover codes 1, 2, 5: one-hot inputs)
    FixtureSpec("env_categorical", "env", n_species=3, width=8, seed=11,
                covariates=(("temp", 10.0, 5.0, None), ("landcover", 0.0, 1.0, (1.0, 2.0, 5.0)))),
    # Wider networks, each the model a core test built with torch before (same seed and shape, so
    # the same weights): the runtime's (width 64, two blocks; ~136 KB, the largest), the chunking
    # tests' (40 species, width 32, two blocks), the covariate rules' "env" model
    FixtureSpec("sin_cos_w64", "sin_cos", n_species=6, width=64, depth=2, seed=3),
    FixtureSpec("sin_cos_w32", "sin_cos", n_species=40, width=32, depth=2, seed=4),
    FixtureSpec("env", "env", n_species=2, width=32, depth=2, seed=2,
                covariates=(("bio1", 15.0, 8.0, None), ("bio12", 1500.0, 800.0, None))),
    # the paper's width without residual blocks (their 2 MB would not be tiny): the paper-scale
    # tests give it a 47,375-species head (tests.factories.fixture_bundle)
    FixtureSpec("sin_cos_w256", "sin_cos", n_species=2, width=256, depth=0, seed=0),
)


def fixture_species(n: int) -> list[Species]:
    """The test bundles' species in head order: code ``sp000``.., name ``Species number0``..,
    ``n_train`` 10 + index (the fixtures' and ``tests.factories.make_bundle``'s)."""
    from sinr_qgis.core.bundle import Species

    return [Species(i, f"sp{i:03d}", f"Species number{i}", 10 + i) for i in range(n)]


def build_fixture(spec: FixtureSpec) -> ModelBundle:
    """The in-memory ``ModelBundle`` of ``spec`` (seeded torch init; needs torch and onnx)."""
    import torch

    from training.export import build_bundle
    from training.model import SinrModel

    torch.manual_seed(spec.seed)
    classes = [c[3] for c in spec.covariates] or None
    model = SinrModel(spec.n_species, spec.encoding, len(spec.covariates), width=spec.width,
                      depth=spec.depth, classes=classes)
    if spec.covariates:
        model.env_mean[:] = torch.tensor([c[1] for c in spec.covariates])
        model.env_std[:] = torch.tensor([c[2] for c in spec.covariates])
    return build_bundle(model, fixture_species(spec.n_species), name=spec.name,
                        covariate_names=[c[0] for c in spec.covariates], extra={"created": CREATED})


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_sums(folder: Path = HERE) -> dict[str, str]:
    """``SHA256SUMS`` of ``folder`` as {file name: SHA-256 hex}."""
    lines = (folder / SUMS_FILE).read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split(maxsplit=1) for line in lines if line.strip())}


def make_all(folder: Path = HERE) -> dict[str, str]:
    """Write every fixture bundle ``<name>.sinr`` and ``SHA256SUMS`` into ``folder``; returns the sums."""
    sums = {}
    for spec in FIXTURES:
        path = build_fixture(spec).write(folder / f"{spec.name}.sinr")
        sums[path.name] = file_sha256(path)
    (folder / SUMS_FILE).write_text("".join(f"{d}  {n}\n" for n, d in sums.items()), encoding="utf-8")
    return sums


if __name__ == "__main__":
    for name, digest in make_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE).items():
        print(digest, name)
