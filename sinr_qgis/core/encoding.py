"""Location encodings: the single source of truth for training (torch) and inference (numpy).

Every function takes an array module ``xp`` (``numpy`` or ``torch``) so the very same formula
runs in the trainer, in the exported ONNX graph (traced from torch) and in the numpy backend.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

ENCODINGS = ("sin_cos", "env", "sin_cos_env")
COORD_DIM = 4


def sin_cos(lonlat: Any, xp: Any = np) -> Any:
    """SINR's 4-d "wrap" encoding of (lon, lat) degrees, shape [N, 2] -> [N, 4].

    Order and normalisation as the paper: lon/180 and lat/90, then
    [sin(pi*lon_n), sin(pi*lat_n), cos(pi*lon_n), cos(pi*lat_n)]. Longitude is periodic, so
    the dateline is seamless.
    """
    lon = lonlat[:, 0] * (math.pi / 180.0)
    lat = lonlat[:, 1] * (math.pi / 90.0)
    return xp.stack([xp.sin(lon), xp.sin(lat), xp.cos(lon), xp.cos(lat)], 1)


def standardise_env(env: Any, mean: Any, std: Any, xp: Any = np) -> Any:
    """Raw covariate values [N, k] -> z-scores; missing values (NaN) become 0 (the mean)."""
    z = (env - mean) / std
    return xp.where(xp.isnan(z), xp.zeros_like(z), z)


def encode(encoding: str, lonlat: Any, env: Any = None, mean: Any = None, std: Any = None,
           xp: Any = np) -> Any:
    """Model input features for ``encoding`` (one of ``ENCODINGS``)."""
    if encoding == "sin_cos":
        return sin_cos(lonlat, xp)
    if env is None:
        raise ValueError(f"encoding {encoding!r} needs covariate values")
    z = standardise_env(env, mean, std, xp)
    if encoding == "env":
        return z
    if encoding == "sin_cos_env":
        return xp.concatenate([sin_cos(lonlat, xp), z], 1)
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")


def input_dim(encoding: str, n_covariates: int = 0) -> int:
    """Number of model input features for an encoding."""
    return {"sin_cos": COORD_DIM, "env": n_covariates,
            "sin_cos_env": COORD_DIM + n_covariates}[encoding]
