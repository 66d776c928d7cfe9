"""``sinr:species_at_points``: points -> the k most probable species at each ("expected nearby")."""
from __future__ import annotations

from itertools import islice

from qgis.core import (
    QgsFeature,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.errors import CancelledError
from ..core.products import footprint_notes, ranked_species
from ..qgis_bridge.features import output_fields, write_features
from ..qgis_bridge.points import features_to_lonlat
from .base import CAVEATS, SinrAlgorithm, user_errors
from .grid_params import COVARIATES_HELP, add_covariates_parameter, covariates_from_parameters
from .scoring_params import LOCAL_EVIDENCE_HELP, add_local_evidence_parameter, scoring_predictor

BATCH = 4096  # features per model call: bounded memory, and a cancel check per batch


def ranking_fields() -> QgsFields:
    """The fields added to each output feature."""
    fields = QgsFields()
    fields.append(QgsField("rank", QVariant.Int))
    fields.append(QgsField("species_code", QVariant.String))
    fields.append(QgsField("species_name", QVariant.String))
    fields.append(QgsField("probability", QVariant.Double))
    return fields


class SpeciesAtPointsAlgorithm(SinrAlgorithm):
    """The top-k species at each input point, one output feature per (point, rank)."""

    INPUT = "INPUT"
    TOP_K = "TOP_K"
    OUTPUT = "OUTPUT"

    def name(self) -> str:
        return "species_at_points"

    def displayName(self) -> str:
        return self.tr("Species at points (expected nearby)")

    def shortHelpString(self) -> str:
        return self.tr(
            "<p>Lists the species the model expects at each point, best first: iNaturalist's "
            "\"expected nearby\" list.</p>"
            "<p><b>Inputs.</b> A point layer in any CRS (each part of a multipoint is a point of its "
            "own and gets its own rows; features without geometry are skipped), the model (empty = "
            "bundled) and "
            "<i>k</i>, how many species to list per point. {covariates_help}</p>"
            "<p><b>Output.</b> A point layer with <i>k</i> features per input point (a copy of the "
            "point and its attributes) and the fields <tt>rank</tt> (1 = most probable), "
            "<tt>species_code</tt>, <tt>species_name</tt> and <tt>probability</tt>. Filter "
            "<tt>\"rank\" = 1</tt> for the single most probable species per point. The input's "
            "<tt>fid</tt> is kept as <tt>input_fid</tt> (a GeoPackage's fid must be unique, and each "
            "point has <i>k</i> rows), and input fields named like the four above get an "
            "<tt>input_</tt> prefix; in a Shapefile, names are cut to 10 characters "
            "(<tt>species_co</tt>, <tt>species_na</tt>, <tt>probabilit</tt>). Renamed fields are "
            "listed in the log. A row the output refuses stops the algorithm with an error. The log counts the "
            "points outside the model's data footprint, where the lists are extrapolation.</p>").format(
                covariates_help=self.tr(COVARIATES_HELP)) + LOCAL_EVIDENCE_HELP + CAVEATS

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Points"), [QgsProcessing.SourceType.TypeVectorPoint]))
        self.add_model_parameter()
        self.addParameter(QgsProcessingParameterNumber(
            self.TOP_K, self.tr("Species per point (k)"), QgsProcessingParameterNumber.Type.Integer,
            defaultValue=10, minValue=1))
        add_local_evidence_parameter(self)
        add_covariates_parameter(self)
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Species at points"), QgsProcessing.SourceType.TypeVectorPoint))

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        bundle = self.model(parameters, context, feedback)
        k = min(self.parameterAsInt(parameters, self.TOP_K, context), bundle.n_species)
        destination = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        fields, renamed = output_fields(source.fields(), ranking_fields(), destination)
        if renamed:
            feedback.pushInfo(self.tr("Input fields renamed in the output: {}").format(
                ", ".join(f"{a} -> {b}" for a, b in renamed.items())))
        sink, dest_id = self.parameterAsSink(parameters, self.OUTPUT, context, fields,
                                             QgsWkbTypes.singleType(source.wkbType()), source.sourceCrs())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
        with user_errors():
            covariates = covariates_from_parameters(self, parameters, context, bundle)
            predictor = scoring_predictor(self, parameters, context, feedback, bundle)
        feedback.pushInfo(self.tr("Backend: {}").format(predictor.backend_name))
        total = source.featureCount()  # -1 when the provider cannot tell: then no percentage
        done = skipped = unusable = written = outside = 0
        features = source.getFeatures()
        n_in = len(source.fields())
        while True:
            with user_errors():  # a cancel, too, ends as every user error does
                if feedback.isCanceled():
                    raise CancelledError(self.tr("Cancelled: the output holds only the points done so far."))
                batch = list(islice(features, BATCH))
                if not batch:
                    break
                kept, lonlat, n_skip = features_to_lonlat(batch, source.sourceCrs(), context.transformContext())
                ranks = ranked_species(predictor, lonlat, k, covariates) if kept else []
                outside += sum(bool(n) for n in footprint_notes(predictor, lonlat, covariates)) if kept else 0
            skipped += n_skip
            rows = []
            for feat, ranking in zip(kept, ranks):
                unusable += not ranking
                attrs = feat.attributes()[:n_in]
                for r in ranking:
                    out = QgsFeature(fields)
                    out.setGeometry(feat.geometry())
                    out.setAttributes([*attrs, r.rank, r.species.code, r.species.name, r.probability])
                    rows.append(out)
            with user_errors():
                written += write_features(sink, rows, self.tr("The output layer"))
            done += len(batch)
            if total > 0:
                feedback.setProgress(min(100.0, 100.0 * done / total))
        self._report(feedback, written, unusable, skipped, outside, bundle)
        return {self.OUTPUT: dest_id}

    def _report(self, feedback: QgsProcessingFeedback, written: int, unusable: int, skipped: int, outside: int,
                bundle) -> None:
        """The log's counts: rows written, points without covariates or a usable point, and points
        outside the model's data footprint."""
        feedback.pushInfo(self.tr("{} row(s) written").format(written))
        if unusable:
            feedback.pushWarning(self.tr("{} point(s) have no covariate values and got no species.").format(
                unusable))
        if skipped:
            feedback.pushWarning(self.tr("{} feature(s) without a usable point were skipped.").format(skipped))
        if outside:
            feedback.pushWarning(self.tr("{} point(s) lie outside the model's data footprint: their species lists "
                                         "are extrapolation. {}").format(outside, bundle.footprint.rule()))
