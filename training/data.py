"""Training data for SINR: species index, per-species cap, grid thinning, random sphere points.

Order of the selection steps in ``prepare_training_data``: thinning (optional) -> dropping species
with too few records (optional) -> per-species cap. The species index (the model's head order)
is the sorted list of the remaining species ids.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sinr_qgis.core.errors import OccurrenceError
from sinr_qgis.core.occurrences import Occurrences
from sinr_qgis.core.train_checks import covered_points


@dataclass
class TrainingData:
    """The records a model is trained on, in memory, plus where they came from."""

    lonlat: np.ndarray  # float32 [N, 2] degrees (lon, lat)
    species: np.ndarray  # int64 [N] index into ``codes``
    codes: list[str]  # species ids in head order (sorted)
    names: list[str]  # scientific names in head order
    env: np.ndarray | None = None  # float32 [N, k] raw covariate values (NaN = missing), env models only
    source: np.ndarray | None = None  # object [N] source of each record, when known
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n_records(self) -> int:
        """Number of presence records (rows of ``lonlat``)."""
        return len(self.species)

    @property
    def n_species(self) -> int:
        """Number of species (columns of the model's head)."""
        return len(self.codes)

    def n_train(self) -> np.ndarray:
        """Records per species, head order."""
        return np.bincount(self.species, minlength=self.n_species)

    def fingerprint(self) -> str:
        """A hash of what is trained on (locations, labels, species list), for safe ``--resume``."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.lonlat, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(self.species, dtype=np.int64).tobytes())
        h.update("\n".join(self.codes).encode("utf-8"))
        if self.env is not None:
            h.update(np.ascontiguousarray(self.env, dtype=np.float32).tobytes())
        return h.hexdigest()


def species_index(ids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Head order = sorted unique ids; returns (ids in head order, int64 index of each record)."""
    codes, idx = np.unique(np.asarray(ids).astype(str), return_inverse=True)
    return [str(c) for c in codes], idx.astype(np.int64)


def cap_per_species(species: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices (sorted) of a seeded random subset of at most ``cap`` records per species.

    As the paper: one random permutation of all records; walk it and keep a record while its
    species has fewer than ``cap`` kept. ``cap`` <= 0 keeps everything.
    """
    species = np.asarray(species)
    n = len(species)
    if cap <= 0:
        return np.arange(n)
    perm = np.random.default_rng(seed).permutation(n)
    sp = species[perm]
    # rank of each permuted record among the earlier permuted records of its species
    order = np.argsort(sp, kind="stable")
    sorted_sp = sp[order]
    first = np.searchsorted(sorted_sp, sorted_sp, side="left")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - first
    return np.sort(perm[rank < cap])


def thin_per_cell(lon: np.ndarray, lat: np.ndarray, species: np.ndarray, cell_deg: float) -> np.ndarray:
    """Indices (sorted) keeping the first record of each (species, grid cell) pair.

    Cells are ``cell_deg`` x ``cell_deg`` degrees, aligned to (-180, -90).
    """
    if not cell_deg > 0:
        raise ValueError(f"thinning cell size must be > 0 degrees, got {cell_deg}")
    ix = np.floor((np.asarray(lon, np.float64) + 180.0) / cell_deg).astype(np.int64)
    iy = np.floor((np.asarray(lat, np.float64) + 90.0) / cell_deg).astype(np.int64)
    keys = np.stack([np.asarray(species).astype(np.int64), ix, iy], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    return np.sort(first)


def sphere_lonlat(u: Any, v: Any, xp: Any = np) -> Any:
    """Area-uniform points on the sphere from uniforms u, v in [0, 1): (lon, lat) degrees [n, 2].

    lon = 360 u - 180, lat = 90 - degrees(arccos(2 v - 1)). Works for numpy and torch (``xp``).
    """
    lon = 360.0 * u - 180.0
    lat = 90.0 - xp.arccos(xp.clip(2.0 * v - 1.0, -1.0, 1.0)) * (180.0 / math.pi)
    return xp.stack([lon, lat], 1)


def random_sphere_points(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` area-uniform random (lon, lat) points, float64 [n, 2]."""
    return sphere_lonlat(rng.random(n), rng.random(n), np)


def random_points_in_bounds(n: int, rng: np.random.Generator,
                            bounds: tuple[float, float, float, float]) -> np.ndarray:
    """``n`` area-uniform random (lon, lat) points inside ``bounds`` (west, south, east, north
    degrees), float64 [n, 2]: the sphere's points that fall in the box, drawn directly (uniform in
    lon and in sin(lat)); the whole globe gives the distribution of :func:`random_sphere_points`."""
    west, south, east, north = bounds
    s0, s1 = math.sin(math.radians(south)), math.sin(math.radians(north))
    lon = west + (east - west) * rng.random(n)
    lat = np.degrees(np.arcsin(np.clip(s0 + (s1 - s0) * rng.random(n), -1.0, 1.0)))
    return np.stack([lon, lat], 1)


@dataclass
class CoveredRecords:
    """What :func:`keep_covered` kept and left out."""

    occ: Occurrences  # the records with a value in every covariate
    env: np.ndarray  # float64 [n_kept, k] their raw covariate values
    n_removed: int  # records left out: outside a raster, or on a nodata cell of one
    species_removed: list[str]  # species (ids) with no record left

    def provenance(self) -> dict[str, Any]:
        """The counts as the bundle's ``data`` section records them."""
        return {"n_removed_no_covariates": self.n_removed, "n_species_no_covariates": len(self.species_removed),
                "species_no_covariates": self.species_removed[:SPECIES_LISTED]}

    def text(self, covariates: str) -> str:
        """One line for the log: how many records and species were left out, and why."""
        n_kept = len(self.occ)
        line = (f"covariates ({covariates}): {n_kept:,} of {n_kept + self.n_removed:,} records have a value in "
                f"every covariate; {self.n_removed:,} outside the rasters or on a nodata cell are left out")
        if self.species_removed:
            names = [str(self.occ.names.get(c, c)) for c in self.species_removed[:SPECIES_LISTED]]
            more = len(self.species_removed) - len(names)
            line += (f", and with them {len(self.species_removed):,} species that have no other record: "
                     + ", ".join(names) + (f" and {more:,} more" if more > 0 else ""))
        return line + "."


SPECIES_LISTED = 10  # species named in messages and in the bundle when records are left out


def keep_covered(occ: Occurrences, covariates: Any) -> CoveredRecords:
    """Leave out the records without a value in every covariate (outside a raster, or on a nodata
    cell of one): a model cannot be told their environment, and filling it in (with the mean)
    would train on made-up values. ``covariates``: a ``core.covariates.CovariateStack``.

    Raises ``CovariateError`` when the rasters miss most records (the pre-training check's rule,
    ``core.train_checks.covered_points``), with the rasters' and the records' extents."""
    lonlat = np.stack([np.asarray(occ.lon, np.float64), np.asarray(occ.lat, np.float64)], 1)
    env = covariates.sample(lonlat)
    ok = covered_points(covariates, lonlat, env)
    species = np.asarray(occ.species).astype(str)
    gone = sorted(set(species[~ok].tolist()) - set(species[ok].tolist()))
    kept = dataclasses.replace(occ, lon=occ.lon[ok], lat=occ.lat[ok], species=occ.species[ok],
                               source=None if occ.source is None else occ.source[ok])
    return CoveredRecords(occ=kept, env=env[ok], n_removed=int((~ok).sum()), species_removed=gone)


def prepare_training_data(occ: Occurrences, *, cap: int = 1000, seed: int = 0,
                          thin_deg: float | None = None, min_records: int = 1,
                          env: np.ndarray | None = None) -> TrainingData:
    """Select the training records from ``occ`` (thin, drop rare species, cap) and index species.

    ``env``: the raw covariate values of ``occ``'s records [N, k] (:func:`keep_covered`); the
    selected records' rows become ``TrainingData.env`` (float32), read once.

    Raises ``OccurrenceError`` when nothing is left to train on.
    """
    species_ids = np.asarray(occ.species).astype(str)
    n_valid = len(species_ids)
    prov: dict[str, Any] = {"file": occ.origin, "n_read": int(occ.n_read),
                            "dropped": {k: int(v) for k, v in occ.dropped.items()},
                            "n_valid": n_valid}
    keep = np.arange(n_valid)
    if thin_deg:
        _, idx = species_index(species_ids)
        keep = thin_per_cell(occ.lon, occ.lat, idx, thin_deg)
        prov["thin_deg"] = float(thin_deg)
        prov["n_removed_by_thinning"] = int(n_valid - len(keep))
    if min_records > 1:
        ids, counts = np.unique(species_ids[keep], return_counts=True)
        rare = set(ids[counts < min_records].tolist())
        before = len(keep)
        keep = keep[~np.isin(species_ids[keep], list(rare))] if rare else keep
        prov["min_records"] = int(min_records)
        prov["n_species_below_min_records"] = len(rare)
        prov["n_removed_below_min_records"] = int(before - len(keep))
    if len(keep) == 0:
        raise OccurrenceError(f"No records left to train on in {occ.origin or 'the data'} after "
                              f"thinning / minimum records per species ({min_records}). Lower --min-records.")
    codes, idx = species_index(species_ids[keep])
    sub = cap_per_species(idx, cap, seed)
    prov["cap"] = int(cap)
    prov["n_removed_by_cap"] = int(len(keep) - len(sub))
    keep, idx = keep[sub], idx[sub]
    prov["n_used"] = len(keep)
    prov["n_species"] = len(codes)
    lonlat = np.stack([np.asarray(occ.lon, np.float64)[keep], np.asarray(occ.lat, np.float64)[keep]], 1)
    names = [str(occ.names.get(c, c)) for c in codes]
    source = None if occ.source is None else np.asarray(occ.source, dtype=object)[keep]
    return TrainingData(lonlat=lonlat.astype(np.float32), species=idx, codes=codes, names=names,
                        env=None if env is None else np.asarray(env)[keep].astype(np.float32),
                        source=source, provenance=prov)
