"""Up-front checks of training input, so a bad run fails in seconds with a message, not mid-training.

Both the ``sinr:train_model`` algorithm and the dock's training task call
:func:`check_training_input` before they start the training process. numpy + GDAL only.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .covariates import KEEP_BAND_BYTES  # a band up to this size is read once and kept
from .errors import CovariateError, MemoryBudgetError, OccurrenceError
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
    n_without_covariates: int = 0  # records without a value in every covariate: left out of training
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
            if self.n_without_covariates:
                text += (f": {self.n_without_covariates:,} records without a value in every covariate (outside "
                         "the rasters or on a nodata cell) will be left out")
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
                           min_fraction: float = MIN_COVERED_FRACTION) -> np.ndarray:
    """bool [N]: the points with a value in every covariate (read as training reads them: windows
    only); refuse rasters that miss more than ``1 - min_fraction`` of the points."""
    from .covariates import CovariateStack

    stack = CovariateStack.open(list(paths))
    lonlat = np.asarray(lonlat, np.float64).reshape(-1, 2)
    if len(lonlat) == 0:
        return np.ones(0, dtype=bool)
    return covered_points(stack, lonlat, stack.sample(lonlat), min_fraction)


def covered_points(stack: Any, lonlat: np.ndarray, values: np.ndarray,
                   min_fraction: float = MIN_COVERED_FRACTION) -> np.ndarray:
    """bool [N]: the points (lon, lat) [N, 2] whose covariate ``values`` [N, k] (NaN = missing, as
    ``stack.sample`` of a ``core.covariates.CovariateStack`` gives them) are all there. The one rule
    of the pre-training check and of training itself: raises ``CovariateError`` with the rasters'
    and the points' extents when fewer than ``min_fraction`` of the points are covered."""
    covered = np.isfinite(values).all(axis=1)
    frac = float(covered.mean()) if covered.size else 1.0
    if frac < min_fraction:
        names = ", ".join(r.path.name for r in stack.rasters)
        extents = "; ".join(f"{r.path.name}: {r.extent_text()}" for r in stack.rasters)
        raise CovariateError(
            f"The covariate rasters ({names}) do not cover the observations: only {int(covered.sum()):,} of "
            f"{len(lonlat):,} points ({100 * frac:.0f}%) fall on cells with values in every raster, at least "
            f"{100 * min_fraction:.0f}% are needed. Rasters cover {extents}; the points span lon "
            f"{lonlat[:, 0].min():.2f} to {lonlat[:, 0].max():.2f}, lat {lonlat[:, 1].min():.2f} to "
            f"{lonlat[:, 1].max():.2f}. Use rasters that cover the study area.")
    return covered


# ---- memory ------------------------------------------------------------------------------------
GIB = float(1 << 30)
LOGIT_COPIES = 3  # a batch's [rows, species] float32 tensors alive at once: logits, their gradient, the head's backward
ACTIVATION_COPIES = 5  # per residual block: two linear outputs, ReLU, the dropout mask, the gradient
ADAM_COPIES = 4  # weights, gradients and Adam's two moments
READ_STRIP_BYTES = 3 * 4 * (1 << 22)  # a statistics strip of 2**22 cells: as read, as float32, and valid cells


def training_memory(*, n_records: int, n_features: int, n_covariates: int, n_species: int, batch_size: int,
                    width: int, depth: int, pool: int, random_negatives: bool) -> dict[str, int]:
    """Bytes a training run holds at its peak, by what holds them (an estimate: float32 tensors).

    ``n_records`` training records [N] with ``n_features`` input features each (the encoding's
    width) and ``n_covariates`` raw covariates; ``n_species`` output classes; a batch of
    ``batch_size`` records (twice as many rows with ``random_negatives``: the random absences go
    through the network with them); the network's ``width`` and ``depth``; ``pool`` random absences
    drawn once (covariate or land models; 0 otherwise). Covariate reads count one kept band per
    covariate and a statistics strip."""
    rows = batch_size * (2 if random_negatives else 1)
    params = n_features * width + width + depth * 2 * (width * width + width) + width * n_species
    return {
        "records": n_records * (4 * (2 + n_covariates + n_features) + 8),
        "random absences": pool * (4 * n_features + 8 * (2 + n_covariates)),
        "covariate reads": (n_covariates * KEEP_BAND_BYTES + READ_STRIP_BYTES) if n_covariates else 0,
        "network": 4 * ADAM_COPIES * params,
        "batches": 4 * rows * (LOGIT_COPIES * n_species + width * (2 + ACTIVATION_COPIES * depth)),
    }


def available_memory() -> tuple[float | None, str]:
    """(bytes this process may still take, what bounds it), the tightest of: the system's available
    memory (Linux ``MemAvailable``), a container's or job's memory limit (cgroup, e.g. Slurm, Docker),
    and the address-space limit (``ulimit -v``) less what the process has mapped. (None, "") where
    none can be read (macOS, Windows): the check is then skipped."""
    found: list[tuple[float, str]] = []
    meminfo = _read_kib("/proc/meminfo", "MemAvailable:")
    if meminfo is not None:
        found.append((meminfo, "available memory"))
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_number(limit_file), _read_number(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:  # v1 writes "no limit" as ~2**63
            found.append((max(0.0, limit - usage), "the memory limit of this job or container"))
            break
    soft = _address_space_limit()
    mapped = _read_kib("/proc/self/status", "VmSize:")
    if soft is not None and mapped is not None:
        found.append((max(0.0, soft - mapped), "the address-space limit (ulimit -v)"))
    return min(found) if found else (None, "")


def _address_space_limit() -> float | None:
    """The soft ``ulimit -v`` in bytes; None where there is none (or no such limit: Windows)."""
    try:
        import resource
    except ImportError:
        return None
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return None if soft == resource.RLIM_INFINITY or soft < 0 else float(soft)


def _read_kib(path: str, key: str) -> float | None:
    """A ``key: N kB`` line of a /proc file, in bytes; None when unreadable."""
    try:
        with open(path, encoding="ascii") as f:
            line = next((x for x in f if x.startswith(key)), None)
        return None if line is None else 1024.0 * float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _read_number(path: str) -> float | None:
    """A file holding one number of bytes (cgroup files); None when unreadable or "max"."""
    try:
        return float(Path(path).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def check_memory_budget(parts: dict[str, int], available: tuple[float | None, str] | None = None,
                        advice: str = "") -> str:
    """One line for the log: the estimated need (``parts``, :func:`training_memory`) against the
    memory available (:func:`available_memory` unless given). Raises ``MemoryBudgetError`` with
    that line and ``advice`` when the need exceeds what is available."""
    need = sum(parts.values())
    free, bound = available if available is not None else available_memory()
    detail = ", ".join(f"{k} {v / GIB:.2f}" for k, v in parts.items() if v)
    line = f"memory: about {need / GIB:.2f} GiB needed ({detail})"
    if free is None:
        return line + "; the memory available is unknown here."
    line += f"; {free / GIB:.2f} GiB available ({bound})"
    if need > free:
        raise MemoryBudgetError(f"Not enough memory: {line.removeprefix('memory: ')}. {advice}".strip())
    return line + "."


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
        covered = check_covariates_cover(covariates, lonlat)
        summary.covered_fraction = float(covered.mean()) if covered.size else 1.0
        summary.n_without_covariates = int((~covered).sum())
    return summary
