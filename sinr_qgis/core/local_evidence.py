"""Local evidence: an optional, switchable bundle component added to the SINR logit. numpy only.

SINR gives every species a smooth, shared picture of where it lives, and ranks worst where records
are dense (NA-Trees: the per-species kernel density beats it on the presence/absence plots). A
bundle can store, per species, an offset in logit units computed from its training records at
export (``training/local_evidence.py``) and added to the network's logit:

    score(x, s) = logit_SINR(x, s) + a * log(Kh*n_s(x) / N_s * 1e4 + 1e-3)
                                   + b * log(Kh*n_s(x) / sum_{sources of s} Kh*sites(x) + 1e-2)

- ``Kh*n_s``: the species' distinct (location, source) records binned to 0.05-degree cells and
  smoothed with a Gaussian of ``bandwidth_deg`` degrees (plate carree); ``N_s`` its record count.
  The first term is the species' record density (the per-species KDE baseline);
- ``Kh*sites``: the distinct locations of one source (a survey's plots, an atlas grid, a
  collection) smoothed the same way. The second term is the species' local detection rate among
  the sites of the sources that recorded it at all (a survey that recorded the species somewhere
  and visited a site without it counts as a non-detection there).
- ``a`` (``record_weight``), ``b`` (``survey_weight``) and the bandwidth are chosen on training
  records held out from validation models, never on the evaluation data (``selection`` says how).

Each species' offset is then shifted by a constant so that its median at the species' own training
records is 0: where the species is typically recorded the score is the network's logit, and it is
lowered away from its records (a per-species constant changes no species' ranking of locations, so
no AP; it keeps maps on the probability scale users read, and lets "what lives here" compare
species).

Stored as each species' window of grid nodes every ``resolution_deg`` degrees (longitude
-180 + i * res, latitude -90 + j * res) around its records, padded by 4 bandwidths, quantised to
uint16 between the floor and the species' maximum, and sampled bilinearly; outside its window a
species' offset is the floor ``a * log(1e-3) + b * log(1e-2)`` (the value where it has no
records) plus its shift.

It needs the species' records at prediction time, so imported official checkpoints have none. It
is a model component, not a fact about the world: maps, points and evaluations use it where the
bundle has it unless switched off (``Predictor(..., local_evidence=False)``, the Processing
``LOCAL_EVIDENCE`` parameter, the dock's "Use local evidence"), and pure SINR is reported beside.
With it the values are scores for ranking and thresholds (LPT-R is stored for both), sharper near
records than the network's probabilities.
"""
from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import BundleError

LOCAL_EVIDENCE_KEY = "local_evidence"  # model.json
MEMBER = "local_evidence.npz"
RECORD_FLOOR = 1e-3
SURVEY_FLOOR = 1e-2
RECORD_SCALE = 1e4  # the density per record in a 0.05-degree cell, scaled so that the floor is small
CELL_DEG = 0.05  # the records' binning cell
QUANT_LEVELS = 65535
ARRAYS = ("window", "start", "values", "scale", "shift", "lpt_r")


@dataclass
class LocalEvidence:
    """Per-species logit offsets on windows of a global node grid (see the module docstring).

    ``window`` int32 [S, 4]: (i0, j0, n_lon, n_lat) node indices of each species' window (n = 0: no
    records, the floor everywhere); ``start`` int64 [S + 1]: where each window's values begin in
    ``values`` uint16 (row-major, latitude rows); ``scale`` float32 [S]: logit units per level
    above ``floor``; ``shift`` float32 [S]: added to every offset of the species (logit units);
    ``lpt_r`` float32 [S]: the LPT-R probability threshold of the combined score (NaN where unknown)."""

    bandwidth_deg: float
    record_weight: float
    survey_weight: float
    resolution_deg: float
    window: np.ndarray
    start: np.ndarray
    values: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    lpt_r: np.ndarray
    selection: str = ""

    @property
    def floor(self) -> float:
        """The offset where a species has no records nearby (logit units)."""
        return self.record_weight * math.log(RECORD_FLOOR) + self.survey_weight * math.log(SURVEY_FLOOR)

    @property
    def n_species(self) -> int:
        return int(self.window.shape[0])

    def offsets(self, lonlat: np.ndarray, species: np.ndarray) -> np.ndarray:
        """float32 [N, len(species)]: the offsets of head rows ``species`` (int [S']) at (lon, lat)
        degrees [N, 2]; NaN rows stay NaN."""
        ll = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        idx = np.asarray(species, dtype=np.int64).reshape(-1)
        out = np.full((ll.shape[0], idx.size), self.floor, dtype=np.float32)
        out[~np.isfinite(ll).all(axis=1)] = np.nan
        fx_all = (ll[:, 0] + 180.0) / self.resolution_deg
        fy_all = (ll[:, 1] + 90.0) / self.resolution_deg
        out += self.shift[idx]
        for k, s in enumerate(idx):
            i0, j0, nx, ny = (int(v) for v in self.window[s])
            if nx < 2 or ny < 2:
                continue
            fx, fy = fx_all - i0, fy_all - j0
            inside = np.flatnonzero((fx >= 0) & (fx <= nx - 1) & (fy >= 0) & (fy <= ny - 1))
            if inside.size == 0:
                continue
            x, y = fx[inside], fy[inside]
            ix = np.minimum(x.astype(np.int64), nx - 2)
            iy = np.minimum(y.astype(np.int64), ny - 2)
            tx, ty = x - ix, y - iy
            grid = self.values[self.start[s]:self.start[s + 1]].reshape(ny, nx)
            q = ((grid[iy, ix] * (1 - tx) + grid[iy, ix + 1] * tx) * (1 - ty)
                 + (grid[iy + 1, ix] * (1 - tx) + grid[iy + 1, ix + 1] * tx) * ty)
            out[inside, k] = self.floor + float(self.shift[s]) + q * float(self.scale[s])
        return out

    def describe(self) -> str:
        """One line for the model card and the outputs' metadata."""
        return (f"local evidence: SINR logit + {self.record_weight:g} x log record density + "
                f"{self.survey_weight:g} x log local detection rate, Gaussian kernel {self.bandwidth_deg:g} deg")

    def meta(self) -> dict[str, Any]:
        """The ``model.json`` entry."""
        return {"bandwidth_deg": self.bandwidth_deg, "record_weight": self.record_weight,
                "survey_weight": self.survey_weight, "resolution_deg": self.resolution_deg,
                "record_floor": RECORD_FLOOR, "survey_floor": SURVEY_FLOOR, "cell_deg": CELL_DEG,
                "selection": self.selection}

    def to_npz(self) -> bytes:
        """The ``local_evidence.npz`` member."""
        buf = io.BytesIO()
        np.savez_compressed(buf, window=self.window.astype(np.int32), start=self.start.astype(np.int64),
                            values=self.values.astype(np.uint16), scale=self.scale.astype(np.float32),
                            shift=self.shift.astype(np.float32), lpt_r=self.lpt_r.astype(np.float32))
        return buf.getvalue()


