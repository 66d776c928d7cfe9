"""Processing provider ``sinr``: registers the plugin's algorithms."""
from __future__ import annotations

import importlib
import logging

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..core.resources import icon_path

PROVIDER_ID = "sinr"
LOG = logging.getLogger("sinr_qgis")

# (module in this package, class): each is imported on its own, so one whose dependency is
# missing is logged and skipped instead of taking the whole provider down (DataPlotly's way).
ALGORITHMS: list[tuple[str, str]] = [
    ("predict_range", "PredictRangeAlgorithm"),
    ("species_at_points", "SpeciesAtPointsAlgorithm"),
    ("location_embeddings", "LocationEmbeddingsAlgorithm"),
    ("species_richness", "SpeciesRichnessAlgorithm"),
    ("evaluate_ranges", "EvaluateRangesAlgorithm"),
    ("evaluate_presence_absence", "EvaluatePresenceAbsenceAlgorithm"),
    ("model_species", "ModelSpeciesAlgorithm"),
    ("train_model", "TrainModelAlgorithm"),  # needs torch only in the training interpreter, checked at run
    ("setup_training", "SetupTrainingAlgorithm"),  # makes that interpreter
    ("import_checkpoint", "ImportCheckpointAlgorithm"),  # official SINR checkpoints, converted there too
]


class SinrProvider(QgsProcessingProvider):
    """Species range mapping with SINR models."""

    def id(self) -> str:
        return PROVIDER_ID

    def name(self) -> str:
        return "SINR species ranges"

    def longName(self) -> str:
        return self.name()

    def icon(self) -> QIcon:
        return QIcon(icon_path("sinr.svg"))

    def svgIconPath(self) -> str:
        return icon_path("sinr.svg")

    def loadAlgorithms(self) -> None:
        for alg in available_algorithms():
            self.addAlgorithm(alg)


def available_algorithms() -> list:
    """Fresh instances of every algorithm whose imports succeed; the others are logged and skipped."""
    algorithms = []
    for module_name, class_name in ALGORITHMS:
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ImportError as exc:
            LOG.warning("Processing algorithm sinr:%s is unavailable (%s); install the missing "
                        "package to enable it.", module_name, exc)
            continue
        algorithms.append(getattr(module, class_name)())
    return algorithms
