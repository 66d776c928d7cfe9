"""Categorical covariates (land cover, biomes, soil types): which bands hold classes, and their
class lists. numpy only; GDAL objects are passed in.

A band's values are classes, not quantities, when GDAL says so: it has category names
(``GetCategoryNames``, the index is the class code), a thematic raster attribute table
(``GetDefaultRAT``: a value column and a name column), is a palette index into a colour table, or
its band metadata says ``CATEGORICAL=YES`` (names in ``CLASS_<code>`` items, as in the project's
bioclim test raster).
Such a band is read at the nearest cell (never interpolated: a point between classes 3 and 5 is
in class 3 or 5, not 4) and one-hot encoded (:func:`~sinr_qgis.core.encoding.one_hot`), in
training and in prediction alike. A band of whole numbers with few distinct values may be classes
too, but may as well be a count: :func:`class_hint` says so, and the user marks it categorical by
name (CLI ``--categorical NAME``, the Processing and Train dialog parameter).

The class list a model is trained with is the classes of its training records
(:func:`training_classes`); it is stored per covariate in ``model.json`` (``classes``, with
``class_names`` where the raster names them). A cell of a class outside that list encodes as all
zeros, as random background points in such classes did in training; prediction warns about it
(:func:`count_unseen`, :func:`unseen_class_warnings`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import CovariateError

HINT_MAX_CLASSES = 32  # whole-number bands with at most this many values at the records may be classes
HINT_MIN_PER_VALUE = 3  # ... when the records are at least this many per distinct value (few records repeat less)
MAX_CLASSES = 1024  # one-hot columns of one covariate; more is a continuous band marked by mistake


@dataclass(frozen=True)
class BandClasses:
    """A band declared categorical: how GDAL says so (``source``) and the class names it gives,
    by class code (empty for a colour table without names)."""

    source: str  # "category names", "raster attribute table", "colour table" or "band metadata"
    names: Mapping[float, str] = field(default_factory=dict)


def declared_classes(band: Any) -> BandClasses | None:
    """The classes GDAL declares for ``band`` (a ``gdal.Band``), or None for a continuous band:
    category names first, then a thematic raster attribute table, then a palette index band, then
    band metadata ``CATEGORICAL=YES`` (class names from its ``CLASS_<code>`` items)."""
    from osgeo import gdal

    names = band.GetCategoryNames() or []
    named = {float(i): str(n) for i, n in enumerate(names) if n and str(n).strip()}
    if named:
        return BandClasses("category names", named)
    rat = band.GetDefaultRAT()
    if rat is not None and rat.GetRowCount() > 0 and rat.GetTableType() == gdal.GRTT_THEMATIC:
        table = _rat_classes(rat)
        if table is not None:
            return BandClasses("raster attribute table", table)
    if band.GetColorTable() is not None and band.GetColorInterpretation() == gdal.GCI_PaletteIndex:
        return BandClasses("colour table")
    return _metadata_classes(band.GetMetadata() or {})


def _metadata_classes(metadata: Mapping[str, str]) -> BandClasses | None:
    """Classes declared in band metadata: ``CATEGORICAL`` YES/TRUE/1 (any case), names from the
    ``CLASS_<code>`` items whose code is a number; None when the band is not declared so."""
    flag = next((v for k, v in metadata.items() if k.upper() == "CATEGORICAL"), "")
    if str(flag).strip().upper() not in ("YES", "TRUE", "1"):
        return None
    names = {}
    for key, name in metadata.items():
        head, _, code = key.partition("_")
        if head.upper() == "CLASS" and name and name.strip():
            try:
                names[float(code)] = name.strip()
            except ValueError:
                continue  # CLASS_<word>: not a class code
    return BandClasses("band metadata", names)


def _rat_classes(rat: Any) -> dict[float, str] | None:
    """Class code -> name of a thematic attribute table: codes from its value column (usage
    MinMax, or Min), else from its linear binning, else the row number; names from its Name
    column, else its first string column. None when a row spans a range (Min != Max)."""
    from osgeo import gdal

    usage = [rat.GetUsageOfCol(c) for c in range(rat.GetColumnCount())]
    kinds = [rat.GetTypeOfCol(c) for c in range(rat.GetColumnCount())]
    n = rat.GetRowCount()
    value_col = next((c for c, u in enumerate(usage) if u == gdal.GFU_MinMax), None)
    lo_col = next((c for c, u in enumerate(usage) if u == gdal.GFU_Min), None)
    hi_col = next((c for c, u in enumerate(usage) if u == gdal.GFU_Max), None)
    if value_col is None and lo_col is not None:
        if hi_col is not None and any(rat.GetValueAsDouble(r, lo_col) != rat.GetValueAsDouble(r, hi_col)
                                      for r in range(n)):
            return None  # value ranges: a continuous band's legend, not classes
        value_col = lo_col
    binned, row0, size = rat.GetLinearBinning()
    if value_col is not None:
        codes = [rat.GetValueAsDouble(r, value_col) for r in range(n)]
    elif binned:
        codes = [row0 + r * size for r in range(n)]
    else:
        codes = [float(r) for r in range(n)]
    name_col = next((c for c, u in enumerate(usage) if u == gdal.GFU_Name),
                    next((c for c, k in enumerate(kinds) if k == gdal.GFT_String), None))
    return {float(v): (rat.GetValueAsString(r, name_col).strip() if name_col is not None else "")
            for r, v in enumerate(codes)}


def training_classes(values: np.ndarray, name: str) -> tuple[float, ...]:
    """The class list of a categorical covariate: the distinct finite codes of ``values`` [N] (its
    float32 values at the training records), ascending. Raises ``CovariateError`` when there is
    none, or more than ``MAX_CLASSES`` (a continuous band marked categorical by mistake)."""
    v = np.asarray(values, dtype=np.float32)
    codes = np.unique(v[np.isfinite(v)])
    if codes.size == 0:
        raise CovariateError(f"Categorical covariate {name!r} has no value at any training record. Choose a "
                             "raster that covers the records.")
    if codes.size > MAX_CLASSES:
        raise CovariateError(f"Covariate {name!r} is marked categorical but holds {codes.size} distinct values at "
                             f"the records (more than {MAX_CLASSES} classes): it looks like a continuous quantity. "
                             "Leave it out of the categorical covariates.")
    return tuple(float(c) for c in codes)


def covariate_class_lists(names: Sequence[str], declared: Sequence[BandClasses | None], env: np.ndarray,
                          cells: np.ndarray | None = None) -> tuple[list[tuple[float, ...] | None] | None, list[str]]:
    """The class lists a model is trained with, and what to tell the user about its covariates.

    ``names`` [k] and ``declared`` [k] (None: continuous) describe the covariates, ``env`` [N, k]
    their raw values at the training records (NaN = missing), ``cells`` [N, k] the values of each
    record's own cell (no interpolation; default ``env``), which the hint looks at. Returns (per
    covariate its :func:`training_classes` or None; None when none is categorical) and one line per
    categorical covariate (how it is known, its classes) and per continuous one that may be classes
    (:func:`class_hint`). Raises ``CovariateError`` as :func:`training_classes`."""
    classes: list[tuple[float, ...] | None] = []
    notes = []
    cells = env if cells is None else cells
    for j, (name, d) in enumerate(zip(names, declared)):
        if d is None:
            classes.append(None)
            hint = class_hint(cells[:, j], name)
            if hint:
                notes.append(hint)
            continue
        cls = training_classes(env[:, j], name)
        classes.append(cls)
        notes.append(f"Covariate {name!r} is categorical ({d.source}): read at the nearest cell, never interpolated, "
                     f"and one-hot encoded over the {len(cls)} class(es) of the training records "
                     f"({_codes_text(np.asarray(cls))}).")
    return (classes if any(c is not None for c in classes) else None), notes


def class_hint(values: np.ndarray, name: str) -> str | None:
    """A warning when continuous covariate ``name`` may be classes: its values at the records
    ([N], NaN = missing) are whole numbers with at most ``HINT_MAX_CLASSES`` distinct values, each
    held by ``HINT_MIN_PER_VALUE`` records on average (a few records of a real quantity repeat
    less). None otherwise."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or not np.all(v == np.round(v)):
        return None
    n = np.unique(v).size
    if n > HINT_MAX_CLASSES or v.size < HINT_MIN_PER_VALUE * n:
        return None
    return (f"Covariate {name!r} holds only {n} distinct whole numbers at the records "
            f"({_codes_text(np.unique(v))}) and is treated as a continuous quantity. If they are classes "
            f"(land cover, biome, soil type), mark it categorical (command line: --categorical {name}; in QGIS: "
            "Categorical covariates) so that each class is its own input.")


