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

from ..core.errors import SinrError
from ..core.official_import import ImportResult, import_official_checkpoint
from ..toolbelt import model_registry
from .base import SinrTask

LOG = logging.getLogger("sinr_qgis")


class ImportTask(SinrTask):
    """One import. ``result`` (an ``ImportResult``) or ``error`` is set when it ends; ``messages``
    holds what the user should know (the rasters' warnings, the names' summary)."""

    kind = "Import"

    def __init__(self, checkpoint: str, out: str, python: str, *, taxa: str | None = None,
                 covariates: Sequence[str] = (), name: str | None = None,
                 on_done: Callable[[ImportTask, bool], None] | None = None) -> None:
        super().__init__(f"SINR: importing {Path(checkpoint).name}", on_done)
        self.checkpoint, self.out, self.python = checkpoint, out, python
        self.taxa, self.covariates, self.name = taxa, list(covariates), name
        self.result: ImportResult | None = None
        self.messages: list[str] = []
        self.ended = self.ok = False  # plain state that outlives the C++ task

    def work(self) -> bool:
        """Worker thread: convert in the training Python (a failed child raises ``SinrError``)."""
        self.result = import_official_checkpoint(
            self.checkpoint, self.out, self.python, taxa=self.taxa, covariates=self.covariates, name=self.name,
            on_progress=self.setProgress, on_log=self.messages.append, is_cancelled=self.isCanceled)
        return True

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
        super().finished(self.ok)
