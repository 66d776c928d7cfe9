"""Range-map metrics: average precision (as scikit-learn defines it) and thresholded scores.

Shared by the plugin's evaluation algorithms and the training benchmarks, so both report the
same numbers. numpy only.

Conventions:
- ``labels`` are 0/1 (or bool) per location, ``scores`` any real numbers where higher means
  "more likely present" (logits or probabilities: AP depends only on their order).
- ``weights`` are optional non-negative sample weights (e.g. cell areas on a lon/lat grid);
  locations with weight 0 are ignored, as scikit-learn does.
- A location is predicted present at threshold ``t`` when ``score >= t`` (as SINR's maps).
- Where a quantity is undefined (AP without any positive location) the result is NaN, so a
  mean over species can skip it. Ratios with an empty denominator (precision when nothing is
  predicted present, ...) are 0, like scikit-learn's ``zero_division=0``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np


def _prepare(labels: np.ndarray, scores: np.ndarray,
             weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length ({y.size} vs {s.size})")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values; mask those locations out first")
    y = y.astype(bool) if y.dtype == bool else (y > 0)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != s.shape:
            raise ValueError(f"weights and scores differ in length ({w.size} vs {s.size})")
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite and non-negative")
        keep = w != 0
        if not keep.all():
            y, s, w = y[keep], s[keep], w[keep]
    return y, s, w


def _binary_curve(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False/true positive totals at each distinct score, highest score first.

    Returns ``(fps, tps, thresholds)``: at index k the (weighted) numbers of negatives and
    positives whose score is >= ``thresholds[k]``. Tied scores form one threshold.
    """
    y, s, w = _prepare(labels, scores, weights)
    order = np.argsort(s, kind="mergesort")[::-1]
    s = s[order]
    y = y[order]
    # index of the last element of each run of equal scores, plus the end of the array
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1] if s.size else np.empty(0, np.int64)
    if w is None:
        tps = np.cumsum(y, dtype=np.float64)[last]
        fps = 1.0 + last - tps
    else:
        w = w[order]
        tps = np.cumsum(y * w, dtype=np.float64)[last]
        fps = np.cumsum(~y * w, dtype=np.float64)[last]
    return fps, tps, s[last]


