"""What every SINR algorithm shares: the MODEL parameter, model loading, errors, progress."""
from __future__ import annotations

import collections
import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import ClassVar

from qgis.core import (
    QgsApplication,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterFile,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QTimer

from ..core.bundle import ModelBundle
from ..core.errors import CancelledError, SinrError
from ..core.model_cache import load_model
from ..core.resources import BUNDLED, help_url
from ..qgis_bridge import layers as bridge_layers
from .help_text import ABOUT_SINR, CREDITS, MORE_HELP, help_section

CAVEATS = QCoreApplication.translate("SinrProcessing", (
    "<p><b>Caveats.</b> Values are the model's relative probability of presence, learned from "
    "presence-only records: they rank places, they are not calibrated probabilities of occupancy. "
    "Expert range maps, used for evaluation, are generous outlines. Areas far from the training "
    "data (another continent, for instance) are extrapolation.</p>")) + ABOUT_SINR + CREDITS + MORE_HELP


class SinrAlgorithm(QgsProcessingAlgorithm):
    """Base class: translated strings, the MODEL parameter, SinrError -> QgsProcessingException."""

    MODEL = "MODEL"

    def __init_subclass__(cls, **kwargs) -> None:
        """Every algorithm's ``processAlgorithm`` reports a failure once on the command line
        (:func:`report_once_on_the_command_line`)."""
        super().__init_subclass__(**kwargs)
        if "processAlgorithm" in vars(cls):
            cls.processAlgorithm = _failure_reported_once(vars(cls)["processAlgorithm"])

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
            self.MODEL, self.tr("Model file (leave empty for the bundled {taxa} model)").format(taxa=BUNDLED.taxa),
            behavior=QgsProcessingParameterFile.Behavior.File, extension="sinr", optional=True))

    def model(self, parameters: dict, context: QgsProcessingContext,
              feedback: QgsProcessingFeedback) -> ModelBundle:
        path = self.parameterAsFile(parameters, self.MODEL, context)
        with user_errors():
            bundle = load_model(path)
        feedback.pushInfo(self.tr("Model: {} ({} species, {})").format(
            bundle.name, bundle.n_species, bundle.encoding_label()))
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


def report_once_on_the_command_line(message: str) -> None:
    """Make ``qgis_process`` show the error ``message`` of a failing algorithm once.

    For an algorithm that raises, QGIS 3.22 logs the message as critical, reports it to the
    feedback (``qgis_process`` prints ``ERROR:<tab>message``) and the feedback logs it again, and
    ``qgis_process`` echoes every critical log message to stderr: the user reads it three times.
    So, in ``qgis_process`` only, the message log is silenced until control returns to the event
    loop (after those two log calls), leaving QGIS's ``ERROR:`` line; with ``--json``, which prints
    no such line, the message is written to stderr once here. Elsewhere (the desktop, scripts)
    nothing changes.
    """
    if QgsApplication.platform() != "qgis_process":
        return
    if "--json" in QCoreApplication.arguments():
        print(message, file=sys.stderr, flush=True)
    log = QgsApplication.messageLog()
    log.blockSignals(True)
    QTimer.singleShot(0, lambda: log.blockSignals(False))


def _failure_reported_once(process: Callable) -> Callable:
    @functools.wraps(process)
    def run(self, parameters, context, feedback):
        try:
            return process(self, parameters, context, feedback)
        except QgsProcessingException as exc:
            report_once_on_the_command_line(str(exc))
            raise

    return run


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


def style_output_on_load(context: QgsProcessingContext, path: str, kind: str, name: str | None = None,
                         keep_name: bool = False) -> None:
    """Attach the styling post-processor to ``path`` if Processing will load it, named ``name``.

    QGIS names a loaded output saved as a file after that file by default (Processing's "Prefer
    output filename for layer names"); ``keep_name`` keeps ``name`` even then, for a name that
    carries a caveat the file name would lose."""
    if context.willLoadLayerOnCompletion(path):
        details = context.layerToLoadOnCompletionDetails(path)
        details.setPostProcessor(StyleOnLoad.create(kind))
        if name:
            details.name = name
            details.forceName = keep_name
