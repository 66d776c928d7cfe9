"""One path from what the user asked for to the training runner's options, for the Train dialog
and ``sinr:train_model`` alike.

Both gather plain values into a :class:`TrainingRequest` (the dialog from its widgets, the
algorithm from its parameters) and call :func:`training_inputs`, which exports a point layer to a
lon/lat CSV, adds the ``.sinr`` suffix, guesses the species field with the occurrence reader's
own column names, resolves the model inputs (encoding) against the covariate rasters and checks
the options. What it could not take as asked (rasters with a coordinates-only model) goes to an
``on_warning`` callback, so the dialog and the algorithm say the same thing.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from qgis.core import QgsCoordinateTransformContext, QgsRasterLayer

from ..core.covariates import CovariateStack
from ..core.encoding import COVARIATE_ENCODINGS
from ..core.errors import SinrError, TrainingInputError
from ..core.occurrences import ID_NAMES, LAT_NAMES, LON_NAMES, NAME_NAMES, SOURCE_NAMES
from ..core.training.defaults import DEFAULTS
from ..core.training.options import LOCAL_EVIDENCE_COVARIATES, TrainOptions, checkpoint_path, sinr_path
from .covariates import raster_layer_source
from .observations import SOURCE, SPECIES, export_file_name, export_observations

# (label, encoding) of the "Model inputs" choice, in the order of the dialog's list and of the
# algorithm's ENCODING values (0 = automatic: the bundled model's spherical harmonics, coordinates +
# covariates when rasters are given); new choices go last, so scripts' ENCODING numbers keep their meaning
ENCODING_CHOICES: tuple[tuple[str, str | None], ...] = (
    ("Automatic: spherical harmonics (the bundled model's), coordinates + covariates (sin_cos_env) when "
     "rasters are given", None),
    ("Coordinates only (sin_cos)", "sin_cos"),
    ("Covariates only (env)", "env"),
    ("Coordinates + covariates (sin_cos_env)", "sin_cos_env"),
    ("Coordinates only, spherical harmonics (spherical_harmonics)", "spherical_harmonics"),
)
# A point layer's export carries one species column, which becomes both the species' code and its
# name in the model: a name column (what the dock shows) is preferred over an id column, each in
# the reader's own order (core.occurrences), so a layer and its file are understood alike.
SPECIES_FIELD_NAMES = NAME_NAMES + ID_NAMES
RASTERS_IGNORED = "Covariate rasters are ignored: the model uses coordinates only (Model inputs)."


def column_hint(names: Sequence[str], n: int = 3) -> str:
    """The first ``n`` of the reader's column names, for a placeholder: "species, scientificname, …"."""
    return ", ".join(names[:n]) + (", …" if len(names) > n else "")


FILE_COLUMN_HINTS = {"species": column_hint(SPECIES_FIELD_NAMES), "source": column_hint(SOURCE_NAMES),
                     "latitude": column_hint(LAT_NAMES), "longitude": column_hint(LON_NAMES)}


def guess_species_field(field_names: Sequence[str]) -> str | None:
    """The field of a point layer that holds the species, by the reader's column names (case folded),
    or ``None`` when none of ``field_names`` is one of them."""
    folded = {name.lower(): name for name in reversed(list(field_names))}  # the first of equal names wins
    return next((folded[n] for n in SPECIES_FIELD_NAMES if n in folded), None)


def no_species_field_message(layer_name: str) -> str:
    """Why a point layer cannot be trained without a species field, and what to do."""
    return (f"Choose the species field of the observation layer {layer_name!r}: the field that holds each "
            f"point's species name or code (none of its fields is named {', '.join(SPECIES_FIELD_NAMES)}).")


@dataclass
class TrainingRequest:
    """What the user asked for, as plain values. Give ``layer`` (with ``species_field``) or ``data_file``.

    ``layer`` is a ``QgsVectorLayer`` (the dialog, main thread) or a Processing feature source
    (the algorithm's thread); ``species_field`` empty: guessed by :func:`guess_species_field`.
    File columns left empty are detected by the reader. ``encoding`` ``None``: automatic.
    ``pos_weight`` 0: the number of species; ``threads`` 0: torch's choice. ``local_evidence``
    with a covariate model is refused (:func:`reads_covariates`).
    """

    output: str
    layer: Any = None
    species_field: str = ""
    source_field: str = ""
    data_file: str = ""
    species_column: str = ""
    source_column: str = ""
    lat_column: str = ""
    lon_column: str = ""
    rasters: Sequence[QgsRasterLayer | None] = ()
    categorical: Sequence[str] = ()  # covariate band names that hold classes (nearest cell, one-hot)
    encoding: str | None = None
    loss: str = DEFAULTS["loss"]
    cap: int = DEFAULTS["cap"]
    epochs: int = DEFAULTS["epochs"]
    batch_size: int = DEFAULTS["batch_size"]
    width: int = DEFAULTS["width"]
    depth: int = DEFAULTS["depth"]
    seed: int = DEFAULTS["seed"]
    min_records: int = DEFAULTS["min_records"]
    pos_weight: float = 0.0
    land_absences: bool = DEFAULTS["pseudo_negatives"] == "land"
    local_evidence: bool = DEFAULTS["local_evidence"]
    name: str = ""
    resume: bool = False
    threads: int = 0


class TrainingInputs(NamedTuple):
    """The runner's options, and how the observations and their species column are named in messages."""

    options: TrainOptions
    input_label: str
    species_label: str


