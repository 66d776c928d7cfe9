"""How far one species' map can be trusted: where its training records are, and, when the bundle
carries it, how well its map agrees with an expert range map.

Stored in the bundle (all optional: bundles of older versions load, and what they lack is unknown):

- ``species.csv`` ``n_train`` (always), and ``lon_min, lat_min, lon_max, lat_max, n_cells``
  (:func:`record_footprints`, written at export): the box holding the bulk of the species'
  training records and the number of distinct 1-degree cells they fall in;
- ``model.json`` ``evaluation.ranges_ap``: ``{code: AP}``, the average precision (0-1) of the
  species' scores against its expert range (for the bundled model: Little's ranges, protocol
  na-trees-v1); ``evaluation.ranges_reference`` names those ranges.

Levels (:func:`species_reliability`), set from the first bundled NA-Trees model (v1, pure SINR; 169
species, 130 with an AP against Little's ranges; its median AP is 0.60, its mean 0.54, the best baseline's mean 0.53):

- AP below ``AP_POOR`` (0.25) is "poor": the worst quarter of the species (32 of 130). Their
  records cover a corner of the range (Douglas-fir, ponderosa pine, subalpine fir: only Wyoming
  plots; AP 0.06-0.11) or lie mostly outside the evaluated box; the map misses most of the range.
  AP from 0.25 to ``AP_GOOD`` (0.5) is "caution", from 0.5 "good".
- Without an AP only the records speak. Records in fewer than ``POOR_CELLS`` (3) one-degree cells,
  or fewer than ``POOR_RECORDS`` (5) records, is "poor": of the species with records in 1-2 cells,
  76 % have AP below 0.5 and 47 % below 0.25 (fewer than 5 records: 71 % and 43 %). Records in
  at least ``GOOD_CELLS`` (80) cells, or at least ``GOOD_RECORDS`` (1000) records, is "good": 97 %
  of those species reach AP 0.5. Between the two the AP of a species is a coin flip (median
  0.36-0.65 per bin of cell counts), hence "caution".
- An AP overrules the records (Douglas-fir has 106 records in 22 cells yet AP 0.11), except that a
  good AP on "poor" records gives "caution": three records can agree with a range by luck.
- No records count (``n_train`` 0, e.g. an imported official model) and no AP: "unknown".

The thresholds come from one continental model of trees; 1-degree cells are coarse for a regional
model, whose species then read "caution" unless an AP says more.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LEVELS = ("good", "caution", "poor", "unknown")
CELL_DEG = 1.0  # cell size (degrees) of the spread measure n_cells
CORE_SHARE = 0.9  # record_extent: the box of this share of the records, those nearest their median
AP_POOR, AP_GOOD = 0.25, 0.5
POOR_RECORDS, POOR_CELLS = 5, 3
GOOD_RECORDS, GOOD_CELLS = 1000, 80
DEFAULT_REFERENCE = "expert range maps"
CARD_POOR = 50  # poor species named on the model card (the bundled model has 33); more are counted

Extent = tuple[float, float, float, float]


@dataclass(frozen=True)
class SpeciesReliability:
    """What a user should know before trusting one species' map."""

    n_train: int  # training records of the species (0 when the bundle does not say)
    record_extent: Extent | None  # lon_min, lat_min, lon_max, lat_max (degrees) of the bulk of the records
    ap_ranges: float | None  # average precision (0-1) against expert ranges, when the bundle has it
    level: str  # one of LEVELS
    summary: str  # one plain sentence
    warning: str  # empty when none
    n_cells: int | None = None  # distinct 1-degree cells of the records; None when unknown


@dataclass(frozen=True)
class RecordFootprint:
    """Where one species' training records are (stored in ``species.csv``)."""

    extent: Extent | None  # None for a species without records
    n_cells: int


def record_footprints(lonlat: np.ndarray, species: np.ndarray, n_species: int) -> list[RecordFootprint]:
    """Per species (head order), the footprint of its records.

    ``lonlat`` [N, 2] degrees (lon, lat); ``species`` [N] int head index. ``n_cells`` counts the
    distinct ``CELL_DEG`` cells holding records. ``extent`` is the lon/lat box of the
    ``CORE_SHARE`` of the records nearest to their median point (lon distances scaled by the cosine
    of the median latitude), so a few planted trees far away do not stretch it over a continent
    while two real populations, each with more than the rest, both stay inside. Longitudes are
    taken as given (-180..180): a species across the antimeridian gets a box around the globe.
    """
    ll = np.asarray(lonlat, dtype=np.float64)
    sp = np.asarray(species, dtype=np.int64)
    out = []
    for i in range(n_species):
        pts = ll[sp == i]
        if pts.shape[0] == 0:
            out.append(RecordFootprint(None, 0))
            continue
        n_cells = np.unique(np.floor(pts / CELL_DEG), axis=0).shape[0]
        mid = np.median(pts, axis=0)
        d2 = ((pts[:, 0] - mid[0]) * np.cos(np.radians(mid[1]))) ** 2 + (pts[:, 1] - mid[1]) ** 2
        core = pts[np.argsort(d2, kind="stable")[:int(np.ceil(CORE_SHARE * pts.shape[0]))]]
        lo, hi = core.min(0), core.max(0)
        out.append(RecordFootprint((float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), int(n_cells)))
    return out


