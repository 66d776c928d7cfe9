"""Import an official SINR checkpoint in the background (the dock's "Import SINR checkpoint…").

``run()`` calls :func:`sinr_qgis.core.official_import.import_official_checkpoint`, the same call as
``sinr:import_sinr_checkpoint``: the conversion runs in the training Python, a child process that
a cancel stops. Inputs are plain values (paths, the interpreter), never layers. On success
``finished()`` (main thread) adds the model to "My models" and calls ``on_done(task, ok)``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from qgis.core import QgsTask

from ..core.errors import CancelledError, SinrError
from ..core.official_import import ImportResult, import_official_checkpoint
from ..toolbelt import model_registry

LOG = logging.getLogger("sinr_qgis")


class ImportTask(QgsTask):
    """One import. ``result`` (an ``ImportResult``) or ``error`` is set when it ends; ``messages``
    holds what the user should know (the rasters' warnings, the names' summary)."""

    def __init__(self, checkpoint: str, out: str, python: str, *, taxa: str | None = None,
                 covariates: Sequence[str] = (), name: str | None = None,
                 on_done: Callable[[ImportTask, bool], None] | None = None) -> None:
        super().__init__(f"SINR: importing {Path(checkpoint).name}", QgsTask.Flag.CanCancel)
        self.checkpoint, self.out, self.python = checkpoint, out, python
        self.taxa, self.covariates, self.name = taxa, list(covariates), name
        self.on_done = on_done
        self.result: ImportResult | None = None
        self.error: Exception | None = None
        self.messages: list[str] = []
        self.ended = self.ok = False  # plain state that outlives the C++ task

    def run(self) -> bool:
        try:
            self.result = import_official_checkpoint(
                self.checkpoint, self.out, self.python, taxa=self.taxa, covariates=self.covariates, name=self.name,
                on_progress=self.setProgress, on_log=self.messages.append, is_cancelled=self.isCanceled)
        except SinrError as exc:  # user errors, a failed child and cancellation: reported in finished()
            self.error = exc
            return False
        except Exception as exc:  # a bug must not crash QGIS from a worker thread; report it instead
            LOG.exception("Import task failed")
            self.error = exc
            return False
        return True

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, CancelledError)

    def finished(self, result: bool) -> None:
        """Main thread: list the new model, log the outcome, tell ``on_done``."""
        if result and self.result is not None:
            try:
                model_registry.add_model(self.result.path)
            except SinrError as exc:
                self.error, result = exc, False
        self.ok, self.ended = bool(result), True
        if self.ok:
            LOG.info(" ".join([self.result.summary(), *self.messages]))
        elif not self.cancelled:
            LOG.warning("Import of %s failed: %s", Path(self.checkpoint).name, self.error)
        if self.on_done is not None:
            self.on_done(self, self.ok)
