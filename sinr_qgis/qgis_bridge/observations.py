"""A point layer of observations (any CRS) -> a lon/lat CSV the training CLI reads.

Columns: ``longitude``, ``latitude`` (EPSG:4326 degrees), ``species`` and, when a source field is
chosen, ``source``. Pass a ``QgsVectorLayer`` from the main thread, or a Processing feature
source from an algorithm's thread; the file is deterministic (feature order), so exporting the
same layer again gives the same data fingerprint and a training can resume.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransformContext,
    QgsFeatureRequest,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.atomic import atomic_path
from ..core.errors import CancelledError, GridError, OccurrenceError, OutputError
from ..core.file_names import safe_file_stem
from ..core.occurrence_terms import TERM_COLUMNS
from .points import features_to_lonlat

LON, LAT, SPECIES, SOURCE = "longitude", "latitude", "species", "source"
# What core.occurrences reads, for file choosers; "*" (not "*.*") also admits names without a dot
OBSERVATION_FILE_FILTER = ("Observations (*.csv *.csv.gz *.gz *.bz2 *.xz *.tsv *.txt *.zip *.tar.gz *.tgz *.tar "
                           "meta.xml);;All files (*)")


@dataclass
class ObservationExport:
    """What was written: the CSV, and how many features were kept or skipped."""

    path: Path
    n_features: int
    n_written: int
    n_no_geometry: int  # skipped: no geometry, or not transformable to lon/lat
    n_no_species: int  # written with an empty species (the reader drops and counts them)
    has_source: bool
    origin: str

    def text(self) -> str:
        skipped = f"; {self.n_no_geometry:,} without a usable point" if self.n_no_geometry else ""
        empty = f"; {self.n_no_species:,} without a species" if self.n_no_species else ""
        return f"{self.origin}: {self.n_written:,} of {self.n_features:,} points exported{skipped}{empty}."


def export_file_name(layer_name: str) -> str:
    """A CSV file name after the layer (the model card's "Trained on" shows it), safe on every OS."""
    return safe_file_stem(layer_name, 80, fallback="observations") + ".csv"


def attribute_text(value: Any) -> str:
    """An attribute as CSV text: NULL -> '', whole floats without '.0' (taxon ids), strings stripped."""
    if value is None or (isinstance(value, QVariant) and value.isNull()):
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def _field_index(source: Any, name: str, role: str, origin: str) -> int:
    idx = source.fields().lookupField(name) if name else -1
    if idx < 0:
        fields = ", ".join(f.name() for f in source.fields()) or "none"
        raise OccurrenceError(f"Layer {origin!r} has no {role} field {name!r}. Choose one of its fields: {fields}.")
    return idx


def export_observations(source: Any, species_field: str, path: str | Path, *,
                        transform_context: QgsCoordinateTransformContext,
                        source_field: str | None = None, crs: QgsCoordinateReferenceSystem | None = None,
                        origin: str = "", is_cancelled: Callable[[], bool] | None = None) -> ObservationExport:
    """Write the points of ``source`` (a vector layer or feature source) as a lon/lat CSV at ``path``.

    Raises ``OccurrenceError`` (no points, missing field), ``GridError`` (no valid CRS, or no point
    can be transformed to lon/lat) and ``CancelledError``.
    """
    origin = origin or source.sourceName() or "observations"
    crs = crs if crs is not None else source.sourceCrs()
    if QgsWkbTypes.geometryType(source.wkbType()) != QgsWkbTypes.GeometryType.PointGeometry:
        raise OccurrenceError(f"Layer {origin!r} is not a point layer. Choose a layer of observation points.")
    sp_idx = _field_index(source, species_field, "species", origin)
    src_idx = _field_index(source, source_field, "source", origin) if source_field else None
    # Darwin Core / GBIF / iNaturalist columns that say a row is no wild presence (an absence, a
    # fossil, a garden tree): carried into the CSV so the reader drops and counts them as it does
    # for files (core.occurrence_terms)
    term_names = {n for names in TERM_COLUMNS.values() for n in names}
    term_idx = [i for i, f in enumerate(source.fields()) if f.name().lower() in term_names and
                i not in (sp_idx, src_idx)]
    try:
        xform_ok = crs.isValid()
        kept, lonlat, skipped = features_to_lonlat(
            source.getFeatures(QgsFeatureRequest().setSubsetOfAttributes(
                [sp_idx] + ([src_idx] if src_idx is not None else []) + term_idx)),
            crs, transform_context, is_cancelled)
    except GridError as exc:
        raise GridError(f"Layer {origin!r}: {exc}") from None
    except CancelledError:
        raise CancelledError("Export of the observations was cancelled.") from None
    n_features = len(kept) + skipped
    if n_features == 0:
        raise OccurrenceError(f"Layer {origin!r} has no features. Choose a layer with observation points.")
    if not kept and xform_ok:
        raise GridError(
            f"None of the {n_features:,} points of layer {origin!r} could be transformed from "
            f"{crs.authid() or crs.description() or 'its CRS'} to longitude/latitude. The layer's CRS has no "
            "usable transformation to WGS 84, or is wrong for these coordinates: set the layer's correct CRS.")
    n_no_species = 0
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow([LON, LAT, SPECIES] + ([SOURCE] if src_idx is not None else []) +
                           [source.fields().at(i).name() for i in term_idx])
                for feat, (lon, lat) in zip(kept, lonlat):
                    sp = attribute_text(feat.attribute(sp_idx))
                    n_no_species += not sp
                    row = [f"{lon:.7f}", f"{lat:.7f}", sp]
                    if src_idx is not None:
                        row.append(attribute_text(feat.attribute(src_idx)))
                    row += [attribute_text(feat.attribute(i)) for i in term_idx]
                    w.writerow(row)
    except OSError as exc:  # a full disk: a clear error, and atomic_path leaves no partial file
        raise OutputError(f"Cannot write {path}: {exc.strerror or exc}. Free disk space or choose another "
                          "folder.") from None
    return ObservationExport(path=Path(path), n_features=n_features, n_written=len(kept), n_no_geometry=skipped,
                             n_no_species=n_no_species, has_source=src_idx is not None, origin=origin)
