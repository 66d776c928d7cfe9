"""The encodings in numpy: known values, float32 equal to the float64 formula, the dateline is
seamless. (torch and the exported ONNX graph agree with these: tests/training/test_encoding.py.)"""
from __future__ import annotations

import math

import numpy as np
import pytest

from sinr_qgis.core import encoding as enc

K = 3
MEAN = np.array([10.0, -2.0, 500.0], np.float32)
STD = np.array([4.0, 0.5, 250.0], np.float32)


def points(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lonlat = np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)
    lonlat[:4] = [[180, 10], [-180, 10], [180, -60], [-180, -60]]  # the dateline, both sides
    env = (MEAN + STD * rng.normal(size=(n, K))).astype(np.float32)
    env[5, 1] = np.nan  # a missing covariate value
    return lonlat, env


def test_sin_cos_known_values_and_order():
    got = enc.sin_cos(np.array([[90.0, 45.0], [0.0, 0.0], [-90.0, -45.0], [180.0, 90.0]]))
    expected = [[1, 1, 0, 0], [0, 0, 1, 1], [-1, -1, 0, 0], [0, 0, -1, -1]]
    assert np.allclose(got, expected, atol=1e-12)
    assert enc.sin_cos(np.array([[30.0, 20.0]]))[0] == pytest.approx(
        [math.sin(math.pi / 6), math.sin(2 * math.pi * 20 / 180), math.cos(math.pi / 6),
         math.cos(2 * math.pi * 20 / 180)])


@pytest.mark.parametrize("encoding", enc.ENCODINGS)
def test_numpy_float32_agrees_with_the_float64_formula(encoding):
    lonlat, env = points()
    use_env = env if enc.uses_covariates(encoding) else None
    ref = enc.encode(encoding, lonlat.astype(np.float64), None if use_env is None else use_env.astype(np.float64),
                     MEAN.astype(np.float64), STD.astype(np.float64), np)
    np_f32 = enc.encode(encoding, lonlat, use_env, MEAN, STD, np)
    assert ref.shape == (len(lonlat), enc.input_dim(encoding, K))
    assert np.isfinite(np_f32).all()
    # elementwise float32, no sums: the argument's rounding (eps * pi ~ 4e-7), a few ulp of numpy's
    # sin/cos and of the z-scores (standard normal here)
    np.testing.assert_allclose(np_f32, ref, atol=1e-5)
    if use_env is not None:  # the missing value became 0 (the mean)
        col = 1 if encoding == "env" else enc.COORD_DIM + 1
        assert ref[5, col] == 0 and np_f32[5, col] == 0


def test_dateline_is_seamless():
    lonlat = np.array([[180, 10], [-180, 10], [179.9999, -45], [-179.9999, -45]], np.float32)
    f = enc.sin_cos(lonlat)
    np.testing.assert_allclose(f[0], f[1], atol=1e-5)
    np.testing.assert_allclose(f[2], f[3], atol=1e-5)
    # and the encoding does separate genuinely different places
    assert np.abs(f[0] - f[2]).max() > 0.5


def test_unknown_encoding_and_missing_covariates_are_refused():
    with pytest.raises(ValueError, match="covariate"):
        enc.encode("env", np.zeros((1, 2)))
    with pytest.raises(ValueError, match="unknown encoding"):
        enc.encode("bogus", np.zeros((1, 2)), np.zeros((1, 1)), 0, 1)
