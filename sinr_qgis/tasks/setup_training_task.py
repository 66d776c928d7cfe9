"""Set up a private Python with PyTorch for training, in the background ("Set up PyTorch for me").

A ``QgsTask`` around :func:`sinr_qgis.toolbelt.training_python.setup_training`, with progress,
pip's log (the SINR tab of the log panel) and Cancel. QGIS's proxy settings are read on the main
thread and passed to pip; the training interpreter setting is changed in ``finished()``, on the
main thread, only after the new environment imports torch, onnx and GDAL.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..core.errors import CancelledError, SinrError
from ..toolbelt.interpreter import set_training_interpreter
from ..toolbelt.private_packages import qgis_proxy, training_python_folder
from ..toolbelt.training_python import TrainingPython, setup_progress, setup_training
from .base import SinrTask

LOG = logging.getLogger("sinr_qgis")


class SetupTrainingTask(SinrTask):
    """Makes the training environment; ``on_done(task, ok)`` is called on the main thread.

    ``run()`` never raises: the error is kept in ``self.error`` (a ``DependencyInstallError``
    whose ``reason`` says why, or ``CancelledError``); pip's output is in ``self.log``.
    ``folder`` (default: the QGIS profile's, see ``training_python_folder``), ``source`` (a folder
    of wheels or an index URL) and ``base_python`` (the interpreter to build on) are optional.
    """

    kind = "Training set-up"

    def __init__(self, *, folder: str | Path | None = None, source: str | None = None,
                 base_python: str | Path | None = None,
                 on_done: Callable[[SetupTrainingTask, bool], None] | None = None) -> None:
        super().__init__("SINR: setting up PyTorch for training", on_done)
        self.folder = Path(folder) if folder else training_python_folder()
        self.source = source
        self.base_python = base_python
        self.proxy = qgis_proxy()  # read here: QgsSettings belongs to the main thread
        self.log: list[str] = []
        self.result: TrainingPython | None = None
        self.summary = ""

    def _line(self, text: str) -> None:
        self.log.append(text)
        LOG.info("set up training: %s", text)  # live in the SINR tab of the log panel
        self.setProgress(setup_progress(text, self.progress()))

    def work(self) -> bool:
        """Worker thread: make the environment (``DependencyInstallError`` says why it failed)."""
        self.setProgress(1)
        self.result = setup_training(self.folder, source=self.source, base_python=self.base_python,
                                     proxy=self.proxy, on_line=self._line, is_cancelled=self.isCanceled)
        self.setProgress(100)
        return True

    def unexpected(self, exc: Exception) -> Exception:
        """A bug, in words the set-up button shows."""
        return SinrError(f"Setting up PyTorch failed unexpectedly ({type(exc).__name__}: {exc}). "
                         "Please report it with the Diagnostics report.")

    def finished(self, result: bool) -> None:
        if result and self.result is not None:
            set_training_interpreter(str(self.result.python))
            self.summary = self.result.summary() + " Training uses it from now on."
        elif self.error is None:
            self.error = CancelledError("Set-up cancelled; training keeps its previous Python.")
        super().finished(result)
