"""What both evaluation algorithms output: the per-species table (sink + CSV), MAP and the HTML report."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

from qgis.core import (
    QgsFeature,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QCoreApplication, QVariant

from ..core import eval_report
from ..core.evaluation import TABLE_COLUMNS, EvaluationResult
from ..qgis_bridge.features import write_features
from .base import user_errors
from .help_text import ABOUT_SINR, CREDITS, EXPERT_RANGES, MORE_HELP

OUTPUT_TABLE, OUTPUT_REPORT, MAP, N_SPECIES, CSV = "OUTPUT_TABLE", "OUTPUT_REPORT", "MAP", "N_SPECIES", "CSV"
N_SKIPPED = "N_SKIPPED"
_TYPES = {"code": QVariant.String, "name": QVariant.String, "reference": QVariant.String,
          "n_cells": QVariant.Int, "n_presence": QVariant.Int, "skipped": QVariant.String}

# help paragraphs, translated here as every shared paragraph is (help_text.py); TABLE_HELP is a
# template: ``maps`` is the algorithm's own (translated) addition to the report's contents
TABLE_HELP = QCoreApplication.translate("SinrProcessing", (
    "<p><b>Outputs.</b> <i>Table</i>: one row per matched species with <tt>code</tt>, <tt>name</tt>, "
    "<tt>reference</tt> (the name as written in the reference data), <tt>ap</tt> (average precision, "
    "<b>in percent</b>), <tt>prevalence</tt> (share of presences among the evaluated cells or points, "
    "0-1), <tt>n_cells</tt>, <tt>n_presence</tt>, <tt>f1_threshold</tt> (the probability threshold "
    "with the best F1 against the reference), <tt>f1</tt>, <tt>iou</tt>, <tt>precision</tt> and "
    "<tt>recall</tt> at that threshold (0-1), and <tt>skipped</tt>: empty for an evaluated species, else "
    "why it was not scored (its other scores are then empty; see the caveats). Save it as .csv, or keep "
    "the table layer; a CSV copy is "
    "also written beside the report. <i>MAP</i> (output number): the unweighted mean AP over the "
    "evaluated species <b>in percent, 2 decimals</b> (the scale of the paper and of the NA-Trees "
    "benchmark). <i>Number of species skipped</i> (output number). <i>Report</i> (optional HTML): the "
    "table, the skipped species with their reason and, per species, its precision-recall "
    "curve (inline SVG){maps}.</p>"))

AP_CAVEATS = QCoreApplication.translate("SinrProcessing", (
    "<p><b>Caveats.</b> AP depends only on how the scores <i>rank</i> the places, not on their "
    "values or on any threshold; a random map scores about the prevalence, so compare species or "
    "models on the same cells. Prevalence matters: a species present in most of the extent gets a "
    "high AP easily, a rare one does not, and a larger extent (more absences) raises AP. A species "
    "whose reference makes AP meaningless is skipped, the same way everywhere (here, in the dock's "
    "Compare and in the NA-Trees benchmark): no presence among its evaluated cells or points (AP "
    "undefined), no absence (present in every one: any ranking scores 100 %), or none evaluated at "
    "all. It is left out of MAP and listed, with the reason, in the log, the report and the table. "
    "Cells or points without a score (no prediction or covariate value) are left out of a species' "
    "AP and counted in the log. Thresholded "
    "scores (F1, IoU) use the best threshold for each species, so they are optimistic.</p>"
)) + EXPERT_RANGES + ABOUT_SINR + CREDITS + MORE_HELP


def _tr(text: str) -> str:
    return QCoreApplication.translate("SinrProcessing", text)


def add_output_parameters(alg: QgsProcessingAlgorithm) -> None:
    alg.addParameter(QgsProcessingParameterFeatureSink(
        OUTPUT_TABLE, _tr("Evaluation table (one row per species)"), type=QgsProcessing.SourceType.TypeVector))
    alg.addParameter(QgsProcessingParameterFileDestination(
        OUTPUT_REPORT, _tr("Evaluation report (HTML)"), fileFilter="HTML files (*.html *.htm)",
        optional=True, createByDefault=True))
    alg.addOutput(QgsProcessingOutputNumber(MAP, _tr("Mean average precision (MAP, %)")))
    alg.addOutput(QgsProcessingOutputNumber(N_SPECIES, _tr("Number of species evaluated")))
    alg.addOutput(QgsProcessingOutputNumber(N_SKIPPED, _tr("Number of species skipped (AP meaningless)")))
    alg.addOutput(QgsProcessingOutputFile(CSV, _tr("Evaluation table as CSV")))


def table_fields() -> QgsFields:
    fields = QgsFields()
    for name in TABLE_COLUMNS:
        fields.append(QgsField(name, _TYPES.get(name, QVariant.Double)))
    return fields


def write_outputs(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext,
                  feedback: QgsProcessingFeedback, result: EvaluationResult, *, title: str,
                  summary: list[tuple[str, str]], thumbnails: dict[str, str] | None = None,
                  notes: list[str] | None = None) -> dict:
    """Fill the table sink, write the CSV and the report, log MAP; returns the outputs dict.

    Skipped species (AP meaningless) and unscored locations are pushed as warnings, listed in the
    report and, for skipped species, given a table row with the reason in ``skipped``.
    """
    skipped = [_tr("Skipped {}; left out of MAP.").format(s) for s in result.skipped]
    for text in [*skipped, *result.unscored]:
        feedback.pushWarning(text)
    if not result.results:
        raise QgsProcessingException(_tr(
            "No species could be evaluated: {}. Check the extent, the species field and the layer's CRS.")
            .format("; ".join(str(s) for s in result.skipped[:5])
                    + (_tr("; and {} more").format(len(result.skipped) - 5) if len(result.skipped) > 5 else "")))
    fields = table_fields()
    sink, dest_id = alg.parameterAsSink(parameters, OUTPUT_TABLE, context, fields, QgsWkbTypes.Type.NoGeometry)
    if sink is None:
        raise QgsProcessingException(alg.invalidSinkError(parameters, OUTPUT_TABLE))
    rows = []
    for row in result.rows():
        f = QgsFeature(fields)
        f.setAttributes([row[c] for c in TABLE_COLUMNS])
        rows.append(f)
    with user_errors():
        write_features(sink, rows, _tr("The evaluation table"))
    dest_id = _shapefile_table(dest_id, context)
    value = result.map
    summary = [*summary, ("Species evaluated", str(len(result.results))),
               ("Species skipped", str(len(result.skipped))), ("MAP (%)", f"{value:.2f}")]
    report = alg.parameterAsFileOutput(parameters, OUTPUT_REPORT, context)
    csv_path = ""
    if report:
        csv_path = str(Path(report).with_suffix(".csv"))
        with user_errors(), _file_errors(report):
            eval_report.write_html_report(report, result.results, title=title, summary=summary,
                                          thumbnails=thumbnails, notes=[*(notes or []), *skipped, *result.unscored])
        with user_errors(), _file_errors(csv_path):
            eval_report.write_csv(csv_path, [*result.results, *result.skipped])
        feedback.pushInfo(_tr("Report: {}").format(report))
    feedback.pushInfo(_tr("MAP over {} species: {:.2f} %").format(len(result.results), value))
    return {OUTPUT_TABLE: dest_id, OUTPUT_REPORT: report or None, CSV: csv_path or None,
            MAP: value if math.isfinite(value) else None, N_SPECIES: len(result.results),
            N_SKIPPED: len(result.skipped)}


def _shapefile_table(dest_id: str, context: QgsProcessingContext) -> str:
    """The table's output id: a table without geometry saved as a Shapefile is only the ``.dbf``
    (QGIS reports, and would load, a ``.shp`` that is never written), so report and load that."""
    path = str(dest_id).split("|")[0]
    if not path.lower().endswith(".shp"):
        return dest_id
    dbf = str(Path(path).with_suffix(".dbf"))
    if context.willLoadLayerOnCompletion(dest_id):
        layers = context.layersToLoadOnCompletion()
        layers[dbf] = layers.pop(dest_id)
        context.setLayersToLoadOnCompletion(layers)
    return dbf


@contextlib.contextmanager
def _file_errors(path: str) -> Iterator[None]:
    """A report or CSV that cannot be written (full disk, permissions) is a clear error naming
    ``path``, no traceback (the atomic write leaves no partial file)."""
    try:
        yield
    except OSError as exc:
        raise QgsProcessingException(_tr("Cannot write {}: {}. Free disk space or choose another folder.")
                                     .format(path, exc.strerror or exc)) from None