def precision_recall_curve(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score, as scikit-learn's ``precision_recall_curve``.

    Returns ``(precision, recall, thresholds)`` with thresholds increasing; ``precision`` and
    ``recall`` have one more element, the end point (precision 1, recall 0). Without positives
    recall is all NaN.
    """
    fps, tps, thresholds = _binary_curve(labels, scores, weights)
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    recall = tps / tps[-1] if tps.size and tps[-1] > 0 else np.full_like(tps, np.nan)
    return (np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1])


def average_precision(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Average precision, identical to scikit-learn's ``average_precision_score``.

    AP = sum_k (R_k - R_{k-1}) P_k over the distinct score thresholds (step-wise, no
    interpolation; all locations sharing a score enter together). NaN when there is no
    positive location (scikit-learn returns 0 with a warning there; NaN lets a mean skip it).
    """
    fps, tps, _ = _binary_curve(labels, scores, weights)
    if tps.size == 0 or tps[-1] <= 0:
        return float("nan")
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    # same summation order as scikit-learn (from the lowest threshold up) so the floats agree
    ap = -np.sum(np.diff(np.r_[recall[::-1], 0.0]) * precision[::-1])
    return float(max(0.0, ap))


def ap_undefined_reason(labels: np.ndarray, weights: np.ndarray | None = None, unit: str = "point") -> str | None:
    """Why average precision says nothing about any scores for these reference ``labels``, or None.

    ``labels`` [n] 0/1 of the evaluated locations (those with a score); ``weights`` [n] optional,
    locations of weight 0 do not count (as in :func:`average_precision`); ``unit`` names a location
    in the text ("point", "cell"). AP needs at least one presence *and* one absence: with no
    location it is undefined, with no presence it is 0/0, and with no absence every ranking
    scores 100 %. A single location is always one of these. Every evaluation (the Processing
    algorithms, the dock's Compare, the NA-Trees harness) skips a species by this rule, with this
    text, and leaves it out of MAP.
    """
    y = np.asarray(labels).ravel() > 0
    if weights is not None:
        y = y[np.asarray(weights, dtype=np.float64).ravel() > 0]
    n, n_presence = int(y.size), int(y.sum())
    units = f"{n:,} evaluated {unit}{'' if n == 1 else 's'}"
    if n == 0:
        return f"no {unit} to evaluate (none has both a reference label and a score): AP is undefined"
    if n_presence == 0:
        return f"no presence among its {units}: AP is undefined"
    if n_presence == n:
        return (f"no absence among its {units} (present in every one): AP would be 100 % whatever "
                "the scores, so it says nothing about the model")
    return None


def mean_average_precision(per_species: Mapping[str, float]) -> float:
    """Unweighted mean of per-species AP, skipping NaN (undefined) entries; NaN if none is left."""
    values = np.array([v for v in per_species.values() if v is not None], dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


# ---- thresholded metrics ------------------------------------------------------------------

@dataclass(frozen=True)
class ThresholdMetrics:
    """Binary agreement between a thresholded prediction and reference labels."""

    threshold: float
    precision: float
    recall: float
    f1: float
    tss: float  # true skill statistic: sensitivity + specificity - 1
    iou: float  # intersection over union of predicted and reference presence (Jaccard)
    tp: float
    fp: float
    fn: float
    tn: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def _from_counts(threshold: float, tp: float, fp: float, fn: float, tn: float) -> ThresholdMetrics:
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    return ThresholdMetrics(
        threshold=float(threshold), precision=precision, recall=recall,
        f1=_ratio(2 * tp, 2 * tp + fp + fn), tss=recall + specificity - 1.0,
        iou=_ratio(tp, tp + fp + fn), tp=float(tp), fp=float(fp), fn=float(fn), tn=float(tn))


def f1_optimal_threshold(labels: np.ndarray, scores: np.ndarray,
                         weights: np.ndarray | None = None) -> ThresholdMetrics:
    """The threshold (one of the scores) that maximises F1 against ``labels``, with its metrics.

    Ties in F1 go to the highest threshold (the smallest predicted range). Without positives
    the result has a NaN threshold and zero scores.
    """
    fps, tps, thresholds = _binary_curve(labels, scores, weights)
    if tps.size == 0 or tps[-1] <= 0:
        total_neg = float(fps[-1]) if fps.size else 0.0
        return _from_counts(float("nan"), 0.0, 0.0, 0.0, total_neg)
    f1 = 2 * tps / (tps + fps + tps[-1])  # 2TP / (2TP + FP + FN), FN = P - TP
    k = int(np.argmax(f1))
    tp, fp = float(tps[k]), float(fps[k])
    fn, tn = float(tps[-1] - tp), float(fps[-1] - fp)
    return _from_counts(float(thresholds[k]), tp, fp, fn, tn)


def sigmoid(x: np.ndarray | float, dtype: type[np.floating] = np.float64, *, in_place: bool = False) -> np.ndarray:
    """Probabilities from logits: the logistic function of ``x`` (any shape) in ``dtype`` (float64,
    or float32 for a map's probability bands); NaN stays NaN, +-inf gives 1 and 0.

    Computed as 0.5 + 0.5 tanh(x / 2), which never overflows (``1 / (1 + exp(-x))`` warns below
    about -88 in float32). ``in_place`` writes into ``x`` itself when it already is a ``dtype``
    array, so a large block of logits needs no second array of its size. The one sigmoid of the
    plugin: thresholds, 0/1 bands and reported probabilities all go through it."""
    x = np.asarray(x, dtype=dtype)
    out = x if in_place else np.empty_like(x)
    np.multiply(x, dtype(0.5), out=out)
    np.tanh(out, out=out)
    out *= dtype(0.5)
    out += dtype(0.5)
    return out
