"""Up-front checks of training input, so a bad run fails in seconds with a message, not mid-training.

Both the ``sinr:train_model`` algorithm and the dock's training task call
:func:`check_training_input` before they start the training process. numpy + GDAL only.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CovariateError, OccurrenceError
from .occurrence_terms import drop_reason_text
from .occurrences import Occurrences, read_occurrences

MIN_TRAINING_RECORDS = 10  # fewer records than this cannot shape a range map
MIN_SPECIES = 2
MIN_COVERED_FRACTION = 0.5  # covariate rasters must give values at half of the points at least
SAME_PLACE_DEG = 1e-3  # about 100 m: closer than this, a range map has nothing to learn from


@dataclass
class InputSummary:
    """What the checks found: usable records, species kept, and what was dropped."""

    n_records: int
    n_species: int
    n_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    n_species_below_min: int = 0
    n_records_below_min: int = 0
    covered_fraction: float | None = None
    origin: str = ""

    def text(self) -> str:
        parts = [f"{self.origin or 'observations'}: {self.n_records:,} records of {self.n_species:,} species "
                 f"will be used ({self.n_read:,} rows read"]
        drops = [f"{n:,} {drop_reason_text(k)}" for k, n in self.dropped.items() if n]
        if self.n_records_below_min:
            drops.append(f"{self.n_records_below_min:,} of {self.n_species_below_min:,} species below the "
                         "minimum records")
        text = parts[0] + ("; dropped " + ", ".join(drops) if drops else "") + ")"
        if self.covered_fraction is not None:
            text += f"; covariates cover {100 * self.covered_fraction:.0f}% of the records"
        return text + "."


def check_occurrences(occ: Occurrences, min_records: int = 1, species_label: str = "species") -> InputSummary:
    """Refuse records that cannot train a model; return what will be used.

    Checks, in order: any usable record at all, more than one species value, species with at
    least ``min_records`` records, enough records overall, and not all points in one place.
    """
    label = occ.origin or "the observations"
    min_records = max(1, int(min_records or 1))
    n = len(occ)
    if n == 0:
        dropped = ", ".join(f"{v:,} {drop_reason_text(k)}" for k, v in occ.dropped.items() if v)
        raise OccurrenceError(
            f"{label} has no usable records ({occ.n_read:,} rows read" + (f"; dropped {dropped}" if dropped else "")
            + f"). Training needs at least {MIN_TRAINING_RECORDS} records with a {species_label} and coordinates.")
    ids, counts = np.unique(np.asarray(occ.species).astype(str), return_counts=True)
    if len(ids) < MIN_SPECIES:
        raise OccurrenceError(
            f"The {species_label} field of {label} has one value only ({ids[0]!r}) across {n:,} records. "
            f"A SINR model learns from at least {MIN_SPECIES} species: choose the field that holds the species "
            "name or code of each observation, or add observations of other species.")
    keep = counts >= min_records
    if not keep.any():
        best = int(np.argmax(counts))
        raise OccurrenceError(
            f"Too few records: no species in {label} has the minimum of {min_records} records per species "
            f"(the most is {int(counts[best])} for {ids[best]!r}). Lower the minimum records per species or add "
            "observations.")
    n_used = int(counts[keep].sum())
    if n_used < MIN_TRAINING_RECORDS:
        raise OccurrenceError(
            f"Too few records: {n_used} usable records" + (f" of species with at least {min_records} records"
                                                          if min_records > 1 else "")
            + f" in {label}; training needs at least {MIN_TRAINING_RECORDS}. Add observations"
            + (" or lower the minimum records per species." if min_records > 1 else "."))
    mask = np.isin(np.asarray(occ.species).astype(str), ids[keep])
    lon, lat = np.asarray(occ.lon, np.float64)[mask], np.asarray(occ.lat, np.float64)[mask]
    if np.ptp(lon) <= SAME_PLACE_DEG and np.ptp(lat) <= SAME_PLACE_DEG:
        raise OccurrenceError(
            f"All {n_used:,} records of {label} are at the same place ({lon[0]:.5f}, {lat[0]:.5f}, within "
            f"{SAME_PLACE_DEG} degrees). A range map needs observations at different places: check that the "
            "layer's CRS is right and that the coordinates were not replaced by a default point.")
    return InputSummary(n_records=n_used, n_species=int(keep.sum()), n_read=int(occ.n_read),
                        dropped=dict(occ.dropped), n_species_below_min=int((~keep).sum()),
                        n_records_below_min=int(counts[~keep].sum()), origin=occ.origin)


def check_covariates_cover(paths: Sequence[str | Path], lonlat: np.ndarray,
                           min_fraction: float = MIN_COVERED_FRACTION) -> float:
    """Fraction of points with values in every covariate; refuse rasters that miss most points."""
    from .covariates import CovariateStack

    stack = CovariateStack.open(list(paths))
    lonlat = np.asarray(lonlat, np.float64).reshape(-1, 2)
    if len(lonlat) == 0:
        return 1.0
    values = stack.sample(lonlat)
    covered = np.isfinite(values).all(axis=1)
    frac = float(covered.mean())
    if frac < min_fraction:
        names = ", ".join(Path(p).name for p in paths)
        extents = "; ".join(_raster_extent_text(r) for r in stack.rasters)
        raise CovariateError(
            f"The covariate rasters ({names}) do not cover the observations: only {int(covered.sum()):,} of "
            f"{len(lonlat):,} points ({100 * frac:.0f}%) fall on cells with values in every raster, at least "
            f"{100 * min_fraction:.0f}% are needed. Rasters cover {extents}; the points span lon "
            f"{lonlat[:, 0].min():.2f} to {lonlat[:, 0].max():.2f}, lat {lonlat[:, 1].min():.2f} to "
            f"{lonlat[:, 1].max():.2f}. Use rasters that cover the study area.")
    return frac


def _raster_extent_text(raster) -> str:
    x0, dx, _, y0, _, dy = raster.geotransform
    _, h, w = raster.values.shape
    xs, ys = sorted((x0, x0 + w * dx)), sorted((y0, y0 + h * dy))
    return f"lon {xs[0]:.2f} to {xs[1]:.2f}, lat {ys[0]:.2f} to {ys[1]:.2f}"


def check_training_input(data: str | Path, *, min_records: int = 1, covariates: Sequence[str | Path] = (),
                         species_column: str | None = None, lat_column: str | None = None,
                         lon_column: str | None = None, source_column: str | None = None,
                         species_label: str = "species", origin: str | None = None) -> InputSummary:
    """Read the observation file the CLI will read and run every check on it.

    ``origin`` names the data in messages (e.g. the layer the file was exported from).
    """
    occ = read_occurrences(data, species_column=species_column, lat_column=lat_column,
                           lon_column=lon_column, source_column=source_column)
    if origin:
        occ.origin = origin
    summary = check_occurrences(occ, min_records=min_records, species_label=species_label)
    if covariates:
        lonlat = np.stack([np.asarray(occ.lon, np.float64), np.asarray(occ.lat, np.float64)], 1)
        summary.covered_fraction = check_covariates_cover(covariates, lonlat)
    return summary
