"""training/benchmarks/ensemble.py: the mean-logit ensemble scored in the issue 13 study."""
from __future__ import annotations

import numpy as np

from tests.factories import fixture_bundle
from training.benchmarks import na_trees as nt
from training.benchmarks.ensemble import ensemble_scorer


def test_the_ensemble_is_the_mean_of_its_members_logits_matched_by_species_code(tmp_path):
    a = fixture_bundle(tmp_path / "a.sinr", "sin_cos")
    b = fixture_bundle(tmp_path / "b.sinr", "sin_cos_multi")
    points = np.random.default_rng(0).uniform([-180, -90], [180, 90], (50, 2))
    shared = {s.code for s in b.species}
    codes = [s.code for s in a.species if s.code in shared][::-1]  # any order of the species asked for
    assert len(codes) >= 3
    want = (np.asarray(nt.bundle_scorer(a)(points, codes), np.float64)
            + np.asarray(nt.bundle_scorer(b)(points, codes), np.float64)) / 2
    got = ensemble_scorer([a, b])(points, codes)
    assert got.shape == (50, len(codes))
    np.testing.assert_array_equal(got, want)  # the same float32 logits, averaged in float64 the same way
    np.testing.assert_array_equal(ensemble_scorer([a, a])(points, codes), nt.bundle_scorer(a)(points, codes))
