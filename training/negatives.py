"""Which negatives a presence record may speak for, and where pseudo-negatives are drawn.

SINR's "full" losses assume that at an observed location every *other* species is absent
(reference section 3). Real training files mix sources that record different species lists
(NA-Trees: one survey lists 115 species, the southern plots 20, a pine data set only pines and
acacias), and one survey plot usually records several species at the same place. Two
corrections, both expressed as the losses' ``neg_mask`` [B, C] (True = usable negative):

- ``source``: a record speaks only for the species its own source records anywhere in the data
  (the negatives at its location are restricted to that source's species list). A record whose
  source is unknown ('' or no source column) keeps the paper's assumption (all species).
- ``site``: species recorded by the same source at the same location (a "site": one survey plot,
  one grid cell) are not negatives of each other.
- ``source_site``: both.

The per-source species lists and the per-site species lists are taken from *all* records of the
file (before the per-species cap), so a capped-away record still tells that its species occurs
at its site. Per batch the mask is built with a few vectorised gathers (no Python per row).

Pseudo-negatives: ``sphere`` (the paper: area-uniform on the whole sphere, mostly ocean) or
``land`` (area-uniform on land, rejection sampling with the shipped land mask). A covariate model
draws them only where every covariate has a value (:func:`pseudo_negative_pool`): a random point
outside the rasters has no environment to learn from.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sinr_qgis.core.errors import CovariateError
from sinr_qgis.core.training.defaults import NEGATIVES


def _site_keys(source: np.ndarray, lonlat32: np.ndarray) -> np.ndarray:
    """One hashable key per record: (source, float32 lon, float32 lat) as a structured array."""
    keys = np.empty(len(source), dtype=[("s", np.int64), ("x", np.float32), ("y", np.float32)])
    keys["s"], keys["x"], keys["y"] = source, lonlat32[:, 0], lonlat32[:, 1]
    return keys


class SourceNegatives:
    """Builds the ``neg_mask`` of a batch of training records (rows = record indices)."""

    def __init__(self, n_species: int, record_source: np.ndarray, source_species: np.ndarray,
                 record_site: np.ndarray | None = None, site_ptr: np.ndarray | None = None,
                 site_species: np.ndarray | None = None) -> None:
        self.n_species = int(n_species)
        self.record_source = torch.as_tensor(np.asarray(record_source, np.int64))
        self.source_species = torch.as_tensor(np.asarray(source_species, bool))  # [S, C]
        self.use_sites = record_site is not None
        if self.use_sites:
            self.record_site = torch.as_tensor(np.asarray(record_site, np.int64))
            self.site_ptr = torch.as_tensor(np.asarray(site_ptr, np.int64))  # CSR row pointers
            self.site_species = torch.as_tensor(np.asarray(site_species, np.int64))

    @classmethod
    def build(cls, mode: str, species_codes: Sequence[str], train_lonlat: np.ndarray,
              train_source: np.ndarray | None, all_lonlat: np.ndarray, all_species: np.ndarray,
              all_source: np.ndarray | None) -> SourceNegatives | None:
        """The mask builder for ``mode`` (one of ``NEGATIVES``); ``None`` for ``all``.

        ``species_codes``: the model's species in head order. ``train_*``: the records trained on
        (lon/lat, source). ``all_*``: every record of the file (lon/lat, species id, source), which
        defines the source species lists and the site species lists; records of species that are
        not in the model are ignored.
        """
        if mode not in NEGATIVES:
            raise ValueError(f"unknown negatives mode {mode!r}; choose one of {', '.join(NEGATIVES)}")
        if mode == "all":
            return None
        n_train, n_all = len(train_lonlat), len(all_lonlat)
        c = len(species_codes)
        # source ids: '' (unknown) is id 0 and speaks for every species
        train_src = np.full(n_train, "", dtype=object) if train_source is None else np.asarray(train_source, object)
        all_src = np.full(n_all, "", dtype=object) if all_source is None else np.asarray(all_source, object)
        names = ["", *sorted(({str(s) for s in all_src} | {str(s) for s in train_src}) - {""})]
        sid = {s: i for i, s in enumerate(names)}
        train_sid = np.array([sid[str(s)] for s in train_src], dtype=np.int64)
        all_sid = np.array([sid[str(s)] for s in all_src], dtype=np.int64)
        index = {code: i for i, code in enumerate(species_codes)}
        all_sp = np.array([index.get(str(s), -1) for s in all_species], dtype=np.int64)
        known = all_sp >= 0
        all_sid, all_sp = all_sid[known], all_sp[known]
        all_ll = np.asarray(all_lonlat, np.float64)[known].astype(np.float32)

        source_species = np.ones((len(names), c), dtype=bool)
        if mode in ("source", "source_site"):
            source_species[1:] = False
            source_species[all_sid, all_sp] = True
            source_species[0] = True

        if mode == "source":
            return cls(c, train_sid, source_species)
        # sites: (source, location) of all records; CSR list of the species recorded at each
        all_keys = _site_keys(all_sid, all_ll)
        train_keys = _site_keys(train_sid, np.asarray(train_lonlat, np.float32))
        uniq, site_of = np.unique(np.concatenate([all_keys, train_keys]), return_inverse=True)
        site_of = site_of.ravel()
        all_site, train_site = site_of[:len(all_keys)], site_of[len(all_keys):]
        pairs = np.unique(np.stack([all_site, all_sp], 1), axis=0)  # sorted by site, then species
        site_ptr = np.zeros(len(uniq) + 1, dtype=np.int64)
        np.add.at(site_ptr, pairs[:, 0] + 1, 1)
        site_ptr = np.cumsum(site_ptr)
        return cls(c, train_sid, source_species, train_site, site_ptr, pairs[:, 1])

    def to(self, device: torch.device | str) -> SourceNegatives:
        """This builder with its tables on ``device`` (the training device), in place."""
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
        return self

    def mask(self, idx: torch.Tensor) -> torch.Tensor:
        """[B, C] bool for the records ``idx``: True where species j may be a negative of row i."""
        m = self.source_species[self.record_source[idx]].clone()
        if self.use_sites:
            dev = idx.device
            site = self.record_site[idx]
            start = self.site_ptr[site]
            count = self.site_ptr[site + 1] - start
            rows = torch.repeat_interleave(torch.arange(len(idx), device=dev), count)
            first = torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
            pos = torch.repeat_interleave(start, count) + torch.arange(int(count.sum()), device=dev) - first
            m[rows, self.site_species[pos]] = False
        return m

    __call__ = mask


# Random absences of a covariate model are drawn where every covariate has a value; at most this
# many candidates per absence are drawn (coverage under 1 % of the rasters' extent is refused).
MAX_DRAWS_PER_POINT = 100
MIN_DRAW_BATCH = 4096


@dataclass
class PseudoNegativePool:
    """Random absence locations drawn once, with their raw covariates (covariate models only)."""

    lonlat: np.ndarray  # float64 [n, 2] degrees
    env: np.ndarray | None  # float64 [n, k] raw covariates (every one finite), None without covariates
    n_drawn: int = 0  # candidates drawn (in the covariates' extent) to find them
    n_no_covariates: int = 0  # of those, the ones (on land, for land absences) without every covariate

    def provenance(self) -> dict[str, Any]:
        """For the bundle's ``data`` section: how many absences, and how many candidates without
        every covariate were drawn again."""
        if self.env is None:
            return {}
        return {"n_random_absences": len(self.lonlat),
                "n_random_redrawn_no_covariates": self.n_no_covariates}


GLOBE = (-180.0, -90.0, 180.0, 90.0)


@dataclass
class CoveredArea:
    """Where a covariate model's random absences may lie: inside ``bounds`` (west, south, east,
    north degrees), where ``sample`` (raw values at points [m, 2] -> [m, k], NaN = missing) gives
    every covariate. Callable as ``sample``."""

    sample: Callable[[np.ndarray], np.ndarray]
    bounds: tuple[float, float, float, float] = GLOBE

    def __call__(self, lonlat: np.ndarray) -> np.ndarray:
        """Degrees [N, 2] (lon, lat) -> raw covariate values [N, k] (NaN where missing)."""
        return self.sample(lonlat)

    @classmethod
    def of(cls, stack: Any) -> CoveredArea:
        """The area of a ``core.covariates.CovariateStack``: the intersection of its rasters' lon/lat
        extents (the whole globe for a raster in another CRS, or one that wraps past 180 degrees)."""
        w, s, e, n = GLOBE
        for r in stack.rasters:
            west, south, east, north = r.bounds
            if not r.geographic or west < -180.0 or east > 180.0:
                continue
            w, s, e, n = max(w, west), max(s, south), min(e, east), min(n, north)
        return cls(stack.sample, (w, s, e, n))


def pseudo_negative_pool(n: int, rng: np.random.Generator, mode: str,
                         covariates: Callable[[np.ndarray], np.ndarray] | None = None,
                         land_mask: str | None = None) -> PseudoNegativePool:
    """``n`` random absences: area-uniform on the sphere or on land (``mode``, one of
    ``core.training.defaults.PSEUDO_NEGATIVES``) and, with ``covariates`` (raw values at points [m, 2] -> [m, k], NaN =
    missing; a :class:`CoveredArea` limits the draw to its bounds), only where every covariate
    has a value: rejection sampling, so the absences are area-uniform over the covered area, never
    given made-up (mean) covariates. Raises ``CovariateError`` when fewer than 1 in
    ``MAX_DRAWS_PER_POINT`` candidates is covered."""
    from .data import random_points_in_bounds, random_sphere_points

    if covariates is None:
        pts = random_land_points(n, rng, land_mask) if mode == "land" else random_sphere_points(n, rng)
        return PseudoNegativePool(pts, None)
    bounds = covariates.bounds if isinstance(covariates, CoveredArea) else GLOBE
    cap = MAX_DRAWS_PER_POINT * n
    kept_pts: list[np.ndarray] = []
    kept_env: list[np.ndarray] = []
    have = drawn = no_cov = 0  # absences found, candidates drawn, candidates (on land) without every covariate
    while have < n and drawn < cap:
        rate = have / drawn if have else 0.25
        m = int(min(cap - drawn, max(MIN_DRAW_BATCH, 1.1 * (n - have) / max(rate, 1.0 / MAX_DRAWS_PER_POINT))))
        pts = random_points_in_bounds(m, rng, bounds)
        idx = np.arange(m)
        if mode == "land":
            from sinr_qgis.core.landmask import is_land

            idx = idx[is_land(pts, land_mask)]
        values = np.asarray(covariates(pts[idx]), dtype=np.float64).reshape(len(idx), -1)
        ok = np.isfinite(values).all(axis=1)
        if have + int(ok.sum()) >= n:  # count the candidates up to the n-th absence, not the batch's rest
            last = int(np.flatnonzero(ok)[n - have - 1])
            idx, values, ok = idx[:last + 1], values[:last + 1], ok[:last + 1]
            m = int(idx[-1]) + 1
        no_cov += int((~ok).sum())
        idx, values = idx[ok], values[ok]
        kept_pts.append(pts[idx])
        kept_env.append(values)
        have += len(idx)
        drawn += m
    if have < n:
        where = "on land " if mode == "land" else ""
        w, s, e, north = bounds
        raise CovariateError(
            f"Random absences are drawn where every covariate has a value, but only {have:,} of {no_cov + have:,} "
            f"random points {where}in the rasters' extent (lon {w:.2f} to {e:.2f}, lat {s:.2f} to {north:.2f}) had "
            f"one ({100 * have / max(drawn, 1):.2g}% of the extent; at least {100 / MAX_DRAWS_PER_POINT:g}% is "
            "needed). The layers "
            "barely overlap, or most of their cells are nodata: check each raster's extent and nodata value"
            + (", or draw random absences on the whole sphere." if mode == "land" else "."))
    return PseudoNegativePool(np.concatenate(kept_pts), np.concatenate(kept_env), n_drawn=drawn,
                              n_no_covariates=no_cov)


def random_land_points(n: int, rng: np.random.Generator, land_mask: str | None = None) -> np.ndarray:
    """``n`` area-uniform random (lon, lat) points on land, float64 [n, 2] (rejection sampling
    against the shipped land mask ``resources/land_mask.tif``, about 29 % of the sphere)."""
    from sinr_qgis.core.landmask import is_land

    from .data import random_sphere_points

    out: list[np.ndarray] = []
    have = 0
    while have < n:
        pts = random_sphere_points(max(4 * (n - have), 1024), rng)
        pts = pts[is_land(pts, land_mask)]
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:n]