def ranges_ap(meta: dict[str, Any]) -> dict[str, float]:
    """``{code: AP}`` from ``model.json`` ``evaluation.ranges_ap`` (empty when absent)."""
    ev = meta.get("evaluation")
    aps = ev.get("ranges_ap") if isinstance(ev, dict) else None
    return {str(k): float(v) for k, v in aps.items()} if isinstance(aps, dict) else {}


def ranges_reference(meta: dict[str, Any]) -> str:
    """What the bundle's ``ranges_ap`` was measured against, for messages."""
    ev = meta.get("evaluation")
    ref = ev.get("ranges_reference") if isinstance(ev, dict) else None
    return str(ref) if ref else DEFAULT_REFERENCE


def species_reliability(bundle: Any, species: Any) -> SpeciesReliability:
    """The reliability of ``species`` (a ``Species`` of ``bundle``, or text that names one) in
    ``bundle`` (a ``ModelBundle``). Raises ``SpeciesNotFoundError`` for text naming no species."""
    if isinstance(species, str):
        species = bundle.find_species(species)
    return assess(species, ranges_ap(bundle.meta).get(species.code), ranges_reference(bundle.meta))


def assess(species: Any, ap: float | None, reference: str = DEFAULT_REFERENCE) -> SpeciesReliability:
    """The reliability of one species from its ``n_train``, ``record_extent``, ``n_cells``
    (attributes of a ``Species``; the last two may be missing or None) and its AP (0-1) or None."""
    n = max(int(species.n_train or 0), 0)
    extent = getattr(species, "record_extent", None)
    cells = getattr(species, "n_cells", None)
    level, by_ap, by_records = _levels(n, cells, ap)
    who = getattr(species, "label", "") or species.code
    summary = f"{who}: {_records_text(n, cells, extent)}" + (
        f"; agreement with {reference}: AP {ap:.1%}." if ap is not None else
        f"; not compared with {reference}." if n else ".")
    return SpeciesReliability(n, extent, ap, level, summary,
                              _warning(level, by_ap, by_records, n, cells, ap, reference), cells)


def _levels(n: int, cells: int | None, ap: float | None) -> tuple[str, str | None, str | None]:
    """(level, the level the AP alone gives, the level the records alone give) of one species."""
    by_records = _records_level(n, cells)
    by_ap = None if ap is None else "poor" if ap < AP_POOR else "caution" if ap < AP_GOOD else "good"
    if by_ap is None:
        return by_records or "unknown", by_ap, by_records
    if by_ap == "good" and by_records == "poor":
        return "caution", by_ap, by_records
    return by_ap, by_ap, by_records


def species_levels(bundle: Any) -> list[str]:
    """The level (one of ``LEVELS``) of each species of ``bundle``, in head order: the levels alone,
    without the sentences of :func:`assess`, so a 47,375-species model takes tens of milliseconds."""
    aps = ranges_ap(bundle.meta)
    return [_levels(max(int(s.n_train or 0), 0), getattr(s, "n_cells", None), aps.get(s.code))[0]
            for s in bundle.species]


def level_counts(bundle: Any) -> dict[str, int]:
    """How many species of ``bundle`` have each of ``LEVELS`` (see :func:`species_levels`)."""
    counts = dict.fromkeys(LEVELS, 0)
    for level in species_levels(bundle):
        counts[level] += 1
    return counts


def _records_level(n: int, cells: int | None) -> str | None:
    if n <= 0:
        return None
    if n < POOR_RECORDS or (cells is not None and cells < POOR_CELLS):
        return "poor"
    if n >= GOOD_RECORDS or (cells is not None and cells >= GOOD_CELLS):
        return "good"
    return "caution"


