"""The grid parameters several algorithms share: EXTENT (+ its CRS), PIXEL_SIZE, MASK_OCEAN."""
from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterExtent,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..core.bundle import ModelBundle
from ..core.grid import Grid
from ..qgis_bridge.covariates import covariate_sources
from ..qgis_bridge.grids import grid_from_extent

EXTENT, PIXEL_SIZE, MASK_OCEAN, COVARIATES = "EXTENT", "PIXEL_SIZE", "MASK_OCEAN", "COVARIATES"


def _tr(text: str) -> str:
    return QCoreApplication.translate("SinrProcessing", text)


def add_grid_parameters(alg: QgsProcessingAlgorithm, default_pixel_size: float = 0.1) -> None:
    alg.addParameter(QgsProcessingParameterExtent(EXTENT, _tr("Extent")))
    alg.addParameter(QgsProcessingParameterNumber(
        PIXEL_SIZE, _tr("Pixel size (extent CRS units; 0 = about 1000 pixels wide)"),
        QgsProcessingParameterNumber.Double, defaultValue=default_pixel_size, minValue=0.0))
    alg.addParameter(QgsProcessingParameterBoolean(
        MASK_OCEAN, _tr("Mask ocean (nodata over the sea)"), defaultValue=True))


def grid_from_parameters(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext) -> Grid:
    """The prediction grid: the extent in its own CRS, square pixels of PIXEL_SIZE (raises SinrError)."""
    extent = alg.parameterAsExtent(parameters, EXTENT, context)
    crs = alg.parameterAsExtentCrs(parameters, EXTENT, context)
    return grid_from_extent(extent, crs, alg.parameterAsDouble(parameters, PIXEL_SIZE, context))


def add_covariates_parameter(alg: QgsProcessingAlgorithm) -> None:
    """COVARIATES (advanced, optional): rasters for a model with environmental inputs."""
    param = QgsProcessingParameterMultipleLayers(
        COVARIATES, _tr("Covariate rasters, in the model's order (environmental models only)"),
        QgsProcessing.TypeRaster, optional=True)
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    alg.addParameter(param)


def covariates_from_parameters(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext,
                               bundle: ModelBundle) -> list[tuple[str, int]]:
    """(path, band) per model covariate from COVARIATES; empty for a coordinate-only model."""
    if not bundle.covariates:
        return []
    return covariate_sources(alg.parameterAsLayerList(parameters, COVARIATES, context), bundle.covariate_names)


def mask_ocean(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext) -> bool:
    return alg.parameterAsBoolean(parameters, MASK_OCEAN, context)


COVARIATES_HELP = (
    "<i>Covariates</i> (advanced; models with environmental inputs only): one raster per covariate "
    "in the model's order, or one raster with a band per covariate; pixels a raster does not cover "
    "are nodata.")

GRID_HELP = (
    "<i>Extent</i> and its CRS (the output is in that CRS); <i>pixel size</i> in the extent's CRS "
    "units (degrees for EPSG:4326, metres for most projected CRSs; 0 = about 1000 pixels along "
    "the longer side); <i>mask ocean</i> makes sea pixels nodata.")
