"""Raster layers chosen for a model's covariates -> (file path, band) pairs core can read."""
from __future__ import annotations

from collections.abc import Sequence

from qgis.core import QgsRasterLayer

from ..core.errors import CovariateError


def raster_layer_source(layer: QgsRasterLayer, band: int = 1) -> tuple[str, int]:
    """The GDAL-readable path of ``layer`` and the band to read (1-based)."""
    if layer is None or not layer.isValid():
        raise CovariateError("A covariate raster layer is missing or invalid. Choose a valid raster layer.")
    if layer.providerType() != "gdal":
        raise CovariateError(f"Covariate layer {layer.name()!r} comes from the {layer.providerType()!r} "
                             "provider; save it as a GeoTIFF first (only file rasters can be read).")
    if not 1 <= band <= layer.bandCount():
        raise CovariateError(f"Covariate layer {layer.name()!r} has {layer.bandCount()} band(s); "
                             f"band {band} does not exist.")
    return layer.source().split("|")[0], band


def covariate_sources(layers: Sequence[QgsRasterLayer], names: Sequence[str]) -> list[tuple[str, int]]:
    """One (path, band) per model covariate, in the model's order.

    A single multi-band layer supplies band i to covariate i; otherwise one single-band layer per
    covariate, in the model's order.
    """
    names = list(names)
    if not names:
        return []
    layers = list(layers)
    if len(layers) == 1 and layers[0] is not None and layers[0].bandCount() == len(names) > 1:
        return [raster_layer_source(layers[0], i + 1) for i in range(len(names))]
    if len(layers) != len(names):
        raise CovariateError(f"The model needs {len(names)} covariate raster(s) in this order: "
                             f"{', '.join(names)}; {len(layers)} layer(s) were given.")
    return [raster_layer_source(lyr, 1) for lyr in layers]
