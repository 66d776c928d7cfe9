"""core.metrics against scikit-learn (a test-only dependency) and against known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from sinr_qgis.core import metrics
from tests.tolerances import F32_EPS


def _random_case(seed: int, n: int, decimals: int | None, weighted: bool):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(int)
    y[rng.integers(n)] = 1  # at least one positive
    s = rng.normal(size=n) + 0.8 * y
    if decimals is not None:
        s = np.round(s, decimals)  # many tied scores
    w = rng.uniform(0.1, 3.0, n) if weighted else None
    if weighted:
        w[rng.random(n) < 0.1] = 0.0  # zero weights are dropped, as sklearn does
    return y, s, w


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("decimals", [None, 1, 0])
@pytest.mark.parametrize("weighted", [False, True])
def test_average_precision_matches_sklearn(seed, decimals, weighted):
    y, s, w = _random_case(seed, 300 + 37 * seed, decimals, weighted)
    expected = skm.average_precision_score(y, s, sample_weight=w)
    assert metrics.average_precision(y, s, w) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("weighted", [False, True])
def test_precision_recall_curve_matches_sklearn(seed, weighted):
    y, s, w = _random_case(seed, 200, 1, weighted)
    p, r, t = metrics.precision_recall_curve(y, s, w)
    ep, er, et = skm.precision_recall_curve(y, s, sample_weight=w)
    np.testing.assert_allclose(p, ep, atol=1e-12)
    np.testing.assert_allclose(r, er, atol=1e-12)
    np.testing.assert_array_equal(t, et)


def test_known_average_precision_answers():
    y = np.array([0, 0, 1, 1, 0, 1])
    perfect = y + 0.5 * np.arange(6) / 6
    assert metrics.average_precision(y, perfect) == 1.0
    # inverted: positives have the lowest scores; AP = mean over positives of k/(rank)
    inverted = -perfect
    assert metrics.average_precision(y, inverted) == pytest.approx((1 / 4 + 2 / 5 + 3 / 6) / 3)
    # constant scores: one threshold, precision = prevalence
    assert metrics.average_precision(y, np.full(6, 0.3)) == pytest.approx(0.5)
    # sklearn's documented example
    assert metrics.average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.8333333333)
    # no positives: undefined
    assert math.isnan(metrics.average_precision([0, 0, 0], [0.1, 0.2, 0.3]))


def test_weights_act_as_repeats():
    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.8, 0.3, 0.1])
    w = np.array([2, 1, 3, 1, 0])
    repeated = np.repeat(np.arange(5), w)
    assert metrics.average_precision(y, s, w) == pytest.approx(metrics.average_precision(y[repeated], s[repeated]))


def test_mean_average_precision_skips_nan():
    assert metrics.mean_average_precision({"a": 0.5, "b": float("nan"), "c": 1.0}) == pytest.approx(0.75)
    assert math.isnan(metrics.mean_average_precision({"a": float("nan")}))
    assert math.isnan(metrics.mean_average_precision({}))


def test_threshold_metrics_known_case():
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    s = np.array([0.9, 0.6, 0.6, 0.2, 0.1, 0.05, 0.0, 0.0])
    m = metrics.f1_optimal_threshold(y, s)
    # F1 per candidate: 0.9 -> 2/4, 0.6 -> 4/6, 0.2 -> 4/7, 0.1 -> 6/8 (best), 0.05 -> 6/9, 0 -> 6/11
    assert m.threshold == 0.1 and (m.tp, m.fp, m.fn, m.tn) == (3, 2, 0, 3)
    assert m.precision == pytest.approx(3 / 5)
    assert m.recall == pytest.approx(1.0)
    assert m.f1 == pytest.approx(3 / 4)
    assert m.tss == pytest.approx(1.0 + 3 / 5 - 1)
    assert m.iou == pytest.approx(3 / 5)
    # no presence: no threshold, and ratios are 0, not errors
    none = metrics.f1_optimal_threshold(np.zeros(8, dtype=int), s)
    assert math.isnan(none.threshold) and none.tn == 8
    assert (none.precision, none.recall, none.f1, none.iou, none.tss) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("weighted", [False, True])
def test_f1_optimal_threshold_is_the_best_score(seed, weighted):
    y, s, w = _random_case(seed, 250, 1, weighted)
    best = metrics.f1_optimal_threshold(y, s, w)
    # brute force over every candidate threshold with sklearn's f1
    f1s = {t: skm.f1_score(y, (s >= t).astype(int), sample_weight=w) for t in np.unique(s)}
    top = max(f1s.values())
    assert best.f1 == pytest.approx(top)
    assert best.threshold == max(t for t, v in f1s.items() if np.isclose(v, top))
    # its other scores at that threshold, from sklearn
    pred = (s >= best.threshold).astype(int)
    assert best.precision == pytest.approx(skm.precision_score(y, pred, sample_weight=w, zero_division=0))
    assert best.recall == pytest.approx(skm.recall_score(y, pred, sample_weight=w))
    assert best.iou == pytest.approx(skm.jaccard_score(y, pred, sample_weight=w))
    spec = skm.recall_score(1 - y, 1 - pred, sample_weight=w)
    assert best.tss == pytest.approx(best.recall + spec - 1)


def test_input_validation():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.average_precision([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        metrics.average_precision([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="non-negative"):
        metrics.average_precision([0, 1], [0.1, 0.2], [1, -1])


def test_sigmoid_in_float64_and_float32_without_overflow():
    x = np.linspace(-30, 30, 601)
    # 0.5 + 0.5 tanh(x / 2) is exact to float64's eps in absolute terms (not relative near 0)
    np.testing.assert_allclose(metrics.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=0, atol=4e-16)
    assert float(metrics.sigmoid(0.0)) == 0.5 and metrics.sigmoid(2.0).dtype == np.float64
    with np.errstate(all="raise"):  # no overflow at extreme logits
        p32 = metrics.sigmoid(np.array([-1000, -17, 0, 20, 1000, np.nan], dtype=np.float32), np.float32)
    assert p32.dtype == np.float32
    np.testing.assert_array_equal(p32[[0, 2, 4]], [0.0, 0.5, 1.0])
    # float32 saturates: 0.5 + 0.5 tanh(x / 2) is exactly 1 from logits of about 17.3 (the 0/1 bands' t = 1)
    assert p32[3] == 1.0 and p32[1] == pytest.approx(6e-8, rel=0.01)
    assert np.isnan(p32[5])
    # in place: a block of float32 logits becomes its probabilities without a second array
    block = np.array([[0.0, 2.0]], dtype=np.float32)
    assert metrics.sigmoid(block, np.float32, in_place=True) is block
    np.testing.assert_allclose(block, [[0.5, 1 / (1 + np.exp(-2.0))]], rtol=F32_EPS, atol=0)
