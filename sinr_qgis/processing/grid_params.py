"""The grid parameters several algorithms share: EXTENT (+ its CRS), PIXEL_SIZE, MASK_OCEAN."""
from __future__ import annotations

import re

from qgis import utils as qgis_utils
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterExtent,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtCore import QCoreApplication, QThread

from ..core.bundle import ModelBundle
from ..core.errors import GridError
from ..core.grid import Grid, extent_across_antimeridian, off_globe_note
from ..qgis_bridge.covariates import covariate_sources
from ..qgis_bridge.crs import crs_to_core
from ..qgis_bridge.grids import grid_from_extent

EXTENT, PIXEL_SIZE, MASK_OCEAN, COVARIATES = "EXTENT", "PIXEL_SIZE", "MASK_OCEAN", "COVARIATES"
COVARIATE_NAMES = "COVARIATE_NAMES"


def _tr(text: str) -> str:
    return QCoreApplication.translate("SinrProcessing", text)


def add_grid_parameters(alg: QgsProcessingAlgorithm) -> None:
    """EXTENT (default: the map canvas's visible extent, where there is one), PIXEL_SIZE (default 0:
    automatic) and MASK_OCEAN; what each means is in :data:`GRID_HELP`."""
    alg.addParameter(QgsProcessingParameterExtent(EXTENT, _tr("Extent"), defaultValue=canvas_extent()))
    alg.addParameter(QgsProcessingParameterNumber(
        PIXEL_SIZE, _tr("Pixel size (0: automatic)"), QgsProcessingParameterNumber.Type.Double, defaultValue=0.0,
        minValue=0.0))
    alg.addParameter(QgsProcessingParameterBoolean(MASK_OCEAN, _tr("Leave the ocean empty"), defaultValue=True))


def canvas_extent() -> str | None:
    """The main map canvas's visible extent in its CRS, as Processing's extent text
    (``"xmin,xmax,ymin,ymax [EPSG:3857]"``: the dialog's extent widget keeps the CRS of a text,
    not of a QgsReferencedRectangle): what a user means by "here" when a dialog opens. None
    without a canvas (``qgis_process``, scripts: EXTENT must then be given) or off the main thread
    (a canvas is read on the thread that owns it only)."""
    app, iface = QCoreApplication.instance(), qgis_utils.iface  # set by the desktop after start-up
    if iface is None or app is None or QThread.currentThread() != app.thread():
        return None
    canvas = iface.mapCanvas()
    if canvas is None or canvas.extent().isEmpty():
        return None
    e, crs = canvas.extent(), canvas.mapSettings().destinationCrs()
    name = crs.authid() or crs.toWkt(QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED)
    return f"{e.xMinimum()!r},{e.xMaximum()!r},{e.yMinimum()!r},{e.yMaximum()!r} [{name}]"


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


def grid_from_parameters(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback | None = None) -> Grid:
    """The prediction grid: the extent in its own CRS, square pixels of PIXEL_SIZE (raises SinrError).

    An extent partly off the globe (e.g. ``-180,180,-100,100`` in EPSG:4326) is kept, its pixels
    off the globe become nodata and ``feedback`` gets a warning saying how much; an extent with no
    pixel on the globe raises ``GridError``.
    """
    extent, crs = extent_parameter(alg, parameters, context)
    if extent is None:
        raise GridError("The extent is empty. Draw or choose an extent with a non-zero width and height.")
    grid = grid_from_extent(extent, crs, alg.parameterAsDouble(parameters, PIXEL_SIZE, context))
    note = off_globe_note(grid)
    if note and feedback is not None:
        feedback.pushWarning(note)
    return grid


