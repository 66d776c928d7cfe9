"""Where a model knows: its data footprint, and which locations lie outside it. numpy only.

A presence-only model scores every location, also where it never saw a record: a North American
model paints Cuba, with 5 records of any species, in warm colours. Maxent and Wallace show MESS
maps for this, biomod2 a clamping mask, CAST an "area of applicability". A bundle stores its
footprint (``model.json`` ``footprint``; computed at export by ``training/footprint.py``) and every
map leaves the pixels outside it empty unless the user asks to see the extrapolation:

- **distance** (models that read coordinates): the great-circle distance (km) from a location to
  the ``k``-th nearest distinct training location of any species (k = 10: one stray record does
  not make a footprint). Stored as a global grid of nodes every ``resolution_deg`` degrees
  (latitude -90..90, longitude -180..180: the last column repeats the first, so no node wraps),
  whole km as uint16, delta-coded along each row in the bundle's ``footprint.npz`` (smooth
  distances then deflate to a quarter), and sampled bilinearly. Outside: the distance exceeds
  ``threshold_km``, by default the 99.9th percentile of the training locations' own
  leave-one-out distance to their k-th nearest other training location (the spacing the data
  itself shows, not a number tuned to a place: 187 km for the bundled model).
- **covariate ranges** (models that read covariates): the minimum and maximum of each continuous
  covariate at the training records; a categorical covariate's classes are its one-hot classes
  (``encoding.covariates[].classes``). The novelty of a location is MESS-like: how far it lies
  outside the training range, in units of that range (``max - min``; 1 in the covariate's own
  units for a covariate that never varied), the largest over the covariates, 0 inside; a class no
  training record had counts 1. Outside: novelty > 0.

A model with both rules is outside where either says so. A bundle without ``footprint`` (older
bundles, imported official checkpoints, whose records are unknown) has none: nothing is masked and
the products say "no footprint stored".

Bilinear interpolation of the distance field is within the largest distance from a location to
its four grid nodes (the k-th-nearest distance is 1-Lipschitz along great circles), about 39 km
at the equator for 0.25-degree nodes, plus 0.5 km of rounding.
"""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import BundleError

FOOTPRINT_KEY = "footprint"  # model.json
MEMBER = "footprint.npz"  # the distance grid's bundle member
GRID_ARRAY = "km_delta"  # int16 [n_lat, n_lon]: first column km, then differences along longitude
DEFAULT_K = 10
DEFAULT_PERCENTILE = 99.9
DEFAULT_RESOLUTION = 0.25
EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
UNSEEN_CLASS_NOVELTY = 1.0  # a class no training record had: one whole range outside
NO_FOOTPRINT = "no footprint stored"
OFFICIAL_NO_FOOTPRINT = ("no footprint stored (an imported official model: its training records are not in the "
                         "checkpoint)")
DISTANCE_BAND = "distance to training data (km)"
NOVELTY_BAND = "covariate novelty (0 inside the training ranges)"


