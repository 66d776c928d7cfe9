"""``sinr:evaluate_presence_absence``: model scores at surveyed points (S&T-style) -> per-species AP, MAP."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeatureSource,
    QgsProcessingFeedback,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
)

from ..core import evaluation, scoring
from ..core.bundle import ModelBundle, Species
from ..core.covariate_match import covariates_at_points
from ..core.runtime import Predictor
from ..qgis_bridge import evaluation as bridge
from .base import SinrAlgorithm, progress_callbacks, user_errors
from .evaluation_outputs import AP_CAVEATS, TABLE_HELP, add_output_parameters, write_outputs
from .grid_params import add_covariates_parameter, covariates_from_parameters
from .scoring_params import LOCAL_EVIDENCE_HELP, add_local_evidence_parameter, score_summary, scoring_predictor


class EvaluatePresenceAbsenceAlgorithm(SinrAlgorithm):
    """Average precision of the model at presence/absence survey points, species by species."""

    INPUT = "INPUT"
    SPECIES_FIELDS = "SPECIES_FIELDS"
    SPECIES_FIELD = "SPECIES_FIELD"
    PRESENCE_FIELD = "PRESENCE_FIELD"

    def name(self) -> str:
        return "evaluate_presence_absence"

    def displayName(self) -> str:
        return self.tr("Evaluate at presence/absence plots")

    def shortHelpString(self) -> str:
        return self.tr(
            "<p>Measures how well the model ranks surveyed places where a species was found above "
            "those where it was looked for and not found, as in the SINR paper's S&amp;T task "
            "(average precision, AP, per species).</p>"
            "<p><b>Inputs.</b> <i>Model</i> (empty = bundled). <i>Points</i>: a point layer in any "
            "CRS in one of two layouts. <b>Wide</b>: one field per species holding 1 (present) or 0 "
            "(absent), named by the species code or scientific name (matched case-insensitively; "
            "choose them in <i>Species presence fields</i>, or leave it empty to use every field whose "
            "name matches a model species); each species is evaluated on the points where its field "
            "is not empty. <b>Long</b>: a <i>Species field</i> (code or name) and a <i>Presence "
            "field</i> (1/0, true/false, yes/no) with one row per surveyed species and place. Names "
            "that match no model species are listed in the log. <i>Covariates</i>: for models with "
            "environmental inputs.</p>") + TABLE_HELP.format(maps="") + self.tr(
            "<p>Here <tt>n_cells</tt> counts the surveyed points of the "
            "species. A survey absence is a real absence at the plot's scale, but a plot is small: a "
            "species can be absent from a plot well inside its range, so APs are lower than against "
            "range maps.</p>") + LOCAL_EVIDENCE_HELP + AP_CAVEATS

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Presence/absence points"), [QgsProcessing.SourceType.TypeVectorPoint]))
        self.add_model_parameter()
        self.addParameter(QgsProcessingParameterField(
            self.SPECIES_FIELDS, self.tr("Presence fields, one per species (empty: detected)"),
            parentLayerParameterName=self.INPUT, type=QgsProcessingParameterField.DataType.Any, allowMultiple=True,
            optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.SPECIES_FIELD, self.tr("…or a species field (one row per species and plot)"),
            parentLayerParameterName=self.INPUT,
            type=QgsProcessingParameterField.DataType.Any, optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.PRESENCE_FIELD, self.tr("…and its presence field (1 present, 0 absent)"),
            parentLayerParameterName=self.INPUT,
            type=QgsProcessingParameterField.DataType.Any, optional=True))
        add_local_evidence_parameter(self)
        add_covariates_parameter(self)
        add_output_parameters(self)

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        bundle = self.model(parameters, context, feedback)
        species_field = self.parameterAsString(parameters, self.SPECIES_FIELD, context)
        presence_field = self.parameterAsString(parameters, self.PRESENCE_FIELD, context)
        fields = self.parameterAsFields(parameters, self.SPECIES_FIELDS, context)
        with user_errors():
            if not species_field and not fields:
                fields = self._detected_species_fields(source, bundle, feedback)
            data = bridge.presence_absence_points(
                source, source.sourceCrs(), context.transformContext(), species_fields=fields,
                species_field=species_field, presence_field=presence_field, is_cancelled=feedback.isCanceled)
            self._report_skipped(data, bool(species_field), feedback)
            refs = self._references(data, bundle, feedback)
            predictor = scoring_predictor(self, parameters, context, feedback, bundle)
            scores = self._scores(parameters, context, feedback, predictor, data, [r[1] for r in refs.values()])
            result = evaluation.evaluate_points(list(refs.values()), scores, logits=True)
        n = data.lonlat.shape[0]
        summary = [("Model", bundle.name), score_summary(predictor), ("Points", f"{n:,} ({source.sourceName()})"),
                   ("Layout", "long (species + presence fields)" if species_field else "wide (one field per species)")]
        out = write_outputs(self, parameters, context, feedback, result,
                            title="SINR: predictions at presence/absence points", summary=summary)
        feedback.setProgress(100)
        return out

    def _detected_species_fields(self, source: QgsProcessingFeatureSource, bundle: ModelBundle,
                                 feedback: QgsProcessingFeedback) -> list[str]:
        """The layer's fields named like a species of the model (none chosen by the user)."""
        fields = [f.name() for f in source.fields()
                  if f.name() in evaluation.match_species([f.name()], bundle.species).matched]
        if not fields:
            raise QgsProcessingException(self.tr(
                "No field of the layer is named like a species of the model. Choose the species "
                "presence fields, or a species field and a presence field."))
        feedback.pushInfo(self.tr("Species fields: {}").format(", ".join(fields)))
        return fields

    def _report_skipped(self, data: bridge.PresenceAbsence, long_layout: bool, feedback: QgsProcessingFeedback) -> None:
        """Warn of the features and values read but not evaluated (counted, never silently dropped)."""
        if data.n_skipped:
            feedback.pushWarning(self.tr("{} feature(s) without a usable point were skipped.")
                                 .format(data.n_skipped))
        if data.n_unreadable:
            feedback.pushWarning(self.tr(
                "{} value(s) were skipped because they say neither present nor absent (use 1/0, "
                "true/false or yes/no{}).").format(
                data.n_unreadable, ", and a species on every row" if long_layout else ""))

    def _references(self, data: bridge.PresenceAbsence, bundle: ModelBundle, feedback: QgsProcessingFeedback) -> dict:
        """species code -> (name read, model species, labels [n], point indices [n]) for each name
        that matches one species of the model; a species named twice keeps its first column/name."""
        match = evaluation.match_species(list(data.labels), bundle.species)
        feedback.pushInfo(self.tr("{} species match the model").format(len(match.matched)))
        if match.unmatched:
            feedback.pushWarning(self.tr("{} name(s) match no single species of the model and are not "
                                         "evaluated: {}").format(len(match.unmatched), match.unmatched_text()))
        refs = {}
        for name, sp in match.matched.items():
            if sp.code in refs:
                feedback.pushWarning(self.tr("{!r} also means {} ({}), already read from {!r}: its "
                                             "{} value(s) are not evaluated.").format(
                    name, sp.code, sp.name, refs[sp.code][0], len(data.labels[name][0])))
                continue
            y, ix = data.labels[name]
            refs[sp.code] = (name, sp, y, ix)
        if not refs:
            raise QgsProcessingException(self.tr("None of the species matches a species of the model."))
        return refs

    def _scores(self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback,
                predictor: Predictor, data: bridge.PresenceAbsence, used: list[Species]) -> dict:
        """species code -> the score of ``predictor`` (a logit) at every point (float32 [n]); progress 0..80 %."""
        bundle = predictor.bundle
        covariates = covariates_from_parameters(self, parameters, context, bundle)
        env = covariates_at_points(covariates, data.lonlat, bundle)
        progress, is_cancelled = progress_callbacks(feedback)
        logits = scoring.point_logits(predictor, data.lonlat, used, env, is_cancelled=is_cancelled,
                                      progress=lambda p: progress(0.8 * p))
        for w in predictor.take_class_warnings():  # categorical classes no training record had
            feedback.pushWarning(w)
        return {sp.code: logits[:, k] for k, sp in enumerate(used)}
