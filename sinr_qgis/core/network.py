"""The SINR location encoder in plain numpy (the fallback when onnxruntime is missing).

Weights come from a bundle's ``weights.npz`` (names below). The forward pass mirrors the torch
``LocationEncoder`` in ``training/model.py`` (the paper code's ``ResidualFCNet``): Linear+ReLU,
then ``depth`` residual blocks h <- h + ReLU(W2 ReLU(W1 h + b1) + b2) (dropout is off at inference).
The products go through :func:`~sinr_qgis.core.blas.matmul_t` (scipy's BLAS): numpy's own product
can be bound to a slow reference BLAS inside QGIS.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .blas import matmul_t
from .encoding import encode

INPUT_W, INPUT_B = "encoder.input.weight", "encoder.input.bias"
HEAD = "head"
ENV_MEAN, ENV_STD = "encoder.env_mean", "encoder.env_std"


def block_keys(i: int) -> tuple[str, str, str, str]:
    """Weight names of residual block ``i``: (w1, b1, w2, b2)."""
    p = f"encoder.blocks.{i}."
    return p + "w1.weight", p + "w1.bias", p + "w2.weight", p + "w2.bias"


def count_blocks(weights: Mapping[str, np.ndarray]) -> int:
    """Number of residual blocks stored in ``weights``."""
    n = 0
    while block_keys(n)[0] in weights:
        n += 1
    return n


def embed_features(weights: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Encoded input features [N, d_in] -> embedding [N, D] (float32, C-contiguous).

    Weights are used as stored ([out, in] float32, C-contiguous, as ``ModelBundle`` loads them):
    each layer is one gemm into a reused buffer, a bias add and a ReLU in place; no operand is
    copied and at most three [N, D] arrays exist at once."""
    h = matmul_t(np.ascontiguousarray(x, dtype=np.float32), weights[INPUT_W])
    h += weights[INPUT_B]
    np.maximum(h, 0, out=h)
    t = t2 = None
    for i in range(count_blocks(weights)):
        w1, b1, w2, b2 = (weights[k] for k in block_keys(i))
        t = matmul_t(h, w1, out=_buffer(t, h.shape[0], w1.shape[0]))
        t += b1
        np.maximum(t, 0, out=t)
        t2 = matmul_t(t, w2, out=_buffer(t2, h.shape[0], w2.shape[0]))
        t2 += b2
        np.maximum(t2, 0, out=t2)
        h += t2
    return h


def _buffer(buf: np.ndarray | None, n: int, m: int) -> np.ndarray:
    """``buf`` when it is [n, m], else a new float32 [n, m] (blocks of one model share their shapes)."""
    return buf if buf is not None and buf.shape == (n, m) else np.empty((n, m), dtype=np.float32)


def embed(weights: Mapping[str, np.ndarray], encoding: str, lonlat: np.ndarray,
          env: np.ndarray | None = None, frequencies: Sequence[int] | None = None,
          classes: Sequence[Sequence[float] | None] | None = None, degree: int | None = None) -> np.ndarray:
    """(lon, lat) degrees [N, 2] (+ raw covariates [N, k]) -> embedding [N, D].

    ``frequencies``: the bundle's ``encoding.frequencies`` (``sin_cos_multi`` only, required:
    a default list of the same length would silently give wrong embeddings); ``degree``: the
    bundle's ``sh_degree`` (``spherical_harmonics`` only; None: the one the input layer's width
    L**2 gives, which ``ModelBundle`` checks against ``model.json``). ``classes``: the bundle's
    ``covariate_classes`` (required when a covariate is categorical; without them the features do
    not fit the input layer: ValueError)."""
    if encoding == "sin_cos_multi" and frequencies is None:
        raise ValueError("encoding 'sin_cos_multi' needs the bundle's frequencies (bundle.frequencies)")
    if encoding == "spherical_harmonics" and degree is None:
        degree = max(1, math.isqrt(weights[INPUT_W].shape[1]))  # a width that is no square fails below
    lonlat = np.asarray(lonlat, dtype=np.float32)
    mean = weights.get(ENV_MEAN)
    std = weights.get(ENV_STD)
    feats = encode(encoding, lonlat, None if env is None else np.asarray(env, np.float32),
                   mean, std, np, frequencies=frequencies, classes=classes, degree=degree)
    if feats.shape[1] != weights[INPUT_W].shape[1]:
        raise ValueError(f"the encoding gives {feats.shape[1]} features, the input layer takes "
                         f"{weights[INPUT_W].shape[1]}: pass the bundle's covariate_classes")
    return embed_features(weights, feats.astype(np.float32, copy=False))