def _records_text(n: int, cells: int | None, extent: Extent | None) -> str:
    if n <= 0:
        return "the model does not say how many records it was trained on"
    text = f"{n:,} training record{'s' if n != 1 else ''}"
    if cells is not None:
        text += f" in {cells} one-degree cell{'s' if cells != 1 else ''}"
    if extent is not None:
        text += (f", at {_deg(extent[0], 'E', 'W')}, {_deg(extent[1], 'N', 'S')}" if n == 1 else
                 f", mostly within {format_extent(extent)}")
    return text


def _warning(level: str, by_ap: str | None, by_records: str | None, n: int, cells: int | None,
             ap: float | None, reference: str) -> str:
    few = f"only {n} record{'s' if n != 1 else ''}" + (
        f" in {cells} one-degree cell{'s' if cells != 1 else ''}" if cells is not None else "")
    if by_ap == "poor":
        why = (f"it was trained on {few}" if by_records == "poor" else
               "its training records cover only part of where the species grows, or lie elsewhere")
        return (f"Poor map: it disagrees with {reference} (AP {ap:.1%}), likely because {why}. It can miss "
                "much of the range and show the species where it does not grow. Do not use it without "
                "checking a range map or local knowledge.")
    if by_ap == "caution":
        return (f"Use with caution: fair agreement with {reference} (AP {ap:.1%}). Check the map against "
                "a range map before relying on it.")
    if by_ap == "good" and level == "caution":
        return (f"Use with caution: {few}. The map agrees with {reference} (AP {ap:.1%}), but so few "
                "records can agree by chance.")
    if by_records == "poor":
        return (f"Poor map: {few}. The map mostly spreads the model's general pattern around them; "
                "treat it as a rough guess.")
    if level == "caution":
        return (f"Use with caution: {few if n < GOOD_RECORDS else f'{n} records'} and no comparison "
                f"with {reference}. Away from the records the map is extrapolation.")
    return ""


def format_extent(extent: Extent) -> str:
    """``(-111.0, 41.0, -104.1, 45.0)`` -> ``'111.0°W–104.1°W, 41.0°N–45.0°N'``."""
    x0, y0, x1, y1 = extent
    return f"{_deg(x0, 'E', 'W')}–{_deg(x1, 'E', 'W')}, {_deg(y0, 'N', 'S')}–{_deg(y1, 'N', 'S')}"


def _deg(v: float, pos: str, neg: str) -> str:
    return f"{abs(v):.1f}°{pos if v >= 0 else neg}"


def every_species_reliability(bundle: Any) -> list[tuple[Any, SpeciesReliability]]:
    """``(Species, SpeciesReliability)`` for each species of ``bundle``, in head order."""
    aps, ref = ranges_ap(bundle.meta), ranges_reference(bundle.meta)
    return [(s, assess(s, aps.get(s.code), ref)) for s in bundle.species]


def reliability_lines(bundle: Any, limit: int = CARD_POOR) -> list[str]:
    """The model card's reliability section: the count per level, then each poor species in one
    line (its AP, records and cells), the first ``limit`` of them and how many more."""
    counts = level_counts(bundle)
    lines = ["Reliability of the species' maps: "
             + ", ".join(f"{counts[lv]} {lv}" for lv in LEVELS if counts[lv])
             + f" (from the training records and, where measured, the agreement with {ranges_reference(bundle.meta)})."]
    if counts["poor"]:
        aps, ref = ranges_ap(bundle.meta), ranges_reference(bundle.meta)
        poor = []
        for s in bundle.species:
            if len(poor) == limit:
                break
            ap = aps.get(s.code)
            if _levels(max(int(s.n_train or 0), 0), getattr(s, "n_cells", None), ap)[0] == "poor":
                poor.append((s, assess(s, ap, ref)))  # sentences for the listed species only
        lines.append(f"Poor maps ({counts['poor']}; check them against a range map before use):")
        for s, r in poor:
            facts = ([f"AP {r.ap_ranges:.1%}"] if r.ap_ranges is not None else []) + [
                f"{r.n_train:,} record{'s' if r.n_train != 1 else ''}"
                + (f" in {r.n_cells} one-degree cell{'s' if r.n_cells != 1 else ''}" if r.n_cells is not None else "")]
            lines.append(f"  {getattr(s, 'label', s.code)}: {', '.join(facts)}")
        if counts["poor"] > len(poor):
            lines.append(f"  … and {counts['poor'] - len(poor):,} more: the panel's species list or Processing "
                         "'List a model's species' (sinr:model_species) shows them all.")
    return lines


RICHNESS_CAVEAT = (
    "Species richness from presence-only records reflects sampling effort as much as richness: more "
    "species reach their thresholds where more records were collected. Read it as predicted ranges "
    "overlapping, not as the number of species living there.")
