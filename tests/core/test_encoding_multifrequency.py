"""``sin_cos_multi`` in numpy: known values, float32 equal to the float64 formula, the dateline stays
seamless; its k = 1 block is the paper's ``sin_cos``; frequency lists are validated. (torch and the
exported ONNX graph agree with numpy: tests/training/test_encoding.py.)"""
from __future__ import annotations

import math

import numpy as np
import pytest

from sinr_qgis.core import encoding as enc

# not the default list, and up to a 2.8-degree wavelength: a backend that ignored the list, or
# lost precision at high k, would show
FREQS = (1, 3, 16, 128)


def points(n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lonlat = np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)
    lonlat[:6] = [[180, 10], [-180, 10], [0, 90], [0, -90], [-125.3, 24.1], [-66.7, 49.9]]
    return lonlat


def test_known_values_and_layout():
    # lon 45, lat 22.5: k*pi*lon_n = k*pi/4, k*pi*lat_n = k*pi/4
    f = enc.sin_cos_multi(np.array([[45.0, 22.5]]), (1, 2, 4))[0]
    expected = []
    for k in (1, 2, 4):
        a = k * math.pi / 4
        expected += [math.sin(a), math.sin(a), math.cos(a), math.cos(a)]
    np.testing.assert_allclose(f, expected, atol=1e-12)
    assert enc.input_dim("sin_cos_multi", 0, FREQS) == 16
    assert enc.input_dim("sin_cos_multi") == 4 * len(enc.DEFAULT_FREQUENCIES)


def test_first_block_is_the_paper_encoding():
    lonlat = points()
    np.testing.assert_allclose(enc.sin_cos_multi(lonlat, FREQS)[:, :4], enc.sin_cos(lonlat), atol=1e-6)
    np.testing.assert_allclose(enc.sin_cos_multi(lonlat, (1,)), enc.sin_cos(lonlat), atol=1e-6)


def test_numpy_float32_agrees_with_the_float64_formula():
    lonlat = points()
    ref = enc.sin_cos_multi(lonlat.astype(np.float64), FREQS)  # float64 reference from the float32 inputs
    got = enc.encode("sin_cos_multi", lonlat, frequencies=FREQS)
    assert got.shape == (len(lonlat), 16) and got.dtype == np.float32
    # float32 rounding of lon/180 alone moves 128*pi*lon_n by up to ~3e-5 rad
    np.testing.assert_allclose(got, ref, atol=5e-5)


def test_dateline_is_seamless():
    lonlat = np.array([[180, 10], [-180, 10], [179.999, -45], [-179.999, -45], [179.999, -44.99]], np.float32)
    f = enc.encode("sin_cos_multi", lonlat, frequencies=FREQS)
    np.testing.assert_array_equal(f[0], f[1])  # exactly: the reduction mod 2 is exact
    np.testing.assert_allclose(f[2], f[3], atol=1e-2)  # 0.002 degrees apart, across the line
    # the highest frequency does resolve a 0.01 degree step, so the check above is not vacuous
    assert np.abs(f[2] - f[4]).max() > 1e-2


def test_frequency_lists_are_validated():
    assert enc.check_frequencies([1, 2.0, 8]) == (1, 2, 8)
    assert enc.powers_of_two(4) == (1, 2, 4, 8)
    for bad in ([], [0, 1], [1, 1], [1.5], ["x"]):
        with pytest.raises(ValueError, match="frequencies"):
            enc.check_frequencies(bad)
    with pytest.raises(ValueError):
        enc.powers_of_two(0)


def test_only_env_encodings_use_covariates():
    assert [e for e in enc.ENCODINGS if enc.uses_covariates(e)] == ["env", "sin_cos_env"]
