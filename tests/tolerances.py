"""Tolerances for numbers computed along two float32 paths (backends, batch sizes, threads, CPUs).

The same float32 network evaluated by numpy, onnxruntime or torch, in batches of another size, on
another thread count or on another CPU (AVX2 and AVX-512 kernels sum in different orders, with or
without FMA) agrees only to rounding: float32 has eps = 1.19e-7, and every layer's dot products add
a few eps of the largest magnitude involved. Measured between numpy and onnxruntime: embeddings
differ by 1.6 eps of the largest |embedding| and logits by 2 eps (bundled model, 256 wide, 4 blocks)
to 3.4 eps (a random 16-wide model whose logits nearly cancel) of the largest |logit|.
``PATH_EPS`` = 64 eps leaves a margin of 19x or more for other kernels and CPUs while still catching
any real difference (a wrong weight or encoding moves values by percent, not by 1e-5).

A ranking metric moves only when near-tied scores swap order, so its tolerance is derived from the
scores themselves (:func:`ap_atol`) instead of a fixed number. Pure float64 comparisons of one code
path with another exact computation stay tight in the tests that make them.
"""
from __future__ import annotations

import numpy as np

F32_EPS = float(np.finfo(np.float32).eps)
PATH_EPS = 64 * F32_EPS


def f32_atol(*values: np.ndarray) -> float:
    """Absolute tolerance for float32 values computed along two paths: ``PATH_EPS`` times the
    largest finite magnitude among ``values`` (the reference and, if wanted, the result)."""
    mags = [float(np.nanmax(np.abs(np.asarray(v, dtype=np.float64)))) for v in values]
    return PATH_EPS * max(mags)


def logit_atol(embedding: np.ndarray, head: np.ndarray) -> float:
    """Tolerance for logits ``embedding @ head.T`` [N, S] computed along two paths: each embedding
    value may be off by ``f32_atol(embedding)`` and each of the D products rounds, so a logit moves
    by at most ``PATH_EPS`` x max|embedding| x (largest sum of |head| over a row). Logits of random
    heads cancel (|logit| << that sum), so their own magnitude would be too tight a scale."""
    row_sums = np.abs(np.asarray(head, dtype=np.float64)).reshape(-1, np.shape(head)[-1]).sum(axis=1)
    return f32_atol(embedding) * float(row_sums.max())


def prob_atol(logit_tol: float) -> float:
    """Tolerance for sigmoid probabilities whose logits agree to ``logit_tol``: the sigmoid's slope
    is at most 1/4, plus the float32 rounding of the probability itself (a probability is <= 1)."""
    return 0.25 * logit_tol + F32_EPS


def ap_atol(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None,
            score_atol: float | None = None) -> float:
    """Largest change of the average precision (a fraction) when every score moves by at most
    ``score_atol`` = a (default :func:`f32_atol` of the scores: logits and probabilities alike).

    Score i lies in [s_i - a, s_i + a]; only items whose interval meets a presence p's can
    cross it. Items whose interval lies wholly above p's stay above p, so p's precision A/B has
    B >= w_p + (their weight), and each crossing item q changes it by at most w_q / B. AP weighs p's
    precision by w_p / (total presence weight). Unweighted, two presences crossing leave AP
    unchanged, so only absences count. Ties are covered (sklearn's tied AP lies between the orders
    that break them). Plus 1e-12 for the float64 sums.
    """
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not y.any():
        return 1e-12
    a = f32_atol(s) if score_atol is None else float(score_atol)
    lo, hi = s - a, s + a
    crossing = w if weights is not None else np.where(y, 0.0, w)

    def weight_above(values: np.ndarray) -> np.ndarray:
        """For each p: sum of ``values`` over the items q with lo_q > hi_p."""
        order = np.argsort(lo, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(values[order])])
        return cum[-1] - cum[np.searchsorted(lo[order], hi, side="right")]

    def weight_below(values: np.ndarray) -> np.ndarray:
        """For each p: sum of ``values`` over the items q with hi_q < lo_p."""
        order = np.argsort(hi, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(values[order])])
        return cum[np.searchsorted(hi[order], lo, side="left")]

    # crossing weight of the items whose interval meets p's, p itself excluded
    near = crossing.sum() - weight_above(crossing) - weight_below(crossing) - crossing
    per_presence = w * np.minimum(1.0, np.maximum(near, 0.0) / (w + weight_above(w)))
    return float(per_presence[y].sum() / w[y].sum()) + 1e-12


def bundle_prob_atol(bundle, lonlat, species, env=None) -> float:
    """:func:`prob_atol` for ``bundle``'s probabilities of ``species`` (indices) at ``lonlat``
    [N, 2] degrees (+ raw covariates ``env`` [N, k]): the plugin (onnxruntime, grid blocks, other
    batch sizes) vs any other float32 path to the same numbers."""
    from sinr_qgis.core import network

    emb = network.embed(bundle.weights, bundle.encoding, np.asarray(lonlat, np.float32).reshape(-1, 2),
                        None if env is None else np.asarray(env, np.float32), frequencies=bundle.frequencies,
                        classes=bundle.covariate_classes)
    return prob_atol(logit_atol(emb, bundle.head[np.atleast_1d(species)]))
