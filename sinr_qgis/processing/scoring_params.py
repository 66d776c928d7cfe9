"""The parameter every algorithm that scores species shares: LOCAL_EVIDENCE (add the model's local
evidence, ``core.local_evidence``, where it stores one), the predictor it asks for, and its help."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..core.bundle import ModelBundle
from ..core.runtime import Predictor, local_evidence_status

LOCAL_EVIDENCE = "LOCAL_EVIDENCE"


def _tr(text: str) -> str:
    return QCoreApplication.translate("SinrProcessing", text)


def add_local_evidence_parameter(alg: QgsProcessingAlgorithm) -> None:
    """LOCAL_EVIDENCE (default on: a model's stored local evidence is used); see :data:`LOCAL_EVIDENCE_HELP`."""
    alg.addParameter(QgsProcessingParameterBoolean(
        LOCAL_EVIDENCE, _tr("Use local evidence (nearby records) if the model stores it"), defaultValue=True))


def scoring_predictor(alg: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext,
                      feedback: QgsProcessingFeedback, bundle: ModelBundle) -> Predictor:
    """``Predictor(bundle)`` with local evidence as LOCAL_EVIDENCE says; for a model that stores
    local evidence the log says which score the algorithm gives (with it, or pure SINR)."""
    predictor = Predictor(bundle, local_evidence=alg.parameterAsBoolean(parameters, LOCAL_EVIDENCE, context))
    if bundle.local_evidence is not None:
        feedback.pushInfo(_tr("Scores with {}").format(local_evidence_status(predictor))
                          if predictor.local_evidence is not None
                          else _tr("Local evidence switched off: pure SINR scores."))
    return predictor


def score_summary(predictor: Predictor) -> tuple[str, str]:
    """The evaluation report's line saying which score was evaluated (``runtime.local_evidence_status``)."""
    return "Local evidence", local_evidence_status(predictor)


LOCAL_EVIDENCE_HELP = QCoreApplication.translate("SinrProcessing", (
    "<p><b>Local evidence.</b> A model trained with this plugin can store, per species, an offset "
    "computed from its training records and added to the network's score (logit): it grows with the "
    "density of the species' records near the place and with its detection rate among the sites of "
    "the surveys that recorded it, and lowers the score by a constant far from them. <i>Use local "
    "evidence</i> (on by default) adds it where the model stores it, with the LPT-R thresholds of "
    "that score; untick it for pure SINR, the network alone. Models without it (imported official "
    "checkpoints, older bundles) give pure SINR either way. The log, a raster's "
    "<tt>LOCAL_EVIDENCE</tt> metadata and an evaluation report say which score was used.</p>"))
