"""Reference data in QGIS (range polygons in any CRS, presence/absence points) -> core evaluation inputs.

Shared by ``sinr:evaluate_ranges``, ``sinr:evaluate_presence_absence`` and the dock's "Compare":
the QGIS side only reads features and transforms geometries; labelling cells, scoring and the
report live in :mod:`~sinr_qgis.core.evaluation` and :mod:`~sinr_qgis.core.eval_report`.

``source`` is a ``QgsVectorLayer`` (main thread) or a Processing feature source (algorithm thread).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsCsException,
    QgsFeature,
    QgsFeatureRequest,
    QgsGeometry,
    QgsRectangle,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core import evaluation, scoring
from ..core.bundle import Species
from ..core.errors import CancelledError, OccurrenceError
from ..core.grid import Grid
from ..core.polygons import grid_cells_in_polygons
from ..core.species_names import name_key
from .crs import crs_to_core
from .observations import attribute_text
from .points import features_to_lonlat

IsCancelled = Callable[[], bool] | None


def field_values(source, field_name: str, origin: str = "") -> list[str]:
    """The distinct, non-empty values of ``field_name`` as text (layer order)."""
    idx = source.fields().lookupField(field_name) if field_name else -1
    if idx < 0:
        names = ", ".join(f.name() for f in source.fields()) or "none"
        raise OccurrenceError(f"Layer {origin or 'ranges'!r} has no field {field_name!r}. Choose one of: {names}.")
    seen: dict[str, None] = {}
    for v in source.uniqueValues(idx):
        t = attribute_text(v)
        if t:
            seen.setdefault(t, None)
    return list(seen)


def best_species_field(source, species: Sequence[Species]) -> tuple[str, int]:
    """The text field whose values match the most ``species`` (by code or name), and that count;
    ("", 0) when none matches."""
    best, best_n = "", 0
    for f in source.fields():
        if f.type() != QVariant.String:
            continue
        n = len(evaluation.match_species(field_values(source, f.name()), species).matched)
        if n > best_n:
            best, best_n = f.name(), n
    return best, best_n


@dataclass
class RangePolygons:
    """Range polygons per reference name (WKB in the layer's own CRS, ``crs``) and features that
    could not be used."""

    polygons: dict[str, list[bytes]] = field(default_factory=dict)
    crs: str = ""  # the polygons' CRS as core reads it (authid or WKT)
    n_features: int = 0
    n_skipped: int = 0


def range_polygons(source, species_field: str, names: Sequence[str], crs: QgsCoordinateReferenceSystem,
                   is_cancelled: IsCancelled = None) -> RangePolygons:
    """The polygons of the features whose ``species_field`` is one of ``names`` (compared by
    :func:`~sinr_qgis.core.species_names.name_key`), left in the layer's CRS ``crs`` and grouped by
    the name as given in ``names``.

    They are not reprojected: a polygon around a pole or across the antimeridian has no faithful
    outline in lon/lat, so cells are tested against it in its own CRS
    (:func:`~sinr_qgis.core.polygons.grid_cells_in_polygons`). Raises ``CancelledError`` when
    ``is_cancelled`` says so."""
    if QgsWkbTypes.geometryType(source.wkbType()) != QgsWkbTypes.GeometryType.PolygonGeometry:
        raise OccurrenceError("The range layer is not a polygon layer. Choose expert range polygons "
                              "(or a raster whose cells > 0 are presence).")
    idx = source.fields().lookupField(species_field)
    wanted = {name_key(n): n for n in names}
    out = RangePolygons(crs=crs_to_core(crs))
    request = QgsFeatureRequest().setSubsetOfAttributes([idx])
    for feat in source.getFeatures(request):
        if is_cancelled is not None and is_cancelled():
            raise CancelledError(evaluation.EVALUATION_CANCELLED)
        key = wanted.get(name_key(attribute_text(feat.attribute(idx))))
        if key is None:
            continue
        out.n_features += 1
        geom = feat.geometry()
        if geom is None or geom.isNull() or geom.isEmpty():
            out.n_skipped += 1
            continue
        out.polygons.setdefault(key, []).append(bytes(geom.asWkb()))
    return out


def range_references(source, species_field: str, match: evaluation.SpeciesMatch, grid: Grid,
                     crs: QgsCoordinateReferenceSystem, is_cancelled: IsCancelled = None
                     ) -> tuple[list[tuple[str, Species, np.ndarray]], RangePolygons]:
    """(reference name, species, bool labels [H, W]) for every matched species, and the polygons
    (layer CRS), also keyed by species code. A matched name without usable polygons gets no
    presence cell."""
    polys = range_polygons(source, species_field, list(match.matched), crs, is_cancelled)
    return reference_labels(polys, match, grid, is_cancelled), polys


def reference_labels(polys: RangePolygons, match: evaluation.SpeciesMatch, grid: Grid,
                     is_cancelled: IsCancelled = None) -> list[tuple[str, Species, np.ndarray]]:
    """(reference name, species, bool labels [H, W]) for every species of ``match`` from polygons
    already read (any thread); ``polys.polygons`` also gets each species' polygons under its code.
    Raises ``CancelledError`` when ``is_cancelled`` says so (some species' labels are no result)."""
    # names meaning the same species (its code in one feature, its name in another) are merged
    by_code: dict[str, tuple[str, Species, list[bytes]]] = {}
    for name, sp in match.matched.items():
        _first, _, wkbs = by_code.setdefault(sp.code, (name, sp, []))
        wkbs.extend(polys.polygons.get(name, []))
    refs = []
    for name, sp, wkbs in by_code.values():
        if is_cancelled is not None and is_cancelled():
            raise CancelledError(evaluation.EVALUATION_CANCELLED)
        refs.append((name, sp, grid_cells_in_polygons(grid, wkbs, polys.crs)))
        polys.polygons[sp.code] = wkbs
    return refs


# ---- presence/absence points -------------------------------------------------------------------
@dataclass
class PresenceAbsence:
    """Points (lon/lat) and, per reference name, its 0/1 labels and the point indices they belong to."""

    lonlat: np.ndarray
    labels: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (labels [n], point index [n])
    n_features: int
    n_skipped: int
    # values left out because they say neither present nor absent: a long-layout row without a
    # species or a presence value, a wide-layout cell that is not empty yet not 1/0 (counted, reported)
    n_unreadable: int = 0


def _presence(value) -> float:
    """A presence/absence value as 1/0; NaN when missing or not a number/boolean."""
    text = attribute_text(value).lower()
    if text in ("", "null", "none"):
        return math.nan
    if text in ("true", "yes", "present", "presence"):
        return 1.0
    if text in ("false", "no", "absent", "absence"):
        return 0.0
    try:
        v = float(text)
    except ValueError:
        return math.nan
    return 1.0 if v > 0 else 0.0 if math.isfinite(v) else math.nan


def presence_absence_points(source, crs: QgsCoordinateReferenceSystem,
                            transform_context: QgsCoordinateTransformContext, *,
                            species_fields: Sequence[str] = (), species_field: str = "", presence_field: str = "",
                            is_cancelled: IsCancelled = None) -> PresenceAbsence:
    """Read presence/absence points in either layout.

    - wide: one 0/1 field per species (``species_fields``, named by code or scientific name); a
      species is evaluated on the points where its field is not empty;
    - long: ``species_field`` names the species of each row and ``presence_field`` holds 1/0 (a
      location surveyed for several species has one row per species).
    """
    if QgsWkbTypes.geometryType(source.wkbType()) != QgsWkbTypes.GeometryType.PointGeometry:
        raise OccurrenceError("The presence/absence layer is not a point layer. Choose survey points.")
    fields = source.fields()

    def index(name: str, role: str) -> int:
        i = fields.lookupField(name)
        if i < 0:
            raise OccurrenceError(f"The layer has no {role} field {name!r}. Choose one of: "
                                  f"{', '.join(f.name() for f in fields)}.")
        return i

    long = bool(species_field)
    if long:
        if not presence_field:
            raise OccurrenceError("With a species field, also choose the presence field (1 = present, 0 = absent).")
        cols = [index(species_field, "species"), index(presence_field, "presence")]
    else:
        if not species_fields:
            raise OccurrenceError("Choose the 0/1 species fields (one per species), or a species field and a "
                                  "presence field.")
        cols = [index(n, "species") for n in species_fields]
    kept, lonlat, skipped = features_to_lonlat(
        source.getFeatures(QgsFeatureRequest().setSubsetOfAttributes(cols)), crs, transform_context, is_cancelled)
    labels, unreadable = _long_labels(kept, cols) if long else _wide_labels(kept, cols, species_fields)
    return PresenceAbsence(lonlat, {k: (np.array(y, dtype=np.float64), np.array(ix, dtype=np.int64))
                                    for k, (y, ix) in labels.items()}, len(kept) + skipped, skipped, unreadable)


Labels = dict[str, tuple[list[float], list[int]]]  # species -> (0/1 values, indices of their points)


def _long_labels(kept: Sequence[QgsFeature], cols: Sequence[int]) -> tuple[Labels, int]:
    """Labels of rows holding (species, presence) in ``cols``, and the count of rows without a
    species or a readable presence. Names that differ only in case or spacing are one species."""
    labels: Labels = {}
    unreadable = 0
    first: dict[str, str] = {}
    for i, f in enumerate(kept):
        name = attribute_text(f.attribute(cols[0]))
        v = _presence(f.attribute(cols[1]))
        if not name or math.isnan(v):
            unreadable += 1
            continue
        name = first.setdefault(name_key(name), name)
        ys, ix = labels.setdefault(name, ([], []))
        ys.append(v)
        ix.append(i)
    return labels, unreadable


def _wide_labels(kept: Sequence[QgsFeature], cols: Sequence[int],
                 species_fields: Sequence[str]) -> tuple[Labels, int]:
    """Labels from one 0/1 field per species, and the count of values that are neither empty
    (not surveyed) nor a readable presence."""
    labels: Labels = {}
    unreadable = 0
    for c, name in zip(cols, species_fields):
        ys, ix = labels.setdefault(name, ([], []))
        for i, f in enumerate(kept):
            v = _presence(f.attribute(c))
            if not math.isnan(v):
                ys.append(v)
                ix.append(i)
            elif attribute_text(f.attribute(c)).lower() not in ("", "null", "none"):  # empty: not surveyed
                unreadable += 1
    return labels, unreadable


# ---- the species typed in the dock against a loaded range layer (the dock's "Compare") --------
@dataclass
class RangeCopy:
    """Range features of some species, copied from a layer on the main thread so that a background
    task can compare them without touching the layer."""

    species: list[Species]  # the species asked for, in the order given
    match: evaluation.SpeciesMatch  # the field's values that name one of them
    polygons: RangePolygons  # their polygons (WKB, the layer's CRS)
    features: dict[str, list]  # species code -> QgsFeature copies of its range (for the outline)
    crs: QgsCoordinateReferenceSystem  # the layer's CRS
    layer_name: str
    species_field: str


def copy_ranges(layer, species_field: str, species: Sequence[Species]) -> RangeCopy:
    """Read the range features of ``species`` from ``layer`` (main thread: it reads the layer)."""
    match = evaluation.match_species(field_values(layer, species_field, layer.name()), species)
    polys = range_polygons(layer, species_field, list(match.matched), layer.crs())
    code_of = {name_key(n): sp.code for n, sp in match.matched.items()}
    idx = layer.fields().lookupField(species_field)
    features: dict[str, list] = {}
    for f in layer.getFeatures(QgsFeatureRequest().setSubsetOfAttributes([idx])):
        code = code_of.get(name_key(attribute_text(f.attribute(idx))))
        if code is not None:
            features.setdefault(code, []).append(QgsFeature(f))
    return RangeCopy(list(species), match, polys, features, QgsCoordinateReferenceSystem(layer.crs()),
                     layer.name(), species_field)


def view_in_crs(extent: QgsRectangle, view_crs: QgsCoordinateReferenceSystem, crs: QgsCoordinateReferenceSystem,
                transform_context: QgsCoordinateTransformContext) -> QgsGeometry | None:
    """The map view (``extent`` in ``view_crs``) as a polygon in ``crs``, its edges densified so
    they follow the projection; None when it cannot be transformed (a view beyond the CRS's area)."""
    geom = QgsGeometry.fromRect(extent).densifyByCount(32)
    if view_crs.isValid() and crs.isValid() and view_crs != crs:
        try:
            geom.transform(QgsCoordinateTransform(view_crs, crs, transform_context))
        except QgsCsException:
            return None
    return geom if geom.isGeosValid() and not geom.isEmpty() else None


@dataclass
class SpeciesComparison:
    """One species' agreement with its expert range on the view's grid, or why there is none."""

    species: Species
    grid: Grid
    reference_names: list[str]  # the species field's values that mean this species
    features: list  # QgsFeature copies of the species' range (the layer's CRS), for the outline
    evaluation: evaluation.SpeciesEvaluation | None = None
    problem: str = ""  # why there is no AP and what to do, to follow the species' label ("has no range ...")
    share_in_view: float | None = None  # share (0-1) of the range's area inside the view; None: unknown

    @property
    def label(self) -> str:
        return self.species.label


PARTLY_IN_VIEW = 0.9  # below this share of its range in view, a comparison says it covers only a part


def compare_species(predictor, ranges: RangeCopy, grid: Grid, *, view: QgsGeometry | None = None,
                    area_weighted: bool = True, covariates: Mapping[str, tuple[str, int]] | None = None,
                    progress: Callable[[float], None] | None = None,
                    is_cancelled: IsCancelled = None) -> list[SpeciesComparison]:
    """AP etc. of every species of ``ranges`` (model logits, ``predictor``) against its polygons on
    ``grid`` (land cells), exactly as ``sinr:evaluate_ranges`` computes them; one entry per species,
    in order. Any thread (reads only the copies); ``predictor`` must be this thread's own.

    ``view``: the map view in the ranges' CRS (:func:`view_in_crs`), to measure how much of each
    range is in view; a species whose range lies wholly outside it is not computed. ``covariates``:
    an environmental model's {covariate name: (raster path, band)} (``core.covariate_match``)."""
    names: dict[str, list[str]] = {}
    for name, sp in ranges.match.matched.items():
        names.setdefault(sp.code, []).append(name)
    out = [SpeciesComparison(sp, grid, names.get(sp.code, []), ranges.features.get(sp.code, []))
           for sp in ranges.species]
    todo = []
    for c in out:
        if not c.reference_names:
            c.problem = (f"has no range in layer {ranges.layer_name!r} (field {ranges.species_field!r} holds no "
                         "code or name of it). Choose another species or field.")
        elif view is not None:
            c.share_in_view = _share_in_view(c.features, view)
            if c.share_in_view == 0.0:
                c.problem = ("is not compared: its expert range is entirely outside the view. Press “Zoom to "
                             "ranges”, or pan to it.")
        if not c.problem:
            todo.append(c)
    if not todo:
        return out
    species = [c.species for c in todo]
    match = evaluation.SpeciesMatch({n: c.species for c in todo for n in c.reference_names})
    refs = reference_labels(ranges.polygons, match, grid, is_cancelled)
    if progress is not None:
        progress(10.0)
    scores = scoring.grid_logits(predictor, grid, species, covariates=covariates, is_cancelled=is_cancelled,
                                 progress=None if progress is None else lambda p: progress(10.0 + 0.85 * p))
    result = evaluation.evaluate_grid(grid, refs, scores, logits=True, area_weighted=area_weighted,
                                      is_cancelled=is_cancelled)
    by_code = {c.species.code: c for c in todo}
    for r in result.results:
        by_code[r.code].evaluation = r
    for s in result.skipped:  # the one skip rule of every evaluation, with its reason and what to do
        advice = ("No land cell in view has a score: zoom or pan to land." if not s.n_cells else
                  "Its range has no land cell in view: zoom or pan to where it lives." if not s.n_presence else
                  "Its range covers every land cell in view: zoom out so that the view also shows land "
                  "outside the range.")
        by_code[s.code].problem = f"is not compared: {s.reason}. {advice}"
    return out


def _share_in_view(features: Sequence[QgsFeature], view: QgsGeometry) -> float | None:
    """Share of the features' area inside ``view`` (same CRS); None when it cannot be measured."""
    total = inside = 0.0
    for f in features:
        geom = f.geometry()
        if geom is None or geom.isNull():
            continue
        if not geom.isGeosValid():
            geom = geom.makeValid()
        part = geom.intersection(view)
        total += geom.area()
        inside += part.area() if part is not None and not part.isNull() else 0.0
    return min(1.0, inside / total) if total > 0 else None
