"""``sinr:evaluate_ranges``: predicted ranges vs expert ranges (IUCN-style) -> per-species AP, MAP, report."""
from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterExtent,
    QgsProcessingParameterField,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsRasterLayer,
    QgsVectorLayer,
)

from ..core import eval_report, evaluation, metrics, scoring
from ..core.bundle import Species
from ..core.errors import CancelledError
from ..core.grid import Grid
from ..core.runtime import Predictor
from ..qgis_bridge import evaluation as bridge
from ..qgis_bridge.covariates import raster_layer_source
from ..qgis_bridge.grids import default_grid, grid_from_extent
from .base import SinrAlgorithm, progress_callbacks, user_errors
from .evaluation_outputs import AP_CAVEATS, OUTPUT_REPORT, TABLE_HELP, add_output_parameters, write_outputs
from .grid_params import add_covariates_parameter, covariates_from_parameters, extent_parameter
from .scoring_params import LOCAL_EVIDENCE_HELP, add_local_evidence_parameter, score_summary, scoring_predictor

THUMBNAIL_SIDE = 260


class EvaluateRangesAlgorithm(SinrAlgorithm):
    """Average precision of predicted ranges against expert range maps, species by species."""

    PREDICTION = "PREDICTION"
    RANGES = "RANGES"
    SPECIES_FIELD = "SPECIES_FIELD"
    EXTENT = "EXTENT"
    PIXEL_SIZE = "PIXEL_SIZE"
    AREA_WEIGHTED = "AREA_WEIGHTED"

    def name(self) -> str:
        return "evaluate_ranges"

    def displayName(self) -> str:
        return self.tr("Evaluate against expert range maps")

    def shortHelpString(self) -> str:
        return self.tr(
            "<p>Measures how well predicted ranges agree with expert range maps, as in the SINR "
            "paper's IUCN task: on a grid of land cells, each species' cells inside its expert range "
            "are presences and all other cells absences, and the model's scores are ranked against "
            "them (average precision, AP).</p>"
            "<p><b>Inputs.</b> <i>Model</i> (a .sinr bundle; empty = the bundled model), or instead "
            "<i>Prediction rasters</i> made earlier (e.g. by <i>Predict species range</i>; each band's "
            "species is read from its metadata or description, 0/1 presence bands are ignored; when "
            "given, the model is not used). <i>Expert ranges</i>: a polygon layer in any CRS (each cell "
            "centre is tested in the polygons' own CRS, so ranges around a pole or across the "
            "antimeridian keep their shape) whose <i>Species field</i> holds codes or scientific names, "
            "matched to the model's species case-insensitively (empty field = the field that matches "
            "most species); names that match no species are listed in the log. Several features of "
            "one species are merged. Or a raster whose cells &gt; 0 are presence, one band per "
            "species (named like prediction bands). "
            "<i>Extent</i>: the evaluation grid and its CRS; empty = the range layer's extent in "
            "lon/lat (EPSG:4326), or the first prediction raster's own grid when prediction rasters "
            "are given and the pixel size is 0. <i>Pixel size</i> in the grid CRS units; 0 = 0.25 "
            "degree on a lon/lat grid, else 400 cells along the longer side. A cell is a presence "
            "when its centre lies inside the range. Ocean cells (shipped land mask) are left out. "
            "<i>Area weighted</i>: on a lon/lat grid, weight each cell by cos(latitude), its true "
            "area, so northern cells do not count more than their share (this approximates the "
            "equal-area H3 points of the paper and of the NA-Trees benchmark); projected grids are "
            "taken as equal-area cells (use an equal-area CRS such as EPSG:5070).</p>") \
            + TABLE_HELP.format(maps=self.tr(", and a map thumbnail with the prediction under the expert outline")) \
            + self.tr(
            "<p>Expert ranges are generous outlines drawn by hand with little internal detail: "
            "absences inside them and presences outside are common, so even a perfect model does not "
            "reach 100 %. With a model, scores are logits (the same ranking as probabilities, "
            "without float ties); thresholds are reported as probabilities.</p>") + LOCAL_EVIDENCE_HELP + AP_CAVEATS

    def initAlgorithm(self, config=None) -> None:
        self.add_model_parameter()
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.PREDICTION, self.tr("…or prediction rasters instead of the model"),
            QgsProcessing.SourceType.TypeRaster, optional=True))
        self.addParameter(QgsProcessingParameterMapLayer(
            self.RANGES, self.tr("Expert ranges"),
            types=[QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeRaster]))
        self.addParameter(QgsProcessingParameterField(
            self.SPECIES_FIELD, self.tr("Species field (leave empty to detect it)"),
            parentLayerParameterName=self.RANGES, type=QgsProcessingParameterField.DataType.Any, optional=True))
        self.addParameter(QgsProcessingParameterExtent(
            self.EXTENT, self.tr("Extent (leave empty for the ranges' extent)"), optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.PIXEL_SIZE, self.tr("Cell size (0: automatic)"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.AREA_WEIGHTED, self.tr("Weight cells by their area"), defaultValue=True))
        add_local_evidence_parameter(self)
        add_covariates_parameter(self)
        add_output_parameters(self)

    # ---- run ---------------------------------------------------------------------------------
    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        progress, is_cancelled = progress_callbacks(feedback)
        layer = self.parameterAsLayer(parameters, self.RANGES, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(self.tr("The expert range layer is missing or invalid."))
        pred_layers = self.parameterAsLayerList(parameters, self.PREDICTION, context)
        with user_errors():
            predictions = [(raster_layer_source(lyr)[0], lyr.name()) for lyr in pred_layers]
            bands, bundle, species = self._scored_species(parameters, context, feedback, predictions)
            grid = self._grid(parameters, context, layer, predictions)
            feedback.pushInfo(self.tr("Evaluation grid: {} x {} cells of {:.6g} x {:.6g} in {}").format(
                grid.width, grid.height, grid.xres, grid.yres, grid.crs_name))
            refs = self._references(parameters, context, feedback, layer, species, grid, is_cancelled)
            if not refs:
                raise QgsProcessingException(self.tr(
                    "None of the range layer's species matches a species of the {}. Choose the field with "
                    "species codes or scientific names.").format("prediction rasters" if predictions else "model"))
            feedback.setProgress(10)
            used = list({sp.code: sp for _, sp, _ in refs}.values())
            scored = None  # which score of the model was evaluated (none with prediction rasters)
            if predictions:
                scores, logits = self._raster_scores(bands, used, grid, progress, is_cancelled), False
            else:
                predictor = scoring_predictor(self, parameters, context, feedback, bundle)
                scored = score_summary(predictor)
                scores, logits = self._model_scores(parameters, context, feedback, predictor, used, grid,
                                                    progress, is_cancelled), True
            area = self.parameterAsBoolean(parameters, self.AREA_WEIGHTED, context)
            if area and not grid.is_geographic:
                feedback.pushInfo(self.tr("Projected grid: cells are taken as equal in area (no weights)."))
            result = evaluation.evaluate_grid(grid, refs, scores, logits=logits, area_weighted=area,
                                              is_cancelled=is_cancelled)
        feedback.setProgress(90)
        thumbnails = {}
        if self.parameterAsFileOutput(parameters, OUTPUT_REPORT, context):
            thumbnails = self._thumbnails(result, grid, scores, refs, logits)
        what = "prediction rasters " + ", ".join(n for _, n in predictions) if predictions else \
            f"model {bundle.name}"
        summary = [("Predictions", what), *([scored] if scored else []), ("Expert ranges", layer.name()),
                   ("Grid", f"{grid.width} x {grid.height} cells, {grid.xres:.6g} x {grid.yres:.6g} {grid.crs_name}"),
                   ("Land cells", f"{result.n_valid_cells:,}"),
                   ("Area weighted", "yes (cos latitude)" if result.area_weighted else "no")]
        out = write_outputs(self, parameters, context, feedback, result, title="SINR: predicted vs expert ranges",
                            summary=summary, thumbnails=thumbnails)
        feedback.setProgress(100)
        return out

    # ---- steps -------------------------------------------------------------------------------
    def _scored_species(self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback,
                        predictions: list[tuple[str, str]]):
        """What is scored: the prediction rasters' bands [(path, band, species)] (None with a model),
        the model (None with prediction rasters) and the species either holds."""
        if not predictions:
            bundle = self.model(parameters, context, feedback)
            return None, bundle, list(bundle.species)
        bands = [(path, band, sp) for path, _ in predictions for band, sp in evaluation.prediction_bands(path)]
        species = [Species(i, sp.code, sp.name, 0) for i, (_, _, sp) in enumerate(bands)]
        if self.parameterAsFile(parameters, self.MODEL, context):
            feedback.pushWarning(self.tr("Prediction rasters given: the model is not used."))
        feedback.pushInfo(self.tr("{} prediction band(s) in {} raster(s)").format(len(bands), len(predictions)))
        return bands, None, species

    def _references(self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback,
                    layer, species: list[Species], grid: Grid, is_cancelled) -> list:
        """Reference labels on ``grid``: (reference name, species, bool [H, W]) for every species of
        the range layer (polygons or a raster of presence bands) that matches one of ``species``."""
        if isinstance(layer, QgsVectorLayer):
            source = self.parameterAsSource(parameters, self.RANGES, context)
            field = self._species_field(parameters, context, source, species, feedback)
            match = evaluation.match_species(bridge.field_values(source, field, layer.name()), species)
            self._log_match(match, feedback, layer.name())
            refs, polys = bridge.range_references(source, field, match, grid, source.sourceCrs(), is_cancelled)
            if polys.n_skipped:
                feedback.pushWarning(self.tr("{} range feature(s) without a usable geometry were skipped.")
                                     .format(polys.n_skipped))
            return refs
        if not isinstance(layer, QgsRasterLayer):
            raise QgsProcessingException(self.tr("The expert range layer must be polygons or a raster."))
        labelled = evaluation.reference_raster_labels(raster_layer_source(layer)[0], grid)
        match = evaluation.match_species([n for n, _ in labelled], species)
        self._log_match(match, feedback, layer.name())
        by_name = dict(labelled)
        return [(n, sp, by_name[n]) for n, sp in match.matched.items()]

    @staticmethod
    def _raster_scores(bands: list, used: list[Species], grid: Grid, progress, is_cancelled) -> dict[str, np.ndarray]:
        """The prediction bands of the species ``used`` read onto ``grid``: {code: float32 [H, W]}."""
        where = {sp.code: (path, band) for path, band, sp in bands}
        scores = {}
        for k, sp in enumerate(used):
            if is_cancelled():
                raise CancelledError(evaluation.EVALUATION_CANCELLED)
            scores[sp.code] = evaluation.warp_band_to_grid(*where[sp.code], grid)
            progress(10 + 70 * (k + 1) / len(used))
        return scores

    def _model_scores(self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback,
                      predictor: Predictor, used: list[Species], grid: Grid, progress,
                      is_cancelled) -> dict[str, np.ndarray]:
        """The logits of ``predictor`` (with or without local evidence) of the species ``used`` on ``grid``
        (``scoring.grid_logits``, as the dock's comparison scores them): {code: float32 [H, W]}."""
        covariates = covariates_from_parameters(self, parameters, context, predictor.bundle)
        feedback.pushInfo(self.tr("Backend: {}").format(predictor.backend_name))
        scores = scoring.grid_logits(predictor, grid, used, covariates=covariates or None,
                                     progress=lambda p: progress(10 + 0.7 * p), is_cancelled=is_cancelled)
        for w in predictor.take_class_warnings():  # categorical classes no training record had
            feedback.pushWarning(w)
        return scores

    # ---- helpers -----------------------------------------------------------------------------
    def _grid(self, parameters: dict, context: QgsProcessingContext, layer,
              predictions: list[tuple[str, str]]) -> Grid:
        pixel = self.parameterAsDouble(parameters, self.PIXEL_SIZE, context)
        extent, crs = extent_parameter(self, parameters, context, self.EXTENT)
        if extent is not None:
            if not pixel:
                pixel = evaluation.auto_pixel_size(extent, crs.isGeographic())
            return grid_from_extent(extent, crs, pixel)
        if predictions and not pixel:
            return evaluation.raster_grid(predictions[0][0])
        return default_grid(layer.extent(), layer.crs(), context.transformContext(), pixel)

    def _species_field(self, parameters: dict, context: QgsProcessingContext, source,
                       species: list[Species], feedback: QgsProcessingFeedback) -> str:
        field = self.parameterAsString(parameters, self.SPECIES_FIELD, context)
        if field:
            return field
        best, best_n = bridge.best_species_field(source, species)
        if not best:
            raise QgsProcessingException(self.tr("No text field of the range layer matches the species; "
                                                 "choose the species field."))
        feedback.pushInfo(self.tr("Species field: {} ({} species match)").format(best, best_n))
        return best

    def _log_match(self, match: evaluation.SpeciesMatch, feedback: QgsProcessingFeedback, origin: str) -> None:
        feedback.pushInfo(self.tr("{} species of {!r} match").format(len(match.matched), origin))
        if match.unmatched:
            feedback.pushWarning(self.tr("{} name(s) in {!r} match no single species and are not evaluated: {}").format(
                len(match.unmatched), origin, match.unmatched_text()))

    @staticmethod
    def _thumbnails(result: evaluation.EvaluationResult, grid: Grid, scores: dict[str, np.ndarray],
                    refs, logits: bool) -> dict[str, str]:
        masks = {sp.code: lab for _, sp, lab in refs}
        valid = evaluation.valid_cells(grid).reshape(grid.shape)
        out = {}
        for r in result.results:
            s = np.asarray(scores[r.code], dtype=np.float64)
            values = metrics.sigmoid(s) if logits else s
            values = np.where(valid, values, np.nan)
            finite = values[np.isfinite(values)]
            lo, hi = (0.0, 1.0) if finite.size == 0 or (finite.min() >= 0 and finite.max() <= 1) else \
                (float(finite.min()), float(finite.max()))
            scaled = (values - lo) / (hi - lo) if hi > lo else values
            out[r.code] = eval_report.map_thumbnail_svg(
                scaled, masks.get(r.code),
                max_side=THUMBNAIL_SIDE, title=f"{r.name} ({r.code})")
        return out
