"""Whether a bundle's species head may be stored in float16: its probabilities must stay within
``FLOAT16_TOLERANCE`` (0.001) of the float32 head's.

float16 keeps 11 significant bits, so each head weight moves by at most 2^-11 of itself and a
logit ``embedding . head[i]`` by at most 2^-11 of ``sum |embedding_j head_ij|``; a probability moves
by at most a quarter of its logit's change. Trained SINR heads stay far inside the bound (the
bundled model: see ``tests/training/test_export_float16.py``), but a head with very large weights or
embeddings need not, so the writer measures it instead of assuming it: on ``N_POINTS`` locations
spread evenly over the globe (plus typical covariate values for environmental models), every
species, with the numpy encoder of :mod:`~sinr_qgis.core.network`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import network, runtime
from .blas import matmul_t
from .encoding import uses_covariates
from .errors import BundleError
from .metrics import sigmoid

FLOAT16_TOLERANCE = 1e-3  # the largest probability change allowed by storing the head in float16
N_POINTS = 4096
FLOAT16_MAX = float(np.finfo(np.float16).max)
# bytes per [location, species] value held at once: the logit change, its magnitude, their bool
# test and, where one passes, the logits
_BYTES_PER_VALUE = 4 + 4 + 1 + 4


def sphere_points(n: int, seed: int = 0) -> np.ndarray:
    """``n`` random (lon, lat) degrees [n, 2] float32, uniform over the sphere's area."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(-180.0, 180.0, n)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return np.stack([lon, lat], axis=1).astype(np.float32)


def float16_head_error(bundle: Any, lonlat: np.ndarray | None = None, env: np.ndarray | None = None) -> float:
    """The largest |p(float16 head) - p(float32 head)| over all species of ``bundle`` (a
    ``ModelBundle``) at ``lonlat`` [N, 2] degrees (default: ``N_POINTS`` on the sphere) with raw
    covariates ``env`` [N, k] (default for environmental models: each covariate's mean plus a
    standard normal times its standard deviation; a categorical covariate's random classes).
    ``inf`` when a weight exceeds float16's range.

    Changes under ``FLOAT16_TOLERANCE / 4`` are bounded, not computed (a quarter of the logit's
    change), so a smaller result is an upper bound rather than the exact largest change."""
    head = np.ascontiguousarray(bundle.head, dtype=np.float32)
    if not np.isfinite(head).all() or np.abs(head).max(initial=0.0) > FLOAT16_MAX:
        return float("inf")
    half = head.astype(np.float16).astype(np.float32)
    ll = sphere_points(N_POINTS) if lonlat is None else np.asarray(lonlat, dtype=np.float32)
    if env is None and uses_covariates(bundle.encoding):
        mean = np.asarray(bundle.weights[network.ENV_MEAN], dtype=np.float32)
        std = np.asarray(bundle.weights[network.ENV_STD], dtype=np.float32)
        env = mean + std * np.random.default_rng(1).standard_normal((ll.shape[0], mean.size)).astype(np.float32)
        for j, cls in enumerate(bundle.covariate_classes or []):  # a categorical covariate: its classes
            if cls is not None:
                env[:, j] = np.random.default_rng(2 + j).choice(np.asarray(cls, np.float32), ll.shape[0])
    emb = network.embed(bundle.weights, bundle.encoding, ll, env, bundle.frequencies, bundle.covariate_classes)
    emb = emb[np.isfinite(emb).all(axis=1)]
    delta = half - head  # exact: float16 rounding moves a float32 by less than itself
    # A probability moves by at most a quarter of its logit's change: only entries whose bound
    # could exceed a quarter of the tolerance get the exact sigmoid (a few, for a good head).
    floor = FLOAT16_TOLERANCE / 4
    worst = 0.0
    # locations per product: the runtime's budget of [locations x species] values, whatever the
    # species count (a fixed 256 rows held 157 MB for 47,375 species, and more for larger heads)
    rows = max(1, runtime.SPECIES_BLOCK_BYTES // (_BYTES_PER_VALUE * max(1, head.shape[0])))
    for i in range(0, emb.shape[0], rows):
        e = emb[i:i + rows]
        moved = matmul_t(e, delta)
        size = np.abs(moved)
        worst = max(worst, min(floor, 0.25 * float(size.max(initial=0.0))))
        r, c = np.nonzero(size > 4 * floor)
        del size
        if r.size:
            logit = matmul_t(e, head)[r, c].astype(np.float64)
            exact = np.abs(sigmoid(logit + moved[r, c]) - sigmoid(logit))  # float64: measures the head, not rounding
            worst = max(worst, float(exact.max()))
    return worst


def check_float16_head(bundle: Any) -> float:
    """:func:`float16_head_error` of ``bundle``; raises ``BundleError`` when it exceeds
    ``FLOAT16_TOLERANCE``, saying to keep the head in float32. Returns the error."""
    err = float16_head_error(bundle)
    if not err <= FLOAT16_TOLERANCE:
        raise BundleError(f"Model {bundle.name!r}: storing its species head in float16 would change its "
                          f"probabilities by up to {err:.2g} (more than {FLOAT16_TOLERANCE:g}). Keep the head in "
                          "float32 (leave out the float16 option).")
    return err
