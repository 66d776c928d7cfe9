"""The grid parameters several algorithms share: EXTENT (+ its CRS), PIXEL_SIZE, MASK_OCEAN."""
from __future__ import annotations

import re

from qgis.core import (
    QgsCoordinateReferenceSystem,
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
from ..core.errors import GridError
from ..core.grid import Grid, extent_across_antimeridian
from ..qgis_bridge.covariates import covariate_sources
from ..qgis_bridge.crs import crs_to_core
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


# QGIS's text form of an extent: "xmin,xmax,ymin,ymax [CRS]"
_EXTENT_TEXT = re.compile(r"^\s*([^,\s]+)\s*,\s*([^,\s]+)\s*,\s*([^,\s]+)\s*,\s*([^,\s\[]+)\s*(\[.*\])?\s*$")


def extent_parameter(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext,
                     name: str = EXTENT) -> tuple[tuple[float, float, float, float] | None,
                                                  QgsCoordinateReferenceSystem]:
    """(xmin, ymin, xmax, ymax) of an extent parameter in its CRS, and that CRS; None when not given.

    QGIS sorts the corners of an extent it parses, so a lon/lat extent typed west edge first across
    the antimeridian (``170,-170,50,70``) would become the 340-degree complement. The typed text is
    read first: in a geographic CRS it is the window from 170 E eastwards to 170 W (xmax 190, see
    :func:`~sinr_qgis.core.grid.extent_across_antimeridian`); in a projected CRS it is refused.
    """
    crs = alg.parameterAsExtentCrs(parameters, name, context)
    typed = _EXTENT_TEXT.match(parameters.get(name)) if isinstance(parameters.get(name), str) else None
    if typed:
        try:
            xmin, xmax, ymin, ymax = (float(v) for v in typed.groups()[:4])
        except ValueError:
            typed = None
    if typed and xmin > xmax:
        return extent_across_antimeridian(xmin, min(ymin, ymax), xmax, max(ymin, ymax), crs_to_core(crs)), crs
    rect = alg.parameterAsExtent(parameters, name, context)
    if rect is None or rect.isNull() or rect.isEmpty():
        return None, crs
    return (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()), crs


def grid_from_parameters(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext) -> Grid:
    """The prediction grid: the extent in its own CRS, square pixels of PIXEL_SIZE (raises SinrError)."""
    extent, crs = extent_parameter(alg, parameters, context)
    if extent is None:
        raise GridError("The extent is empty. Draw or choose an extent with a non-zero width and height.")
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
