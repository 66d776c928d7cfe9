"""Location encodings: the single source of truth for training (torch) and inference (numpy).

Every function takes an array module ``xp`` (``numpy`` or ``torch``) so the very same formula
runs in the trainer, in the exported ONNX graph (traced from torch) and in the numpy backend.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

ENCODINGS = ("sin_cos", "env", "sin_cos_env", "sin_cos_multi", "spherical_harmonics")
COVARIATE_ENCODINGS = ("env", "sin_cos_env")  # the encodings that read covariate rasters
COORD_DIM = 4
# sin_cos_multi's default frequencies: wavelengths 360 deg .. 11.25 deg of longitude
DEFAULT_FREQUENCIES = (1, 2, 4, 8, 16, 32)
# spherical_harmonics: degrees l = 0..L-1, L^2 features; L = 10 as Russwurm et al. (ICLR 2024).
# Per location, a 256-wide 4-block encoder costs 1.14x v1's (sin_cos) at L = 10, 1.4x at L = 20
# and 3-3.5x at L = 32 (CPU time, training/benchmarks/encoding_cost.py; issue 13 allows 2x):
# larger L are refused.
DEFAULT_SH_DEGREE = 10
MAX_SH_DEGREE = 32
# diagonal Legendre values below this are set to 0: far below what a float32 sum of features of
# size ~1 can see, far above float32's subnormals (1.2e-38)
SH_FLUSH = 1e-30


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


def spherical_harmonics(lonlat: Any, degree: int = DEFAULT_SH_DEGREE, xp: Any = np) -> Any:
    """Real spherical harmonics Y_l^m of the location, [N, 2] degrees -> [N, degree**2].

    Convention: colatitude theta = 90 - lat, azimuth phi = lon; orthonormal on the unit sphere
    (the integral of Y^2 over the sphere is 1); no Condon-Shortley phase (P_l^m >= 0 near the
    north pole). With the orthonormal Legendre functions Pn_l^m: Y_l^0 = Pn_l^0(cos theta),
    Y_l^m = sqrt(2) Pn_l^m(cos theta) cos(m phi) and Y_l^-m = sqrt(2) Pn_l^m(cos theta) sin(m phi)
    for m > 0. Columns in the order l = 0..degree-1, then m = -l..l (column l^2 + l + m).
    Computed from the angle to the nearer pole, so exact at the poles: sin(theta) is 0 there in
    any float, every m != 0 column is exactly 0 and the features do not depend on the longitude;
    the southern hemisphere by the parity Pn_l^m(-x) = (-1)^(l+m) Pn_l^m(x). Seamless at the
    dateline: m * lon/180 is reduced mod 2 exactly before the sine, as in :func:`sin_cos_multi`,
    so 180 and -180 give identical features.
    """
    lon_n = lonlat[:, 0] / 180.0
    lat = lonlat[:, 1]
    polar = (90.0 - xp.abs(lat)) * (math.pi / 180.0)  # radians to the nearer pole, in [0, pi/2]
    half = xp.sin(polar * 0.5)
    p = _legendre(half * half * 2.0, xp.sin(polar), degree, xp)  # of |cos(theta)| = 1 - 2 sin^2(polar/2)
    hemisphere = xp.sign(lat)  # -1 in the south (0 on the equator, where the odd columns are 0)
    cos_m, sin_m = {}, {}
    for m in range(1, degree):
        a = _mod2(lon_n * float(m), xp) * math.pi
        cos_m[m], sin_m[m] = xp.cos(a) * math.sqrt(2.0), xp.sin(a) * math.sqrt(2.0)
    cols = []
    for ell in range(degree):
        for m in range(-ell, ell + 1):
            v = p[ell][abs(m)] * hemisphere if (ell + m) % 2 else p[ell][abs(m)]  # the parity
            cols.append(v * sin_m[-m] if m < 0 else v * cos_m[m] if m > 0 else v)
    return xp.stack(cols, 1)


def _legendre(u: Any, s: Any, degree: int, xp: Any) -> list[list[Any]]:
    """Orthonormal associated Legendre functions ``p[l][m]`` = Pn_l^m(x) for 0 <= m <= l < degree,
    of x = 1 - u >= 0 given as u (each [N]) with s = sqrt(1 - x^2) given apart (exact at the pole).

    Pn_l^m = sqrt((2l+1)/(4 pi) (l-m)!/(l+m)!) P_l^m (no Condon-Shortley phase), by the standard
    stable recurrences of the normalised functions: the diagonal Pn_m^m from Pn_{m-1}^{m-1} times
    s, then up in l at fixed m. No factorials are formed, so nothing overflows at any degree.
    x * p is formed as p - u * p: next to the pole float32 holds x = cos(theta) only to 6e-8
    absolute but u to 6e-8 relative (within 1 degree of a pole at L = 32, 17x fewer features
    off by more than 64 eps than with x).
    """
    p = [[None] * (ell + 1) for ell in range(degree)]
    p[0][0] = xp.ones_like(u) * (0.5 / math.sqrt(math.pi))
    for m in range(degree):
        if m > 0:
            d = p[m - 1][m - 1] * s * math.sqrt((2 * m + 1) / (2 * m))
            # Pn_m^m ~ s^m underflows into float32 subnormals near the poles at high m, which CPUs
            # compute many times slower (the recurrence took 2.5x as long within 1 degree of a
            # pole at L = 32); flushed to exact 0 below SH_FLUSH, the whole column m is 0 there
            # (Pn_l^m for l > m stays within 2e6 x Pn_m^m where that is this small, l < 32).
            p[m][m] = xp.where(xp.abs(d) < SH_FLUSH, xp.zeros_like(d), d)
        if m + 1 < degree:
            p[m + 1][m] = (p[m][m] - u * p[m][m]) * math.sqrt(2 * m + 3)
        for ell in range(m + 2, degree):
            a = math.sqrt((4 * ell * ell - 1) / (ell * ell - m * m))
            b = math.sqrt(((ell - 1) ** 2 - m * m) / (4 * (ell - 1) ** 2 - 1))
            p[ell][m] = (p[ell - 1][m] - u * p[ell - 1][m] - p[ell - 2][m] * b) * a
    return p


def check_sh_degree(degree: Any) -> int:
    """A validated ``spherical_harmonics`` degree L (degrees l = 0..L-1, L**2 features): a whole
    number from 1 to ``MAX_SH_DEGREE``. Raises ValueError saying what is wrong and what fits."""
    try:
        out = int(degree)
        if isinstance(degree, bool) or float(degree) != out:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        out = None
    if out is None or not 1 <= out <= MAX_SH_DEGREE:
        raise ValueError(f"the spherical-harmonics degree must be a whole number from 1 to {MAX_SH_DEGREE} "
                         f"(L: degrees 0..L-1, L^2 features; default {DEFAULT_SH_DEGREE}), got {degree!r}")
    return out


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
           classes: Sequence[Any] | None = None, degree: int | None = None) -> Any:
    """Model input features for ``encoding`` (one of ``ENCODINGS``); ``frequencies`` is used by
    ``sin_cos_multi`` only (None: ``DEFAULT_FREQUENCIES``), ``degree`` by ``spherical_harmonics``
    only (None: ``DEFAULT_SH_DEGREE``), ``classes`` (per covariate: None, or the class codes of a
    categorical covariate) by the covariate encodings (:func:`encode_covariates`)."""
    if encoding == "sin_cos":
        return sin_cos(lonlat, xp)
    if encoding == "sin_cos_multi":
        return sin_cos_multi(lonlat, DEFAULT_FREQUENCIES if frequencies is None else frequencies, xp)
    if encoding == "spherical_harmonics":
        return spherical_harmonics(lonlat, DEFAULT_SH_DEGREE if degree is None else degree, xp)
    if env is None:
        raise ValueError(f"encoding {encoding!r} needs covariate values")
    z = encode_covariates(env, mean, std, classes, xp)
    if encoding == "env":
        return z
    if encoding == "sin_cos_env":
        return xp.concatenate([sin_cos(lonlat, xp), z], 1)
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")


def input_dim(encoding: str, n_covariates: int = 0, frequencies: Sequence[int] | None = None,
              degree: int | None = None) -> int:
    """Number of model input features for an encoding; ``n_covariates``: the covariates' feature
    count (:func:`covariate_features`: the number of covariates when none is categorical);
    ``frequencies`` and ``degree`` as :func:`encode`."""
    if encoding == "sin_cos_multi":
        return COORD_DIM * len(DEFAULT_FREQUENCIES if frequencies is None else frequencies)
    if encoding == "spherical_harmonics":
        return (DEFAULT_SH_DEGREE if degree is None else degree) ** 2
    return {"sin_cos": COORD_DIM, "env": n_covariates,
            "sin_cos_env": COORD_DIM + n_covariates}[encoding]
