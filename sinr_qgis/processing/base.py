"""What every SINR algorithm shares: the MODEL parameter, model loading, errors, progress."""
from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator
from typing import ClassVar

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterFile,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..core.bundle import ModelBundle
from ..core.errors import CancelledError, SinrError
from ..qgis_bridge import layers as bridge_layers
from ..qgis_bridge.model import load_model
from ..toolbelt.paths import help_url
from .help_text import ABOUT_SINR, CREDITS, MORE_HELP, help_section

CAVEATS = (
    "<p><b>Caveats.</b> Values are the model's relative probability of presence, learned from "
    "presence-only records: they rank places, they are not calibrated probabilities of occupancy. "
    "Expert range maps, used for evaluation, are generous outlines. Areas far from the training "
    "data (other continents for a North American model) are extrapolation.</p>"
    + ABOUT_SINR + CREDITS + MORE_HELP)


class SinrAlgorithm(QgsProcessingAlgorithm):
    """Base class: translated strings, the MODEL parameter, SinrError -> QgsProcessingException."""

    MODEL = "MODEL"

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("SinrProcessing", text)

    def createInstance(self) -> SinrAlgorithm:
        return type(self)()

    def group(self) -> str:
        return self.tr("Species ranges")

    def groupId(self) -> str:
        return "species_ranges"

    def helpUrl(self) -> str:
        """The plugin's offline guide (resources/help/index.html), at this algorithm's section."""
        return help_url(help_section(self.name()))

    def add_model_parameter(self) -> None:
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, self.tr("Model bundle (.sinr; empty = the bundled North American trees model)"),
            behavior=QgsProcessingParameterFile.File, extension="sinr", optional=True))

    def model(self, parameters: dict, context: QgsProcessingContext,
              feedback: QgsProcessingFeedback) -> ModelBundle:
        path = self.parameterAsFile(parameters, self.MODEL, context)
        with user_errors():
            bundle = load_model(path)
        feedback.pushInfo(self.tr("Model: {} ({} species, {})").format(
            bundle.name, bundle.n_species, bundle.encoding))
        for warning in bundle.warnings:  # e.g. an older bundle without member checksums
            feedback.pushWarning(warning)
        return bundle


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the plugin's typed user errors into ``QgsProcessingException`` with the same message."""
    try:
        yield
    except CancelledError as exc:
        raise QgsProcessingException(str(exc) or "Cancelled; nothing was written.") from None
    except SinrError as exc:
        raise QgsProcessingException(str(exc)) from None


def progress_callbacks(feedback: QgsProcessingFeedback) -> tuple[Callable[[float], None], Callable[[], bool]]:
    """(progress(percent), is_cancelled()) for core functions, mapped onto ``feedback``."""
    def progress(percent: float) -> None:
        feedback.setProgress(max(0.0, min(100.0, float(percent))))

    return progress, feedback.isCanceled


class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Styles an output raster when Processing loads it (QuickOSM's pattern, no layers added by hand).

    ``LayerDetails.setPostProcessor`` takes ownership (the context deletes it), so every output
    gets its own instance; Python must still hold a reference until QGIS calls it, hence
    ``create`` keeps the recent ones.
    """

    _alive: ClassVar[collections.deque] = collections.deque(maxlen=256)

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def postProcessLayer(self, layer, context, feedback) -> None:
        if isinstance(layer, QgsRasterLayer) and layer.isValid():
            bridge_layers.STYLERS[self.kind](layer)

    @classmethod
    def create(cls, kind: str) -> StyleOnLoad:
        instance = cls(kind)
        cls._alive.append(instance)
        return instance


def style_output_on_load(context: QgsProcessingContext, path: str, kind: str, name: str | None = None) -> None:
    """Attach the styling post-processor to ``path`` if Processing will load it."""
    if context.willLoadLayerOnCompletion(path):
        details = context.layerToLoadOnCompletionDetails(path)
        details.setPostProcessor(StyleOnLoad.create(kind))
        if name:
            details.name = name
