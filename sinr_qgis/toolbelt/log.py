"""One logging handler that forwards Python ``logging`` under the plugin's tag to QgsMessageLog."""
from __future__ import annotations

import logging

from qgis.core import Qgis, QgsMessageLog

TAG = "SINR"
_LEVELS = {logging.DEBUG: Qgis.MessageLevel.Info, logging.INFO: Qgis.MessageLevel.Info,
           logging.WARNING: Qgis.MessageLevel.Warning, logging.ERROR: Qgis.MessageLevel.Critical,
           logging.CRITICAL: Qgis.MessageLevel.Critical}


class QgsMessageLogHandler(logging.Handler):
    """Send log records to the QGIS message log panel, tab ``SINR``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
        except (MemoryError, ValueError, TypeError):
            msg = str(record.msg)
        QgsMessageLog.logMessage(msg, TAG, _LEVELS.get(record.levelno, Qgis.MessageLevel.Info))


def setup_logging() -> logging.Logger:
    """Attach the handler once to the ``sinr_qgis`` logger and return it."""
    logger = logging.getLogger("sinr_qgis")
    if not any(isinstance(h, QgsMessageLogHandler) for h in logger.handlers):
        logger.addHandler(QgsMessageLogHandler())
        logger.setLevel(logging.INFO)
    return logger
