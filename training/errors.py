"""The trainer's user error, shared by the trainer and its checkpoint file."""
from __future__ import annotations

from sinr_qgis.core.errors import SinrError


class TrainingError(SinrError):
    """Training cannot start or resume with the given data, configuration or checkpoint."""