def resolve_encoding(choice: str | None, rasters: list[str],
                     on_warning: Callable[[str], None] | None = None) -> tuple[str, list[str]]:
    """The encoding for ``choice`` (``None``: the bundled model's, ``DEFAULTS["encoding"]``, or
    coordinates plus covariates when there are rasters) and the rasters it uses: a coordinates-only
    choice drops them, with :data:`RASTERS_IGNORED` to ``on_warning``. A covariate encoding without
    rasters is refused by ``TrainOptions.check``."""
    encoding = _encoding(choice, bool(rasters))
    if rasters and encoding not in COVARIATE_ENCODINGS:
        if on_warning is not None:
            on_warning(RASTERS_IGNORED)
        return encoding, []
    return encoding, rasters


def reads_covariates(choice: str | None, has_rasters: bool) -> bool:
    """Whether the model of the "Model inputs" ``choice`` (``None``: automatic) reads covariates
    when ``has_rasters`` (as :func:`resolve_encoding` resolves it): then it can have no local evidence."""
    return _encoding(choice, has_rasters) in COVARIATE_ENCODINGS


def _encoding(choice: str | None, has_rasters: bool) -> str:
    return choice or ("sin_cos_env" if has_rasters else DEFAULTS["encoding"])


def categorical_names(names: Sequence[str] | str, rasters: Sequence[str]) -> list[str]:
    """The covariate band names marked categorical (a list, or one text with commas), stripped and
    without repeats. Raises ``CovariateError`` naming the rasters' bands when a name is none of them
    (the check training makes, before a process starts); names without rasters are refused by
    ``TrainOptions.check``."""
    items = names.split(",") if isinstance(names, str) else list(names)
    picked = list(dict.fromkeys(n.strip() for n in items if n and n.strip()))
    if picked and rasters:
        CovariateStack.open(rasters, categorical=picked)  # opens the files; values are read when sampled
    return picked


def training_inputs(request: TrainingRequest, workdir: str | Path, *,
                    transform_context: QgsCoordinateTransformContext,
                    on_info: Callable[[str], None] | None = None,
                    on_warning: Callable[[str], None] | None = None,
                    is_cancelled: Callable[[], bool] | None = None) -> TrainingInputs:
    """The checked training options for ``request``; a point layer is exported into ``workdir``.

    ``on_info`` gets the export's counts and a guessed species field; ``on_warning`` what was not
    taken as asked. Raises ``SinrError`` subclasses with what to change: no output, no or two
    sources of observations, no species field, nothing to resume, a bad raster, bad options
    (``TrainingInputError``), and the export's ``OccurrenceError``/``GridError``/``CancelledError``.
    """
    out = sinr_path(request.output)
    if not out:
        raise SinrError("Choose where to save the model (a .sinr file).")
    if request.resume and not checkpoint_path(out).is_file():
        raise TrainingInputError(f"There is no checkpoint to resume for {Path(out).name}. Untick Resume to "
                                 "train anew.")
    data_file = str(request.data_file or "").strip()
    if request.layer is not None and data_file:
        raise SinrError("Give the observations either as a point layer or as a file, not both.")
    if request.layer is None and not data_file:
        raise SinrError("No observations: choose a point layer (and its species field) or an observation file.")
    if request.local_evidence and reads_covariates(request.encoding, bool(request.rasters)):
        raise TrainingInputError(LOCAL_EVIDENCE_COVARIATES)  # before a layer is exported
    if request.layer is not None:
        data_file, label, species_label, columns = _export_layer(
            request, Path(workdir), transform_context, on_info, is_cancelled)
    else:
        label, species_label = Path(data_file).name, "species"
        columns = {"species_column": request.species_column.strip() or None,
                   "source_column": request.source_column.strip() or None,
                   "lat_column": request.lat_column.strip() or None,
                   "lon_column": request.lon_column.strip() or None}
    encoding, rasters = resolve_encoding(request.encoding, [raster_layer_source(r, 1)[0] for r in request.rasters],
                                         on_warning)
    # rasters a coordinates-only choice dropped (RASTERS_IGNORED) take their categorical bands along
    categorical = categorical_names(request.categorical, rasters) if rasters or not request.rasters else []
    opts = TrainOptions(
        data=data_file, out=out, loss=request.loss, cap=request.cap, epochs=request.epochs,
        batch_size=request.batch_size, width=request.width, depth=request.depth, seed=request.seed,
        min_records=request.min_records, encoding=encoding, covariates=rasters or None,
        categorical=categorical or None,
        name=request.name.strip() or None, resume=request.resume, threads=request.threads or None,
        pos_weight=request.pos_weight or "species",
        pseudo_negatives="land" if request.land_absences else "sphere", local_evidence=request.local_evidence,
        **columns)
    opts.check()
    return TrainingInputs(opts, label, species_label)


def _export_layer(request: TrainingRequest, workdir: Path, transform_context: QgsCoordinateTransformContext,
                  on_info: Callable[[str], None] | None,
                  is_cancelled: Callable[[], bool] | None) -> tuple[str, str, str, dict[str, str | None]]:
    """The layer as a CSV in ``workdir``: (its path, the layer's name, the species label, its columns)."""
    layer = request.layer
    label = layer.sourceName() or "observations"
    species_field = request.species_field.strip()
    if not species_field:
        species_field = guess_species_field(layer.fields().names()) or ""
        if not species_field:
            raise SinrError(no_species_field_message(label))
        if on_info is not None:
            on_info(f"Species field: {species_field!r} (found by its name; choose another if it is not the species).")
    export = export_observations(layer, species_field, workdir / export_file_name(label),
                                 transform_context=transform_context, source_field=request.source_field or None,
                                 origin=label, is_cancelled=is_cancelled)
    if on_info is not None:
        on_info(export.text())
    columns = {"species_column": SPECIES, "source_column": SOURCE if export.has_source else None}
    return str(export.path), label, f"'{species_field}'", columns
