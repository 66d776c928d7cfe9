"""What every SINR algorithm shares: the MODEL parameter, model loading, errors, progress."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

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

CAVEATS = (
    "<p><b>Caveats.</b> Values are the model's relative probability of presence, learned from "
    "presence-only records: they rank places, they are not calibrated probabilities of occupancy. "
    "Expert range maps, used for evaluation, are generous outlines. Areas far from the training "
    "data (other continents for a North American model) are extrapolation.</p>")


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

    Instances must outlive the algorithm run (QGIS keeps only a C++ pointer): ``for_kind`` keeps
    one stateless instance per style in a class-level dict.
    """

    _instances: dict[str, StyleOnLoad] = {}  # noqa: RUF012 - deliberate keep-alive registry

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def postProcessLayer(self, layer, context, feedback) -> None:
        if isinstance(layer, QgsRasterLayer) and layer.isValid():
            bridge_layers.STYLERS[self.kind](layer)

    @classmethod
    def for_kind(cls, kind: str) -> StyleOnLoad:
        if kind not in cls._instances:
            cls._instances[kind] = cls(kind)
        return cls._instances[kind]


def style_output_on_load(context: QgsProcessingContext, path: str, kind: str, name: str | None = None) -> None:
    """Attach the styling post-processor to ``path`` if Processing will load it."""
    if context.willLoadLayerOnCompletion(path):
        details = context.layerToLoadOnCompletionDetails(path)
        details.setPostProcessor(StyleOnLoad.for_kind(kind))
        if name:
            details.name = name