@dataclass(frozen=True)
class DistanceField:
    """The great-circle distance (km) to the ``k``-th nearest distinct training location, on global
    grid nodes ``resolution`` degrees apart: ``km`` float32 [180 / resolution + 1, 360 / resolution + 1],
    row 0 at latitude -90, column 0 at longitude -180."""

    km: np.ndarray
    resolution: float
    k: int
    threshold_km: float
    threshold_rule: str = ""
    n_locations: int = 0

    def __post_init__(self) -> None:
        want = grid_shape(self.resolution)
        if self.km.shape != want:
            raise BundleError(f"{MEMBER} holds a {self.km.shape} grid; {self.resolution} degree nodes need {want}. "
                              "Re-export the model, or add its footprint again (python -m training footprint).")

    def sample(self, lonlat: np.ndarray) -> np.ndarray:
        """Bilinear distance (km) float32 [N] at (lon, lat) degrees [N, 2]; any longitude (wrapped),
        latitude clipped to +-90; NaN where a coordinate is not finite. In place where it can and
        with float32 weights (within 0.001 km): about 50 ns a pixel, under 1 % of the encoder's 10 us."""
        ll = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(ll).all():
            ok = np.isfinite(ll).all(axis=1)
            out = np.full(ll.shape[0], np.nan, dtype=np.float32)
            out[ok] = self.sample(ll[ok])
            return out
        n_lat, n_lon = self.km.shape
        x = ll[:, 0] + 180.0
        x %= 360.0
        x *= 1.0 / self.resolution
        y = np.clip(ll[:, 1], -90.0, 90.0)
        y += 90.0
        y *= 1.0 / self.resolution
        j = np.minimum(x.astype(np.intp), n_lon - 2)
        i = np.minimum(y.astype(np.intp), n_lat - 2)
        fx, fy = (x - j).astype(np.float32), (y - i).astype(np.float32)
        at = i * n_lon + j  # the south-west node; the others are +1, +n_lon, +n_lon + 1
        flat = self.km.ravel()
        sw, se, nw, ne = flat.take(at), flat.take(at + 1), flat.take(at + n_lon), flat.take(at + n_lon + 1)
        south = sw + (se - sw) * fx
        north = nw + (ne - nw) * fx
        return south + (north - south) * fy

    def to_npz(self) -> bytes:
        """The ``footprint.npz`` member: whole km, delta-coded along longitude, compressed."""
        whole = np.rint(self.km).astype(np.int32)
        delta = np.diff(whole, axis=1, prepend=0)
        if whole.min() < 0 or np.abs(delta).max() > np.iinfo(np.int16).max:
            raise ValueError("distance grid out of range for int16 deltas")
        buf = io.BytesIO()
        np.savez_compressed(buf, **{GRID_ARRAY: delta.astype(np.int16)})
        return buf.getvalue()

    def meta(self) -> dict[str, Any]:
        """``model.json`` ``footprint.distance``."""
        return {"k": self.k, "threshold_km": float(self.threshold_km), "threshold_rule": self.threshold_rule,
                "resolution_deg": self.resolution, "n_locations": self.n_locations, "member": MEMBER,
                "units": "km, great circle, to the k-th nearest distinct training location of any species"}