def _codes_text(codes: np.ndarray, most: int = 8) -> str:
    shown = ", ".join(format_code(c) for c in codes[:most])
    return shown + (", ..." if len(codes) > most else "")


def format_code(code: float) -> str:
    """A class code as people write it: 3, not 3.0."""
    return str(int(code)) if float(code).is_integer() else f"{code:g}"


def covariate_classes(covariates: Sequence[Mapping[str, Any]]) -> list[tuple[float, ...] | None] | None:
    """Per ``model.json`` covariate entry, its ``classes`` as float32-exact floats (categorical) or
    None (continuous); None when no covariate is categorical."""
    out = [None if c.get("classes") is None else tuple(float(np.float32(x)) for x in c["classes"])
           for c in covariates]
    return out if any(c is not None for c in out) else None


def classes_problem(encoding: Mapping[str, Any]) -> str | None:
    """What is wrong with the ``classes`` of a bundle's ``encoding`` (``model.json``), or None:
    each is a non-empty list of distinct finite numbers (float32-distinct), ``class_names`` (if
    given) one string per class, and classes go with the plugin's own raster reading only (not
    ``covariate_sampling``)."""
    for c in encoding.get("covariates") or []:
        cls = c.get("classes")
        if cls is None:
            continue
        name = c.get("name", "?")
        try:
            codes = np.asarray(cls, dtype=np.float64)
        except (TypeError, ValueError):
            return f"covariate {name!r}: classes must be numbers, got {cls!r}."
        if codes.ndim != 1 or codes.size == 0 or not np.isfinite(codes).all() \
                or np.unique(codes.astype(np.float32)).size != codes.size:
            return f"covariate {name!r}: classes must be a non-empty list of distinct numbers, got {cls!r}."
        names = c.get("class_names")
        if names is not None and (not isinstance(names, list) or len(names) != codes.size
                                  or not all(isinstance(x, str) for x in names)):
            return f"covariate {name!r}: class_names must hold one name per class ({codes.size})."
        if encoding.get("covariate_sampling"):
            return f"covariate {name!r} is categorical, which covariate_sampling {encoding['covariate_sampling']!r} " \
                   "does not read. Update the plugin."
    return None


