"""The run-and-report template every SINR background task shares.

A task's work runs on a worker thread where an exception escaping ``run()`` would be lost (or
take QGIS down), so ``run()`` never raises: a user error (``SinrError``, cancellation included)
is stored in ``error`` for ``finished()`` to report; anything else is a bug, logged with its
traceback and stored too. ``finished()`` runs on the main thread and tells ``on_done``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from qgis.core import QgsTask

from ..core.errors import CancelledError, SinrError

LOG = logging.getLogger("sinr_qgis")


class SinrTask(QgsTask):
    """A cancellable ``QgsTask`` whose subclass implements ``work()``; ``run()`` is the template.

    ``kind`` names the task in the log ("Prediction" -> "Prediction task failed");
    :meth:`unexpected` says what a bug is stored as (the exception itself unless overridden).
    ``on_done(task, ok)`` is called from ``finished()`` on the main thread, where layers may be
    added; a subclass that does more there calls ``super().finished(ok)`` last.
    """

    kind = "SINR"

    def __init__(self, description: str, on_done: Callable[[Any, bool], None] | None = None) -> None:
        super().__init__(description, QgsTask.Flag.CanCancel)
        self.on_done = on_done
        self.error: Exception | None = None

    def work(self) -> bool:
        """The task's job on the worker thread: True when it produced its result. May raise."""
        raise NotImplementedError

    def run(self) -> bool:
        """Worker thread: ``work()``, with its errors stored in ``self.error`` instead of raised."""
        try:
            return self.work()
        except SinrError as exc:  # user errors and cancellation: reported in finished()
            self.error = exc
        except Exception as exc:  # a bug must not crash QGIS from a worker thread; report it instead
            LOG.exception("%s task failed", self.kind)
            self.error = self.unexpected(exc)
        return False

    def unexpected(self, exc: Exception) -> Exception:
        """What a bug ``exc`` is stored and reported as."""
        return exc

    @property
    def cancelled(self) -> bool:
        """Whether the task ended because the user cancelled it."""
        return isinstance(self.error, CancelledError)

    def finished(self, result: bool) -> None:
        """Main thread: tell ``on_done`` how the task ended."""
        if self.on_done is not None:
            self.on_done(self, bool(result))
