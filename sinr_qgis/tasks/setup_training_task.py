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

from qgis.core import QgsTask

from ..core.errors import CancelledError, DependencyInstallError, SinrError
from ..toolbelt.interpreter import set_training_interpreter
from ..toolbelt.private_packages import qgis_proxy, training_python_folder
from ..toolbelt.training_python import TrainingPython, setup_progress, setup_training

LOG = logging.getLogger("sinr_qgis")


class SetupTrainingTask(QgsTask):
    """Makes the training environment; ``on_done(task, ok)`` is called on the main thread.

    ``run()`` never raises: the error is kept in ``self.error`` (a ``DependencyInstallError``
    whose ``reason`` says why, or ``CancelledError``); pip's output is in ``self.log``.
    ``folder`` (default: the QGIS profile's, see ``training_python_folder``), ``source`` (a folder
    of wheels or an index URL) and ``base_python`` (the interpreter to build on) are optional.
    """

    def __init__(self, *, folder: str | Path | None = None, source: str | None = None,
                 base_python: str | Path | None = None,
                 on_done: Callable[[SetupTrainingTask, bool], None] | None = None) -> None:
        super().__init__("SINR: setting up PyTorch for training", QgsTask.Flag.CanCancel)
        self.folder = Path(folder) if folder else training_python_folder()
        self.source = source
        self.base_python = base_python
        self.on_done = on_done
        self.proxy = qgis_proxy()  # read here: QgsSettings belongs to the main thread
        self.log: list[str] = []
        self.result: TrainingPython | None = None
        self.error: Exception | None = None
        self.summary = ""

    def _line(self, text: str) -> None:
        self.log.append(text)
        LOG.info("set up training: %s", text)  # live in the SINR tab of the log panel
        self.setProgress(setup_progress(text, self.progress()))

    def run(self) -> bool:
        try:
            self.setProgress(1)
            self.result = setup_training(self.folder, source=self.source, base_python=self.base_python,
                                         proxy=self.proxy, on_line=self._line, is_cancelled=self.isCanceled)
        except (DependencyInstallError, CancelledError) as exc:
            self.error = exc
            return False
        except Exception as exc:  # a bug must not crash QGIS from a worker thread; report it instead
            LOG.exception("Training set-up task failed")
            self.error = SinrError(f"Setting up PyTorch failed unexpectedly ({type(exc).__name__}: {exc}). "
                                   "Please report it with the Diagnostics report.")
            return False
        self.setProgress(100)
        return True

    def finished(self, result: bool) -> None:
        if result and self.result is not None:
            set_training_interpreter(str(self.result.python))
            self.summary = self.result.summary() + " Training uses it from now on."
        elif self.error is None:
            self.error = CancelledError("Set-up cancelled; training keeps its previous Python.")
        if self.on_done is not None:
            self.on_done(self, bool(result))
