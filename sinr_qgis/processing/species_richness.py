"""``sinr:species_richness``: extent -> number of species above their threshold per pixel (a map that
follows sampling effort as much as richness; the output and the log say so)."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from ..core.products import map_footprint_summary, species_richness_raster
from ..core.reliability import RICHNESS_CAVEAT
from ..core.species_names import LIST_RULE
from ..core.thresholds import THRESHOLD_FIXED, THRESHOLD_LPTR, species_thresholds
from .base import CAVEATS, SinrAlgorithm, progress_callbacks, style_output_on_load, user_errors
from .grid_params import (
    COVARIATES_HELP,
    FOOTPRINT_HELP,
    GRID_HELP,
    add_covariates_parameter,
    add_footprint_parameters,
    add_grid_parameters,
    covariates_from_parameters,
    footprint_options,
    grid_from_parameters,
    mask_ocean,
)
from .scoring_params import LOCAL_EVIDENCE_HELP, add_local_evidence_parameter, scoring_predictor

# the richness threshold choices are the predict_range ones minus "none"
THRESHOLD_MODES = [THRESHOLD_LPTR, THRESHOLD_FIXED]
THRESHOLD_LABELS = ["LPT-R per species (fixed value where the model has none)", "Fixed value for all species"]


class SpeciesRichnessAlgorithm(SinrAlgorithm):
    """Counts, per pixel, the species whose probability reaches their presence threshold."""

    SPECIES = "SPECIES"
    THRESHOLD = "THRESHOLD"
    THRESHOLD_VALUE = "THRESHOLD_VALUE"
    OUTPUT = "OUTPUT"

    def name(self) -> str:
        return "species_richness"

    def displayName(self) -> str:
        return self.tr("Species richness")

    def shortHelpString(self) -> str:
        return self.tr(
            "<p>Counts, in each pixel, how many species reach their threshold: a species counts where "
            "its relative score is at or above its threshold.</p>"
            "<p><b>Inputs.</b> The model (empty = bundled); <i>species</i>: codes or names, or empty "
            "for all the model's species ({species_rule}); {grid_help} <i>Threshold</i>: "
            "<b>LPT-R per species</b> (default) uses each species' threshold stored in the model (the "
            "5th percentile of its predictions at its training locations), and <i>threshold value</i> "
            "for species without one (with a warning); <b>Fixed value</b> uses <i>threshold value</i> "
            "for all. {footprint_help} {covariates_help}</p>"
            "<p><b>Output.</b> A one-band Float32 GeoTIFF of counts (0 to the number of species), "
            "nodata over masked ocean and outside the data footprint; its band name and metadata (CAVEAT) "
            "carry the warning below.</p>"
            "<p><b>Sampling effort.</b> Species richness from presence-only records reflects sampling "
            "effort as much as richness: more species reach their thresholds where more records were "
            "collected. The bundled model's peaks follow the densely sampled north-eastern US states, "
            "not a known richness gradient. Compare with where the training records are before reading "
            "a hotspot.</p>").format(species_rule=self.tr(LIST_RULE), grid_help=self.tr(GRID_HELP),
                                     footprint_help=self.tr(FOOTPRINT_HELP),
                                     covariates_help=self.tr(COVARIATES_HELP)) \
            + LOCAL_EVIDENCE_HELP + CAVEATS + self.tr(
            "<p>Richness adds up thresholded relative probabilities: it follows the threshold "
            "choice closely and is a map of predicted ranges overlapping, not a survey count.</p>")

    def initAlgorithm(self, config=None) -> None:
        self.add_model_parameter()
        self.addParameter(QgsProcessingParameterString(
            self.SPECIES, self.tr("Species (leave empty for all)"),
            multiLine=True, optional=True))
        add_grid_parameters(self)
        add_footprint_parameters(self)
        add_local_evidence_parameter(self)
        add_covariates_parameter(self)
        self.addParameter(QgsProcessingParameterEnum(
            self.THRESHOLD, self.tr("Threshold"), options=THRESHOLD_LABELS, defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD_VALUE, self.tr("Threshold value"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=0.5, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Species richness")))

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        bundle = self.model(parameters, context, feedback)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        text = self.parameterAsString(parameters, self.SPECIES, context).strip()
        with user_errors():
            species = bundle.find_species_list(text) if text else list(bundle.species)
            grid = grid_from_parameters(self, parameters, context, feedback)
            predictor = scoring_predictor(self, parameters, context, feedback, bundle)
            mode = THRESHOLD_MODES[self.parameterAsEnum(parameters, self.THRESHOLD, context)]
            # the LPT-R thresholds of the score the predictor gives (with local evidence or pure SINR)
            thresholds, warnings = species_thresholds(
                predictor.scoring_species(species), mode,
                self.parameterAsDouble(parameters, self.THRESHOLD_VALUE, context))
            covariates = covariates_from_parameters(self, parameters, context, bundle)
            for w in warnings:
                feedback.pushWarning(w)
            feedback.pushInfo(self.tr("{} species on {} x {} pixels; backend: {}").format(
                len(species), grid.width, grid.height, predictor.backend_name))
            progress, is_cancelled = progress_callbacks(feedback)
            mask_footprint, footprint_band = footprint_options(self, parameters, context)
            if footprint_band and bundle.footprint is None:
                feedback.pushWarning(self.tr("The model stores no data footprint, so the map has no footprint band."))
            species_richness_raster(
                predictor, grid, species, thresholds, output, mask_ocean=mask_ocean(self, parameters, context),
                covariates=covariates, progress=progress, is_cancelled=is_cancelled,
                mask_footprint=mask_footprint, footprint_band=footprint_band)
            feedback.pushInfo(map_footprint_summary(predictor, mask_footprint))
            for w in predictor.take_class_warnings():  # categorical classes no training record had
                feedback.pushWarning(w)
        feedback.pushInfo(self.tr(RICHNESS_CAVEAT))
        style_output_on_load(context, output, "count", name=self.tr("Species richness (follows sampling effort too)"),
                             keep_name=True)
        return {self.OUTPUT: output}
