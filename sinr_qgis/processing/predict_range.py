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

from ..core.species_names import LIST_RULE
from ..qgis_bridge import prediction
from .base import CAVEATS, SinrAlgorithm, progress_callbacks, style_output_on_load, user_errors
from .grid_params import (
    add_covariates_parameter,
    add_grid_parameters,
    covariates_from_parameters,
    grid_from_parameters,
    mask_ocean,
)


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
            "codes or scientific names (e.g. <tt>Acer rubrum, Quercus alba</tt>). {species_rule} "
            "<i>Extent</i> and its CRS; the output is in that CRS. <i>Pixel size</i> in the extent's CRS "
            "units (degrees for EPSG:4326, metres for most projected CRSs); 0 = about 1000 pixels along "
            "the longer side. <i>Mask ocean</i>: ocean pixels become nodata. <i>Threshold</i>: "
            "<b>None</b> writes probabilities only; <b>Fixed value</b> adds, after the probability "
            "band(s), one 0/1 presence band per species at <i>Threshold value</i>; <b>LPT-R per "
            "species</b> uses each species' threshold stored in the model (the 5th percentile of its "
            "predictions at its training locations) and falls back to <i>Threshold value</i>, with a "
            "warning, for species without one. <i>One file per species</i> writes "
            "<tt>&lt;output&gt;_&lt;code&gt;.tif</tt> files instead of one band per species: letters of "
            "every script and the hybrid sign are kept, other characters (spaces, commas, characters "
            "Windows refuses) become <tt>_</tt>, and codes that would give the same file on Windows "
            "or macOS get a short tag, so each species has its own file. "
            "<i>Covariates</i> (models with environmental inputs only): one raster per covariate in "
            "the model's order, or one multi-band raster.</p>"
            "<p><b>Output.</b> One band per species with the probability (0-1) of presence, styled "
            "with a colour ramp when loaded.</p>").format(species_rule=self.tr(LIST_RULE)) + CAVEATS

    def initAlgorithm(self, config=None) -> None:
        self.add_model_parameter()
        self.addParameter(QgsProcessingParameterString(
            self.SPECIES, self.tr("Species (codes or scientific names; several: comma-separated or one per line)"),
            multiLine=True))
        add_grid_parameters(self)
        self.addParameter(QgsProcessingParameterEnum(
            self.THRESHOLD, self.tr("Threshold (adds 0/1 presence bands)"),
            options=prediction.THRESHOLD_OPTIONS, defaultValue=prediction.THRESHOLD_NONE))
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD_VALUE, self.tr("Threshold value (fixed, or fallback for LPT-R)"),
            QgsProcessingParameterNumber.Double, defaultValue=0.5, minValue=0.0, maxValue=1.0))
        one_file = QgsProcessingParameterBoolean(
            self.ONE_FILE_PER_SPECIES, self.tr("One file per species (<output>_<code>.tif)"), defaultValue=False)
        one_file.setFlags(one_file.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
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
            grid = grid_from_parameters(self, parameters, context)
            covariates = covariates_from_parameters(self, parameters, context, bundle)
            predictor = prediction.make_predictor(bundle)
            feedback.pushInfo(self.tr("Grid: {} x {} pixels in {}; backend: {}").format(
                grid.width, grid.height, grid.crs_name, predictor.backend_name))
            progress, is_cancelled = progress_callbacks(feedback)
            result = prediction.predict_range_raster(
                predictor, grid, species, output, mask_ocean=mask_ocean(self, parameters, context),
                covariates=covariates,
                threshold_mode=self.parameterAsEnum(parameters, self.THRESHOLD, context),
                threshold_value=self.parameterAsDouble(parameters, self.THRESHOLD_VALUE, context),
                one_file_per_species=one_file, progress=progress, is_cancelled=is_cancelled)
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
