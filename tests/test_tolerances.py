"""The test tolerances themselves: the AP bound holds for any scores moved within the tolerance."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from tests.tolerances import F32_EPS, PATH_EPS, ap_atol, f32_atol, logit_atol, prob_atol


@pytest.mark.parametrize("weighted", [False, True])
def test_ap_moves_no_more_than_the_bound(weighted):
    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.3
    scores = np.round(rng.random(400), 2)  # coarse: many ties and near ties
    w = rng.uniform(0.2, 1.0, 400) if weighted else None
    atol = 0.006
    bound = ap_atol(y, scores, w, score_atol=atol)
    base = average_precision_score(y, scores, sample_weight=w)
    moved = [abs(average_precision_score(y, scores + rng.uniform(-atol, atol, 400), sample_weight=w) - base)
             for _ in range(300)]
    # adversarial orders too: every near tie broken for, then against, the presences
    for sign in (1, -1):
        moved.append(abs(average_precision_score(y, scores + sign * atol * np.where(y, 1, -1), sample_weight=w)
                         - base))
    assert 0.01 < max(moved) <= bound < 1


def test_ap_bound_is_zero_for_well_separated_scores():
    y = np.array([1, 0, 1, 0, 0], bool)
    assert ap_atol(y, np.array([5.0, 4.0, 3.0, 2.0, 1.0])) == 1e-12
    assert ap_atol(np.zeros(5, bool), np.arange(5.0)) == 1e-12
    # one presence tied with one absence below a clear leader: at most 1 of 2 presences' precision
    assert ap_atol(np.array([1, 1, 0], bool), np.array([9.0, 1.0, 1.0])) == pytest.approx(0.5 * 1 / 2 + 1e-12)


def test_float32_path_tolerances():
    emb = np.array([[1.0, -2.0], [0.5, 4.0]])
    head = np.array([[1.0, 1.0], [-3.0, 0.5]])
    assert f32_atol(emb) == pytest.approx(PATH_EPS * 4.0)
    assert logit_atol(emb, head) == pytest.approx(PATH_EPS * 4.0 * 3.5)  # largest row sum of |head|
    assert prob_atol(1e-4) == pytest.approx(2.5e-5 + F32_EPS)