def count_unseen(env: np.ndarray, classes: Sequence[tuple[float, ...] | None]) -> Counter[tuple[int, float]]:
    """How many rows of ``env`` [N, k] (raw values, NaN = missing) hold each code outside its
    categorical covariate's training ``classes``: {(covariate index, code): rows}."""
    out: Counter[tuple[int, float]] = Counter()
    for j, cls in enumerate(classes):
        if cls is None:
            continue
        col = np.asarray(env[:, j], dtype=np.float32)
        col = col[np.isfinite(col)]
        codes, counts = np.unique(col[~np.isin(col, np.asarray(cls, dtype=np.float32))], return_counts=True)
        out.update({(j, float(c)): int(n) for c, n in zip(codes, counts)})
    return out


def unseen_class_warnings(counts: Mapping[tuple[int, float], int], classes: Sequence[tuple[float, ...] | None],
                          names: Sequence[str]) -> list[str]:
    """One sentence per categorical covariate in ``counts`` (:func:`count_unseen`): how many
    locations lie in classes no training record had, which ones, and what that means (they are
    encoded as no class, all zeros, as background points of such classes were in training)."""
    out = []
    for j, cls in enumerate(classes):
        mine = sorted((code, n) for (k, code), n in counts.items() if k == j)
        if cls is None or not mine:
            continue
        out.append(f"{sum(n for _, n in mine)} location(s) lie in class(es) "
                   f"{_codes_text(np.asarray([c for c, _ in mine]))} of categorical covariate {names[j]!r}, which no "
                   f"training record had (the model knows {_codes_text(np.asarray(cls))}): they are encoded as no "
                   "class, so their predictions there rest on the other covariates.")
    return out
