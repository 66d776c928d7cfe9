"""The trainer's user error, shared by the trainer and its checkpoint file."""
from __future__ import annotations

from sinr_qgis.core.errors import SinrError


class TrainerError(SinrError):
    """The trainer cannot start or resume with the given data, configuration or checkpoint.

    Not :class:`sinr_qgis.core.errors.TrainingError`, which the plugin raises when the training
    child it supervises fails.
    """
