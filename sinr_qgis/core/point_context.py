"""Can a model say anything about one point? Water and "outside the model's data" for "what lives here".

A presence-only model scores every location, including the open ocean and continents it never
saw; there its numbers are extrapolations that read as confident answers (a North American model
gave red maple 0.987 in the mid-Atlantic). :func:`point_context` tells such a point apart:

- **water**: the point is off land according to the plugin's land mask (:mod:`.landmask`); the
  model learned from records on land, so a score there means nothing;
- **outside the model's data**: the point lies outside the lon/lat box of the bulk of every
  species' training records (:attr:`SpeciesReliability.record_extent`), widened by
  :data:`MARGIN_DEG` on each side.

Why boxes widened by 2 degrees: a species' records box is what the bundle stores (no point list), a
box is generous inside (it also holds the gaps between records), so the test only catches points
far from everything the model saw; 2 degrees (about 220 km north-south) is a few cells of the
25-50 km resolution at which a coordinates-only SINR model is trained and mapped, so coastal and
border points next to the records, and the few outlying records a bulk box leaves out, are not
flagged. The same per-species test marks a species listed at a point far from most of its own
records (Douglas-fir of the bundled model, recorded only in Wyoming, in the Cascades): its score
there is an extrapolation too.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .landmask import is_land

MARGIN_DEG = 2.0  # degrees added on each side of a records box (see the module docstring)
MIN_SCORE = 0.01  # a "what lives here" list shows species scoring at least this


@dataclass(frozen=True)
class PointContext:
    """What a model can say at one (lon, lat).

    ``near``: bool [n_species], whether the point is inside each species' widened records box;
    ``known``: bool [n_species], whether the model stores that box; ``data_extent``: the span of
    the known boxes (lon_min, lat_min, lon_max, lat_max), None when no species has one.
    """

    on_land: bool
    near: np.ndarray
    known: np.ndarray
    data_extent: tuple[float, float, float, float] | None

    def far_from_records(self, index: int) -> bool:
        """True when species ``index`` has a known records box and the point is outside it (widened)."""
        return bool(self.known[index] and not self.near[index])

    @property
    def near_any_records(self) -> bool | None:
        """True/False: inside/outside every widened records box; None: the model does not say."""
        return None if self.data_extent is None else bool(self.near.any())

    @property
    def message(self) -> str:
        """Why no species list is shown here (one or two plain sentences); empty when one is."""
        if not self.on_land:
            return ("This point is on water (sea or ocean, according to the plugin's land mask). The model "
                    "learned from records on land, so its scores here mean nothing: no species are listed. "
                    "Click on land.")
        if self.near_any_records is False:
            w, s, e, n = self.data_extent
            return (f"This point is outside the model's data: the bulk of its training records lies within "
                    f"longitude {w:.0f}° to {e:.0f}° and latitude {s:.0f}° to {n:.0f}°. Scores here are guesses "
                    "far from anything the model saw: no species are listed.")
        return ""


def record_extents(species: Sequence, extent_of: Callable[[object], tuple[float, float, float, float] | None]
                   ) -> np.ndarray:
    """The records box of each species as float64 [n_species, 4] (lon_min, lat_min, lon_max,
    lat_max, degrees); a row of NaN where ``extent_of(species)`` is None (unknown)."""
    out = np.full((len(species), 4), np.nan, dtype=np.float64)
    for i, s in enumerate(species):
        box = extent_of(s)
        if box is not None:
            out[i] = box
    return out


def point_context(lon: float, lat: float, extents: np.ndarray, margin_deg: float = MARGIN_DEG,
                  land: bool | None = None) -> PointContext:
    """Water / outside-the-data facts at (``lon``, ``lat``) degrees.

    ``extents``: :func:`record_extents` [n_species, 4]; a box whose lon_min exceeds its lon_max
    crosses the antimeridian. ``land``: whether the point is on land, looked up in the shipped
    land mask when None. Longitudes are compared modulo 360.
    """
    if land is None:
        land = bool(is_land(np.array([[lon, lat]], dtype=np.float64))[0])
    ext = np.asarray(extents, dtype=np.float64).reshape(-1, 4)
    known = np.isfinite(ext).all(axis=1)
    near = np.zeros(ext.shape[0], dtype=bool)
    if not known.any():
        return PointContext(land, near, known, None)
    w, s, e, n = (ext[known, k] for k in range(4))
    in_lat = (lat >= s - margin_deg) & (lat <= n + margin_deg)
    # distance eastwards from the box's widened west edge, compared with its widened width (mod 360)
    width = np.where(e - w >= 360.0, 360.0, np.mod(e - w, 360.0)) + 2 * margin_deg  # a whole-globe box stays whole
    in_lon = (np.mod(lon - (w - margin_deg), 360.0) <= width) | (width >= 360.0)
    near[known] = in_lat & in_lon
    west, east = (-180.0, 180.0) if (w > e).any() else (float(w.min()), float(e.max()))  # a box across 180°
    data_extent = (west, float(s.min()), east, float(n.max()))
    return PointContext(land, near, known, data_extent)
