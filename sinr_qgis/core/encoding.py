"""Location encodings: the single source of truth for training (torch) and inference (numpy).

Every function takes an array module ``xp`` (``numpy`` or ``torch``) so the very same formula
runs in the trainer, in the exported ONNX graph (traced from torch) and in the numpy backend.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

ENCODINGS = ("sin_cos", "env", "sin_cos_env", "sin_cos_multi")
COVARIATE_ENCODINGS = ("env", "sin_cos_env")  # the encodings that read covariate rasters
COORD_DIM = 4
# sin_cos_multi's default frequencies: wavelengths 360 deg .. 11.25 deg of longitude
DEFAULT_FREQUENCIES = (1, 2, 4, 8, 16, 32)


def sin_cos(lonlat: Any, xp: Any = np) -> Any:
    """SINR's 4-d "wrap" encoding of (lon, lat) degrees, shape [N, 2] -> [N, 4].

    Order and normalisation as the paper: lon/180 and lat/90, then
    [sin(pi*lon_n), sin(pi*lat_n), cos(pi*lon_n), cos(pi*lat_n)]. Longitude is periodic, so
    the dateline is seamless.
    """
    lon = lonlat[:, 0] * (math.pi / 180.0)
    lat = lonlat[:, 1] * (math.pi / 90.0)
    return xp.stack([xp.sin(lon), xp.sin(lat), xp.cos(lon), xp.cos(lat)], 1)


def sin_cos_multi(lonlat: Any, frequencies: Sequence[int] = DEFAULT_FREQUENCIES, xp: Any = np) -> Any:
    """Multi-frequency (Fourier-feature) encoding, [N, 2] degrees -> [N, 4 * len(frequencies)].

    For each integer frequency k, in the given order: [sin(k*pi*lon_n), sin(k*pi*lat_n),
    cos(k*pi*lon_n), cos(k*pi*lat_n)] with lon_n = lon/180, lat_n = lat/90. The k = 1 block is
    the paper's 4-d ``sin_cos``; higher k let the network draw structure finer than the globe-scale
    sinusoid, which is almost linear across a continent. Integer k keep the dateline seamless.
    ``k * x_n`` is reduced to [0, 2) exactly (floor arithmetic on float32 is exact) before
    the sine, so 180 and -180 give identical features and backends agree at high k.
    """
    lon_n = lonlat[:, 0] / 180.0
    lat_n = lonlat[:, 1] / 90.0
    cols = []
    for k in frequencies:
        a = _mod2(lon_n * float(k), xp) * math.pi
        b = _mod2(lat_n * float(k), xp) * math.pi
        cols += [xp.sin(a), xp.sin(b), xp.cos(a), xp.cos(b)]
    return xp.stack(cols, 1)


def _mod2(t: Any, xp: Any) -> Any:
    """t mod 2 in [0, 2), written with floor so that numpy, torch and the ONNX graph agree."""
    return t - 2.0 * xp.floor(t * 0.5)


def check_frequencies(frequencies: Sequence[Any]) -> tuple[int, ...]:
    """A validated ``sin_cos_multi`` frequency list: positive integers, no repeats.

    Raises ValueError saying what is wrong (non-integer frequencies would break the dateline).
    """
    try:
        out = tuple(int(k) for k in frequencies)
        if any(float(k) != int(k) for k in frequencies):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"frequencies must be whole numbers (e.g. 1,2,4,8), got {list(frequencies)!r}") from None
    if not out or min(out) < 1 or len(set(out)) != len(out):
        raise ValueError(f"frequencies must be distinct whole numbers >= 1, got {list(frequencies)!r}")
    return out


def powers_of_two(n: int) -> tuple[int, ...]:
    """The frequencies 1, 2, 4, ..., 2**(n-1)."""
    if n < 1:
        raise ValueError(f"the number of frequencies must be at least 1, got {n}")
    return tuple(2 ** i for i in range(n))


def uses_covariates(encoding: str) -> bool:
    """Whether an encoding reads covariate (environmental) values."""
    return encoding in COVARIATE_ENCODINGS


def standardise_env(env: Any, mean: Any, std: Any, xp: Any = np) -> Any:
    """Raw covariate values [N, k] -> z-scores; missing values (NaN) become 0 (the mean)."""
    z = (env - mean) / std
    return xp.where(xp.isnan(z), xp.zeros_like(z), z)


def one_hot(codes: Any, classes: Any, xp: Any = np) -> Any:
    """Class codes [N, 1] -> float [N, C] (the dtype of ``codes``): column c is 1 where the code
    equals ``classes[c]`` (float32 [C]: a sequence, numpy array or torch tensor), else 0. A code
    that is none of ``classes`` (a class unseen in training) or NaN gives a row of zeros."""
    if isinstance(classes, (list, tuple)):
        classes = xp.asarray(np.asarray(classes, dtype=np.float32))
    hit = codes == classes  # exact: class codes are float32 copies of one raster's cell values
    return xp.where(hit, xp.ones_like(codes), xp.zeros_like(codes))


def encode_covariates(env: Any, mean: Any, std: Any, classes: Sequence[Any] | None = None,
                      xp: Any = np) -> Any:
    """Raw covariate values [N, k] -> model features [N, F], covariate by covariate in order: a
    continuous covariate gives its z-score (:func:`standardise_env`), a categorical one
    (``classes[j]`` not None: its class codes) its one-hot columns (:func:`one_hot`), so
    F = (continuous covariates) + (classes of the categorical ones). ``classes`` None (or all
    None): every covariate is continuous, the formula of bundles without categorical covariates."""
    if classes is None or all(c is None for c in classes):
        return standardise_env(env, mean, std, xp)
    cols = []
    for j, cls in enumerate(classes):
        x = env[:, j:j + 1]
        cols.append(standardise_env(x, mean[j:j + 1], std[j:j + 1], xp) if cls is None else one_hot(x, cls, xp))
    return xp.concatenate(cols, 1)


def covariate_features(n_covariates: int, classes: Sequence[Sequence[float] | None] | None = None) -> int:
    """How many model input features ``n_covariates`` covariates give: one per continuous
    covariate, one per class of a categorical one (``classes``: per covariate, None or its classes)."""
    if classes is None:
        return n_covariates
    if len(classes) != n_covariates:
        raise ValueError(f"{len(classes)} class lists for {n_covariates} covariates")
    return sum(1 if c is None else len(c) for c in classes)


def encode(encoding: str, lonlat: Any, env: Any = None, mean: Any = None, std: Any = None,
           xp: Any = np, frequencies: Sequence[int] | None = None,
           classes: Sequence[Any] | None = None) -> Any:
    """Model input features for ``encoding`` (one of ``ENCODINGS``); ``frequencies`` is used by
    ``sin_cos_multi`` only (None: ``DEFAULT_FREQUENCIES``), ``classes`` (per covariate: None, or the
    class codes of a categorical covariate) by the covariate encodings (:func:`encode_covariates`)."""
    if encoding == "sin_cos":
        return sin_cos(lonlat, xp)
    if encoding == "sin_cos_multi":
        return sin_cos_multi(lonlat, DEFAULT_FREQUENCIES if frequencies is None else frequencies, xp)
    if env is None:
        raise ValueError(f"encoding {encoding!r} needs covariate values")
    z = encode_covariates(env, mean, std, classes, xp)
    if encoding == "env":
        return z
    if encoding == "sin_cos_env":
        return xp.concatenate([sin_cos(lonlat, xp), z], 1)
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")


def input_dim(encoding: str, n_covariates: int = 0, frequencies: Sequence[int] | None = None) -> int:
    """Number of model input features for an encoding; ``n_covariates``: the covariates' feature
    count (:func:`covariate_features`: the number of covariates when none is categorical)."""
    if encoding == "sin_cos_multi":
        return COORD_DIM * len(DEFAULT_FREQUENCIES if frequencies is None else frequencies)
    return {"sin_cos": COORD_DIM, "env": n_covariates,
            "sin_cos_env": COORD_DIM + n_covariates}[encoding]
