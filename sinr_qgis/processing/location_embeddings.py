"""``sinr:location_embeddings``: extent -> the model's location embedding, full or as a PCA RGB."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterRasterDestination,
)

from ..core.products import embedding_raster
from ..core.runtime import Predictor
from .base import SinrAlgorithm, progress_callbacks, style_output_on_load, user_errors
from .grid_params import (
    COVARIATES_HELP,
    GRID_HELP,
    add_covariates_parameter,
    add_grid_parameters,
    covariates_from_parameters,
    grid_from_parameters,
    mask_ocean,
)
from .help_text import ABOUT_SINR, CREDITS, MORE_HELP

MODES = ["RGB summary: first 3 principal components", "Full embedding: one band per dimension"]


class LocationEmbeddingsAlgorithm(SinrAlgorithm):
    """The embedding the model computes for each pixel centre."""

    MODE = "MODE"
    OUTPUT = "OUTPUT"

    def name(self) -> str:
        return "location_embeddings"

    def displayName(self) -> str:
        return self.tr("Location embeddings")

    def shortHelpString(self) -> str:
        return self.tr(
            "<p>Writes the location embedding the model computes for every pixel: the learned "
            "description of a place from which every species' probability is one linear read-out. "
            "Places with similar colours (or values) are places the model treats alike.</p>"
            "<p><b>Inputs.</b> The model (empty = bundled); {grid_help} <i>Output</i>: "
            "<b>RGB summary</b> (default) projects the embedding on its first three principal "
            "components, fitted (numpy SVD) on a coarse sample of the same extent, and writes them as "
            "3 bands shown as red, green and blue; <b>Full embedding</b> writes one band per dimension "
            "(for example 256 bands; large files). {covariates_help}</p>"
            "<p><b>Output.</b> A Float32 GeoTIFF in the extent's CRS, nodata over masked ocean; the "
            "PCA's shares of explained variance are in the file's metadata (EXPLAINED_VARIANCE).</p>"
            "<p><b>Caveats.</b> Embedding dimensions have no fixed meaning and differ between "
            "models; PCA colours depend on the extent they were fitted on, so compare colours only "
            "within one output. Far from the training data the embedding is extrapolation.</p>").format(
                grid_help=self.tr(GRID_HELP), covariates_help=self.tr(COVARIATES_HELP)) \
            + ABOUT_SINR + CREDITS + MORE_HELP

    def initAlgorithm(self, config=None) -> None:
        self.add_model_parameter()
        add_grid_parameters(self)
        add_covariates_parameter(self)
        self.addParameter(QgsProcessingParameterEnum(self.MODE, self.tr("Output"), options=MODES, defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Location embeddings")))

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        bundle = self.model(parameters, context, feedback)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        rgb = self.parameterAsEnum(parameters, self.MODE, context) == 0
        with user_errors():
            grid = grid_from_parameters(self, parameters, context, feedback)
            covariates = covariates_from_parameters(self, parameters, context, bundle)
            predictor = Predictor(bundle)
            feedback.pushInfo(self.tr("{} x {} pixels, {} bands; backend: {}").format(
                grid.width, grid.height, 3 if rgb else bundle.embedding_dim, predictor.backend_name))
            progress, is_cancelled = progress_callbacks(feedback)
            _path, pca = embedding_raster(
                predictor, grid, output, rgb=rgb, mask_ocean=mask_ocean(self, parameters, context),
                covariates=covariates, progress=progress, is_cancelled=is_cancelled)
            for w in predictor.take_class_warnings():  # categorical classes no training record had
                feedback.pushWarning(w)
        if pca is not None:
            feedback.pushInfo(self.tr("Explained variance of PC1-3: {}").format(
                ", ".join(f"{v:.1%}" for v in pca.explained)))
            style_output_on_load(context, output, "rgb")
        return {self.OUTPUT: output}