@dataclass(frozen=True)
class CovariateRanges:
    """The covariate values seen in training: ``low``/``high`` float64 [k] per covariate (NaN for a
    categorical one), and each categorical covariate's classes (None for a continuous one)."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    classes: tuple[tuple[float, ...] | None, ...]

    def novelty(self, env: np.ndarray) -> np.ndarray:
        """MESS-like novelty float32 [N] of raw covariate values ``env`` [N, k] (the module
        docstring): 0 inside every training range, NaN where a value is missing."""
        env = np.asarray(env, dtype=np.float64).reshape(-1, len(self.names))
        out = np.zeros(env.shape[0], dtype=np.float64)
        for j, cls in enumerate(self.classes):
            col = env[:, j]
            if cls is not None:  # codes compared as float32, as the one-hot encoding reads them
                seen = np.isin(col.astype(np.float32), np.asarray(cls, dtype=np.float32))
                score = np.where(seen, 0.0, UNSEEN_CLASS_NOVELTY)
            else:
                width = self.high[j] - self.low[j]
                unit = width if width > 0 else 1.0
                score = np.maximum(np.maximum(self.low[j] - col, col - self.high[j]), 0.0) / unit
            out = np.maximum(out, score)
        out[~np.isfinite(env).all(axis=1)] = np.nan
        return out.astype(np.float32)

    def meta(self) -> list[dict[str, Any]]:
        """``model.json`` ``footprint.covariate_ranges``: name, min, max of each continuous covariate
        (a categorical one's classes are in ``encoding.covariates``)."""
        return [{"name": n, "min": float(lo), "max": float(hi)}
                for n, lo, hi, c in zip(self.names, self.low, self.high, self.classes) if c is None]


@dataclass(frozen=True)
class Footprint:
    """A model's data footprint: either rule or both (the module docstring)."""

    distance: DistanceField | None = None
    ranges: CovariateRanges | None = None

    @property
    def band_names(self) -> list[str]:
        """The descriptions of the values :meth:`measure` returns, one per rule."""
        return ([DISTANCE_BAND] if self.distance else []) + ([NOVELTY_BAND] if self.ranges else [])

    def measure(self, lonlat: np.ndarray, env: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(outside bool [N], values float32 [N, len(band_names)]) at (lon, lat) degrees [N, 2]
        with their raw covariate values ``env`` [N, k] (models with covariate ranges). A location
        whose value is NaN (a coordinate or covariate missing) is not called outside."""
        n = np.asarray(lonlat).reshape(-1, 2).shape[0]
        cols, outside = [], np.zeros(n, dtype=bool)
        if self.distance is not None:
            km = self.distance.sample(lonlat)
            outside = km > self.distance.threshold_km
            cols.append(km)
        if self.ranges is not None:
            if env is None:
                raise ValueError("covariate values are needed for the covariate ranges")
            novelty = self.ranges.novelty(env)
            outside |= novelty > 0
            cols.append(novelty)
        if len(cols) == 1:  # one rule: a view, no copy of a whole block's values
            return outside, cols[0][:, None]
        return outside, np.stack(cols, axis=1) if cols else np.empty((n, 0), np.float32)

    def rule(self) -> str:
        """The rule in one sentence: what counts as outside."""
        parts = []
        if self.distance is not None:
            d = self.distance
            parts.append(f"the {ordinal(d.k)} nearest distinct training location is farther than "
                         f"{d.threshold_km:.0f} km")
        if self.ranges is not None:
            parts.append("a covariate lies outside the range seen in training (or in a class no training record had)")
        return "Outside the data footprint where " + ", or ".join(parts) + "."

    def describe(self, values: np.ndarray) -> str:
        """Why one location (its :meth:`measure` values [len(band_names)]) is outside, in words."""
        vals = list(np.asarray(values, dtype=np.float64).ravel())
        parts = []
        if self.distance is not None:
            km = vals.pop(0)
            parts.append(f"the {ordinal(self.distance.k)} nearest training location is {km:.0f} km away (the footprint "
                         f"reaches {self.distance.threshold_km:.0f} km)")
        if self.ranges is not None:
            parts.append(f"its covariates lie outside the training ranges (novelty {vals.pop(0):.2f})")
        return "; ".join(parts)

    def meta(self) -> dict[str, Any]:
        """``model.json`` ``footprint``."""
        out: dict[str, Any] = {"rule": self.rule()}
        if self.distance is not None:
            out["distance"] = self.distance.meta()
        if self.ranges is not None:
            out["covariate_ranges"] = self.ranges.meta()
        return out


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 10th, 11th, 22nd ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def grid_shape(resolution: float) -> tuple[int, int]:
    """(rows, columns) of a global node grid ``resolution`` degrees apart; raises ``BundleError``
    when the resolution does not divide 180 degrees."""
    rows = 180.0 / resolution if resolution > 0 else 0.0
    if not (rows >= 1 and abs(rows - round(rows)) < 1e-9):
        raise BundleError(f"footprint resolution {resolution!r} degrees does not divide 180 degrees. "
                          "Re-export the model, or add its footprint again (python -m training footprint).")
    n = round(rows)
    return n + 1, 2 * n + 1


def read_footprint(entry: Any, npz: bytes | None, covariates: Sequence[Mapping[str, Any]],
                   classes: Sequence[tuple[float, ...] | None] | None) -> Footprint | None:
    """The footprint of a bundle from its ``model.json`` ``footprint`` ``entry``, its
    ``footprint.npz`` bytes (None when absent) and its covariates (``encoding.covariates``, their
    ``classes``); None without an entry. Raises ``BundleError`` saying what is wrong."""
    if entry is None:
        if npz is not None:
            raise BundleError(f"{MEMBER} is present but model.json has no {FOOTPRINT_KEY!r}. Re-export the model.")
        return None
    if not isinstance(entry, dict):
        raise BundleError(f"model.json {FOOTPRINT_KEY!r} must be an object. Re-export the model.")
    distance = _read_distance(entry.get("distance"), npz)
    ranges = _read_ranges(entry.get("covariate_ranges"), covariates, classes)
    return Footprint(distance, ranges) if distance or ranges else None


def _read_distance(d: Any, npz: bytes | None) -> DistanceField | None:
    if d is None:
        if npz is not None:
            raise BundleError(f"{MEMBER} is present but model.json {FOOTPRINT_KEY} has no 'distance'. "
                              "Re-export the model.")
        return None
    if npz is None:
        raise BundleError(f"model.json {FOOTPRINT_KEY} describes a distance grid but {MEMBER} is missing. "
                          "Re-export the model, or add its footprint again (python -m training footprint).")
    try:
        with np.load(io.BytesIO(npz), allow_pickle=False) as z:
            delta = np.asarray(z[GRID_ARRAY])
        k, threshold, res = int(d["k"]), float(d["threshold_km"]), float(d["resolution_deg"])
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise BundleError(f"{MEMBER} or model.json {FOOTPRINT_KEY}.distance cannot be read ({exc}). "
                          "Re-export the model.") from None
    if k < 1 or not threshold > 0:
        raise BundleError(f"model.json {FOOTPRINT_KEY}.distance needs k >= 1 and threshold_km > 0. "
                          "Re-export the model.")
    km = np.cumsum(delta.astype(np.int32), axis=1).astype(np.float32)
    return DistanceField(km, res, k, threshold, str(d.get("threshold_rule", "")), int(d.get("n_locations", 0)))


def _read_ranges(entries: Any, covariates: Sequence[Mapping[str, Any]],
                 classes: Sequence[tuple[float, ...] | None] | None) -> CovariateRanges | None:
    if entries is None:
        return None
    names = [str(c["name"]) for c in covariates]
    classes = list(classes) if classes is not None else [None] * len(names)
    try:
        given = {str(e["name"]): (float(e["min"]), float(e["max"])) for e in entries}
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"model.json {FOOTPRINT_KEY}.covariate_ranges cannot be read ({exc}). "
                          "Re-export the model.") from None
    missing = [n for n, c in zip(names, classes) if c is None and n not in given]
    if missing or not names:
        raise BundleError(f"model.json {FOOTPRINT_KEY}.covariate_ranges lacks the range of "
                          f"{', '.join(missing) or 'every covariate'}. Re-export the model.")
    low = np.array([given.get(n, (np.nan, np.nan))[0] for n in names], dtype=np.float64)
    high = np.array([given.get(n, (np.nan, np.nan))[1] for n in names], dtype=np.float64)
    return CovariateRanges(tuple(names), low, high, tuple(classes))


def footprint_status(footprint: Footprint | None, meta: Mapping[str, Any], shown: bool | None = None) -> str:
    """What a product says about the footprint (GeoTIFF metadata FOOTPRINT, logs; ``shown`` None:
    the model card): the rule and whether a map leaves the pixels outside empty or shows them; "no
    footprint stored" (and why, for an imported official model) without one."""
    if footprint is None:
        official = (meta.get("training") or {}).get("origin") == "official SINR checkpoint"
        return OFFICIAL_NO_FOOTPRINT if official else NO_FOOTPRINT
    if shown is None:
        return footprint.rule() + " Maps leave it empty unless extrapolation is shown."
    return footprint.rule() + (" Shown anyway (extrapolation)." if shown else " Left empty (nodata).")


def footprint_summary(footprint: Footprint | None, meta: Mapping[str, Any], n_outside: int, n_pixels: int,
                      shown: bool) -> str:
    """One sentence for a map's log or status line: how many of its ``n_pixels`` (valid before the
    footprint) lay outside the footprint and were left empty (``n_outside``), that they are shown
    (``shown``), or that the model stores no footprint."""
    if footprint is None:
        return f"Data footprint: {footprint_status(None, meta)}; every pixel is shown."
    if shown:
        return "Pixels outside the model's data footprint are shown (extrapolation): " + footprint.rule()
    if not n_outside:
        return "Every pixel lies inside the model's data footprint."
    share = 100.0 * n_outside / max(1, n_pixels)
    return (f"{n_outside:,} of {n_pixels:,} pixels ({share:.0f} %) lie outside the model's data footprint and were "
            f"left empty. {footprint.rule()} Show extrapolation to see the model's guesses there.")
