"""The committed fixture bundles (tests/data/bundles): intact, as their script describes them, tiny."""
from __future__ import annotations

from sinr_qgis.core.bundle import ModelBundle
from tests.data.bundles.make_bundles import FIXTURES, HERE, SUMS_FILE, file_sha256, fixture_species, read_sums


def test_every_fixture_matches_its_committed_checksum():
    sums = read_sums()
    assert sorted(sums) == sorted(f"{spec.name}.sinr" for spec in FIXTURES)
    assert {name: file_sha256(HERE / name) for name in sums} == sums, (
        f"a fixture bundle changed: re-run `python -m tests.data.bundles.make_bundles` and commit it with {SUMS_FILE}")


def test_every_fixture_loads_as_its_spec_describes_it():
    for spec in FIXTURES:
        b = ModelBundle.load(HERE / f"{spec.name}.sinr")
        assert b.warnings == []  # member sums present and right
        assert (b.name, b.encoding, b.n_species, b.embedding_dim) == (spec.name, spec.encoding, spec.n_species,
                                                                      spec.width)
        assert b.species == fixture_species(spec.n_species)
        assert [(c["name"], c["mean"], c["std"]) for c in b.covariates] == [c[:3] for c in spec.covariates]
        classes = [c[3] for c in spec.covariates]
        assert b.covariate_classes == (classes if any(c is not None for c in classes) else None)
        assert b.meta["created"] == "2026-11-01T00:00:00+00:00"  # fixed: the script's output is reproducible


def test_fixtures_are_a_few_kilobytes():
    sizes = {spec.name: (HERE / f"{spec.name}.sinr").stat().st_size for spec in FIXTURES}
    # the first four (width 16 or less) are a few KB; the wider ones stay small enough to commit
    # (a width-64 network with two blocks is the largest, ~136 KB: its weights are in the bundle twice)
    assert max(sizes[spec.name] for spec in FIXTURES[:4]) < 16_384, sizes
    assert max(sizes.values()) < 140_000 and sum(sizes.values()) < 300_000, sizes
