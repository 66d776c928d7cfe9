"""``sinr:predict_range``: species (by code or name) + extent -> probability raster(s)."""
from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from ..core.products import predict_to_geotiff
from ..core.reliability import species_reliability
from ..core.species_names import LIST_RULE
from ..core.thresholds import THRESHOLD_FIXED, THRESHOLD_LPTR, THRESHOLD_NONE, threshold_argument
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

THRESHOLD_MODES = [THRESHOLD_NONE, THRESHOLD_FIXED, THRESHOLD_LPTR]
THRESHOLD_LABELS = ["None (probabilities only)", "Fixed value", "LPT-R per species (from the model)"]


class PredictRangeAlgorithm(SinrAlgorithm):
    """Predicted range of one or more species over an extent, as a GeoTIFF."""

    SPECIES = "SPECIES"
    EXTENT = "EXTENT"
    PIXEL_SIZE = "PIXEL_SIZE"
    MASK_OCEAN = "MASK_OCEAN"
    THRESHOLD = "THRESHOLD"
    THRESHOLD_VALUE = "THRESHOLD_VALUE"
    ONE_FILE_PER_SPECIES = "ONE_FILE_PER_SPECIES"
    COVARIATES = "COVARIATES"
    OUTPUT = "OUTPUT"
    OUTPUT_FILES = "OUTPUT_FILES"

    def name(self) -> str:
        return "predict_range"

    def displayName(self) -> str:
        return self.tr("Predict species range")

    def shortHelpString(self) -> str:
        return self.tr(
            "<p>Predicts where one or more species are likely present over an extent with a SINR model "
            "and writes a Float32 GeoTIFF in the extent's CRS (tiled, compressed, nodata set; band "
            "description = species).</p>"
            "<p><b>Inputs.</b> <i>Model</i>: a .sinr bundle; empty = the bundled model. <i>Species</i>: "
            "codes or scientific names (e.g. <tt>Acer rubrum, Quercus alba</tt>), or common names where "
            "the model has them; for a name the model does not know the error lists the closest ones, and "
            "<i>List a model's species</i> shows them all. {species_rule} {grid_help} <i>Threshold</i>: "
            "<b>None</b> writes scores only; <b>Fixed value</b> adds, after the score band(s), one 0/1 "
            "band per species, 1 where the score reaches <i>Threshold value</i> (legend: below/above "
            "threshold); <b>LPT-R per "
            "species</b> uses each species' threshold stored in the model (the 5th percentile of its "
            "predictions at its training locations) and falls back to <i>Threshold value</i>, with a "
            "warning, for species without one. <i>One file per species</i> writes "
            "<tt>&lt;output&gt;_&lt;code&gt;.tif</tt> files instead of one band per species: letters of "
            "every script and the hybrid sign are kept, other characters (spaces, commas, characters "
            "Windows refuses) become <tt>_</tt>, and codes that would give the same file on Windows "
            "or macOS get a short tag, so each species has its own file. {footprint_help} {covariates_help}</p>"
            "<p><b>Output.</b> One band per species with the model's relative score (0-1), styled with "
            "a colour ramp from low to high relative score when loaded. Each band's metadata carry the "
            "species' reliability (RELIABILITY good, caution, poor or unknown; N_TRAIN records; "
            "RANGES_AP, the agreement with expert ranges where the model has it; RELIABILITY_WARNING); "
            "the log lists it and warns for poor maps. The log also says how many pixels were left empty "
            "outside the model's data footprint.</p>").format(
                species_rule=self.tr(LIST_RULE), grid_help=self.tr(GRID_HELP),
                footprint_help=self.tr(FOOTPRINT_HELP), covariates_help=self.tr(COVARIATES_HELP)) \
            + LOCAL_EVIDENCE_HELP + CAVEATS

    def initAlgorithm(self, config=None) -> None:
        self.add_model_parameter()
        self.addParameter(QgsProcessingParameterString(
            self.SPECIES, self.tr("Species"),
            multiLine=True))
        add_grid_parameters(self)
        add_footprint_parameters(self)
        add_local_evidence_parameter(self)
        self.addParameter(QgsProcessingParameterEnum(
            self.THRESHOLD, self.tr("Threshold"),
            options=THRESHOLD_LABELS, defaultValue=THRESHOLD_MODES.index(THRESHOLD_NONE)))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD_VALUE, self.tr("Threshold value"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=0.5, minValue=0.0, maxValue=1.0))
        one_file = QgsProcessingParameterBoolean(
            self.ONE_FILE_PER_SPECIES, self.tr("One file per species"), defaultValue=False)
        one_file.setFlags(one_file.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(one_file)
        add_covariates_parameter(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Predicted range")))
        self.addOutput(QgsProcessingOutputMultipleLayers(self.OUTPUT_FILES, self.tr("All files written")))

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        bundle = self.model(parameters, context, feedback)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if Path(output).suffix.lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(self.tr("The output must be a GeoTIFF (.tif) file, got {}.").format(output))
        one_file = self.parameterAsBoolean(parameters, self.ONE_FILE_PER_SPECIES, context)
        with user_errors():
            species = bundle.find_species_list(self.parameterAsString(parameters, self.SPECIES, context))
            grid = grid_from_parameters(self, parameters, context, feedback)
            covariates = covariates_from_parameters(self, parameters, context, bundle)
            predictor = scoring_predictor(self, parameters, context, feedback, bundle)
            feedback.pushInfo(self.tr("Grid: {} x {} pixels in {}; backend: {}").format(
                grid.width, grid.height, grid.crs_name, predictor.backend_name))
            progress, is_cancelled = progress_callbacks(feedback)
            value = self.parameterAsDouble(parameters, self.THRESHOLD_VALUE, context)
            mode = THRESHOLD_MODES[self.parameterAsEnum(parameters, self.THRESHOLD, context)]
            mask_footprint, footprint_band = footprint_options(self, parameters, context)
            result = predict_to_geotiff(
                predictor, grid, species, output, mask_ocean=mask_ocean(self, parameters, context),
                covariates=covariates, threshold=threshold_argument(mode, value), fallback_threshold=value,
                one_file_per_species=one_file, progress=progress, is_cancelled=is_cancelled,
                mask_footprint=mask_footprint, footprint_band=footprint_band)
        feedback.pushInfo(result.footprint)
        for s in result.species:  # poor maps are also among the warnings, pushed next
            r = species_reliability(bundle, s)
            feedback.pushInfo(self.tr("Reliability {}: {}").format(r.level, r.summary))
        for w in result.warnings:
            feedback.pushWarning(w)
        for code, t in result.thresholds.items():
            feedback.pushInfo(self.tr("Threshold for {}: {:.4g}").format(code, t))
        files = [str(f) for f in result.paths]
        one_file = len(files) > 1
        if one_file:
            # The destination path itself is not written: load the per-species files instead.
            self._load_species_files(context, output, files, result.species)
        else:
            style_output_on_load(context, output, "probability",
                                 name=", ".join(s.name or s.code for s in species)[:80])
        return {self.OUTPUT: files[0] if one_file else output, self.OUTPUT_FILES: files}

    @staticmethod
    def _load_species_files(context: QgsProcessingContext, output: str, files: list[str], species) -> None:
        if not context.willLoadLayerOnCompletion(output):
            return
        details = context.layerToLoadOnCompletionDetails(output)
        # copy what we need first: replacing the map below frees ``details``
        project, output_name = details.project, str(details.outputName)
        context.setLayersToLoadOnCompletion(
            {k: v for k, v in context.layersToLoadOnCompletion().items() if k != output})
        for path, sp in zip(files, species):
            context.addLayerToLoadOnCompletion(path, QgsProcessingContext.LayerDetails(
                sp.name or sp.code, project, output_name))
            style_output_on_load(context, path, "probability")