def quantise_grid(grid: np.ndarray, floor: float) -> tuple[np.ndarray, float]:
    """One species' offsets [n_lat, n_lon] as uint16 levels above ``floor`` (flat, row-major) and the
    logit units per level."""
    scale = float(np.float32(max(float(np.max(grid)) - floor, 1e-6) / QUANT_LEVELS))  # as stored: float32
    return np.clip(np.rint((grid - floor) / scale), 0, QUANT_LEVELS).astype(np.uint16).ravel(), scale


def quantise(grids: list[np.ndarray | None], windows: np.ndarray, floor: float, **params: Any) -> LocalEvidence:
    """A :class:`LocalEvidence` from each species' float offsets on its window (``grids[s]``
    [n_lat, n_lon] or None without records; ``windows`` [S, 4] as ``LocalEvidence.window``);
    ``params``: the dataclass' other fields but ``shift`` (0 until set) and ``lpt_r`` (NaN until set)."""
    n = len(grids)
    start = np.zeros(n + 1, dtype=np.int64)
    scale = np.zeros(n, dtype=np.float32)
    parts = []
    for s, g in enumerate(grids):
        if g is None or g.size == 0:
            start[s + 1] = start[s]
            continue
        levels, scale[s] = quantise_grid(g, floor)
        parts.append(levels)
        start[s + 1] = start[s] + levels.size
    values = np.concatenate(parts) if parts else np.zeros(0, np.uint16)
    return LocalEvidence(window=np.asarray(windows, np.int32), start=start, values=values, scale=scale,
                         shift=np.zeros(n, np.float32), lpt_r=np.full(n, np.nan, np.float32), **params)


def read_local_evidence(entry: Any, npz: bytes | None, n_species: int) -> LocalEvidence | None:
    """The component of a bundle from its ``model.json`` entry and ``local_evidence.npz`` bytes
    (None: absent); None without an entry. Raises ``BundleError`` saying what is wrong."""
    if entry is None:
        if npz is not None:
            raise BundleError(f"{MEMBER} is present but model.json has no {LOCAL_EVIDENCE_KEY!r}. Re-export the model.")
        return None
    if npz is None:
        raise BundleError(f"model.json describes {LOCAL_EVIDENCE_KEY!r} but {MEMBER} is missing. Re-export the model.")
    if not isinstance(entry, Mapping):
        raise BundleError(f"model.json {LOCAL_EVIDENCE_KEY!r} must be an object. Re-export the model.")
    try:
        with np.load(io.BytesIO(npz), allow_pickle=False) as z:
            arr = {k: np.asarray(z[k]) for k in ARRAYS}
        le = LocalEvidence(float(entry["bandwidth_deg"]), float(entry["record_weight"]),
                           float(entry["survey_weight"]), float(entry["resolution_deg"]),
                           arr["window"].astype(np.int64), arr["start"].astype(np.int64), arr["values"],
                           arr["scale"].astype(np.float32), arr["shift"].astype(np.float32),
                           arr["lpt_r"].astype(np.float32),
                           str(entry.get("selection", "")))
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise BundleError(f"{MEMBER} or model.json {LOCAL_EVIDENCE_KEY} cannot be read ({exc}). "
                          "Re-export the model.") from None
    sizes = le.window[:, 2] * le.window[:, 3]
    if (le.window.shape != (n_species, 4) or le.start.shape != (n_species + 1,) or le.scale.shape != (n_species,)
            or le.lpt_r.shape != (n_species,) or le.shift.shape != (n_species,) or le.start[0] != 0
            or (np.diff(le.start) != sizes).any()
            or le.start[-1] != le.values.size or not le.resolution_deg > 0):
        raise BundleError(f"{MEMBER} does not fit the model's {n_species} species. Re-export the model.")
    return le
