"""Core results (GeoTIFF paths) -> styled QGIS raster layers, and the expert-range outline layer.

One styling function per kind of output; Processing post-processors, the dock and the demo all
call these, so a prediction looks the same wherever it was made.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from qgis.core import (
    QgsColorRampLegendNodeSettings,
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFillSymbol,
    QgsGeometry,
    QgsGradientColorRamp,
    QgsMultiBandColorRenderer,
    QgsProject,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterMinMaxOrigin,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsStyle,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

from ..core.errors import OutputError, SinrError
from ..core.eval_report import OUTLINE_COLOUR
from ..core.resources import STYLES
from .features import write_features

PROBABILITY_RAMP = "Viridis"
COUNT_RAMP = "YlGnBu"
# a score learned from presence-only records ranks places: never "absent"/"present" (as prediction.qml)
SCORE_LEGEND = ("0 low relative score", "1 high relative score")


def _ramp(name: str) -> QgsGradientColorRamp:
    ramp = QgsStyle.defaultStyle().colorRamp(name)
    if ramp is None:  # a stripped-down QGIS install without the default style database
        ramp = QgsGradientColorRamp(QColor(68, 1, 84), QColor(253, 231, 37))
    return ramp


def pseudocolor_renderer(layer: QgsRasterLayer, band: int, vmin: float, vmax: float, ramp_name: str,
                         classes: int = 0, legend: tuple[str, str] | None = None) -> QgsSingleBandPseudoColorRenderer:
    """A continuous (or, with ``classes``, equal-interval) colour ramp from vmin to vmax; ``legend``
    labels its two ends (the continuous legend's and the first and last class's labels)."""
    fcn = QgsColorRampShader(vmin, vmax)
    fcn.setSourceColorRamp(_ramp(ramp_name))
    if classes:
        fcn.setColorRampType(QgsColorRampShader.Type.Discrete)
        fcn.classifyColorRamp(classes, -1, layer.extent(), layer.dataProvider())
    else:
        fcn.setColorRampType(QgsColorRampShader.Type.Interpolated)
        fcn.classifyColorRamp(5, -1)
    if legend:
        settings = QgsColorRampLegendNodeSettings()
        settings.setMinimumLabel(legend[0])
        settings.setMaximumLabel(legend[1])
        fcn.setLegendSettings(settings)
        items = fcn.colorRampItemList()
        items[0].label, items[-1].label = legend
        fcn.setColorRampItemList(items)
    shader = QgsRasterShader(vmin, vmax)
    shader.setRasterShaderFunction(fcn)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), band, shader)
    renderer.setClassificationMin(vmin)
    renderer.setClassificationMax(vmax)
    return renderer


def style_probability_layer(layer: QgsRasterLayer, band: int = 1) -> None:
    """A relative score 0..1 as a pseudocolour ramp on ``band`` (legend: low to high relative
    score, not absent/present), nodata transparent.

    A ``.qml`` beside the file (written with the GeoTIFF) wins, then the plugin's shared
    ``prediction.qml``; a code-built Viridis ramp is the fallback. The band is then set to ``band``
    so a multi-species raster shows the species asked for.
    """
    src = Path(layer.source().split("|")[0])
    for qml in (src.with_suffix(".qml"), STYLES / "prediction.qml"):
        if qml.is_file():
            _msg, ok = layer.loadNamedStyle(str(qml))
            if ok and isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer):
                break
    else:
        layer.setRenderer(pseudocolor_renderer(layer, band, 0.0, 1.0, PROBABILITY_RAMP, legend=SCORE_LEGEND))
    renderer = layer.renderer()
    if not isinstance(renderer, QgsSingleBandPseudoColorRenderer):
        layer.setRenderer(pseudocolor_renderer(layer, band, 0.0, 1.0, PROBABILITY_RAMP, legend=SCORE_LEGEND))
    elif renderer.band() != band:
        renderer.setBand(band)
    layer.triggerRepaint()


def style_count_layer(layer: QgsRasterLayer, band: int = 1) -> None:
    """A species count (richness) from 0 to its maximum, in classes."""
    stats = layer.dataProvider().bandStatistics(band, QgsRasterBandStats.Stats.Max)
    vmax = max(1.0, float(stats.maximumValue))
    layer.setRenderer(pseudocolor_renderer(layer, band, 0.0, vmax, COUNT_RAMP))
    layer.triggerRepaint()


def style_rgb_layer(layer: QgsRasterLayer) -> None:
    """Bands 1-3 as red, green, blue, each stretched over its 2-98 % cumulative range."""
    renderer = QgsMultiBandColorRenderer(layer.dataProvider(), 1, 2, 3)
    layer.setRenderer(renderer)
    layer.setContrastEnhancement(QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum,
                                 QgsRasterMinMaxOrigin.Limits.CumulativeCut)
    layer.triggerRepaint()


STYLERS = {"probability": style_probability_layer, "count": style_count_layer, "rgb": style_rgb_layer}


def load_raster(path: str | Path, name: str) -> QgsRasterLayer:
    """Open a raster written by the plugin as a layer, or raise ``OutputError``."""
    layer = QgsRasterLayer(str(path), name, "gdal")
    if not layer.isValid():
        raise OutputError(f"The result {path} could not be opened as a raster layer.")
    return layer


def add_styled_raster(path: str | Path, name: str, kind: str = "probability",
                      project: QgsProject | None = None, opacity: float = 1.0,
                      add_to_legend: bool = True) -> QgsRasterLayer:
    """Open ``path``, style it as ``kind`` (see ``STYLERS``) and add it to the project (main thread);
    with ``add_to_legend`` False the caller places it in the layer tree."""
    layer = load_raster(path, name)
    STYLERS[kind](layer)
    layer.renderer().setOpacity(max(0.0, min(1.0, opacity)))
    (project or QgsProject.instance()).addMapLayer(layer, add_to_legend)
    return layer


def expert_outline_layer(label: str, crs: QgsCoordinateReferenceSystem,
                         geometries: Iterable[QgsGeometry]) -> tuple[QgsVectorLayer, str | None]:
    """A memory layer "Expert range: ``label``" of ``geometries`` (polygons in ``crs``), drawn as an
    outline without fill in the reports' outline colour; not added to the project (main thread).

    Returns the layer and, when the provider refused some features, what went wrong (the layer then
    holds the others: the outline is a drawing aid, the numbers do not depend on it)."""
    out = QgsVectorLayer("MultiPolygon?field=species:string", f"Expert range: {label}", "memory")
    out.setCrs(crs)
    feats = []
    for g in geometries:
        geom = QgsGeometry(g)
        geom.convertToMultiType()
        feat = QgsFeature(out.fields())
        feat.setGeometry(geom)
        feat.setAttributes([label])
        feats.append(feat)
    problem = None
    try:
        write_features(out.dataProvider(), feats, f"The outline layer of {label}")
    except SinrError as exc:
        problem = str(exc)
    symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": OUTLINE_COLOUR,
                                         "outline_width": "0.6", "outline_width_unit": "MM"})
    out.setRenderer(QgsSingleSymbolRenderer(symbol))
    return out, problem
