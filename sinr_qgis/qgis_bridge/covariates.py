"""Raster layers chosen for a model's covariates -> (file path, band) pairs core can read."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qgis.core import QgsRasterLayer

from ..core.covariate_match import band_candidates, band_labels, match_covariates
from ..core.covariates import CovariateRaster
from ..core.errors import CovariateError

LayerBand = tuple[QgsRasterLayer, int]  # a raster layer and its 1-based band


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


def covariate_sources(layers: Sequence[QgsRasterLayer], names: Sequence[str],
                      band_names: Sequence[str] = ()) -> dict[str, tuple[str, int]]:
    """{covariate name: (path, band)} for a model whose covariates are ``names``, from every band of
    ``layers`` (layers in order, then their bands).

    Without ``band_names`` the bands are matched by name
    (:func:`~sinr_qgis.core.covariate_match.match_covariates`; a single-band layer also goes by its
    layer name); an alpha band is a mask, not a covariate, and is not among them. ``band_names``
    (the user's explicit choice) name the bands in that order, one
    each: an empty entry keeps the band's own name for the matching, ``-`` leaves the band out.
    Raises ``CovariateError`` with the model's order and the bands given when they do not fit."""
    names = list(names)
    if not names:
        return {}
    per_layer = [_covariate_bands(lyr) for lyr in layers]
    bands = [src for srcs in per_layer for src in srcs]
    aliases = [[lyr.name()] if len(srcs) == 1 else [] for lyr, srcs in zip(layers, per_layer) for _s in srcs]
    given = [n.strip() for n in band_names]
    if not given:
        return dict(zip(names, match_covariates(names, bands, aliases)))
    if len(given) != len(bands):
        listed = ", ".join(f"{Path(p).name} band {b}" for p, b in bands)
        raise CovariateError(f"{len(given)} covariate name(s) were given for {len(bands)} raster band(s) ({listed}). "
                             "Give one name per band, in this order (an empty name keeps the band's own name, "
                             "'-' leaves the band out).")
    twice = sorted({n for n in given if n and n != "-" and given.count(n) > 1})
    if twice:
        raise CovariateError(f"Covariate name(s) {', '.join(twice)} given to more than one band. Name each band once.")
    named = {n: src for n, src in zip(given, bands) if n and n != "-"}
    rest = [(src, al) for n, src, al in zip(given, bands, aliases) if not n]
    if rest:  # the unnamed bands go by their own names, for the covariates not named explicitly
        left = [n for n in names if n not in named]
        named.update(zip(left, match_covariates(left, [s for s, _ in rest], [a for _, a in rest])))
    return named


def _covariate_bands(layer: QgsRasterLayer) -> list[tuple[str, int]]:
    """(path, band) of each covariate band of ``layer``: every band but an alpha band (core's rule)."""
    path, _ = raster_layer_source(layer)
    return [(path, b) for b in CovariateRaster(path).band_numbers]


def layer_band_candidates(names: Sequence[str], layers: Sequence[QgsRasterLayer]) -> list[list[LayerBand]]:
    """Per covariate of ``names`` (a model's), the (layer, band) of ``layers`` that go by its name
    (:func:`~sinr_qgis.core.covariate_match.band_candidates`: band description, file name,
    ``<file stem>_b<band>``, a single-band layer's name, WorldClim variable), in ``layers`` order.

    One entry per file band: a file loaded as two layers counts once (its first layer). Layers that
    are not readable file rasters (WMS, an unreadable file) cannot be covariates and are passed over."""
    bands: list[LayerBand] = []
    labels: list[list[str]] = []
    seen: set[tuple[str, int]] = set()
    for layer in layers:
        try:
            path, _ = raster_layer_source(layer)
            raster = CovariateRaster(path)
        except CovariateError:
            continue
        alias = [layer.name()] if raster.n_bands == 1 else []
        for band in raster.band_numbers:
            if (path, band) not in seen:
                seen.add((path, band))
                bands.append((layer, band))
                labels.append(band_labels(raster, band) + alias)
    return [[bands[i] for i in found] for found in band_candidates(names, labels)]
