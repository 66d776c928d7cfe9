"""``spherical_harmonics`` in numpy: equal to scipy's complex harmonics in the real, orthonormal
form without the Condon-Shortley phase; orthonormal by quadrature up to the largest degree allowed;
exact at the poles, seamless at the dateline; float32 agrees with float64; degrees are validated.
(torch, the exported ONNX graph and the bundle: tests/training/test_spherical_harmonics.py.)"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import sph_harm

from sinr_qgis.core import encoding as enc
from sinr_qgis.core.bundle import ModelBundle
from tests.tolerances import F32_EPS, f32_atol

L = enc.DEFAULT_SH_DEGREE


def points(n: int = 1000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # area-uniform, so the high latitudes (where the recurrences are hardest) are met too
    lonlat = np.c_[rng.uniform(-180, 180, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))]
    lonlat[:6] = [[180, 10], [-180, 10], [33, 90], [-120, -90], [0, 89.999], [45, 0]]
    return lonlat


def scipy_real(lonlat: np.ndarray, degree: int) -> np.ndarray:
    """The reference: scipy's complex Y_l^m (with the Condon-Shortley phase (-1)^m) turned into the
    real form without it, columns l^2 + l + m."""
    azimuth, polar = np.radians(lonlat[:, 0]), np.radians(90.0 - lonlat[:, 1])
    cols = []
    for ell in range(degree):
        for m in range(-ell, ell + 1):
            y = sph_harm(abs(m), ell, azimuth, polar)
            part = y.real if m >= 0 else y.imag
            cols.append(part if m == 0 else math.sqrt(2.0) * (-1) ** m * part)
    return np.stack(cols, 1)


def test_values_equal_scipy_in_the_real_form():
    lonlat = points()
    got = enc.spherical_harmonics(lonlat, L)
    assert got.shape == (1000, 100) == (len(lonlat), enc.input_dim("spherical_harmonics"))
    # float64 on both sides, but scipy forms sin(colatitude) as sqrt(1 - cos^2), which loses digits
    # next to a pole: 5e-12 at lat 89.999 (where mpmath, 40 digits, agrees with ours to 1e-18)
    np.testing.assert_allclose(got, scipy_real(lonlat, L), atol=1e-10, rtol=0)


def test_closed_forms_of_the_first_degrees():
    # Y_0^0 = 1/(2 sqrt(pi)); Y_1^{-1, 0, 1} = sqrt(3/(4 pi)) (cos lat sin lon, sin lat, cos lat cos lon)
    c = math.sqrt(3 / (4 * math.pi))
    f = enc.spherical_harmonics(np.array([[90.0, 0.0], [0.0, 30.0], [-60.0, -45.0]]), 2)
    expected = [[0.5 / math.sqrt(math.pi), c, 0.0, 0.0],
                [0.5 / math.sqrt(math.pi), 0.0, c * 0.5, c * math.cos(math.radians(30))],
                [0.5 / math.sqrt(math.pi), -c * 0.5 * math.sqrt(1.5), -c * math.sqrt(0.5), c * 0.5 * math.sqrt(0.5)]]
    np.testing.assert_allclose(f, expected, atol=1e-15)


@pytest.mark.parametrize("degree", [L, enc.MAX_SH_DEGREE])
def test_orthonormal_by_quadrature(degree):
    # Gauss-Legendre in cos(colatitude) with `degree` nodes integrates polynomials up to degree
    # 2*degree - 1 exactly, and 2*degree equally spaced longitudes every product of cos/sin(m lon)
    # with |m| < degree: so the Gram matrix is exact up to float64 rounding
    x, w = np.polynomial.legendre.leggauss(degree)
    lon = -180.0 + 360.0 * np.arange(2 * degree) / (2 * degree)
    lat = np.degrees(np.arcsin(x))
    lonlat = np.array([[a, b] for b in lat for a in lon])
    weights = np.repeat(w, len(lon)) * (2 * math.pi / len(lon))
    y = enc.spherical_harmonics(lonlat, degree)
    gram = (y * weights[:, None]).T @ y
    assert gram.shape == (degree ** 2, degree ** 2)
    np.testing.assert_allclose(gram, np.eye(degree ** 2), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_at_the_poles(dtype):
    lons = np.linspace(-180, 180, 37)
    for lat, sign in ((90.0, 1.0), (-90.0, -1.0)):
        f = enc.spherical_harmonics(np.c_[lons, np.full(37, lat)].astype(dtype), L)
        assert f.dtype == dtype
        np.testing.assert_array_equal(f, np.broadcast_to(f[0], f.shape))  # one point, whatever the longitude
        m0 = [ell * ell + ell for ell in range(L)]
        others = np.setdiff1d(np.arange(L * L), m0)
        assert not f[:, others].any()  # every m != 0 harmonic is exactly 0 there
        # Y_l^0 at the poles: (+-1)^l sqrt((2l+1)/(4 pi))
        want = [sign ** ell * math.sqrt((2 * ell + 1) / (4 * math.pi)) for ell in range(L)]
        np.testing.assert_allclose(f[0, m0], want, rtol=2e-7 if dtype == np.float32 else 1e-15)


def test_no_subnormals_next_to_the_poles_at_the_largest_degree():
    # s^m underflows float32 there; subnormals would make the recurrence many times slower, so
    # the tiny values are flushed to 0: far below what float32 features of size ~1 can show
    rng = np.random.default_rng(2)
    lat = np.r_[rng.uniform(89, 90, 200), rng.uniform(-90, -89, 200)]
    lonlat = np.c_[rng.uniform(-180, 180, 400), lat]
    degree = enc.MAX_SH_DEGREE
    got = enc.spherical_harmonics(lonlat.astype(np.float32), degree)
    tiny = np.finfo(np.float32).tiny
    assert not ((got != 0) & (np.abs(got) < tiny)).any()
    ref = scipy_real(lonlat.astype(np.float32).astype(np.float64), degree)
    # next to a pole Pn_l^m departs from its pole value by a relative l(l+1)/2 * (1 - cos theta),
    # which a float32 step of the recurrence resolves only to eps: an error up to
    # eps * l(l+1)/2 * max|Y| (1.3e-4 at l = 31; 3.4e-5 measured; elsewhere f32_atol holds at L = 32)
    l_max = degree - 1
    np.testing.assert_allclose(got, ref, atol=F32_EPS * l_max * (l_max + 1) / 2 * np.abs(ref).max(), rtol=0)


def test_float32_agrees_with_float64_and_the_dateline_is_seamless():
    lonlat = points()
    ref = enc.spherical_harmonics(lonlat.astype(np.float32).astype(np.float64), L)  # the same float32 inputs
    got = enc.encode("spherical_harmonics", lonlat.astype(np.float32))
    assert got.dtype == np.float32
    # elementwise float32 of a short recurrence: lon/180 rounds by eps, m * lon_n up to 9x that
    np.testing.assert_allclose(got, ref, atol=f32_atol(ref), rtol=0)
    np.testing.assert_array_equal(got[0], got[1])  # 180 and -180: exactly (the reduction mod 2 is exact)
    near = enc.spherical_harmonics(np.array([[179.999, -45], [-179.999, -45], [179.9, -45]], np.float32), L)
    np.testing.assert_allclose(near[0], near[1], atol=1e-3)  # 0.002 degrees apart, across the line
    assert np.abs(near[0] - near[2]).max() > 1e-3  # and 0.1 degree is resolved: the check is not vacuous


def test_degree_settings_and_their_validation():
    assert enc.input_dim("spherical_harmonics", 0, degree=3) == 9
    assert enc.spherical_harmonics(np.zeros((2, 2)), 1).shape == (2, 1)
    assert enc.encode("spherical_harmonics", np.zeros((2, 2)), degree=4).shape == (2, 16)
    assert enc.check_sh_degree(10) == 10 and enc.check_sh_degree(12.0) == 12
    assert enc.check_sh_degree(enc.MAX_SH_DEGREE) == 32
    for bad in (0, -3, enc.MAX_SH_DEGREE + 1, 2.5, "x", None, True, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"spherical-harmonics degree must be a whole number from 1 to 32 "
                                             r"\(L: degrees 0..L-1, L\^2 features; default 10\), got"):
            enc.check_sh_degree(bad)
    assert not enc.uses_covariates("spherical_harmonics")


@pytest.mark.parametrize("encoding, label", [
    ({"name": "spherical_harmonics", "degree": 10}, "spherical_harmonics (degree 10: 100 features)"),
    ({"name": "sin_cos_multi", "frequencies": [1, 4, 16]}, "sin_cos_multi (frequencies 1, 4, 16)"),
    ({"name": "sin_cos"}, "sin_cos"),
    ({"name": "sin_cos_env", "covariates": [{"name": "t", "mean": 0, "std": 1}]}, "sin_cos_env"),
])
def test_the_card_names_the_encoding_with_its_settings(encoding, label):
    bundle = ModelBundle(meta={"encoding": encoding}, species=[], weights={}, onnx_bytes=b"")
    assert bundle.encoding_label() == label