def add_covariates_parameter(alg: QgsProcessingAlgorithm) -> None:
    """COVARIATES and COVARIATE_NAMES (advanced, optional): rasters for a model with environmental
    inputs, and the covariate names of their bands where the bands' own names do not say them."""
    param = QgsProcessingParameterMultipleLayers(
        COVARIATES, _tr("Covariate rasters (models with environmental inputs only)"),
        QgsProcessing.SourceType.TypeRaster, optional=True)
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
    alg.addParameter(param)
    names = QgsProcessingParameterString(
        COVARIATE_NAMES, _tr("Covariate names of the bands, comma-separated"),
        optional=True)
    names.setFlags(names.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
    alg.addParameter(names)


def covariates_from_parameters(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext,
                               bundle: ModelBundle) -> dict[str, tuple[str, int]]:
    """{covariate name: (path, band)} of the model's covariates from COVARIATES (every band of
    each raster, matched by name) and COVARIATE_NAMES; empty for a coordinate-only model."""
    if not bundle.covariates:
        return {}
    text = alg.parameterAsString(parameters, COVARIATE_NAMES, context) if COVARIATE_NAMES in parameters else ""
    band_names = [n.strip() for n in text.split(",")] if text.strip() else []
    return covariate_sources(alg.parameterAsLayerList(parameters, COVARIATES, context), bundle.covariate_names,
                             band_names)


def mask_ocean(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext) -> bool:
    return alg.parameterAsBoolean(parameters, MASK_OCEAN, context)


COVARIATES_HELP = (
    "<i>Covariates</i> (advanced; models with environmental inputs only): rasters whose bands hold the "
    "model's covariates, in any order. Bands are matched to the model's covariates by name: a band's "
    "description, a single-band file's or layer's name (WorldClim variables for imported official "
    "models); bands the model does not read are left out. Where the names do not say which covariate a "
    "band holds, the algorithm stops and lists both orders: name the bands in <i>Covariate names</i>, one "
    "name per band of the rasters in order (e.g. <tt>bio1,bio12</tt>; an empty name keeps the band's own, "
    "<tt>-</tt> leaves it out). Values are read as GDAL and QGIS read them (nodata, masks, scale and "
    "offset); a raster without CRS is read as EPSG:4326 when its extent is in degrees, and 0..360 "
    "longitudes are wrapped. Pixels a raster does not cover are nodata; a map with no pixel covered is "
    "an error.")

GRID_HELP = (
    "<i>Extent</i> and its CRS (the output is in that CRS); in the dialog it starts as the map's "
    "visible extent; from <tt>qgis_process</tt> or a script give it as "
    "<tt>xmin,xmax,ymin,ymax [EPSG:4326]</tt>. <i>Pixel size</i> in the extent's CRS units "
    "(degrees for EPSG:4326, metres for most projected CRSs); 0 (the default) picks about 1000 "
    "pixels along the longer side. <i>Leave the ocean empty</i>: sea pixels become nodata. "
    "An extent reaching off the globe (past the poles, or wider than 360 degrees) is predicted where "
    "it is on the globe; the rest is nodata and the log says how much.")


OUTSIDE_FOOTPRINT, FOOTPRINT_BAND = "OUTSIDE_FOOTPRINT", "FOOTPRINT_BAND"


def add_footprint_parameters(alg: QgsProcessingAlgorithm) -> None:
    """OUTSIDE_FOOTPRINT (default off: pixels outside the model's data footprint are nodata) and
    FOOTPRINT_BAND (advanced, default off: one more band with the footprint's values); see
    :data:`FOOTPRINT_HELP`."""
    alg.addParameter(QgsProcessingParameterBoolean(
        OUTSIDE_FOOTPRINT, _tr("Show extrapolation (outside the data footprint)"), defaultValue=False))
    band = QgsProcessingParameterBoolean(FOOTPRINT_BAND, _tr("Add a footprint band (distance or novelty)"),
                                         defaultValue=False)
    band.setFlags(band.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
    alg.addParameter(band)


def footprint_options(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext
                      ) -> tuple[bool, bool]:
    """(mask_footprint, footprint_band) from OUTSIDE_FOOTPRINT and FOOTPRINT_BAND."""
    return (not alg.parameterAsBoolean(parameters, OUTSIDE_FOOTPRINT, context),
            alg.parameterAsBoolean(parameters, FOOTPRINT_BAND, context))


FOOTPRINT_HELP = (
    "<i>Show extrapolation</i>: by default pixels outside the model's data footprint are nodata: farther "
    "than the model's distance from its training records (models that read coordinates: the distance to "
    "the 10th nearest training location of any species), or with a covariate outside the values seen in "
    "training (models that read covariates). Tick it to see the model's values there too: they are "
    "extrapolation, guesses far from anything the model learned from. <i>Add a footprint band</i> "
    "(advanced) adds, after the other bands, the distance to the training data in km and/or the covariate "
    "novelty (0 inside the training ranges, else how far outside in units of the range); band metadata "
    "VALUE=footprint. A model without a stored footprint (older bundles, imported official models) "
    "is mapped everywhere and the log says \"no footprint stored\".")
