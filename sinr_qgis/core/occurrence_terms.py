"""What a row means for a presence-only model: the Darwin Core, GBIF and iNaturalist columns that
make a record something other than "this species lived here, in the wild".

A SINR model learns a species' range from places where it was present. A record of an absence,
a fossil, a zoo animal or a tree in a botanic garden would teach it the opposite or the wrong
place, so such rows are dropped and counted under a reason that ``Occurrences.summary()`` shows.
Columns are found by name, case-insensitively (``occurrenceStatus``, ``OCCURRENCESTATUS``);
values are compared case- and punctuation-insensitively (``FOSSIL_SPECIMEN`` = ``FossilSpecimen``).
A file without these columns loses nothing.

===============================================  ====================  ==============================================
term (column) = value                            rule                  why
===============================================  ====================  ==============================================
occurrenceStatus = absent (not detected, 0, no)  drop: absent          an absence is not a presence
individualCount = 0 or organismQuantity = 0,     drop: with a count    as GBIF reads it: a count of 0 means absent;
with occurrenceStatus empty or unreadable        of 0                  an explicit "present" wins, and a specimen
and basisOfRecord not a specimen                                       with a count of 0 still exists
basisOfRecord = FossilSpecimen (FOSSIL_...)      drop: fossil          where the species lived in the past
basisOfRecord = LivingSpecimen (LIVING_...)      drop: captive or      zoos, gardens and culture collections keep
                                                 cultivated            organisms outside their range
degreeOfEstablishment = captive, cultivated      drop: captive or      kept by people, not living there on their own
(dwcdoe d002, d003)                              cultivated            (Blackburn et al. 2011, categories B1, B2)
establishmentMeans = managed, captive,           drop: captive or      the same meaning in the vocabulary used before
cultivated (the older vocabulary)                cultivated            degreeOfEstablishment existed
captive_cultivated = true (iNaturalist)          drop: captive or      iNaturalist's flag for the same meaning
                                                 cultivated
taxonRank above species (genus, family, GBIF     drop: identified      not identified to a species: its id would make
GENUS, species aggregate, iNaturalist complex)   above species rank    a genus one more "species"
hasGeospatialIssues = true (GBIF)                drop: with a GBIF     GBIF found the coordinates wrong
                                                 geospatial issue
issue (GBIF) holds ZERO_COORDINATE,              drop: with a GBIF     the flags that set hasGeospatialIssues, for
COORDINATE_INVALID, COORDINATE_OUT_OF_RANGE      geospatial issue      SIMPLE_CSV, which has no such column
or COUNTRY_COORDINATE_MISMATCH
other GBIF issue flags (COORDINATE_ROUNDED,      keep                  GBIF corrected the value or only noted a
PRESUMED_SWAPPED_COORDINATE, ...)                                      detail; the point stays usable
establishmentMeans = introduced, naturalised,    keep                  the organism lives there in the wild; leaving
invasive, vagrant; degreeOfEstablishment =                             introduced populations off a map is a study
released, casual, ..., invasive                                        decision (filter the file first)
coordinateUncertaintyInMeters; iNaturalist       keep                  SINR learns from points, as in the paper; a
positional_accuracy, coordinates_obscured                              cut-off depends on the map's resolution, so
                                                                       filter the file first if one is needed
iNaturalist quality_grade = casual, needs_id     keep                  "casual" mixes many reasons; the one that
                                                                       changes the meaning (captive) has its column
===============================================  ====================  ==============================================

A row meeting several rules is counted once, under the first reason in :data:`DROP_REASONS`.
numpy only; no qgis, no torch.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

# Reasons a row is dropped, in the order a row is attributed to one, with the words summaries
# print ("3 absent, 2 captive or cultivated"). The last three are about coordinates and species.
DROP_REASONS: dict[str, str] = {
    "absent": "absent",
    "zero_count": "with a count of 0",
    "fossil": "fossil",
    "captive_cultivated": "captive or cultivated",
    "above_species": "identified above species rank",
    "geospatial_issue": "with a GBIF geospatial issue",
    "missing": "missing",
    "out_of_range": "out of range",
    "null_island": "null island",
}

# Columns of the rules, by role: names compared case-insensitively (Darwin Core terms, GBIF and
# iNaturalist column names).
TERM_COLUMNS: dict[str, tuple[str, ...]] = {
    "status": ("occurrencestatus",),
    "count": ("individualcount",),
    "quantity": ("organismquantity",),
    "basis": ("basisofrecord",),
    "degree": ("degreeofestablishment",),
    "means": ("establishmentmeans",),
    "captive": ("captive_cultivated",),
    "geo_flag": ("hasgeospatialissues",),
    "issue": ("issue", "issues"),
    "rank": ("taxonrank", "taxon_rank"),
}

_ABSENT = {"absent", "absence", "notpresent", "notdetected", "notfound", "0", "no", "false", "none"}
_PRESENT = {"present", "presence", "detected", "1", "yes", "true"}
_TRUE = {"true", "t", "yes", "y", "1"}
# GBIF's OccurrenceIssue.GEOSPATIAL_RULES: the flags that make hasGeospatialIssues true.
GBIF_GEOSPATIAL_ISSUES = frozenset(
    {"ZERO_COORDINATE", "COORDINATE_INVALID", "COORDINATE_OUT_OF_RANGE", "COUNTRY_COORDINATE_MISMATCH"}
)
# GBIF reads a count of 0 on a specimen as "present" (the specimen exists).
_SPECIMENS = {"preservedspecimen", "fossilspecimen", "livingspecimen", "materialsample"}
_HELD = {"captive", "cultivated", "managed", "d002", "d003"}  # held by people (d002/d003: dwcdoe IRIs)
# Ranks above species in GBIF's, the Darwin Core examples' and iNaturalist's spellings. Unknown
# ranks (unranked, informal) are kept: nothing says they are above species.
_ABOVE_SPECIES = {
    "domain", "superkingdom", "kingdom", "subkingdom", "infrakingdom", "superphylum", "phylum",
    "subphylum", "infraphylum", "superdivision", "division", "subdivision", "superclass", "class",
    "subclass", "infraclass", "subterclass", "parvclass", "superlegion", "legion", "sublegion",
    "supercohort", "cohort", "subcohort", "magnorder", "superorder", "grandorder", "order", "suborder",
    "infraorder", "parvorder", "zoosection", "zoosubsection", "superfamily", "epifamily", "family",
    "subfamily", "infrafamily", "supertribe", "tribe", "subtribe", "infratribe", "suprageneric",
    "supragenericname", "genus", "genushybrid", "subgenus", "infragenus", "section", "subsection",
    "series", "subseries", "infrageneric", "infragenericname", "speciesaggregate", "aggregate",
    "complex",
}


def drop_reason_text(reason: str) -> str:
    """The words for a drop reason key in summaries (``captive_cultivated`` -> ``captive or cultivated``)."""
    return DROP_REASONS.get(reason, reason.replace("_", " "))


def dropped_text(dropped: dict[str, int]) -> str:
    """``"3 absent, 1 missing"`` for the non-zero counts of ``dropped`` (reason -> rows), '' if none."""
    return ", ".join(f"{n:,} {drop_reason_text(reason)}" for reason, n in dropped.items() if n)


def _word(value: str) -> str:
    """Lower-case letters and digits only: ``FOSSIL_SPECIMEN`` and ``Fossil specimen`` compare equal."""
    return re.sub(r"[^0-9a-z]", "", value.lower())


def _is_zero(value: str) -> bool:
    try:
        return float(value) == 0.0
    except ValueError:
        return False


def _held(value: str) -> bool:
    text = value.strip().lower().rstrip("/")
    if "/dwcdoe/" in text:  # a dwciri value, e.g. http://rs.tdwg.org/dwcdoe/values/d002
        return text.rsplit("/", 1)[-1] in _HELD
    first = re.match(r"[a-z0-9]+", text)  # "cultivated (category B2)" is the label of the value
    return bool(first) and first.group(0) in _HELD


def _geo_issue(value: str) -> bool:
    return any(flag.strip().upper() in GBIF_GEOSPATIAL_ISSUES for flag in re.split(r"[;,|]", value))


def _flags(values: Sequence[str] | None, rule: Callable[[str], bool]) -> np.ndarray | None:
    """``rule`` applied to each value (once per distinct value: columns hold few distinct values)."""
    if values is None:
        return None
    cache = {v: rule(v) for v in set(values)}
    return np.fromiter(map(cache.__getitem__, values), dtype=bool, count=len(values))


def term_drops(columns: dict[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """Rows each rule drops, reason -> bool array [N]; only reasons whose columns are present.

    ``columns`` maps roles of :data:`TERM_COLUMNS` to the column's values (N str each, one per row).
    A row may meet several rules; the caller attributes it to the first in :data:`DROP_REASONS`.
    """
    def col(role: str) -> Sequence[str] | None:
        return columns.get(role)

    out: dict[str, np.ndarray] = {}
    absent = _flags(col("status"), lambda v: _word(v) in _ABSENT)
    if absent is not None:
        out["absent"] = absent
    zero = [m for m in (_flags(col("count"), _is_zero), _flags(col("quantity"), _is_zero)) if m is not None]
    if zero:
        inferred = np.logical_or.reduce(zero)
        present = _flags(col("status"), lambda v: _word(v) in _PRESENT)
        if present is not None:
            inferred &= ~present & ~absent
        specimen = _flags(col("basis"), lambda v: _word(v) in _SPECIMENS)
        if specimen is not None:
            inferred &= ~specimen
        out["zero_count"] = inferred
    fossil = _flags(col("basis"), lambda v: _word(v) == "fossilspecimen")
    if fossil is not None:
        out["fossil"] = fossil
    held = [
        m
        for m in (
            _flags(col("basis"), lambda v: _word(v) == "livingspecimen"),
            _flags(col("degree"), _held),
            _flags(col("means"), _held),
            _flags(col("captive"), lambda v: v.strip().lower() in _TRUE),
        )
        if m is not None
    ]
    if held:
        out["captive_cultivated"] = np.logical_or.reduce(held)
    rank = _flags(col("rank"), lambda v: _word(v) in _ABOVE_SPECIES)
    if rank is not None:
        out["above_species"] = rank
    geo = [
        m
        for m in (_flags(col("geo_flag"), lambda v: v.strip().lower() in _TRUE), _flags(col("issue"), _geo_issue))
        if m is not None
    ]
    if geo:
        out["geospatial_issue"] = np.logical_or.reduce(geo)
    return out
